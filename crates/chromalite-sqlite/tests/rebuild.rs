//! A vector segment rebuilt from the log gives every record the vector chromadb would: an `add` of
//! an existing id never replaces it, whatever the timing of the background indexer.

use chromalite_core::{CreateCollection, DatabaseRef, GetRequest, Include, RecordBatch, VectorBackend};
use chromalite_sqlite::SqliteBackend;

fn batch(ids: &[&str], vectors: Vec<Vec<f32>>) -> RecordBatch {
    let mut b = RecordBatch::new(ids.iter().copied());
    b.embeddings = Some(vectors);
    b
}

fn embeddings(store: &SqliteBackend, col: &chromalite_core::CollectionInfo) -> Vec<Vec<f32>> {
    let req = GetRequest { include: vec![Include::Embeddings], ..GetRequest::default() };
    store.get(col, &req).unwrap().embeddings.unwrap()
}

#[test]
fn ignored_add_never_reaches_the_vector_segment() {
    let dir = tempfile::tempdir().unwrap();
    let db = DatabaseRef::default();
    let store = SqliteBackend::open(dir.path()).unwrap();
    let col = store.create_collection(&db, &CreateCollection { name: "dups".into(), ..Default::default() }).unwrap();
    store.add(&col, &batch(&["a"], vec![vec![1.0, 2.0]])).unwrap();
    store.add(&col, &batch(&["a", "b"], vec![vec![9.0, 9.0], vec![3.0, 4.0]])).unwrap();
    assert_eq!(embeddings(&store, &col), vec![vec![1.0, 2.0], vec![3.0, 4.0]]);
    drop(store);

    // Without the snapshot the segment is rebuilt from the log alone.
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            std::fs::remove_dir_all(path).unwrap();
        }
    }
    let store = SqliteBackend::open(dir.path()).unwrap();
    assert_eq!(embeddings(&store, &col), vec![vec![1.0, 2.0], vec![3.0, 4.0]]);
}
