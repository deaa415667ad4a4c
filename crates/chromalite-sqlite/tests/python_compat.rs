//! Compatibility with Python chromadb 1.5.9 in both directions (needs `CHROMALITE_PYTHON`):
//! a directory written by chromadb answers the same reads in chromalite, and a directory written
//! by chromalite answers the same reads in chromadb, which then writes more that chromalite reads.

mod common;

use chromalite_core::metadata::{update_metadata_from_json, UpdateMetadata};
use chromalite_core::{CreateCollection, DatabaseRef, RecordBatch, Selection, VectorBackend, Where};
use chromalite_sqlite::SqliteBackend;
use serde_json::json;

use common::{compare_all, copy_dir, py, python, run_python, run_rust, spec};

#[test]
fn python_writes_chromalite_reads() {
    let Some(python) = python("python_writes_chromalite_reads") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let (py_dir, rs_dir) = (tmp.path().join("py"), tmp.path().join("rs"));
    py(&python, &["write", py_dir.to_str().unwrap()]);
    copy_dir(&py_dir, &rs_dir);
    let spec = spec();
    let expected = run_python(&python, &py_dir, &spec);
    let store = SqliteBackend::open(&rs_dir).unwrap();
    compare_all(&spec, &expected, &run_rust(&store, &spec));
    // Reopening (now from chromalite's own snapshots) answers the same.
    drop(store);
    let store = SqliteBackend::open(&rs_dir).unwrap();
    compare_all(&spec, &expected, &run_rust(&store, &spec));
}

#[test]
fn chromalite_writes_python_reads_and_writes_back() {
    let Some(python) = python("chromalite_writes_python_reads_and_writes_back") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let spec = spec();
    let ours = {
        let store = SqliteBackend::open(&dir).unwrap();
        write_data(&store);
        run_rust(&store, &spec)
    };
    compare_all(&spec, &run_python(&python, &dir, &spec), &ours);

    py(&python, &["mutate", dir.to_str().unwrap()]);
    let expected = run_python(&python, &dir, &spec);
    let store = SqliteBackend::open(&dir).unwrap();
    compare_all(&spec, &expected, &run_rust(&store, &spec));
}

/// A deterministic generator for test vectors.
struct Lcg(u64);

impl Lcg {
    fn vec(&mut self, dim: usize) -> Vec<f32> {
        (0..dim)
            .map(|_| {
                self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }
}

fn record_meta(i: usize) -> Option<UpdateMetadata> {
    if i.is_multiple_of(7) {
        return None;
    }
    let tag = ["red", "green", "blue"][i % 3];
    let mut m = json!({"i": i, "f": i as f64 / 4.0, "even": i.is_multiple_of(2), "tag": tag});
    if i.is_multiple_of(3) {
        m["arr"] = json!([i % 5, (i + 1) % 5]);
    }
    if i.is_multiple_of(5) {
        m["words"] = if i.is_multiple_of(10) { json!(["alpha", "beta"]) } else { json!(["gamma"]) };
    }
    Some(update_metadata_from_json(&m).unwrap())
}

fn add_records(
    store: &SqliteBackend,
    col: &chromalite_core::CollectionInfo,
    rng: &mut Lcg,
    n: usize,
    dim: usize,
    prefix: &str,
) {
    for start in (0..n).step_by(300) {
        let idx: Vec<usize> = (start..n.min(start + 300)).collect();
        let mut batch = RecordBatch::new(idx.iter().map(|i| format!("{prefix}{i}")));
        batch.embeddings = Some(idx.iter().map(|_| rng.vec(dim)).collect());
        batch.documents = Some(
            idx.iter()
                .map(|i| (i % 11 != 0).then(|| format!("document {i} about {}", ["cats", "dogs", "Birds"][i % 3])))
                .collect(),
        );
        batch.metadatas = Some(idx.iter().map(|i| record_meta(*i)).collect());
        store.add(col, &batch).unwrap();
    }
}

fn create(
    store: &SqliteBackend,
    db: &DatabaseRef,
    name: &str,
    metadata: Option<serde_json::Value>,
    configuration: Option<serde_json::Value>,
) -> chromalite_core::CollectionInfo {
    let metadata = metadata.map(|m| chromalite_core::metadata::metadata_from_json(&m).unwrap());
    store
        .create_collection(db, &CreateCollection { name: name.into(), metadata, configuration, get_or_create: false })
        .unwrap()
}

/// The same kind of data `sqlite_compat.py write` produces, written by chromalite.
fn write_data(store: &SqliteBackend) {
    let mut rng = Lcg(7);
    let db = DatabaseRef::default();
    let l2 = create(store, &db, "l2col", None, None);
    add_records(store, &l2, &mut rng, 1500, 8, "r");
    store
        .delete(
            &l2,
            &Selection { ids: Some((0..100).step_by(10).map(|i| format!("r{i}")).collect()), ..Default::default() },
        )
        .unwrap();
    let mut upd = RecordBatch::new(["r1", "r2", "r3"]);
    upd.embeddings = Some((0..3).map(|_| rng.vec(8)).collect());
    upd.documents = Some(vec![Some("updated one".into()), Some("updated two".into()), Some("updated three".into())]);
    upd.metadatas = Some(
        [json!({"i": 1001, "tag": null}), json!({"new": "yes"}), json!({"arr": [9, 9, 9]})]
            .iter()
            .map(|m| Some(update_metadata_from_json(m).unwrap()))
            .collect(),
    );
    store.update(&l2, &upd).unwrap();
    let mut ups = RecordBatch::new(["r4", "fresh1"]);
    ups.embeddings = Some(vec![rng.vec(8), rng.vec(8)]);
    ups.documents = Some(vec![Some("u4".into()), Some("fresh".into())]);
    ups.metadatas = Some(vec![
        Some(update_metadata_from_json(&json!({"up": true})).unwrap()),
        Some(update_metadata_from_json(&json!({"up": false})).unwrap()),
    ]);
    store.upsert(&l2, &ups).unwrap();
    let w = Where::from_json(&json!({"$and": [{"tag": "blue"}, {"i": {"$gt": 1400}}]})).unwrap();
    store.delete(&l2, &Selection { where_: Some(w), ..Default::default() }).unwrap();
    let cos = create(store, &db, "coscol", Some(json!({"hnsw:space": "cosine", "owner": "rs"})), None);
    add_records(store, &cos, &mut rng, 300, 5, "c");
    let ip = create(store, &db, "ipcol", None, Some(json!({"hnsw": {"space": "ip", "ef_search": 50}})));
    add_records(store, &ip, &mut rng, 50, 4, "p");
    create(store, &db, "emptycol", None, None);
    store.create_tenant("tenantx").unwrap();
    let other_db = DatabaseRef::new("tenantx", "dbx");
    store.create_database(&other_db).unwrap();
    let other = create(store, &other_db, "other", None, None);
    add_records(store, &other, &mut rng, 20, 3, "o");
}
