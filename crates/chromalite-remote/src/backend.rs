//! [`RemoteBackend`]: the [`VectorBackend`] contract over `/api/v2/...`.

use std::sync::{Arc, OnceLock};

use chromalite_core::validate::{self, WriteOp};
use chromalite_core::{
    CollectionConfig, CollectionInfo, CreateCollection, Database, DatabaseRef, DeleteRequest, Error, GetRequest,
    GetResult, ModifyCollection, QueryRequest, QueryResult, RecordBatch, Result, Selection, Tenant, VectorBackend,
};
use serde_json::{json, Value};

use crate::convert;
use crate::errors::Subject;
use crate::http::{segment, Call, Endpoint, Manager, Method};
use crate::options::RemoteOptions;

/// A Chroma server (single node or distributed) behind the [`VectorBackend`] trait.
///
/// Requests are validated with chromadb's client-side rules first, as chromadb's Python
/// `HttpClient` does, then sent over a pool of keep-alive connections. Cloning is not needed:
/// share it behind an `Arc`; it is `Send + Sync`.
pub struct RemoteBackend {
    endpoint: Arc<Endpoint>,
    pool: r2d2::Pool<Manager>,
    /// Whether the server takes base64-packed embeddings, learnt from its pre-flight checks.
    base64: OnceLock<bool>,
}

impl std::fmt::Debug for RemoteBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteBackend")
            .field("url", &self.endpoint.base_url)
            .field("auth", &self.endpoint.auth_description())
            .field("pool", &self.pool.state())
            .field("base64", &self.base64.get())
            .finish()
    }
}

impl RemoteBackend {
    /// A backend for the server at `url`, without a token and with default timeouts.
    ///
    /// Nothing is sent yet: the first call opens a connection, so this succeeds while the server
    /// is down (calls then fail with `Unavailable` until it is back).
    pub fn connect(url: &str) -> Result<RemoteBackend> {
        RemoteBackend::with_options(&RemoteOptions::new(url))
    }

    /// A backend with explicit options (token, auth header, timeouts, pool size).
    pub fn with_options(opts: &RemoteOptions) -> Result<RemoteBackend> {
        let endpoint = Arc::new(Endpoint::new(opts)?);
        let manager = Manager { endpoint: Arc::clone(&endpoint) };
        let pool = r2d2::Pool::builder()
            .max_size(opts.pool_size)
            .min_idle(Some(0))
            .test_on_check_out(true)
            .connection_timeout(opts.checkout_timeout)
            .build_unchecked(manager);
        Ok(RemoteBackend { endpoint, pool, base64: OnceLock::new() })
    }

    /// The server's base URL (no credentials are ever part of it).
    #[must_use]
    pub fn url(&self) -> &str {
        &self.endpoint.base_url
    }

    /// The server's version string (`GET /api/v2/version`).
    pub fn version(&self) -> Result<String> {
        let v = self.call(&Call::new(Method::Get, "/api/v2/version".into(), Subject::Server))?;
        Ok(v.as_str().map_or_else(|| v.to_string(), str::to_owned))
    }

    /// Deletes every tenant, database, collection and record on the server (`POST /api/v2/reset`).
    ///
    /// Servers refuse (`Unauthorized`) unless started with `allow_reset: true`; meant for tests.
    pub fn reset(&self) -> Result<()> {
        self.call(&Call::new(Method::Post, "/api/v2/reset".into(), Subject::Server)).map(drop)
    }

    fn call(&self, call: &Call) -> Result<Value> {
        let mut conn = self.pool.get().map_err(|e| Error::Unavailable {
            message: format!("{}: no pooled connection became free: {e}", self.url()),
            retry_after: None,
        })?;
        self.endpoint.send(&mut conn, call)
    }

    /// Asks the server once (`GET /api/v2/pre-flight-checks`, as chromadb's client does) whether
    /// it accepts base64-packed embeddings. A server without that route gets decimal arrays.
    fn packs_embeddings(&self) -> Result<bool> {
        if let Some(known) = self.base64.get() {
            return Ok(*known);
        }
        let supported = match self.call(&Call::new(Method::Get, "/api/v2/pre-flight-checks".into(), Subject::Server)) {
            Ok(v) => v.get("supports_base64_encoding").and_then(Value::as_bool).unwrap_or(false),
            Err(Error::NotFound { .. }) => false,
            // Unknown for now (server down, ...): do not remember a guess.
            Err(e) => return Err(e),
        };
        Ok(*self.base64.get_or_init(|| supported))
    }

    fn db_path(db: &DatabaseRef) -> String {
        format!("/api/v2/tenants/{}/databases/{}", segment(&db.tenant), segment(&db.database))
    }

    fn collection_path(col: &CollectionInfo, op: &str) -> String {
        format!("{}/collections/{}/{op}", Self::db_path(&col.db), segment(&col.id))
    }

    fn record_call(col: &CollectionInfo, method: Method, op: &str) -> Call {
        Call::new(method, Self::collection_path(col, op), Subject::Collection(col.name.clone()))
    }

    fn write(&self, col: &CollectionInfo, batch: &RecordBatch, op: WriteOp) -> Result<()> {
        validate::record_batch(batch, op, col.dimension)?;
        let name = match op {
            WriteOp::Add => "add",
            WriteOp::Upsert => "upsert",
            WriteOp::Update => "update",
        };
        let body = convert::batch(batch, self.packs_embeddings()?);
        self.call(&Self::record_call(col, Method::Post, name).body(body)).map(drop)
    }
}

impl VectorBackend for RemoteBackend {
    fn kind(&self) -> &'static str {
        "remote"
    }

    fn heartbeat(&self) -> Result<u64> {
        let v = self.call(&Call::new(Method::Get, "/api/v2/heartbeat".into(), Subject::Server))?;
        v.get("nanosecond heartbeat")
            .and_then(Value::as_u64)
            .ok_or_else(|| Error::Internal(format!("unexpected heartbeat answer: {v}")))
    }

    fn create_tenant(&self, name: &str) -> Result<()> {
        validate::tenant_or_database_name("tenant", name)?;
        let call =
            Call::new(Method::Post, "/api/v2/tenants".into(), Subject::Tenant(name.into())).body(json!({"name": name}));
        self.call(&call).map(drop)
    }

    fn get_tenant(&self, name: &str) -> Result<Tenant> {
        let call = Call::new(Method::Get, format!("/api/v2/tenants/{}", segment(name)), Subject::Tenant(name.into()));
        let v = self.call(&call)?;
        Ok(Tenant { name: v.get("name").and_then(Value::as_str).unwrap_or(name).to_owned() })
    }

    fn create_database(&self, db: &DatabaseRef) -> Result<()> {
        validate::tenant_or_database_name("database", &db.database)?;
        let path = format!("/api/v2/tenants/{}/databases", segment(&db.tenant));
        let call =
            Call::new(Method::Post, path, Subject::Database(db.database.clone())).body(json!({"name": db.database}));
        self.call(&call).map(drop)
    }

    fn get_database(&self, db: &DatabaseRef) -> Result<Database> {
        convert::database(&self.call(&Call::new(
            Method::Get,
            Self::db_path(db),
            Subject::Database(db.database.clone()),
        ))?)
    }

    fn list_databases(&self, tenant: &str, limit: Option<usize>, offset: usize) -> Result<Vec<Database>> {
        let path = format!("/api/v2/tenants/{}/databases", segment(tenant));
        let call = Call::new(Method::Get, path, Subject::Tenant(tenant.into()))
            .query("limit", limit)
            .query("offset", Some(offset));
        let v = self.call(&call)?;
        v.as_array()
            .ok_or_else(|| Error::Internal(format!("unexpected list_databases answer: {v}")))?
            .iter()
            .map(convert::database)
            .collect()
    }

    fn delete_database(&self, db: &DatabaseRef) -> Result<()> {
        self.call(&Call::new(Method::Delete, Self::db_path(db), Subject::Database(db.database.clone()))).map(drop)
    }

    fn create_collection(&self, db: &DatabaseRef, req: &CreateCollection) -> Result<CollectionInfo> {
        validate::collection_name(&req.name)?;
        if let Some(m) = &req.metadata {
            validate::collection_metadata(m)?;
        }
        // Same configuration checks as the local backends, before the server sees it.
        CollectionConfig::resolve(req.configuration.as_ref(), req.metadata.as_ref())?;
        let path = format!("{}/collections", Self::db_path(db));
        let call = Call::new(Method::Post, path, Subject::Collection(req.name.clone())).body(convert::create_body(req));
        convert::collection(&self.call(&call)?)
    }

    fn get_collection(&self, db: &DatabaseRef, name: &str) -> Result<CollectionInfo> {
        let path = format!("{}/collections/{}", Self::db_path(db), segment(name));
        convert::collection(&self.call(&Call::new(Method::Get, path, Subject::Collection(name.into())))?)
    }

    fn list_collections(&self, db: &DatabaseRef, limit: Option<usize>, offset: usize) -> Result<Vec<CollectionInfo>> {
        let path = format!("{}/collections", Self::db_path(db));
        let call = Call::new(Method::Get, path, Subject::Database(db.database.clone()))
            .query("limit", limit)
            .query("offset", Some(offset));
        convert::collections(&self.call(&call)?)
    }

    fn count_collections(&self, db: &DatabaseRef) -> Result<usize> {
        let path = format!("{}/collections_count", Self::db_path(db));
        convert::count(&self.call(&Call::new(Method::Get, path, Subject::Database(db.database.clone())))?)
    }

    fn modify_collection(&self, db: &DatabaseRef, name: &str, req: &ModifyCollection) -> Result<()> {
        if let Some(n) = &req.new_name {
            validate::collection_name(n)?;
        }
        if let Some(m) = &req.new_metadata {
            validate::modify_metadata(m)?;
        }
        // The API modifies by id; the trait names collections, so look the id up first.
        let col = self.get_collection(db, name)?;
        let path = format!("{}/collections/{}", Self::db_path(db), segment(&col.id));
        let subject = Subject::Collection(req.new_name.clone().unwrap_or_else(|| name.to_owned()));
        self.call(&Call::new(Method::Put, path, subject).body(convert::modify_body(req))).map(drop)
    }

    fn delete_collection(&self, db: &DatabaseRef, name: &str) -> Result<()> {
        let path = format!("{}/collections/{}", Self::db_path(db), segment(name));
        self.call(&Call::new(Method::Delete, path, Subject::Collection(name.into()))).map(drop)
    }

    fn add(&self, col: &CollectionInfo, batch: &RecordBatch) -> Result<()> {
        self.write(col, batch, WriteOp::Add)
    }

    fn upsert(&self, col: &CollectionInfo, batch: &RecordBatch) -> Result<()> {
        self.write(col, batch, WriteOp::Upsert)
    }

    fn update(&self, col: &CollectionInfo, batch: &RecordBatch) -> Result<()> {
        self.write(col, batch, WriteOp::Update)
    }

    fn delete(&self, col: &CollectionInfo, selection: &Selection) -> Result<()> {
        self.delete_records(col, &DeleteRequest::new(selection.clone())).map(drop)
    }

    /// One `POST .../delete` with chromadb's body (`limit` only when given, as chromadb's client
    /// sends it); the answer is the server's `{"deleted": n}` (0 when the server sends no count,
    /// as chromadb's client reads it). A server older than `limit` (chroma before 1.5.3) ignores
    /// the key and deletes every match.
    fn delete_records(&self, col: &CollectionInfo, req: &DeleteRequest) -> Result<usize> {
        validate::delete_request(req)?;
        let mut body = convert::selection(&req.selection);
        if let Some(n) = req.limit {
            body.insert("limit".into(), json!(n));
        }
        let v = self.call(&Self::record_call(col, Method::Post, "delete").body(Value::Object(body)))?;
        let deleted = v.get("deleted").and_then(Value::as_u64).unwrap_or(0);
        usize::try_from(deleted).map_err(|_| Error::Internal(format!("the server reported {deleted} deleted records")))
    }

    fn get(&self, col: &CollectionInfo, req: &GetRequest) -> Result<GetResult> {
        validate::get_request(req)?;
        let v = self.call(&Self::record_call(col, Method::Post, "get").body(convert::get_body(req)))?;
        convert::get_result(&v, &req.include)
    }

    fn query(&self, col: &CollectionInfo, req: &QueryRequest) -> Result<QueryResult> {
        validate::embeddings(&req.embeddings, col.dimension)?;
        let result = QueryResult::new(&req.include);
        let v = self.call(&Self::record_call(col, Method::Post, "query").body(convert::query_body(req, &result)))?;
        convert::query_result(&v, result)
    }

    fn count(&self, col: &CollectionInfo) -> Result<usize> {
        convert::count(&self.call(&Self::record_call(col, Method::Get, "count"))?)
    }
}
