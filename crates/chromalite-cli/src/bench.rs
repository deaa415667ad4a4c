//! `chromalite bench`: runs the harness in `chromalite-bench` with isolated worker processes.

use std::path::Path;

use chromalite_bench::{report, Options, System};

use crate::args::BenchOpts;
use crate::{CliError, CliResult};

fn usage(e: String) -> CliError {
    CliError::Usage(e)
}

/// `bench ...`: prints the table, and writes JSON and the SVG chart when asked.
pub fn run(o: &BenchOpts) -> CliResult {
    let systems = o
        .systems
        .as_deref()
        .unwrap_or("persistent,memory,remote,chroma")
        .split(',')
        .map(System::parse)
        .collect::<Result<Vec<_>, _>>()
        .map_err(usage)?;
    let tmp = tempfile::tempdir().map_err(|e| usage(format!("cannot create a work dir: {e}")))?;
    let python = o.python.clone().or_else(|| std::env::var_os("CHROMALITE_PYTHON").map(Into::into));
    let opts = Options {
        data: o.data.clone(),
        limit: o.limit,
        scale: o.scale,
        queries: o.queries.unwrap_or(1000),
        systems,
        python,
        exe: std::env::current_exe().ok(),
        work_dir: o.work_dir.clone().unwrap_or_else(|| tmp.path().to_path_buf()),
    };
    let results = chromalite_bench::run(&opts, &mut |msg| eprintln!("bench: {msg}")).map_err(usage)?;
    outln!("{}", report::table(&results));
    let json = serde_json::to_string_pretty(&results).map_err(|e| usage(e.to_string()))?;
    match o.json.as_deref() {
        Some(p) if p == Path::new("-") => outln!("{json}"),
        Some(p) => std::fs::write(p, json).map_err(|e| usage(format!("cannot write {}: {e}", p.display())))?,
        None => {}
    }
    if let Some(p) = &o.svg {
        let title = format!("recall@10 vs QPS, {} records", results.first().map_or(0, |m| m.records));
        std::fs::write(p, report::svg(&results, &title))
            .map_err(|e| usage(format!("cannot write {}: {e}", p.display())))?;
        eprintln!("bench: chart written to {}", p.display());
    }
    Ok(())
}

/// `bench-worker`: one system in this process; prints its measurements as one JSON line.
pub fn worker(system: &str, data: &Path, store: &Path, url: Option<&str>, open_only: bool) -> CliResult {
    let system = System::parse(system).map_err(usage)?;
    let m = chromalite_bench::worker(&system, data, store, url, open_only).map_err(usage)?;
    outln!("{}", serde_json::to_string(&m).map_err(|e| usage(e.to_string()))?);
    Ok(())
}
