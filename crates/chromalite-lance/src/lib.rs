//! A [`VectorBackend`] on [LanceDB](https://lancedb.com): one Lance table per collection.
//!
//! The persistent backend keeps each collection's HNSW graph in RAM, as Chroma does. This one
//! keeps records in Lance's columnar files and searches them from disk, exactly below a size
//! threshold and through a Lance vector index above it, for collections that outgrow memory. It
//! follows chromadb 1.5.9's semantics like every chromalite backend (it passes the same
//! conformance suite): same validation, same merge rules on `update`/`upsert`, same `get` order
//! (insertion order), same distances (computed by chromalite from the stored vectors).
//!
//! # Layout
//!
//! ```text
//! DIR/chromalite-lance.json                  tenants, databases, collections (name, metadata, configuration)
//! DIR/chromalite.lock                        the single-writer lock
//! DIR/<tenant>/<database>/<collection-id>.lance   one Lance table per collection (see `rows` for columns)
//! ```
//!
//! # Guarantees
//!
//! - A write (`add`, `upsert`, `update`, `delete`) is one Lance commit: after a crash it is there
//!   whole or not at all. Catalog changes are atomic file replacements.
//! - One writing process per directory: a second one gets [`ErrorKind::Locked`] naming the holder's
//!   pid after [`LanceOptions::lock_wait`], never a hang. Any number of read-only handles
//!   ([`LanceBackend::open_read_only`]), in any process, run beside it: they take no lock, refuse
//!   writes with [`ErrorKind::ReadOnly`], and see every write the writer has committed.
//! - `where` / `where_document` are pushed into Lance's SQL where they map exactly (see
//!   [`pushdown`](crate::pushdown)); everything else is re-checked by chromalite's evaluator, so
//!   answers never depend on what SQL can express.
//! - Filtered queries are exact over the matching records (never fewer results than exist).
//! - Deleting a collection removes its catalog entry, then its table; a crash in between leaves a
//!   table folder nothing references, which the next writer to open the store removes (only
//!   folders named `<collection id>.lance` two levels below the root are ever considered).
//!
//! # Search: exact, then indexed
//!
//! Below [`LanceOptions::index_threshold`] records a query scans every vector (exact, recall 1).
//! Once a collection reaches it, the next write builds an IVF-HNSW-SQ index (8-bit scalar
//! quantisation) in the collection's distance; queries then search the index and re-rank
//! `4 × (k + k/2 + 8)` candidates with the full vectors. New rows are searched exactly until they
//! are a tenth of the index, when they are folded in. On the 59,413 × 384 debian-minilm set this
//! trades recall@10 for speed as measured in the repository's README benchmark table.
//!
//! # Example
//!
//! ```
//! use chromalite_core::{CreateCollection, DatabaseRef, QueryRequest, RecordBatch, VectorBackend};
//! use chromalite_lance::LanceBackend;
//!
//! let dir = tempfile::tempdir().unwrap();
//! let store = LanceBackend::open(dir.path()).unwrap();
//! let db = DatabaseRef::default();
//! let col = store.create_collection(&db, &CreateCollection { name: "docs".into(), ..Default::default() }).unwrap();
//! let mut batch = RecordBatch::new(["a", "b"]);
//! batch.embeddings = Some(vec![vec![0.0, 1.0], vec![1.0, 0.0]]);
//! store.add(&col, &batch).unwrap();
//! let hits = store.query(&col, &QueryRequest { embeddings: vec![vec![0.9, 0.1]], n_results: 1, ..Default::default() }).unwrap();
//! assert_eq!(hits.ids, vec![vec!["b".to_string()]]);
//! ```
//!
//! The API is blocking; it drives lancedb on one runtime shared by the process. Call it from
//! ordinary threads (or `spawn_blocking`), not from inside async code.

mod catalog;
mod check;
mod lock;
mod pushdown;
mod rows;
mod runtime;
mod table;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use chromalite_core::metadata::strip_nulls;
use chromalite_core::validate::{self, WriteOp};
use chromalite_core::{
    new_uuid, CollectionConfig, CollectionInfo, CreateCollection, Database, DatabaseRef, DeleteRequest, Error,
    GetRequest, GetResult, ModifyCollection, QueryRequest, QueryResult, RecordBatch, Result, Selection, Tenant,
    VectorBackend,
};

pub use catalog::CATALOG_FILE;
use catalog::{Catalog, CollectionEntry};
pub use check::{CollectionReport, Finding, LanceReport};
#[doc(no_inline)]
pub use chromalite_core::ErrorKind;
use lock::WriterLock;
pub use lock::LOCK_FILE;
use runtime::{block_on, lance_error};
use table::CollectionTable;

/// Settings of a Lance store.
#[derive(Debug, Clone)]
pub struct LanceOptions {
    /// Records a collection needs before a vector index is built (below it, search is exact).
    pub index_threshold: usize,
    /// How long `open` waits for another process's writer lock before failing with `Locked`.
    pub lock_wait: Duration,
    /// Open without the writer lock: every write fails with [`ErrorKind::ReadOnly`], the store
    /// must exist (`NotFound` otherwise), and reads see what the writer has committed since (the
    /// catalog is re-read when its file changes, each table read checks for a newer version).
    /// Any number of read-only handles may run beside one writer. See
    /// [`LanceBackend::open_read_only`].
    pub read_only: bool,
    /// How long a replaced table version stays on disk. Lance keeps every version until it is
    /// pruned; the writer prunes (and compacts) a table every [`TIDY_EVERY`] commits and on
    /// [`LanceBackend::optimize`] / `flush`, removing each version that was replaced more than
    /// this long ago, so a read-only reader in another process that started on it can finish.
    /// Zero keeps only the current version.
    pub version_grace: Duration,
}

/// Commits to one table (writes and deletes) after which the writer compacts it and prunes its old
/// versions (see [`LanceOptions::version_grace`]).
pub const TIDY_EVERY: u32 = 32;

impl Default for LanceOptions {
    fn default() -> Self {
        LanceOptions {
            index_threshold: 100_000,
            lock_wait: Duration::from_secs(5),
            read_only: false,
            version_grace: Duration::from_mins(10),
        }
    }
}

/// What identifies one version of the catalog file: it is replaced by rename on every change.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileStamp {
    len: u64,
    modified: Option<std::time::SystemTime>,
    inode: u64,
}

impl FileStamp {
    fn of(path: &Path) -> Option<FileStamp> {
        let meta = std::fs::metadata(path).ok()?;
        #[cfg(unix)]
        let inode = std::os::unix::fs::MetadataExt::ino(&meta);
        #[cfg(not(unix))]
        let inode = 0;
        Some(FileStamp { len: meta.len(), modified: meta.modified().ok(), inode })
    }
}

/// The `LanceDB` backend. Share it behind an `Arc`; calls from several threads are safe.
pub struct LanceBackend {
    root: PathBuf,
    options: LanceOptions,
    /// The writer lock; `None` for a read-only handle.
    _lock: Option<WriterLock>,
    catalog: RwLock<Catalog>,
    /// Read-only handles: the catalog file as last read, to notice the writer's changes.
    catalog_stamp: Mutex<Option<FileStamp>>,
    /// One lancedb connection per database folder.
    connections: Mutex<HashMap<PathBuf, lancedb::Connection>>,
    /// Open tables by collection id.
    tables: Mutex<HashMap<String, CollectionTable>>,
    /// Next insertion number by collection id, loaded on a collection's first write.
    next_seq: Mutex<HashMap<String, u64>>,
    /// Commits since the table was last tidied (compacted and pruned), by collection id.
    commits: Mutex<HashMap<String, u32>>,
    /// Serialises writes: Chroma's merge rules read the stored record before replacing it.
    writing: Mutex<()>,
}

impl std::fmt::Debug for LanceBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LanceBackend").field("root", &self.root).field("options", &self.options).finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded maps are caches or a unit token; a panic elsewhere cannot leave them inconsistent.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl LanceBackend {
    /// Opens (creating when absent) the store in `dir` with default options.
    pub fn open(dir: impl AsRef<Path>) -> Result<LanceBackend> {
        Self::open_with(dir, LanceOptions::default())
    }

    /// Opens an existing store in `dir` for reading only, beside its writer (if any).
    ///
    /// No lock is taken, so this works while another process writes to the store; writes fail
    /// with [`ErrorKind::ReadOnly`], a missing store is `NotFound`, and every read sees what the
    /// writer had committed when the read started.
    ///
    /// ```
    /// use chromalite_core::{CreateCollection, DatabaseRef, ErrorKind, RecordBatch, VectorBackend};
    /// use chromalite_lance::LanceBackend;
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let writer = LanceBackend::open(dir.path()).unwrap();
    /// let col = writer.create_collection(&DatabaseRef::default(), &CreateCollection { name: "docs".into(), ..Default::default() }).unwrap();
    /// let reader = LanceBackend::open_read_only(dir.path()).unwrap(); // the writer still holds its lock
    /// let mut batch = RecordBatch::new(["a"]);
    /// batch.embeddings = Some(vec![vec![1.0, 0.0]]);
    /// writer.add(&col, &batch).unwrap();
    /// assert_eq!(reader.count(&col).unwrap(), 1); // sees the writer's commit
    /// assert_eq!(reader.add(&col, &batch).unwrap_err().kind(), ErrorKind::ReadOnly);
    /// ```
    pub fn open_read_only(dir: impl AsRef<Path>) -> Result<LanceBackend> {
        Self::open_with(dir, LanceOptions { read_only: true, ..LanceOptions::default() })
    }

    /// Opens the store in `dir`: as its writer, creating it when absent, or read-only when
    /// [`LanceOptions::read_only`] is set.
    pub fn open_with(dir: impl AsRef<Path>, options: LanceOptions) -> Result<LanceBackend> {
        let root = dir.as_ref().to_path_buf();
        let (lock, catalog, stamp) = if options.read_only {
            // Stamped before reading: a change in between is read again on the next call.
            let stamp = FileStamp::of(&root.join(CATALOG_FILE));
            (None, Catalog::open_existing(&root)?, stamp)
        } else {
            std::fs::create_dir_all(&root).map_err(|e| Error::io(&root, e))?;
            let lock = WriterLock::acquire(&root, options.lock_wait)?;
            // Only an existing store is swept: a new one may be created in a folder holding
            // someone else's files.
            let existed = root.join(CATALOG_FILE).is_file();
            let catalog = Catalog::open(&root)?;
            if existed {
                check::remove_unreferenced_tables(&root, &catalog);
            }
            (Some(lock), catalog, None)
        };
        Ok(LanceBackend {
            root,
            options,
            _lock: lock,
            catalog: RwLock::new(catalog),
            catalog_stamp: Mutex::new(stamp),
            connections: Mutex::new(HashMap::new()),
            tables: Mutex::new(HashMap::new()),
            next_seq: Mutex::new(HashMap::new()),
            commits: Mutex::new(HashMap::new()),
            writing: Mutex::new(()),
        })
    }

    /// The store's root folder.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// Whether this handle refuses writes (opened with [`LanceBackend::open_read_only`]).
    #[must_use]
    pub fn is_read_only(&self) -> bool {
        self.options.read_only
    }

    /// The pid of the process holding the writer lock of the store in `dir`, if any.
    #[must_use]
    pub fn lock_holder(dir: impl AsRef<Path>) -> Option<u32> {
        WriterLock::holder(dir.as_ref())
    }

    /// `Ok` on a writer; [`ErrorKind::ReadOnly`] on a read-only handle.
    fn writable(&self) -> Result<()> {
        if self.options.read_only {
            return Err(Error::ReadOnly { reason: format!("{} was opened read-only", self.root.display()) });
        }
        Ok(())
    }

    /// Builds or refreshes the vector index of every collection past the threshold now, instead
    /// of on its next write, then compacts every table and removes its old versions (those
    /// replaced more than [`LanceOptions::version_grace`] ago). Returns how many indexes changed.
    ///
    /// ```
    /// use chromalite_core::{CreateCollection, DatabaseRef, RecordBatch, VectorBackend};
    /// use chromalite_lance::{LanceBackend, LanceOptions};
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let options = LanceOptions { version_grace: std::time::Duration::ZERO, ..Default::default() };
    /// let store = LanceBackend::open_with(dir.path(), options).unwrap();
    /// let col = store.create_collection(&DatabaseRef::default(), &CreateCollection { name: "docs".into(), ..Default::default() }).unwrap();
    /// let mut batch = RecordBatch::new(["a"]);
    /// for i in 0..5 {
    ///     batch.embeddings = Some(vec![vec![i as f32, 1.0]]);
    ///     store.upsert(&col, &batch).unwrap(); // each one a new table version
    /// }
    /// assert_eq!(store.optimize().unwrap(), 0); // no index below the threshold; old versions pruned
    /// assert_eq!(LanceBackend::check(dir.path()).unwrap().collections[0].versions, Some(1));
    /// ```
    pub fn optimize(&self) -> Result<usize> {
        self.writable()?;
        let _w = lock(&self.writing);
        let collections: Vec<(String, CollectionEntry)> =
            self.read().collections.iter().map(|(id, c)| (id.clone(), c.clone())).collect();
        let mut changed = 0;
        for (id, entry) in collections {
            if let Some(t) = self.table(&id, &entry.db())? {
                let space = entry.config()?.hnsw.space;
                changed += usize::from(block_on(t.maintain_index(space, self.options.index_threshold))??);
                block_on(t.tidy(self.options.version_grace))??;
                lock(&self.commits).remove(&id);
            }
        }
        Ok(changed)
    }

    /// Counts a commit to `table`; every [`TIDY_EVERY`] commits, compacts it and prunes old versions.
    fn committed(&self, id: &str, table: &CollectionTable) -> Result<()> {
        let due = {
            let mut commits = lock(&self.commits);
            let n = commits.entry(id.to_string()).or_insert(0);
            *n += 1;
            if *n >= TIDY_EVERY {
                *n = 0;
                true
            } else {
                false
            }
        };
        if due {
            block_on(table.tidy(self.options.version_grace))??;
        }
        Ok(())
    }

    fn read(&self) -> RwLockReadGuard<'_, Catalog> {
        if self.options.read_only {
            self.refresh_catalog();
        }
        self.catalog.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Read-only handles: re-reads the catalog when the writer has replaced its file. A file
    /// that cannot be read at this moment leaves the last good catalog in place.
    fn refresh_catalog(&self) {
        let path = self.root.join(CATALOG_FILE);
        let mut stamp = lock(&self.catalog_stamp);
        let now = FileStamp::of(&path);
        if now.is_none() || *stamp == now {
            return;
        }
        let Ok(next) = Catalog::open_existing(&self.root) else { return };
        let mut guard = self.catalog.write().unwrap_or_else(PoisonError::into_inner);
        // Tables of collections that are gone are closed (a new one never reuses an id).
        let gone: Vec<String> =
            guard.collections.keys().filter(|id| !next.collections.contains_key(*id)).cloned().collect();
        for id in &gone {
            self.forget(id);
        }
        *guard = next;
        *stamp = now;
    }

    /// Runs `change` on a copy of the catalog and installs it once it is saved, so a failed save
    /// leaves memory and disk agreeing.
    fn change<T>(&self, change: impl FnOnce(&mut Catalog) -> Result<T>) -> Result<T> {
        self.writable()?;
        let mut guard: RwLockWriteGuard<'_, Catalog> = self.catalog.write().unwrap_or_else(PoisonError::into_inner);
        let mut next = guard.clone();
        let out = change(&mut next)?;
        next.save(&self.root)?;
        *guard = next;
        Ok(out)
    }

    fn connection(&self, db: &DatabaseRef) -> Result<lancedb::Connection> {
        let dir = catalog::database_dir(&self.root, db);
        if let Some(c) = lock(&self.connections).get(&dir) {
            return Ok(c.clone());
        }
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let uri = dir.to_str().ok_or_else(|| Error::invalid(format!("path {} is not UTF-8", dir.display())))?;
        let mut connect = lancedb::connect(uri);
        if self.options.read_only {
            // Another process writes: every read checks for a newer table version first.
            connect = connect.read_consistency_interval(Duration::ZERO);
        }
        let conn = block_on(connect.execute())?.map_err(|e| lance_error(uri, e))?;
        lock(&self.connections).insert(dir, conn.clone());
        Ok(conn)
    }

    /// The collection's table, or `None` before its first write.
    fn table(&self, id: &str, db: &DatabaseRef) -> Result<Option<CollectionTable>> {
        if let Some(t) = lock(&self.tables).get(id) {
            return Ok(Some(t.clone()));
        }
        if self.options.read_only && !catalog::database_dir(&self.root, db).is_dir() {
            // Nothing written to this database yet; a reader creates no folders.
            return Ok(None);
        }
        let conn = self.connection(db)?;
        match block_on(conn.open_table(id).execute())? {
            Ok(table) => {
                let t = CollectionTable { table, name: id.to_string() };
                lock(&self.tables).insert(id.to_string(), t.clone());
                Ok(Some(t))
            }
            Err(lancedb::Error::TableNotFound { .. }) => Ok(None),
            Err(e) => Err(lance_error(id, e)),
        }
    }

    fn entry(&self, col: &CollectionInfo) -> Result<CollectionEntry> {
        self.read().collections.get(&col.id).cloned().ok_or_else(|| Error::not_found("collection", &col.name))
    }

    fn info(&self, id: &str, entry: &CollectionEntry) -> Result<CollectionInfo> {
        let dimension = match self.table(id, &entry.db())? {
            Some(t) => block_on(t.dimension())??,
            None => None,
        };
        Ok(CollectionInfo {
            id: id.to_string(),
            name: entry.name.clone(),
            db: entry.db(),
            metadata: entry.metadata()?,
            config: entry.config()?,
            dimension,
        })
    }

    fn write_batch(&self, col: &CollectionInfo, batch: &RecordBatch, op: WriteOp) -> Result<()> {
        self.writable()?;
        let _w = lock(&self.writing);
        let entry = self.entry(col)?;
        let db = entry.db();
        let existing = self.table(&col.id, &db)?;
        let dimension = match &existing {
            Some(t) => block_on(t.dimension())??,
            None => None,
        };
        validate::record_batch(batch, op, dimension)?;
        let mut next = self.next_seq(&col.id, existing.as_ref())?;
        let table = match existing {
            Some(t) => {
                block_on(t.write(batch, op, &mut next))??;
                t
            }
            // An update before any record exists changes nothing (its ids are all missing).
            None if op == WriteOp::Update => return Ok(()),
            None => {
                let conn = self.connection(&db)?;
                let t = block_on(CollectionTable::create(&conn, &col.id, batch, &mut next))??;
                lock(&self.tables).insert(col.id.clone(), t.clone());
                t
            }
        };
        lock(&self.next_seq).insert(col.id.clone(), next);
        let space = entry.config()?.hnsw.space;
        block_on(table.maintain_index(space, self.options.index_threshold))??;
        self.committed(&col.id, &table)
    }

    fn next_seq(&self, id: &str, table: Option<&CollectionTable>) -> Result<u64> {
        if let Some(n) = lock(&self.next_seq).get(id) {
            return Ok(*n);
        }
        match table {
            Some(t) => block_on(t.next_seq())?,
            None => Ok(0),
        }
    }

    fn forget(&self, id: &str) {
        lock(&self.tables).remove(id);
        lock(&self.next_seq).remove(id);
        lock(&self.commits).remove(id);
    }

    fn drop_table(&self, id: &str, db: &DatabaseRef) -> Result<()> {
        self.forget(id);
        let conn = self.connection(db)?;
        match block_on(conn.drop_table(id, &[]))? {
            Ok(()) | Err(lancedb::Error::TableNotFound { .. }) => Ok(()),
            Err(e) => Err(lance_error(id, e)),
        }
    }
}

impl VectorBackend for LanceBackend {
    fn kind(&self) -> &'static str {
        "lance"
    }

    fn heartbeat(&self) -> Result<u64> {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        Ok(u64::try_from(now.as_nanos()).unwrap_or(u64::MAX))
    }

    fn create_tenant(&self, name: &str) -> Result<()> {
        validate::tenant_or_database_name("tenant", name)?;
        self.change(|c| {
            if !c.tenant_names.insert(name.into()) {
                return Err(Error::already_exists("tenant", name));
            }
            c.tenants.entry(name.into()).or_default();
            Ok(())
        })
    }

    fn get_tenant(&self, name: &str) -> Result<Tenant> {
        self.read()
            .tenants
            .get(name)
            .map(|_| Tenant { name: name.into() })
            .ok_or_else(|| Error::not_found("tenant", name))
    }

    fn create_database(&self, db: &DatabaseRef) -> Result<()> {
        validate::tenant_or_database_name("database", &db.database)?;
        self.change(|c| {
            // chromadb creates the database even when the tenant does not exist.
            let dbs = c.tenants.entry(db.tenant.clone()).or_default();
            if dbs.contains_key(&db.database) {
                return Err(Error::already_exists("database", &db.database));
            }
            dbs.insert(db.database.clone(), new_uuid());
            Ok(())
        })
    }

    fn get_database(&self, db: &DatabaseRef) -> Result<Database> {
        self.read().database(db)
    }

    fn list_databases(&self, tenant: &str, limit: Option<usize>, offset: usize) -> Result<Vec<Database>> {
        let catalog = self.read();
        // chromadb lists by tenant name without checking the tenant exists.
        let Some(dbs) = catalog.tenants.get(tenant) else { return Ok(Vec::new()) };
        Ok(dbs
            .iter()
            .skip(offset)
            .take(limit.unwrap_or(usize::MAX))
            .map(|(name, id)| Database { id: id.clone(), name: name.clone(), tenant: tenant.into() })
            .collect())
    }

    fn delete_database(&self, db: &DatabaseRef) -> Result<()> {
        self.writable()?;
        let _w = lock(&self.writing);
        let doomed: Vec<String> = self.change(|c| {
            c.database_id(db)?;
            let ids: Vec<String> = c.in_db(db).map(|(id, _)| id.clone()).collect();
            c.collections.retain(|id, _| !ids.contains(id));
            if let Some(dbs) = c.tenants.get_mut(&db.tenant) {
                dbs.remove(&db.database);
            }
            Ok(ids)
        })?;
        // The catalog no longer names them: removing the files can only free space.
        for id in &doomed {
            self.forget(id);
        }
        let dir = catalog::database_dir(&self.root, db);
        lock(&self.connections).remove(&dir);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(&dir, e)),
        }
    }

    fn create_collection(&self, db: &DatabaseRef, req: &CreateCollection) -> Result<CollectionInfo> {
        validate::collection_name(&req.name)?;
        if let Some(m) = &req.metadata {
            validate::collection_metadata(m)?;
        }
        let config = CollectionConfig::resolve(req.configuration.as_ref(), req.metadata.as_ref())?;
        let (id, entry) = self.change(|c| {
            if let Some((id, existing)) = c.find(db, &req.name)? {
                if req.get_or_create {
                    return Ok((id.clone(), existing.clone()));
                }
                return Err(Error::already_exists("collection", &req.name));
            }
            let mut entry = CollectionEntry {
                name: req.name.clone(),
                tenant: db.tenant.clone(),
                database: db.database.clone(),
                metadata: None,
                configuration: config.to_json(),
            };
            entry.set_metadata(req.metadata.as_ref());
            let id = new_uuid();
            c.collections.insert(id.clone(), entry.clone());
            Ok((id, entry))
        })?;
        self.info(&id, &entry)
    }

    fn get_collection(&self, db: &DatabaseRef, name: &str) -> Result<CollectionInfo> {
        let found = self.read().find(db, name)?.map(|(id, e)| (id.clone(), e.clone()));
        let (id, entry) = found.ok_or_else(|| Error::not_found("collection", name))?;
        self.info(&id, &entry)
    }

    fn list_collections(&self, db: &DatabaseRef, limit: Option<usize>, offset: usize) -> Result<Vec<CollectionInfo>> {
        let page: Vec<(String, CollectionEntry)> = {
            let catalog = self.read();
            catalog.database_id(db)?;
            catalog
                .in_db(db)
                .skip(offset)
                .take(limit.unwrap_or(usize::MAX))
                .map(|(id, e)| (id.clone(), e.clone()))
                .collect()
        };
        page.iter().map(|(id, e)| self.info(id, e)).collect()
    }

    fn count_collections(&self, db: &DatabaseRef) -> Result<usize> {
        let catalog = self.read();
        catalog.database_id(db)?;
        Ok(catalog.in_db(db).count())
    }

    fn modify_collection(&self, db: &DatabaseRef, name: &str, req: &ModifyCollection) -> Result<()> {
        if let Some(n) = &req.new_name {
            validate::collection_name(n)?;
        }
        if let Some(m) = &req.new_metadata {
            validate::modify_metadata(m)?;
        }
        self.change(|c| {
            let id = c.find(db, name)?.map(|(id, _)| id.clone()).ok_or_else(|| Error::not_found("collection", name))?;
            if let Some(n) = req.new_name.as_ref().filter(|n| *n != name) {
                if c.find(db, n)?.is_some() {
                    return Err(Error::already_exists("collection", n));
                }
            }
            let entry = c.collections.get_mut(&id).ok_or_else(|| Error::not_found("collection", name))?;
            // Checked before anything changes: a refused configuration leaves the collection as it was.
            let next_config = match &req.new_configuration {
                Some(cfg) => {
                    let mut next = entry.config()?;
                    next.apply_modify_json(cfg)?;
                    Some(next.to_json())
                }
                None => None,
            };
            if let Some(n) = &req.new_name {
                entry.name.clone_from(n);
            }
            if let Some(m) = &req.new_metadata {
                let m = Some(strip_nulls(m)).filter(|m| !m.is_empty());
                entry.set_metadata(m.as_ref());
            }
            if let Some(cfg) = next_config {
                entry.configuration = cfg;
            }
            Ok(())
        })
    }

    fn delete_collection(&self, db: &DatabaseRef, name: &str) -> Result<()> {
        self.writable()?;
        let _w = lock(&self.writing);
        let id = self.change(|c| {
            let id = c.find(db, name)?.map(|(id, _)| id.clone()).ok_or_else(|| Error::not_found("collection", name))?;
            c.collections.remove(&id);
            Ok(id)
        })?;
        self.drop_table(&id, db)
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

    fn delete(&self, col: &CollectionInfo, selection: &Selection) -> Result<()> {
        validate::delete_selection(selection)?;
        self.writable()?;
        let _w = lock(&self.writing);
        let entry = self.entry(col)?;
        match self.table(&col.id, &entry.db())? {
            Some(t) => {
                block_on(t.delete(selection))??;
                self.committed(&col.id, &t)
            }
            None => Ok(()),
        }
    }

    /// chromadb's count and limit with the lookup and the delete under one hold of the writer's
    /// lock (the trait's default makes two calls, so a write could land between them), and a
    /// read-only handle refuses even a delete that would match nothing.
    fn delete_records(&self, col: &CollectionInfo, req: &DeleteRequest) -> Result<usize> {
        validate::delete_request(req)?;
        self.writable()?;
        let _w = lock(&self.writing);
        let entry = self.entry(col)?;
        let Some(t) = self.table(&col.id, &entry.db())? else {
            return Ok(req.ids_only().map_or(0, <[String]>::len));
        };
        let (selection, count) = if let Some(ids) = req.ids_only() {
            (req.selection.clone(), ids.len())
        } else {
            let rows = block_on(t.get(&req.selection, &[], 0, req.limit_usize()))??;
            let ids: Vec<String> = rows.into_iter().map(|r| r.id).collect();
            let count = ids.len();
            (Selection { ids: Some(ids), ..Selection::default() }, count)
        };
        if count > 0 {
            block_on(t.delete(&selection))??;
            self.committed(&col.id, &t)?;
        }
        Ok(count)
    }

    fn get(&self, col: &CollectionInfo, req: &GetRequest) -> Result<GetResult> {
        validate::get_request(req)?;
        let entry = self.entry(col)?;
        let rows = match self.table(&col.id, &entry.db())? {
            Some(t) => block_on(t.get(&req.selection, &req.include, req.offset, req.limit))??,
            None => Vec::new(),
        };
        Ok(GetResult::from_records(rows.into_iter().map(rows::Row::into_record).collect(), &req.include))
    }

    fn query(&self, col: &CollectionInfo, req: &QueryRequest) -> Result<QueryResult> {
        let entry = self.entry(col)?;
        let table = self.table(&col.id, &entry.db())?;
        let dimension = match &table {
            Some(t) => block_on(t.dimension())??,
            None => None,
        };
        validate::embeddings(&req.embeddings, dimension)?;
        if let (Some(t), Some(ids)) = (&table, &req.selection.ids) {
            let live = block_on(t.live_ids(ids))??;
            validate::query_ids_exist(&req.selection, dimension, |id| live.contains(id))?;
        }
        let space = entry.config()?.hnsw.space;
        let mut result = QueryResult::new(&req.include);
        let hits = match &table {
            Some(t) => block_on(t.query(space, &req.embeddings, req.n_results, &req.selection, &req.include))??,
            None => vec![Vec::new(); req.embeddings.len()],
        };
        for h in hits {
            result.push(h.into_iter().map(|(r, d)| (r.into_record(), d)).collect());
        }
        Ok(result)
    }

    fn count(&self, col: &CollectionInfo) -> Result<usize> {
        let entry = self.entry(col)?;
        match self.table(&col.id, &entry.db())? {
            Some(t) => block_on(t.count())?,
            None => Ok(0),
        }
    }

    fn flush(&self) -> Result<()> {
        if self.options.read_only {
            return Ok(());
        }
        self.optimize().map(|_| ())
    }
}
