//! Randomized differential test against Python chromadb 1.5.9, both directions, on persist
//! directories (needs chromadb's python: `CHROMALITE_PYTHON` or the workspace's `.venv`; under the
//! test command a missing one fails the test, see `tests/support/chroma_python.rs`).
//!
//! For each fixed seed, `tests/py/random_diff.py` generates two op sequences (`a`, then `b`) and a
//! battery of reads for the state after each (see the script for what they cover: tenants and
//! databases, spaces, small sync thresholds so records sit both in the persisted HNSW and only in
//! `embeddings_queue`, every write kind, metadata of every type incl. arrays, documents, reopens,
//! collection renames and metadata replacement, `get_or_create` of existing names, refused
//! duplicate ids; reads include peek and `list_collections` pages).
//!
//! 1. chromadb applies `a` to directory P and answers the battery: the reference answers.
//! 2. chromalite opens a copy of P and answers the battery (chromadb -> chromalite).
//! 3. chromalite applies `a` to its own directory C (same outcome per op: ok, a delete's count, or error kind), closes,
//!    reopens and answers the battery (chromalite's semantics = chromadb's).
//! 4. chromadb opens C and answers the battery (chromalite -> chromadb).
//! 5. chromadb applies `b` to C and answers battery `b`; chromalite reads C back.
//! 6. chromalite applies `b` to the copy of P (a chromadb-written directory), answers battery `b`,
//!    and chromadb reads that directory back.
//!
//! Results compare as in the conformance suite: ids and their order exactly (for queries, runs of
//! equal distances as sets), floats within 1e-4, ints and floats kept apart in metadata, error
//! kinds equal. chromadb's HNSW search is approximate and its graph depends on thread timing: a
//! query that differs only because chromadb missed a neighbour (checked against brute-force
//! candidates the Python side records) is reported on stderr, not counted.

mod common;

#[path = "../../../tests/conformance/compare.rs"]
mod compare;

use std::path::Path;
use std::process::Command;

use chromalite_core::{wire, CreateCollection, DatabaseRef, ModifyCollection, Result, VectorBackend};
use chromalite_sqlite::SqliteBackend;
use serde_json::{json, Value};

use common::{copy_dir, python, workspace};

/// Runs `tests/py/random_diff.py run DIR SEED PHASE`.
fn py_run(python: &str, dir: &Path, seed: u64, phase: &str) -> Value {
    let out = Command::new(python)
        .arg(workspace().join("tests/py/random_diff.py"))
        .args(["run", dir.to_str().unwrap(), &seed.to_string(), phase])
        .env("ANONYMIZED_TELEMETRY", "False")
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "random_diff.py run {seed} {phase} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("random_diff.py prints JSON")
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str().unwrap_or_default()
}

fn db_of(v: &Value) -> DatabaseRef {
    DatabaseRef::new(s(v, "tenant"), s(v, "database"))
}

/// Applies one generated write op (everything but `reopen`); a delete gives chromadb's count.
fn apply(b: &dyn VectorBackend, op: &Value) -> Result<Option<usize>> {
    let present = |k: &str| op.get(k).filter(|v| !v.is_null());
    let done = match s(op, "op") {
        "create_tenant" => b.create_tenant(s(op, "name")),
        "create_database" => b.create_database(&DatabaseRef::new(s(op, "tenant"), s(op, "name"))),
        "create_collection" => {
            let req = CreateCollection {
                name: s(op, "name").to_owned(),
                metadata: present("metadata").map(wire::collection_metadata).transpose()?,
                configuration: present("configuration").cloned(),
                get_or_create: op["get_or_create"].as_bool().unwrap_or(false),
            };
            b.create_collection(&db_of(op), &req).map(|_| ())
        }
        "delete_collection" => b.delete_collection(&db_of(op), s(op, "name")),
        "modify_collection" => {
            let req = ModifyCollection {
                new_name: present("new_name").and_then(Value::as_str).map(str::to_owned),
                new_metadata: present("new_metadata").map(wire::modify_metadata).transpose()?,
                new_configuration: None,
            };
            b.modify_collection(&db_of(op), s(op, "name"), &req)
        }
        kind => {
            let col = b.get_collection(&db_of(op), s(op, "collection"))?;
            match kind {
                "add" => b.add(&col, &wire::record_batch(op)?),
                "upsert" => b.upsert(&col, &wire::record_batch(op)?),
                "update" => b.update(&col, &wire::record_batch(op)?),
                "delete" => return b.delete_records(&col, &wire::delete_request(op)?).map(Some),
                other => panic!("unknown op {other}"),
            }
        }
    };
    done.map(|()| None)
}

/// Applies `ops` to the directory, reopening it where the sequence says so; returns the outcome of
/// each op as the Python side reports it ("ok" or an error kind).
fn apply_all(dir: &Path, ops: &[Value]) -> Vec<String> {
    let mut store = Some(SqliteBackend::open(dir).expect("open persist directory"));
    let mut outcomes = Vec::new();
    for op in ops {
        if s(op, "op") == "reopen" {
            drop(store.take());
            store = Some(SqliteBackend::open(dir).expect("reopen persist directory"));
            outcomes.push("ok".to_owned());
            continue;
        }
        let b = store.as_ref().unwrap();
        outcomes.push(match apply(b, op) {
            Ok(None) => "ok".to_owned(),
            Ok(Some(n)) => format!("deleted {n}"),
            Err(e) => e.kind().as_str().to_owned(),
        });
    }
    outcomes
}

fn sorted_include(mut v: Value) -> Value {
    if let Some(Value::Array(items)) = v.get_mut("include") {
        items.sort_by_key(Value::to_string);
    }
    v
}

/// Answers one battery read.
fn read(b: &dyn VectorBackend, step: &Value) -> Result<Value> {
    let db = db_of(step);
    match s(step, "op") {
        "list_collections" if step.get("limit").is_some() => {
            let (limit, offset) = (wire::non_negative(step, "limit")?, wire::non_negative(step, "offset")?);
            b.list_collections(&db, limit, offset.unwrap_or(0)).map(|cols| json!(cols.len()))
        }
        "list_collections" => {
            let mut names: Vec<String> = b.list_collections(&db, None, 0)?.into_iter().map(|c| c.name).collect();
            names.sort();
            Ok(json!(names))
        }
        "count_collections" => b.count_collections(&db).map(|n| json!(n)),
        kind => {
            let col = b.get_collection(&db, s(step, "collection"))?;
            match kind {
                "count" => b.count(&col).map(|n| json!(n)),
                "get_collection" => {
                    let h = &col.config.hnsw;
                    Ok(json!({
                        "name": col.name,
                        "metadata": col.metadata.as_ref().map(chromalite_core::metadata::metadata_to_json),
                        "hnsw": {"space": h.space.as_str(), "ef_search": h.ef_search,
                                 "ef_construction": h.ef_construction, "max_neighbors": h.max_neighbors},
                    }))
                }
                "get" => b.get(&col, &wire::get_request(step)?).map(|r| sorted_include(r.to_json())),
                "peek" => {
                    b.peek(&col, wire::non_negative(step, "limit")?.unwrap_or(10)).map(|r| sorted_include(r.to_json()))
                }
                "query" => {
                    let mut req = wire::query_request(step)?;
                    let mut out = sorted_include(b.query(&col, &req)?.to_json());
                    req.include = vec![chromalite_core::Include::Distances];
                    out["tie_distances"] = b.query(&col, &req)?.to_json()["distances"].take();
                    Ok(out)
                }
                other => panic!("unknown read {other}"),
            }
        }
    }
}

fn battery(b: &dyn VectorBackend, steps: &[Value]) -> Vec<Value> {
    steps
        .iter()
        .map(|step| match read(b, step) {
            Ok(v) => json!({"ok": v}),
            Err(e) => json!({"error": e.kind().as_str(), "message": e.to_string()}),
        })
        .collect()
}

/// Within each query's hits, runs of equal distances are sorted by id (their order is not
/// specified); the distances come from `tie_distances`, which both sides add to query answers.
fn canonical_ties(v: &mut Value) {
    let Some(dists) = v.get("tie_distances").and_then(Value::as_array).cloned() else { return };
    let n = dists.len();
    for q in 0..n {
        let d: Vec<f64> = dists[q].as_array().unwrap().iter().map(|x| x.as_f64().unwrap_or(f64::NAN)).collect();
        let mut perm: Vec<usize> = (0..d.len()).collect();
        let ids: Vec<String> = v["ids"][q].as_array().unwrap().iter().map(|x| x.as_str().unwrap().to_owned()).collect();
        let mut start = 0;
        while start < d.len() {
            let mut end = start + 1;
            while end < d.len() && (d[end] - d[start]).abs() <= 1e-5 * d[start].abs().max(1.0) {
                end += 1;
            }
            perm[start..end].sort_by(|&a, &b| ids[a].cmp(&ids[b]));
            start = end;
        }
        for key in ["ids", "distances", "documents", "metadatas", "embeddings", "uris", "tie_distances"] {
            if let Some(Value::Array(rows)) = v.get_mut(key) {
                if let Some(Value::Array(row)) = rows.get_mut(q) {
                    let old = row.clone();
                    *row = perm.iter().map(|&i| old[i].clone()).collect();
                }
            }
        }
    }
}

/// Compares battery answers; returns one line per mismatch.
fn compare_answers(label: &str, steps: &[Value], want: &[Value], have: &[Value]) -> Vec<String> {
    assert_eq!(want.len(), have.len(), "{label}: battery lengths");
    let mut out = Vec::new();
    for (i, ((step, w), h)) in steps.iter().zip(want).zip(have).enumerate() {
        let what = || format!("{label} battery[{i}] {}", short(step));
        match (w.get("error"), h.get("error")) {
            (Some(a), Some(b)) if a == b => {}
            (None, None) => {
                let (mut w, mut h) = (w["ok"].clone(), h["ok"].clone());
                let mut exact = Value::Null;
                if s(step, "op") == "query" {
                    exact = w.as_object_mut().and_then(|o| o.remove("exact")).unwrap_or_default();
                    if let Some(o) = h.as_object_mut() {
                        o.remove("exact");
                    }
                    canonical_ties(&mut w);
                    canonical_ties(&mut h);
                }
                if let Err(why) = compare::same(&w, &h, "$") {
                    if hnsw_miss_explains(label, step, &exact, &w, &h) {
                        eprintln!("{}: chromadb's approximate search explains: {why}", what());
                    } else {
                        out.push(format!("{}: {why}", what()));
                    }
                }
            }
            _ => out.push(format!("{}:\n    chromadb   {}\n    chromalite {}", what(), short(w), short(h))),
        }
    }
    out
}

/// How a query answer stands against the brute-force candidates chromadb's side recorded.
#[derive(PartialEq)]
enum Exactness {
    /// The exact nearest `n_results` (ties in any order).
    Exact,
    /// Fewer or farther hits, but each one a candidate at its true distance, nearest first: what an
    /// approximate HNSW search that missed a neighbour returns.
    Approximate,
    /// Anything else: a wrong answer.
    Wrong,
}

fn exactness(answer: &Value, exact: &Value, n_results: usize) -> Exactness {
    let (Some(per_query), Some(dists)) = (exact.as_array(), answer["tie_distances"].as_array()) else {
        return Exactness::Wrong;
    };
    let mut all_exact = true;
    for (q, cands) in per_query.iter().enumerate() {
        let cands = arr(cands);
        let truth: std::collections::HashMap<&str, f64> =
            cands.iter().map(|c| (c[0].as_str().unwrap_or_default(), c[1].as_f64().unwrap_or(f64::NAN))).collect();
        let ids = arr(&answer["ids"][q]);
        let d: Vec<f64> = arr(&dists[q]).iter().map(|x| x.as_f64().unwrap_or(f64::NAN)).collect();
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-4 * a.abs().max(1.0);
        let consistent = ids.len() == d.len()
            && ids.len() <= n_results.min(cands.len())
            && ids
                .iter()
                .zip(&d)
                .all(|(id, x)| truth.get(id.as_str().unwrap_or_default()).is_some_and(|t| close(*t, *x)))
            && d.windows(2).all(|p| p[0] <= p[1] + 1e-5);
        if !consistent {
            return Exactness::Wrong;
        }
        let want = n_results.min(cands.len());
        all_exact &= d.len() == want && d.iter().zip(cands).all(|(x, c)| close(c[1].as_f64().unwrap_or(f64::NAN), *x));
    }
    if all_exact {
        Exactness::Exact
    } else {
        Exactness::Approximate
    }
}

/// Whether a query mismatch is chromadb's HNSW search missing a neighbour rather than a
/// difference: chromadb's reference answer missed one and the other side is exact, or (when
/// chromadb itself answers from a directory chromalite wrote) the reference is exact and chromadb's
/// answer is an approximate one. Everything else stays a mismatch.
fn hnsw_miss_explains(label: &str, step: &Value, exact: &Value, want: &Value, have: &Value) -> bool {
    if s(step, "op") != "query" || exact.is_null() {
        return false;
    }
    let n = step["n_results"].as_u64().and_then(|n| usize::try_from(n).ok()).unwrap_or(10);
    let (w, h) = (exactness(want, exact, n), exactness(have, exact, n));
    let chromadb_answers = label.ends_with("chromadb reads");
    (w == Exactness::Approximate && h == Exactness::Exact)
        || (chromadb_answers && w == Exactness::Exact && h == Exactness::Approximate)
}

fn compare_outcomes(label: &str, ops: &[Value], want: &Value, have: &[String]) -> Vec<String> {
    let want: Vec<&str> = want.as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert_eq!(want.len(), have.len(), "{label}: outcome lengths");
    ops.iter()
        .zip(want.iter().zip(have))
        .enumerate()
        .filter(|(_, (_, (w, h)))| **w != h.as_str())
        .map(|(i, (op, (w, h)))| format!("{label} op[{i}] {}: chromadb {w}, chromalite {h}", short(op)))
        .collect()
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    match s.char_indices().nth(400) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s,
    }
}

fn arr(v: &Value) -> &[Value] {
    v.as_array().map_or(&[], Vec::as_slice)
}

/// Removes a directory tree on drop (unless told to keep it).
struct Cleanup(std::path::PathBuf, bool);

impl Drop for Cleanup {
    fn drop(&mut self) {
        if self.1 {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn run_seed(seed: u64) {
    let Some(python) = python(&format!("random_diff seed {seed}")) else { return };
    let tmp = tempfile::tempdir().unwrap();
    let tmp = match std::env::var_os("RANDOM_DIFF_KEEP") {
        // Debugging aid: keep the directories under this path.
        Some(keep) => {
            let dir = Path::new(&keep).join(format!("seed-{seed}"));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            tempfile::TempDir::new_in(&dir).unwrap().keep()
        }
        None => tmp.keep(),
    };
    let _cleanup = Cleanup(tmp.clone(), std::env::var_os("RANDOM_DIFF_KEEP").is_none());
    let tmp = tmp.as_path();
    let (p_dir, p_copy, c_dir) = (tmp.join("py"), tmp.join("py-copy"), tmp.join("rs"));
    let mut failures = Vec::new();

    // 1-2: chromadb writes, chromalite reads.
    let a = py_run(&python, &p_dir, seed, "a");
    let (ops_a, battery_a, truth_a) = (arr(&a["ops"]), arr(&a["battery"]), arr(&a["answers"]));
    assert!(truth_a.iter().filter(|x| x.get("ok").is_some()).count() > truth_a.len() / 2, "vacuous battery");
    copy_dir(&p_dir, &p_copy);
    {
        let store = SqliteBackend::open(&p_copy).unwrap();
        failures.extend(compare_answers(
            "chromadb-written, chromalite reads",
            battery_a,
            truth_a,
            &battery(&store, battery_a),
        ));
    }

    // 3: the same ops through chromalite.
    let outcomes = apply_all(&c_dir, ops_a);
    failures.extend(compare_outcomes("chromalite applies a", ops_a, &a["outcomes"], &outcomes));
    {
        let store = SqliteBackend::open(&c_dir).unwrap();
        failures.extend(compare_answers(
            "chromalite-written, chromalite reads",
            battery_a,
            truth_a,
            &battery(&store, battery_a),
        ));
    }

    // 4: chromadb reads chromalite's directory.
    let r = py_run(&python, &c_dir, seed, "read");
    failures.extend(compare_answers("chromalite-written, chromadb reads", battery_a, truth_a, arr(&r["answers"])));

    // 5: chromadb writes more into chromalite's directory; chromalite reads it back.
    let b = py_run(&python, &c_dir, seed, "b");
    let (ops_b, battery_b, truth_b) = (arr(&b["ops"]), arr(&b["battery"]), arr(&b["answers"]));
    {
        let store = SqliteBackend::open(&c_dir).unwrap();
        failures.extend(compare_answers(
            "chromadb wrote b on chromalite's dir, chromalite reads",
            battery_b,
            truth_b,
            &battery(&store, battery_b),
        ));
    }

    // 6: chromalite writes b into the chromadb-written directory; chromadb reads it back.
    let outcomes = apply_all(&p_copy, ops_b);
    failures.extend(compare_outcomes("chromalite applies b on chromadb's dir", ops_b, &b["outcomes"], &outcomes));
    {
        let store = SqliteBackend::open(&p_copy).unwrap();
        failures.extend(compare_answers(
            "chromalite wrote b on chromadb's dir, chromalite reads",
            battery_b,
            truth_b,
            &battery(&store, battery_b),
        ));
    }
    let r = py_run(&python, &p_copy, seed, "read-b");
    failures.extend(compare_answers(
        "chromalite wrote b on chromadb's dir, chromadb reads",
        battery_b,
        truth_b,
        arr(&r["answers"]),
    ));

    eprintln!(
        "random_diff seed {seed}: {} + {} ops, {} + {} reads, {} mismatches",
        ops_a.len(),
        ops_b.len(),
        battery_a.len(),
        battery_b.len(),
        failures.len()
    );
    assert!(failures.is_empty(), "seed {seed}: {} mismatches:\n{}", failures.len(), failures.join("\n"));
}

macro_rules! seeds {
    ($($name:ident = $seed:expr),* $(,)?) => {$(
        #[test]
        fn $name() {
            run_seed($seed);
        }
    )*};
}

seeds!(seed_1 = 1, seed_2 = 2, seed_3 = 3, seed_4 = 4, seed_5 = 5, seed_6 = 6);

/// More seeds on demand: `RANDOM_DIFF_SEEDS=7-40 cargo test -p chromalite-sqlite --test random_diff
/// extra_seeds` (nothing runs when the variable is unset).
#[test]
fn extra_seeds() {
    let Ok(spec) = std::env::var("RANDOM_DIFF_SEEDS") else { return };
    let (lo, hi) = spec.split_once('-').unwrap_or((&spec, &spec));
    let (lo, hi): (u64, u64) = (lo.trim().parse().expect("seed"), hi.trim().parse().expect("seed"));
    let failed: Vec<u64> = (lo..=hi).filter(|&seed| std::panic::catch_unwind(|| run_seed(seed)).is_err()).collect();
    assert!(failed.is_empty(), "seeds that failed: {failed:?}");
}
