//! The [`VectorBackend`] trait: everything a Chroma client can do on one store.

use crate::collection::{CollectionInfo, CreateCollection, Database, DatabaseRef, ModifyCollection, Tenant};
use crate::error::Result;
use crate::record::{DeleteRequest, GetRequest, GetResult, Include, QueryRequest, QueryResult, RecordBatch, Selection};

/// A store of tenants, databases, collections and records with chromadb 1.5.9's semantics.
///
/// Implementations: in-memory (`chromalite-memory`), persistent Chroma directories
/// (`chromalite-sqlite`), a Chroma server (`chromalite-remote`). Every implementation must pass the
/// conformance suite in `tests/conformance.rs`, whose expectations were produced by chromadb.
///
/// All methods take `&self`: backends synchronise internally so one value can be shared across
/// threads (`Arc<dyn VectorBackend>`).
pub trait VectorBackend: Send + Sync {
    /// A short name of the backend kind, e.g. `"memory"`, for reports.
    fn kind(&self) -> &'static str;

    /// Checks the backend is reachable; returns a server-side timestamp in nanoseconds when known.
    fn heartbeat(&self) -> Result<u64>;

    /// Creates a tenant. `AlreadyExists` if it exists.
    fn create_tenant(&self, name: &str) -> Result<()>;
    /// Looks a tenant up. `NotFound` if missing.
    fn get_tenant(&self, name: &str) -> Result<Tenant>;
    /// Creates a database in a tenant.
    fn create_database(&self, db: &DatabaseRef) -> Result<()>;
    /// Looks a database up.
    fn get_database(&self, db: &DatabaseRef) -> Result<Database>;
    /// Lists a tenant's databases.
    fn list_databases(&self, tenant: &str, limit: Option<usize>, offset: usize) -> Result<Vec<Database>>;
    /// Deletes a database and its collections.
    fn delete_database(&self, db: &DatabaseRef) -> Result<()>;

    /// Creates a collection (or returns the existing one when `get_or_create`).
    fn create_collection(&self, db: &DatabaseRef, req: &CreateCollection) -> Result<CollectionInfo>;
    /// Looks a collection up by name.
    fn get_collection(&self, db: &DatabaseRef, name: &str) -> Result<CollectionInfo>;
    /// Lists collections in chromadb's order.
    fn list_collections(&self, db: &DatabaseRef, limit: Option<usize>, offset: usize) -> Result<Vec<CollectionInfo>>;
    /// Number of collections in a database.
    fn count_collections(&self, db: &DatabaseRef) -> Result<usize>;
    /// Renames a collection and/or replaces its metadata or configuration.
    fn modify_collection(&self, db: &DatabaseRef, name: &str, req: &ModifyCollection) -> Result<()>;
    /// Deletes a collection and all its records.
    fn delete_collection(&self, db: &DatabaseRef, name: &str) -> Result<()>;

    /// Adds records; ids that already exist are left untouched (chromadb ignores them).
    fn add(&self, col: &CollectionInfo, batch: &RecordBatch) -> Result<()>;
    /// Inserts new records and updates existing ones.
    fn upsert(&self, col: &CollectionInfo, batch: &RecordBatch) -> Result<()>;
    /// Updates existing records; missing ids are ignored.
    fn update(&self, col: &CollectionInfo, batch: &RecordBatch) -> Result<()>;
    /// Deletes the selected records: chromadb's `delete` without its `limit` and its count (see
    /// [`VectorBackend::delete_records`], which callers that want either use).
    fn delete(&self, col: &CollectionInfo, selection: &Selection) -> Result<()>;

    /// chromadb's `Collection.delete(ids, where, where_document, limit)`: deletes what `req`
    /// selects (at most `req.limit` records, the first in `get` order) and returns chromadb's
    /// `deleted` count: with ids alone, the number of ids given (missing ones included, as chromadb
    /// deletes them without looking); with a filter, the number of records that matched.
    ///
    /// The provided implementation is chromadb's own algorithm on top of [`VectorBackend::get`] and
    /// [`VectorBackend::delete`]: it resolves a filtered request to ids with `get`, then deletes those
    /// ids. It is two calls, so a concurrent write can land between them; backends override it to
    /// do both under one lock (memory, sqlite) or in one request (remote).
    ///
    /// ```
    /// # use chromalite_core::{CollectionInfo, DeleteRequest, Result, Selection, VectorBackend, Where};
    /// fn prune(b: &dyn VectorBackend, col: &CollectionInfo) -> Result<usize> {
    ///     // The first 100 records (in `get` order) with `stale == true`.
    ///     let stale = Selection { where_: Some(Where::eq("stale", true)), ..Default::default() };
    ///     b.delete_records(col, &DeleteRequest::new(stale).limit(100))
    /// }
    /// ```
    fn delete_records(&self, col: &CollectionInfo, req: &DeleteRequest) -> Result<usize> {
        crate::validate::delete_request(req)?;
        if let Some(ids) = req.ids_only() {
            self.delete(col, &req.selection)?;
            return Ok(ids.len());
        }
        let found = self.get(
            col,
            &GetRequest { selection: req.selection.clone(), limit: req.limit_usize(), offset: 0, include: Vec::new() },
        )?;
        if !found.ids.is_empty() {
            self.delete(col, &Selection { ids: Some(found.ids.clone()), ..Selection::default() })?;
        }
        Ok(found.ids.len())
    }
    /// Reads records.
    fn get(&self, col: &CollectionInfo, req: &GetRequest) -> Result<GetResult>;
    /// Nearest-neighbour search.
    fn query(&self, col: &CollectionInfo, req: &QueryRequest) -> Result<QueryResult>;
    /// Number of records in a collection.
    fn count(&self, col: &CollectionInfo) -> Result<usize>;

    /// The first `limit` records, with embeddings, documents and metadatas.
    fn peek(&self, col: &CollectionInfo, limit: usize) -> Result<GetResult> {
        let include = vec![Include::Embeddings, Include::Documents, Include::Metadatas];
        self.get(col, &GetRequest { limit: Some(limit), include, ..GetRequest::default() })
    }

    /// Makes every acknowledged write durable and releases files (no-op where not applicable).
    fn flush(&self) -> Result<()> {
        Ok(())
    }
}
