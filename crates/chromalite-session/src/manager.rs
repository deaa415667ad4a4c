//! [`DatabaseManager`]: the one object an application holds for a store.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant, SystemTime};

use chromalite::{Client, Collection};
use chromalite_core::{DatabaseRef, VectorBackend};

use crate::cleanup::{register_cleanup_handler, CleanupGuard};
use crate::error::SessionResult;
use crate::integrity::validate_database_integrity;
use crate::lock;
use crate::model::{CleanupResult, DatabaseConnection, HealthReport, Mode, SessionInfo, StateChange};
use crate::pool::{ConnectionPool, Connector, PoolBackend, PoolOptions, SharedConnector};
use crate::resilient::{ResilientBackend, ResilientOptions};
use crate::store::{self, session_dir, SQLITE_FILE};
use crate::tracker::SessionTracker;

/// Everything a [`DatabaseManager`] can be tuned with.
#[derive(Debug, Clone)]
pub struct ManagerOptions {
    /// Close connections, flush and take a recovery point on drop, SIGINT and SIGTERM.
    pub cleanup_on_exit: bool,
    pub pool: PoolOptions,
    /// Retry, timeout and degradation behaviour. `journal_dir` defaults to the store's
    /// `chromalite-session` folder.
    pub resilience: ResilientOptions,
    /// Sessions idle this long expire (default 24 h).
    pub session_ttl: Duration,
    /// Take a recovery point after this many journaled writes (`None`: only on cleanup).
    pub checkpoint_every: Option<usize>,
    /// Tenant and database the collection handles work in.
    pub database: DatabaseRef,
}

impl Default for ManagerOptions {
    fn default() -> Self {
        ManagerOptions {
            cleanup_on_exit: true,
            pool: PoolOptions::default(),
            resilience: ResilientOptions { recovery_log: true, ..ResilientOptions::default() },
            session_ttl: Duration::from_hours(24),
            checkpoint_every: Some(10_000),
            database: DatabaseRef::default(),
        }
    }
}

struct Inner {
    base: PathBuf,
    opts: ManagerOptions,
    pool: Arc<ConnectionPool>,
    backend: Arc<ResilientBackend>,
    client: Client,
    handles: Mutex<HashMap<String, DatabaseConnection>>,
    tracker: SessionTracker,
    writes_at_checkpoint: Mutex<u64>,
}

/// Hands out collections over a pooled, retrying, degradable backend; tracks sessions; cleans
/// up on exit. Cheap to share: wrap it in an `Arc` (all methods take `&self`).
pub struct DatabaseManager {
    inner: Arc<Inner>,
    _exit: Option<CleanupGuard>,
}

impl std::fmt::Debug for DatabaseManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseManager")
            .field("base", &self.inner.base)
            .field("mode", &self.mode())
            .finish_non_exhaustive()
    }
}

impl DatabaseManager {
    /// A manager for the store at `base_path`, reached through `connector`.
    pub fn new(
        base_path: impl AsRef<Path>,
        connector: Arc<dyn Connector>,
        mut options: ManagerOptions,
    ) -> SessionResult<DatabaseManager> {
        let base = base_path.as_ref().to_path_buf();
        std::fs::create_dir_all(&base).map_err(|e| crate::error::SessionError::io(&base, e))?;
        if options.resilience.journal_dir.is_none() {
            options.resilience.journal_dir = Some(session_dir(&base));
        }
        if options.resilience.label == ResilientOptions::default().label {
            options.resilience.label = base.display().to_string();
        }
        let fresh_journal =
            options.resilience.journal_dir.as_deref().is_some_and(|d| !d.join(crate::journal::JOURNAL_FILE).exists());
        let pool = Arc::new(ConnectionPool::new(connector, options.pool.clone()));
        let backend =
            Arc::new(ResilientBackend::new(Arc::new(PoolBackend::new(Arc::clone(&pool))), options.resilience.clone())?);
        let client = Client::with_backend(Arc::clone(&backend) as Arc<dyn VectorBackend>)
            .scoped(&options.database.tenant, &options.database.database);
        let tracker = SessionTracker::new(&session_dir(&base).join("sessions"), &base, options.session_ttl)?;
        let inner = Arc::new(Inner {
            base,
            opts: options,
            pool,
            backend,
            client,
            handles: Mutex::default(),
            tracker,
            writes_at_checkpoint: Mutex::new(0),
        });
        if fresh_journal && inner.backend.keeps_recovery_log() {
            inner.start_history()?;
        }
        let exit = inner.opts.cleanup_on_exit.then(|| {
            let weak: Weak<Inner> = Arc::downgrade(&inner);
            register_cleanup_handler(move || {
                if let Some(inner) = weak.upgrade() {
                    let _ = inner.cleanup();
                }
            })
        });
        Ok(DatabaseManager { inner, _exit: exit })
    }

    /// A manager for a persist directory opened by `open` (for example
    /// `|p| Ok(Arc::new(SqliteBackend::open(p)?) as _)`). The directory allows one writer, so all
    /// pooled connections share one open backend, closed when the last connection closes.
    pub fn open<F>(base_path: impl AsRef<Path>, open: F, options: ManagerOptions) -> SessionResult<DatabaseManager>
    where
        F: Fn(&Path) -> chromalite_core::Result<Arc<dyn VectorBackend>> + Send + Sync + 'static,
    {
        let path = base_path.as_ref().to_path_buf();
        let p = path.clone();
        let connector = Arc::new(SharedConnector::new(move || open(&p)));
        DatabaseManager::new(path, connector, options)
    }

    /// The store's path.
    #[must_use]
    pub fn base_path(&self) -> &Path {
        &self.inner.base
    }

    /// A client over the managed backend (scoped to the configured tenant and database).
    #[must_use]
    pub fn client(&self) -> Client {
        self.inner.client.clone()
    }

    /// The managed backend (retries, degradation, journal).
    #[must_use]
    pub fn backend(&self) -> &Arc<ResilientBackend> {
        &self.inner.backend
    }

    /// The connection pool.
    #[must_use]
    pub fn pool(&self) -> &Arc<ConnectionPool> {
        &self.inner.pool
    }

    /// The collection `name`, created when missing; its connection is tracked until closed.
    pub fn get_or_create_database(&self, name: &str) -> chromalite_core::Result<Collection> {
        let col = self.inner.client.get_or_create_collection(name)?;
        let now = SystemTime::now();
        let mut handles = lock(&self.inner.handles);
        let entry = handles.entry(name.to_owned()).or_insert_with(|| DatabaseConnection {
            collection_name: name.to_owned(),
            connection_id: chromalite_core::new_uuid(),
            backend: self.inner.backend.primary().kind().to_owned(),
            created_at: now,
            last_used: now,
            is_active: true,
        });
        entry.last_used = now;
        entry.is_active = true;
        drop(handles);
        self.inner.maybe_checkpoint();
        Ok(col)
    }

    /// Stops tracking the collection `name`; returns whether it was open.
    #[must_use]
    pub fn close_connection(&self, name: &str) -> bool {
        self.inner.tracker.forget_collection(name);
        lock(&self.inner.handles).remove(name).is_some()
    }

    /// The collection handles open now.
    #[must_use]
    pub fn connections(&self) -> Vec<DatabaseConnection> {
        lock(&self.inner.handles).values().cloned().collect()
    }

    /// Closes every handle and pooled connection, flushes the store and takes a recovery point.
    #[must_use]
    pub fn cleanup_all_connections(&self) -> CleanupResult {
        self.inner.cleanup()
    }

    /// Reachability, mode, pending replay, lock holder and (for persist directories) integrity.
    #[must_use]
    pub fn health_check(&self) -> HealthReport {
        let inner = &self.inner;
        let reachable = inner.backend.primary().heartbeat().is_ok();
        let mode = if reachable { inner.backend.try_recover() } else { inner.backend.mode() };
        let is_dir = inner.base.join(SQLITE_FILE).exists();
        let integrity = is_dir.then(|| validate_database_integrity(&inner.base));
        let pending = inner.backend.pending_replay();
        let message = match (reachable, mode) {
            (true, Mode::Normal) if integrity.as_ref().is_none_or(crate::IntegrityReport::is_ok) => {
                "healthy".to_owned()
            }
            (true, Mode::Normal) => {
                format!("damaged files found; run `chromalite --path {} doctor`", inner.base.display())
            }
            (_, mode) => format!("serving in {} mode with {pending} write(s) waiting for the store", mode.as_str()),
        };
        HealthReport {
            reachable,
            mode,
            pending_replay: pending,
            lock_holder: store::lock_holder(&inner.base),
            integrity,
            open_connections: inner.pool.open_connections() as usize,
            message,
        }
    }

    /// The current mode.
    #[must_use]
    pub fn mode(&self) -> Mode {
        self.inner.backend.mode()
    }

    /// A channel receiving every later state change.
    #[must_use]
    pub fn subscribe(&self) -> Receiver<StateChange> {
        self.inner.backend.subscribe()
    }

    /// Calls `f` on every later state change.
    pub fn on_state_change(&self, f: impl Fn(&StateChange) + Send + Sync + 'static) {
        self.inner.backend.on_state_change(f);
    }

    /// Starts a session.
    pub fn start_session(&self) -> SessionResult<SessionInfo> {
        self.inner.tracker.start()
    }

    /// Resumes session `id` (also after a restart) and reopens its collections.
    pub fn resume_session(&self, id: &str) -> SessionResult<SessionInfo> {
        let info = self.inner.tracker.resume(id)?;
        for name in &info.active_connections {
            self.get_or_create_database(name)?;
        }
        Ok(info)
    }

    /// The collection `name` for session `id` (recorded in the session).
    pub fn session_collection(&self, id: &str, name: &str) -> SessionResult<Collection> {
        self.inner.tracker.touch(id, Some(name))?;
        Ok(self.get_or_create_database(name)?)
    }

    /// Ends session `id`.
    pub fn end_session(&self, id: &str) -> SessionResult<()> {
        self.inner.tracker.end(id)
    }

    /// Expires idle sessions and closes the connections no remaining session uses.
    #[must_use]
    pub fn expire_idle_sessions(&self) -> Vec<SessionInfo> {
        let expired = self.inner.tracker.expire_idle();
        let still: Vec<String> = self.inner.tracker.active().into_iter().flat_map(|s| s.active_connections).collect();
        for name in expired.iter().flat_map(|s| &s.active_connections) {
            if !still.contains(name) {
                let _ = self.close_connection(name);
            }
        }
        expired
    }

    /// Takes a recovery point now (persist directories with a journal); returns its position.
    pub fn checkpoint(&self) -> SessionResult<Option<u64>> {
        self.inner.checkpoint()
    }
}

impl Inner {
    /// A new journal must be able to rebuild the store: an existing store gets a recovery point
    /// at position 0; a store that does not exist yet is created by journaled writes only.
    fn start_history(&self) -> SessionResult<()> {
        let dir = session_dir(&self.base);
        if self.base.join(SQLITE_FILE).exists() {
            let base = self.base.clone();
            return self
                .backend
                .with_journal(|j| j.map_or(Ok(0), |j| crate::recovery::checkpoint(&base, j)))
                .map(|_| ());
        }
        let marker = dir.join(crate::recovery::COMPLETE_HISTORY);
        crate::store::write_atomic(&marker, b"the journal holds every write since this store was created\n")
            .map_err(|e| crate::error::SessionError::io(&marker, e))
    }

    fn cleanup(&self) -> CleanupResult {
        let started = Instant::now();
        let handles = std::mem::take(&mut *lock(&self.handles)).len();
        let mut result = CleanupResult { connections_closed: handles, ..CleanupResult::default() };
        if let Err(e) = self.backend.flush() {
            result.errors_encountered.push(format!("flush: {e}"));
        }
        if let Err(e) = self.checkpoint() {
            result.errors_encountered.push(format!("recovery point: {e}"));
        }
        result.connections_closed += self.pool.close_all_connections();
        result.duration = started.elapsed();
        result
    }

    fn checkpoint(&self) -> SessionResult<Option<u64>> {
        if !self.backend.keeps_recovery_log() || !self.base.join(SQLITE_FILE).exists() {
            return Ok(None);
        }
        let base = self.base.clone();
        self.backend.with_journal(|j| match j {
            Some(j) if j.pending().is_empty() && j.last_seq() > latest_seq(&base) => {
                crate::recovery::checkpoint(&base, j).map(Some)
            }
            _ => Ok(None),
        })
    }

    fn maybe_checkpoint(&self) {
        let Some(every) = self.opts.checkpoint_every else { return };
        let last = self.backend.with_journal(|j| j.map_or(0, |j| j.last_seq()));
        let mut at = lock(&self.writes_at_checkpoint);
        if last.saturating_sub(*at) >= every as u64 && self.checkpoint().is_ok() {
            *at = last;
        }
    }
}

fn latest_seq(base: &Path) -> u64 {
    crate::recovery::latest_point(base).map_or(0, |(_, s)| s)
}

impl Drop for DatabaseManager {
    fn drop(&mut self) {
        if self.inner.opts.cleanup_on_exit {
            let _ = self.inner.cleanup();
        }
    }
}
