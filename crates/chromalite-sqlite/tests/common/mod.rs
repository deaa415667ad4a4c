//! Shared helpers of the compatibility tests: the chromadb peer, the read spec run on both sides,
//! and a tolerant JSON comparison.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use chromalite_core::filter::{Where, WhereDocument};
use chromalite_core::{CollectionInfo, DatabaseRef, GetRequest, Include, QueryRequest, Selection, VectorBackend};
use serde_json::{json, Value};

#[path = "../../../../tests/support/chroma_python.rs"]
mod chroma_python;

/// The chromadb 1.5.9 interpreter (see `tests/support/chroma_python.rs`), or `None` after a SKIP
/// line.
pub fn python(test: &str) -> Option<String> {
    chroma_python::chroma_python(test).map(|p| p.to_string_lossy().into_owned())
}

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs `tests/py/sqlite_compat.py` with `args`; returns stdout, panics with stderr on failure.
pub fn py(python: &str, args: &[&str]) -> String {
    let out = Command::new(python)
        .arg(workspace().join("tests/py/sqlite_compat.py"))
        .args(args)
        .env("ANONYMIZED_TELEMETRY", "False")
        .output()
        .expect("run python");
    assert!(out.status.success(), "python {args:?} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8 stdout")
}

/// Copies a directory tree.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// (tenant, database, collection, dimension) of the data sets both sides write.
pub const COLLECTIONS: &[(&str, &str, &str, usize)] = &[
    ("default_tenant", "default_database", "l2col", 8),
    ("default_tenant", "default_database", "coscol", 5),
    ("default_tenant", "default_database", "ipcol", 4),
    ("default_tenant", "default_database", "emptycol", 3),
    ("tenantx", "dbx", "other", 3),
];

fn qvec(seed: usize, dim: usize) -> Vec<f64> {
    (0..dim).map(|j| ((seed * 31 + j * 17) % 23) as f64 / 11.5 - 1.0).collect()
}

/// The reads compared between chromadb and chromalite.
pub fn spec() -> Value {
    let all = json!(["documents", "metadatas", "embeddings"]);
    let md = json!(["metadatas", "documents"]);
    let qinc = json!(["distances", "documents", "metadatas", "embeddings"]);
    let mut steps = Vec::new();
    for (tenant, database, name, dim) in COLLECTIONS {
        let base = json!({"tenant": tenant, "database": database, "collection": name});
        let step = |extra: Value| {
            let mut s = base.clone();
            s.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            s
        };
        steps.push(step(json!({"op": "count"})));
        steps.push(step(json!({"op": "get", "include": all})));
        steps.push(step(json!({"op": "get", "include": md, "where": {"tag": "red"}})));
        steps.push(step(json!({"op": "get", "include": md, "where": {"i": {"$gte": 100}}, "limit": 5, "offset": 3})));
        steps.push(step(json!({"op": "get", "include": md, "where": {"arr": {"$contains": 1}}})));
        steps.push(step(json!({"op": "get", "include": md, "where": {"$or": [{"even": true}, {"f": {"$lt": 2.5}}]}})));
        steps.push(step(json!({"op": "get", "include": md, "where_document": {"$contains": "dogs"}})));
        steps.push(step(json!({"op": "get", "include": md, "where": {"i": {"$in": [1, 2, 3, 1001]}}})));
        steps.push(step(json!({"op": "get", "include": md, "where": {"tag": {"$nin": ["red", "green"]}}})));
        steps.push(step(json!({"op": "get", "include": md, "where": {"words": {"$not_contains": "alpha"}}})));
        steps.push(step(
            json!({"op": "get", "include": all, "ids": ["r1", "r2", "r4", "fresh1", "c3", "p7", "o2", "py1", "nope"]}),
        ));
        if *name == "emptycol" {
            continue;
        }
        let q = json!([qvec(1, *dim), qvec(2, *dim)]);
        steps.push(step(json!({"op": "query", "query_embeddings": q, "n_results": 7, "include": qinc})));
        steps.push(step(
            json!({"op": "query", "query_embeddings": q, "n_results": 5, "include": qinc, "where": {"tag": "green"}}),
        ));
        steps.push(step(json!({"op": "query", "query_embeddings": q, "n_results": 4, "include": qinc, "where_document": {"$not_contains": "cats"}})));
    }
    Value::Array(steps)
}

fn includes(step: &Value) -> Vec<Include> {
    step["include"].as_array().unwrap().iter().map(|v| Include::parse(v.as_str().unwrap()).unwrap()).collect()
}

fn selection(step: &Value) -> Selection {
    Selection {
        ids: step.get("ids").map(|v| v.as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_owned()).collect()),
        where_: step.get("where").map(|w| Where::from_json(w).unwrap()),
        where_document: step.get("where_document").map(|w| WhereDocument::from_json(w).unwrap()),
    }
}

fn pick(v: &Value) -> Value {
    json!({
        "ids": v.get("ids").cloned().unwrap_or(Value::Null),
        "documents": v.get("documents").cloned().unwrap_or(Value::Null),
        "metadatas": v.get("metadatas").cloned().unwrap_or(Value::Null),
        "distances": v.get("distances").cloned().unwrap_or(Value::Null),
        "embeddings": v.get("embeddings").cloned().unwrap_or(Value::Null),
    })
}

/// Runs the spec against a chromalite backend, producing the same JSON shape as the Python side.
pub fn run_rust(b: &dyn VectorBackend, spec: &Value) -> Vec<Value> {
    spec.as_array()
        .unwrap()
        .iter()
        .map(|step| {
            let db = DatabaseRef::new(step["tenant"].as_str().unwrap(), step["database"].as_str().unwrap());
            let col: CollectionInfo = match b.get_collection(&db, step["collection"].as_str().unwrap()) {
                Ok(c) => c,
                Err(e) => return json!({"error": e.kind().as_str()}),
            };
            let out = match step["op"].as_str().unwrap() {
                "count" => b.count(&col).map(|n| json!(n)),
                "get" => b
                    .get(
                        &col,
                        &GetRequest {
                            selection: selection(step),
                            limit: step.get("limit").and_then(Value::as_u64).map(|n| n as usize),
                            offset: step.get("offset").and_then(Value::as_u64).map_or(0, |n| n as usize),
                            include: includes(step),
                        },
                    )
                    .map(|r| pick(&r.to_json())),
                _ => {
                    let embeddings = step["query_embeddings"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|q| q.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect())
                        .collect();
                    b.query(
                        &col,
                        &QueryRequest {
                            embeddings,
                            n_results: step["n_results"].as_u64().unwrap() as usize,
                            selection: selection(step),
                            include: includes(step),
                        },
                    )
                    .map(|r| pick(&r.to_json()))
                }
            };
            out.unwrap_or_else(|e| json!({"error": e.kind().as_str(), "message": e.to_string()}))
        })
        .collect()
}

/// Runs the spec with chromadb on `dir`.
pub fn run_python(python: &str, dir: &Path, spec: &Value) -> Vec<Value> {
    let spec_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(spec_file.path(), spec.to_string()).unwrap();
    let out = py(python, &["dump", dir.to_str().unwrap(), spec_file.path().to_str().unwrap()]);
    let v: Value = serde_json::from_str(&out).expect("python dump is JSON");
    v.as_array().unwrap().iter().map(pick_result).collect()
}

/// A Python result reduced to the compared fields (counts and errors pass through).
pub fn pick_result(r: &Value) -> Value {
    if r.get("error").is_some() || r.is_number() {
        r.clone()
    } else {
        pick(r)
    }
}

/// Compares JSON values: same structure, ints equal and kept apart from floats, floats within 1e-4.
pub fn same(path: &str, a: &Value, b: &Value) -> Result<(), String> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            if x.is_f64() != y.is_f64() {
                return Err(format!("{path}: {x} vs {y} (int/float differ)"));
            }
            let (fx, fy) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            if (fx - fy).abs() > 1e-4 * fx.abs().max(1.0) {
                return Err(format!("{path}: {x} vs {y}"));
            }
            Ok(())
        }
        (Value::Array(x), Value::Array(y)) => {
            if x.len() != y.len() {
                return Err(format!("{path}: length {} vs {}\n  {a}\n  {b}", x.len(), y.len()));
            }
            x.iter().zip(y).enumerate().try_for_each(|(i, (p, q))| same(&format!("{path}[{i}]"), p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter().try_for_each(|k| {
                same(&format!("{path}.{k}"), x.get(k).unwrap_or(&Value::Null), y.get(k).unwrap_or(&Value::Null))
            })
        }
        _ if a == b => Ok(()),
        _ => Err(format!("{path}: {a} vs {b}")),
    }
}

/// Compares every step's result; errors only need to agree on being errors.
pub fn compare_all(spec: &Value, expected: &[Value], got: &[Value]) {
    assert_eq!(expected.len(), got.len());
    let mut failures = Vec::new();
    let mut errors = 0;
    for (i, (e, g)) in expected.iter().zip(got).enumerate() {
        if e.get("error").is_some() || g.get("error").is_some() {
            errors += 1;
            if e.get("error").is_none() || g.get("error").is_none() {
                failures.push(format!("step {i} {}: error mismatch\n  chromadb: {e}\n  chromalite: {g}", spec[i]));
            }
            continue;
        }
        if let Err(why) = same("$", e, g) {
            failures.push(format!("step {i} {}: {why}", spec[i]));
        }
    }
    assert!(failures.is_empty(), "{} mismatches:\n{}", failures.len(), failures.join("\n"));
    // Guard against a vacuous pass: the spec is built so that every read succeeds.
    assert_eq!(errors, 0, "reads failed on both sides: {expected:?}");
}
