//! The single-writer lock: an OS advisory lock on `chromalite.lock` in the persist directory.
//!
//! The lock is released by the kernel when the process dies (even by `kill -9`), so a crashed
//! writer never leaves a directory locked. The file's content is the holder's pid, written after
//! the lock is taken, so a waiting process can name who holds it.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chromalite_core::{Error, Result};
use fs2::FileExt;

/// Name of the lock file inside a persist directory.
pub const LOCK_FILE: &str = "chromalite.lock";

/// Held for as long as this process may write to the directory.
#[derive(Debug)]
pub struct WriterLock {
    file: File,
    path: PathBuf,
}

impl WriterLock {
    /// Takes the lock, retrying until `wait` has passed; then fails with `Locked` naming the
    /// holder's pid (when it wrote one).
    pub fn acquire(dir: &Path, wait: Duration) -> Result<WriterLock> {
        let path = dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        let deadline = Instant::now() + wait;
        loop {
            match file.try_lock_exclusive() {
                Ok(()) => break,
                Err(e) if e.kind() == fs2::lock_contended_error().kind() => {
                    if Instant::now() >= deadline {
                        return Err(Error::Locked { path: dir.display().to_string(), pid: read_pid(&mut file) });
                    }
                    std::thread::sleep(Duration::from_millis(25));
                }
                Err(e) => return Err(Error::io(&path, e)),
            }
        }
        write_pid(&mut file).map_err(|e| Error::io(&path, e))?;
        Ok(WriterLock { file, path })
    }

    /// The lock file's path.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The pid recorded by the process holding `dir`'s writer lock, if one holds it now.
    #[must_use]
    pub fn holder(dir: &Path) -> Option<u32> {
        match WriterLock::state(dir) {
            LockState::Held { pid } => pid,
            LockState::Free | LockState::Stale { .. } => None,
        }
    }

    /// `dir`'s writer lock as seen from outside, without taking it.
    #[must_use]
    pub fn state(dir: &Path) -> LockState {
        let Ok(mut file) = File::open(dir.join(LOCK_FILE)) else { return LockState::Free };
        let pid = read_pid(&mut file);
        match file.try_lock_shared() {
            Ok(()) => {
                let _ = FileExt::unlock(&file);
                pid.map_or(LockState::Free, |pid| LockState::Stale { pid })
            }
            Err(_) => LockState::Held { pid },
        }
    }
}

/// A persist directory's writer lock as seen from outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockState {
    /// No lock file, or nobody holds the lock and no pid is recorded.
    Free,
    /// Nobody holds the lock but a pid was left behind (a writer killed without cleanup).
    Stale { pid: u32 },
    /// A live process holds it (pid when it recorded one).
    Held { pid: Option<u32> },
}

impl Drop for WriterLock {
    fn drop(&mut self) {
        // Clear the pid so a stale number is never reported; the kernel drops the lock anyway.
        let _ = self.file.set_len(0);
        let _ = FileExt::unlock(&self.file);
    }
}

fn write_pid(file: &mut File) -> std::io::Result<()> {
    file.set_len(0)?;
    file.seek(SeekFrom::Start(0))?;
    write!(file, "{}", std::process::id())?;
    file.flush()
}

fn read_pid(file: &mut File) -> Option<u32> {
    let mut s = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.take(32).read_to_string(&mut s).ok()?;
    s.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_writer_in_same_process_is_locked_with_pid() {
        let dir = tempfile::tempdir().unwrap();
        let first = WriterLock::acquire(dir.path(), Duration::from_millis(10)).unwrap();
        let err = WriterLock::acquire(dir.path(), Duration::from_millis(50)).unwrap_err();
        match err {
            Error::Locked { pid, .. } => assert_eq!(pid, Some(std::process::id())),
            other => panic!("expected Locked, got {other:?}"),
        }
        assert_eq!(WriterLock::holder(dir.path()), Some(std::process::id()));
        drop(first);
        assert_eq!(WriterLock::holder(dir.path()), None);
        WriterLock::acquire(dir.path(), Duration::from_millis(10)).unwrap();
    }
}
