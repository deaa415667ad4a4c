//! Quick measurement on the debian-minilm set (not a test):
//! `cargo run --release -p chromalite-sqlite --example debian_bench -- DATA_DIR STORE_DIR [N]`
//! Prints ingest records/s, open-to-first-query, query p50, recall@10, filtered query p50 and
//! `get` with a where filter.

use std::io::BufRead;
use std::time::Instant;

use chromalite_core::metadata::update_metadata_from_json;
use chromalite_core::{
    CreateCollection, DatabaseRef, GetRequest, QueryRequest, RecordBatch, Selection, VectorBackend, Where,
};
use chromalite_sqlite::SqliteBackend;

fn read_f32(path: &std::path::Path) -> Vec<f32> {
    let bytes = std::fs::read(path).expect("read vectors");
    bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let data = std::path::Path::new(&args[1]);
    let store_dir = std::path::Path::new(&args[2]);
    let dim = 384;
    let base = read_f32(&data.join("base.f32"));
    let n = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(base.len() / dim);
    let lines: Vec<serde_json::Value> = std::io::BufReader::new(std::fs::File::open(data.join("base.jsonl")).unwrap())
        .lines()
        .take(n)
        .map(|l| serde_json::from_str(&l.unwrap()).unwrap())
        .collect();
    let _ = std::fs::remove_dir_all(store_dir);
    let t = Instant::now();
    {
        let store = SqliteBackend::open(store_dir).unwrap();
        let cfg: serde_json::Value = serde_json::from_str(
            &std::env::var("BENCH_CFG").unwrap_or_else(|_| r#"{"hnsw": {"space": "cosine"}}"#.into()),
        )
        .unwrap();
        let col = store
            .create_collection(
                &DatabaseRef::default(),
                &CreateCollection { name: "debian".into(), configuration: Some(cfg), ..Default::default() },
            )
            .unwrap();
        for start in (0..n).step_by(1000) {
            let end = n.min(start + 1000);
            let mut b = RecordBatch::new(lines[start..end].iter().map(|l| l["id"].as_str().unwrap().to_owned()));
            b.embeddings = Some((start..end).map(|i| base[i * dim..(i + 1) * dim].to_vec()).collect());
            b.documents = Some(lines[start..end].iter().map(|l| l["document"].as_str().map(str::to_owned)).collect());
            b.metadatas = Some(
                lines[start..end].iter().map(|l| Some(update_metadata_from_json(&l["metadata"]).unwrap())).collect(),
            );
            store.add(&col, &b).unwrap();
        }
        let secs = t.elapsed().as_secs_f64();
        println!("ingest: {n} records in {secs:.1}s = {:.0} records/s", n as f64 / secs);
    }
    let queries = read_f32(&data.join("queries.f32"));
    let truth: Vec<i32> = std::fs::read(data.join("truth.i32"))
        .unwrap()
        .chunks_exact(4)
        .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let t = Instant::now();
    let store = SqliteBackend::open(store_dir).unwrap();
    let col = store.get_collection(&DatabaseRef::default(), "debian").unwrap();
    let q0 = QueryRequest {
        embeddings: vec![queries[..dim].to_vec()],
        n_results: 10,
        include: vec![],
        ..Default::default()
    };
    store.query(&col, &q0).unwrap();
    println!("open-to-first-query: {:.3}s", t.elapsed().as_secs_f64());
    let mut lat = Vec::new();
    let mut hit = 0usize;
    let mut total = 0usize;
    for qi in 0..200 {
        let q = QueryRequest {
            embeddings: vec![queries[qi * dim..(qi + 1) * dim].to_vec()],
            n_results: 10,
            ..Default::default()
        };
        let t = Instant::now();
        let r = store.query(&col, &q).unwrap();
        lat.push(t.elapsed().as_secs_f64());
        if n == base.len() / dim {
            let want: std::collections::HashSet<String> =
                truth[qi * 100..qi * 100 + 10].iter().map(|i| format!("d{i}")).collect();
            hit += r.ids[0].iter().filter(|id| want.contains(*id)).count();
            total += 10;
        }
    }
    lat.sort_by(f64::total_cmp);
    println!(
        "query p50: {:.2}ms  recall@10: {}",
        lat[lat.len() / 2] * 1e3,
        if total > 0 { format!("{:.3}", hit as f64 / total as f64) } else { "n/a (subset)".into() }
    );
    let w = Where::from_json(&serde_json::json!({"section": "games"})).unwrap();
    let mut flat = Vec::new();
    for qi in 0..100 {
        let q = QueryRequest {
            embeddings: vec![queries[qi * dim..(qi + 1) * dim].to_vec()],
            n_results: 10,
            selection: Selection { where_: Some(w.clone()), ..Default::default() },
            ..Default::default()
        };
        let t = Instant::now();
        store.query(&col, &q).unwrap();
        flat.push(t.elapsed().as_secs_f64());
    }
    flat.sort_by(f64::total_cmp);
    println!("filtered query p50: {:.2}ms", flat[flat.len() / 2] * 1e3);
    let t = Instant::now();
    let g = store
        .get(&col, &GetRequest { selection: Selection { where_: Some(w), ..Default::default() }, ..Default::default() })
        .unwrap();
    println!("get where section=games: {} records in {:.1}ms", g.ids.len(), t.elapsed().as_secs_f64() * 1e3);
}
