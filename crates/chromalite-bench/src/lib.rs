//! chromalite's benchmark harness.
//!
//! One invocation runs the same workload on every system — chromalite's persistent and in-memory
//! backends and Python chromadb's `PersistentClient` (driven by `benches/py/chroma_peer.py` through
//! the provisioned venv) — on the same data, with the same HNSW parameters (cosine, M=16,
//! `ef_construction`=100), and reports ratios computed from that one run. Each system runs in its own
//! process so peak RSS is its own, and open-to-first-query is the median of three fresh processes.
//!
//! The workload: ingest with documents and metadata (batches of 1,000), open-to-first-query, query
//! p50/p99 and QPS on 1 and 2 threads, recall@10 against exact truth, a filtered query, a `get`
//! with a `where` filter, peak RSS, disk size, and recall/QPS for `ef_search` in 10..200.

pub mod dataset;
pub mod report;
pub mod server;
pub mod workload;

use std::path::{Path, PathBuf};
use std::process::Command;

use chromalite::Client;

pub use dataset::Dataset;
pub use workload::Measurements;

/// A system to benchmark.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum System {
    /// chromalite's persistent backend (a Chroma directory).
    Persistent,
    /// chromalite's in-memory backend (exact search).
    Memory,
    /// chromalite's remote backend against a local `chroma run` (chromadb 1.5.9).
    Remote,
    /// chromalite's `LanceDB` backend (cargo feature `lance`), default options: on the
    /// debian-minilm set (below the index threshold) every query is an exact scan.
    Lance,
    /// The `LanceDB` backend with its vector index from 20,000 records on (IVF-HNSW-SQ).
    LanceIndexed,
    /// Python chromadb 1.5.9 `PersistentClient`.
    Chroma,
}

impl System {
    /// The name used in reports and on the command line.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            System::Persistent => "chromalite-persistent",
            System::Memory => "chromalite-memory",
            System::Remote => "chromalite-remote",
            System::Lance => "chromalite-lance",
            System::LanceIndexed => "chromalite-lance-ivf",
            System::Chroma => "chromadb",
        }
    }

    /// Parses `persistent`, `memory`, `remote`, `lance`, `lance-ivf` or `chroma`.
    pub fn parse(s: &str) -> Result<System, String> {
        match s.trim() {
            "persistent" | "chromalite-persistent" => Ok(System::Persistent),
            "memory" | "chromalite-memory" => Ok(System::Memory),
            "remote" | "chromalite-remote" => Ok(System::Remote),
            "lance" | "chromalite-lance" => Ok(System::Lance),
            "lance-ivf" | "chromalite-lance-ivf" => Ok(System::LanceIndexed),
            "chroma" | "chromadb" => Ok(System::Chroma),
            other => Err(format!(
                "unknown system {other:?}: expected persistent, memory, remote, lance, lance-ivf or chroma"
            )),
        }
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// A directory in the debian-minilm layout; synthetic data when `None`.
    pub data: Option<PathBuf>,
    /// Use only the first N base rows.
    pub limit: Option<usize>,
    /// Build N records by perturbing the rows.
    pub scale: Option<usize>,
    pub queries: usize,
    pub systems: Vec<System>,
    /// The venv python with chromadb (for `System::Chroma`).
    pub python: Option<PathBuf>,
    /// The `chromalite` executable for isolated worker processes; in-process when `None`.
    pub exe: Option<PathBuf>,
    /// Where stores and the prepared data go.
    pub work_dir: PathBuf,
}

const PEER_SCRIPT: &str = include_str!("../../../benches/py/chroma_peer.py");

/// Prepares the data, runs every system, and returns their measurements in `systems` order.
pub fn run(opts: &Options, progress: &mut dyn FnMut(&str)) -> Result<Vec<Measurements>, String> {
    progress("preparing data");
    let mut data = match &opts.data {
        Some(dir) => Dataset::load(dir, opts.limit, opts.queries)?,
        None => Dataset::synthetic(opts.limit.unwrap_or(20_000), 384, opts.queries, 42),
    };
    if let Some(n) = opts.scale {
        progress(&format!("scaling to {n} records"));
        data = data.scaled(n, 9);
    }
    let data_dir = data.write(&opts.work_dir.join("data"))?;
    let mut results = Vec::new();
    for system in &opts.systems {
        progress(&format!("running {} on {} records", system.name(), data.base.len()));
        let store = opts.work_dir.join(format!("store-{}", system.name()));
        let _ = std::fs::remove_dir_all(&store);
        // The remote row talks to a server of its own, started here and stopped after the row.
        let server = match system {
            System::Remote => {
                let py = opts
                    .python
                    .as_ref()
                    .ok_or("the remote row needs --python (the venv python with chromadb 1.5.9)")?;
                Some(server::LocalChroma::start(py, &store)?)
            }
            _ => None,
        };
        let url = server.as_ref().map(|s| s.url.clone());
        let m = match (system, &opts.exe) {
            (System::Chroma, _) => chroma(opts, &data_dir, &store)?,
            (_, Some(exe)) => isolated(exe, system, &data_dir, &store, url.as_deref())?,
            (_, None) => worker(system, &data_dir, &store, url.as_deref(), false)?,
        };
        drop(server);
        results.push(m);
    }
    Ok(results)
}

fn run_json(cmd: &mut Command) -> Result<Measurements, String> {
    let out = cmd.output().map_err(|e| format!("cannot start {cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!("{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().last().ok_or("worker printed nothing")?;
    serde_json::from_str(line).map_err(|e| format!("worker output is not JSON ({e}): {line}"))
}

/// Fresh-process opens per system; the median is reported.
const OPEN_RUNS: usize = 3;

/// The median open-to-first-query time of [`OPEN_RUNS`] fresh processes. One open is at the mercy
/// of the page cache on a shared machine (a segment whose pages were evicted by other jobs is read
/// from disk: 435 ms instead of ~50 ms once, with 65 of its 95 MB cached); the median of three,
/// taken the same way for every system, is the figure a restarted application usually sees.
fn median_open(mut run: impl FnMut() -> Result<Measurements, String>) -> Result<Option<f64>, String> {
    settle_writeback();
    let mut times = Vec::with_capacity(OPEN_RUNS);
    for _ in 0..OPEN_RUNS {
        if let Some(ms) = run()?.open_to_first_query_ms {
            times.push(ms);
        }
    }
    times.sort_by(f64::total_cmp);
    Ok(times.get(times.len() / 2).copied())
}

/// Flushes dirty pages to disk before the opens are timed. The store was just written by the
/// ingest run, and the kernel writes those pages back in the following seconds: an open timed
/// during that write-back measured 214 ms where the settled store opens in 29-37 ms. `sync(1)` is
/// in every Linux base system; where it is missing the opens are timed unsettled (as before).
fn settle_writeback() {
    let _ = Command::new("sync").status();
}

fn isolated(exe: &Path, system: &System, data: &Path, store: &Path, url: Option<&str>) -> Result<Measurements, String> {
    let base = |open_only: bool| {
        let mut c = Command::new(exe);
        if let Some(u) = url {
            c.args(["--url", u]);
        }
        c.args(["bench-worker", "--system", system.name()]).arg("--data").arg(data).arg("--store").arg(store);
        if open_only {
            c.arg("--open-only");
        }
        c
    };
    let mut m = run_json(&mut base(false))?;
    if matches!(system, System::Persistent | System::Lance | System::LanceIndexed) {
        m.open_to_first_query_ms = median_open(|| run_json(&mut base(true)))?;
    }
    Ok(m)
}

fn chroma(opts: &Options, data: &Path, store: &Path) -> Result<Measurements, String> {
    let py = opts.python.as_ref().ok_or("chromadb peer needs --python (the venv python with chromadb 1.5.9)")?;
    let script = opts.work_dir.join("chroma_peer.py");
    std::fs::write(&script, PEER_SCRIPT).map_err(|e| e.to_string())?;
    let base = |open_only: bool| {
        let mut c = Command::new(py);
        c.arg(&script).arg("--data").arg(data).arg("--store").arg(store).env("ANONYMIZED_TELEMETRY", "False");
        if open_only {
            c.arg("--open-only");
        }
        c
    };
    let mut m = run_json(&mut base(false))?;
    m.open_to_first_query_ms = median_open(|| run_json(&mut base(true)))?;
    Ok(m)
}

/// Runs one system in this process (what `chromalite bench-worker` does); `url` is the server
/// of the remote row.
pub fn worker(
    system: &System,
    data_dir: &Path,
    store: &Path,
    url: Option<&str>,
    open_only: bool,
) -> Result<Measurements, String> {
    let data = Dataset::load(data_dir, None, usize::MAX)?;
    let open = || match (system, url) {
        (System::Persistent, _) => Client::persistent(store),
        (System::Remote, Some(u)) => Client::remote(u),
        (System::Remote, None) => Err(chromalite::Error::invalid("the remote row needs a server url")),
        #[cfg(feature = "lance")]
        (System::Lance, _) => Client::lance(store),
        #[cfg(feature = "lance")]
        (System::LanceIndexed, _) => {
            Client::lance_with(store, chromalite::lance::LanceOptions { index_threshold: 20_000, ..Default::default() })
        }
        #[cfg(not(feature = "lance"))]
        (System::Lance | System::LanceIndexed, _) => {
            Err(chromalite::Error::invalid("the lance rows need a build with `--features lance`"))
        }
        _ => Ok(Client::in_memory()),
    };
    if open_only {
        let ms = workload::open_to_first_query(open, &data.queries[0]).map_err(|e| e.to_string())?;
        return Ok(Measurements {
            system: system.name().into(),
            open_to_first_query_ms: Some(ms),
            ..Default::default()
        });
    }
    let client = open().map_err(|e| e.to_string())?;
    let (col, rps) = workload::ingest(&client, &data).map_err(|e| e.to_string())?;
    let with_curve = matches!(system, System::Persistent | System::Remote);
    let mut m = workload::measure(&col, &data, system.name(), with_curve).map_err(|e| e.to_string())?;
    m.ingest_rps = rps;
    drop((col, client));
    if matches!(system, System::Persistent | System::Lance | System::LanceIndexed) {
        m.disk_mb = workload::disk_mb(store);
    }
    m.peak_rss_mb = workload::peak_rss_mb();
    Ok(m)
}
