//! The conformance suite on a backend that implements only `VectorBackend::delete`, so every delete
//! goes through the trait's provided `delete_records` (get, then delete by ids): the path of
//! backends that do not override it, such as `chromalite-lance`, checked without building them.

use chromalite_core::{
    CollectionInfo, CreateCollection, Database, DatabaseRef, GetRequest, GetResult, ModifyCollection, QueryRequest,
    QueryResult, RecordBatch, Result, Selection, Tenant, VectorBackend,
};
use chromalite_memory::MemoryBackend;

mod conformance;

/// The in-memory backend with its own `delete_records` hidden.
struct DeleteOnly(MemoryBackend);

impl VectorBackend for DeleteOnly {
    fn kind(&self) -> &'static str {
        "memory-delete-only"
    }
    fn heartbeat(&self) -> Result<u64> {
        self.0.heartbeat()
    }
    fn create_tenant(&self, name: &str) -> Result<()> {
        self.0.create_tenant(name)
    }
    fn get_tenant(&self, name: &str) -> Result<Tenant> {
        self.0.get_tenant(name)
    }
    fn create_database(&self, db: &DatabaseRef) -> Result<()> {
        self.0.create_database(db)
    }
    fn get_database(&self, db: &DatabaseRef) -> Result<Database> {
        self.0.get_database(db)
    }
    fn list_databases(&self, tenant: &str, limit: Option<usize>, offset: usize) -> Result<Vec<Database>> {
        self.0.list_databases(tenant, limit, offset)
    }
    fn delete_database(&self, db: &DatabaseRef) -> Result<()> {
        self.0.delete_database(db)
    }
    fn create_collection(&self, db: &DatabaseRef, req: &CreateCollection) -> Result<CollectionInfo> {
        self.0.create_collection(db, req)
    }
    fn get_collection(&self, db: &DatabaseRef, name: &str) -> Result<CollectionInfo> {
        self.0.get_collection(db, name)
    }
    fn list_collections(&self, db: &DatabaseRef, limit: Option<usize>, offset: usize) -> Result<Vec<CollectionInfo>> {
        self.0.list_collections(db, limit, offset)
    }
    fn count_collections(&self, db: &DatabaseRef) -> Result<usize> {
        self.0.count_collections(db)
    }
    fn modify_collection(&self, db: &DatabaseRef, name: &str, req: &ModifyCollection) -> Result<()> {
        self.0.modify_collection(db, name, req)
    }
    fn delete_collection(&self, db: &DatabaseRef, name: &str) -> Result<()> {
        self.0.delete_collection(db, name)
    }
    fn add(&self, col: &CollectionInfo, batch: &RecordBatch) -> Result<()> {
        self.0.add(col, batch)
    }
    fn upsert(&self, col: &CollectionInfo, batch: &RecordBatch) -> Result<()> {
        self.0.upsert(col, batch)
    }
    fn update(&self, col: &CollectionInfo, batch: &RecordBatch) -> Result<()> {
        self.0.update(col, batch)
    }
    fn delete(&self, col: &CollectionInfo, selection: &Selection) -> Result<()> {
        self.0.delete(col, selection)
    }
    fn get(&self, col: &CollectionInfo, req: &GetRequest) -> Result<GetResult> {
        self.0.get(col, req)
    }
    fn query(&self, col: &CollectionInfo, req: &QueryRequest) -> Result<QueryResult> {
        self.0.query(col, req)
    }
    fn count(&self, col: &CollectionInfo) -> Result<usize> {
        self.0.count(col)
    }
}

#[test]
fn provided_delete_records_matches_chromadb() {
    conformance::run_all("provided delete_records", &|_dir| Box::new(DeleteOnly(MemoryBackend::new())));
}
