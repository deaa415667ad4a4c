//! DESIGN.md's CLI contract, run against the `chromalite` binary in a temporary directory:
//! `import` is all or nothing for bad input (exit 1, one line on stderr naming the line, the store
//! as it was), imports with and without documents and metadata survive an `export` round trip,
//! and a store held by another writer process gives exit 3.

use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};

/// Runs `chromalite --path DIR args...`: exit code, stdout, stderr.
fn cli(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_chromalite")).arg("--path").arg(dir).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let (code, out, err) = cli(dir, args);
    assert_eq!(code, 0, "chromalite {args:?}: {err}");
    out
}

fn count(dir: &Path, name: &str) -> u64 {
    ok(dir, &["count", name]).split_whitespace().last().unwrap().parse().unwrap()
}

fn write_lines(path: &Path, lines: &[String]) {
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

fn record(i: usize) -> String {
    json!({"id": format!("r{i}"), "embedding": [i as f32, 1.0, 0.5]}).to_string()
}

/// Exit 1 with exactly one stderr line that contains `needle`.
fn assert_user_error(dir: &Path, args: &[&str], needle: &str) {
    let (code, out, err) = cli(dir, args);
    assert_eq!(code, 1, "chromalite {args:?}: {out}{err}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.starts_with("committed ")).collect();
    assert_eq!(lines.len(), 1, "one message line: {err:?}");
    assert!(lines[0].contains(needle), "{needle:?} not in {err:?}");
    assert!(!err.contains("committed "), "nothing may be committed before the bad line: {err:?}");
}

#[test]
fn a_bad_import_line_leaves_the_store_as_it_was() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, file) = (tmp.path().join("store"), tmp.path().join("in.jsonl"));
    let path = file.to_str().unwrap();

    // Bad JSON on line 6, after three batches of 2: no record and no collection.
    let mut lines: Vec<String> = (0..5).map(record).collect();
    lines.push("{not json".into());
    lines.extend((6..9).map(record));
    write_lines(&file, &lines);
    assert_user_error(&dir, &["import", "fresh", "--file", path, "--batch-size", "2"], "line 6");
    assert_eq!(ok(&dir, &["collections"]).trim(), "", "a failed import creates no collection");

    // Into an existing collection: its records stay as they were.
    write_lines(&file, &(0..3).map(record).collect::<Vec<_>>());
    ok(&dir, &["import", "kept", "--file", path]);
    let before = ok(&dir, &["export", "kept"]);
    let bad_lines = [
        // A vector of another dimension than the collection's.
        (json!({"id": "x", "embedding": [1.0, 2.0]}).to_string(), "dimension"),
        // Metadata chromadb refuses.
        (json!({"id": "x", "embedding": [1.0, 2.0, 3.0], "metadata": {"a": {"nested": 1}}}).to_string(), "metadata"),
        (json!({"id": "x", "embedding": [1.0, 2.0, 3.0], "metadata": {}}).to_string(), "metadata"),
        (json!({"id": "", "embedding": [1.0, 2.0, 3.0]}).to_string(), "ID"),
        (json!({"id": "x", "embedding": [], "document": "d"}).to_string(), "embedding"),
        (json!({"id": "x", "embedding": [1.0, 2.0, 3.0], "document": 5}).to_string(), "document"),
        (json!({"embedding": [1.0, 2.0, 3.0]}).to_string(), "id"),
        // An id twice in one file (upserting both would depend on where the batches split).
        (record(10), "already on line 1"),
    ];
    for (bad, needle) in bad_lines {
        let mut lines: Vec<String> = (10..14).map(record).collect();
        lines.push(bad.clone());
        write_lines(&file, &lines);
        assert_user_error(&dir, &["import", "kept", "--file", path, "--batch-size", "1"], "line 5");
        assert_user_error(&dir, &["import", "kept", "--file", path], needle);
        assert_eq!(ok(&dir, &["export", "kept"]), before, "after {bad}");
    }

    // Lines of two dimensions in a new collection.
    write_lines(&file, &[record(1), json!({"id": "y", "embedding": [1.0, 2.0]}).to_string()]);
    assert_user_error(&dir, &["import", "mixed", "--file", path], "line 2");
    assert_eq!(ok(&dir, &["collections"]).trim(), "kept");
}

#[test]
fn imports_with_and_without_documents_and_metadata_round_trip_through_export() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let (file, out) = (tmp.path().join("in.jsonl"), tmp.path().join("out.jsonl"));
    write_lines(
        &file,
        &[
            json!({"id": "full", "embedding": [0.5, 0.25, -1.0], "document": "apple pie", "metadata": {"k": "fruit", "n": 1, "tags": ["x", "y"], "ok": true, "f": 0.5}}).to_string(),
            json!({"id": "doc", "embedding": [0.0, 1.0, 0.0], "document": "banana"}).to_string(),
            json!({"id": "meta", "embedding": [0.0, 0.0, 1.0], "metadata": {"k": "x"}}).to_string(),
            String::new(),
            json!({"id": "bare", "embedding": [1.0, 1.0, 0.0], "document": null, "metadata": null}).to_string(),
        ],
    );
    ok(&a, &["create", "things", "--space", "ip", "--metadata", r#"{"owner":"me"}"#]);
    let imported = ok(&a, &["import", "things", "--file", file.to_str().unwrap(), "--batch-size", "3"]);
    assert!(imported.contains("imported 4 records"), "{imported}");
    assert_eq!(count(&a, "things"), 4);
    let got: Value = serde_json::from_str(&ok(&a, &["get", "things", "--json"])).unwrap();
    assert_eq!(got["ids"], json!(["full", "doc", "meta", "bare"]));
    assert_eq!(got["documents"], json!(["apple pie", "banana", null, null]));
    assert_eq!(got["metadatas"][0], json!({"k": "fruit", "n": 1, "tags": ["x", "y"], "ok": true, "f": 0.5}));
    assert_eq!(got["metadatas"][3], Value::Null);

    ok(&a, &["export", "things", "--file", out.to_str().unwrap()]);
    let exported = std::fs::read_to_string(&out).unwrap();
    assert_eq!(exported.lines().count(), 4);
    ok(&b, &["import", "things", "--file", out.to_str().unwrap()]);
    assert_eq!(ok(&b, &["export", "things"]), exported, "export -> import -> export is the identity");
}

#[test]
fn a_store_held_by_another_writer_gives_exit_3_and_reads_still_work() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, file) = (tmp.path().join("store"), tmp.path().join("in.jsonl"));
    write_lines(&file, &(0..3).map(record).collect::<Vec<_>>());
    ok(&dir, &["import", "held", "--file", file.to_str().unwrap()]);
    // This test process is the other writer: it holds the directory's writer lock.
    let holder = chromalite_sqlite::SqliteBackend::open(&dir).unwrap();
    for args in [
        vec!["import", "held", "--file", file.to_str().unwrap()],
        vec!["create", "other"],
        vec!["delete", "held", "--ids", "r1"],
        vec!["cleanup", "--yes"],
    ] {
        let (code, _, err) = cli(&dir, &args);
        assert_eq!(code, 3, "chromalite {args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{err:?}");
        assert!(err.contains("locked"), "{err}");
    }
    assert_eq!(count(&dir, "held"), 3, "readers do not need the writer lock");
    drop(holder);
    ok(&dir, &["delete", "held", "--ids", "r1"]);
    assert_eq!(count(&dir, "held"), 2);
}

#[test]
fn options_outside_the_contract_are_user_errors_not_ignored() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, file) = (tmp.path().join("store"), tmp.path().join("in.jsonl"));
    write_lines(&file, &(0..3).map(record).collect::<Vec<_>>());
    ok(&dir, &["import", "col", "--file", file.to_str().unwrap()]);
    let other = tmp.path().join("other");
    let other = other.to_str().unwrap();
    for (args, needle) in [
        // Would print the unfiltered count as if filtered.
        (&["count", "col", "--where", r#"{"x":1}"#][..], "count: unexpected option --where"),
        (&["export", "col", "--ids", "r1"], "export: unexpected option --ids"),
        (&["get", "col", "--n-results", "1"], "get: unexpected option --n-results"),
        (&["--memory", "count", "col"], "--path and --memory"),
        (&["--path", other, "count", "col"], "--path and --path"),
        (&["--token", "t", "count", "col"], "--token goes with --url"),
        (&["cleanup", "--yes", "--dry-run"], "exclude each other"),
    ] {
        assert_user_error(&dir, args, needle);
    }
    assert_eq!(count(&dir, "col"), 3);
}
