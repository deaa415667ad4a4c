//! Full backups beside a store, and recovery points: consistent copies of `chroma.sqlite3`
//! (`VACUUM INTO`) paired with a journal position, from which a store whose `SQLite` file is lost
//! is rebuilt without losing an acknowledged write made through the session layer.
//!
//! A recovery point is `chromalite-session/recovery-point-<seq>.sqlite3`: the database as it was
//! when journal entry `<seq>` was the last write. The sequence number is in the file name, so the
//! copy and its position can never disagree, whatever a crash interrupts.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::error::{SessionError, SessionResult};
use crate::journal::Journal;
use crate::store::{session_dir, sync_dir, SQLITE_FILE};

/// Present in the session folder when the journal started before the store existed, so replaying
/// it onto an empty store rebuilds everything.
pub const COMPLETE_HISTORY: &str = "journal-covers-creation";
const POINT_PREFIX: &str = "recovery-point-";
const POINT_SUFFIX: &str = ".sqlite3";

/// Copies the whole store to `<store>.backup-<UTC timestamp>` beside it (files fsynced) and
/// returns the copy's path.
pub fn backup_copy(base: &Path) -> SessionResult<PathBuf> {
    let name = base.file_name().map_or_else(|| "store".into(), |n| n.to_string_lossy().into_owned());
    let stamp = crate::time::compact_utc(SystemTime::now());
    let mut target = base.with_file_name(format!("{name}.backup-{stamp}"));
    let mut n = 1;
    while target.exists() {
        n += 1;
        target = base.with_file_name(format!("{name}.backup-{stamp}-{n}"));
    }
    copy_dir(base, &target)?;
    if let Some(parent) = target.parent() {
        sync_dir(parent).map_err(|e| SessionError::io(parent, e))?;
    }
    Ok(target)
}

fn copy_dir(from: &Path, to: &Path) -> SessionResult<()> {
    fs::create_dir_all(to).map_err(|e| SessionError::io(to, e))?;
    for entry in fs::read_dir(from).map_err(|e| SessionError::io(from, e))? {
        let entry = entry.map_err(|e| SessionError::io(from, e))?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        if entry.file_type().map_err(|e| SessionError::io(&src, e))?.is_dir() {
            copy_dir(&src, &dst)?;
        } else {
            fs::copy(&src, &dst).map_err(|e| SessionError::io(&src, e))?;
            fs::File::open(&dst).and_then(|f| f.sync_all()).map_err(|e| SessionError::io(&dst, e))?;
        }
    }
    sync_dir(to).map_err(|e| SessionError::io(to, e))
}

/// The newest recovery point of `base`: its file and journal position.
#[must_use]
pub fn latest_point(base: &Path) -> Option<(PathBuf, u64)> {
    let dir = session_dir(base);
    fs::read_dir(&dir)
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let seq = name.strip_prefix(POINT_PREFIX)?.strip_suffix(POINT_SUFFIX)?.parse::<u64>().ok()?;
            Some((e.path(), seq))
        })
        .max_by_key(|(_, seq)| *seq)
}

/// Takes a recovery point of `base` at the journal's current position and drops the journal
/// entries it covers. The caller guarantees no write is in flight and none awaits replay.
pub fn checkpoint(base: &Path, journal: &mut Journal) -> SessionResult<u64> {
    let seq = journal.last_seq();
    let dir = session_dir(base);
    let tmp = dir.join(format!("{POINT_PREFIX}{seq}{POINT_SUFFIX}.tmp"));
    let _ = fs::remove_file(&tmp);
    let db = base.join(SQLITE_FILE);
    let conn = crate::integrity::open_read_only(base).map_err(|e| sql_error(&db, &e))?;
    conn.execute("VACUUM INTO ?1", [tmp.to_string_lossy()]).map_err(|e| sql_error(&db, &e))?;
    drop(conn);
    fs::File::open(&tmp).and_then(|f| f.sync_all()).map_err(|e| SessionError::io(&tmp, e))?;
    let point = dir.join(format!("{POINT_PREFIX}{seq}{POINT_SUFFIX}"));
    fs::rename(&tmp, &point).map_err(|e| SessionError::io(&tmp, e))?;
    sync_dir(&dir).map_err(|e| SessionError::io(&dir, e))?;
    remove_older_points(base, seq);
    journal.compact(seq)?;
    Ok(seq)
}

fn remove_older_points(base: &Path, keep: u64) {
    let Ok(entries) = fs::read_dir(session_dir(base)) else { return };
    for e in entries.filter_map(Result::ok) {
        let name = e.file_name().to_string_lossy().into_owned();
        let older = name
            .strip_prefix(POINT_PREFIX)
            .and_then(|r| r.strip_suffix(POINT_SUFFIX))
            .and_then(|s| s.parse::<u64>().ok())
            .is_some_and(|s| s < keep);
        if older {
            let _ = fs::remove_file(e.path());
        }
    }
}

pub(crate) fn sql_error(path: &Path, e: &rusqlite::Error) -> SessionError {
    SessionError::Store(chromalite_core::Error::Unavailable {
        message: format!("{}: {e}", path.display()),
        retry_after: None,
    })
}
