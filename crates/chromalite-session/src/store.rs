//! Facts about a persist directory the session layer relies on: file names, the writer lock and
//! whether a process is alive.

use std::fs::File;
use std::path::{Path, PathBuf};

use chromalite_sqlite::WriterLock;

/// Chroma's `SQLite` file inside a persist directory.
pub const SQLITE_FILE: &str = "chroma.sqlite3";
/// The sqlite backend's writer-lock file (content: the holder's pid), and what it says.
pub use chromalite_sqlite::lock::{LockState, LOCK_FILE};
/// The session layer's own folder inside a persist directory (journal, sessions, recovery point).
pub const SESSION_DIR: &str = "chromalite-session";
/// The four hnswlib files and the label map of a vector segment folder.
pub const SEGMENT_FILES: [&str; 5] =
    ["header.bin", "data_level0.bin", "length.bin", "link_lists.bin", "index_metadata.pickle"];

/// The session folder of the store at `base`.
#[must_use]
pub fn session_dir(base: &Path) -> PathBuf {
    base.join(SESSION_DIR)
}

/// Whether `name` has the shape of a UUID (Chroma names segment folders by segment id).
#[must_use]
pub fn is_uuid(name: &str) -> bool {
    name.len() == 36
        && name
            .char_indices()
            .all(|(i, c)| if matches!(i, 8 | 13 | 18 | 23) { c == '-' } else { c.is_ascii_hexdigit() })
}

/// Whether process `pid` exists (on Unix: `kill(pid, 0)` does not fail with `ESRCH`).
#[must_use]
pub fn pid_alive(pid: u32) -> bool {
    #[cfg(unix)]
    {
        let Ok(pid) = libc::pid_t::try_from(pid) else { return false };
        if pid <= 0 {
            return false;
        }
        // SAFETY: `kill` takes two integers and no pointers, so it cannot touch this process's
        // memory; with signal 0 it only checks that `pid` exists (no signal is sent). `pid > 0`
        // above keeps it from addressing a process group.
        let rc = unsafe { libc::kill(pid, 0) };
        rc == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        true
    }
}

/// Inspects `base`'s writer lock without taking it.
#[must_use]
pub fn lock_state(base: &Path) -> LockState {
    WriterLock::state(base)
}

/// The pid holding `base`'s writer lock, if a process holds it now.
#[must_use]
pub fn lock_holder(base: &Path) -> Option<u32> {
    WriterLock::holder(base)
}

/// fsyncs a directory so renames and creations inside it survive a crash.
pub(crate) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Writes `bytes` to `path` atomically: temp file, fsync, rename, fsync the folder.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut f = File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    path.parent().map_or(Ok(()), sync_dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_shape_and_liveness() {
        assert!(is_uuid("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"));
        assert!(!is_uuid("chromalite-session"));
        assert!(!is_uuid("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0.tmp"));
        assert!(pid_alive(std::process::id()));
        assert!(!pid_alive(u32::MAX - 7));
    }

    #[test]
    fn lock_states() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(lock_state(dir.path()), LockState::Free);
        std::fs::write(dir.path().join(LOCK_FILE), "4242").unwrap();
        assert_eq!(lock_state(dir.path()), LockState::Stale { pid: 4242 });
        let f = File::open(dir.path().join(LOCK_FILE)).unwrap();
        fs2::FileExt::lock_exclusive(&f).unwrap();
        // flock locks belong to the open file description, so a second open conflicts.
        assert_eq!(lock_state(dir.path()), LockState::Held { pid: Some(4242) });
    }
}
