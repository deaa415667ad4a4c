//! [`CleanupService`]: orphaned segment folders, leftovers of interrupted snapshots, stale lock
//! pids and committed log entries; safe removal; cleanup on SIGINT/SIGTERM.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use chromalite_core::Error;
use chromalite_sqlite::{log, WriterLock};
use rusqlite::Connection;

use crate::error::{SessionError, SessionResult};
use crate::integrity::{self, validate_database_integrity, Fix, IntegrityReport};
use crate::lock;
use crate::model::CleanupResult;
use crate::recovery::sql_error;
use crate::store::{self, LockState, LOCK_FILE, SESSION_DIR, SQLITE_FILE};

/// Finds and removes what a store no longer needs; never touches what it references.
#[derive(Debug, Clone)]
pub struct CleanupService {
    base: PathBuf,
}

impl CleanupService {
    /// The service for the persist directory `base`.
    pub fn new(base: impl Into<PathBuf>) -> Self {
        CleanupService { base: base.into() }
    }

    /// See [`validate_database_integrity`].
    #[must_use]
    pub fn validate_database_integrity(&self) -> IntegrityReport {
        validate_database_integrity(&self.base)
    }

    /// Segment ids the `segments` table references (the protected set).
    fn referenced(&self) -> SessionResult<Vec<String>> {
        let c = integrity::open_read_only(&self.base).map_err(|e| sql_error(&self.base.join(SQLITE_FILE), &e))?;
        let mut stmt = c.prepare("SELECT id FROM segments").map_err(|e| sql_error(&self.base, &e))?;
        let ids = stmt.query_map([], |r| r.get::<_, String>(0)).map_err(|e| sql_error(&self.base, &e))?;
        ids.collect::<rusqlite::Result<Vec<_>>>().map_err(|e| sql_error(&self.base, &e))
    }

    /// Removes `path` unless the store needs it: it must be an orphaned or leftover segment
    /// folder directly inside the store, and no segment may reference it.
    pub fn safe_remove(&self, path: &Path) -> SessionResult<()> {
        let refuse = |reason: &str| Err(SessionError::Refused { path: path.to_path_buf(), reason: reason.into() });
        let Some(name) = path.file_name().map(|n| n.to_string_lossy().into_owned()) else {
            return refuse("no file name");
        };
        if path.parent() != Some(self.base.as_path()) {
            return refuse("not directly inside the store");
        }
        let seg = name.trim_end_matches(".tmp").trim_end_matches(".old");
        if !store::is_uuid(seg) || name.starts_with(SQLITE_FILE) || name == LOCK_FILE || name == SESSION_DIR {
            return refuse("only segment folders and their leftovers are removed");
        }
        if name.strip_suffix(".old") == Some(seg) && !self.base.join(seg).exists() {
            return refuse("it is the only copy of an interrupted snapshot swap; open the store to finish it");
        }
        if name == seg && self.referenced()?.iter().any(|r| r == seg) {
            return refuse("referenced by the segments table");
        }
        fs::remove_dir_all(path).map_err(|e| SessionError::io(path, e))
    }

    /// Removes orphaned segment folders and leftovers, clears a stale lock pid and purges
    /// committed log entries. With `dry_run`, only reports what it would do.
    #[must_use]
    pub fn cleanup_orphaned_files(&self, dry_run: bool) -> CleanupResult {
        let started = Instant::now();
        let mut result = CleanupResult { dry_run, ..CleanupResult::default() };
        let referenced = match self.referenced() {
            Ok(r) => r,
            Err(e) => {
                result.errors_encountered.push(format!("cannot read the segments table, nothing removed: {e}"));
                result.duration = started.elapsed();
                return result;
            }
        };
        for f in integrity::leftovers(&self.base, &referenced).into_iter().filter(|f| f.fix == Fix::Cleanup) {
            let path = self.base.join(&f.file);
            match if dry_run { Ok(()) } else { self.safe_remove(&path) } {
                Ok(()) => result.files_removed.push(path),
                Err(e) => result.errors_encountered.push(e.to_string()),
            }
        }
        if let Err(e) = self.log_and_lock(dry_run, &mut result) {
            result.errors_encountered.push(e.to_string());
        }
        result.duration = started.elapsed();
        result
    }

    /// Purges committed log entries and clears a stale lock pid, holding the writer lock.
    fn log_and_lock(&self, dry_run: bool, result: &mut CleanupResult) -> SessionResult<()> {
        if let LockState::Held { pid } = store::lock_state(&self.base) {
            return Err(Error::Locked { path: self.base.display().to_string(), pid }.into());
        }
        let db = self.base.join(SQLITE_FILE);
        if dry_run {
            let c = integrity::open_read_only(&self.base).map_err(|e| sql_error(&db, &e))?;
            result.log_entries_purged = purge(&c, true).map_err(|e| sql_error(&db, &e))?;
            return Ok(());
        }
        // Taking the lock replaces a stale pid with ours; releasing it (on drop) empties the file.
        let _lock = WriterLock::acquire(&self.base, Duration::ZERO)?;
        let c = Connection::open(&db).map_err(|e| sql_error(&db, &e))?;
        c.busy_timeout(Duration::from_secs(5)).map_err(|e| sql_error(&db, &e))?;
        result.log_entries_purged = purge(&c, false).map_err(|e| sql_error(&db, &e))?;
        Ok(())
    }
}

/// Log entries both segments of a collection have applied, except the newest entry carrying
/// each live record's vector (the sqlite backend rebuilds a lost HNSW folder from those).
/// Respects Chroma's `automatically_purge = false`.
fn purge(c: &Connection, count_only: bool) -> rusqlite::Result<usize> {
    // An unreadable switch counts as on, as in the backend (an old store may lack the table).
    if !log::auto_purge(c).unwrap_or(true) {
        return Ok(0);
    }
    let run = if count_only { log::purgeable } else { log::purge };
    let mut total = 0;
    for row in integrity::catalog(c)? {
        let below = row.vector_seq.min(row.metadata_seq);
        total += run(c, &row.collection.id, &row.collection.metadata_segment, below)?;
    }
    Ok(total)
}

// ---- exit handling ------------------------------------------------------------------------

type Cleanup = dyn Fn() + Send + Sync;

static HANDLERS: Mutex<Vec<Weak<Cleanup>>> = Mutex::new(Vec::new());
static INSTALLED: std::sync::Once = std::sync::Once::new();

/// Keeps a cleanup registered; dropping it unregisters (the `Drop` half of exit handling).
pub struct CleanupGuard {
    _handler: Arc<Cleanup>,
}

impl std::fmt::Debug for CleanupGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CleanupGuard")
    }
}

/// Runs `cleanup` when the process gets SIGINT or SIGTERM (then exits with the signal's default
/// action), for as long as the returned guard lives. The handler thread is installed once.
pub fn register_cleanup_handler(cleanup: impl Fn() + Send + Sync + 'static) -> CleanupGuard {
    let handler: Arc<Cleanup> = Arc::new(cleanup);
    lock(&HANDLERS).push(Arc::downgrade(&handler));
    INSTALLED.call_once(install_signal_thread);
    CleanupGuard { _handler: handler }
}

/// Runs every registered cleanup now (what the signal thread does).
pub fn run_cleanup_handlers() {
    let live: Vec<Arc<Cleanup>> = {
        let mut handlers = lock(&HANDLERS);
        handlers.retain(|w| w.strong_count() > 0);
        handlers.iter().filter_map(Weak::upgrade).collect()
    };
    for h in live {
        h();
    }
}

#[cfg(unix)]
fn install_signal_thread() {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) else { return };
    let _ = std::thread::Builder::new().name("chromalite-signals".into()).spawn(move || {
        if let Some(sig) = signals.forever().next() {
            run_cleanup_handlers();
            // Terminate the way the signal would have without us.
            let _ = signal_hook::low_level::emulate_default_handler(sig);
            std::process::exit(128 + sig);
        }
    });
}

#[cfg(not(unix))]
fn install_signal_thread() {}
