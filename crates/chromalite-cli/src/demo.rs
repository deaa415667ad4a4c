//! `chromalite demo`: a persistent store built from a small real corpus, queried with and without
//! filters.
//!
//! The corpus ships inside the binary: 2,000 Debian package descriptions and 20 held-out package
//! summaries, all embedded with all-MiniLM-L6-v2 (Chroma's default model), taken from the
//! `debian-minilm` benchmark set. Run it twice: the second run reopens the existing directory.

use std::path::Path;
use std::time::Instant;

use chromalite::core::RecordBatch;
use chromalite::{Client, Collection, Include, QueryResult};
use serde_json::{json, Value};

use crate::show::snippet;
use crate::{CliError, CliResult};

const CORPUS_VECTORS: &[u8] = include_bytes!("../../../fixtures/demo/corpus.f32");
const CORPUS_ROWS: &str = include_str!("../../../fixtures/demo/corpus.jsonl");
const QUERY_VECTORS: &[u8] = include_bytes!("../../../fixtures/demo/queries.f32");
const QUERY_ROWS: &str = include_str!("../../../fixtures/demo/queries.jsonl");
const DIM: usize = 384;
const COLLECTION: &str = "debian-packages";

fn vectors(bytes: &[u8]) -> Vec<Vec<f32>> {
    bytes
        .chunks_exact(DIM * 4)
        .map(|row| row.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
        .collect()
}

fn rows(text: &str) -> CliResult<Vec<Value>> {
    text.lines()
        .map(|l| serde_json::from_str(l).map_err(|e| CliError::Usage(format!("bundled corpus is damaged: {e}"))))
        .collect()
}

/// Runs the demo in `dir` (default `./chromalite-data`).
pub fn run(dir: Option<&Path>) -> CliResult {
    let dir = dir.unwrap_or(Path::new("chromalite-data"));
    let t = Instant::now();
    let client = Client::persistent(dir)?;
    let col = client.create_collection(COLLECTION).space(chromalite::Space::Cosine).get_or_create().run()?;
    outln!("opened {} in {:.1} ms ({} records present)", dir.display(), ms(t), col.count()?);
    if col.count()? < 2000 {
        load(&col)?;
    }
    let queries = vectors(QUERY_VECTORS);
    let texts = rows(QUERY_ROWS)?;
    outln!("\n== semantic search (top 3 of {} records) ==", col.count()?);
    for (q, text) in queries.iter().zip(&texts).take(5) {
        let t = Instant::now();
        let r = col
            .query(vec![q.clone()])
            .n_results(3)
            .include([Include::Metadatas, Include::Documents, Include::Distances])
            .run()?;
        print_hits(&format!("{:?}", text["text"].as_str().unwrap_or("")), &r, ms(t))?;
    }
    outln!("\n== filtered by metadata ==");
    let t = Instant::now();
    let r = col
        .query(vec![queries[0].clone()])
        .n_results(3)
        .where_(json!({"section": {"$in": ["libs", "devel"]}}))
        .run()?;
    print_hits(&format!("{:?} where section in [libs, devel]", texts[0]["text"].as_str().unwrap_or("")), &r, ms(t))?;
    let t = Instant::now();
    let r = col.query(vec![queries[1].clone()]).n_results(3).where_(json!({"installed_size": {"$lt": 500}})).run()?;
    print_hits(&format!("{:?} where installed_size < 500 KiB", texts[1]["text"].as_str().unwrap_or("")), &r, ms(t))?;
    outln!("\n== filtered by document text ==");
    let t = Instant::now();
    let r = col.query(vec![queries[2].clone()]).n_results(3).where_document(json!({"$contains": "library"})).run()?;
    print_hits(
        &format!("{:?} where document contains \"library\"", texts[2]["text"].as_str().unwrap_or("")),
        &r,
        ms(t),
    )?;
    let t = Instant::now();
    let games = col.get().where_(json!({"section": "games"})).limit(5).include([Include::Metadatas]).run()?;
    outln!("\nget where section = games (first 5) in {:.1} ms: {}", ms(t), games.ids.join(", "));
    outln!("\nthe store stays in {}; run `chromalite demo` again to reopen it, or e.g.", dir.display());
    outln!("  chromalite --path {} count {COLLECTION}", dir.display());
    Ok(())
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

fn load(col: &Collection) -> CliResult {
    let t = Instant::now();
    let vecs = vectors(CORPUS_VECTORS);
    let rows = rows(CORPUS_ROWS)?;
    for (chunk_v, chunk_r) in vecs.chunks(500).zip(rows.chunks(500)) {
        let mut batch = RecordBatch::new(chunk_r.iter().map(|r| r["id"].as_str().unwrap_or_default().to_owned()));
        batch.embeddings = Some(chunk_v.to_vec());
        batch.documents = Some(chunk_r.iter().map(|r| r["document"].as_str().map(str::to_owned)).collect());
        let metas = Value::Array(chunk_r.iter().map(|r| r["metadata"].clone()).collect());
        batch.metadatas = Some(chromalite::core::wire::metadatas(&metas)?);
        col.upsert_batch(&batch)?;
    }
    outln!("loaded {} records with documents and metadata in {:.0} ms", vecs.len(), ms(t));
    Ok(())
}

fn print_hits(title: &str, r: &QueryResult, elapsed_ms: f64) -> CliResult {
    outln!("\n{title}  ({elapsed_ms:.1} ms)");
    for (i, id) in r.ids[0].iter().enumerate() {
        let meta = r.metadatas.as_ref().and_then(|m| m[0][i].as_ref());
        let package = meta
            .and_then(|m| m.get("package"))
            .map_or_else(|| id.clone(), |v| v.to_json().as_str().unwrap_or_default().to_owned());
        let section = meta
            .and_then(|m| m.get("section"))
            .map(|v| v.to_json().as_str().unwrap_or_default().to_owned())
            .unwrap_or_default();
        let dist = r.distances.as_ref().map_or(0.0, |d| d[0][i]);
        let doc = r.documents.as_ref().and_then(|d| d[0][i].as_deref());
        outln!("  {}. {package:<28} [{section}] d={dist:.3}  {}", i + 1, snippet(doc, 60));
    }
    Ok(())
}
