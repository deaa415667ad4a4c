//! Where the compatibility tests find Python `chromadb==1.5.9`. One file, included with `#[path]`
//! by every test crate that talks to chromadb, so they all follow the same rule.

use std::path::{Path, PathBuf};

/// The interpreter with chromadb 1.5.9: `CHROMALITE_PYTHON` if set, else the workspace's `.venv`
/// (the one `scripts/test` provisions). With neither, the test prints a SKIP line and gets `None`
/// — unless `CHROMALITE_REQUIRE_PYTHON` is set (the test command sets it), in which case it
/// panics: under the test command a compatibility test never passes without having run.
pub fn chroma_python(test: &str) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("CHROMALITE_PYTHON").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let venv = workspace_root().map(|root| root.join(".venv/bin/python"));
    if let Some(venv) = venv.filter(|p| p.exists()) {
        return Some(venv);
    }
    assert!(
        std::env::var_os("CHROMALITE_REQUIRE_PYTHON").is_none(),
        "{test}: CHROMALITE_REQUIRE_PYTHON is set but there is no chromadb python \
         (set CHROMALITE_PYTHON or run scripts/test, which provisions .venv)"
    );
    eprintln!("SKIP {test}: no chromadb python (set CHROMALITE_PYTHON, or run scripts/test to provision .venv)");
    None
}

/// The directory holding the workspace's `Cargo.lock`, searched upwards from this crate.
fn workspace_root() -> Option<&'static Path> {
    Path::new(env!("CARGO_MANIFEST_DIR")).ancestors().find(|dir| dir.join("Cargo.lock").exists())
}
