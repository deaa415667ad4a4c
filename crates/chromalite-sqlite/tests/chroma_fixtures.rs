//! The read direction without Python: the directories in `fixtures/chroma-dirs/` were written by
//! chromadb 1.5.9 (`fixtures/gen/make_chroma_dirs.py`), together with chromadb's answers to a set
//! of reads; chromalite must give the same answers, before and after reopening its own snapshots.

mod common;

use chromalite_sqlite::SqliteBackend;
use serde_json::Value;

#[test]
fn chromadb_written_directories_answer_like_chromadb() {
    let root = common::workspace().join("fixtures/chroma-dirs");
    let mut seen = 0;
    for entry in std::fs::read_dir(&root).expect("fixtures/chroma-dirs is committed") {
        let fixture = entry.unwrap().path();
        let read =
            |f: &str| -> Value { serde_json::from_str(&std::fs::read_to_string(fixture.join(f)).unwrap()).unwrap() };
        let (spec, expected) = (read("spec.json"), read("expected.json"));
        let expected: Vec<Value> = expected.as_array().unwrap().iter().map(common::pick_result).collect();
        let tmp = tempfile::tempdir().unwrap();
        common::copy_dir(&fixture.join("store"), tmp.path());
        for _ in 0..2 {
            let store = SqliteBackend::open(tmp.path()).unwrap();
            common::compare_all(&spec, &expected, &common::run_rust(&store, &spec));
        }
        seen += 1;
    }
    assert!(seen > 0, "no fixtures found in {}", root.display());
}
