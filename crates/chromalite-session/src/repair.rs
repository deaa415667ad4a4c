//! `repair`: back up, rebuild what is damaged, reopen, verify.
//!
//! - A damaged or missing HNSW segment (any of its five files) is a cache of `SQLite`: its folder
//!   is removed and the backend rebuilds it from the records `SQLite` keeps, then persists it.
//! - A damaged or missing `chroma.sqlite3` is restored from the newest recovery point (or, when
//!   the journal holds the store's whole history, from nothing), every journaled write after the
//!   point is replayed, and the segment folders are rebuilt.
//!
//! Before anything changes, the whole store is copied to `<store>.backup-<UTC timestamp>`.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chromalite_core::{Error, Include, QueryRequest, VectorBackend};
use serde::{Deserialize, Serialize};

use crate::error::{SessionError, SessionResult};
use crate::integrity::{validate_database_integrity, Fix, IntegrityReport};
use crate::journal::Journal;
use crate::ops::Resolve;
use crate::recovery::{self, latest_point};
use crate::store::{self, session_dir, LockState, SQLITE_FILE};

/// One step of a repair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum RepairAction {
    /// Remove the segment folder and rebuild the index from `SQLite`.
    RebuildSegment { collection: String, segment: String },
    /// Replace `chroma.sqlite3` with the recovery point (none: start empty) and replay the
    /// journal entries after it.
    RestoreSqlite { recovery_point: Option<PathBuf>, journal_entries: usize },
}

/// What `repair` would do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RepairPlan {
    pub report: IntegrityReport,
    pub actions: Vec<RepairAction>,
    /// Set when the damage cannot be repaired from what is on disk.
    pub unrepairable: Option<String>,
}

/// What `repair` did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RepairOutcome {
    pub backup: Option<PathBuf>,
    pub actions: Vec<RepairAction>,
    /// Journal entries replayed into the restored store.
    pub replayed: usize,
    /// The integrity check after the repair.
    pub after: IntegrityReport,
    #[serde(with = "crate::time::seconds")]
    pub duration: Duration,
}

/// Opens a store for writing (e.g. `|p| Ok(Arc::new(SqliteBackend::open(p)?) as _)`).
pub type Opener<'a> = &'a dyn Fn(&Path) -> chromalite_core::Result<Arc<dyn VectorBackend>>;

/// Checks `base` and decides what a repair would do.
#[must_use]
pub fn plan_repair(base: &Path) -> RepairPlan {
    let report = validate_database_integrity(base);
    let mut actions = Vec::new();
    let mut unrepairable = None;
    if report.damage().any(|f| f.fix == Fix::RestoreSqlite) {
        match restore_source(base) {
            Ok((point, entries)) => {
                actions.push(RepairAction::RestoreSqlite { recovery_point: point, journal_entries: entries });
            }
            Err(reason) => unrepairable = Some(reason),
        }
    } else {
        for f in report.damage() {
            if let Fix::RebuildSegment { collection, segment } = &f.fix {
                let a = RepairAction::RebuildSegment { collection: collection.clone(), segment: segment.clone() };
                if !actions.contains(&a) {
                    actions.push(a);
                }
            }
        }
    }
    RepairPlan { report, actions, unrepairable }
}

/// Where a lost `SQLite` file can come back from: a recovery point, or the journal alone when it
/// still holds every write since the store was created.
fn restore_source(base: &Path) -> Result<(Option<PathBuf>, usize), String> {
    let dir = session_dir(base);
    let no_journal = || {
        format!(
            "no recovery point or journal in {}; restore {} from a backup",
            dir.display(),
            base.join(SQLITE_FILE).display()
        )
    };
    if !dir.join(crate::journal::JOURNAL_FILE).exists() {
        return Err(no_journal());
    }
    let journal = Journal::open(&dir).map_err(|e| e.to_string())?;
    match latest_point(base) {
        Some((point, seq)) => Ok((Some(point), journal.seqs_after(seq).len())),
        None if dir.join(recovery::COMPLETE_HISTORY).exists() && journal.seqs_after(0).first() == Some(&1) => {
            Ok((None, journal.seqs_after(0).len()))
        }
        None => Err(no_journal()),
    }
}

/// Repairs `base` as [`plan_repair`] describes, opening it with `open`.
pub fn repair(base: &Path, open: Opener<'_>) -> SessionResult<RepairOutcome> {
    let started = Instant::now();
    let plan = plan_repair(base);
    if let Some(reason) = plan.unrepairable {
        return Err(SessionError::Unrepairable { path: base.to_path_buf(), reason });
    }
    if plan.actions.is_empty() {
        return Ok(RepairOutcome {
            backup: None,
            actions: Vec::new(),
            replayed: 0,
            after: plan.report,
            duration: started.elapsed(),
        });
    }
    if let LockState::Held { pid } = store::lock_state(base) {
        return Err(Error::Locked { path: base.display().to_string(), pid }.into());
    }
    let backup = recovery::backup_copy(base)?;
    let mut replayed = 0;
    for action in &plan.actions {
        match action {
            RepairAction::RebuildSegment { segment, .. } => remove_segment(base, segment)?,
            RepairAction::RestoreSqlite { recovery_point, .. } => {
                replayed += restore_sqlite(base, recovery_point.as_deref(), open)?;
            }
        }
    }
    rebuild_all(base, &plan.report, open)?;
    let after = validate_database_integrity(base);
    Ok(RepairOutcome { backup: Some(backup), actions: plan.actions, replayed, after, duration: started.elapsed() })
}

fn remove_segment(base: &Path, segment: &str) -> SessionResult<()> {
    for name in [segment.to_owned(), format!("{segment}.tmp"), format!("{segment}.old")] {
        let p = base.join(name);
        if p.exists() {
            fs::remove_dir_all(&p).map_err(|e| SessionError::io(&p, e))?;
        }
    }
    Ok(())
}

/// Puts the recovery point in place, drops every segment folder (they may be newer than the
/// point) and replays the journal after the point. Returns the entries replayed.
fn restore_sqlite(base: &Path, point: Option<&Path>, open: Opener<'_>) -> SessionResult<usize> {
    let seq = point.and_then(|_| latest_point(base)).map_or(0, |(_, s)| s);
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let p = base.join(format!("{SQLITE_FILE}{suffix}"));
        if p.exists() {
            fs::remove_file(&p).map_err(|e| SessionError::io(&p, e))?;
        }
    }
    if let Some(point) = point {
        let db = base.join(SQLITE_FILE);
        fs::copy(point, &db).map_err(|e| SessionError::io(point, e))?;
        fs::File::open(&db).and_then(|f| f.sync_all()).map_err(|e| SessionError::io(&db, e))?;
    }
    for entry in fs::read_dir(base).map_err(|e| SessionError::io(base, e))?.filter_map(Result::ok) {
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.path().is_dir() && store::is_uuid(name.trim_end_matches(".tmp").trim_end_matches(".old")) {
            fs::remove_dir_all(entry.path()).map_err(|e| SessionError::io(entry.path(), e))?;
        }
    }
    let backend = open(base)?;
    let mut journal = Journal::open(&session_dir(base))?;
    let seqs = journal.seqs_after(seq);
    for s in &seqs {
        let entry = journal.read(*s)?;
        match entry.op.apply(backend.as_ref(), Resolve::ByName) {
            Ok(_) => {}
            Err(e) if entry.op.already_done(&e) => {}
            Err(e) => return Err(e.into()),
        }
    }
    if let Some(last) = seqs.last() {
        journal.mark_applied(*last)?;
    }
    backend.flush()?;
    drop(backend);
    recovery::checkpoint(base, &mut journal)?;
    Ok(seqs.len())
}

/// Opens the store and reads every collection's vectors once, so missing segments are rebuilt
/// from `SQLite`, then flushes them to disk.
fn rebuild_all(base: &Path, before: &IntegrityReport, open: Opener<'_>) -> SessionResult<()> {
    let backend = open(base)?;
    let cols = crate::integrity::open_read_only(base)
        .and_then(|c| crate::integrity::catalog(&c))
        .map_err(|e| recovery::sql_error(&base.join(SQLITE_FILE), &e))?;
    let _ = before;
    for row in cols {
        let c = &row.collection;
        let Some(dim) = c.dimension else { continue };
        let info = backend.get_collection(&c.db, &c.name)?;
        let probe = QueryRequest {
            embeddings: vec![vec![1.0; dim]],
            n_results: 1,
            include: vec![Include::Distances],
            ..Default::default()
        };
        backend.query(&info, &probe)?;
    }
    backend.flush()?;
    Ok(())
}
