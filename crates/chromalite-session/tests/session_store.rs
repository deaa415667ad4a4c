//! With a real persist directory (the sqlite backend) and real processes: fallback while another
//! process holds the directory, replay exactly once (also after `kill -9` while degraded),
//! restart and resume by id, two processes writing to one directory.
//!
//! Child processes are this test binary re-run with `SESSION_CHILD` set (see `child_entry`).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chromalite_core::{GetRequest, Include, VectorBackend};
use chromalite_session::{DatabaseManager, ManagerOptions, Mode, PoolOptions, ResilientOptions, RetryPolicy};
use chromalite_sqlite::{Options, SqliteBackend};

fn open_store(p: &Path) -> chromalite_core::Result<Arc<dyn VectorBackend>> {
    let opts = Options { lock_wait: Duration::from_millis(50), ..Options::default() };
    Ok(Arc::new(SqliteBackend::open_with(p, &opts)?) as Arc<dyn VectorBackend>)
}

fn options() -> ManagerOptions {
    ManagerOptions {
        resilience: ResilientOptions {
            retry: RetryPolicy {
                initial_delay: Duration::from_millis(10),
                jitter: 0.0,
                max_retries: 2,
                ..RetryPolicy::default()
            },
            probe_interval: Duration::from_millis(50),
            recovery_log: true,
            ..ResilientOptions::default()
        },
        pool: PoolOptions { checkout_timeout: Duration::from_secs(5), ..PoolOptions::default() },
        ..ManagerOptions::default()
    }
}

fn manager(dir: &Path) -> DatabaseManager {
    DatabaseManager::open(dir, open_store, options()).unwrap()
}

/// Every id in collection `name`, read straight from the directory.
fn stored_ids(dir: &Path, name: &str) -> Vec<String> {
    let store = SqliteBackend::open(dir).unwrap();
    let col = store.get_collection(&chromalite_core::DatabaseRef::default(), name).unwrap();
    store.get(&col, &GetRequest::default()).unwrap().ids
}

fn child(role: &str, dir: &Path, extra: &str) -> (Child, BufReader<ChildStdout>) {
    let mut c = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_entry", "--nocapture", "--test-threads=1"])
        .env("SESSION_CHILD", role)
        .env("SESSION_DIR", dir)
        .env("SESSION_ARG", extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = BufReader::new(c.stdout.take().unwrap());
    (c, out)
}

/// Reads lines until one starts with `prefix`; returns its remainder.
fn wait_for(out: &mut BufReader<ChildStdout>, prefix: &str) -> String {
    let mut line = String::new();
    loop {
        line.clear();
        assert!(out.read_line(&mut line).unwrap() > 0, "child ended before printing {prefix:?}");
        // The harness prints `test child_entry ... ` before the child's first line.
        if let Some(at) = line.find(prefix) {
            return line[at + prefix.len()..].trim_end().to_owned();
        }
    }
}

fn write_one(col: &chromalite::Collection, id: &str, i: usize) {
    col.add([id]).embeddings(vec![vec![i as f32, 1.0, 0.5]]).documents([format!("doc {id}")]).run().unwrap();
}

/// The roles children play.
#[test]
fn child_entry() {
    let Ok(role) = std::env::var("SESSION_CHILD") else { return };
    let dir = PathBuf::from(std::env::var("SESSION_DIR").unwrap());
    let arg = std::env::var("SESSION_ARG").unwrap_or_default();
    let mut stdout = std::io::stdout();
    match role.as_str() {
        // Holds the directory's writer lock until stdin closes.
        "hold" => {
            let store = SqliteBackend::open(&dir).unwrap();
            writeln!(stdout, "locked").unwrap();
            stdout.flush().unwrap();
            let _ = std::io::stdin().read_line(&mut String::new());
            drop(store);
        }
        // Writes one record at a time, printing each acknowledged id, until killed.
        "writer" => {
            let m = manager(&dir);
            let s = m.start_session().unwrap();
            writeln!(stdout, "session {}", s.session_id).unwrap();
            let col = m.session_collection(&s.session_id, "notes").unwrap();
            for i in 0.. {
                let id = format!("{arg}{i}");
                write_one(&col, &id, i);
                writeln!(stdout, "ack {id} {}", m.mode().as_str()).unwrap();
                stdout.flush().unwrap();
            }
        }
        // Writes 60 records, releasing the directory between writes so the other process can.
        "contender" => {
            let m = manager(&dir);
            let col = m.get_or_create_database("shared").unwrap();
            for i in 0..60 {
                write_one(&col, &format!("{arg}{i}"), i);
                let _ = m.pool().close_idle_connections();
            }
            let deadline = Instant::now() + Duration::from_secs(30);
            while m.backend().try_recover() != Mode::Normal && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            writeln!(stdout, "done {}", m.backend().pending_replay()).unwrap();
        }
        other => panic!("unknown role {other}"),
    }
}

#[test]
fn fallback_while_another_process_holds_the_directory_replays_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let m = manager(dir.path());
    let changes = m.subscribe();
    let col = m.get_or_create_database("notes").unwrap();
    for i in 0..20 {
        write_one(&col, &format!("a{i}"), i);
    }
    let _ = m.pool().close_all_connections(); // the directory is free for another process now

    let (mut holder, mut out) = child("hold", dir.path(), "");
    wait_for(&mut out, "locked");
    for i in 0..20 {
        write_one(&col, &format!("b{i}"), i);
    }
    assert_eq!(m.mode(), Mode::MemoryFallback);
    let change = changes.recv_timeout(Duration::from_secs(1)).unwrap();
    assert_eq!(change.to, Mode::MemoryFallback);
    assert!(change.cause.as_deref().unwrap_or("").contains("locked"), "{change:?}");
    assert_eq!(m.backend().pending_replay(), 20);
    assert!(col.get().ids(["b3"]).run().unwrap().ids == ["b3"], "degraded reads see degraded writes");

    drop(holder.stdin.take()); // the other process exits and releases the lock
    holder.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while m.backend().try_recover() != Mode::Normal {
        assert!(Instant::now() < deadline, "never recovered");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(changes.recv_timeout(Duration::from_secs(1)).unwrap().to, Mode::Normal);
    assert_eq!(col.count().unwrap(), 40);
    drop(m);
    let mut ids = stored_ids(dir.path(), "notes");
    let n = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!((n, ids.len()), (40, 40), "the union of both runs, none twice");
}

/// The acknowledgements still in the pipe after the child died: the reader stops at some count,
/// but the writer goes on writing and printing until the kill lands, and the pipe keeps what it
/// printed. A last line without its newline was cut by the kill and acknowledged nothing.
fn remaining_acks(out: &mut BufReader<ChildStdout>) -> Vec<(String, String)> {
    let mut rest = Vec::new();
    let mut line = String::new();
    while out.read_line(&mut line).unwrap() > 0 {
        if let (Some(at), true) = (line.find("ack "), line.ends_with('\n')) {
            let (id, mode) = line[at + 4..].trim_end().split_once(' ').unwrap();
            rest.push((id.to_owned(), mode.to_owned()));
        }
        line.clear();
    }
    rest
}

#[test]
fn killed_while_degraded_the_journal_replays_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    drop(manager(dir.path())); // creates the store
    let holder = SqliteBackend::open(dir.path()).unwrap(); // this process makes the directory unavailable
    let (mut writer, mut out) = child("writer", dir.path(), "k");
    wait_for(&mut out, "session ");
    let mut acked = Vec::new();
    while acked.len() < 25 {
        let line = wait_for(&mut out, "ack ");
        let (id, mode) = line.split_once(' ').unwrap();
        acked.push((id.to_owned(), mode.to_owned()));
    }
    writer.kill().unwrap(); // SIGKILL: no cleanup runs
    writer.wait().unwrap();
    // How many more writes the child acknowledged between our 25th read and the kill depends on
    // scheduling; all of them were acknowledged, so all of them count.
    acked.extend(remaining_acks(&mut out));
    drop(holder);
    for (i, (id, mode)) in acked.iter().enumerate() {
        assert_eq!(id, &format!("k{i}"), "the writer acknowledges its writes in order");
        assert_eq!(mode, "memory-fallback", "{id} was written while the directory was held");
    }

    let m = manager(dir.path()); // replays the journal on start
    assert_eq!(m.mode(), Mode::Normal);
    assert_eq!(m.backend().pending_replay(), 0);
    drop(m);
    let store = SqliteBackend::open(dir.path()).unwrap();
    let col = store.get_collection(&chromalite_core::DatabaseRef::default(), "notes").unwrap();
    let req = GetRequest { include: vec![Include::Documents, Include::Embeddings], ..GetRequest::default() };
    let got = store.get(&col, &req).unwrap();
    let mut ids = got.ids.clone();
    ids.sort_by_key(|id| id[1..].parse::<usize>().unwrap());
    // Every acknowledged write, once each; beyond them only the write in flight at the kill (the
    // next id), which may have reached the journal without its acknowledgement being printed.
    let n = acked.len();
    let expect: Vec<String> = (0..n).map(|i| format!("k{i}")).collect();
    let with_in_flight: Vec<String> = (0..=n).map(|i| format!("k{i}")).collect();
    assert!(ids == expect || ids == with_in_flight, "{n} acknowledged (k0..k{}), stored {ids:?}", n - 1);
    // Replay stored each write as it was made: nothing corrupted or mixed up between records.
    let (docs, embs) = (got.documents.unwrap(), got.embeddings.unwrap());
    for (j, id) in got.ids.iter().enumerate() {
        let i: usize = id[1..].parse().unwrap();
        assert_eq!(docs[j].as_deref(), Some(format!("doc {id}").as_str()));
        assert_eq!(embs[j], vec![i as f32, 1.0, 0.5], "{id}");
    }
}

#[test]
fn a_killed_process_resumes_its_session_by_id_with_every_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let (mut writer, mut out) = child("writer", dir.path(), "r");
    let session = wait_for(&mut out, "session ");
    let mut acked = Vec::new();
    while acked.len() < 30 {
        acked.push(wait_for(&mut out, "ack ").split(' ').next().unwrap().to_owned());
    }
    writer.kill().unwrap();
    writer.wait().unwrap();

    let m = manager(dir.path());
    let info = m.resume_session(&session).unwrap();
    assert_eq!(info.active_connections, vec!["notes".to_string()]);
    let col = m.session_collection(&session, "notes").unwrap();
    let got = col.get().ids(acked.clone()).run().unwrap();
    assert_eq!(got.ids.len(), acked.len(), "every acknowledged write survives the kill");
    assert!(m.resume_session("00000000-0000-4000-8000-000000000000").is_err());
    m.end_session(&session).unwrap();
    assert!(m.resume_session(&session).is_err());
}

#[test]
fn two_processes_write_to_one_directory() {
    let dir = tempfile::tempdir().unwrap();
    drop(manager(dir.path()));
    let (mut other, mut out) = child("contender", dir.path(), "p");
    let m = manager(dir.path());
    let col = m.get_or_create_database("shared").unwrap();
    for i in 0..60 {
        write_one(&col, &format!("q{i}"), i);
        let _ = m.pool().close_idle_connections();
    }
    let pending_other: usize = wait_for(&mut out, "done ").parse().unwrap();
    other.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while m.backend().try_recover() != Mode::Normal {
        assert!(Instant::now() < deadline, "never recovered");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(pending_other, 0);
    drop(m);
    let ids = stored_ids(dir.path(), "shared");
    assert_eq!(ids.len(), 120, "both processes' writes, once each");
}
