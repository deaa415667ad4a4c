//! Fault injection through a wrapping backend (memory underneath): retry counts and backoff
//! timing, permanent errors, hangs, read-only degradation, defaults recreation, pool limits and
//! many threads sharing one manager.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chromalite_core::{
    CollectionInfo, CreateCollection, Database, DatabaseRef, Error, ErrorKind, GetRequest, GetResult, ModifyCollection,
    QueryRequest, QueryResult, RecordBatch, Result, Selection, Tenant, VectorBackend,
};
use chromalite_memory::MemoryBackend;
use chromalite_session::{
    ConnectionPool, Connector, DatabaseManager, ErrorHandler, ManagerOptions, Mode, PoolOptions, ResilientBackend,
    ResilientOptions, RetryPolicy,
};

/// Fails, hangs or refuses writes on demand; counts calls and concurrent calls.
#[derive(Default)]
struct Faulty {
    inner: MemoryBackend,
    fail_next: AtomicUsize,
    fail_kind: Mutex<Option<ErrorKind>>,
    down: AtomicBool,
    hang: AtomicBool,
    read_only: AtomicBool,
    calls: AtomicUsize,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

fn make_error(kind: ErrorKind) -> Error {
    match kind {
        ErrorKind::Locked => Error::Locked { path: "/store".into(), pid: Some(std::process::id()) },
        ErrorKind::Unavailable => Error::Unavailable { message: "injected".into(), retry_after: None },
        ErrorKind::ReadOnly => Error::ReadOnly { reason: "disk full (injected)".into() },
        _ => Error::invalid("injected permanent error"),
    }
}

impl Faulty {
    fn check(&self, write: bool) -> Result<()> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        while self.hang.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(5));
        }
        if self.down.load(Ordering::SeqCst) {
            return Err(make_error(ErrorKind::Unavailable));
        }
        if write && self.read_only.load(Ordering::SeqCst) {
            return Err(make_error(ErrorKind::ReadOnly));
        }
        if self.fail_next.load(Ordering::SeqCst) > 0 {
            self.fail_next.fetch_sub(1, Ordering::SeqCst);
            return Err(make_error(self.fail_kind.lock().unwrap().unwrap_or(ErrorKind::Locked)));
        }
        Ok(())
    }

    fn run<T>(&self, write: bool, f: impl FnOnce(&MemoryBackend) -> Result<T>) -> Result<T> {
        self.check(write)?;
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        std::thread::sleep(Duration::from_micros(200));
        let r = f(&self.inner);
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        r
    }
}

macro_rules! delegate {
    ($($name:ident($($arg:ident: $ty:ty),*) -> $ret:ty, $write:expr;)*) => {
        $(fn $name(&self, $($arg: $ty),*) -> Result<$ret> { self.run($write, |b| b.$name($($arg),*)) })*
    };
}

impl VectorBackend for Faulty {
    fn kind(&self) -> &'static str {
        "faulty"
    }
    delegate! {
        heartbeat() -> u64, false;
        create_tenant(name: &str) -> (), true;
        get_tenant(name: &str) -> Tenant, false;
        create_database(db: &DatabaseRef) -> (), true;
        get_database(db: &DatabaseRef) -> Database, false;
        list_databases(tenant: &str, limit: Option<usize>, offset: usize) -> Vec<Database>, false;
        delete_database(db: &DatabaseRef) -> (), true;
        create_collection(db: &DatabaseRef, req: &CreateCollection) -> CollectionInfo, true;
        get_collection(db: &DatabaseRef, name: &str) -> CollectionInfo, false;
        list_collections(db: &DatabaseRef, limit: Option<usize>, offset: usize) -> Vec<CollectionInfo>, false;
        count_collections(db: &DatabaseRef) -> usize, false;
        modify_collection(db: &DatabaseRef, name: &str, req: &ModifyCollection) -> (), true;
        delete_collection(db: &DatabaseRef, name: &str) -> (), true;
        add(col: &CollectionInfo, batch: &RecordBatch) -> (), true;
        upsert(col: &CollectionInfo, batch: &RecordBatch) -> (), true;
        update(col: &CollectionInfo, batch: &RecordBatch) -> (), true;
        delete(col: &CollectionInfo, selection: &Selection) -> (), true;
        get(col: &CollectionInfo, req: &GetRequest) -> GetResult, false;
        query(col: &CollectionInfo, req: &QueryRequest) -> QueryResult, false;
        count(col: &CollectionInfo) -> usize, false;
    }
}

fn fast_policy() -> RetryPolicy {
    RetryPolicy {
        initial_delay: Duration::from_millis(20),
        backoff_factor: 2.0,
        jitter: 0.0,
        max_retries: 3,
        ..RetryPolicy::default()
    }
}

fn resilient(primary: Arc<Faulty>, journal: &std::path::Path) -> ResilientBackend {
    let opts = ResilientOptions {
        retry: fast_policy(),
        call_timeout: Some(Duration::from_millis(300)),
        journal_dir: Some(journal.to_path_buf()),
        probe_interval: Duration::from_millis(50),
        label: "test store".into(),
        ..ResilientOptions::default()
    };
    ResilientBackend::new(primary, opts).unwrap()
}

fn batch(ids: &[&str]) -> RecordBatch {
    let mut b = RecordBatch::new(ids.iter().copied());
    b.embeddings = Some(ids.iter().enumerate().map(|(i, _)| vec![i as f32, 1.0]).collect());
    b
}

fn collection(b: &dyn VectorBackend) -> CollectionInfo {
    b.create_collection(
        &DatabaseRef::default(),
        &CreateCollection { name: "docs".into(), get_or_create: true, ..Default::default() },
    )
    .unwrap()
}

#[test]
fn transient_errors_are_retried_with_exponential_backoff() {
    let handler = ErrorHandler::new(fast_policy());
    let mut attempts = Vec::new();
    let started = Instant::now();
    let result = handler.retry_with_backoff(|| {
        attempts.push(started.elapsed());
        if attempts.len() <= 3 {
            Err(make_error(ErrorKind::Locked))
        } else {
            Ok(attempts.len())
        }
    });
    assert_eq!(result.unwrap(), 4);
    // A sleep lasts at least its delay; how much longer depends on the machine's load, so the
    // upper bound only catches a wrong schedule (the exact delays are `RetryPolicy`'s unit test).
    let gaps: Vec<Duration> = attempts.windows(2).map(|w| w[1].saturating_sub(w[0])).collect();
    for (gap, nominal) in gaps.iter().zip([20u64, 40, 80]) {
        let nominal = Duration::from_millis(nominal);
        assert!(*gap >= nominal && *gap < nominal * 10, "gaps {gaps:?}");
    }
}

#[test]
fn retries_stop_after_max_retries_and_jitter_stays_in_bounds() {
    let policy = RetryPolicy { jitter: 0.5, ..fast_policy() };
    let handler = ErrorHandler::new(policy);
    let mut attempts = 0;
    let started = Instant::now();
    let err = handler.retry_with_backoff(|| -> Result<()> {
        attempts += 1;
        Err(make_error(ErrorKind::Unavailable))
    });
    assert_eq!(err.unwrap_err().kind(), ErrorKind::Unavailable);
    assert_eq!(attempts, 4);
    // Nominal 20 + 40 + 80 = 140 ms, each spread by at most ±50 % (at most 210 ms); the upper
    // bound leaves room for a loaded machine, and the jitter bounds are `RetryPolicy`'s unit test.
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(70) && took < Duration::from_secs(2), "{took:?}");
}

#[test]
fn permanent_errors_return_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let faulty = Arc::new(Faulty::default());
    let r = resilient(Arc::clone(&faulty), dir.path());
    let col = collection(&r);
    *faulty.fail_kind.lock().unwrap() = Some(ErrorKind::InvalidArgument);
    faulty.fail_next.store(1, Ordering::SeqCst);
    let before = faulty.calls.load(Ordering::SeqCst);
    let started = Instant::now();
    let err = r.add(&col, &batch(&["a"])).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert_eq!(faulty.calls.load(Ordering::SeqCst) - before, 1, "a permanent error must not be retried");
    // The call count is the guarantee; a wall-clock bound tight enough to see a skipped 20 ms
    // backoff flakes on a loaded machine, so this one only catches a hang.
    assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());
    // A real validation error from the store is permanent too.
    let mut bad = batch(&["b"]);
    bad.embeddings = Some(vec![vec![1.0, 2.0, 3.0]]);
    r.add(&col, &batch(&["a"])).unwrap();
    assert_eq!(r.add(&col, &bad).unwrap_err().kind(), ErrorKind::DimensionMismatch);
    assert_eq!(r.mode(), Mode::Normal);
}

#[test]
fn locked_twice_then_free_succeeds_through_the_backend() {
    let dir = tempfile::tempdir().unwrap();
    let faulty = Arc::new(Faulty::default());
    let r = resilient(Arc::clone(&faulty), dir.path());
    let col = collection(&r);
    faulty.fail_next.store(2, Ordering::SeqCst);
    let started = Instant::now();
    r.add(&col, &batch(&["a", "b"])).unwrap();
    assert!(started.elapsed() >= Duration::from_millis(60), "20 + 40 ms of backoff expected");
    assert_eq!(faulty.inner.count(&col).unwrap(), 2);
    assert_eq!(r.mode(), Mode::Normal);
}

#[test]
fn a_hung_primary_times_out_degrades_to_memory_and_replays_once() {
    let dir = tempfile::tempdir().unwrap();
    let faulty = Arc::new(Faulty::default());
    let r = resilient(Arc::clone(&faulty), dir.path());
    let changes = r.subscribe();
    let col = collection(&r);
    r.add(&col, &batch(&["a"])).unwrap();

    faulty.hang.store(true, Ordering::SeqCst);
    let started = Instant::now();
    r.add(&col, &batch(&["b", "c"])).unwrap();
    assert!(started.elapsed() < Duration::from_secs(2), "a hang must not block the caller: {:?}", started.elapsed());
    assert_eq!(r.mode(), Mode::MemoryFallback);
    let change = changes.recv_timeout(Duration::from_secs(1)).unwrap();
    assert_eq!((change.from, change.to), (Mode::Normal, Mode::MemoryFallback));
    assert!(change.message.contains("unavailable") && change.guidance.len() >= 3, "{change:?}");
    r.upsert(&col, &batch(&["c", "d"])).unwrap();
    assert_eq!(r.pending_replay(), 2);
    assert_eq!(r.count(&col).unwrap(), 3, "memory serves b, c, d while degraded");

    faulty.hang.store(false, Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(60));
    assert_eq!(r.try_recover(), Mode::Normal);
    assert_eq!(r.pending_replay(), 0);
    let got = faulty.inner.get(&col, &GetRequest::default()).unwrap();
    assert_eq!(got.ids, vec!["a", "b", "c", "d"]);
    let back = changes.recv_timeout(Duration::from_secs(1)).unwrap();
    assert_eq!(back.to, Mode::Normal);
    // Replaying again changes nothing.
    assert_eq!(r.try_recover(), Mode::Normal);
    assert_eq!(faulty.inner.count(&col).unwrap(), 4);
}

#[test]
fn refused_writes_degrade_to_read_only_with_guidance_and_recover() {
    let dir = tempfile::tempdir().unwrap();
    let faulty = Arc::new(Faulty::default());
    let r = resilient(Arc::clone(&faulty), dir.path());
    let col = collection(&r);
    r.add(&col, &batch(&["a"])).unwrap();
    faulty.read_only.store(true, Ordering::SeqCst);
    let err = r.add(&col, &batch(&["b"])).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ReadOnly);
    assert!(err.to_string().contains("disk full") && err.to_string().contains("1."), "{err}");
    assert_eq!(r.mode(), Mode::ReadOnly);
    assert_eq!(r.count(&col).unwrap(), 1, "reads keep working");
    faulty.read_only.store(false, Ordering::SeqCst);
    r.add(&col, &batch(&["b"])).unwrap();
    assert_eq!(r.mode(), Mode::Normal);
    assert_eq!(r.state_history().len(), 2);
}

#[test]
fn a_missing_default_database_is_recreated() {
    let dir = tempfile::tempdir().unwrap();
    let faulty = Arc::new(Faulty::default());
    faulty.inner.delete_database(&DatabaseRef::default()).unwrap();
    let r = resilient(Arc::clone(&faulty), dir.path());
    let col = collection(&r);
    r.add(&col, &batch(&["a"])).unwrap();
    assert_eq!(faulty.inner.count(&col).unwrap(), 1);
}

#[test]
fn an_exhausted_pool_gives_a_typed_timeout() {
    let connector: Arc<dyn Connector> = Arc::new(|| Ok(Arc::new(MemoryBackend::new()) as Arc<dyn VectorBackend>));
    let pool = ConnectionPool::new(
        connector,
        PoolOptions { max_connections: 2, checkout_timeout: Duration::from_millis(100), ..PoolOptions::default() },
    );
    let a = pool.get_connection().unwrap();
    let b = pool.get_connection().unwrap();
    assert_ne!(a.id, b.id);
    let started = Instant::now();
    let err = pool.get_connection().err().unwrap();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert!(started.elapsed() < Duration::from_millis(500));
    drop(a);
    assert!(pool.get_connection().is_ok());
    drop(b);
    assert_eq!(pool.close_idle_connections(), 2);
    assert_eq!(pool.open_connections(), 0);
}

#[test]
fn many_threads_share_one_manager_within_pool_limits() {
    let dir = tempfile::tempdir().unwrap();
    let shared = Arc::new(Faulty::default());
    let connects = Arc::new(AtomicUsize::new(0));
    let (s, c) = (Arc::clone(&shared), Arc::clone(&connects));
    let connector: Arc<dyn Connector> = Arc::new(move || {
        c.fetch_add(1, Ordering::SeqCst);
        Ok(Arc::clone(&s) as Arc<dyn VectorBackend>)
    });
    let opts = ManagerOptions {
        pool: PoolOptions { max_connections: 3, ..PoolOptions::default() },
        ..ManagerOptions::default()
    };
    let manager = Arc::new(DatabaseManager::new(dir.path(), connector, opts).unwrap());
    let started = Instant::now();
    let threads: Vec<_> = (0..16)
        .map(|t| {
            let m = Arc::clone(&manager);
            std::thread::spawn(move || {
                let col = m.get_or_create_database(&format!("col-{}", t % 4)).unwrap();
                for i in 0..40 {
                    let id = format!("t{t}-{i}");
                    col.add([id.as_str()]).embeddings(vec![vec![t as f32, i as f32]]).run().unwrap();
                    col.query(vec![vec![0.0, 0.0]]).n_results(3).run().unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert!(started.elapsed() < Duration::from_mins(1));
    let total: usize =
        (0..4).map(|c| manager.get_or_create_database(&format!("col-{c}")).unwrap().count().unwrap()).sum();
    assert_eq!(total, 16 * 40);
    assert!(
        shared.max_in_flight.load(Ordering::SeqCst) <= 3,
        "max in flight {}",
        shared.max_in_flight.load(Ordering::SeqCst)
    );
    // Connects beyond 3 are fail-fast probes made while no connection was open, dropped at once.
    assert!(connects.load(Ordering::SeqCst) >= 1 && manager.pool().open_connections() <= 3);
    assert_eq!(manager.mode(), Mode::Normal);
    // How many pooled connections r2d2 opened depends on how the threads happened to overlap
    // (fewer under load), so count what is open rather than assuming the maximum.
    let open = manager.pool().open_connections();
    assert!((1..=3).contains(&open), "open pooled connections {open}");
    let cleanup = manager.cleanup_all_connections();
    assert_eq!(cleanup.connections_closed, 4 + open as usize);
    assert!(manager.health_check().is_healthy());
}
