//! recall@10, queries/s and build time for chromalite-hnsw and hnsw_rs on the
//! debian-minilm set (cosine, M = 16, ef_construction = 100).
//!
//! Usage: hnsw-bench --data DIR [--limit N] [--skip-hnsw-rs] [--save DIR | --load DIR] [--repeat R]
//! (or set CHROMALITE_BENCH_DATA=DIR). `--repeat R` times each single-thread query loop R times and
//! keeps the fastest: on a shared machine the best of several runs is the figure least moved by
//! other processes. Single-thread QPS is measured in the thread's CPU time
//! (`CLOCK_THREAD_CPUTIME_ID`), so time spent descheduled while other jobs run does not count.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use chromalite_hnsw::{Index, Params, Space};
use hnsw_rs::prelude::{DistDot, Hnsw};
use rayon::prelude::*;

const DIM: usize = 384;
const K: usize = 10;
const EFS: [usize; 6] = [10, 20, 50, 100, 150, 200];

fn cpu_seconds(clock: libc::clockid_t) -> f64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec and the clock id is a constant the kernel knows.
    let rc = unsafe { libc::clock_gettime(clock, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime({clock})");
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// CPU time consumed by the calling thread, in seconds.
fn thread_cpu_seconds() -> f64 {
    cpu_seconds(libc::CLOCK_THREAD_CPUTIME_ID)
}

/// CPU time consumed by all threads of the process, in seconds.
fn process_cpu_seconds() -> f64 {
    cpu_seconds(libc::CLOCK_PROCESS_CPUTIME_ID)
}

fn read_f32(path: &Path) -> Vec<Vec<f32>> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    bytes
        .chunks_exact(4 * DIM)
        .map(|row| row.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
        .collect()
}

fn read_truth(path: &Path) -> Vec<Vec<u64>> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    bytes
        .chunks_exact(4 * 100)
        .map(|row| row.chunks_exact(4).map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as u64).collect())
        .collect()
}

fn recall(results: &[Vec<u64>], truth: &[Vec<u64>]) -> f64 {
    let mut hit = 0usize;
    for (r, t) in results.iter().zip(truth) {
        let t: HashSet<u64> = t[..K].iter().copied().collect();
        hit += r.iter().filter(|x| t.contains(x)).count();
    }
    hit as f64 / (results.len() * K) as f64
}

/// recall@10 counting a returned row as a hit when its exact distance is
/// not larger than that of the 10th true neighbour (ties at the cut-off).
fn recall_ties(results: &[Vec<u64>], truth: &[Vec<u64>], base: &[Vec<f32>], queries: &[Vec<f32>]) -> f64 {
    let d = |a: &[f32], b: &[f32]| 1.0 - a.iter().zip(b).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum::<f64>();
    let mut hit = 0usize;
    for ((r, t), q) in results.iter().zip(truth).zip(queries) {
        let cut = d(q, &base[t[K - 1] as usize]) + 1e-6;
        hit += r.iter().filter(|&&x| d(q, &base[x as usize]) <= cut).count();
    }
    hit as f64 / (results.len() * K) as f64
}

struct Row {
    lib: &'static str,
    ef: usize,
    recall: f64,
    recall_ties: f64,
    qps1: f64,
    qps_par: f64,
}

fn main() {
    let mut data: Option<PathBuf> = std::env::var_os("CHROMALITE_BENCH_DATA").map(PathBuf::from);
    let mut limit = usize::MAX;
    let mut skip_rs = false;
    let mut save: Option<PathBuf> = None;
    let mut load: Option<PathBuf> = None;
    let mut repeat = 1usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--data" => data = args.next().map(PathBuf::from),
            "--limit" => limit = args.next().and_then(|s| s.parse().ok()).expect("--limit N"),
            "--skip-hnsw-rs" => skip_rs = true,
            "--save" => save = args.next().map(PathBuf::from),
            "--load" => load = args.next().map(PathBuf::from),
            "--repeat" => repeat = args.next().and_then(|s| s.parse().ok()).expect("--repeat R"),
            _ => panic!("unknown argument {a}; usage: hnsw-bench --data DIR [--limit N] [--skip-hnsw-rs]"),
        }
    }
    let dir = data.expect("pass --data DIR (or CHROMALITE_BENCH_DATA) pointing at debian-minilm");
    let mut base = read_f32(&dir.join("base.f32"));
    base.truncate(limit);
    let queries = read_f32(&dir.join("queries.f32"));
    let truth = read_truth(&dir.join("truth.i32"));
    let n = base.len();
    let threads = rayon::current_num_threads();
    println!("debian-minilm: {n} x {DIM} base, {} queries, {threads} threads", queries.len());
    println!("chromalite-hnsw SIMD kernels (AVX2/AVX-512): {}", chromalite_hnsw::simd_kernels_active());
    if n < 59_413 {
        println!("note: --limit in use, recall is against the full-set truth and will be low");
    }
    let mut rows = Vec::new();

    // chromalite-hnsw
    let items: Vec<(u64, Vec<f32>)> = base.iter().enumerate().map(|(i, v)| (i as u64, v.clone())).collect();
    let mut idx =
        Index::new(DIM, Space::Cosine, Params { m: 16, ef_construction: 100, ef_search: 10, max_elements: n, seed: 0 });
    let t = Instant::now();
    let cpu = process_cpu_seconds();
    if let Some(dir) = &load {
        // Query-only runs: reuse a saved build (build time is then load time).
        idx = Index::load(dir, DIM, Space::Cosine, 10).unwrap();
    } else {
        idx.insert_batch(&items).unwrap();
    }
    let build_ours = t.elapsed().as_secs_f64();
    let build_ours_cpu = process_cpu_seconds() - cpu;
    drop(items);
    if let Some(dir) = &save {
        idx.save(dir).unwrap();
    }
    println!(
        "chromalite-hnsw build: {build_ours:.2} s ({:.0} inserts/s), {build_ours_cpu:.2} s CPU (all threads)",
        n as f64 / build_ours
    );
    for ef in EFS {
        idx.set_ef(ef);
        let mut res1 = Vec::new();
        let mut qps1 = 0.0f64;
        for _ in 0..repeat {
            let t = thread_cpu_seconds();
            res1 = queries.iter().map(|q| idx.search(q, K, None).unwrap().into_iter().map(|x| x.0).collect()).collect();
            qps1 = qps1.max(queries.len() as f64 / (thread_cpu_seconds() - t));
        }
        let t = Instant::now();
        let resp = idx.search_batch(&queries, K, None).unwrap();
        let qps_par = queries.len() as f64 / t.elapsed().as_secs_f64();
        let resp: Vec<Vec<u64>> = resp.into_iter().map(|r| r.into_iter().map(|x| x.0).collect()).collect();
        assert_eq!(res1, resp, "batch and single search agree");
        rows.push(Row {
            lib: "chromalite-hnsw",
            ef,
            recall: recall(&res1, &truth),
            recall_ties: recall_ties(&res1, &truth, &base, &queries),
            qps1,
            qps_par,
        });
    }

    // hnsw_rs
    let mut build_rs = f64::NAN;
    if !skip_rs {
        let hnsw: Hnsw<f32, DistDot> = Hnsw::new(16, n, 16, 100, DistDot {});
        let with_id: Vec<(&Vec<f32>, usize)> = base.iter().enumerate().map(|(i, v)| (v, i)).collect();
        let t = Instant::now();
        let cpu = process_cpu_seconds();
        hnsw.parallel_insert(&with_id);
        build_rs = t.elapsed().as_secs_f64();
        let cpu = process_cpu_seconds() - cpu;
        println!("hnsw_rs build: {build_rs:.2} s ({:.0} inserts/s), {cpu:.2} s CPU (all threads)", n as f64 / build_rs);
        let mut hnsw = hnsw;
        hnsw.set_searching_mode(true);
        for ef in EFS {
            let mut res1: Vec<Vec<u64>> = Vec::new();
            let mut qps1 = 0.0f64;
            for _ in 0..repeat {
                let t = thread_cpu_seconds();
                res1 = queries
                    .iter()
                    .map(|q| hnsw.search(q, K, ef).into_iter().map(|x| x.d_id as u64).collect())
                    .collect();
                qps1 = qps1.max(queries.len() as f64 / (thread_cpu_seconds() - t));
            }
            let t = Instant::now();
            let resp: Vec<Vec<u64>> = queries
                .par_iter()
                .map(|q| hnsw.search(q, K, ef).into_iter().map(|x| x.d_id as u64).collect())
                .collect();
            let qps_par = queries.len() as f64 / t.elapsed().as_secs_f64();
            let _ = resp;
            rows.push(Row {
                lib: "hnsw_rs",
                ef,
                recall: recall(&res1, &truth),
                recall_ties: recall_ties(&res1, &truth, &base, &queries),
                qps1,
                qps_par,
            });
        }
    }

    println!();
    println!("| library | build s | ef | recall@10 | recall@10 (ties) | QPS 1 thread (CPU time) | QPS {threads} threads |");
    println!("|---|---|---|---|---|---|---|");
    for r in &rows {
        let build = if r.lib == "hnsw_rs" { build_rs } else { build_ours };
        println!(
            "| {} | {build:.2} | {} | {:.4} | {:.4} | {:.0} | {:.0} |",
            r.lib, r.ef, r.recall, r.recall_ties, r.qps1, r.qps_par
        );
    }
}
