//! The workload, run on one system inside one process.

use std::path::Path;
use std::time::Instant;

use chromalite::{Client, Collection, Include};
use chromalite_core::RecordBatch;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::dataset::Dataset;

/// The `ef_search` values of the recall/throughput curve (M=16, `ef_construction`=100 everywhere).
pub const EF_CURVE: &[usize] = &[10, 20, 50, 100, 200];
const BATCH: usize = 1000;
const REPEATS: usize = 20;

/// One point of the recall/throughput curve.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CurvePoint {
    pub ef: usize,
    pub recall_at_10: f64,
    pub qps: f64,
}

/// Everything measured for one system.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Measurements {
    pub system: String,
    pub records: usize,
    pub ingest_rps: f64,
    pub open_to_first_query_ms: Option<f64>,
    pub query_p50_ms: f64,
    pub query_p99_ms: f64,
    pub qps_1_thread: f64,
    pub qps_2_threads: f64,
    pub recall_at_10: f64,
    pub filtered_query_p50_ms: f64,
    pub get_where_p50_ms: f64,
    pub peak_rss_mb: Option<f64>,
    pub disk_mb: Option<f64>,
    pub curve: Vec<CurvePoint>,
}

/// Percentile of sorted latencies in milliseconds.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

/// Peak resident set of this process, from `/proc/self/status` (Linux only).
#[must_use]
pub fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Total size of the files under `dir`.
#[must_use]
pub fn disk_mb(dir: &Path) -> Option<f64> {
    fn walk(p: &Path) -> u64 {
        std::fs::read_dir(p).map_or(0, |rd| {
            rd.flatten()
                .map(|e| match e.file_type() {
                    Ok(t) if t.is_dir() => walk(&e.path()),
                    _ => e.metadata().map_or(0, |m| m.len()),
                })
                .sum()
        })
    }
    dir.exists().then(|| walk(dir) as f64 / (1024.0 * 1024.0))
}

/// Ingests `data` into a new cosine collection, with documents and metadata, in batches.
pub fn ingest(client: &Client, data: &Dataset) -> chromalite::Result<(Collection, f64)> {
    let col = client
        .create_collection("bench")
        .configuration(
            json!({"hnsw": {"space": "cosine", "ef_construction": 100, "max_neighbors": 16, "ef_search": 100}}),
        )
        .run()?;
    let t = Instant::now();
    for (vecs, rows) in data.base.chunks(BATCH).zip(data.rows.chunks(BATCH)) {
        let mut batch = RecordBatch::new(rows.iter().map(|r| r["id"].as_str().unwrap_or_default().to_owned()));
        batch.embeddings = Some(vecs.to_vec());
        batch.documents = Some(rows.iter().map(|r| r["document"].as_str().map(str::to_owned)).collect());
        batch.metadatas = Some(chromalite_core::wire::metadatas(&Value::Array(
            rows.iter().map(|r| r["metadata"].clone()).collect(),
        ))?);
        col.add_batch(&batch)?;
    }
    // Ingest ends when the data answers queries: a backend that indexes in the background is
    // charged for it here, not in the first query's latency.
    col.query(vec![data.base[0].clone()]).n_results(1).run()?;
    let rps = data.base.len() as f64 / t.elapsed().as_secs_f64().max(1e-9);
    Ok((col, rps))
}

fn recall(data: &Dataset, ids: &[Vec<String>]) -> f64 {
    let mut hit = 0usize;
    for (truth, got) in data.truth.iter().zip(ids) {
        hit += truth.iter().take(10).filter(|t| got.iter().any(|g| g[1..].parse::<u32>().ok() == Some(**t))).count();
    }
    hit as f64 / (10 * data.truth.len().max(1)) as f64
}

/// Runs every query alone, returning sorted latencies (ms) and the ids found.
fn timed_queries(col: &Collection, queries: &[Vec<f32>]) -> chromalite::Result<(Vec<f64>, Vec<Vec<String>>)> {
    let mut lat = Vec::with_capacity(queries.len());
    let mut ids = Vec::with_capacity(queries.len());
    for q in queries {
        let t = Instant::now();
        let r = col.query(vec![q.clone()]).n_results(10).include([Include::Distances]).run()?;
        lat.push(ms(t));
        ids.push(r.ids.into_iter().next().unwrap_or_default());
    }
    lat.sort_by(f64::total_cmp);
    Ok((lat, ids))
}

fn qps_threads(col: &Collection, queries: &[Vec<f32>], threads: usize) -> f64 {
    let t = Instant::now();
    std::thread::scope(|s| {
        for chunk in queries.chunks(queries.len().div_ceil(threads).max(1)) {
            s.spawn(move || {
                for q in chunk {
                    let _ = col.query(vec![q.clone()]).n_results(10).include([Include::Distances]).run();
                }
            });
        }
    });
    queries.len() as f64 / t.elapsed().as_secs_f64().max(1e-9)
}

fn repeat_p50(mut f: impl FnMut() -> chromalite::Result<()>) -> chromalite::Result<f64> {
    let mut lat = Vec::with_capacity(REPEATS);
    for _ in 0..REPEATS {
        let t = Instant::now();
        f()?;
        lat.push(ms(t));
    }
    lat.sort_by(f64::total_cmp);
    Ok(percentile(&lat, 0.5))
}

/// Measures queries, filters and the ef curve on an ingested collection.
pub fn measure(col: &Collection, data: &Dataset, system: &str, with_curve: bool) -> chromalite::Result<Measurements> {
    let mut m = Measurements { system: system.into(), records: data.base.len(), ..Default::default() };
    let (lat, ids) = timed_queries(col, &data.queries)?;
    m.query_p50_ms = percentile(&lat, 0.5);
    m.query_p99_ms = percentile(&lat, 0.99);
    m.qps_1_thread = data.queries.len() as f64 / (lat.iter().sum::<f64>() / 1e3).max(1e-9);
    m.recall_at_10 = recall(data, &ids);
    m.qps_2_threads = qps_threads(col, &data.queries, 2);
    let q0 = data.queries[0].clone();
    m.filtered_query_p50_ms =
        repeat_p50(|| col.query(vec![q0.clone()]).n_results(10).where_(json!({"section": "libs"})).run().map(|_| ()))?;
    m.get_where_p50_ms = repeat_p50(|| col.get().where_(json!({"section": "games"})).limit(100).run().map(|_| ()))?;
    if with_curve {
        for &ef in EF_CURVE {
            col.modify_configuration(&json!({"hnsw": {"ef_search": ef}}))?;
            let (lat, ids) = timed_queries(col, &data.queries)?;
            let qps = data.queries.len() as f64 / (lat.iter().sum::<f64>() / 1e3).max(1e-9);
            m.curve.push(CurvePoint { ef, recall_at_10: recall(data, &ids), qps });
        }
        col.modify_configuration(&json!({"hnsw": {"ef_search": 100}}))?;
    }
    Ok(m)
}

/// Opens a store and runs one query: the time a restarted application waits.
pub fn open_to_first_query(
    open: impl FnOnce() -> chromalite::Result<Client>,
    query: &[f32],
) -> chromalite::Result<f64> {
    let t = Instant::now();
    let client = open()?;
    let col = client.get_collection("bench")?;
    col.query(vec![query.to_vec()]).n_results(10).run()?;
    Ok(ms(t))
}
