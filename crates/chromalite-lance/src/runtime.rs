//! The blocking bridge over lancedb's async API: one runtime for the whole process.
//!
//! Every backend call runs its future on a shared multi-thread Tokio runtime, started on first use.
//! A runtime per call would spawn and join worker threads on every `get`; a runtime per backend
//! would multiply threads when a program opens several stores.

use std::future::Future;
use std::sync::OnceLock;

use chromalite_core::{Error, Result};
use tokio::runtime::{Builder, Handle, Runtime};

static RUNTIME: OnceLock<std::result::Result<Runtime, String>> = OnceLock::new();

fn runtime() -> Result<&'static Runtime> {
    let rt = RUNTIME.get_or_init(|| {
        let workers = std::thread::available_parallelism().map_or(2, std::num::NonZero::get).max(2);
        Builder::new_multi_thread()
            .worker_threads(workers)
            .thread_name("chromalite-lance")
            .enable_all()
            .build()
            .map_err(|e| e.to_string())
    });
    rt.as_ref().map_err(|e| Error::Internal(format!("cannot start the LanceDB runtime: {e}")))
}

/// Runs `fut` to completion on the shared runtime.
///
/// Blocking inside a Tokio worker would stall (or panic) the caller's own runtime, so a call from
/// async code is refused with a typed error: wrap it in `spawn_blocking` instead.
pub(crate) fn block_on<F: Future>(fut: F) -> Result<F::Output> {
    if Handle::try_current().is_ok() {
        return Err(Error::Internal(
            "the Lance backend is blocking: call it from tokio::task::spawn_blocking, not from async code".into(),
        ));
    }
    Ok(runtime()?.block_on(fut))
}

/// Maps a lancedb error to chromalite's error kinds.
pub(crate) fn lance_error(table: &str, e: lancedb::Error) -> Error {
    match e {
        lancedb::Error::TableCorrupted { source, .. } => Error::corrupt(table, "lance table", source.to_string()),
        lancedb::Error::InvalidInput { message } => Error::invalid(message),
        lancedb::Error::Timeout { message } => Error::Timeout(message),
        other => Error::Internal(format!("lancedb ({table}): {other}")),
    }
}
