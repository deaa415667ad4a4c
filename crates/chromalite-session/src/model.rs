//! The data models of the design (`DatabaseConnection`, `SessionInfo`, `CleanupResult`) and the
//! reports the session layer produces. All serialise with serde (times as RFC 3339 UTC text,
//! durations as seconds) so applications can log or persist them as JSON.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::integrity::IntegrityReport;

/// One collection handle the [`DatabaseManager`](crate::DatabaseManager) has handed out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatabaseConnection {
    pub collection_name: String,
    pub connection_id: String,
    /// Kind of the backend behind it (`sqlite`, `memory`, `remote`...).
    pub backend: String,
    #[serde(with = "crate::time::rfc3339")]
    pub created_at: SystemTime,
    #[serde(with = "crate::time::rfc3339")]
    pub last_used: SystemTime,
    pub is_active: bool,
}

/// A user session: survives a process restart and is resumed by id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInfo {
    pub session_id: String,
    pub embeddings_path: String,
    #[serde(with = "crate::time::rfc3339")]
    pub created_at: SystemTime,
    #[serde(with = "crate::time::rfc3339")]
    pub last_activity: SystemTime,
    /// Names of the collections the session works with; reopened on resume.
    pub active_connections: Vec<String>,
}

/// What a cleanup did (or, in a dry run, would do).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CleanupResult {
    /// Files and folders removed (dry run: that would be removed).
    pub files_removed: Vec<PathBuf>,
    pub connections_closed: usize,
    /// Log entries purged (dry run: purgeable).
    pub log_entries_purged: usize,
    pub errors_encountered: Vec<String>,
    #[serde(with = "crate::time::seconds")]
    pub duration: Duration,
    pub dry_run: bool,
}

/// How the store is being served right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Mode {
    /// Everything goes to the primary store.
    Normal,
    /// Reads go to the primary; writes are refused with a typed `ReadOnly` error.
    ReadOnly,
    /// The primary is unreachable: reads and writes use memory, writes are journaled on disk and
    /// replayed to the primary when it returns.
    MemoryFallback,
}

impl Mode {
    /// Lower-case name for reports.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Normal => "normal",
            Mode::ReadOnly => "read-only",
            Mode::MemoryFallback => "memory-fallback",
        }
    }
}

/// A change of [`Mode`], with text for the user and the steps to get back to normal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateChange {
    pub from: Mode,
    pub to: Mode,
    #[serde(with = "crate::time::rfc3339")]
    pub at: SystemTime,
    /// One or two sentences for an end user.
    pub message: String,
    /// Numbered recovery steps (empty when returning to normal).
    pub guidance: Vec<String>,
    /// The error that caused the change, if any.
    pub cause: Option<String>,
}

/// The answer of [`DatabaseManager::health_check`](crate::DatabaseManager::health_check).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthReport {
    /// The primary answered a heartbeat.
    pub reachable: bool,
    pub mode: Mode,
    /// Writes journaled while degraded and not yet in the primary.
    pub pending_replay: usize,
    /// Pid of the process holding the store's writer lock (persist directories only).
    pub lock_holder: Option<u32>,
    /// Integrity of the persist directory (persist directories only).
    pub integrity: Option<IntegrityReport>,
    pub open_connections: usize,
    pub message: String,
}

impl HealthReport {
    /// Reachable, in normal mode, nothing pending and no damage found.
    #[must_use]
    pub fn is_healthy(&self) -> bool {
        self.reachable
            && self.mode == Mode::Normal
            && self.pending_replay == 0
            && self.integrity.as_ref().is_none_or(IntegrityReport::is_ok)
    }
}
