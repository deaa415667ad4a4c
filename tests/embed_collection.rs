//! Collections with an embedding function: documents without embeddings, `query_texts`, and the
//! function recorded in the configuration the way chromadb 1.5.9 records it (checked against
//! Python when `CHROMALITE_PYTHON` is set, as the test command does).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chromalite::core::EmbeddingError;
use chromalite::{Client, EmbeddingFunction, ErrorKind, Include};
use serde_json::{json, Value};

/// A deterministic stand-in for a model: letter counts, normalised. Texts sharing letters are
/// close, which is all these tests need.
#[derive(Debug)]
struct Letters(&'static str);

impl EmbeddingFunction for Letters {
    fn name(&self) -> &str {
        self.0
    }
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbeddingError> {
        Ok(texts
            .iter()
            .map(|t| {
                let mut v = [0.0f32; 26];
                for c in t.to_ascii_lowercase().bytes().filter(u8::is_ascii_lowercase) {
                    v[usize::from(c - b'a')] += 1.0;
                }
                let n = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-6);
                v.iter().map(|x| x / n).collect()
            })
            .collect())
    }
}

fn default_ef() -> Arc<dyn EmbeddingFunction> {
    Arc::new(Letters("default"))
}

#[test]
fn documents_without_embeddings_and_query_texts() {
    let client = Client::in_memory();
    let col = client.create_collection("docs").embedding_function(default_ef()).run().unwrap();
    col.add(["a", "b", "c"]).documents(["aaaa", "bbbb", "abab"]).run().unwrap();
    col.upsert(["d"]).documents(["zzzz"]).run().unwrap();
    let got = col.get().ids(["a"]).include([Include::Embeddings]).run().unwrap();
    assert_eq!(got.embeddings.unwrap()[0], Letters("x").embed(&["aaaa"]).unwrap()[0]);

    let hits = col.query_texts(["aaab", "zz"]).n_results(2).run().unwrap();
    assert_eq!(hits.ids[0], vec!["a", "c"]);
    assert_eq!(hits.ids[1][0], "d");

    // Given embeddings win: nothing is embedded.
    col.add(["e"]).embeddings(vec![vec![0.0; 26]]).documents(["aaaa"]).run().unwrap();
    let e = col.get().ids(["e"]).include([Include::Embeddings]).run().unwrap();
    assert_eq!(e.embeddings.unwrap()[0], vec![0.0; 26]);

    // An update with a new document gets a new embedding, as in chromadb.
    col.update(["b"]).documents(["zzzz"]).run().unwrap();
    let hits = col.query_texts(["z"]).n_results(2).run().unwrap();
    assert_eq!(hits.ids[0].iter().map(String::as_str).collect::<std::collections::BTreeSet<_>>(), ["b", "d"].into());
}

#[test]
fn without_a_function_texts_are_refused() {
    let client = Client::in_memory();
    let col = client.create_collection("plain").run().unwrap();
    assert!(col.embedding_function().is_none());
    let err = col.query_texts(["hello"]).run().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert!(col.add(["a"]).documents(["only a document"]).run().is_err());
    assert_eq!(col.count().unwrap(), 0);
}

#[test]
fn function_is_recorded_and_checked_on_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let client = Client::persistent(dir.path()).unwrap();
        client.create_collection("with_ef").embedding_function(default_ef()).run().unwrap();
        client.create_collection("plain").run().unwrap();
    }
    let client = Client::persistent(dir.path()).unwrap();
    let col = client.get_collection("with_ef").unwrap();
    assert_eq!(col.info().config.embedding_function, json!({"type": "known", "name": "default", "config": {}}));
    assert_eq!(client.get_collection("plain").unwrap().info().config.embedding_function, Value::Null);
    let err = col.clone().with_embedding_function(Arc::new(Letters("openai"))).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    let col = col.with_embedding_function(default_ef()).unwrap();
    col.add(["x"]).documents(["persisted text"]).run().unwrap();
    assert_eq!(col.query_texts(["text"]).n_results(1).run().unwrap().ids[0], vec!["x"]);
    // get_or_create with another function on an existing collection is refused too.
    let err = client
        .create_collection("with_ef")
        .get_or_create()
        .embedding_function(Arc::new(Letters("openai")))
        .run()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
}

#[path = "support/chroma_python.rs"]
mod chroma_python;

fn python() -> Option<PathBuf> {
    chroma_python::chroma_python("embed_collection (chromadb's view of embedding functions)")
}

fn run_python(py: &Path, dir: &Path, script: &str) -> Value {
    let out = std::process::Command::new(py)
        .arg("-c")
        .arg(script)
        .arg(dir)
        .env("ANONYMIZED_TELEMETRY", "False")
        .env("HF_HUB_OFFLINE", "1")
        .output()
        .expect("run python");
    assert!(out.status.success(), "python failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("python prints JSON")
}

/// chromalite records the function as chromadb does: Python opens the collection with its default
/// (`MiniLM`) function, and a collection Python made with its default is recognised as `MiniLM` here.
#[test]
fn chromadb_agrees_which_function_a_collection_uses() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    {
        let client = Client::persistent(dir.path()).unwrap();
        let col = client.create_collection("from_rust").embedding_function(default_ef()).run().unwrap();
        col.add(["a"]).documents(["hello"]).run().unwrap();
    }
    let seen = run_python(
        &py,
        dir.path(),
        r#"
import json, sys, chromadb
c = chromadb.PersistentClient(sys.argv[1])
col = c.get_collection("from_rust")
ef = col._embedding_function
c.create_collection("py_default")
c.create_collection("py_none", embedding_function=None)
print(json.dumps({"name": ef.name(), "class": type(ef).__name__, "count": col.count(),
                  "config": col.configuration_json.get("embedding_function")}))
"#,
    );
    assert_eq!(seen["name"], "default", "{seen}");
    assert_eq!(seen["class"], "DefaultEmbeddingFunction", "{seen}");
    assert_eq!(seen["count"], 1);
    assert_eq!(seen["config"], json!({"type": "known", "name": "default", "config": {}}));

    let client = Client::persistent(dir.path()).unwrap();
    let py_default = client.get_collection("py_default").unwrap();
    assert_eq!(
        chromalite::core::embedding::recorded_name(&py_default.info().config.embedding_function),
        Some("default")
    );
    assert!(py_default.with_embedding_function(default_ef()).is_ok());
    assert_eq!(client.get_collection("py_none").unwrap().info().config.embedding_function, Value::Null);
}

/// The real model end to end, when the `embed` feature is built and the model files are there.
#[cfg(feature = "embed")]
#[test]
fn minilm_finds_the_semantically_closest_document() {
    use chromalite::embed::{EmbedError, MiniLm, MODEL_DIR_ENV};
    let model = match MiniLm::load(None) {
        Ok(m) => Arc::new(m),
        Err(e @ EmbedError::ModelNotFound { .. }) if std::env::var_os(MODEL_DIR_ENV).is_none() => {
            eprintln!("SKIP: {e}");
            return;
        }
        Err(e) => panic!("{e}"),
    };
    let client = Client::in_memory();
    let col =
        client.create_collection("semantic").space(chromalite::Space::Cosine).embedding_function(model).run().unwrap();
    col.add(["cat", "db", "rust"])
        .documents([
            "A cat sits on the mat.",
            "The database is locked by another process.",
            "Rust is a systems programming language.",
        ])
        .run()
        .unwrap();
    let hits =
        col.query_texts(["a kitten resting on a rug", "memory-safe compiled language"]).n_results(1).run().unwrap();
    assert_eq!(hits.ids, vec![vec!["cat"], vec!["rust"]]);
}
