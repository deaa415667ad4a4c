//! Damaged stores: every file of a persist directory (`SQLite`, each HNSW file, the pickle)
//! truncated, zeroed or deleted. `validate_database_integrity` (what `doctor` runs) names the
//! file; `repair` backs the store up and restores one that answers queries with every
//! acknowledged record. Also cleanup of orphans and leftovers, which never touches referenced
//! segments.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use chromalite_core::{DatabaseRef, GetRequest, QueryRequest, VectorBackend};
use chromalite_session::repair::{plan_repair, repair, RepairAction};
use chromalite_session::{validate_database_integrity, CleanupService, DatabaseManager, ManagerOptions, Severity};
use chromalite_sqlite::SqliteBackend;

const BEFORE_POINT: usize = 300;
const AFTER_POINT: usize = 20;

fn open_store(p: &Path) -> chromalite_core::Result<Arc<dyn VectorBackend>> {
    Ok(Arc::new(SqliteBackend::open(p)?) as Arc<dyn VectorBackend>)
}

fn vector(i: usize) -> Vec<f32> {
    // Distinct directions, so a record's own vector finds it first under cosine.
    (0..8).map(|d| ((i as f32 + 1.0) * (d as f32 + 1.3)).sin()).collect()
}

fn write(m: &DatabaseManager, range: std::ops::Range<usize>) {
    // Cosine, so that `length.bin` (the norms) carries data worth checking.
    m.client().create_collection("notes").space(chromalite::Space::Cosine).get_or_create().run().unwrap();
    let col = m.get_or_create_database("notes").unwrap();
    let ids: Vec<String> = range.clone().map(|i| format!("r{i}")).collect();
    for chunk in ids.chunks(50) {
        let first: usize = chunk[0][1..].parse().unwrap();
        col.add(chunk.iter().map(String::as_str))
            .embeddings((first..first + chunk.len()).map(vector).collect())
            .documents(chunk.iter().map(|id| format!("document {id}")))
            .run()
            .unwrap();
    }
}

/// A store written through the manager: 300 records covered by the recovery point, 20 more only
/// in `SQLite` and the journal.
fn template() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("store");
        let m = DatabaseManager::open(&store, open_store, ManagerOptions::default()).unwrap();
        write(&m, 0..BEFORE_POINT);
        drop(m); // cleanup: flush, recovery point
        let m = DatabaseManager::open(
            &store,
            open_store,
            ManagerOptions { cleanup_on_exit: false, ..ManagerOptions::default() },
        )
        .unwrap();
        write(&m, BEFORE_POINT..BEFORE_POINT + AFTER_POINT);
        drop(m);
        dir
    })
    .path()
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

fn segment_folder(store: &Path) -> PathBuf {
    fs::read_dir(store)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.is_dir() && chromalite_session::store::is_uuid(&p.file_name().unwrap().to_string_lossy()))
        .expect("the template has a persisted HNSW segment")
}

#[derive(Clone, Copy, Debug)]
enum Damage {
    Truncate,
    Zero,
    Delete,
}

fn damage(path: &Path, how: Damage) {
    let len = fs::metadata(path).unwrap().len();
    match how {
        Damage::Truncate => fs::OpenOptions::new().write(true).open(path).unwrap().set_len(len / 4).unwrap(),
        Damage::Zero => fs::write(path, vec![0u8; len as usize]).unwrap(),
        Damage::Delete => fs::remove_file(path).unwrap(),
    }
}

fn check_case(file: &str, how: Damage) {
    let work = tempfile::tempdir().unwrap();
    let store = work.path().join("store");
    copy_dir(&template().join("store"), &store);
    let target = if file == "chroma.sqlite3" { store.join(file) } else { segment_folder(&store).join(file) };
    damage(&target, how);

    let report = validate_database_integrity(&store);
    assert!(!report.is_ok(), "{file} {how:?}: damage not found: {report:#?}");
    assert!(
        report.damage().any(|f| f.file.ends_with(file)),
        "{file} {how:?}: doctor must name the file: {:#?}",
        report.findings
    );
    let plan = plan_repair(&store);
    assert!(plan.unrepairable.is_none() && !plan.actions.is_empty(), "{plan:#?}");

    let outcome = repair(&store, &open_store).unwrap();
    let backup = outcome.backup.clone().unwrap();
    assert!(
        backup.is_dir() && backup.file_name().unwrap().to_string_lossy().starts_with("store.backup-"),
        "{}",
        backup.display()
    );
    assert!(outcome.after.is_ok(), "{file} {how:?}: still damaged after repair: {:#?}", outcome.after.findings);
    if file == "chroma.sqlite3" {
        assert!(matches!(outcome.actions[0], RepairAction::RestoreSqlite { .. }));
        // The journal after the point: create (cosine), get-or-create, one add of 20 records.
        assert_eq!(outcome.replayed, 3, "the writes after the recovery point come from the journal");
    }

    let db = SqliteBackend::open(&store).unwrap();
    let col = db.get_collection(&DatabaseRef::default(), "notes").unwrap();
    assert_eq!(db.count(&col).unwrap(), BEFORE_POINT + AFTER_POINT, "{file} {how:?}: records lost");
    let all = db.get(&col, &GetRequest::default()).unwrap();
    for i in [0, 149, BEFORE_POINT - 1, BEFORE_POINT, BEFORE_POINT + AFTER_POINT - 1] {
        assert!(all.ids.contains(&format!("r{i}")), "r{i} lost");
    }
    let hits =
        db.query(&col, &QueryRequest { embeddings: vec![vector(310)], n_results: 1, ..Default::default() }).unwrap();
    assert_eq!(hits.ids[0][0], "r310");
    assert!(hits.distances.as_ref().unwrap()[0][0] < 1e-5, "the store answers queries: {hits:?}");
}

macro_rules! cases {
    ($($name:ident: $file:expr, $how:expr;)*) => {
        $(#[test] fn $name() { check_case($file, $how); })*
    };
}

cases! {
    sqlite_truncated: "chroma.sqlite3", Damage::Truncate;
    sqlite_zeroed: "chroma.sqlite3", Damage::Zero;
    sqlite_deleted: "chroma.sqlite3", Damage::Delete;
    header_truncated: "header.bin", Damage::Truncate;
    header_zeroed: "header.bin", Damage::Zero;
    header_deleted: "header.bin", Damage::Delete;
    data_level0_truncated: "data_level0.bin", Damage::Truncate;
    data_level0_zeroed: "data_level0.bin", Damage::Zero;
    data_level0_deleted: "data_level0.bin", Damage::Delete;
    length_truncated: "length.bin", Damage::Truncate;
    length_zeroed: "length.bin", Damage::Zero;
    length_deleted: "length.bin", Damage::Delete;
    link_lists_truncated: "link_lists.bin", Damage::Truncate;
    link_lists_zeroed: "link_lists.bin", Damage::Zero;
    link_lists_deleted: "link_lists.bin", Damage::Delete;
    pickle_truncated: "index_metadata.pickle", Damage::Truncate;
    pickle_zeroed: "index_metadata.pickle", Damage::Zero;
    pickle_deleted: "index_metadata.pickle", Damage::Delete;
}

#[test]
fn a_healthy_store_needs_no_repair() {
    let work = tempfile::tempdir().unwrap();
    let store = work.path().join("store");
    copy_dir(&template().join("store"), &store);
    let report = validate_database_integrity(&store);
    assert!(report.is_ok() && report.findings.is_empty(), "{:#?}", report.findings);
    assert_eq!(report.collections[0].records, BEFORE_POINT + AFTER_POINT);
    assert_eq!(report.collections[0].vectors, Some(BEFORE_POINT + AFTER_POINT));
    let outcome = repair(&store, &open_store).unwrap();
    assert!(outcome.backup.is_none() && outcome.actions.is_empty());
}

#[test]
fn cleanup_removes_orphans_and_leftovers_but_never_referenced_segments() {
    let work = tempfile::tempdir().unwrap();
    let store = work.path().join("store");
    copy_dir(&template().join("store"), &store);
    let live = segment_folder(&store);
    let orphan = store.join("0f1e2d3c-4b5a-4978-8796-a5b4c3d2e1f0");
    fs::create_dir(&orphan).unwrap();
    fs::write(orphan.join("header.bin"), b"old").unwrap();
    let tmp = store.join(format!("{}.tmp", live.file_name().unwrap().to_string_lossy()));
    fs::create_dir(&tmp).unwrap();
    fs::write(store.join("chromalite.lock"), "999999").unwrap();

    let report = validate_database_integrity(&store);
    assert!(report.is_ok(), "leftovers are notices, not damage");
    assert_eq!(report.findings.iter().filter(|f| f.severity == Severity::Notice).count(), 3, "{:#?}", report.findings);

    let service = CleanupService::new(&store);
    let dry = service.cleanup_orphaned_files(true);
    assert!(dry.dry_run && dry.files_removed.contains(&orphan) && dry.files_removed.contains(&tmp), "{dry:#?}");
    assert!(orphan.exists() && tmp.exists(), "a dry run removes nothing");

    assert!(service.safe_remove(&live).is_err(), "a referenced segment is refused");
    assert!(service.safe_remove(&store.join("chroma.sqlite3")).is_err());
    let done = service.cleanup_orphaned_files(false);
    assert!(done.errors_encountered.is_empty(), "{done:#?}");
    assert!(!orphan.exists() && !tmp.exists() && live.exists());
    assert_eq!(fs::read_to_string(store.join("chromalite.lock")).unwrap(), "", "stale pid cleared");
    assert!(validate_database_integrity(&store).findings.is_empty());
    let db = SqliteBackend::open(&store).unwrap();
    let col = db.get_collection(&DatabaseRef::default(), "notes").unwrap();
    assert_eq!(db.count(&col).unwrap(), BEFORE_POINT + AFTER_POINT);
}
