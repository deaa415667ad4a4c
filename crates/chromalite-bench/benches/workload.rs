//! `cargo bench -p chromalite-bench`: the harness behind `chromalite bench`, run in this process.
//!
//! Environment: `CHROMALITE_BENCH_DATA` (a directory in the debian-minilm layout; synthetic data
//! when unset), `CHROMALITE_BENCH_LIMIT` (rows, default 20000), `CHROMALITE_PYTHON` (adds the
//! chromadb peer and the remote row). Workers run in this process, so peak RSS is the process's,
//! not per system; `chromalite bench` isolates each system in its own process.

use chromalite_bench::{report, Options, System};

fn main() {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let python = env("CHROMALITE_PYTHON").map(Into::into);
    let mut systems = vec![System::Persistent, System::Memory];
    if python.is_some() {
        systems.extend([System::Remote, System::Chroma]);
    }
    let work = tempfile::tempdir().expect("temporary work directory");
    let opts = Options {
        data: env("CHROMALITE_BENCH_DATA").map(Into::into),
        limit: Some(env("CHROMALITE_BENCH_LIMIT").and_then(|v| v.parse().ok()).unwrap_or(20_000)),
        scale: None,
        queries: 300,
        systems,
        python,
        exe: None,
        work_dir: work.path().to_path_buf(),
    };
    match chromalite_bench::run(&opts, &mut |m| eprintln!("bench: {m}")) {
        Ok(results) => println!("{}", report::table(&results)),
        Err(e) => {
            eprintln!("bench failed: {e}");
            std::process::exit(1);
        }
    }
}
