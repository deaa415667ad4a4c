//! The single-writer lock of a Lance store: an OS advisory lock on `chromalite.lock` in its root.
//!
//! The catalog is rewritten whole by its writer, so two writing processes would lose each other's
//! collections; the lock makes the second one fail with `Locked` (naming the holder's pid) after a
//! bounded wait instead. The kernel drops the lock when the holder dies, even by `kill -9`.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use chromalite_core::{Error, Result};
use fs2::FileExt;

/// Name of the lock file in the store's root.
pub const LOCK_FILE: &str = "chromalite.lock";

/// Held for as long as this process may write to the store.
#[derive(Debug)]
pub(crate) struct WriterLock {
    _file: File,
}

impl WriterLock {
    pub fn acquire(root: &Path, wait: Duration) -> Result<WriterLock> {
        let path = root.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        let deadline = Instant::now() + wait;
        while let Err(e) = file.try_lock_exclusive() {
            if e.kind() != fs2::lock_contended_error().kind() {
                return Err(Error::io(&path, e));
            }
            if Instant::now() >= deadline {
                let mut text = String::new();
                let pid = file.read_to_string(&mut text).ok().and_then(|_| text.trim().parse().ok());
                return Err(Error::Locked { path: root.display().to_string(), pid });
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        let record_pid = |f: &mut File| -> std::io::Result<()> {
            f.set_len(0)?;
            f.seek(SeekFrom::Start(0))?;
            write!(f, "{}", std::process::id())?;
            f.sync_all()
        };
        record_pid(&mut file).map_err(|e| Error::io(&path, e))?;
        Ok(WriterLock { _file: file })
    }

    /// The pid of the process holding the writer lock of `root`, if one does (and recorded it).
    pub fn holder(root: &Path) -> Option<u32> {
        let mut file = File::open(root.join(LOCK_FILE)).ok()?;
        // A shared lock is granted only while no writer holds the exclusive one.
        if file.try_lock_shared().is_ok() {
            let _ = FileExt::unlock(&file);
            return None;
        }
        let mut text = String::new();
        file.read_to_string(&mut text).ok()?;
        text.trim().parse().ok()
    }
}
