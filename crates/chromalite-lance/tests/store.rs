//! The Lance backend as a store: persistence across reopen, the writer lock, the vector index,
//! tenants as folders, and filter pushdown checked against the in-memory backend.

use std::time::Duration;

use chromalite_core::{
    CreateCollection, DatabaseRef, ErrorKind, GetRequest, Include, QueryRequest, RecordBatch, Selection, VectorBackend,
    Where, WhereDocument,
};
use chromalite_lance::{LanceBackend, LanceOptions, TIDY_EVERY};
use chromalite_memory::MemoryBackend;
use serde_json::json;

fn create(store: &dyn VectorBackend, name: &str, space: &str) -> chromalite_core::CollectionInfo {
    let req = CreateCollection {
        name: name.into(),
        configuration: Some(json!({"hnsw": {"space": space}})),
        ..Default::default()
    };
    store.create_collection(&DatabaseRef::default(), &req).unwrap()
}

/// Deterministic pseudo-random numbers (xorshift), so failures reproduce.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn float(&mut self) -> f32 {
        (self.next() % 2000) as f32 / 1000.0 - 1.0
    }
    fn vector(&mut self, dim: usize) -> Vec<f32> {
        (0..dim).map(|_| self.float()).collect()
    }
}

fn records(rng: &mut Rng, from: usize, n: usize, dim: usize) -> RecordBatch {
    let colors = ["red", "green", "blue", "it's"];
    let mut batch = RecordBatch::new((from..from + n).map(|i| format!("r{i}")));
    batch.embeddings = Some((0..n).map(|_| rng.vector(dim)).collect());
    batch.documents =
        Some((from..from + n).map(|i| (i % 5 != 0).then(|| format!("doc {i} {}", colors[i % 4]))).collect());
    batch.metadatas = Some(
        (from..from + n)
            .map(|i| {
                (i % 7 != 0).then(|| {
                    let m = json!({
                        "color": colors[i % 4], "n": i % 10, "x": (i % 3) as f64 + 0.5, "even": i % 2 == 0,
                        "tags": [colors[i % 3], colors[(i + 1) % 4]],
                    });
                    chromalite_core::metadata::update_metadata_from_json(&m).unwrap()
                })
            })
            .collect(),
    );
    batch
}

#[test]
fn records_and_catalog_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng(7);
    let (before, col_id) = {
        let store = LanceBackend::open(dir.path()).unwrap();
        let col = create(&store, "keep", "cosine");
        store.add(&col, &records(&mut rng, 0, 50, 4)).unwrap();
        let mut up = RecordBatch::new(["r3", "new"]);
        up.embeddings = Some(vec![vec![1.0, 0.0, 0.0, 0.0], vec![0.0, 1.0, 0.0, 0.0]]);
        store.upsert(&col, &up).unwrap();
        store.delete(&col, &Selection { ids: Some(vec!["r4".into()]), ..Default::default() }).unwrap();
        let all = GetRequest {
            include: vec![Include::Embeddings, Include::Documents, Include::Metadatas],
            ..Default::default()
        };
        (store.get(&col, &all).unwrap(), col.id)
    };
    let store = LanceBackend::open(dir.path()).unwrap();
    let col = store.get_collection(&DatabaseRef::default(), "keep").unwrap();
    assert_eq!(col.id, col_id);
    assert_eq!(col.dimension, Some(4));
    assert_eq!(col.config.hnsw.space, chromalite_core::Space::Cosine);
    let all =
        GetRequest { include: vec![Include::Embeddings, Include::Documents, Include::Metadatas], ..Default::default() };
    let after = store.get(&col, &all).unwrap();
    assert_eq!(after, before);
    assert_eq!(after.ids.len(), 50);
    assert_eq!(after.ids.last().map(String::as_str), Some("new"), "get keeps insertion order");
    // More writes after reopen continue the insertion order.
    let mut more = RecordBatch::new(["later"]);
    more.embeddings = Some(vec![vec![0.5; 4]]);
    store.add(&col, &more).unwrap();
    assert_eq!(store.get(&col, &GetRequest::default()).unwrap().ids.last().map(String::as_str), Some("later"));
}

#[test]
fn a_second_writer_gets_locked_with_the_pid() {
    let dir = tempfile::tempdir().unwrap();
    let _first = LanceBackend::open(dir.path()).unwrap();
    let options = LanceOptions { lock_wait: Duration::from_millis(100), ..Default::default() };
    let err = LanceBackend::open_with(dir.path(), options).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Locked);
    assert!(err.to_string().contains(&std::process::id().to_string()), "{err}");
}

#[test]
fn tenants_and_databases_are_folders() {
    let dir = tempfile::tempdir().unwrap();
    let store = LanceBackend::open(dir.path()).unwrap();
    store.create_tenant("acme/../x").unwrap();
    let db = DatabaseRef::new("acme/../x", "prod db");
    store.create_database(&db).unwrap();
    let col = store.create_collection(&db, &CreateCollection { name: "col1".into(), ..Default::default() }).unwrap();
    let mut batch = RecordBatch::new(["a"]);
    batch.embeddings = Some(vec![vec![1.0, 2.0]]);
    store.add(&col, &batch).unwrap();
    let folder = dir.path().join("acme%2F%2E%2E%2Fx").join("prod%20db");
    assert!(folder.is_dir(), "database folder {folder:?}");
    assert!(store.get_collection(&DatabaseRef::default(), "col1").is_err(), "databases are isolated");
    store.delete_database(&db).unwrap();
    assert!(!folder.exists());
    assert_eq!(store.get_database(&db).unwrap_err().kind(), ErrorKind::NotFound);
}

fn where_cases() -> Vec<serde_json::Value> {
    vec![
        json!({"color": "red"}),
        json!({"color": {"$ne": "red"}}),
        json!({"color": {"$in": ["green", "it's"]}}),
        json!({"color": {"$nin": ["green", "it's"]}}),
        json!({"even": true}),
        json!({"even": {"$ne": false}}),
        json!({"n": {"$gte": 5}}),
        json!({"n": 3}),
        json!({"x": {"$lt": 1.0}}),
        json!({"tags": {"$contains": "blue"}}),
        json!({"tags": {"$not_contains": "red"}}),
        json!({"$and": [{"color": "blue"}, {"n": {"$gt": 2}}]}),
        json!({"$or": [{"color": "blue"}, {"even": false}]}),
        json!({"$or": [{"color": "blue"}, {"n": {"$lt": 2}}]}),
        json!({"#document": {"$contains": "red"}}),
    ]
}

fn document_cases() -> Vec<serde_json::Value> {
    vec![
        json!({"$contains": "red"}),
        json!({"$not_contains": "1"}),
        json!({"$contains": "it's"}),
        json!({"$regex": "doc [0-9]+ g"}),
        json!({"$or": [{"$contains": "blue"}, {"$not_regex": "^doc 1"}]}),
    ]
}

/// Every filter shape (pushed down exactly, partly, or not at all) gives the in-memory backend's
/// answer for get, delete and query.
#[test]
fn pushdown_agrees_with_the_evaluator() {
    let dir = tempfile::tempdir().unwrap();
    let lance = LanceBackend::open(dir.path()).unwrap();
    let memory = MemoryBackend::new();
    let mut rng = Rng(42);
    let data = records(&mut rng, 0, 120, 3);
    let query = vec![rng.vector(3), rng.vector(3)];
    let stores: [&dyn VectorBackend; 2] = [&lance, &memory];
    let cols: Vec<_> = stores.iter().map(|s| create(*s, "filters", "l2")).collect();
    for (s, c) in stores.iter().zip(&cols) {
        s.add(c, &data).unwrap();
    }
    let mut selections: Vec<Selection> = where_cases()
        .iter()
        .map(|w| Selection { where_: Some(Where::from_json(w).unwrap()), ..Default::default() })
        .collect();
    selections.extend(
        document_cases()
            .iter()
            .map(|d| Selection { where_document: Some(WhereDocument::from_json(d).unwrap()), ..Default::default() }),
    );
    selections.push(Selection {
        ids: Some(vec!["r5".into(), "r1".into(), "missing".into()]),
        where_: Some(Where::from_json(&json!({"n": {"$gte": 1}})).unwrap()),
        ..Default::default()
    });
    for sel in &selections {
        let get = GetRequest { selection: sel.clone(), limit: Some(7), offset: 2, ..Default::default() };
        let q = QueryRequest { embeddings: query.clone(), n_results: 5, selection: sel.clone(), ..Default::default() };
        let answers: Vec<_> =
            stores.iter().zip(&cols).map(|(s, c)| (s.get(c, &get).unwrap(), s.query(c, &q).unwrap())).collect();
        assert_eq!(answers[0].0, answers[1].0, "get {sel:?}");
        assert_eq!(answers[0].1.ids, answers[1].1.ids, "query {sel:?}");
    }
    // Deletes by the same filters leave the same records.
    for sel in selections.iter().step_by(4) {
        for (s, c) in stores.iter().zip(&cols) {
            s.delete(c, sel).unwrap();
        }
        let left: Vec<_> =
            stores.iter().zip(&cols).map(|(s, c)| s.get(c, &GetRequest::default()).unwrap().ids).collect();
        assert_eq!(left[0], left[1], "after delete {sel:?}");
    }
}

/// Past the threshold a vector index serves queries: the answers stay close to exact, and rows
/// written after the index are found too.
#[test]
fn indexed_search_keeps_recall_and_sees_new_rows() {
    let dir = tempfile::tempdir().unwrap();
    let options = LanceOptions { index_threshold: 1500, ..Default::default() };
    let lance = LanceBackend::open_with(dir.path(), options).unwrap();
    let memory = MemoryBackend::new();
    let mut rng = Rng(3);
    let dim = 16;
    let stores: [&dyn VectorBackend; 2] = [&lance, &memory];
    let cols: Vec<_> = stores.iter().map(|s| create(*s, "big", "cosine")).collect();
    for chunk in 0..4 {
        let mut batch = RecordBatch::new((chunk * 500..(chunk + 1) * 500).map(|i| format!("v{i}")));
        batch.embeddings = Some((0..500).map(|_| rng.vector(dim)).collect());
        for (s, c) in stores.iter().zip(&cols) {
            s.add(c, &batch).unwrap();
        }
    }
    let queries: Vec<Vec<f32>> = (0..40).map(|_| rng.vector(dim)).collect();
    let q = QueryRequest { embeddings: queries.clone(), n_results: 10, ..Default::default() };
    let got = lance.query(&cols[0], &q).unwrap();
    let exact = memory.query(&cols[1], &q).unwrap();
    let hits: usize = got.ids.iter().zip(&exact.ids).map(|(a, b)| a.iter().filter(|id| b.contains(id)).count()).sum();
    let recall = hits as f64 / 400.0;
    assert!(recall >= 0.85, "recall@10 {recall}");
    // Distances are chromalite's own, equal for the ids both return.
    let d = got.distances.as_ref().unwrap();
    assert!(d[0].windows(2).all(|w| w[0] <= w[1]));
    // A row written after the index is found by its own vector.
    let mut fresh = RecordBatch::new(["fresh"]);
    fresh.embeddings = Some(vec![queries[0].clone()]);
    lance.add(&cols[0], &fresh).unwrap();
    let top = lance
        .query(&cols[0], &QueryRequest { embeddings: vec![queries[0].clone()], n_results: 1, ..Default::default() })
        .unwrap();
    assert_eq!(top.ids[0], vec!["fresh".to_string()]);
    // Compaction (in optimize) rewrites the fragments the index points into: same answers after.
    lance.optimize().unwrap();
    let again = lance
        .query(&cols[0], &QueryRequest { embeddings: vec![queries[0].clone()], n_results: 1, ..Default::default() })
        .unwrap();
    assert_eq!(again.ids[0], vec!["fresh".to_string()]);
    let got = lance.query(&cols[0], &q).unwrap();
    let hits: usize = got.ids.iter().zip(&exact.ids).map(|(a, b)| a.iter().filter(|id| b.contains(id)).count()).sum();
    assert!(hits as f64 / 400.0 >= 0.85, "recall@10 after compaction {}", hits as f64 / 400.0);
    assert_eq!(lance.count(&cols[0]).unwrap(), 2001);
}

/// A read-only handle beside the writer (which keeps its lock): it sees every commit, catalog
/// changes included, and refuses every write with `ReadOnly` without touching the store.
#[test]
fn a_reader_beside_the_writer_sees_commits_and_refuses_writes() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nothing-here");
    assert_eq!(LanceBackend::open_read_only(&missing).unwrap_err().kind(), ErrorKind::NotFound);
    assert!(!missing.exists(), "a reader creates nothing");

    let writer = LanceBackend::open(dir.path()).unwrap();
    let col = create(&writer, "docs", "l2");
    let reader = LanceBackend::open_read_only(dir.path()).unwrap();
    assert!(reader.is_read_only() && !writer.is_read_only());
    let db = DatabaseRef::default();
    // Before the first write: an empty collection.
    assert_eq!(reader.count(&reader.get_collection(&db, "docs").unwrap()).unwrap(), 0);
    let mut rng = Rng(11);
    writer.add(&col, &records(&mut rng, 0, 20, 3)).unwrap();
    let seen = reader.get_collection(&db, "docs").unwrap();
    assert_eq!(seen.dimension, Some(3));
    assert_eq!(reader.count(&seen).unwrap(), 20);
    let q = QueryRequest { embeddings: vec![vec![0.1, 0.2, 0.3]], n_results: 5, ..Default::default() };
    assert_eq!(reader.query(&seen, &q).unwrap(), writer.query(&col, &q).unwrap());
    // Later commits, and a collection created after the reader opened, are seen.
    writer.add(&col, &records(&mut rng, 20, 5, 3)).unwrap();
    writer.delete(&col, &Selection { ids: Some(vec!["r0".into()]), ..Default::default() }).unwrap();
    assert_eq!(reader.get(&seen, &GetRequest::default()).unwrap(), writer.get(&col, &GetRequest::default()).unwrap());
    let other = create(&writer, "other", "cosine");
    assert_eq!(reader.list_collections(&db, None, 0).unwrap().len(), 2);
    writer.delete_collection(&db, "docs").unwrap();
    assert_eq!(reader.get_collection(&db, "docs").unwrap_err().kind(), ErrorKind::NotFound);
    assert_eq!(reader.count(&seen).unwrap_err().kind(), ErrorKind::NotFound);

    // Every write is refused.
    let other = reader.get_collection(&db, &other.name).unwrap();
    let mut batch = RecordBatch::new(["x"]);
    batch.embeddings = Some(vec![vec![1.0, 2.0]]);
    let name = || CreateCollection { name: "new".into(), ..Default::default() };
    let get_or_create = CreateCollection { name: "other".into(), get_or_create: true, ..Default::default() };
    let refused = [
        reader.add(&other, &batch).unwrap_err(),
        reader.upsert(&other, &batch).unwrap_err(),
        reader.update(&other, &batch).unwrap_err(),
        reader.delete(&other, &Selection { ids: Some(vec!["x".into()]), ..Default::default() }).unwrap_err(),
        // A filter that matches nothing is refused too, not answered with a count of 0.
        reader
            .delete_records(
                &other,
                &chromalite_core::DeleteRequest::new(Selection {
                    where_: Some(Where::eq("k", "none")),
                    ..Default::default()
                })
                .limit(1),
            )
            .unwrap_err(),
        reader.create_collection(&db, &name()).unwrap_err(),
        reader.create_collection(&db, &get_or_create).unwrap_err(),
        reader.modify_collection(&db, "other", &chromalite_core::ModifyCollection::default()).unwrap_err(),
        reader.delete_collection(&db, "other").unwrap_err(),
        reader.create_tenant("tenant2").unwrap_err(),
        reader.create_database(&DatabaseRef::new("default_tenant", "db2")).unwrap_err(),
        reader.delete_database(&db).unwrap_err(),
        reader.optimize().unwrap_err(),
    ];
    for e in refused {
        assert_eq!(e.kind(), ErrorKind::ReadOnly, "{e}");
    }
    reader.flush().unwrap();
    assert_eq!(writer.count(&other).unwrap(), 0);
    assert_eq!(writer.list_collections(&db, None, 0).unwrap().len(), 1);
}

/// `check` (the CLI's `doctor --lance`) runs beside the writer, names its pid, counts records and
/// versions, reports a table whose data file is gone as damage and a leftover table as a notice.
#[test]
fn check_reports_collections_damage_and_leftovers() {
    let dir = tempfile::tempdir().unwrap();
    let writer = LanceBackend::open(dir.path()).unwrap();
    let col = create(&writer, "docs", "l2");
    let mut rng = Rng(5);
    writer.add(&col, &records(&mut rng, 0, 10, 3)).unwrap();
    writer.add(&col, &records(&mut rng, 10, 10, 3)).unwrap();
    create(&writer, "empty", "l2");
    let report = LanceBackend::check(dir.path()).unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.lock_holder, Some(std::process::id()));
    let docs = report.collections.iter().find(|c| c.name == "docs").unwrap();
    assert_eq!((docs.records, docs.versions), (Some(20), Some(2)));
    assert_eq!(report.collections.iter().find(|c| c.name == "empty").unwrap().records, Some(0));
    assert!(report.unreferenced_tables.is_empty());

    // A table folder nobody references (as a crash inside delete_collection leaves), and a folder
    // that is not ours: only the first is reported.
    let db_dir = dir.path().join("default_tenant").join("default_database");
    let table = db_dir.join(format!("{}.lance", col.id));
    let leftover = db_dir.join(format!("{}.lance", chromalite_core::new_uuid()));
    copy_dir(&table, &leftover);
    std::fs::create_dir_all(db_dir.join("mine.lance")).unwrap();
    let report = LanceBackend::check(dir.path()).unwrap();
    assert_eq!(report.unreferenced_tables, vec![leftover]);
    assert!(report.is_ok());

    // A lost data file is damage, named by table.
    let data = table.join("data");
    for f in std::fs::read_dir(&data).unwrap() {
        std::fs::remove_file(f.unwrap().path()).unwrap();
    }
    let report = LanceBackend::check(dir.path()).unwrap();
    assert!(!report.is_ok());
    assert!(report.damage[0].file.ends_with(&format!("{}.lance", col.id)), "{:?}", report.damage);
    drop(writer);
    assert_eq!(LanceBackend::check(dir.path()).unwrap().lock_holder, None);
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

fn dir_size(p: &std::path::Path) -> u64 {
    std::fs::read_dir(p)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                dir_size(&e.path())
            } else {
                e.metadata().unwrap().len()
            }
        })
        .sum()
}

/// Rewriting the same records over and over does not grow the table's folder: every
/// `TIDY_EVERY` commits the writer compacts the table and prunes the versions replaced more than
/// `version_grace` ago (zero here), and a reader opened before keeps reading across the prunes.
#[test]
fn repeated_upserts_of_the_same_ids_stop_growing_the_folder() {
    let dir = tempfile::tempdir().unwrap();
    let options = LanceOptions { version_grace: Duration::ZERO, ..Default::default() };
    let store = LanceBackend::open_with(dir.path(), options).unwrap();
    let memory = MemoryBackend::new();
    let col = create(&store, "hot", "l2");
    let mirror = create(&memory, "hot", "l2");
    let reader = LanceBackend::open_read_only(dir.path()).unwrap();
    let table = dir.path().join("default_tenant").join("default_database").join(format!("{}.lance", col.id));
    let mut rng = Rng(9);
    let mut after_tidy = Vec::new();
    let mut before_tidy = 0;
    for round in 0..4 * TIDY_EVERY as usize {
        // All 400 ids every fourth round, a quarter of them (a different quarter each time) otherwise.
        let batch =
            if round % 4 == 0 { records(&mut rng, 0, 400, 16) } else { records(&mut rng, (round % 4) * 100, 100, 16) };
        store.upsert(&col, &batch).unwrap();
        memory.upsert(&mirror, &batch).unwrap();
        if round % 8 == 0 {
            assert_eq!(reader.count(&col).unwrap(), 400);
        }
        if (round + 2) % TIDY_EVERY as usize == 0 {
            before_tidy = dir_size(&table);
        }
        if (round + 1) % TIDY_EVERY as usize == 0 {
            after_tidy.push(dir_size(&table));
        }
    }
    assert!(before_tidy > after_tidy[3] * 2, "versions accumulate between tidies: {before_tidy} vs {after_tidy:?}");
    eprintln!("table folder after each tidy: {after_tidy:?} bytes; just before the last one: {before_tidy}");
    let growth = after_tidy[3] as f64 / after_tidy[0] as f64;
    assert!(growth < 1.25, "the folder keeps growing: {after_tidy:?}");
    let versions = LanceBackend::check(dir.path()).unwrap().collections[0].versions.unwrap();
    assert!(versions <= 2, "{versions} versions kept");
    // Nothing of the current records was lost, and the reader sees the same.
    let all =
        GetRequest { include: vec![Include::Embeddings, Include::Documents, Include::Metadatas], ..Default::default() };
    let want = memory.get(&mirror, &all).unwrap();
    assert_eq!(store.get(&col, &all).unwrap(), want);
    assert_eq!(reader.get(&col, &all).unwrap(), want);
    let q = QueryRequest { embeddings: vec![rng.vector(16)], n_results: 10, ..Default::default() };
    assert_eq!(store.query(&col, &q).unwrap(), memory.query(&mirror, &q).unwrap());
}

/// With the default grace, versions a reader might still be on are kept: nothing is pruned yet.
#[test]
fn recent_versions_are_kept_for_readers() {
    let dir = tempfile::tempdir().unwrap();
    let store = LanceBackend::open(dir.path()).unwrap();
    let col = create(&store, "hot", "l2");
    let mut rng = Rng(4);
    for _ in 0..TIDY_EVERY + 2 {
        store.upsert(&col, &records(&mut rng, 0, 20, 4)).unwrap();
    }
    store.optimize().unwrap();
    let versions = LanceBackend::check(dir.path()).unwrap().collections[0].versions.unwrap();
    assert!(versions > TIDY_EVERY as usize, "{versions} versions kept");
}

/// A crash between a delete's catalog save and the removal of its files leaves table folders no
/// collection references; the next writer removes them, and nothing that is not one of ours.
#[test]
fn a_writer_removes_tables_no_collection_references() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let aside = dir.path().join("aside");
    let db_dir = root.join("default_tenant").join("default_database");
    let old_db = DatabaseRef::new("default_tenant", "old");
    let old_dir = root.join("default_tenant").join("old");
    let mut rng = Rng(21);
    let (kept, gone_table) = {
        let store = LanceBackend::open(&root).unwrap();
        let kept = create(&store, "kept", "l2");
        let gone = create(&store, "gone", "l2");
        store.add(&kept, &records(&mut rng, 0, 30, 3)).unwrap();
        store.add(&gone, &records(&mut rng, 0, 30, 3)).unwrap();
        store.create_database(&old_db).unwrap();
        let old =
            store.create_collection(&old_db, &CreateCollection { name: "xyz".into(), ..Default::default() }).unwrap();
        store.add(&old, &records(&mut rng, 0, 5, 3)).unwrap();
        // The crash, simulated: the files come back after the catalog forgot them.
        let gone_table = db_dir.join(format!("{}.lance", gone.id));
        copy_dir(&gone_table, &aside.join("gone"));
        copy_dir(&old_dir, &aside.join("old"));
        store.delete_collection(&DatabaseRef::default(), "gone").unwrap();
        store.delete_database(&old_db).unwrap();
        copy_dir(&aside.join("gone"), &gone_table);
        copy_dir(&aside.join("old"), &old_dir);
        (kept, gone_table)
    };
    // Not ours: other names, a file with our name, folders at other depths.
    let foreign = [
        db_dir.join("notes.lance"),
        db_dir.join(format!("{}.lance", chromalite_core::new_uuid().to_uppercase())),
        root.join(format!("{}.lance", chromalite_core::new_uuid())),
        db_dir.join("sub").join(format!("{}.lance", chromalite_core::new_uuid())),
    ];
    for f in &foreign {
        std::fs::create_dir_all(f).unwrap();
    }
    let loose = db_dir.join(format!("{}.lance", chromalite_core::new_uuid()));
    std::fs::write(&loose, b"a file, not a table").unwrap();

    // A reader reports them and removes nothing.
    let report = LanceBackend::check(&root).unwrap();
    assert_eq!(report.unreferenced_tables.len(), 2, "{:?}", report.unreferenced_tables);
    assert!(report.unreferenced_tables.contains(&gone_table));
    drop(LanceBackend::open_read_only(&root).unwrap());
    assert!(gone_table.is_dir());

    // The writer removes them (and the deleted database's folder), and only them.
    let store = LanceBackend::open(&root).unwrap();
    assert!(!gone_table.exists());
    assert!(!old_dir.exists());
    for f in &foreign {
        assert!(f.is_dir(), "{f:?} was removed");
    }
    assert!(loose.is_file());
    assert_eq!(store.count(&kept).unwrap(), 30);
    assert!(LanceBackend::check(&root).unwrap().unreferenced_tables.is_empty());
}
