//! An in-memory [`VectorBackend`]: chromalite's fallback store.
//!
//! It holds everything in RAM behind one `RwLock`, searches exactly (no index), and follows
//! chromadb 1.5.9's semantics like every other backend (it passes the same conformance suite).
//! Nothing survives the process: the session layer pairs it with a durable journal when it stands
//! in for a persistent store.
//!
//! ```
//! use chromalite_core::{CreateCollection, DatabaseRef, QueryRequest, RecordBatch, VectorBackend};
//! use chromalite_memory::MemoryBackend;
//!
//! let store = MemoryBackend::new();
//! let db = DatabaseRef::default();
//! let col = store.create_collection(&db, &CreateCollection { name: "docs".into(), ..Default::default() }).unwrap();
//! let mut batch = RecordBatch::new(["a", "b"]);
//! batch.embeddings = Some(vec![vec![0.0, 1.0], vec![1.0, 0.0]]);
//! store.add(&col, &batch).unwrap();
//! let hits = store.query(&col, &QueryRequest { embeddings: vec![vec![0.9, 0.1]], n_results: 1, ..Default::default() }).unwrap();
//! assert_eq!(hits.ids, vec![vec!["b".to_string()]]);
//! ```

mod records;

use std::collections::BTreeMap;
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use chromalite_core::validate::{self, WriteOp};
use chromalite_core::{
    new_uuid, CollectionConfig, CollectionInfo, CreateCollection, Database, DatabaseRef, DeleteRequest, Error,
    GetRequest, GetResult, ModifyCollection, QueryRequest, QueryResult, RecordBatch, Result, Selection, Tenant,
    VectorBackend, DEFAULT_DATABASE, DEFAULT_TENANT,
};

use records::Records;

#[derive(Debug)]
struct CollectionState {
    info: CollectionInfo,
    records: Records,
}

#[derive(Debug, Default)]
struct State {
    /// tenant -> database name -> database id
    /// Databases by tenant name. chromadb does not check the tenant of database operations, so a
    /// database can sit under a tenant name that was never created (see `tenant_names`).
    tenants: BTreeMap<String, BTreeMap<String, String>>,
    /// The tenants that exist.
    tenant_names: std::collections::BTreeSet<String>,
    /// collection id -> collection; ids order the listing, as in Chroma.
    collections: BTreeMap<String, CollectionState>,
}

/// The in-memory backend. Cheap to create; share it behind an `Arc`.
#[derive(Debug)]
pub struct MemoryBackend {
    state: RwLock<State>,
}

impl Default for MemoryBackend {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryBackend {
    /// An empty store holding the default tenant and database.
    #[must_use]
    pub fn new() -> Self {
        let mut state = State::default();
        state.tenants.entry(DEFAULT_TENANT.into()).or_default().insert(DEFAULT_DATABASE.into(), new_uuid());
        state.tenant_names.insert(DEFAULT_TENANT.into());
        MemoryBackend { state: RwLock::new(state) }
    }

    // A panic while holding the lock cannot leave `State` half-updated in a way later calls would
    // misread (each mutation is a single map operation), so a poisoned lock is safe to reuse.
    fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }
}

impl State {
    fn database_id(&self, db: &DatabaseRef) -> Result<&String> {
        if !self.tenant_names.contains(&db.tenant) {
            return Err(Error::not_found("tenant", &db.tenant));
        }
        let dbs = self.tenants.get(&db.tenant).ok_or_else(|| Error::not_found("tenant", &db.tenant))?;
        dbs.get(&db.database).ok_or_else(|| Error::not_found("database", &db.database))
    }

    fn find(&self, db: &DatabaseRef, name: &str) -> Result<Option<&CollectionState>> {
        self.database_id(db)?;
        Ok(self.collections.values().find(|c| c.info.db == *db && c.info.name == name))
    }

    fn in_db<'a>(&'a self, db: &'a DatabaseRef) -> impl Iterator<Item = &'a CollectionState> + 'a {
        self.collections.values().filter(move |c| c.info.db == *db)
    }

    fn collection(&self, col: &CollectionInfo) -> Result<&CollectionState> {
        self.collections.get(&col.id).ok_or_else(|| Error::not_found("collection", &col.name))
    }

    fn collection_mut(&mut self, col: &CollectionInfo) -> Result<&mut CollectionState> {
        self.collections.get_mut(&col.id).ok_or_else(|| Error::not_found("collection", &col.name))
    }
}

impl MemoryBackend {
    fn write_batch(&self, col: &CollectionInfo, batch: &RecordBatch, op: WriteOp) -> Result<()> {
        let mut state = self.write();
        let c = state.collection_mut(col)?;
        validate::record_batch(batch, op, c.info.dimension)?;
        if c.info.dimension.is_none() && op != WriteOp::Update {
            c.info.dimension = batch.embeddings.as_ref().and_then(|e| e.first()).map(Vec::len);
        }
        match op {
            WriteOp::Add => c.records.add(batch),
            WriteOp::Upsert => c.records.upsert(batch),
            WriteOp::Update => c.records.update(batch),
        }
        Ok(())
    }
}

impl VectorBackend for MemoryBackend {
    fn kind(&self) -> &'static str {
        "memory"
    }

    fn heartbeat(&self) -> Result<u64> {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        Ok(u64::try_from(now.as_nanos()).unwrap_or(u64::MAX))
    }

    fn create_tenant(&self, name: &str) -> Result<()> {
        validate::tenant_or_database_name("tenant", name)?;
        let mut state = self.write();
        if !state.tenant_names.insert(name.into()) {
            return Err(Error::already_exists("tenant", name));
        }
        state.tenants.entry(name.into()).or_default();
        Ok(())
    }

    fn get_tenant(&self, name: &str) -> Result<Tenant> {
        let state = self.read();
        state
            .tenant_names
            .get(name)
            .map(|_| Tenant { name: name.into() })
            .ok_or_else(|| Error::not_found("tenant", name))
    }

    fn create_database(&self, db: &DatabaseRef) -> Result<()> {
        validate::tenant_or_database_name("database", &db.database)?;
        let mut state = self.write();
        // chromadb creates the database even when the tenant does not exist.
        let dbs = state.tenants.entry(db.tenant.clone()).or_default();
        if dbs.contains_key(&db.database) {
            return Err(Error::already_exists("database", &db.database));
        }
        dbs.insert(db.database.clone(), new_uuid());
        Ok(())
    }

    fn get_database(&self, db: &DatabaseRef) -> Result<Database> {
        let state = self.read();
        let id = state.database_id(db)?.clone();
        Ok(Database { id, name: db.database.clone(), tenant: db.tenant.clone() })
    }

    fn list_databases(&self, tenant: &str, limit: Option<usize>, offset: usize) -> Result<Vec<Database>> {
        let state = self.read();
        // chromadb lists by tenant name without checking the tenant exists.
        let Some(dbs) = state.tenants.get(tenant) else { return Ok(Vec::new()) };
        Ok(dbs
            .iter()
            .skip(offset)
            .take(limit.unwrap_or(usize::MAX))
            .map(|(name, id)| Database { id: id.clone(), name: name.clone(), tenant: tenant.into() })
            .collect())
    }

    fn delete_database(&self, db: &DatabaseRef) -> Result<()> {
        let mut state = self.write();
        state.database_id(db)?;
        state.collections.retain(|_, c| c.info.db != *db);
        if let Some(dbs) = state.tenants.get_mut(&db.tenant) {
            dbs.remove(&db.database);
        }
        Ok(())
    }

    fn create_collection(&self, db: &DatabaseRef, req: &CreateCollection) -> Result<CollectionInfo> {
        validate::collection_name(&req.name)?;
        if let Some(m) = &req.metadata {
            validate::collection_metadata(m)?;
        }
        let config = CollectionConfig::resolve(req.configuration.as_ref(), req.metadata.as_ref())?;
        let mut state = self.write();
        if let Some(existing) = state.find(db, &req.name)? {
            if req.get_or_create {
                return Ok(existing.info.clone());
            }
            return Err(Error::already_exists("collection", &req.name));
        }
        let info = CollectionInfo {
            id: new_uuid(),
            name: req.name.clone(),
            db: db.clone(),
            metadata: req.metadata.clone(),
            config,
            dimension: None,
        };
        state.collections.insert(info.id.clone(), CollectionState { info: info.clone(), records: Records::default() });
        Ok(info)
    }

    fn get_collection(&self, db: &DatabaseRef, name: &str) -> Result<CollectionInfo> {
        let state = self.read();
        state.find(db, name)?.map(|c| c.info.clone()).ok_or_else(|| Error::not_found("collection", name))
    }

    fn list_collections(&self, db: &DatabaseRef, limit: Option<usize>, offset: usize) -> Result<Vec<CollectionInfo>> {
        let state = self.read();
        state.database_id(db)?;
        Ok(state.in_db(db).skip(offset).take(limit.unwrap_or(usize::MAX)).map(|c| c.info.clone()).collect())
    }

    fn count_collections(&self, db: &DatabaseRef) -> Result<usize> {
        let state = self.read();
        state.database_id(db)?;
        Ok(state.in_db(db).count())
    }

    fn modify_collection(&self, db: &DatabaseRef, name: &str, req: &ModifyCollection) -> Result<()> {
        if let Some(n) = &req.new_name {
            validate::collection_name(n)?;
        }
        if let Some(m) = &req.new_metadata {
            validate::modify_metadata(m)?;
        }
        let mut state = self.write();
        let id =
            state.find(db, name)?.map(|c| c.info.id.clone()).ok_or_else(|| Error::not_found("collection", name))?;
        if let Some(n) = req.new_name.as_ref().filter(|n| *n != name) {
            if state.find(db, n)?.is_some() {
                return Err(Error::already_exists("collection", n));
            }
        }
        let c = state.collections.get_mut(&id).ok_or_else(|| Error::not_found("collection", name))?;
        // A refused configuration change leaves everything (name, metadata) as it was.
        let next_config = match &req.new_configuration {
            Some(cfg) => {
                let mut next = c.info.config.clone();
                next.apply_modify_json(cfg)?;
                Some(next)
            }
            None => None,
        };
        if let Some(n) = &req.new_name {
            c.info.name.clone_from(n);
        }
        if let Some(m) = &req.new_metadata {
            c.info.metadata = Some(chromalite_core::metadata::strip_nulls(m)).filter(|m| !m.is_empty());
        }
        if let Some(cfg) = next_config {
            c.info.config = cfg;
        }
        Ok(())
    }

    fn delete_collection(&self, db: &DatabaseRef, name: &str) -> Result<()> {
        let mut state = self.write();
        let id =
            state.find(db, name)?.map(|c| c.info.id.clone()).ok_or_else(|| Error::not_found("collection", name))?;
        state.collections.remove(&id);
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

    fn delete(&self, col: &CollectionInfo, selection: &Selection) -> Result<()> {
        self.delete_records(col, &DeleteRequest::new(selection.clone())).map(drop)
    }

    fn delete_records(&self, col: &CollectionInfo, req: &DeleteRequest) -> Result<usize> {
        validate::delete_request(req)?;
        let mut state = self.write();
        let removed = state.collection_mut(col)?.records.delete(&req.selection, req.limit_usize());
        Ok(req.ids_only().map_or(removed, <[String]>::len))
    }

    fn get(&self, col: &CollectionInfo, req: &GetRequest) -> Result<GetResult> {
        validate::get_request(req)?;
        let state = self.read();
        let records = state.collection(col)?.records.get(req);
        Ok(GetResult::from_records(records, &req.include))
    }

    fn query(&self, col: &CollectionInfo, req: &QueryRequest) -> Result<QueryResult> {
        let state = self.read();
        let c = state.collection(col)?;
        validate::embeddings(&req.embeddings, c.info.dimension)?;
        validate::query_ids_exist(&req.selection, c.info.dimension, |id| c.records.contains(id))?;
        let mut result = QueryResult::new(&req.include);
        for hits in c.records.query(c.info.config.hnsw.space, req) {
            result.push(hits);
        }
        Ok(result)
    }

    fn count(&self, col: &CollectionInfo) -> Result<usize> {
        Ok(self.read().collection(col)?.records.len())
    }
}
