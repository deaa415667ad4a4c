//! The `chromalite --lance DIR` read-only commands on a store another process is writing to: they
//! open it without the writer lock (as `--path` does), so they work while the writer holds it,
//! and a write command still gets `Locked` (exit 3). Needs the `lance` feature.
#![cfg(feature = "lance")]

use std::path::Path;
use std::process::Command;

use serde_json::Value;

fn cli(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_chromalite")).arg("--lance").arg(dir).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn read_only_commands_work_while_a_writer_holds_the_store() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let writer = chromalite::Client::lance(&dir).unwrap();
    let col = writer.create_collection("notes").run().unwrap();
    col.add(["a", "b", "c"])
        .embeddings(vec![vec![1.0, 0.0], vec![0.0, 1.0], vec![0.7, 0.7]])
        .documents(["apples", "bananas", "cherries"])
        .run()
        .unwrap();

    let (code, out, err) = cli(&dir, &["collections"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("notes"), "{out}");
    let (code, out, err) = cli(&dir, &["count", "notes"]);
    assert_eq!((code, out.split_whitespace().last()), (0, Some("3")), "{err}");
    let (code, out, err) = cli(&dir, &["get", "notes", "--ids", "b", "--json"]);
    assert_eq!(code, 0, "{err}");
    let got: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(got["documents"], serde_json::json!(["bananas"]));
    let queries = tmp.path().join("q.json");
    std::fs::write(&queries, "[[0.9, 0.1]]").unwrap();
    let (code, out, err) =
        cli(&dir, &["query", "notes", "--embeddings", queries.to_str().unwrap(), "--n-results", "1", "--json"]);
    assert_eq!(code, 0, "{err}");
    let hits: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(hits["ids"], serde_json::json!([["a"]]));
    let (code, out, err) = cli(&dir, &["export", "notes"]);
    assert_eq!((code, out.lines().count()), (0, 3), "{err}");
    let (code, out, err) = cli(&dir, &["doctor"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("notes: 3 records") && out.contains(&format!("in use by process {}", std::process::id())),
        "{out}"
    );
    let (code, out, err) = cli(&dir, &["doctor", "--json"]);
    assert_eq!(code, 0, "{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["collections"][0]["records"], 3);

    // The writer's later commits are what the next command sees.
    col.add(["d"]).embeddings(vec![vec![0.5, 0.5]]).run().unwrap();
    let (_, out, _) = cli(&dir, &["count", "notes"]);
    assert_eq!(out.split_whitespace().last(), Some("4"));

    // A write still needs the lock: Locked, exit 3, naming the holder.
    let (code, _, err) = cli(&dir, &["create", "more"]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains(&std::process::id().to_string()), "{err}");
    // A missing store is a user error, and nothing is created.
    let (code, _, _) = cli(&tmp.path().join("absent"), &["count", "notes"]);
    assert_eq!(code, 1);
    assert!(!tmp.path().join("absent").exists());
}
