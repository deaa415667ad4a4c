//! The `chromalite` binary against real chromadb 1.5.9, both directions, through the CLI contract.
//!
//! 1. Python writes a persist directory (cosine/l2/ip collections, 1,500 records past the default
//!    sync threshold, deletes, updates, upserts, array metadata, unicode); `chromalite --path DIR
//!    get/query/count --json` must print what chromadb answered.
//! 2. `chromalite create/import/delete` writes a directory; chromadb must answer the same requests
//!    as `chromalite` does, then add and delete records itself, which `chromalite` must see.
//!
//! Needs chromadb's python: `CHROMALITE_PYTHON` or the workspace's `.venv`; under the test command
//! a missing one fails the tests (see `tests/support/chroma_python.rs`).

#[path = "../../../tests/conformance/compare.rs"]
mod compare;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

const ORACLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/py/chroma_oracle.py");

#[path = "../../../tests/support/chroma_python.rs"]
mod chroma_python;

fn python() -> Option<PathBuf> {
    chroma_python::chroma_python("chroma_compat")
}

fn oracle(py: &Path, args: &[&str]) -> Value {
    let out =
        Command::new(py).arg(ORACLE).args(args).env("ANONYMIZED_TELEMETRY", "False").output().expect("run python");
    assert!(out.status.success(), "oracle {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("oracle prints JSON")
}

fn cli(dir: &Path, args: &[String]) -> (i32, String, String) {
    cli_at("--path", dir, args)
}

/// Runs `chromalite <store_flag> <dir> args...` (`--path` or `--lance`).
fn cli_at(store_flag: &str, dir: &Path, args: &[String]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_chromalite"))
        .arg(store_flag)
        .arg(dir)
        .args(args)
        .output()
        .expect("run chromalite");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Turns one chromadb-style request into chromalite CLI arguments.
fn cli_args(req: &Value, scratch: &Path, n: usize) -> Vec<String> {
    let name = req["collection"].as_str().unwrap().to_owned();
    let args = &req["args"];
    let op = req["op"].as_str().unwrap();
    let mut v = vec![op.to_owned(), name];
    if op == "count" {
        return v;
    }
    if let Some(ids) = args["ids"].as_array() {
        v.extend(["--ids".into(), ids.iter().map(|i| i.as_str().unwrap()).collect::<Vec<_>>().join(",")]);
    }
    for (key, flag) in [("where", "--where"), ("where_document", "--where-document")] {
        if !args[key].is_null() {
            v.extend([flag.into(), args[key].to_string()]);
        }
    }
    for (key, flag) in [("limit", "--limit"), ("offset", "--offset"), ("n_results", "--n-results")] {
        if let Some(x) = args[key].as_u64() {
            v.extend([flag.into(), x.to_string()]);
        }
    }
    if let Some(inc) = args["include"].as_array() {
        v.extend(["--include".into(), inc.iter().map(|i| i.as_str().unwrap()).collect::<Vec<_>>().join(",")]);
    }
    if !args["query_embeddings"].is_null() {
        let f = scratch.join(format!("q{n}.json"));
        std::fs::write(&f, args["query_embeddings"].to_string()).unwrap();
        v.extend(["--embeddings".into(), f.display().to_string()]);
    }
    v.push("--json".into());
    v
}

fn cli_answer(store_flag: &str, dir: &Path, req: &Value, scratch: &Path, n: usize) -> Value {
    let args = cli_args(req, scratch, n);
    let (code, out, err) = cli_at(store_flag, dir, &args);
    assert_eq!(code, 0, "chromalite {args:?} failed: {err}");
    if req["op"] == "count" {
        return json!(out.split_whitespace().last().unwrap().parse::<u64>().unwrap());
    }
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("chromalite {args:?} printed non-JSON ({e}): {out}"))
}

fn check_all(dir: &Path, requests: &[Value], scratch: &Path) {
    check_all_at("--path", dir, requests, scratch);
}

fn check_all_at(store_flag: &str, dir: &Path, requests: &[Value], scratch: &Path) {
    let mut failures = Vec::new();
    for (n, req) in requests.iter().enumerate() {
        let have = cli_answer(store_flag, dir, req, scratch, n);
        if let Err(why) = compare::same(&req["result"], &have, "$") {
            failures.push(format!("request {n} {}: {why}", req["args"]));
        }
        // `same` takes a missing key for null; the output must have exactly chromadb's keys
        // (`null` where not included), plus the contract's `include`.
        let keys = |v: &Value| v.as_object().map(|o| o.keys().cloned().collect::<std::collections::BTreeSet<_>>());
        if keys(&req["result"]) != keys(&have) {
            failures.push(format!(
                "request {n} {}: keys {:?}, chromadb's {:?}",
                req["args"],
                keys(&have),
                keys(&req["result"])
            ));
        }
    }
    assert!(failures.is_empty(), "chromalite differs from chromadb:\n{}", failures.join("\n"));
}

#[test]
fn chromalite_reads_what_chromadb_wrote() {
    let Some(py) = python() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let requests = oracle(&py, &["build", dir.to_str().unwrap()]);
    check_all(&dir, requests.as_array().unwrap(), tmp.path());
    let (code, out, _) = cli(&dir, &["collections".into()]);
    assert_eq!(code, 0);
    let mut names: Vec<&str> = out.lines().collect();
    names.sort_unstable();
    assert_eq!(names, ["inner", "notes", "packages"]);
}

fn import_file(path: &Path) {
    let mut lines = Vec::new();
    for i in 0..1200u32 {
        // Distinct, irregular vectors: ties in distance would make neighbour order arbitrary.
        let e: Vec<f64> = (0..8u32)
            .map(|d| (f64::from(i) * 0.618_034 + f64::from(d) * 1.37 + f64::from(i * d) * 0.011).sin())
            .collect();
        let mut rec = json!({"id": format!("r{i}"), "embedding": e, "metadata": {"i": i, "even": i % 2 == 0, "tags": [format!("g{}", i % 3)]}});
        if i % 5 != 0 {
            rec["document"] = json!(format!("record {i} ünïcödé {}", if i % 3 == 0 { "fizz" } else { "buzz" }));
        }
        lines.push(rec.to_string());
    }
    std::fs::write(path, lines.join("\n")).unwrap();
}

#[test]
fn chromadb_reads_what_chromalite_wrote_and_writes_back() {
    let Some(py) = python() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let file = tmp.path().join("records.jsonl");
    import_file(&file);
    let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
    assert_eq!(cli(&dir, &s(&["create", "mine", "--space", "cosine", "--metadata", r#"{"owner":"rust"}"#])).0, 0);
    let (code, _, err) = cli(&dir, &s(&["import", "mine", "--file", file.to_str().unwrap(), "--batch-size", "250"]));
    assert_eq!(code, 0, "{err}");
    assert!(err.lines().any(|l| l == "committed 1200"), "durable progress lines missing: {err}");
    assert_eq!(cli(&dir, &s(&["delete", "mine", "--where", r#"{"i":{"$lt":10}}"#])).0, 0);

    let q = |e: Vec<f64>| json!([e]);
    let mut requests = vec![
        json!({"collection": "mine", "op": "count", "args": {}}),
        json!({"collection": "mine", "op": "get", "args": {"limit": 30, "offset": 3, "include": ["documents", "metadatas", "embeddings"]}}),
        json!({"collection": "mine", "op": "get", "args": {"where": {"tags": {"$contains": "g1"}}, "where_document": {"$contains": "fizz"}, "include": ["metadatas"]}}),
        json!({"collection": "mine", "op": "query", "args": {"query_embeddings": q(vec![0.1; 8]), "n_results": 7}}),
        json!({"collection": "mine", "op": "query", "args": {"query_embeddings": q(vec![-0.5, 0.2, 0.9, 0.0, 0.3, -0.1, 0.4, 0.8]), "n_results": 5, "where": {"even": true}, "include": ["distances", "documents"]}}),
    ];
    let req_file = tmp.path().join("requests.json");
    std::fs::write(&req_file, Value::Array(requests.clone()).to_string()).unwrap();
    let answered = oracle(&py, &["answer", dir.to_str().unwrap(), req_file.to_str().unwrap()]);
    for (r, a) in requests.iter_mut().zip(answered.as_array().unwrap()) {
        r["result"] = a["result"].clone();
    }
    check_all(&dir, &requests, tmp.path());

    let mutated = oracle(&py, &["mutate", dir.to_str().unwrap(), "mine"]);
    let (code, out, err) = cli(&dir, &s(&["count", "mine"]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.split_whitespace().last().unwrap(), mutated["count"].to_string());
    let (_, out, _) = cli(&dir, &s(&["get", "mine", "--ids", "m3,m9", "--json"]));
    let got: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(got["ids"], json!(["m3", "m9"]));
    assert_eq!(got["documents"], json!(["added by python 3", "added by python 9"]));
}

/// `migrate` both ways through the `LanceDB` backend (cargo feature `lance`): a directory chromadb
/// wrote is copied into a Lance store, which must answer chromadb's requests as chromadb did; the
/// Lance store is copied into a new Chroma directory, which chromadb must read identically, and
/// whose export equals the original's record for record.
#[cfg(feature = "lance")]
#[test]
fn migrate_to_lance_and_back_loses_nothing() {
    let Some(py) = python() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let (dir, lance, back) = (tmp.path().join("store"), tmp.path().join("lance"), tmp.path().join("back"));
    let requests = oracle(&py, &["build", dir.to_str().unwrap()]);
    let requests = requests.as_array().unwrap();
    let run = |args: &[&std::ffi::OsStr]| {
        let out = Command::new(env!("CARGO_BIN_EXE_chromalite")).args(args).output().expect("run chromalite");
        assert!(out.status.success(), "chromalite {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let out = run(&["migrate".as_ref(), "--from".as_ref(), dir.as_os_str(), "--to-lance".as_ref(), lance.as_os_str()]);
    assert!(out.contains("migrated 3 collections"), "{out}");
    check_all_at("--lance", &lance, requests, tmp.path());

    let out = run(&["migrate".as_ref(), "--from-lance".as_ref(), lance.as_os_str(), "--to".as_ref(), back.as_os_str()]);
    assert!(out.contains("migrated 3 collections"), "{out}");
    let req_file = tmp.path().join("requests.json");
    std::fs::write(&req_file, Value::Array(requests.clone()).to_string()).unwrap();
    let answered = oracle(&py, &["answer", back.to_str().unwrap(), req_file.to_str().unwrap()]);
    let mut failures = Vec::new();
    for (n, (want, got)) in requests.iter().zip(answered.as_array().unwrap()).enumerate() {
        if let Err(why) = compare::same(&want["result"], &got["result"], "$") {
            failures.push(format!("request {n} {}: {why}", want["args"]));
        }
    }
    assert!(failures.is_empty(), "chromadb answers differently after the round trip:\n{}", failures.join("\n"));
    for name in ["inner", "notes", "packages"] {
        let export = |flag: &str, d: &Path| run(&[flag.as_ref(), d.as_os_str(), "export".as_ref(), name.as_ref()]);
        let original = export("--path", &dir);
        assert!(!original.trim().is_empty(), "{name} exported nothing");
        assert_eq!(export("--lance", &lance), original, "{name}: Lance copy differs");
        // Lance keeps the f32 values it was given, bit for bit. The persistent backend may return
        // a cosine collection's vectors with a last-bit difference (they pass through the
        // normalised HNSW copy), as chromadb's own reads are compared elsewhere: within 1e-4.
        let lines = |text: &str| Value::Array(text.lines().map(|l| serde_json::from_str(l).unwrap()).collect());
        if let Err(why) = compare::same(&lines(&original), &lines(&export("--path", &back)), "$") {
            panic!("{name}: copied back differs: {why}");
        }
        let meta = |flag: &str, d: &Path| {
            let v: Value =
                serde_json::from_str(&run(&[flag.as_ref(), d.as_os_str(), "collections".as_ref(), "--json".as_ref()]))
                    .unwrap();
            v.as_array()
                .unwrap()
                .iter()
                .find(|c| c["name"] == name)
                .map(|c| (c["metadata"].clone(), c["configuration_json"].clone()))
        };
        assert_eq!(meta("--path", &back), meta("--path", &dir), "{name}: collection metadata or configuration changed");
        assert_eq!(
            meta("--lance", &lance),
            meta("--path", &dir),
            "{name}: collection metadata or configuration changed"
        );
    }
}
