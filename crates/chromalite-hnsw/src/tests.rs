use super::*;
use std::collections::HashSet;

pub(crate) struct Lcg(u64);
impl Lcg {
    pub(crate) fn next_f32(&mut self) -> f32 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
    pub(crate) fn vec(&mut self, dim: usize) -> Vec<f32> {
        (0..dim).map(|_| self.next_f32()).collect()
    }
}

fn exact(data: &[(u64, Vec<f32>)], q: &[f32], k: usize, space: Space) -> Vec<u64> {
    let prep = |v: &[f32]| -> Vec<f32> {
        if space == Space::Cosine {
            let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            v.iter().map(|x| x / n).collect()
        } else {
            v.to_vec()
        }
    };
    let q = prep(q);
    let mut d: Vec<(f32, u64)> = data
        .iter()
        .map(|(l, v)| {
            let v = prep(v);
            let dist = match space {
                Space::L2 => reference::l2(&q, &v),
                _ => 1.0 - reference::dot(&q, &v),
            };
            (dist, *l)
        })
        .collect();
    d.sort_by(|a, b| a.0.total_cmp(&b.0));
    d.into_iter().take(k).map(|x| x.1).collect()
}

fn dataset(n: usize, dim: usize, seed: u64) -> Vec<(u64, Vec<f32>)> {
    let mut r = Lcg(seed);
    (0..n).map(|i| (i as u64 + 1, r.vec(dim))).collect()
}

#[test]
fn index_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Index>();
}

#[test]
fn empty_index_searches_empty() {
    let idx = Index::new(4, Space::L2, Params::default());
    assert!(idx.search(&[0.0; 4], 5, None).unwrap().is_empty());
    assert!(idx.is_empty());
    assert_eq!(idx.capacity(), 100);
}

#[test]
fn dimension_is_checked() {
    let mut idx = Index::new(4, Space::L2, Params::default());
    let e = idx.insert(1, &[1.0; 3]).unwrap_err();
    assert_eq!(e.kind(), "DimensionMismatch");
    assert_eq!(idx.search(&[1.0; 5], 1, None).unwrap_err().kind(), "DimensionMismatch");
    assert_eq!(idx.insert_batch(&[(1, vec![0.0; 4]), (2, vec![0.0; 2])]).unwrap_err().kind(), "DimensionMismatch");
    assert_eq!(idx.len_with_deleted(), 0, "a failing batch applies nothing");
}

#[test]
fn small_index_is_exact_in_all_spaces() {
    for space in [Space::L2, Space::InnerProduct, Space::Cosine] {
        let data = dataset(300, 8, 3);
        let mut idx = Index::new(8, space, Params::default());
        for (l, v) in &data {
            idx.insert(*l, v).unwrap();
        }
        let mut r = Lcg(99);
        for _ in 0..20 {
            let q = r.vec(8);
            let got: Vec<u64> = idx.search(&q, 5, None).unwrap().iter().map(|x| x.0).collect();
            assert_eq!(got, exact(&data, &q, 5, space), "{space:?}");
        }
    }
}

#[test]
fn distances_follow_chroma_definitions() {
    let mut idx = Index::new(2, Space::L2, Params::default());
    idx.insert(7, &[3.0, 4.0]).unwrap();
    let r = idx.search(&[0.0, 0.0], 1, None).unwrap();
    assert_eq!(r, vec![(7, 25.0)]);
    let mut idx = Index::new(2, Space::InnerProduct, Params::default());
    idx.insert(7, &[3.0, 4.0]).unwrap();
    let r = idx.search(&[1.0, 1.0], 1, None).unwrap();
    assert_eq!(r, vec![(7, 1.0 - 7.0)]);
    let mut idx = Index::new(2, Space::Cosine, Params::default());
    idx.insert(7, &[3.0, 4.0]).unwrap();
    let r = idx.search(&[10.0, 0.0], 1, None).unwrap();
    assert!((r[0].1 - 0.4).abs() < 1e-6);
    let stored = idx.get_vector(7).unwrap();
    assert!((stored[0] - 0.6).abs() < 1e-6);
    let orig = idx.get_original_vector(7).unwrap();
    assert!((orig[1] - 4.0).abs() < 1e-5);
}

#[test]
fn recall_at_10_on_5000_random_points() {
    let dim = 32;
    let data = dataset(5_000, dim, 11);
    let mut idx = Index::new(dim, Space::L2, Params::default());
    idx.insert_batch(&data).unwrap();
    assert_eq!(idx.len(), 5_000);
    idx.set_ef(100);
    let mut r = Lcg(1234);
    let queries: Vec<Vec<f32>> = (0..100).map(|_| r.vec(dim)).collect();
    let results = idx.search_batch(&queries, 10, None).unwrap();
    let mut hit = 0;
    for (q, res) in queries.iter().zip(&results) {
        let truth: HashSet<u64> = exact(&data, q, 10, Space::L2).into_iter().collect();
        hit += res.iter().filter(|x| truth.contains(&x.0)).count();
        assert!(res.windows(2).all(|w| w[0].1 <= w[1].1), "ascending");
    }
    let recall = hit as f64 / 1000.0;
    assert!(recall >= 0.98, "recall@10 = {recall}");
}

#[test]
fn serial_and_parallel_builds_both_work() {
    let data = dataset(2_000, 16, 5);
    let mut a = Index::new(16, Space::Cosine, Params::default());
    for (l, v) in &data {
        a.insert(*l, v).unwrap();
    }
    let mut b = Index::new(16, Space::Cosine, Params::default());
    for chunk in data.chunks(500) {
        b.insert_batch(chunk).unwrap();
    }
    b.check_links("test", 0).unwrap();
    a.check_links("test", 0).unwrap();
    let mut r = Lcg(8);
    for _ in 0..20 {
        let q = r.vec(16);
        let truth = exact(&data, &q, 1, Space::Cosine);
        assert_eq!(a.search(&q, 1, None).unwrap()[0].0, truth[0]);
        assert_eq!(b.search(&q, 1, None).unwrap()[0].0, truth[0]);
    }
}

#[test]
fn delete_update_and_undelete() {
    let data = dataset(500, 8, 21);
    let mut idx = Index::new(8, Space::L2, Params::default());
    idx.insert_batch(&data).unwrap();
    let target = data[10].1.clone();
    assert_eq!(idx.search(&target, 1, None).unwrap()[0].0, 11);
    assert!(idx.mark_deleted(11).unwrap());
    assert!(!idx.mark_deleted(11).unwrap(), "already deleted");
    assert!(!idx.mark_deleted(99_999).unwrap(), "unknown");
    assert!(!idx.contains(11));
    assert!(idx.is_marked_deleted(11));
    assert_eq!(idx.len(), 499);
    assert!(idx.get_vector(11).is_none());
    assert!(idx.search(&target, 50, None).unwrap().iter().all(|x| x.0 != 11));
    assert!(!idx.labels().any(|l| l == 11));
    // Re-inserting un-deletes and updates in place.
    let moved = vec![5.0; 8];
    idx.insert(11, &moved).unwrap();
    assert!(idx.contains(11));
    assert_eq!(idx.len(), 500);
    assert_eq!(idx.len_with_deleted(), 500);
    assert_eq!(idx.search(&moved, 1, None).unwrap()[0], (11, 0.0));
    // Update an existing live label through a batch, with a duplicate.
    idx.insert_batch(&[(12, vec![-5.0; 8]), (12, vec![-6.0; 8])]).unwrap();
    assert_eq!(idx.search(&[-6.0; 8], 1, None).unwrap()[0], (12, 0.0));
    idx.check_links("test", 0).unwrap();
}

#[test]
fn filtered_search_never_comes_back_short() {
    let data = dataset(3_000, 8, 31);
    let mut idx = Index::new(8, Space::L2, Params::default());
    idx.insert_batch(&data).unwrap();
    let mut r = Lcg(77);
    // Selective: 7 allowed labels, k = 10 -> exactly 7 results, exact order.
    let allowed: HashSet<u64> = [5u64, 17, 300, 1200, 2999, 3000, 41].into_iter().collect();
    let f = |l: u64| allowed.contains(&l);
    let q = r.vec(8);
    let res = idx.search(&q, 10, Some(&f)).unwrap();
    assert_eq!(res.len(), 7);
    let sub: Vec<_> = data.iter().filter(|(l, _)| allowed.contains(l)).cloned().collect();
    assert_eq!(res.iter().map(|x| x.0).collect::<Vec<_>>(), exact(&sub, &q, 10, Space::L2));
    // Broad filter (half the labels): graph path, still k results, all allowed.
    let even = |l: u64| l.is_multiple_of(2);
    for _ in 0..10 {
        let q = r.vec(8);
        let res = idx.search(&q, 10, Some(&even)).unwrap();
        assert_eq!(res.len(), 10);
        assert!(res.iter().all(|x| x.0.is_multiple_of(2)));
    }
    // Nothing allowed.
    let none = |_: u64| false;
    assert!(idx.search(&q, 10, Some(&none)).unwrap().is_empty());
    // Deleted labels never appear even if the filter allows them.
    idx.mark_deleted(5).unwrap();
    let res = idx.search(&q, 10, Some(&f)).unwrap();
    assert_eq!(res.len(), 6);
    assert!(res.iter().all(|x| x.0 != 5));
}

#[test]
fn heavy_deletion_still_returns_all_live() {
    let data = dataset(400, 8, 41);
    let mut idx = Index::new(8, Space::L2, Params::default());
    idx.insert_batch(&data).unwrap();
    for (l, _) in data.iter().take(390) {
        idx.mark_deleted(*l).unwrap();
    }
    let res = idx.search(&[0.0; 8], 20, None).unwrap();
    assert_eq!(res.len(), 10);
    let mut got: Vec<u64> = res.iter().map(|x| x.0).collect();
    got.sort_unstable();
    assert_eq!(got, (391..=400).collect::<Vec<u64>>());
}

#[test]
fn resize_rules() {
    let mut idx = Index::new(2, Space::L2, Params { max_elements: 4, ..Params::default() });
    for i in 0..10 {
        idx.insert(i, &[i as f32, 0.0]).unwrap();
    }
    assert_eq!(idx.capacity(), 16, "grows to the next power of two");
    assert_eq!(idx.resize(5).unwrap_err().kind(), "InvalidArgument");
    idx.resize(1000).unwrap();
    assert_eq!(idx.capacity(), 1000);
}

#[test]
fn save_load_round_trip_is_identical() {
    let dim = 12;
    let data = dataset(1_500, dim, 51);
    for space in [Space::L2, Space::InnerProduct, Space::Cosine] {
        let mut idx = Index::new(dim, space, Params::default());
        idx.insert_batch(&data).unwrap();
        idx.mark_deleted(3).unwrap();
        let dir = tempfile::tempdir().unwrap();
        idx.save(dir.path()).unwrap();
        let loaded = Index::load(dir.path(), dim, space, 100).unwrap();
        assert_eq!(loaded.len(), idx.len());
        assert_eq!(loaded.capacity(), idx.capacity());
        assert!(!loaded.contains(3) && loaded.is_marked_deleted(3));
        assert_eq!(loaded.header(), idx.header());
        let mut r = Lcg(3);
        for _ in 0..20 {
            let q = r.vec(dim);
            assert_eq!(idx.search(&q, 10, None).unwrap(), loaded.search(&q, 10, None).unwrap());
        }
        // Saving the loaded index reproduces the same bytes.
        let dir2 = tempfile::tempdir().unwrap();
        loaded.save(dir2.path()).unwrap();
        for f in [HEADER_FILE, DATA_LEVEL0_FILE, LENGTH_FILE, LINK_LISTS_FILE] {
            assert_eq!(std::fs::read(dir.path().join(f)).unwrap(), std::fs::read(dir2.path().join(f)).unwrap(), "{f}");
        }
        // No temp files left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 4);
        // The wrong dimension is reported as such.
        assert_eq!(Index::load(dir.path(), dim + 1, space, 100).unwrap_err().kind(), "DimensionMismatch");
    }
}

#[test]
fn empty_index_round_trips() {
    let idx = Index::new(3, Space::L2, Params::default());
    let dir = tempfile::tempdir().unwrap();
    idx.save(dir.path()).unwrap();
    let mut loaded = Index::load(dir.path(), 3, Space::L2, 10).unwrap();
    assert!(loaded.is_empty());
    loaded.insert(1, &[1.0, 2.0, 3.0]).unwrap();
    assert_eq!(loaded.search(&[1.0, 2.0, 3.0], 1, None).unwrap(), vec![(1, 0.0)]);
}

#[test]
fn missing_files_are_not_found() {
    let dir = tempfile::tempdir().unwrap();
    let e = Index::load(dir.path(), 3, Space::L2, 10).unwrap_err();
    assert_eq!(e.kind(), "NotFound");
}

#[test]
fn layout_matches_hnswlib_sizes() {
    let mut idx = Index::new(8, Space::Cosine, Params::default());
    idx.insert_batch(&dataset(1000, 8, 1)).unwrap();
    let h = idx.header();
    // Same numbers as a chromadb 1.5.9 segment of 8-d vectors after 1000 adds.
    assert_eq!(h.size_data_per_element, 172);
    assert_eq!(h.offset_data, 132);
    assert_eq!(h.label_offset, 164);
    assert_eq!(h.max_elements, 1024);
    assert_eq!((h.max_m, h.max_m0, h.m, h.ef_construction), (16, 32, 16, 100));
    assert!((h.mult - 0.360_673_760_222_240_85).abs() < 1e-15);
    assert_eq!(h.to_bytes().len(), HEADER_SIZE);
    assert_eq!(Header::parse(&h.to_bytes()).unwrap(), h);
}

/// The graph itself (not the exact fallback) must find every neighbour of a small set: a
/// Chroma process searching a segment we wrote relies on the graph alone.
#[test]
fn small_graph_search_is_exact_after_batch_build() {
    for (dim, space) in [(5, Space::Cosine), (8, Space::L2), (4, Space::InnerProduct)] {
        let data = dataset(300, dim, 21);
        let mut idx = Index::new(dim, space, Params::default());
        for chunk in data.chunks(100) {
            idx.insert_batch(chunk).unwrap();
        }
        let q = idx.ef();
        let mut misses = 0;
        for (_, v) in data.iter().take(100) {
            let query = if space == Space::Cosine { crate::distance::normalize(v).0 } else { v.clone() };
            let got: Vec<u64> = idx.search_graph(&query, 7, None).into_iter().map(|x| x.0).collect();
            let truth = exact(&data, v, 7, space);
            misses += truth.iter().filter(|t| !got.contains(t)).count();
        }
        assert_eq!(misses, 0, "{space:?} dim {dim}: graph search missed {misses} of 700 true neighbours (ef {q})");
    }
}

#[test]
fn small_graph_search_is_exact_after_serial_build() {
    for (dim, space) in [(5, Space::Cosine), (8, Space::L2), (4, Space::InnerProduct)] {
        let data = dataset(300, dim, 21);
        let mut idx = Index::new(dim, space, Params::default());
        for (l, v) in &data {
            idx.insert(*l, v).unwrap();
        }
        let mut misses = 0;
        for (_, v) in data.iter().take(100) {
            let query = if space == Space::Cosine { crate::distance::normalize(v).0 } else { v.clone() };
            let got: Vec<u64> = idx.search_graph(&query, 7, None).into_iter().map(|x| x.0).collect();
            let truth = exact(&data, v, 7, space);
            misses += truth.iter().filter(|t| !got.contains(t)).count();
        }
        assert_eq!(misses, 0, "{space:?} dim {dim}: serial graph search missed {misses} of 700");
    }
}

/// Past the serial prefix a batch is linked in parallel; the graph alone (no exact fallback, as
/// Chroma searches our segments) must still find at least 99% of the true neighbours.
#[test]
fn parallel_batches_keep_every_element_reachable() {
    let data = dataset(2_500, 16, 33);
    let mut idx = Index::new(16, Space::L2, Params::default());
    idx.insert_batch(&data).unwrap();
    let (mut misses, mut total) = (0, 0);
    for (_, v) in data.iter().skip(1_024).step_by(5).take(250) {
        let got: Vec<u64> = idx.search_graph(v, 10, None).into_iter().map(|x| x.0).collect();
        let truth = exact(&data, v, 10, Space::L2);
        misses += truth.iter().filter(|t| !got.contains(t)).count();
        total += truth.len();
    }
    assert!(misses * 100 <= total, "graph search missed {misses} of {total} true neighbours");
}

/// An element whose in-links were all pruned is invisible to a graph search (Chroma's has no
/// exact fallback); the reachability pass links it from a reachable neighbour again.
#[test]
fn orphaned_elements_are_linked_again() {
    let data = dataset(2_000, 8, 7);
    let mut idx = Index::new(8, Space::L2, Params::default());
    idx.insert_batch(&data).unwrap();
    let orphans: Vec<u32> = vec![100, 700, 1_500, 1_999];
    for &x in &orphans {
        idx.unlink_everywhere(x);
    }
    let found = |idx: &Index, x: u32| {
        let v = &data[x as usize].1;
        idx.search_graph(v, 1, None).first().is_some_and(|h| h.0 == data[x as usize].0)
    };
    for &x in &orphans {
        assert!(!found(&idx, x), "element {x} should be unreachable after unlinking");
    }
    idx.reconnect_unreachable();
    for &x in &orphans {
        assert!(found(&idx, x), "element {x} is still unreachable");
    }
    let misses = data.iter().filter(|(l, v)| idx.search_graph(v, 1, None).first().is_none_or(|h| h.0 != *l)).count();
    assert!(misses <= 2, "{misses} of 2000 elements not found by their own vector");
}
