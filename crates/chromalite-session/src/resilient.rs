//! [`ResilientBackend`]: a [`VectorBackend`] over a primary store that retries transient
//! failures, recreates missing defaults, and degrades instead of failing: to read-only when
//! writes fail but reads work, and to a journaled memory fallback when the primary is gone.
//!
//! # Exactly-once replay
//! While degraded, a write is applied to memory, appended to the [`Journal`] and fsynced before it
//! is acknowledged. When the primary answers again, pending entries are applied to it in journal
//! order, and the applied-position marker is advanced (and fsynced) after each one. A crash can
//! therefore repeat at most the one entry applied just before it, and every op repeated right
//! after itself leaves the same state (`add` skips existing ids, `upsert`/`update` write the
//! same values, deletes find nothing more, creates report `AlreadyExists`, which replay treats
//! as done): no write is lost and none takes effect twice.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use chromalite_core::{
    CollectionInfo, CreateCollection, Database, DatabaseRef, DeleteRequest, Error, ErrorKind, GetRequest, GetResult,
    ModifyCollection, QueryRequest, QueryResult, RecordBatch, Result, Selection, Tenant, VectorBackend,
    DEFAULT_DATABASE, DEFAULT_TENANT,
};
use chromalite_memory::MemoryBackend;

use crate::error::{SessionError, SessionResult};
use crate::journal::Journal;
use crate::lock;
use crate::model::{Mode, StateChange};
use crate::notify::Notifier;
use crate::ops::{self, Applied, RecordWrite, Resolve, WriteOp};
use crate::retry::{ErrorHandler, Recovery, RetryPolicy};

/// How a [`ResilientBackend`] behaves.
#[derive(Debug, Clone)]
pub struct ResilientOptions {
    pub retry: RetryPolicy,
    /// Bound on one call to the primary; a call that takes longer fails with `Timeout` (the
    /// stuck call finishes, or not, on a helper thread). `None` waits forever.
    pub call_timeout: Option<Duration>,
    /// Degrade to the journaled memory fallback when the primary is unavailable.
    pub fallback: bool,
    /// Folder of the journal. Needed for the fallback (writes must be durable before they are
    /// acknowledged) and for the recovery log.
    pub journal_dir: Option<PathBuf>,
    /// Journal every write, also in normal mode, so a store restored from a recovery point can
    /// be brought forward (see [`crate::repair`]).
    pub recovery_log: bool,
    /// How often a degraded backend checks whether the primary is back.
    pub probe_interval: Duration,
    /// The store's name in user-facing messages.
    pub label: String,
}

impl Default for ResilientOptions {
    fn default() -> Self {
        ResilientOptions {
            retry: RetryPolicy::default(),
            call_timeout: Some(Duration::from_secs(30)),
            fallback: true,
            journal_dir: None,
            recovery_log: false,
            probe_interval: Duration::from_secs(2),
            label: "the store".into(),
        }
    }
}

#[derive(Debug)]
struct State {
    mode: Mode,
    cause: Option<String>,
    last_probe: Instant,
}

/// Where a read or write is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Primary,
    Memory,
}

type Shared<T> = Arc<dyn Fn(&dyn VectorBackend, Target) -> Result<T> + Send + Sync>;
/// A call on the primary, shareable with a helper thread.
type Call<T> = Arc<dyn Fn(&dyn VectorBackend) -> Result<T> + Send + Sync>;

/// See the module documentation.
pub struct ResilientBackend {
    primary: Arc<dyn VectorBackend>,
    handler: ErrorHandler,
    opts: ResilientOptions,
    state: Mutex<State>,
    /// Serialises writes so the journal order is the order writes took effect.
    journal: Mutex<Option<Journal>>,
    memory: RwLock<Arc<MemoryBackend>>,
    /// Ids of collections created in memory: the primary knows them by name only.
    born_in_memory: Mutex<HashSet<String>>,
    /// Collections seen on the primary, so the fallback can recreate them by name.
    known: Mutex<HashMap<(DatabaseRef, String), CollectionInfo>>,
    notifier: Notifier,
}

impl std::fmt::Debug for ResilientBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResilientBackend")
            .field("primary", &self.primary.kind())
            .field("mode", &self.mode())
            .finish_non_exhaustive()
    }
}

impl ResilientBackend {
    /// Wraps `primary`. Opens the journal and, if a previous process left writes pending, replays
    /// them now, or starts in the memory fallback with those writes loaded when the primary is
    /// still away.
    pub fn new(primary: Arc<dyn VectorBackend>, opts: ResilientOptions) -> SessionResult<ResilientBackend> {
        let (journal, slot) = match opts.journal_dir.as_deref() {
            Some(dir) => Journal::open_slot(dir).map(|(j, n)| (Some(j), n))?,
            None => (None, 0),
        };
        let mut opts = opts;
        // Only the first slot's journal is the store's recovery log (see `crate::recovery`);
        // other processes writing at the same time journal only what waits for replay.
        opts.recovery_log &= slot == 0;
        let backend = ResilientBackend {
            primary,
            handler: ErrorHandler::new(opts.retry.clone()),
            state: Mutex::new(State { mode: Mode::Normal, cause: None, last_probe: Instant::now() }),
            journal: Mutex::new(journal),
            memory: RwLock::new(Arc::new(MemoryBackend::new())),
            born_in_memory: Mutex::default(),
            known: Mutex::default(),
            notifier: Notifier::default(),
            opts,
        };
        backend.resume_pending()?;
        if let (Some(dir), Mode::Normal) = (backend.opts.journal_dir.as_deref(), backend.mode()) {
            backend.adopt(dir, slot);
        }
        Ok(backend)
    }

    /// Replays the pending writes of journals whose process has ended (another process that
    /// wrote the store at the same time and died degraded). Those left pending stay for later.
    fn adopt(&self, session: &std::path::Path, own: usize) {
        for mut orphan in Journal::unowned_slots(session, own) {
            if !orphan.pending().is_empty() {
                let _ = self.replay(&mut orphan);
            }
        }
    }

    fn resume_pending(&self) -> SessionResult<()> {
        let mut guard = lock(&self.journal);
        let Some(journal) = guard.as_mut() else { return Ok(()) };
        if journal.pending().is_empty() {
            return Ok(());
        }
        if self.replay(journal).is_ok() {
            return Ok(());
        }
        // The primary is still away: serve the journaled writes from memory meanwhile.
        let memory = self.memory();
        for seq in journal.pending() {
            let entry = journal.read(seq)?;
            if let Ok(Some(info)) = entry.op.apply(memory.as_ref(), Resolve::Ensure).map(Applied::into_collection) {
                lock(&self.born_in_memory).insert(info.id);
            }
        }
        self.enter(Mode::MemoryFallback, Some("writes from an earlier run are still waiting for the store".into()));
        Ok(())
    }

    /// Whether this backend's journal is the store's recovery log (it owns the first slot).
    #[must_use]
    pub fn keeps_recovery_log(&self) -> bool {
        self.opts.recovery_log && self.opts.journal_dir.is_some()
    }

    /// The current mode.
    #[must_use]
    pub fn mode(&self) -> Mode {
        lock(&self.state).mode
    }

    /// A channel receiving every later state change.
    pub fn subscribe(&self) -> Receiver<StateChange> {
        self.notifier.subscribe()
    }

    /// Calls `f` on every later state change.
    pub fn on_state_change(&self, f: impl Fn(&StateChange) + Send + Sync + 'static) {
        self.notifier.on_change(f);
    }

    /// Every state change so far.
    #[must_use]
    pub fn state_history(&self) -> Vec<StateChange> {
        self.notifier.history()
    }

    /// Journaled writes the primary does not have yet.
    #[must_use]
    pub fn pending_replay(&self) -> usize {
        lock(&self.journal).as_ref().map_or(0, |j| j.pending().len())
    }

    /// The wrapped primary.
    #[must_use]
    pub fn primary(&self) -> &Arc<dyn VectorBackend> {
        &self.primary
    }

    /// The error handler (retry policy and recovery strategy).
    #[must_use]
    pub fn error_handler(&self) -> &ErrorHandler {
        &self.handler
    }

    /// Checks the primary now and, if it answers, replays pending writes and returns to normal.
    /// Returns the mode afterwards.
    pub fn try_recover(&self) -> Mode {
        let mut guard = lock(&self.journal);
        self.recover_locked(guard.as_mut());
        self.mode()
    }

    /// Runs `f` with the journal while no write is in flight (for recovery points).
    pub(crate) fn with_journal<T>(&self, f: impl FnOnce(Option<&mut Journal>) -> T) -> T {
        let mut guard = lock(&self.journal);
        f(guard.as_mut())
    }

    fn memory(&self) -> Arc<MemoryBackend> {
        Arc::clone(&self.memory.read().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    fn enter(&self, to: Mode, cause: Option<String>) {
        let from = {
            let mut s = lock(&self.state);
            if s.mode == to {
                return;
            }
            let from = s.mode;
            s.mode = to;
            s.cause.clone_from(&cause);
            s.last_probe = Instant::now();
            from
        };
        let (message, guidance) =
            self.handler.graceful_degradation(to, cause.as_deref().unwrap_or("no details"), &self.opts.label);
        self.notifier.send(&StateChange { from, to, at: SystemTime::now(), message, guidance, cause });
    }

    fn probe_due(&self) -> bool {
        let mut s = lock(&self.state);
        if s.mode == Mode::Normal || s.last_probe.elapsed() < self.opts.probe_interval {
            return false;
        }
        s.last_probe = Instant::now();
        true
    }

    /// Runs `f` on the primary within the call timeout.
    fn bounded<T: Send + 'static>(&self, f: Call<T>) -> Result<T> {
        let Some(limit) = self.opts.call_timeout else { return f(self.primary.as_ref()) };
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let primary = Arc::clone(&self.primary);
        std::thread::Builder::new()
            .name("chromalite-call".into())
            .spawn(move || {
                let _ = tx.send(f(primary.as_ref()));
            })
            .map_err(|e| Error::Internal(format!("cannot start a call thread: {e}")))?;
        rx.recv_timeout(limit)
            .unwrap_or_else(|_| Err(Error::Timeout(format!("{} did not answer within {limit:?}", self.opts.label))))
    }

    /// One primary call with retries, default recreation and lock takeover.
    fn call_primary<T: Send + 'static>(&self, f: &Call<T>) -> Result<T> {
        let mut recreated = false;
        self.handler.retry_with_backoff(|| match self.bounded(Arc::clone(f)) {
            Err(e) => match self.handler.handle_connection_error(&e, "call") {
                Recovery::RecreateDefaults if !recreated => {
                    recreated = true;
                    self.recreate_defaults();
                    self.bounded(Arc::clone(f))
                }
                // The OS lock dies with its holder, so a dead holder's lock is already free.
                Recovery::TakeOverLock { .. } => self.bounded(Arc::clone(f)),
                _ => Err(e),
            },
            ok => ok,
        })
    }

    fn recreate_defaults(&self) {
        let _ = self.primary.create_tenant(DEFAULT_TENANT);
        let _ = self.primary.create_database(&DatabaseRef::new(DEFAULT_TENANT, DEFAULT_DATABASE));
    }

    fn falls_back(&self, e: &Error) -> bool {
        self.opts.fallback
            && lock(&self.journal).is_some()
            && matches!(e.kind(), ErrorKind::Unavailable | ErrorKind::Timeout | ErrorKind::Locked)
    }

    fn falls_back_locked(&self, e: &Error, journal: Option<&Journal>) -> bool {
        self.opts.fallback
            && journal.is_some()
            && matches!(e.kind(), ErrorKind::Unavailable | ErrorKind::Timeout | ErrorKind::Locked)
    }

    // ---- reads ----------------------------------------------------------------------------

    fn read<T: Send + 'static>(&self, f: &Shared<T>) -> Result<T> {
        if self.probe_due() {
            self.try_recover();
        }
        if self.mode() == Mode::MemoryFallback {
            return f(self.memory().as_ref(), Target::Memory);
        }
        let g = Arc::clone(f);
        match self.call_primary(&(Arc::new(move |b: &dyn VectorBackend| g(b, Target::Primary)) as Call<T>)) {
            Err(e) if self.falls_back(&e) => {
                self.enter(Mode::MemoryFallback, Some(e.to_string()));
                f(self.memory().as_ref(), Target::Memory)
            }
            r => r,
        }
    }

    /// A read on one collection: mapped by name where its id is foreign to the target.
    fn read_col<T: Send + 'static>(
        &self,
        col: &CollectionInfo,
        f: impl Fn(&dyn VectorBackend, &CollectionInfo) -> Result<T> + Send + Sync + 'static,
    ) -> Result<T> {
        let col = col.clone();
        let by_name = lock(&self.born_in_memory).contains(&col.id);
        self.read(
            &(Arc::new(move |b: &dyn VectorBackend, target| {
                let info = match target {
                    Target::Primary if by_name => b.get_collection(&col.db, &col.name)?,
                    Target::Primary => col.clone(),
                    Target::Memory => ops::resolve(b, &(&col).into(), Resolve::Ensure)?,
                };
                f(b, &info)
            }) as Shared<T>),
        )
    }

    /// A collection by name; in the fallback, one seen on the primary is recreated in memory.
    fn find_collection(&self, db: &DatabaseRef, name: &str) -> Result<CollectionInfo> {
        let known = lock(&self.known).get(&(db.clone(), name.to_owned())).cloned();
        let (db2, name2) = (db.clone(), name.to_owned());
        let info = self.read(
            &(Arc::new(move |b: &dyn VectorBackend, target| match (target, &known) {
                (Target::Memory, Some(k)) => ops::resolve(b, &k.into(), Resolve::Ensure),
                _ => b.get_collection(&db2, &name2),
            }) as Shared<CollectionInfo>),
        )?;
        self.remember(&info);
        Ok(info)
    }

    fn remember(&self, info: &CollectionInfo) {
        if self.mode() == Mode::Normal {
            lock(&self.known).insert((info.db.clone(), info.name.clone()), info.clone());
        }
    }

    // ---- writes ---------------------------------------------------------------------------

    fn write(&self, op: WriteOp, given: Option<&CollectionInfo>) -> Result<Applied> {
        let mut guard = lock(&self.journal);
        if self.probe_due() {
            self.recover_locked(guard.as_mut());
        }
        match self.mode() {
            Mode::MemoryFallback => self.write_fallback(guard.as_mut(), &op),
            // In read-only mode a write is the probe: it either works or says why not.
            _ => self.write_primary(guard.as_mut(), op, given),
        }
    }

    fn write_primary(
        &self,
        journal: Option<&mut Journal>,
        op: WriteOp,
        given: Option<&CollectionInfo>,
    ) -> Result<Applied> {
        let op = Arc::new(op);
        let given = given.filter(|c| !lock(&self.born_in_memory).contains(&c.id)).cloned();
        let o = Arc::clone(&op);
        let call: Call<Applied> =
            Arc::new(move |b: &dyn VectorBackend| o.apply(b, given.as_ref().map_or(Resolve::ByName, Resolve::Given)));
        let result = self.call_primary(&call);
        match result {
            Ok(v) => {
                if let (Some(j), true) = (journal, self.opts.recovery_log) {
                    j.append(&op, true).map_err(session_to_core)?;
                }
                if self.mode() == Mode::ReadOnly {
                    self.enter(Mode::Normal, None);
                }
                if let Some(info) = v.collection() {
                    self.remember(info);
                }
                Ok(v)
            }
            Err(e) if self.falls_back_locked(&e, journal.as_deref()) => {
                self.enter(Mode::MemoryFallback, Some(e.to_string()));
                self.write_fallback(journal, &op)
            }
            Err(e) if matches!(e.kind(), ErrorKind::ReadOnly | ErrorKind::Io) => {
                let reason = e.to_string();
                self.enter(Mode::ReadOnly, Some(reason.clone()));
                let (msg, steps) = self.handler.graceful_degradation(Mode::ReadOnly, &reason, &self.opts.label);
                Err(Error::ReadOnly { reason: format!("{msg} {}", steps.join(" ")) })
            }
            Err(e) => Err(e),
        }
    }

    fn write_fallback(&self, journal: Option<&mut Journal>, op: &WriteOp) -> Result<Applied> {
        let Some(journal) = journal else {
            return Err(Error::Unavailable {
                message: format!("{} is unavailable and no journal is configured", self.opts.label),
                retry_after: None,
            });
        };
        // Memory first: it validates exactly like the primary, so only valid writes are journaled.
        let v = op.apply(self.memory().as_ref(), Resolve::Ensure)?;
        journal.append(op, false).map_err(session_to_core)?;
        if let Some(info) = v.collection() {
            lock(&self.born_in_memory).insert(info.id.clone());
        }
        Ok(v)
    }

    fn recover_locked(&self, journal: Option<&mut Journal>) {
        if self.mode() != Mode::MemoryFallback {
            return;
        }
        let Some(journal) = journal else { return };
        if self.bounded(Arc::new(|b: &dyn VectorBackend| b.heartbeat())).is_err() {
            return;
        }
        if self.replay(journal).is_ok() {
            *self.memory.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(MemoryBackend::new());
        }
    }

    /// Applies pending journal entries to the primary in order, advancing the marker after each.
    /// Stops at the first transient failure (the primary went away again); an entry the primary
    /// rejects for good is reported and skipped so it cannot block the ones after it.
    fn replay(&self, journal: &mut Journal) -> Result<()> {
        let mut rejected = Vec::new();
        for seq in journal.pending() {
            let entry = journal.read(seq).map_err(session_to_core)?;
            let op = Arc::new(entry.op);
            let o = Arc::clone(&op);
            match self.bounded(Arc::new(move |b: &dyn VectorBackend| o.apply(b, Resolve::ByName))) {
                Ok(_) => {}
                Err(e) if op.already_done(&e) => {}
                Err(e) if e.kind().is_transient() => return Err(e),
                Err(e) => rejected.push(format!("write {seq}: {e}")),
            }
            journal.mark_applied(seq).map_err(session_to_core)?;
        }
        let cause = (!rejected.is_empty())
            .then(|| format!("the store rejected {} journaled write(s): {}", rejected.len(), rejected.join("; ")));
        if self.mode() == Mode::Normal {
            if let Some(c) = cause {
                self.notifier.send(&StateChange {
                    from: Mode::Normal,
                    to: Mode::Normal,
                    at: SystemTime::now(),
                    message: c.clone(),
                    guidance: Vec::new(),
                    cause: Some(c),
                });
            }
        } else {
            self.enter(Mode::Normal, cause);
        }
        Ok(())
    }
}

fn session_to_core(e: SessionError) -> Error {
    match e {
        SessionError::Store(e) => e,
        SessionError::Io { path, source } => Error::io(path, source),
        other => Error::Internal(other.to_string()),
    }
}

/// A read that needs no collection mapping (the memory fallback answers from what it holds).
macro_rules! read_db {
    ($self:ident, |$b:ident| $body:expr) => {
        $self.read(&(Arc::new(move |$b: &dyn VectorBackend, _: Target| $body) as Shared<_>))
    };
}

impl VectorBackend for ResilientBackend {
    fn kind(&self) -> &'static str {
        "resilient"
    }

    fn heartbeat(&self) -> Result<u64> {
        self.read(&(Arc::new(|b: &dyn VectorBackend, _: Target| b.heartbeat()) as Shared<u64>))
    }

    fn create_tenant(&self, name: &str) -> Result<()> {
        self.write(WriteOp::CreateTenant { name: name.into() }, None).map(|_| ())
    }

    fn get_tenant(&self, name: &str) -> Result<Tenant> {
        let name = name.to_owned();
        read_db!(self, |b| b.get_tenant(&name))
    }

    fn create_database(&self, db: &DatabaseRef) -> Result<()> {
        self.write(WriteOp::CreateDatabase { db: db.clone() }, None).map(|_| ())
    }

    fn get_database(&self, db: &DatabaseRef) -> Result<Database> {
        let db = db.clone();
        read_db!(self, |b| b.get_database(&db))
    }

    fn list_databases(&self, tenant: &str, limit: Option<usize>, offset: usize) -> Result<Vec<Database>> {
        let tenant = tenant.to_owned();
        read_db!(self, |b| b.list_databases(&tenant, limit, offset))
    }

    fn delete_database(&self, db: &DatabaseRef) -> Result<()> {
        self.write(WriteOp::DeleteDatabase { db: db.clone() }, None).map(|_| ())
    }

    fn create_collection(&self, db: &DatabaseRef, req: &CreateCollection) -> Result<CollectionInfo> {
        let info = self.write(WriteOp::create_collection(db, req), None)?;
        info.into_collection().ok_or_else(|| Error::Internal("create_collection returned no collection".into()))
    }

    fn get_collection(&self, db: &DatabaseRef, name: &str) -> Result<CollectionInfo> {
        self.find_collection(db, name)
    }

    fn list_collections(&self, db: &DatabaseRef, limit: Option<usize>, offset: usize) -> Result<Vec<CollectionInfo>> {
        let db = db.clone();
        read_db!(self, |b| b.list_collections(&db, limit, offset))
    }

    fn count_collections(&self, db: &DatabaseRef) -> Result<usize> {
        let db = db.clone();
        read_db!(self, |b| b.count_collections(&db))
    }

    fn modify_collection(&self, db: &DatabaseRef, name: &str, req: &ModifyCollection) -> Result<()> {
        self.write(WriteOp::modify_collection(db, name, req), None).map(|_| ())
    }

    fn delete_collection(&self, db: &DatabaseRef, name: &str) -> Result<()> {
        lock(&self.known).remove(&(db.clone(), name.to_owned()));
        self.write(WriteOp::DeleteCollection { db: db.clone(), name: name.into() }, None).map(|_| ())
    }

    fn add(&self, col: &CollectionInfo, batch: &RecordBatch) -> Result<()> {
        self.write(WriteOp::records(RecordWrite::Add, col, batch), Some(col)).map(|_| ())
    }

    fn upsert(&self, col: &CollectionInfo, batch: &RecordBatch) -> Result<()> {
        self.write(WriteOp::records(RecordWrite::Upsert, col, batch), Some(col)).map(|_| ())
    }

    fn update(&self, col: &CollectionInfo, batch: &RecordBatch) -> Result<()> {
        self.write(WriteOp::records(RecordWrite::Update, col, batch), Some(col)).map(|_| ())
    }

    fn delete(&self, col: &CollectionInfo, selection: &Selection) -> Result<()> {
        self.delete_records(col, &DeleteRequest::new(selection.clone())).map(drop)
    }

    /// Journaled with its limit: a replay applies the same delete, so from the same state it
    /// deletes the same records (the first `limit` in `get` order).
    fn delete_records(&self, col: &CollectionInfo, req: &DeleteRequest) -> Result<usize> {
        self.write(WriteOp::delete(col, req), Some(col)).map(|a| a.deleted())
    }

    fn get(&self, col: &CollectionInfo, req: &GetRequest) -> Result<GetResult> {
        let req = req.clone();
        self.read_col(col, move |b, c| b.get(c, &req))
    }

    fn query(&self, col: &CollectionInfo, req: &QueryRequest) -> Result<QueryResult> {
        let req = req.clone();
        self.read_col(col, move |b, c| b.query(c, &req))
    }

    fn count(&self, col: &CollectionInfo) -> Result<usize> {
        self.read_col(col, |b, c| b.count(c))
    }

    fn flush(&self) -> Result<()> {
        if self.mode() == Mode::MemoryFallback {
            // The journal is already durable; the primary gets the writes on replay.
            return Ok(());
        }
        self.call_primary(&(Arc::new(|b: &dyn VectorBackend| b.flush()) as Call<()>))
    }
}
