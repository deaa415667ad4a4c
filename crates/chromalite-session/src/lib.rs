//! The session layer of chromalite: one [`DatabaseManager`] per store keeps an application's
//! vector store healthy across restarts, crashes, lock contention and damaged files.
//!
//! ```text
//! application -> DatabaseManager -> ResilientBackend -> PoolBackend -> ConnectionPool -> store
//!                      |                  |  (ErrorHandler: retry, recreate defaults, degrade)
//!                SessionTracker     Journal + MemoryBackend (fallback)     CleanupService, repair
//! ```
//!
//! # Components
//! - [`DatabaseManager`]: hands out collections, closes connections, cleans up on drop and on
//!   SIGINT/SIGTERM, reports health.
//! - [`ConnectionPool`] (on `r2d2`): bounded, lazily created, health-checked connections; an
//!   exhausted pool gives a typed `Timeout`, never a hang.
//! - [`ErrorHandler`]: exponential backoff with jitter for transient kinds (`Locked`,
//!   `Unavailable`); permanent errors return at once; recovery action per kind.
//! - [`ResilientBackend`]: applies the handler to every call, bounds each call's time, and
//!   degrades visibly to [`Mode::ReadOnly`] or [`Mode::MemoryFallback`]; state changes reach
//!   subscribers with user-facing text and numbered recovery steps.
//! - [`CleanupService`], [`validate_database_integrity`], [`repair::repair`]: what the CLI's
//!   `doctor`, `repair` and `cleanup` run.
//! - [`SessionTracker`]: sessions persisted on disk and resumed by id after a restart.
//!
//! # Guarantees
//! - **No acknowledged write is lost while degraded.** In the memory fallback a write returns
//!   only after it is appended to the journal and fsynced; when the primary returns, journaled
//!   writes are replayed in order and exactly once, also after the process was killed.
//! - **A lost `chroma.sqlite3` is recoverable** for writes made through the manager: the journal
//!   (`recovery_log`) plus the latest recovery point rebuild it; `repair` backs up first.
//! - **Cleanup never deletes what the store references**: `segments` rows, the `SQLite` files, the
//!   lock and the session folder are refused by [`CleanupService::safe_remove`].
//! - Nothing here panics on damaged files; every failure is a typed error with a stable kind.
//!
//! Session state lives in `<store>/chromalite-session/` (journal, applied marker, sessions,
//! recovery point). Chroma ignores the folder.
//!
//! # Example
//! ```
//! use std::sync::Arc;
//! use chromalite_session::{DatabaseManager, ManagerOptions, Mode};
//!
//! let dir = tempfile::tempdir()?;
//! // Any backend works; a persist directory would open `SqliteBackend` here.
//! let manager = DatabaseManager::open(dir.path(), |_| Ok(Arc::new(chromalite_memory::MemoryBackend::new()) as _), ManagerOptions::default())?;
//! let changes = manager.subscribe();
//!
//! let session = manager.start_session()?;
//! let notes = manager.session_collection(&session.session_id, "notes")?;
//! notes.add(["a"]).embeddings(vec![vec![1.0, 0.0]]).documents(["hello"]).run()?;
//! assert_eq!(notes.count()?, 1);
//!
//! let health = manager.health_check();
//! assert!(health.reachable && health.mode == Mode::Normal);
//! assert!(changes.try_recv().is_err()); // no degradation happened
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod cleanup;
mod error;
pub mod integrity;
pub mod journal;
mod manager;
mod model;
mod notify;
pub mod ops;
mod pool;
pub mod recovery;
pub mod repair;
mod resilient;
mod retry;
pub mod store;
pub mod time;
mod tracker;

pub use cleanup::{register_cleanup_handler, run_cleanup_handlers, CleanupGuard, CleanupService};
pub use error::{SessionError, SessionResult};
pub use integrity::{validate_database_integrity, Finding, Fix, IntegrityReport, Severity};
pub use manager::{DatabaseManager, ManagerOptions};
pub use model::{CleanupResult, DatabaseConnection, HealthReport, Mode, SessionInfo, StateChange};
pub use pool::{ConnectionPool, Connector, PoolBackend, PoolOptions, PooledConnection, SharedConnector};
pub use resilient::{ResilientBackend, ResilientOptions};
pub use retry::{ErrorHandler, Recovery, RetryPolicy};
pub use tracker::SessionTracker;

/// Locks a mutex, reusing it after a panic elsewhere: every critical section here leaves its data
/// consistent before anything that can panic, so poisoning carries no information.
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
