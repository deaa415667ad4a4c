//! Round trip with real chromadb 1.5.9.
//!
//! Needs a Python that has `chromadb==1.5.9` and numpy: `CHROMALITE_PYTHON`, or
//! the workspace's `.venv` (see `tests/support/chroma_python.rs` for the rule).
//!
//! (a) chromadb builds a persisted collection (> 1000 records so the HNSW files
//!     are flushed); we load its segment folder with `Index::load` and check
//!     that our top-k neighbours and distances equal what `collection.query`
//!     returned (labels mapped to ids through `index_metadata.pickle`).
//! (b) we build our own index from the same vectors and labels, write it and
//!     the pickle over Chroma's segment files, reopen the store in a new
//!     Python process and check that Chroma's answers equal ours; then Chroma
//!     adds 1000 more records (it persists them into our files in place) and
//!     we load the result again and compare once more.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use chromalite_hnsw::pickle::{SegmentMetadata, METADATA_FILE};
use chromalite_hnsw::{Index, Params, Space};
use serde_json::Value;

const TOL: f32 = 1e-4;

#[path = "../../../tests/support/chroma_python.rs"]
mod chroma_python;

fn python() -> Option<PathBuf> {
    chroma_python::chroma_python("chroma_roundtrip")
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/chroma_roundtrip.py")
}

fn run_py(py: &Path, args: &[&str]) {
    let out = Command::new(py).arg(script()).args(args).output().expect("start python");
    assert!(
        out.status.success(),
        "python {args:?} failed:\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn read_json(p: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).expect("read json")).expect("parse json")
}

fn f32s(v: &Value) -> Vec<f32> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect()
}

fn matrix(v: &Value) -> Vec<Vec<f32>> {
    v.as_array().unwrap().iter().map(f32s).collect()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().unwrap().iter().map(|x| x.as_str().unwrap().to_string()).collect()
}

/// `(ids, distances)` per query from Chroma's `query` result shape.
fn chroma_results(v: &Value) -> Vec<(Vec<String>, Vec<f32>)> {
    let ids = v["ids"].as_array().unwrap();
    let ds = v["distances"].as_array().unwrap();
    ids.iter().zip(ds).map(|(i, d)| (strings(i), f32s(d))).collect()
}

fn grp_of(id: &str) -> u64 {
    id.trim_start_matches('r').parse::<u64>().unwrap() % 5
}

/// Our answers for all queries, ids mapped through the pickle.
fn our_results(
    index: &Index,
    meta: &SegmentMetadata,
    queries: &[Vec<f32>],
    k: usize,
    grp2_only: bool,
) -> Vec<(Vec<String>, Vec<f32>)> {
    let filter = |label: u64| meta.label_to_id.get(&label).is_some_and(|id| grp_of(id) == 2);
    queries
        .iter()
        .map(|q| {
            let f: Option<&(dyn Fn(u64) -> bool + Sync)> = if grp2_only { Some(&filter) } else { None };
            let res = index.search(q, k, f).unwrap();
            let ids = res.iter().map(|(l, _)| meta.label_to_id[l].clone()).collect();
            let ds = res.iter().map(|(_, d)| *d).collect();
            (ids, ds)
        })
        .collect()
}

/// Unfiltered answers must be the same neighbours with the same distances, except where
/// Chroma's graph search missed a neighbour: these collections are small enough that we scan
/// them exactly, so at every rank ours must be at least as close, and at least 98% of ranks
/// must hold the identical id.
fn assert_same(what: &str, ours: &[(Vec<String>, Vec<f32>)], theirs: &[(Vec<String>, Vec<f32>)]) {
    assert_eq!(ours.len(), theirs.len(), "{what}: number of queries");
    let mut same_rank = 0;
    let mut total = 0;
    for (qi, ((oi, od), (ti, td))) in ours.iter().zip(theirs).enumerate() {
        assert_eq!(oi.len(), ti.len(), "{what} q{qi}: result count ours {oi:?} chroma {ti:?}");
        for r in 0..oi.len() {
            total += 1;
            assert!(
                od[r] <= td[r] + TOL,
                "{what} q{qi} rank {r}: distance ours {} ({}) farther than chroma {} ({})",
                od[r],
                oi[r],
                td[r],
                ti[r]
            );
            if oi[r] == ti[r] {
                same_rank += 1;
            }
        }
    }
    println!("{what}: {same_rank}/{total} ranks with identical ids, none farther than chroma's");
    assert!(same_rank * 100 >= total * 98, "{what}: only {same_rank}/{total} identical ids");
}

/// Filtered answers: ours are exact (few labels pass, so they are scanned),
/// Chroma's come from a filtered graph search. Ours must be at least as close
/// at every rank, and nearly always identical.
fn assert_filtered(what: &str, ours: &[(Vec<String>, Vec<f32>)], theirs: &[(Vec<String>, Vec<f32>)]) {
    let mut overlap = 0;
    let mut total = 0;
    for (qi, ((oi, od), (ti, td))) in ours.iter().zip(theirs).enumerate() {
        assert_eq!(oi.len(), ti.len(), "{what} q{qi}");
        for r in 0..oi.len() {
            assert!(od[r] <= td[r] + TOL, "{what} q{qi} rank {r}: ours {} > chroma {}", od[r], td[r]);
            assert_eq!(grp_of(&oi[r]), 2, "{what}: filter violated");
        }
        overlap += oi.iter().filter(|i| ti.contains(i)).count();
        total += oi.len();
    }
    println!("{what}: {overlap}/{total} ids shared with chroma's filtered search");
    assert!(overlap * 100 >= total * 95, "{what}: overlap {overlap}/{total}");
}

fn round_trip(py: &Path, space_name: &str) {
    let space = Space::from_name(space_name).unwrap();
    let work = tempfile::tempdir().unwrap();
    let work_s = work.path().to_str().unwrap();
    run_py(py, &["build", work_s, space_name]);
    let build = read_json(&work.path().join("build.json"));
    let seg = PathBuf::from(build["segment_dir"].as_str().unwrap());
    let dim = build["dim"].as_u64().unwrap() as usize;
    let k = build["k"].as_u64().unwrap() as usize;
    let queries = matrix(&build["queries"]);

    // (a) Chroma-written segment -> our loader.
    let meta = SegmentMetadata::read(&seg.join(METADATA_FILE)).unwrap();
    assert_eq!(meta.dimensionality, None, "chroma 1.x leaves dimensionality unset");
    let chroma_index = Index::load(&seg, dim, space, 100).unwrap();
    let live = build["count"].as_u64().unwrap() as usize;
    assert_eq!(chroma_index.len(), live);
    assert_eq!(meta.id_to_label.len(), live);
    for id in strings(&build["deleted"]) {
        assert!(!meta.id_to_label.contains_key(&id));
    }
    let ours = our_results(&chroma_index, &meta, &queries, k, false);
    assert_same(&format!("{space_name} (a) plain"), &ours, &chroma_results(&build["results"]["plain"]));
    let chroma_files_filtered = our_results(&chroma_index, &meta, &queries, k, true);
    assert_filtered(
        &format!("{space_name} (a) where grp=2"),
        &chroma_files_filtered,
        &chroma_results(&build["results"]["filtered_grp2"]),
    );
    // Stored vectors: normalised for cosine, as given otherwise.
    let ids = strings(&build["ids"]);
    let embs = matrix(&build["embeddings"]);
    let by_id: HashMap<&str, &Vec<f32>> = ids.iter().map(String::as_str).zip(&embs).collect();
    let (id0, label0) = meta.id_to_label.iter().next().unwrap();
    let original = chroma_index.get_original_vector(*label0).unwrap();
    for (a, b) in original.iter().zip(by_id[id0.as_str()].iter()) {
        assert!((a - b).abs() < 1e-4, "get_original_vector");
    }

    // (b) Our index over the same labels and vectors replaces Chroma's files.
    let mut mine = Index::new(dim, space, Params::default());
    let mut items: Vec<(u64, Vec<f32>)> =
        meta.id_to_label.iter().map(|(id, l)| (*l, by_id[id.as_str()].clone())).collect();
    items.sort_by_key(|x| x.0);
    mine.insert_batch(&items).unwrap();
    let ours_b = our_results(&mine, &meta, &queries, k, false);
    for f in ["header.bin", "data_level0.bin", "length.bin", "link_lists.bin", METADATA_FILE] {
        std::fs::remove_file(seg.join(f)).unwrap();
    }
    mine.save(&seg).unwrap();
    meta.write(&seg.join(METADATA_FILE)).unwrap();
    run_py(py, &["query", work_s]);
    let q = read_json(&work.path().join("query.json"));
    assert_eq!(q["count_before"].as_u64().unwrap() as usize, live);
    assert_same(&format!("{space_name} (b) chroma on our files"), &ours_b, &chroma_results(&q["before"]["plain"]));
    let mine_filtered = our_results(&mine, &meta, &queries, k, true);
    assert_filtered(
        &format!("{space_name} (b) where grp=2"),
        &mine_filtered,
        &chroma_results(&q["before"]["filtered_grp2"]),
    );

    // Chroma kept writing into our files; load what it wrote and compare.
    let meta2 = SegmentMetadata::read(&seg.join(METADATA_FILE)).unwrap();
    let after = Index::load(&seg, dim, space, 100).unwrap();
    assert_eq!(after.len(), q["count_after"].as_u64().unwrap() as usize);
    assert_eq!(meta2.total_elements_added, meta.total_elements_added + 1000);
    let ours_after = our_results(&after, &meta2, &queries, k, false);
    assert_same(&format!("{space_name} (b) after chroma appended"), &ours_after, &chroma_results(&q["after"]["plain"]));
}

#[test]
fn chroma_round_trip_all_spaces() {
    let Some(py) = python() else { return };
    for space in ["cosine", "l2", "ip"] {
        round_trip(&py, space);
    }
}
