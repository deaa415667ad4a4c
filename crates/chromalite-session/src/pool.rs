//! [`ConnectionPool`]: pooled backend connections on `r2d2`, and [`PoolBackend`], the
//! [`VectorBackend`] that borrows one connection per call.
//!
//! A connection is an `Arc<dyn VectorBackend>` made by a [`Connector`]. Stores that allow one
//! writer per directory (the sqlite backend) use a [`SharedConnector`]: every pooled connection
//! shares the one open backend, and the store is closed (its lock released) when the last
//! connection closes.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, SystemTime};

use chromalite_core::{
    CollectionInfo, CreateCollection, Database, DatabaseRef, DeleteRequest, Error, GetRequest, GetResult,
    ModifyCollection, QueryRequest, QueryResult, RecordBatch, Result, Selection, Tenant, VectorBackend,
};

use crate::lock;

/// Opens connections to one store.
pub trait Connector: Send + Sync + 'static {
    /// A new (or shared) connection.
    fn connect(&self) -> Result<Arc<dyn VectorBackend>>;
}

impl<F> Connector for F
where
    F: Fn() -> Result<Arc<dyn VectorBackend>> + Send + Sync + 'static,
{
    fn connect(&self) -> Result<Arc<dyn VectorBackend>> {
        self()
    }
}

/// Shares one open backend among all connections; opens it again after the last one closed.
pub struct SharedConnector<F> {
    open: F,
    current: Mutex<Option<Weak<dyn VectorBackend>>>,
}

impl<F> SharedConnector<F>
where
    F: Fn() -> Result<Arc<dyn VectorBackend>> + Send + Sync + 'static,
{
    /// Shares what `open` opens.
    pub fn new(open: F) -> Self {
        SharedConnector { open, current: Mutex::new(None) }
    }
}

impl<F> Connector for SharedConnector<F>
where
    F: Fn() -> Result<Arc<dyn VectorBackend>> + Send + Sync + 'static,
{
    fn connect(&self) -> Result<Arc<dyn VectorBackend>> {
        let mut current = lock(&self.current);
        if let Some(live) = current.as_ref().and_then(Weak::upgrade) {
            return Ok(live);
        }
        let fresh = (self.open)()?;
        *current = Some(Arc::downgrade(&fresh));
        Ok(fresh)
    }
}

/// One pooled connection.
pub struct Connection {
    pub id: u64,
    pub backend: Arc<dyn VectorBackend>,
    pub created_at: SystemTime,
}

/// The pool's connection manager (opaque).
pub struct Manager {
    connector: Arc<dyn Connector>,
    next_id: AtomicU64,
}

impl r2d2::ManageConnection for Manager {
    type Connection = Connection;
    type Error = Error;

    fn connect(&self) -> Result<Connection> {
        let backend = self.connector.connect()?;
        Ok(Connection { id: self.next_id.fetch_add(1, Ordering::Relaxed), backend, created_at: SystemTime::now() })
    }

    fn is_valid(&self, conn: &mut Connection) -> Result<()> {
        conn.backend.heartbeat().map(|_| ())
    }

    fn has_broken(&self, _conn: &mut Connection) -> bool {
        false
    }
}

/// Pool sizing and timing.
#[derive(Debug, Clone)]
pub struct PoolOptions {
    /// Most connections open at once (default 5).
    pub max_connections: u32,
    /// A connection unused this long is closed (default 300 s).
    pub idle_timeout: Duration,
    /// How long a checkout waits for a free connection before failing with `Timeout`.
    pub checkout_timeout: Duration,
    /// Connections opened ahead of use (0: connections are created lazily).
    pub warm_up: u32,
    /// Heartbeat each connection when it is checked out.
    pub health_check_on_checkout: bool,
}

impl Default for PoolOptions {
    fn default() -> Self {
        PoolOptions {
            max_connections: 5,
            idle_timeout: Duration::from_mins(5),
            checkout_timeout: Duration::from_secs(30),
            warm_up: 0,
            health_check_on_checkout: true,
        }
    }
}

/// Reusable connections with a size limit, idle timeout and bounded checkout.
pub struct ConnectionPool {
    connector: Arc<dyn Connector>,
    opts: PoolOptions,
    /// Replaced wholesale to close idle connections: r2d2 closes a pool's idle connections when
    /// the pool is dropped, and has no call to close them on demand.
    pool: RwLock<r2d2::Pool<Manager>>,
    next_id: Arc<AtomicU64>,
}

impl std::fmt::Debug for ConnectionPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionPool")
            .field("options", &self.opts)
            .field("open", &self.open_connections())
            .finish_non_exhaustive()
    }
}

/// A checked-out connection; returns to the pool when dropped.
pub type PooledConnection = r2d2::PooledConnection<Manager>;

impl ConnectionPool {
    /// A pool over `connector`; no connection is opened until needed (unless `warm_up` > 0).
    pub fn new(connector: Arc<dyn Connector>, opts: PoolOptions) -> ConnectionPool {
        let next_id = Arc::new(AtomicU64::new(1));
        let pool = build(&connector, &opts, &next_id);
        ConnectionPool { connector, opts, pool: RwLock::new(pool), next_id }
    }

    /// The options in force.
    #[must_use]
    pub fn options(&self) -> &PoolOptions {
        &self.opts
    }

    /// A connection, waiting at most `checkout_timeout`; `Timeout` when the pool stays
    /// exhausted, the connector's error when a new connection cannot be opened.
    pub fn get_connection(&self) -> Result<PooledConnection> {
        let pool = self.pool.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        if let Some(conn) = pool.try_get() {
            return Ok(conn);
        }
        // r2d2 retries a failing connect until the checkout timeout and then reports only a
        // timeout. When no connection is open (first use, or the store was away) opening once
        // here fails fast with the store's own error (`Locked`, `Unavailable`...); with a shared
        // connector the probe is the very connection r2d2 then takes.
        let _probe = (pool.state().connections == 0).then(|| self.connector.connect()).transpose()?;
        pool.get().map_err(|e| {
            let state = pool.state();
            match e.to_string() {
                m if state.connections >= self.opts.max_connections => Error::Timeout(format!(
                    "no free connection within {:?} ({} of {} in use): {m}",
                    self.opts.checkout_timeout,
                    state.connections - state.idle_connections,
                    self.opts.max_connections
                )),
                m => Error::Unavailable { message: format!("cannot open a connection: {m}"), retry_after: None },
            }
        })
    }

    /// Connections open now (in use and idle).
    #[must_use]
    pub fn open_connections(&self) -> u32 {
        self.pool.read().unwrap_or_else(std::sync::PoisonError::into_inner).state().connections
    }

    /// Connections in use now.
    #[must_use]
    pub fn in_use(&self) -> u32 {
        let s = self.pool.read().unwrap_or_else(std::sync::PoisonError::into_inner).state();
        s.connections - s.idle_connections
    }

    /// Closes every connection not in use; returns how many. Connections in use close when they
    /// are returned.
    pub fn close_idle_connections(&self) -> usize {
        let fresh = build(&self.connector, &PoolOptions { warm_up: 0, ..self.opts.clone() }, &self.next_id);
        let old = std::mem::replace(&mut *self.pool.write().unwrap_or_else(std::sync::PoisonError::into_inner), fresh);
        let idle = old.state().idle_connections as usize;
        drop(old);
        idle
    }

    /// Closes all connections: idle ones now, the ones in use as soon as they are returned.
    pub fn close_all_connections(&self) -> usize {
        let in_use = self.in_use() as usize;
        self.close_idle_connections() + in_use
    }
}

fn build(connector: &Arc<dyn Connector>, opts: &PoolOptions, next_id: &Arc<AtomicU64>) -> r2d2::Pool<Manager> {
    let manager = Manager {
        connector: Arc::clone(connector),
        next_id: AtomicU64::new(next_id.fetch_add(1_000_000, Ordering::Relaxed)),
    };
    r2d2::Pool::builder()
        .max_size(opts.max_connections.max(1))
        .min_idle(Some(opts.warm_up.min(opts.max_connections)))
        .idle_timeout(Some(opts.idle_timeout.max(Duration::from_secs(1))))
        .connection_timeout(opts.checkout_timeout.max(Duration::from_millis(1)))
        .test_on_check_out(opts.health_check_on_checkout)
        // Lazy: the first checkout opens the first connection; r2d2 keeps warm-up in the background.
        .build_unchecked(manager)
}

/// A [`VectorBackend`] that borrows a pooled connection for each call.
pub struct PoolBackend {
    pool: Arc<ConnectionPool>,
}

impl PoolBackend {
    /// Calls go through `pool`.
    #[must_use]
    pub fn new(pool: Arc<ConnectionPool>) -> Self {
        PoolBackend { pool }
    }

    fn with<T>(&self, f: impl FnOnce(&dyn VectorBackend) -> Result<T>) -> Result<T> {
        let conn = self.pool.get_connection()?;
        f(conn.backend.as_ref())
    }
}

impl VectorBackend for PoolBackend {
    fn kind(&self) -> &'static str {
        "pool"
    }
    fn heartbeat(&self) -> Result<u64> {
        self.with(|b| b.heartbeat())
    }
    fn create_tenant(&self, name: &str) -> Result<()> {
        self.with(|b| b.create_tenant(name))
    }
    fn get_tenant(&self, name: &str) -> Result<Tenant> {
        self.with(|b| b.get_tenant(name))
    }
    fn create_database(&self, db: &DatabaseRef) -> Result<()> {
        self.with(|b| b.create_database(db))
    }
    fn get_database(&self, db: &DatabaseRef) -> Result<Database> {
        self.with(|b| b.get_database(db))
    }
    fn list_databases(&self, tenant: &str, limit: Option<usize>, offset: usize) -> Result<Vec<Database>> {
        self.with(|b| b.list_databases(tenant, limit, offset))
    }
    fn delete_database(&self, db: &DatabaseRef) -> Result<()> {
        self.with(|b| b.delete_database(db))
    }
    fn create_collection(&self, db: &DatabaseRef, req: &CreateCollection) -> Result<CollectionInfo> {
        self.with(|b| b.create_collection(db, req))
    }
    fn get_collection(&self, db: &DatabaseRef, name: &str) -> Result<CollectionInfo> {
        self.with(|b| b.get_collection(db, name))
    }
    fn list_collections(&self, db: &DatabaseRef, limit: Option<usize>, offset: usize) -> Result<Vec<CollectionInfo>> {
        self.with(|b| b.list_collections(db, limit, offset))
    }
    fn count_collections(&self, db: &DatabaseRef) -> Result<usize> {
        self.with(|b| b.count_collections(db))
    }
    fn modify_collection(&self, db: &DatabaseRef, name: &str, req: &ModifyCollection) -> Result<()> {
        self.with(|b| b.modify_collection(db, name, req))
    }
    fn delete_collection(&self, db: &DatabaseRef, name: &str) -> Result<()> {
        self.with(|b| b.delete_collection(db, name))
    }
    fn add(&self, col: &CollectionInfo, batch: &RecordBatch) -> Result<()> {
        self.with(|b| b.add(col, batch))
    }
    fn upsert(&self, col: &CollectionInfo, batch: &RecordBatch) -> Result<()> {
        self.with(|b| b.upsert(col, batch))
    }
    fn update(&self, col: &CollectionInfo, batch: &RecordBatch) -> Result<()> {
        self.with(|b| b.update(col, batch))
    }
    fn delete(&self, col: &CollectionInfo, selection: &Selection) -> Result<()> {
        self.with(|b| b.delete(col, selection))
    }
    fn delete_records(&self, col: &CollectionInfo, req: &DeleteRequest) -> Result<usize> {
        self.with(|b| b.delete_records(col, req))
    }
    fn get(&self, col: &CollectionInfo, req: &GetRequest) -> Result<GetResult> {
        self.with(|b| b.get(col, req))
    }
    fn query(&self, col: &CollectionInfo, req: &QueryRequest) -> Result<QueryResult> {
        self.with(|b| b.query(col, req))
    }
    fn count(&self, col: &CollectionInfo) -> Result<usize> {
        self.with(|b| b.count(col))
    }
    fn flush(&self) -> Result<()> {
        self.with(|b| b.flush())
    }
}
