//! The durable write journal: an append-only file of checksummed records plus an
//! applied-position marker.
//!
//! A write is acknowledged only after its record is appended and `fsync`ed, so every acknowledged
//! write survives `kill -9`. A record torn by a crash mid-append fails its checksum and is cut off
//! on the next open: it was never acknowledged. The marker (`journal.applied`) holds the highest
//! sequence number replayed into the primary, in two checksummed slots written alternately, so a
//! torn marker write leaves the previous position readable.
//!
//! File layout of `journal.log`: `b"CLJ1"`, `u64` base sequence (everything at or below it was
//! compacted away), then records `[u32 length][u64 FNV-1a of payload][payload JSON]`, little
//! endian. A payload is a [`JournalEntry`].

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{SessionError, SessionResult};
use crate::ops::WriteOp;
use crate::store::{sync_dir, write_atomic};

const MAGIC: &[u8; 4] = b"CLJ1";
const HEADER: u64 = 12;
const RECORD_HEADER: u64 = 12;
/// Largest record accepted when reading (a corrupt length must not allocate gigabytes).
const MAX_RECORD: u32 = 1 << 30;

/// File name of the journal inside the session folder.
pub const JOURNAL_FILE: &str = "journal.log";
/// File name of the applied-position marker.
pub const MARKER_FILE: &str = "journal.applied";

/// One journaled write.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalEntry {
    /// Position in the journal, from 1, strictly increasing.
    pub seq: u64,
    /// The primary already had this write when it was journaled (a recovery-log record, not one
    /// waiting for replay).
    pub applied: bool,
    pub op: WriteOp,
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    seq: u64,
    applied: bool,
    offset: u64,
    len: u32,
}

/// Name of the lock file that makes a journal folder one process's own.
pub const JOURNAL_LOCK: &str = "journal.lock";
/// Most journal folders (one per process writing the store at the same time).
const MAX_SLOTS: usize = 16;

/// The journal of one store. Not synchronised: the owner serialises access. Each journal folder
/// belongs to one process at a time (an OS lock on `journal.lock`, released by the kernel when the
/// process dies), so two processes never append to one file.
#[derive(Debug)]
pub struct Journal {
    owner: File,
    dir: PathBuf,
    file: File,
    base: u64,
    index: Vec<Slot>,
    end: u64,
    marker: Marker,
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

impl Journal {
    /// Opens (creating) the journal in `dir`, cutting off a torn last record. Fails with
    /// `Locked` while another process owns it.
    pub fn open(dir: &Path) -> SessionResult<Journal> {
        Journal::try_open(dir)?
            .ok_or_else(|| chromalite_core::Error::Locked { path: dir.display().to_string(), pid: None }.into())
    }

    /// The journal folder of slot `n` under the session folder (slot 0 is the folder itself).
    #[must_use]
    pub fn slot_dir(session: &Path, n: usize) -> PathBuf {
        if n == 0 {
            session.to_path_buf()
        } else {
            session.join(format!("journal-{n}"))
        }
    }

    /// The first journal slot no other process owns, and its number.
    pub fn open_slot(session: &Path) -> SessionResult<(Journal, usize)> {
        for n in 0..MAX_SLOTS {
            if let Some(j) = Journal::try_open(&Journal::slot_dir(session, n))? {
                return Ok((j, n));
            }
        }
        Err(chromalite_core::Error::Locked { path: session.display().to_string(), pid: None }.into())
    }

    /// Journals of other slots that nobody owns now (their process ended), for adoption.
    #[must_use]
    pub fn unowned_slots(session: &Path, except: usize) -> Vec<Journal> {
        (1..MAX_SLOTS)
            .filter(|n| *n != except && Journal::slot_dir(session, *n).join(JOURNAL_FILE).exists())
            .filter_map(|n| Journal::try_open(&Journal::slot_dir(session, n)).ok().flatten())
            .collect()
    }

    /// Opens the journal in `dir` unless another process owns it (`None`).
    pub fn try_open(dir: &Path) -> SessionResult<Option<Journal>> {
        use fs2::FileExt;
        std::fs::create_dir_all(dir).map_err(|e| SessionError::io(dir, e))?;
        let lock_path = dir.join(JOURNAL_LOCK);
        let owner = open_rw(&lock_path).map_err(|e| SessionError::io(&lock_path, e))?;
        if owner.try_lock_exclusive().is_err() {
            return Ok(None);
        }
        Journal::open_owned(dir, owner).map(Some)
    }

    fn open_owned(dir: &Path, owner: File) -> SessionResult<Journal> {
        let path = dir.join(JOURNAL_FILE);
        let io = |e| SessionError::io(&path, e);
        let mut file = open_rw(&path).map_err(io)?;
        if file.metadata().map_err(io)?.len() < HEADER {
            write_header(&mut file, 0).map_err(io)?;
            sync_dir(dir).map_err(io)?;
        }
        let mut bytes = Vec::new();
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        file.read_to_end(&mut bytes).map_err(io)?;
        let Some(base) = bytes.strip_prefix(MAGIC).and_then(le_u64) else {
            return Err(SessionError::CorruptState { path, detail: "not a chromalite journal (bad magic)".into() });
        };
        let Scan { index, end, damage } = scan(&bytes, base);
        if let Some(detail) = damage {
            return Err(SessionError::CorruptState { path, detail });
        }
        if end < bytes.len() as u64 {
            // A torn tail: the append was never acknowledged.
            file.set_len(end).map_err(io)?;
            file.sync_all().map_err(io)?;
        }
        let marker = Marker::open(&dir.join(MARKER_FILE))?;
        Ok(Journal { owner, dir: dir.to_path_buf(), file, base, index, end, marker })
    }

    /// The folder holding the journal.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Highest sequence number handed out (0 when none).
    #[must_use]
    pub fn last_seq(&self) -> u64 {
        self.index.last().map_or(self.base, |s| s.seq)
    }

    /// Highest sequence number known to be in the primary through replay.
    #[must_use]
    pub fn applied_through(&self) -> u64 {
        self.marker.seq
    }

    /// Appends `op` and makes it durable before returning its sequence number.
    pub fn append(&mut self, op: &WriteOp, applied: bool) -> SessionResult<u64> {
        // The base and the sequence numbers come from the file: a damaged one can be u64::MAX.
        let seq = self.last_seq().checked_add(1).ok_or_else(|| SessionError::CorruptState {
            path: self.path(),
            detail: "sequence numbers are exhausted (damaged base or record); move the journal aside".into(),
        })?;
        let payload = serde_json::to_vec(&JournalEntry { seq, applied, op: op.clone() }).map_err(|e| {
            SessionError::CorruptState { path: self.path(), detail: format!("cannot encode write: {e}") }
        })?;
        let len = u32::try_from(payload.len()).ok().filter(|l| *l <= MAX_RECORD).ok_or_else(|| {
            SessionError::CorruptState {
                path: self.path(),
                detail: format!("write of {} bytes is too large to journal", payload.len()),
            }
        })?;
        let mut record = Vec::with_capacity(payload.len() + RECORD_HEADER as usize);
        record.extend_from_slice(&len.to_le_bytes());
        record.extend_from_slice(&fnv1a(&payload).to_le_bytes());
        record.extend_from_slice(&payload);
        let path = self.path();
        let io = |e| SessionError::io(&path, e);
        self.file.seek(SeekFrom::Start(self.end)).map_err(io)?;
        self.file.write_all(&record).map_err(io)?;
        self.file.sync_data().map_err(io)?;
        self.index.push(Slot { seq, applied, offset: self.end + RECORD_HEADER, len });
        self.end += record.len() as u64;
        Ok(seq)
    }

    /// Sequence numbers waiting for replay into the primary, oldest first.
    #[must_use]
    pub fn pending(&self) -> Vec<u64> {
        let through = self.marker.seq;
        self.index.iter().filter(|s| !s.applied && s.seq > through).map(|s| s.seq).collect()
    }

    /// Every entry after `seq`, replayed or not (recovery after restoring an older copy).
    #[must_use]
    pub fn seqs_after(&self, seq: u64) -> Vec<u64> {
        self.index.iter().filter(|s| s.seq > seq).map(|s| s.seq).collect()
    }

    /// Reads one entry.
    pub fn read(&mut self, seq: u64) -> SessionResult<JournalEntry> {
        let path = self.path();
        let slot = *self
            .index
            .iter()
            .find(|s| s.seq == seq)
            .ok_or_else(|| SessionError::CorruptState { path: path.clone(), detail: format!("no entry {seq}") })?;
        let mut buf = vec![0; slot.len as usize];
        self.file.seek(SeekFrom::Start(slot.offset)).map_err(|e| SessionError::io(&path, e))?;
        self.file.read_exact(&mut buf).map_err(|e| SessionError::io(&path, e))?;
        serde_json::from_slice(&buf)
            .map_err(|e| SessionError::CorruptState { path, detail: format!("entry {seq}: {e}") })
    }

    /// Records that every entry up to `seq` is in the primary (durable before returning).
    pub fn mark_applied(&mut self, seq: u64) -> SessionResult<()> {
        self.marker.set(seq)
    }

    /// Drops entries at or below `through` (they are in a recovery point), keeping sequence
    /// numbers monotonic. Written beside the journal and renamed over it.
    pub fn compact(&mut self, through: u64) -> SessionResult<()> {
        let path = self.path();
        let io = |e| SessionError::io(&path, e);
        let keep: Vec<Slot> = self.index.iter().copied().filter(|s| s.seq > through).collect();
        let first = keep.first().map_or(self.end, |s| s.offset - RECORD_HEADER);
        // An empty tail here would compact the kept records away: refuse what memory cannot hold.
        let tail_len = usize::try_from(self.end - first).map_err(|_| SessionError::CorruptState {
            path: path.clone(),
            detail: format!("{} bytes to keep do not fit in memory", self.end - first),
        })?;
        let mut tail = vec![0; tail_len];
        self.file.seek(SeekFrom::Start(first)).map_err(io)?;
        self.file.read_exact(&mut tail).map_err(io)?;
        let base = through.max(self.base);
        let mut bytes = Vec::with_capacity(tail.len() + HEADER as usize);
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&base.to_le_bytes());
        bytes.extend_from_slice(&tail);
        write_atomic(&path, &bytes).map_err(io)?;
        let owner = self.owner.try_clone().map_err(|e| SessionError::io(&path, e))?;
        *self = Journal::open_owned(&self.dir, owner)?;
        Ok(())
    }

    fn path(&self) -> PathBuf {
        self.dir.join(JOURNAL_FILE)
    }
}

/// Opens `path` for reading and writing, creating it empty if missing.
fn open_rw(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path)
}

fn write_header(file: &mut File, base: u64) -> std::io::Result<()> {
    file.set_len(0)?;
    file.seek(SeekFrom::Start(0))?;
    file.write_all(MAGIC)?;
    file.write_all(&base.to_le_bytes())?;
    file.sync_all()
}

/// The little-endian `u64` at the start of `b`, if `b` has eight bytes.
fn le_u64(b: &[u8]) -> Option<u64> {
    b.first_chunk::<8>().map(|a| u64::from_le_bytes(*a))
}

/// What [`scan`] found: the valid records, where they end, and damage that is not a torn tail.
struct Scan {
    index: Vec<Slot>,
    end: u64,
    damage: Option<String>,
}

/// Indexes valid records up to the first one that is not.
///
/// A record that fails its checksum, followed by nothing but zero bytes (a crash can leave the
/// file extended but unwritten), is a torn append that was never acknowledged: the valid prefix
/// ends there. Anything else, a failing record with data after it or a record whose checksum holds
/// but whose content does not, is damage: cutting it off would drop acknowledged writes.
fn scan(bytes: &[u8], base: u64) -> Scan {
    let mut index = Vec::new();
    let mut pos = HEADER as usize;
    let mut last = base;
    while pos < bytes.len() {
        let (next, problem) = match record_at(bytes, pos, last) {
            Ok(slot) => {
                last = slot.seq;
                pos = slot.offset as usize + slot.len as usize;
                index.push(slot);
                continue;
            }
            Err(stop) => stop,
        };
        let torn = problem.is_none() && bytes.get(next..).unwrap_or_default().iter().all(|b| *b == 0);
        let damage = (!torn).then(|| {
            let what = problem.unwrap_or_else(|| "checksum mismatch".into());
            format!("record at byte {pos} (after seq {last}): {what}; {} bytes follow it", bytes.len() - pos)
        });
        return Scan { index, end: pos as u64, damage };
    }
    Scan { index, end: pos as u64, damage: None }
}

/// The record at `pos`, or where a failing record ends (clamped to the file) with what is wrong
/// with it when its checksum holds (`None`: torn or damaged bytes).
fn record_at(bytes: &[u8], pos: usize, last: u64) -> Result<Slot, (usize, Option<String>)> {
    let start = pos.saturating_add(RECORD_HEADER as usize);
    let head = bytes.get(pos..start).ok_or((bytes.len(), None))?;
    let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
    let end = start.saturating_add(len as usize);
    let payload = bytes.get(start..end).filter(|_| len <= MAX_RECORD).ok_or((bytes.len(), None))?;
    if le_u64(&head[4..]) != Some(fnv1a(payload)) {
        return Err((end, None));
    }
    let entry = serde_json::from_slice::<EntryHead>(payload).map_err(|e| (end, Some(format!("bad entry: {e}"))))?;
    if entry.seq <= last {
        return Err((end, Some(format!("seq {} does not follow {last}", entry.seq))));
    }
    Ok(Slot { seq: entry.seq, applied: entry.applied, offset: start as u64, len })
}

/// The fields of an entry needed for the index (the op is read when replayed).
#[derive(Deserialize)]
struct EntryHead {
    seq: u64,
    applied: bool,
}

/// Two checksummed 16-byte slots `[seq u64][check u64]`; the valid slot with the highest seq wins.
#[derive(Debug)]
struct Marker {
    file: File,
    path: PathBuf,
    seq: u64,
}

impl Marker {
    fn open(path: &Path) -> SessionResult<Marker> {
        let io = |e| SessionError::io(path, e);
        let mut file = open_rw(path).map_err(io)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(io)?;
        let seq = bytes
            .chunks_exact(16)
            .take(2)
            .filter_map(|c| {
                let seq = le_u64(c)?;
                (le_u64(&c[8..]) == Some(fnv1a(&c[..8]))).then_some(seq)
            })
            .max()
            .unwrap_or(0);
        Ok(Marker { file, path: path.to_path_buf(), seq })
    }

    fn set(&mut self, seq: u64) -> SessionResult<()> {
        let mut slot = [0u8; 16];
        slot[..8].copy_from_slice(&seq.to_le_bytes());
        let check = fnv1a(&slot[..8]);
        slot[8..].copy_from_slice(&check.to_le_bytes());
        let io = |e| SessionError::io(&self.path, e);
        self.file.seek(SeekFrom::Start((seq % 2) * 16)).map_err(io)?;
        self.file.write_all(&slot).map_err(io)?;
        self.file.sync_data().map_err(io)?;
        self.seq = seq;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chromalite_core::{DatabaseRef, ErrorKind};

    fn op(i: usize) -> WriteOp {
        WriteOp::CreateDatabase { db: DatabaseRef::new("t", format!("d{i}")) }
    }

    #[test]
    fn appends_survive_reopen_and_a_torn_tail_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(dir.path()).unwrap();
        for i in 0..5 {
            assert_eq!(j.append(&op(i), i == 0).unwrap(), i as u64 + 1);
        }
        j.mark_applied(2).unwrap();
        drop(j);
        // Simulate a crash halfway through a sixth append.
        let path = dir.path().join(JOURNAL_FILE);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&[200, 0, 0, 0, 1, 2, 3]).unwrap();
        let mut j = Journal::open(dir.path()).unwrap();
        assert_eq!(j.last_seq(), 5);
        assert_eq!(j.applied_through(), 2);
        assert_eq!(j.pending(), vec![3, 4, 5]);
        assert_eq!(j.read(4).unwrap().op, op(3));
        assert_eq!(j.append(&op(9), false).unwrap(), 6);
        j.compact(4).unwrap();
        assert_eq!(j.seqs_after(0), vec![5, 6]);
        assert_eq!(j.append(&op(10), false).unwrap(), 7);
        drop(j);
        let mut j = Journal::open(dir.path()).unwrap();
        assert_eq!((j.last_seq(), j.read(6).unwrap().op), (7, op(9)));
        j.compact(7).unwrap();
        assert_eq!((j.last_seq(), j.pending().len()), (7, 0));
    }

    #[test]
    fn a_journal_belongs_to_one_owner_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let (first, n0) = Journal::open_slot(dir.path()).unwrap();
        let (second, n1) = Journal::open_slot(dir.path()).unwrap();
        assert_eq!((n0, n1), (0, 1));
        assert!(Journal::try_open(dir.path()).unwrap().is_none());
        drop(second);
        assert_eq!(Journal::unowned_slots(dir.path(), 0).len(), 1);
        drop(first);
        assert!(Journal::try_open(dir.path()).unwrap().is_some());
    }

    #[test]
    fn a_torn_marker_slot_falls_back_to_the_other() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(dir.path()).unwrap();
        j.mark_applied(7).unwrap();
        j.mark_applied(8).unwrap();
        drop(j);
        let path = dir.path().join(MARKER_FILE);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[3] ^= 0xff; // slot of 8 (8 % 2 == 0) damaged
        std::fs::write(&path, bytes).unwrap();
        assert_eq!(Journal::open(dir.path()).unwrap().applied_through(), 7);
    }

    fn journal_with(n: usize) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(dir.path()).unwrap();
        for i in 0..n {
            j.append(&op(i), false).unwrap();
        }
        let path = j.path();
        (dir, path)
    }

    #[test]
    fn a_damaged_record_before_others_is_corrupt_and_nothing_is_cut() {
        let (dir, path) = journal_with(5);
        let mut bytes = std::fs::read(&path).unwrap();
        let second =
            HEADER as usize + RECORD_HEADER as usize + Journal::open(dir.path()).unwrap().index[0].len as usize;
        bytes[second + RECORD_HEADER as usize + 3] ^= 0x20; // inside the second record's payload
        std::fs::write(&path, &bytes).unwrap();
        let err = Journal::open(dir.path()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Corrupt, "{err}");
        assert!(err.to_string().contains("after seq 1"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), bytes, "acknowledged records must stay on disk");
    }

    #[test]
    fn a_zero_filled_tail_is_a_torn_append() {
        let (dir, path) = journal_with(3);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&[0; 300]).unwrap();
        let j = Journal::open(dir.path()).unwrap();
        assert_eq!(j.last_seq(), 3);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), j.end);
    }

    #[test]
    fn damaged_headers_and_sequence_numbers_give_corrupt_not_a_panic() {
        let (dir, path) = journal_with(0);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[4..12].copy_from_slice(&u64::MAX.to_le_bytes());
        std::fs::write(&path, &bytes).unwrap();
        let mut j = Journal::open(dir.path()).unwrap();
        assert_eq!(j.append(&op(0), false).unwrap_err().kind(), ErrorKind::Corrupt);
        drop(j);
        for bad in [&b"CLJ"[..], b"XXXX\0\0\0\0\0\0\0\0\0\0"] {
            std::fs::write(&path, bad).unwrap();
            if bad.len() >= HEADER as usize {
                assert_eq!(Journal::open(dir.path()).unwrap_err().kind(), ErrorKind::Corrupt);
            } else {
                // Shorter than a header: nothing was ever journaled, a fresh header is written.
                assert_eq!(Journal::open(dir.path()).unwrap().last_seq(), 0);
            }
        }
    }
}
