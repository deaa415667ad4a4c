//! Multi-process guarantees, with child processes that are this test binary re-run in a role
//! (`CHROMALITE_TEST_ROLE`):
//! - crash safety: an importer killed with SIGKILL at random moments never loses a batch it
//!   acknowledged (`committed N` on stderr), and the directory always reopens and answers queries;
//! - one writer and two readers running together lose nothing and never see `database is locked`;
//! - a second writer is refused with `Locked` naming the holder's pid.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chromalite_core::{CreateCollection, DatabaseRef, ErrorKind, QueryRequest, RecordBatch, VectorBackend};
use chromalite_sqlite::{Options, SqliteBackend};

const DIM: usize = 16;
const BATCH: usize = 200;

fn vector(i: usize) -> Vec<f32> {
    // Distinct for every i (no ties in nearest-neighbour checks).
    (0..DIM).map(|j| ((i as f64).mul_add(0.618_034, j as f64 * 1.3)).sin() as f32 + (i as f32 * 1e-4)).collect()
}

fn collection(store: &SqliteBackend) -> chromalite_core::CollectionInfo {
    let req = CreateCollection { name: "proc".into(), get_or_create: true, ..Default::default() };
    store.create_collection(&DatabaseRef::default(), &req).unwrap()
}

fn batch(start: usize) -> RecordBatch {
    let mut b = RecordBatch::new((start..start + BATCH).map(|i| format!("id{i}")));
    b.embeddings = Some((start..start + BATCH).map(vector).collect());
    b.documents = Some((start..start + BATCH).map(|i| Some(format!("record number {i}"))).collect());
    b
}

/// Child role: imports batches forever (or `limit` of them), reporting each durable batch.
fn run_importer(dir: &Path, limit: usize) {
    let store =
        SqliteBackend::open_with(dir, &Options { lock_wait: Duration::from_secs(30), ..Options::default() }).unwrap();
    let col = collection(&store);
    let mut done = store.count(&col).unwrap();
    let mut committed = 0;
    for _ in 0..limit {
        store.add(&col, &batch(done)).unwrap();
        done += BATCH;
        committed += BATCH;
        eprintln!("committed {committed}");
    }
}

/// Child role: reads in a loop until the writer's final count is visible; counts never go down.
fn run_reader(dir: &Path, expect: usize) {
    let deadline = Instant::now() + Duration::from_secs(90);
    let store = loop {
        match SqliteBackend::open_read_only(dir) {
            Ok(s) => break s,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => panic!("reader could not open: {e}"),
        }
    };
    let col = loop {
        if let Ok(c) = store.get_collection(&DatabaseRef::default(), "proc") {
            break c;
        }
        assert!(Instant::now() < deadline, "collection never appeared");
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut last = 0;
    loop {
        let n = store.count(&col).unwrap_or_else(|e| panic!("reader count failed: {e}"));
        assert!(n >= last, "count went down: {last} -> {n}");
        last = n;
        if n > 0 {
            let q = QueryRequest { embeddings: vec![vector(n - 1)], n_results: 3, ..Default::default() };
            let hits = store.query(&col, &q).unwrap_or_else(|e| panic!("reader query failed: {e}"));
            assert_eq!(hits.ids[0].len(), 3.min(n), "query came back short at count {n}");
        }
        if n >= expect {
            eprintln!("reader saw {n}");
            return;
        }
        assert!(Instant::now() < deadline, "reader timed out at {n} of {expect}");
    }
}

#[test]
fn child_role() {
    // Runs only when re-executed by the tests below.
    let (Ok(role), Ok(dir)) = (std::env::var("CHROMALITE_TEST_ROLE"), std::env::var("CHROMALITE_TEST_DIR")) else {
        return;
    };
    let arg: usize = std::env::var("CHROMALITE_TEST_ARG").ok().and_then(|a| a.parse().ok()).unwrap_or(usize::MAX);
    match role.as_str() {
        "import" => run_importer(Path::new(&dir), arg),
        "read" => run_reader(Path::new(&dir), arg),
        other => panic!("unknown role {other}"),
    }
}

fn spawn(role: &str, dir: &Path, arg: usize) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_role", "--nocapture", "--test-threads=1"])
        .env("CHROMALITE_TEST_ROLE", role)
        .env("CHROMALITE_TEST_DIR", dir)
        .env("CHROMALITE_TEST_ARG", arg.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// A small xorshift for kill timing (no dependency, reproducible from the printed seed).
fn next(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

#[test]
fn sigkill_during_import_loses_no_acknowledged_batch() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut seed = u64::from(std::process::id()) | 1;
    eprintln!("crash test seed {seed}");
    let mut acknowledged = 0usize;
    for round in 0..20 {
        let mut child = spawn("import", dir, usize::MAX);
        let stderr = BufReader::new(child.stderr.take().unwrap());
        // Kill after a random number of acknowledged batches, at a random delay after the last one.
        let wait_batches = 1 + next(&mut seed) % 6;
        let mut batches_seen = 0;
        let mut last = 0;
        for line in stderr.lines() {
            let line = line.unwrap();
            if let Some(n) = line.strip_prefix("committed ") {
                last = n.trim().parse().unwrap();
                batches_seen += 1;
                if batches_seen >= wait_batches {
                    std::thread::sleep(Duration::from_micros(next(&mut seed) % 20_000));
                    break;
                }
            }
        }
        child.kill().unwrap();
        child.wait().unwrap();
        acknowledged += last;
        let store = SqliteBackend::open(dir).unwrap();
        let col = collection(&store);
        let count = store.count(&col).unwrap();
        assert!(count >= acknowledged, "round {round}: count {count} < acknowledged {acknowledged}");
        acknowledged = count; // unacknowledged but committed batches count from here on
        let q = QueryRequest { embeddings: vec![vector(count / 2)], n_results: 5, ..Default::default() };
        let hits = store.query(&col, &q).unwrap();
        assert_eq!(hits.ids[0].len(), 5);
        assert_eq!(hits.ids[0][0], format!("id{}", count / 2), "round {round}: nearest neighbour of a stored vector");
    }
}

#[test]
fn one_writer_two_readers_lose_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let batches = 30;
    let expect = batches * BATCH;
    let writer = spawn("import", dir, batches);
    let readers: Vec<Child> = (0..2).map(|_| spawn("read", dir, expect)).collect();
    let wout = writer.wait_with_output().unwrap();
    assert!(wout.status.success(), "writer failed:\n{}", String::from_utf8_lossy(&wout.stderr));
    for r in readers {
        let out = r.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "reader failed:\n{err}");
        assert!(!err.contains("database is locked"), "reader saw a lock error:\n{err}");
    }
    let store = SqliteBackend::open(dir).unwrap();
    assert_eq!(store.count(&collection(&store)).unwrap(), expect);
}

#[test]
fn second_writer_gets_locked_with_pid() {
    let tmp = tempfile::tempdir().unwrap();
    let _first = SqliteBackend::open(tmp.path()).unwrap();
    let started = Instant::now();
    let opts = Options { lock_wait: Duration::from_millis(300), ..Options::default() };
    let err = SqliteBackend::open_with(tmp.path(), &opts).err().expect("second writer must fail");
    assert_eq!(err.kind(), ErrorKind::Locked);
    assert!(err.to_string().contains(&std::process::id().to_string()), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
    // Readers are still welcome.
    SqliteBackend::open_read_only(tmp.path()).unwrap();
}
