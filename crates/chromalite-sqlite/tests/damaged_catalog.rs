//! A damaged catalog row gives a typed `Corrupt` error, never a panic or an overflow.

use chromalite_core::{CreateCollection, DatabaseRef, ErrorKind, RecordBatch, VectorBackend};
use chromalite_sqlite::SqliteBackend;

#[test]
fn a_dimension_beyond_chromas_i32_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let db = DatabaseRef::default();
    {
        let store = SqliteBackend::open(dir.path()).unwrap();
        let req = CreateCollection { name: "col".into(), ..Default::default() };
        let col = store.create_collection(&db, &req).unwrap();
        let mut batch = RecordBatch::new(["a"]);
        batch.embeddings = Some(vec![vec![1.0, 2.0]]);
        store.add(&col, &batch).unwrap();
    }
    for bad in [1_i64 << 40, -1] {
        let c = rusqlite::Connection::open(dir.path().join("chroma.sqlite3")).unwrap();
        c.execute("UPDATE collections SET dimension = ?1", [bad]).unwrap();
        drop(c);
        let err = SqliteBackend::open(dir.path()).and_then(|s| s.get_collection(&db, "col")).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Corrupt, "{bad}: {err}");
    }
}
