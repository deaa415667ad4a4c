//! [`SqliteBackend`]: the [`VectorBackend`] over a Chroma persist directory.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use chromalite_core::metadata::strip_nulls;
use chromalite_core::validate::{self, WriteOp};
use chromalite_core::{
    CollectionConfig, CollectionInfo, CreateCollection, Database, DatabaseRef, DeleteRequest, Error, GetRequest,
    GetResult, Include, ModifyCollection, QueryRequest, QueryResult, Record, RecordBatch, Result, Selection, Tenant,
    VectorBackend,
};
use rusqlite::{Connection, TransactionBehavior};

use crate::conn::{self, Pool};
use crate::lock::WriterLock;
use crate::log::{self, Entry, Logged, Op};
use crate::sysdb::{self, Collection, Filter};
use crate::vector::{self, VectorSegment};
use crate::{filter, meta};

/// How a directory is opened.
#[derive(Debug, Clone)]
pub struct Options {
    /// Open without the writer lock; every write fails with `ReadOnly`. Any number of read-only
    /// handles (in any process) may run beside one writer.
    pub read_only: bool,
    /// How long to wait for another writer to release the directory before failing with `Locked`.
    pub lock_wait: Duration,
    /// Maximum pooled reader connections.
    pub pool_size: u32,
}

impl Default for Options {
    fn default() -> Self {
        Options { read_only: false, lock_wait: Duration::from_secs(5), pool_size: 4 }
    }
}

/// One collection's vector segment, loaded on first use.
#[derive(Default)]
struct Slot {
    seg: Option<VectorSegment>,
    /// Live ids whose vector could not be recovered when the segment was rebuilt.
    missing: HashSet<String>,
}

/// A Chroma 1.x persist directory (`chroma.sqlite3` + HNSW segment folders).
///
/// See the crate documentation for the guarantees. All methods take `&self`; share it in an `Arc`.
pub struct SqliteBackend {
    dir: PathBuf,
    db_path: PathBuf,
    pool: Pool,
    writer: Option<Mutex<Connection>>,
    vectors: Arc<Vectors>,
    /// Applies committed writes to the vector segments off the caller's thread (writers only).
    applier: Option<Applier>,
    _lock: Option<WriterLock>,
}

/// The in-memory vector segments of a store, shared with the background applier.
struct Vectors {
    dir: PathBuf,
    db_path: PathBuf,
    read_only: bool,
    /// One lock per collection's vector segment: searches share it, writes and reloads take it.
    slots: Mutex<HashMap<String, Arc<RwLock<Slot>>>>,
}

/// While a writer streams batches faster than they are indexed, snapshots are taken every this
/// many `sync_threshold`s instead of every one. A snapshot rewrites the whole index, so during a
/// bulk import taking one per `sync_threshold` costs time quadratic in the collection size, and
/// each is superseded a moment later. The log, not the snapshot, makes writes durable; the bound
/// only caps how much log a restart (ours or Chroma's) replays. As soon as the writer pauses, the
/// next applied batch snapshots at the normal threshold, and close/flush always snapshot.
const BURST_SNAPSHOT_FACTOR: usize = 10;

/// Work for the applier thread.
enum Job {
    Apply(Box<Collection>, Vec<Logged>),
    /// Answered once every earlier job is done.
    Barrier(std::sync::mpsc::Sender<()>),
}

/// A thread that applies committed log entries to vector segments (HNSW insert and, every
/// `sync_threshold` records, a snapshot), so a writer's next batch goes into `SQLite` while the
/// previous one is indexed. Reads never depend on it: they catch up from the log themselves, and
/// entries already applied are skipped. The queue is short, so a writer cannot run far ahead.
struct Applier {
    /// Apply jobs submitted and not finished yet.
    queued: Arc<std::sync::atomic::AtomicUsize>,
    jobs: Option<std::sync::mpsc::SyncSender<Job>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Applier {
    fn start(vectors: Arc<Vectors>, pool: Pool) -> Applier {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Job>(2);
        let queued = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = Arc::clone(&queued);
        let thread = std::thread::Builder::new()
            .name("chromalite-hnsw-applier".into())
            .spawn(move || {
                for job in rx {
                    match job {
                        Job::Apply(col, logged) => {
                            let backlog = counter.load(std::sync::atomic::Ordering::Acquire) > 1;
                            // Failures leave the entries in the log; the next reader or write
                            // reloads the segment and catches up, so nothing is lost.
                            if let Ok(c) = pool.get() {
                                let _ = vectors.apply_vector(&c, &col, &logged, backlog);
                            }
                            counter.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
                        }
                        Job::Barrier(done) => {
                            let _ = done.send(());
                        }
                    }
                }
            })
            .ok();
        Applier { jobs: thread.as_ref().map(|_| tx), thread, queued }
    }

    /// Queues entries; `false` when the thread is gone (the caller then applies them itself).
    fn submit(&self, col: &Collection, logged: Vec<Logged>) -> std::result::Result<(), Vec<Logged>> {
        let Some(tx) = &self.jobs else { return Err(logged) };
        self.queued.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        tx.send(Job::Apply(Box::new(col.clone()), logged)).map_err(|e| {
            self.queued.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
            match e.0 {
                Job::Apply(_, l) => l,
                Job::Barrier(_) => Vec::new(),
            }
        })
    }

    /// Waits until every queued job is done.
    fn wait_idle(&self) {
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        if self.jobs.as_ref().is_some_and(|tx| tx.send(Job::Barrier(done_tx)).is_ok()) {
            let _ = done_rx.recv();
        }
    }
}

impl Drop for Applier {
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section leaves its data consistent before it can panic (the vector segment
    // is reloaded from disk when in doubt), so a poisoned lock is safe to reuse.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn write_slot(s: &RwLock<Slot>) -> RwLockWriteGuard<'_, Slot> {
    // Same reasoning as `lock`: a poisoned slot is consistent or gets reloaded.
    s.write().unwrap_or_else(PoisonError::into_inner)
}

fn read_slot(s: &RwLock<Slot>) -> RwLockReadGuard<'_, Slot> {
    s.read().unwrap_or_else(PoisonError::into_inner)
}

impl SqliteBackend {
    /// Opens (creating if missing) `dir` as the single writer.
    pub fn open(dir: impl AsRef<Path>) -> Result<SqliteBackend> {
        Self::open_with(dir, &Options::default())
    }

    /// Opens `dir` for reading only, without taking the writer lock.
    pub fn open_read_only(dir: impl AsRef<Path>) -> Result<SqliteBackend> {
        Self::open_with(dir, &Options { read_only: true, ..Options::default() })
    }

    /// Opens `dir` with explicit options.
    pub fn open_with(dir: impl AsRef<Path>, opts: &Options) -> Result<SqliteBackend> {
        let dir = dir.as_ref().to_path_buf();
        let db_path = conn::db_path(&dir);
        if opts.read_only {
            if !db_path.exists() {
                return Err(Error::not_found("persist directory", db_path.display().to_string()));
            }
            conn::open_reader(&db_path)?;
            let pool = conn::open_pool(&db_path, opts.pool_size)?;
            let vectors = Arc::new(Vectors {
                dir: dir.clone(),
                db_path: db_path.clone(),
                read_only: true,
                slots: Mutex::default(),
            });
            return Ok(SqliteBackend { dir, db_path, pool, writer: None, vectors, applier: None, _lock: None });
        }
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let lock = WriterLock::acquire(&dir, opts.lock_wait)?;
        let writer = conn::open_writer(&db_path)?;
        let pool = conn::open_pool(&db_path, opts.pool_size)?;
        let vectors =
            Arc::new(Vectors { dir: dir.clone(), db_path: db_path.clone(), read_only: false, slots: Mutex::default() });
        let applier = Some(Applier::start(Arc::clone(&vectors), pool.clone()));
        let backend =
            SqliteBackend { dir, db_path, pool, writer: Some(Mutex::new(writer)), vectors, applier, _lock: Some(lock) };
        backend.recover()?;
        Ok(backend)
    }

    /// The persist directory.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Whether this handle may write.
    #[must_use]
    pub fn is_read_only(&self) -> bool {
        self.writer.is_none()
    }

    fn db_file(&self) -> String {
        self.db_path.display().to_string()
    }

    fn sql(&self) -> impl Fn(rusqlite::Error) -> Error + '_ {
        conn::sql_err(&self.db_path)
    }

    fn writer(&self) -> Result<MutexGuard<'_, Connection>> {
        self.writer
            .as_ref()
            .map(lock)
            .ok_or_else(|| Error::ReadOnly { reason: format!("{} was opened read-only", self.dir.display()) })
    }

    /// Runs `f` in one read transaction on a pooled connection, so it sees one consistent state.
    fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let c = self
            .pool
            .get()
            .map_err(|e| Error::Unavailable { message: format!("sqlite pool: {e}"), retry_after: None })?;
        c.execute_batch("BEGIN").map_err(self.sql())?;
        let out = f(&c);
        let _ = c.execute_batch(if out.is_ok() { "COMMIT" } else { "ROLLBACK" });
        out
    }

    /// Runs `f` in one immediate write transaction on the writer connection.
    fn write<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let mut c = self.writer()?;
        let tx = c.transaction_with_behavior(TransactionBehavior::Immediate).map_err(self.sql())?;
        let out = f(&tx)?;
        tx.commit().map_err(self.sql())?;
        Ok(out)
    }

    /// After a crash: finish interrupted snapshot swaps and bring every metadata segment up to the
    /// log (Chroma commits the log and the metadata segment separately).
    fn recover(&self) -> Result<()> {
        let cols = self.read(|c| {
            let mut stmt = c.prepare("SELECT id FROM collections").map_err(self.sql())?;
            let ids = stmt.query_map([], |r| r.get::<_, String>(0)).map_err(self.sql())?;
            let ids: Vec<String> = ids.collect::<rusqlite::Result<_>>().map_err(self.sql())?;
            ids.iter().map(|id| load_one(c, &self.db_file(), id)).collect::<Result<Vec<_>>>()
        })?;
        for col in cols {
            vector::recover_folder(&self.dir.join(&col.vector_segment))?;
            self.write(|c| catch_up_metadata(c, &self.db_file(), &col))?;
        }
        Ok(())
    }

    /// Loads the collection row fresh (another process may have changed it).
    fn collection(&self, c: &Connection, col: &CollectionInfo) -> Result<Collection> {
        sysdb::load_collections(c, &self.db_file(), &Filter::ById(&col.id))?
            .pop()
            .ok_or_else(|| Error::not_found("collection", &col.name))
    }

    fn check_database(&self, c: &Connection, db: &DatabaseRef) -> Result<String> {
        if !sysdb::tenant_exists(c, &db.tenant).map_err(self.sql())? {
            return Err(Error::not_found("tenant", &db.tenant));
        }
        sysdb::database_id(c, db).map_err(self.sql())?.ok_or_else(|| Error::not_found("database", &db.database))
    }

    fn find_by_name(&self, c: &Connection, db: &DatabaseRef, name: &str) -> Result<Option<Collection>> {
        self.check_database(c, db)?;
        Ok(sysdb::load_collections(c, &self.db_file(), &Filter::ByName(db, name))?.pop())
    }
}

fn load_one(c: &Connection, db_file: &str, id: &str) -> Result<Collection> {
    sysdb::load_collections(c, db_file, &Filter::ById(id))?.pop().ok_or_else(|| Error::not_found("collection", id))
}

/// Applies log entries the metadata segment has not seen yet.
fn catch_up_metadata(c: &Connection, db_file: &str, col: &Collection) -> Result<()> {
    let from = meta::max_seq_id(c, &col.metadata_segment).map_err(|e| Error::Internal(e.to_string()))?;
    let pending = log::read_after(c, db_file, &col.info.id, from)?;
    if pending.is_empty() {
        return Ok(());
    }
    let refs: Vec<(i64, &Entry)> = pending.iter().map(|l| (l.seq_id, &l.entry)).collect();
    apply_metadata(c, col, &refs).map_err(|e| Error::Internal(format!("applying log to metadata segment: {e}")))
}

/// Applies entries to the metadata segment and keeps `schema_str` in step with new keys.
fn apply_metadata(c: &Connection, col: &Collection, entries: &[(i64, &Entry)]) -> rusqlite::Result<()> {
    let mut schema = col.schema.clone();
    let mut changed = false;
    let mut note = |key: &str, ty: &str| {
        if let Some(s) = schema.as_mut() {
            changed |= sysdb::schema_note_key(s, key, ty);
        }
    };
    meta::apply(c, &col.metadata_segment, entries, &mut note)?;
    match schema {
        Some(s) if changed => sysdb::set_schema(c, &col.info.id, &s),
        _ => Ok(()),
    }
}

// ---------------------------------------------------------------------------------------------
// Vector segment management
// ---------------------------------------------------------------------------------------------

impl Vectors {
    fn slot(&self, collection_id: &str) -> Arc<RwLock<Slot>> {
        Arc::clone(lock(&self.slots).entry(collection_id.to_owned()).or_default())
    }

    fn db_file(&self) -> String {
        self.db_path.display().to_string()
    }

    fn sql(&self) -> impl Fn(rusqlite::Error) -> Error + '_ {
        conn::sql_err(&self.db_path)
    }

    fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// Makes the collection's vector segment current with the log, loading or rebuilding it first.
    /// Readers also pick up snapshots another process has written since.
    fn ensure_vector(&self, c: &Connection, col: &Collection, slot: &mut Slot) -> Result<()> {
        let Some(dim) = col.info.dimension else { return Ok(()) };
        let row = meta::max_seq_id(c, &col.vector_segment).map_err(self.sql())?;
        let stale = slot.seg.as_ref().is_some_and(|s| self.is_read_only() && row > s.applied);
        if slot.seg.is_none() || stale {
            let (seg, missing) = self.load_vector(c, col, dim, row)?;
            slot.seg = Some(seg);
            slot.missing = missing.into_iter().collect();
        }
        let Some(seg) = slot.seg.as_mut() else { return Ok(()) };
        let pending = log::read_after(c, &self.db_file(), &col.info.id, seg.applied)?;
        seg.apply(&pending)
    }

    /// The snapshot on disk, or a rebuild from the log when there is none or it is damaged.
    fn load_vector(
        &self,
        c: &Connection,
        col: &Collection,
        dim: usize,
        row: i64,
    ) -> Result<(VectorSegment, Vec<String>)> {
        let folder = self.dir.join(&col.vector_segment);
        let cfg = &col.info.config.hnsw;
        for _ in 0..3 {
            match VectorSegment::load(&folder, dim, cfg, row) {
                Ok(Some(seg)) => return Ok((seg, Vec::new())),
                // Another process swapped the folder while we read it: read it again.
                Err(e) if e.kind() == chromalite_core::ErrorKind::Unavailable => {}
                // No snapshot, or a damaged one (it is only a cache): rebuild from the log.
                Ok(None) | Err(_) => break,
            }
        }
        let upto = meta::max_seq_id(c, &col.metadata_segment).map_err(self.sql())?;
        vector::rebuild(c, folder, dim, cfg, &col.info.id, &col.metadata_segment, upto, row == 0)
    }

    /// Applies freshly committed entries to the vector segment; snapshots every `sync_threshold`
    /// records, or, while `backlog` says more writes are already queued, every
    /// `BURST_SNAPSHOT_FACTOR * sync_threshold` (see there).
    fn apply_vector(&self, c: &Connection, col: &Collection, entries: &[Logged], backlog: bool) -> Result<()> {
        let shared = self.slot(&col.info.id);
        let mut slot = write_slot(&shared);
        let result = self.ensure_vector(c, col, &mut slot).and_then(|()| match slot.seg.as_mut() {
            Some(seg) => seg.apply(entries),
            None => Ok(()),
        });
        if let Err(e) = result {
            // The log holds the write; reload the segment from disk and log on next use.
            slot.seg = None;
            return Err(e);
        }
        let threshold = col.info.config.hnsw.sync_threshold.max(1);
        let every = if backlog { threshold * BURST_SNAPSHOT_FACTOR } else { threshold };
        let due = slot.seg.as_ref().is_some_and(|s| s.since_persist >= every);
        drop(slot);
        if due {
            self.snapshot_beside_readers(c, col, &shared)?;
        }
        Ok(())
    }

    /// Takes a snapshot while queries keep running: the files are written under the shared lock
    /// (writing a 100 MB index takes a while), only the folder swap takes the segment exclusively.
    fn snapshot_beside_readers(&self, c: &Connection, col: &Collection, shared: &RwLock<Slot>) -> Result<()> {
        let staged = match read_slot(shared).seg.as_ref() {
            Some(seg) => seg.stage_snapshot()?,
            None => return Ok(()),
        };
        let mut slot = write_slot(shared);
        let Some(seg) = slot.seg.as_mut() else { return Ok(()) };
        seg.commit_snapshot(c, &col.vector_segment, staged)?;
        let persisted = seg.persisted;
        self.purge_log(c, col, persisted)
    }

    /// Purges the log below what both segments hold, if the store purges automatically.
    fn purge_log(&self, c: &Connection, col: &Collection, vector_position: i64) -> Result<()> {
        if log::auto_purge(c).map_err(self.sql())? {
            let mt = meta::max_seq_id(c, &col.metadata_segment).map_err(self.sql())?;
            log::purge(c, &col.info.id, &col.metadata_segment, mt.min(vector_position)).map_err(self.sql())?;
        }
        Ok(())
    }

    /// Writes the segment's snapshot and purges the log below what both segments hold.
    fn persist_slot(&self, c: &Connection, col: &Collection, slot: &mut Slot) -> Result<()> {
        let Some(seg) = slot.seg.as_mut() else { return Ok(()) };
        seg.persist(c, &col.vector_segment)?;
        let persisted = seg.persisted;
        self.purge_log(c, col, persisted)
    }
}

impl SqliteBackend {
    /// Persists every vector segment holding unsaved changes (after queued applies finish).
    fn flush_all(&self) -> Result<()> {
        if let Some(a) = &self.applier {
            a.wait_idle();
        }
        let c = self.writer()?;
        let slots: Vec<(String, Arc<RwLock<Slot>>)> =
            lock(&self.vectors.slots).iter().map(|(k, v)| (k.clone(), Arc::clone(v))).collect();
        for (id, slot) in slots {
            let mut slot = write_slot(&slot);
            if !slot.seg.as_ref().is_some_and(VectorSegment::dirty) {
                continue;
            }
            let Ok(col) = load_one(&c, &self.db_file(), &id) else { continue };
            self.vectors.persist_slot(&c, &col, &mut slot)?;
        }
        Ok(())
    }
}

impl Drop for SqliteBackend {
    fn drop(&mut self) {
        if self.writer.is_some() {
            // Best effort: the log already holds every write, a missed snapshot only costs replay.
            let _ = self.flush_all();
            drop(self.applier.take());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Writes
// ---------------------------------------------------------------------------------------------

fn batch_entries(batch: &RecordBatch, op: Op) -> Vec<Entry> {
    batch
        .ids
        .iter()
        .enumerate()
        .map(|(i, id)| Entry {
            op,
            id: id.clone(),
            vector: batch.embeddings.as_ref().and_then(|e| e.get(i)).cloned(),
            metadata: batch.metadatas.as_ref().and_then(|m| m.get(i)).cloned().flatten().unwrap_or_default(),
            document: batch.documents.as_ref().and_then(|d| d.get(i)).cloned().flatten(),
        })
        .collect()
}

/// Drops the entries chromadb would ignore: `add` of an id that exists, `update` of one that does
/// not. Chroma logs them anyway; not logging them keeps "the newest logged vector of a record is
/// its vector" true, which log retention and rebuilds rely on (an ignored add carries a vector
/// the record never had).
fn effective_entries(c: &Connection, metadata_segment: &str, entries: Vec<Entry>) -> rusqlite::Result<Vec<Entry>> {
    let mut exists = c.prepare_cached("SELECT 1 FROM embeddings WHERE segment_id = ?1 AND embedding_id = ?2")?;
    let mut out = Vec::with_capacity(entries.len());
    for e in entries {
        let keep = match e.op {
            Op::Add => !exists.exists(rusqlite::params![metadata_segment, e.id])?,
            Op::Update => exists.exists(rusqlite::params![metadata_segment, e.id])?,
            Op::Upsert | Op::Delete => true,
        };
        if keep {
            out.push(e);
        }
    }
    Ok(out)
}

impl SqliteBackend {
    /// Appends entries to the log and applies them to the metadata segment in one transaction
    /// (durable when this returns), then to the vector segment.
    fn write_entries(
        &self,
        info: &CollectionInfo,
        entries: Vec<Entry>,
        check: impl FnOnce(&Collection) -> Result<()>,
    ) -> Result<()> {
        let mut c = self.writer()?;
        let tx = c.transaction_with_behavior(TransactionBehavior::Immediate).map_err(self.sql())?;
        let mut col = self.collection(&tx, info)?;
        check(&col)?;
        if entries.is_empty() {
            return Ok(());
        }
        if col.info.dimension.is_none() {
            if let Some(d) = entries.iter().find_map(|e| e.vector.as_ref().map(Vec::len)) {
                sysdb::set_dimension(&tx, &col.info.id, d).map_err(self.sql())?;
                col.info.dimension = Some(d);
            }
        }
        let entries = effective_entries(&tx, &col.metadata_segment, entries).map_err(self.sql())?;
        if entries.is_empty() {
            tx.commit().map_err(self.sql())?;
            return Ok(());
        }
        let seqs = log::append(&tx, &col.info.id, &entries).map_err(self.sql())?;
        let refs: Vec<(i64, &Entry)> = seqs.iter().copied().zip(entries.iter()).collect();
        apply_metadata(&tx, &col, &refs).map_err(self.sql())?;
        tx.commit().map_err(self.sql())?;
        let logged: Vec<Logged> =
            seqs.into_iter().zip(entries).map(|(seq_id, entry)| Logged { seq_id, entry }).collect();
        let logged = match &self.applier {
            Some(a) => match a.submit(&col, logged) {
                Ok(()) => return Ok(()),
                Err(back) => back,
            },
            None => logged,
        };
        self.vectors.apply_vector(&c, &col, &logged, false)
    }

    fn write_batch(&self, info: &CollectionInfo, batch: &RecordBatch, op: WriteOp) -> Result<()> {
        let code = match op {
            WriteOp::Add => Op::Add,
            WriteOp::Upsert => Op::Upsert,
            WriteOp::Update => Op::Update,
        };
        self.write_entries(info, batch_entries(batch, code), |col| {
            validate::record_batch(batch, op, col.info.dimension)
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Reads
// ---------------------------------------------------------------------------------------------

/// Offset id and user id of the selected records, in Chroma's order (first insertion).
fn select(
    c: &Connection,
    col: &Collection,
    sel: &Selection,
    limit: Option<usize>,
    offset: usize,
) -> rusqlite::Result<Vec<(i64, String)>> {
    let mut f = filter::SqlFilter::default();
    f.params.push(rusqlite::types::Value::Text(col.metadata_segment.clone()));
    let mut sql = String::from("SELECT DISTINCT e.id, e.embedding_id FROM embeddings e WHERE e.segment_id = ?1");
    if let Some(ids) = &sel.ids {
        f.params.push(rusqlite::types::Value::Text(serde_json::to_string(ids).unwrap_or_else(|_| "[]".into())));
        let _ = write!(sql, " AND e.embedding_id IN (SELECT value FROM json_each(?{}))", f.params.len());
    }
    if let Some(w) = &sel.where_ {
        let expr = filter::where_sql(&mut f, w);
        let _ = write!(sql, " AND {expr}");
    }
    if let Some(d) = &sel.where_document {
        let expr = filter::document_sql(&mut f, d);
        let _ = write!(sql, " AND {expr}");
    }
    let lim = limit.map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX));
    let _ = write!(sql, " ORDER BY e.id LIMIT {lim} OFFSET {}", i64::try_from(offset).unwrap_or(i64::MAX));
    let mut stmt = c.prepare(&sql)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(f.params.iter()), |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}

impl SqliteBackend {
    /// Builds records for `rows` with the fields `include` asks for.
    fn records(
        &self,
        c: &Connection,
        col: &Collection,
        rows: &[(i64, String)],
        include: &[Include],
    ) -> Result<Vec<Record>> {
        let want_meta = include.contains(&Include::Metadatas);
        let want_doc = include.contains(&Include::Documents);
        let offsets: Vec<i64> = rows.iter().map(|r| r.0).collect();
        let mut stored = if want_meta || want_doc {
            meta::hydrate(c, &offsets, !want_meta).map_err(self.sql())?
        } else {
            HashMap::new()
        };
        let vectors = if include.contains(&Include::Embeddings) { Some(self.vectors_of(c, col, rows)?) } else { None };
        Ok(rows
            .iter()
            .enumerate()
            .map(|(i, (off, id))| {
                let s = stored.remove(off).unwrap_or_default();
                Record {
                    id: id.clone(),
                    embedding: vectors.as_ref().and_then(|v| v.get(i).cloned()),
                    document: s.document.filter(|_| want_doc),
                    metadata: s.metadata.filter(|_| want_meta),
                }
            })
            .collect())
    }

    /// The stored vectors of `rows`, from the (caught-up) HNSW segment.
    fn vectors_of(&self, c: &Connection, col: &Collection, rows: &[(i64, String)]) -> Result<Vec<Vec<f32>>> {
        let slot = self.vectors.slot(&col.info.id);
        let mut slot = write_slot(&slot);
        self.vectors.ensure_vector(c, col, &mut slot)?;
        let folder = self.dir.join(&col.vector_segment);
        let lost = |id: &str| {
            Error::corrupt(
                folder.display().to_string(),
                format!("vector of {id:?}"),
                "not in the HNSW snapshot nor in the log",
            )
        };
        let Some(seg) = slot.seg.as_ref() else {
            return rows.first().map_or(Ok(Vec::new()), |(_, id)| Err(lost(id)));
        };
        rows.iter()
            .map(|(_, id)| {
                seg.ids.id_to_label.get(id).and_then(|l| seg.index.get_original_vector(*l)).ok_or_else(|| lost(id))
            })
            .collect()
    }

    /// Nearest neighbours of each query among the allowed labels (all when `allowed` is None).
    fn search(
        &self,
        c: &Connection,
        col: &Collection,
        req: &QueryRequest,
        allowed: Option<&HashSet<String>>,
    ) -> Result<Vec<Vec<(String, f32)>>> {
        let slot = self.vectors.slot(&col.info.id);
        // Catching up with the log needs the segment exclusively, but only when the log holds
        // something the segment lacks; otherwise the search runs under the shared lock alone, so
        // concurrent queries, and a snapshot being written, do not wait for each other.
        let current = {
            let shared = read_slot(&slot);
            !self.is_read_only()
                && shared.seg.as_ref().is_some_and(|seg| !log::has_after(c, &col.info.id, seg.applied).unwrap_or(true))
        };
        if !current {
            self.vectors.ensure_vector(c, col, &mut write_slot(&slot))?;
        }
        let slot = read_slot(&slot);
        let Some(seg) = slot.seg.as_ref() else { return Ok(vec![Vec::new(); req.embeddings.len()]) };
        let labels: Option<HashSet<u64>> =
            allowed.map(|ids| ids.iter().filter_map(|id| seg.ids.id_to_label.get(id).copied()).collect());
        let pred = labels.as_ref().map(|set| move |l: u64| set.contains(&l));
        let filter: Option<&(dyn Fn(u64) -> bool + Sync)> = pred.as_ref().map(|p| p as &(dyn Fn(u64) -> bool + Sync));
        let hits = seg
            .index
            .search_batch(&req.embeddings, req.n_results, filter)
            .map_err(|e| vector::hnsw_error(&seg.folder, e))?;
        Ok(hits
            .into_iter()
            .map(|q| q.into_iter().filter_map(|(l, d)| seg.ids.label_to_id.get(&l).map(|id| (id.clone(), d))).collect())
            .collect())
    }
}

// ---------------------------------------------------------------------------------------------
// The trait
// ---------------------------------------------------------------------------------------------

impl VectorBackend for SqliteBackend {
    fn kind(&self) -> &'static str {
        "sqlite"
    }

    fn heartbeat(&self) -> Result<u64> {
        self.read(|c| c.query_row("SELECT 1", [], |_| Ok(())).map_err(self.sql()))?;
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        Ok(u64::try_from(now.as_nanos()).unwrap_or(u64::MAX))
    }

    fn create_tenant(&self, name: &str) -> Result<()> {
        validate::tenant_or_database_name("tenant", name)?;
        let created = self.write(|c| sysdb::create_tenant(c, name).map_err(self.sql()))?;
        if created {
            Ok(())
        } else {
            Err(Error::already_exists("tenant", name))
        }
    }

    fn get_tenant(&self, name: &str) -> Result<Tenant> {
        let exists = self.read(|c| sysdb::tenant_exists(c, name).map_err(self.sql()))?;
        if exists {
            Ok(Tenant { name: name.to_owned() })
        } else {
            Err(Error::not_found("tenant", name))
        }
    }

    fn create_database(&self, db: &DatabaseRef) -> Result<()> {
        validate::tenant_or_database_name("database", &db.database)?;
        // chromadb does not check the tenant here: the row is written under the tenant name.
        self.write(|c| {
            if sysdb::create_database(c, db).map_err(self.sql())? {
                Ok(())
            } else {
                Err(Error::already_exists("database", &db.database))
            }
        })
    }

    fn get_database(&self, db: &DatabaseRef) -> Result<Database> {
        let id = self.read(|c| self.check_database(c, db))?;
        Ok(Database { id, name: db.database.clone(), tenant: db.tenant.clone() })
    }

    fn list_databases(&self, tenant: &str, limit: Option<usize>, offset: usize) -> Result<Vec<Database>> {
        // As chromadb: the databases recorded under that tenant name, whether or not it exists.
        self.read(|c| sysdb::list_databases(c, tenant, limit, offset).map_err(self.sql()))
    }

    fn delete_database(&self, db: &DatabaseRef) -> Result<()> {
        let removed = self.write(|c| {
            let db_id = self.check_database(c, db)?;
            let mut removed = Vec::new();
            for id in sysdb::collection_ids_in_database(c, &db_id).map_err(self.sql())? {
                let col = load_one(c, &self.db_file(), &id)?;
                sysdb::delete_collection_rows(c, &col).map_err(self.sql())?;
                removed.push(col);
            }
            sysdb::delete_database_row(c, &db_id).map_err(self.sql())?;
            Ok(removed)
        })?;
        for col in removed {
            self.forget(&col);
        }
        Ok(())
    }

    fn create_collection(&self, db: &DatabaseRef, req: &CreateCollection) -> Result<CollectionInfo> {
        validate::collection_name(&req.name)?;
        if let Some(m) = &req.metadata {
            validate::collection_metadata(m)?;
        }
        let config = CollectionConfig::resolve(req.configuration.as_ref(), req.metadata.as_ref())?;
        self.write(|c| {
            if let Some(existing) = self.find_by_name(c, db, &req.name)? {
                if req.get_or_create {
                    return Ok(existing.info);
                }
                return Err(Error::already_exists("collection", &req.name));
            }
            let database_id = self.check_database(c, db)?;
            let new = sysdb::NewCollection {
                db,
                database_id: &database_id,
                name: &req.name,
                metadata: req.metadata.as_ref(),
                config: &config,
            };
            let id = sysdb::insert_collection(c, &new).map_err(self.sql())?;
            Ok(load_one(c, &self.db_file(), &id)?.info)
        })
    }

    fn get_collection(&self, db: &DatabaseRef, name: &str) -> Result<CollectionInfo> {
        self.read(|c| {
            self.find_by_name(c, db, name)?.map(|col| col.info).ok_or_else(|| Error::not_found("collection", name))
        })
    }

    fn list_collections(&self, db: &DatabaseRef, limit: Option<usize>, offset: usize) -> Result<Vec<CollectionInfo>> {
        self.read(|c| {
            self.check_database(c, db)?;
            Ok(sysdb::load_collections(c, &self.db_file(), &Filter::InDatabase(db, limit, offset))?
                .into_iter()
                .map(|c| c.info)
                .collect())
        })
    }

    fn count_collections(&self, db: &DatabaseRef) -> Result<usize> {
        Ok(self.list_collections(db, None, 0)?.len())
    }

    fn modify_collection(&self, db: &DatabaseRef, name: &str, req: &ModifyCollection) -> Result<()> {
        if let Some(n) = &req.new_name {
            validate::collection_name(n)?;
        }
        if let Some(m) = &req.new_metadata {
            validate::modify_metadata(m)?;
        }
        let ef = self.write(|c| {
            let col = self.find_by_name(c, db, name)?.ok_or_else(|| Error::not_found("collection", name))?;
            if let Some(n) = req.new_name.as_ref().filter(|n| *n != name) {
                if self.find_by_name(c, db, n)?.is_some() {
                    return Err(Error::already_exists("collection", n));
                }
                sysdb::rename_collection(c, &col.info.id, n).map_err(self.sql())?;
            }
            if let Some(m) = &req.new_metadata {
                sysdb::write_collection_metadata(c, &col.info.id, &strip_nulls(m)).map_err(self.sql())?;
            }
            match &req.new_configuration {
                Some(cfg) => self.modify_config(c, &col, cfg).map(|ef| Some((col.info.id.clone(), ef))),
                None => Ok(None),
            }
        })?;
        if let Some((id, ef)) = ef {
            if let Some(seg) = write_slot(&self.vectors.slot(&id)).seg.as_mut() {
                seg.index.set_ef(ef);
            }
        }
        Ok(())
    }

    fn delete_collection(&self, db: &DatabaseRef, name: &str) -> Result<()> {
        let col = self.write(|c| {
            let col = self.find_by_name(c, db, name)?.ok_or_else(|| Error::not_found("collection", name))?;
            sysdb::delete_collection_rows(c, &col).map_err(self.sql())?;
            Ok(col)
        })?;
        self.forget(&col);
        Ok(())
    }

    fn add(&self, col: &CollectionInfo, batch: &RecordBatch) -> Result<()> {
        self.write_batch(col, batch, WriteOp::Add)
    }

    fn upsert(&self, col: &CollectionInfo, batch: &RecordBatch) -> Result<()> {
        self.write_batch(col, batch, WriteOp::Upsert)
    }

    fn update(&self, col: &CollectionInfo, batch: &RecordBatch) -> Result<()> {
        self.write_batch(col, batch, WriteOp::Update)
    }

    fn delete(&self, info: &CollectionInfo, selection: &Selection) -> Result<()> {
        self.delete_records(info, &DeleteRequest::new(selection.clone())).map(drop)
    }

    fn delete_records(&self, info: &CollectionInfo, req: &DeleteRequest) -> Result<usize> {
        validate::delete_request(req)?;
        let ids = self.read(|c| {
            let col = self.collection(c, info)?;
            select(c, &col, &req.selection, req.limit_usize(), 0).map_err(self.sql())
        })?;
        let deleted = req.ids_only().map_or(ids.len(), <[String]>::len);
        let entries = ids
            .into_iter()
            .map(|(_, id)| Entry {
                op: Op::Delete,
                id,
                vector: None,
                metadata: chromalite_core::UpdateMetadata::new(),
                document: None,
            })
            .collect();
        self.write_entries(info, entries, |_| Ok(()))?;
        Ok(deleted)
    }

    fn get(&self, info: &CollectionInfo, req: &GetRequest) -> Result<GetResult> {
        validate::get_request(req)?;
        let records = self.read(|c| {
            let col = self.collection(c, info)?;
            let rows = select(c, &col, &req.selection, req.limit, req.offset).map_err(self.sql())?;
            self.records(c, &col, &rows, &req.include)
        })?;
        Ok(GetResult::from_records(records, &req.include))
    }

    fn query(&self, info: &CollectionInfo, req: &QueryRequest) -> Result<QueryResult> {
        let hits = self.read(|c| {
            let col = self.collection(c, info)?;
            validate::embeddings(&req.embeddings, col.info.dimension)?;
            let allowed = if req.selection.is_empty() {
                None
            } else {
                let rows = select(c, &col, &req.selection, None, 0).map_err(self.sql())?;
                let live: HashSet<String> = rows.into_iter().map(|r| r.1).collect();
                validate::query_ids_exist(&req.selection, col.info.dimension, |id| live.contains(id))?;
                if live.is_empty() {
                    return Ok(vec![Vec::new(); req.embeddings.len()]);
                }
                Some(live)
            };
            let found = self.search(c, &col, req, allowed.as_ref())?;
            // Without a data loader chromadb answers `data` with the metadatas.
            let mut include = req.include.clone();
            if include.contains(&Include::Data) {
                include.push(Include::Metadatas);
            }
            self.hydrate_hits(c, &col, found, &include)
        })?;
        let mut result = QueryResult::new(&req.include);
        for q in hits {
            result.push(q);
        }
        Ok(result)
    }

    fn count(&self, info: &CollectionInfo) -> Result<usize> {
        self.read(|c| {
            let col = self.collection(c, info)?;
            meta::count(c, &col.metadata_segment).map_err(self.sql())
        })
    }

    fn flush(&self) -> Result<()> {
        if self.writer.is_none() {
            return Ok(());
        }
        self.flush_all()
    }
}

impl SqliteBackend {
    /// Adds documents, metadatas and embeddings to query hits.
    fn hydrate_hits(
        &self,
        c: &Connection,
        col: &Collection,
        found: Vec<Vec<(String, f32)>>,
        include: &[Include],
    ) -> Result<Vec<Vec<(Record, f32)>>> {
        let all: Vec<String> =
            found.iter().flatten().map(|h| h.0.clone()).collect::<HashSet<_>>().into_iter().collect();
        let rows = meta::offsets_of(c, &col.metadata_segment, &all).map_err(self.sql())?;
        let records = self.records(c, col, &rows, include)?;
        let by_id: HashMap<&str, &Record> = records.iter().map(|r| (r.id.as_str(), r)).collect();
        Ok(found
            .into_iter()
            .map(|q| q.into_iter().filter_map(|(id, d)| by_id.get(id.as_str()).map(|r| ((*r).clone(), d))).collect())
            .collect())
    }

    /// Applies a configuration change to `schema_str`; returns the new `ef_search`.
    fn modify_config(&self, c: &Connection, col: &Collection, new: &serde_json::Value) -> Result<usize> {
        let mut cfg = col.info.config.clone();
        cfg.apply_modify_json(new)?;
        if let Some(mut schema) = col.schema.clone() {
            let h = &cfg.hnsw;
            for ptr in [
                "/keys/#embedding/float_list/vector_index/config/hnsw",
                "/defaults/float_list/vector_index/config/hnsw",
            ] {
                if let Some(obj) = schema.pointer_mut(ptr).and_then(serde_json::Value::as_object_mut) {
                    obj.insert("ef_search".into(), h.ef_search.into());
                    obj.insert("max_neighbors".into(), h.max_neighbors.into());
                    obj.insert("sync_threshold".into(), h.sync_threshold.into());
                    obj.insert("resize_factor".into(), h.resize_factor.into());
                }
            }
            sysdb::set_schema(c, &col.info.id, &schema).map_err(self.sql())?;
        }
        Ok(cfg.hnsw.ef_search)
    }

    /// Drops a deleted collection's in-memory segment and its folder.
    fn forget(&self, col: &Collection) {
        if let Some(a) = &self.applier {
            a.wait_idle();
        }
        lock(&self.vectors.slots).remove(&col.info.id);
        let folder = self.dir.join(&col.vector_segment);
        for suffix in ["", ".tmp", ".old"] {
            let mut p = folder.clone().into_os_string();
            p.push(suffix);
            let _ = std::fs::remove_dir_all(PathBuf::from(p));
        }
    }
}
