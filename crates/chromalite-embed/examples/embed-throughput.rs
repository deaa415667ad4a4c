//! Throughput and peak memory of [`MiniLm`] on typical 20-60 token inputs.
//!
//! ```text
//! cargo run --release -p chromalite-embed --example embed-throughput -- \
//!     [--file texts.jsonl] [--sentences 2000] [--batch 32] [--threads N]
//! ```
//! `--file` takes JSONL with a `document` or `text` field per line (e.g. the Debian package
//! descriptions of the benchmark data); without it, sentences are generated from a word list.
//! Only inputs of 20-60 tokens are kept. Prints sentences/s, tokens/s and the peak RSS (`VmHWM`).

use std::time::Instant;

use chromalite_core::EmbeddingFunction;
use chromalite_embed::MiniLm;

const WORDS: &[&str] = &[
    "the",
    "database",
    "stores",
    "vectors",
    "for",
    "semantic",
    "search",
    "and",
    "a",
    "small",
    "library",
    "parses",
    "JSON",
    "files",
    "quickly",
    "while",
    "another",
    "process",
    "holds",
    "write",
    "lock",
    "on",
    "index",
    "segment",
    "after",
    "restart",
    "recovery",
    "takes",
    "seconds",
    "users",
    "query",
    "documents",
    "with",
    "metadata",
    "filters",
    "package",
    "provides",
    "tools",
    "to",
    "convert",
    "images",
    "between",
    "formats",
    "including",
    "PNG",
    "JPEG",
    "network",
    "server",
    "client",
    "protocol",
    "implementation",
    "written",
    "in",
    "Rust",
    "Python",
    "fast",
    "safe",
    "memory",
    "efficient",
    "game",
    "strategy",
    "ancient",
    "warfare",
    "open-source",
    "cross-platform",
    "graphics",
];

fn generated(n: usize) -> Vec<String> {
    // A fixed linear congruential generator: the same corpus on every run, no dependency.
    let mut state: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = move || {
        state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) as usize
    };
    (0..n)
        .map(|_| {
            let len = 16 + next() % 38;
            let mut s: Vec<&str> = (0..len).map(|_| WORDS[next() % WORDS.len()]).collect();
            s.push(".");
            s.join(" ")
        })
        .collect()
}

fn from_file(path: &str) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v.get("document").or_else(|| v.get("text")).and_then(|d| d.as_str()).map(str::to_owned))
        .collect()
}

fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: f64 = status.lines().find(|l| l.starts_with("VmHWM:"))?.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// CPU seconds this process has used (user + system), from `/proc/self/stat` (ticks of 1/100 s):
/// unlike wall time it does not depend on what else runs on the machine.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<&str> = stat.rsplit(')').next()?.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (mut file, mut n, mut batch, mut threads) = (None, 2000usize, 32usize, None);
    while let Some(a) = args.next() {
        let mut val = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--file" => file = Some(val()?),
            "--sentences" => n = val()?.parse()?,
            "--batch" => batch = val()?.parse()?,
            "--threads" => threads = Some(val()?.parse()?),
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let started = Instant::now();
    let mut model = MiniLm::load(None)?.with_batch_size(batch);
    if let Some(t) = threads {
        model = model.with_threads(t);
    }
    let load = started.elapsed();
    let rss_loaded = peak_rss_mib();

    let pool = match &file {
        Some(f) => from_file(f),
        None => generated(n * 2),
    };
    let mut texts = Vec::with_capacity(n);
    let mut tokens = 0;
    for t in pool {
        let len = model.tokenize(&t)?.len();
        if (20..=60).contains(&len) {
            tokens += len;
            texts.push(t);
            if texts.len() == n {
                break;
            }
        }
    }
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    // One untimed batch warms caches and the allocator.
    model.embed(&refs[..batch.min(refs.len())])?;
    let (t0, cpu0) = (Instant::now(), cpu_seconds());
    let out = model.embed(&refs)?;
    let secs = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds().zip(cpu0).map(|(b, a)| b - a);
    assert_eq!(out.len(), refs.len());
    println!(
        "model {} loaded in {:.2}s (peak RSS {:.0} MiB)",
        model.dir().display(),
        load.as_secs_f64(),
        rss_loaded.unwrap_or(f64::NAN)
    );
    println!(
        "{} sentences ({:.1} tokens avg, 20-60) batch {batch}, {model:?}: {:.1} sentences/s, {:.0} tokens/s, {:.2}s",
        refs.len(),
        tokens as f64 / refs.len().max(1) as f64,
        refs.len() as f64 / secs,
        tokens as f64 / secs,
        secs
    );
    if let Some(cpu) = cpu {
        println!("{:.1} sentences per CPU-second ({cpu:.2} CPU-s; wall/CPU shows contention)", refs.len() as f64 / cpu);
    }
    println!("peak RSS {:.0} MiB", peak_rss_mib().unwrap_or(f64::NAN));
    Ok(())
}
