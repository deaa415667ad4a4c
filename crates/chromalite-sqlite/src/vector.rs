//! The vector segment: an HNSW index in `<persist dir>/<segment id>/`, a cache of the log.
//!
//! The index in memory applies log entries as they are written; the folder on disk is a snapshot
//! at the position recorded in `max_seq_id` for the segment. Snapshots are written beside the
//! live folder and swapped in with renames, so the folder is always a complete snapshot. When it
//! is missing or damaged the index is rebuilt from the vectors the log retains (see
//! [`crate::log::purge`]).

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use chromalite_core::collection::HnswConfig;
use chromalite_core::{Error, Result};
use chromalite_hnsw::pickle::SegmentMetadata;
use chromalite_hnsw::{HnswError, Index, Params, Space as HnswSpace};
use rusqlite::{params, Connection};

use crate::log::{Entry, Logged, Op};

/// File name of the id <-> label map inside a segment folder.
pub const PICKLE_FILE: &str = "index_metadata.pickle";

/// The in-memory HNSW segment of one collection.
pub struct VectorSegment {
    pub index: Index,
    pub ids: SegmentMetadata,
    /// Largest seq id applied to `index`.
    pub applied: i64,
    /// Seq id of the snapshot on disk (the segment's `max_seq_id` row), 0 if none.
    pub persisted: i64,
    /// Log entries applied since the last snapshot (all operations count, as in Chroma).
    pub since_persist: usize,
    pub folder: PathBuf,
    /// Identity of the folder the index was loaded from, to notice another process swapping it.
    pub loaded_from: Option<u64>,
}

fn hnsw_space(s: chromalite_core::Space) -> HnswSpace {
    match s {
        chromalite_core::Space::L2 => HnswSpace::L2,
        chromalite_core::Space::Ip => HnswSpace::InnerProduct,
        chromalite_core::Space::Cosine => HnswSpace::Cosine,
    }
}

fn params_of(cfg: &HnswConfig) -> Params {
    Params { m: cfg.max_neighbors, ef_construction: cfg.ef_construction, ef_search: cfg.ef_search, ..Params::default() }
}

/// Maps an index error to the core error, naming the segment folder.
#[must_use]
pub fn hnsw_error(folder: &Path, e: HnswError) -> Error {
    match e {
        HnswError::Corrupt { file, field, detail } => {
            Error::corrupt(folder.join(file).display().to_string(), field, detail)
        }
        HnswError::Io { path, source } => Error::io(path, source),
        HnswError::DimensionMismatch { expected, got } => Error::DimensionMismatch { expected, got },
        HnswError::InvalidArgument(m) => Error::InvalidArgument(m),
    }
}

#[cfg(unix)]
fn folder_identity(p: &Path) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    fs::metadata(p).ok().map(|m| m.ino())
}

#[cfg(not(unix))]
fn folder_identity(p: &Path) -> Option<u64> {
    fs::metadata(p)
        .ok()
        .and_then(|m| m.modified().ok())
        .map(|t| t.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64))
}

fn side(folder: &Path, suffix: &str) -> PathBuf {
    let mut name = folder.file_name().map(std::ffi::OsStr::to_os_string).unwrap_or_default();
    name.push(suffix);
    folder.with_file_name(name)
}

/// Finishes or undoes a snapshot swap interrupted by a crash (writer only).
pub fn recover_folder(folder: &Path) -> Result<()> {
    let old = side(folder, ".old");
    let tmp = side(folder, ".tmp");
    if old.exists() {
        if folder.exists() {
            fs::remove_dir_all(&old).map_err(|e| Error::io(&old, e))?;
        } else {
            // Crashed between the two renames: the previous snapshot is the consistent one.
            fs::rename(&old, folder).map_err(|e| Error::io(&old, e))?;
        }
    }
    if tmp.exists() {
        fs::remove_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
    }
    Ok(())
}

impl VectorSegment {
    /// An empty index (nothing persisted yet).
    #[must_use]
    pub fn empty(folder: PathBuf, dim: usize, cfg: &HnswConfig) -> VectorSegment {
        VectorSegment {
            index: Index::new(dim, hnsw_space(cfg.space), params_of(cfg)),
            ids: SegmentMetadata::default(),
            applied: 0,
            persisted: 0,
            since_persist: 0,
            folder,
            loaded_from: None,
        }
    }

    /// Loads the snapshot in `folder`, positioned at `row_seq` (the segment's `max_seq_id`).
    /// `Ok(None)` when there is no snapshot (Chroma's "uninitialized segment").
    pub fn load(folder: &Path, dim: usize, cfg: &HnswConfig, row_seq: i64) -> Result<Option<VectorSegment>> {
        let pickle = folder.join(PICKLE_FILE);
        if !pickle.exists() {
            return Ok(None);
        }
        let before = folder_identity(folder);
        // The pickle and the index files are independent: decode them on two threads (opening a
        // large collection is mostly these two decodes).
        let (ids, index) = std::thread::scope(|s| {
            let ids = s.spawn(|| SegmentMetadata::read(&pickle));
            let index = Index::load(folder, dim, hnsw_space(cfg.space), cfg.ef_search);
            (ids.join(), index)
        });
        let ids = ids
            .map_err(|_| Error::Internal(format!("decoding {} panicked", pickle.display())))?
            .map_err(|e| hnsw_error(folder, e))?;
        if ids.id_to_label.is_empty() {
            return Ok(None);
        }
        let index = index.map_err(|e| hnsw_error(folder, e))?;
        if before != folder_identity(folder) {
            return Err(Error::Unavailable {
                message: format!("{} was replaced while loading", folder.display()),
                retry_after: None,
            });
        }
        if let Some((id, label)) = ids.id_to_label.iter().find(|(_, l)| !index.contains(**l)) {
            return Err(Error::corrupt(
                pickle.display().to_string(),
                "id_to_label",
                format!("id {id:?} maps to label {label}, absent from the index"),
            ));
        }
        // Chroma 1.x keeps the position in SQLite; older pickles carried it themselves.
        let seq = if row_seq > 0 { row_seq } else { ids.max_seq_id.unwrap_or(0) };
        Ok(Some(VectorSegment {
            index,
            ids,
            applied: seq,
            persisted: seq,
            since_persist: 0,
            folder: folder.to_path_buf(),
            loaded_from: before,
        }))
    }

    /// Applies log entries newer than `applied`, as Chroma's HNSW writer does: adds of known ids
    /// and updates of unknown ids are ignored; labels are never reused.
    pub fn apply(&mut self, entries: &[Logged]) -> Result<()> {
        let mut pending: Vec<(u64, Vec<f32>)> = Vec::new();
        let mut pending_pos: HashMap<u64, usize> = HashMap::new();
        let start = self.applied;
        for Logged { seq_id, entry } in entries.iter().filter(|l| l.seq_id > start) {
            self.since_persist += 1;
            self.applied = self.applied.max(*seq_id);
            let Some(label) = self.label_for(entry) else { continue };
            match &entry.vector {
                Some(v) if entry.op != Op::Delete => {
                    if let Some(&i) = pending_pos.get(&label) {
                        pending[i].1.clone_from(v);
                    } else {
                        pending_pos.insert(label, pending.len());
                        pending.push((label, v.clone()));
                    }
                }
                _ if entry.op == Op::Delete => {
                    self.flush_pending(&mut pending, &mut pending_pos)?;
                    self.index.mark_deleted(label).map_err(|e| hnsw_error(&self.folder, e))?;
                }
                _ => {}
            }
        }
        self.flush_pending(&mut pending, &mut pending_pos)
    }

    /// The label an entry touches, registering/forgetting ids as Chroma's writer does.
    fn label_for(&mut self, e: &Entry) -> Option<u64> {
        let known = self.ids.id_to_label.get(&e.id).copied();
        match e.op {
            Op::Add => match (known, &e.vector) {
                (None, Some(_)) => Some(self.ids.assign_label(&e.id)),
                _ => None,
            },
            Op::Update => known.filter(|_| e.vector.is_some()),
            Op::Upsert => e.vector.as_ref().map(|_| self.ids.assign_label(&e.id)),
            Op::Delete => known.and_then(|_| self.ids.remove_id(&e.id)),
        }
    }

    fn flush_pending(&mut self, pending: &mut Vec<(u64, Vec<f32>)>, pos: &mut HashMap<u64, usize>) -> Result<()> {
        if pending.is_empty() {
            return Ok(());
        }
        let need = self.index.len_with_deleted() + pending.len();
        if need > self.index.capacity() {
            self.index.resize(need.next_power_of_two()).map_err(|e| hnsw_error(&self.folder, e))?;
        }
        self.index.insert_batch(pending).map_err(|e| hnsw_error(&self.folder, e))?;
        pending.clear();
        pos.clear();
        Ok(())
    }

    /// Writes a snapshot: files into `<id>.tmp/`, fsync, swap with the live folder by renames,
    /// fsync the parent; then records the position in `SQLite` (never ahead of the files).
    pub fn persist(&mut self, c: &Connection, segment_id: &str) -> Result<()> {
        let staged = self.stage_snapshot()?;
        self.commit_snapshot(c, segment_id, staged)
    }

    /// The slow half of [`persist`](Self::persist), which only reads the segment: writes the
    /// files into `<id>.tmp/` (each fsynced). Returns what the snapshot holds.
    pub fn stage_snapshot(&self) -> Result<Staged> {
        let tmp = side(&self.folder, ".tmp");
        if tmp.exists() {
            fs::remove_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
        }
        self.index.save(&tmp).map_err(|e| hnsw_error(&tmp, e))?;
        self.ids.write(&tmp.join(PICKLE_FILE)).map_err(|e| hnsw_error(&tmp, e))?;
        Ok(Staged { applied: self.applied, since_persist: self.since_persist })
    }

    /// The quick half: swaps the staged folder in and records its position.
    pub fn commit_snapshot(&mut self, c: &Connection, segment_id: &str, staged: Staged) -> Result<()> {
        let tmp = side(&self.folder, ".tmp");
        let old = side(&self.folder, ".old");
        if self.folder.exists() {
            fs::rename(&self.folder, &old).map_err(|e| Error::io(&self.folder, e))?;
        }
        fs::rename(&tmp, &self.folder).map_err(|e| Error::io(&tmp, e))?;
        if let Some(parent) = self.folder.parent() {
            sync_dir(parent)?;
        }
        if old.exists() {
            fs::remove_dir_all(&old).map_err(|e| Error::io(&old, e))?;
        }
        crate::meta::set_max_seq_id(c, segment_id, staged.applied)
            .map_err(|e| Error::Internal(format!("recording HNSW position: {e}")))?;
        self.persisted = staged.applied;
        // Entries applied while the files were written are not in this snapshot.
        self.since_persist = self.since_persist.saturating_sub(staged.since_persist);
        self.loaded_from = folder_identity(&self.folder);
        Ok(())
    }

    /// Whether the in-memory index holds changes the snapshot lacks.
    #[must_use]
    pub fn dirty(&self) -> bool {
        self.applied > self.persisted
    }
}

fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        fs::File::open(dir).and_then(|f| f.sync_all()).map_err(|e| Error::io(dir, e))?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Each record's vector as the log says, replayed in order with chromadb's rules: an `add` of an
/// id that already has a vector is ignored (until a `delete`), `upsert` and `update` replace it.
///
/// An `update` of an id the replay has not seen is ambiguous: chromadb logs updates of missing ids
/// (and ignores them), but after a purge the record's `add` may simply be gone. `complete` says
/// the log still holds every entry of the collection (no HNSW position was ever recorded, so
/// neither chromadb's purge nor chromalite's retention removed anything): then such an update is
/// the no-op it was. Otherwise it counts, as the record was most likely live when it was logged.
fn effective_vectors(
    c: &Connection,
    collection_id: &str,
    upto: i64,
    complete: bool,
) -> rusqlite::Result<HashMap<String, Vec<u8>>> {
    let mut stmt = c.prepare(
        "SELECT operation, id, vector FROM embeddings_queue WHERE topic = ?1 AND seq_id <= ?2 ORDER BY seq_id",
    )?;
    let mut rows = stmt.query(params![crate::log::topic(collection_id), upto])?;
    let mut out: HashMap<String, Vec<u8>> = HashMap::new();
    while let Some(row) = rows.next()? {
        let (code, id): (i64, String) = (row.get(0)?, row.get(1)?);
        let vector: Option<Vec<u8>> = row.get(2)?;
        match (Op::from_code(code), vector) {
            (Some(Op::Delete), _) => {
                out.remove(&id);
            }
            (Some(Op::Add), Some(v)) => {
                out.entry(id).or_insert(v);
            }
            (Some(Op::Update), Some(v)) if !complete || out.contains_key(&id) => {
                out.insert(id, v);
            }
            (Some(Op::Upsert), Some(v)) => {
                out.insert(id, v);
            }
            _ => {}
        }
    }
    Ok(out)
}

/// What a staged snapshot holds (see [`VectorSegment::stage_snapshot`]).
#[derive(Debug, Clone, Copy)]
pub struct Staged {
    applied: i64,
    since_persist: usize,
}

/// Rebuilds an index from the log: for every live record of the metadata segment, the newest
/// retained entry carrying its vector (up to `upto`). Returns the segment and the ids whose vector
/// the log no longer holds (Chroma's purge removes them once a snapshot exists). `complete`: no
/// HNSW position was ever recorded, so nothing was purged (see `effective_vectors`).
#[allow(clippy::too_many_arguments)]
pub fn rebuild(
    c: &Connection,
    folder: PathBuf,
    dim: usize,
    cfg: &HnswConfig,
    collection_id: &str,
    metadata_segment: &str,
    upto: i64,
    complete: bool,
) -> Result<(VectorSegment, Vec<String>)> {
    let mut seg = VectorSegment::empty(folder, dim, cfg);
    let db_err = |e: rusqlite::Error| Error::Internal(format!("rebuilding HNSW segment: {e}"));
    let latest = effective_vectors(c, collection_id, upto, complete).map_err(db_err)?;
    let mut stmt =
        c.prepare("SELECT embedding_id FROM embeddings WHERE segment_id = ?1 ORDER BY id").map_err(db_err)?;
    let live = stmt.query_map([metadata_segment], |r| r.get::<_, String>(0)).map_err(db_err)?;
    let mut batch = Vec::new();
    let mut missing = Vec::new();
    for id in live {
        let id = id.map_err(db_err)?;
        match latest.get(&id).filter(|b| b.len() == dim * 4) {
            Some(b) => {
                let v: Vec<f32> = b.chunks_exact(4).map(|x| f32::from_le_bytes([x[0], x[1], x[2], x[3]])).collect();
                batch.push((seg.ids.assign_label(&id), v));
            }
            None => missing.push(id),
        }
    }
    seg.index.resize(batch.len().max(1).next_power_of_two()).map_err(|e| hnsw_error(&seg.folder, e))?;
    seg.index.insert_batch(&batch).map_err(|e| hnsw_error(&seg.folder, e))?;
    seg.applied = upto;
    seg.since_persist = batch.len();
    Ok((seg, missing))
}
