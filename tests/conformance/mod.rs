//! The cross-backend conformance suite.
//!
//! `fixtures/conformance/cases.json` holds scenarios that `fixtures/gen/make_expected.py` ran
//! against Python chromadb 1.5.9, step by step, recording each result or error kind. This runner
//! replays every step against a [`VectorBackend`] and compares: ids and their order, documents,
//! metadatas (int and float kept apart), embeddings and distances within 1e-4, error kinds.

use std::path::Path;

use chromalite_core::{wire, CreateCollection, DatabaseRef, Error, Include, ModifyCollection, Result, VectorBackend};
use serde_json::{json, Value};

/// Replays every scenario on a fresh backend from `make` (given an empty directory) and panics with
/// a list of every mismatch.
pub fn run_all(label: &str, make: &dyn Fn(&Path) -> Box<dyn VectorBackend>) {
    // CONFORMANCE_CASES points the runner at another file of the same format (e.g. scenarios being
    // explored with a scratch copy of make_expected.py); the committed file otherwise.
    let path = std::env::var("CONFORMANCE_CASES")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/conformance/cases.json").to_owned());
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    let cases: Value = serde_json::from_str(&text).expect("cases.json parses");
    let only = std::env::var("CONFORMANCE_SCENARIO").ok();
    let mut failures = Vec::new();
    let mut steps = 0usize;
    for scenario in cases["scenarios"].as_array().expect("scenarios array") {
        let name = scenario["name"].as_str().unwrap_or("?");
        if only.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let backend = make(dir.path());
        for (i, step) in scenario["steps"].as_array().expect("steps").iter().enumerate() {
            steps += 1;
            let got = run_step(backend.as_ref(), step);
            if let Err(why) = compare(step, &got) {
                failures.push(format!("{name}[{i}] {}: {why}", step["op"].as_str().unwrap_or("?")));
            }
        }
        drop(backend);
    }
    eprintln!("conformance[{label}]: {steps} steps, {} mismatches", failures.len());
    assert!(steps > 0, "no conformance steps ran");
    assert!(failures.is_empty(), "conformance[{label}] mismatches:\n{}", failures.join("\n"));
}

/// The step's tenant and database (the defaults when it names none).
fn db(step: &Value) -> DatabaseRef {
    let mut d = DatabaseRef::default();
    if let Some(t) = step.get("tenant").and_then(Value::as_str) {
        t.clone_into(&mut d.tenant);
    }
    if let Some(n) = step.get("database").and_then(Value::as_str) {
        n.clone_into(&mut d.database);
    }
    d
}

/// A tenant or database op: the tenant named by the step (default tenant otherwise).
fn tenant_of(step: &Value) -> String {
    step.get("tenant").and_then(Value::as_str).unwrap_or(chromalite_core::DEFAULT_TENANT).to_owned()
}

fn collection_json(info: &chromalite_core::CollectionInfo) -> Value {
    json!({"name": info.name, "metadata": info.metadata.as_ref().map(chromalite_core::metadata::metadata_to_json)})
}

fn run_step(b: &dyn VectorBackend, step: &Value) -> Result<Value> {
    let name = || step["name"].as_str().unwrap_or_default().to_owned();
    let present = |k: &str| step.get(k).filter(|v| !v.is_null());
    let db = db(step);
    match step["op"].as_str().unwrap_or_default() {
        "create_tenant" => b.create_tenant(&name()).map(|()| Value::Null),
        "get_tenant" => b.get_tenant(&name()).map(|t| json!({"name": t.name})),
        "create_database" => b.create_database(&DatabaseRef::new(tenant_of(step), name())).map(|()| Value::Null),
        "get_database" => b
            .get_database(&DatabaseRef::new(tenant_of(step), name()))
            .map(|d| json!({"name": d.name, "tenant": d.tenant})),
        "list_databases" => {
            let limit = wire::non_negative(step, "limit")?;
            let offset = wire::non_negative(step, "offset")?.unwrap_or(0);
            let mut names: Vec<String> =
                b.list_databases(&tenant_of(step), limit, offset)?.into_iter().map(|d| d.name).collect();
            names.sort();
            Ok(json!(names))
        }
        "delete_database" => b.delete_database(&DatabaseRef::new(tenant_of(step), name())).map(|()| Value::Null),
        "get_collection_config" => b.get_collection(&db, &name()).map(|c| {
            let h = &c.config.hnsw;
            let mut v = collection_json(&c);
            v["hnsw"] = json!({
                "space": h.space.as_str(), "ef_construction": h.ef_construction, "ef_search": h.ef_search,
                "max_neighbors": h.max_neighbors, "resize_factor": h.resize_factor, "sync_threshold": h.sync_threshold,
            });
            v
        }),
        "modify_configuration" => {
            let req = ModifyCollection {
                new_configuration: present("configuration").cloned(),
                ..ModifyCollection::default()
            };
            b.modify_collection(&db, &name(), &req).map(|()| Value::Null)
        }
        "create_collection" => {
            let req = CreateCollection {
                name: name(),
                metadata: present("metadata").map(wire::collection_metadata).transpose()?,
                configuration: present("configuration").cloned(),
                get_or_create: step["get_or_create"].as_bool().unwrap_or(false),
            };
            b.create_collection(&db, &req).map(|c| collection_json(&c))
        }
        "get_collection" => b.get_collection(&db, &name()).map(|c| collection_json(&c)),
        "delete_collection" => b.delete_collection(&db, &name()).map(|()| Value::Null),
        "list_collections" => {
            let limit = wire::non_negative(step, "limit")?;
            let cols = b.list_collections(&db, limit, wire::non_negative(step, "offset")?.unwrap_or(0))?;
            Ok(json!(cols.iter().map(|c| c.name.clone()).collect::<Vec<_>>()))
        }
        "count_collections" => b.count_collections(&db).map(|n| json!(n)),
        "modify_collection" => {
            let req = ModifyCollection {
                new_name: present("new_name").and_then(Value::as_str).map(str::to_owned),
                new_metadata: present("new_metadata").map(wire::modify_metadata).transpose()?,
                new_configuration: None,
            };
            b.modify_collection(&db, &name(), &req).map(|()| Value::Null)
        }
        op => record_step(b, op, step),
    }
}

fn record_step(b: &dyn VectorBackend, op: &str, step: &Value) -> Result<Value> {
    let col = b.get_collection(&db(step), step["collection"].as_str().unwrap_or_default())?;
    match op {
        "add" => b.add(&col, &wire::record_batch(step)?).map(|()| Value::Null),
        "upsert" => b.upsert(&col, &wire::record_batch(step)?).map(|()| Value::Null),
        "update" => b.update(&col, &wire::record_batch(step)?).map(|()| Value::Null),
        "delete" => b.delete_records(&col, &wire::delete_request(step)?).map(|n| json!({"deleted": n})),
        "get" => b.get(&col, &wire::get_request(step)?).map(|r| r.to_json()),
        "query" => b.query(&col, &wire::query_request(step)?).map(|r| r.to_json()),
        "count" => b.count(&col).map(|n| json!(n)),
        "peek" => b.peek(&col, wire::non_negative(step, "limit")?.unwrap_or(10)).map(|r| r.to_json()),
        other => Err(Error::Internal(format!("unknown conformance op {other}"))),
    }
}

fn compare(step: &Value, got: &Result<Value>) -> std::result::Result<(), String> {
    let expect = &step["expect"];
    match (expect.get("error"), got) {
        (Some(e), Err(err)) => {
            let kind = e["kind"].as_str().unwrap_or_default();
            if kind == err.kind().as_str() {
                Ok(())
            } else {
                Err(format!("expected error {kind} ({}), got {} ({err})", e["message"], err.kind()))
            }
        }
        (Some(e), Ok(v)) => Err(format!("expected error {} ({}), got ok {}", e["kind"], e["message"], short(v))),
        (None, Err(err)) => Err(format!("expected ok {}, got error {} ({err})", short(&expect["ok"]), err.kind())),
        (None, Ok(v)) => {
            let mut want = expect["ok"].clone();
            let mut have = v.clone();
            if step["unordered"].as_bool().unwrap_or(false) {
                // chromadb orders collections by their random UUID: only membership (or, for a
                // partial page, the page size) is reproducible.
                if let (Some(n), Some(items)) = (want.as_u64(), have.as_array()) {
                    return if items.len() as u64 == n {
                        Ok(())
                    } else {
                        Err(format!("expected {n} names, got {}", short(&have)))
                    };
                }
                for v in [&mut want, &mut have] {
                    if let Value::Array(items) = v {
                        items.sort_by_key(Value::to_string);
                    }
                }
            }
            if step["unordered_ties"].as_bool().unwrap_or(false) {
                sort_ids(&mut want);
                sort_ids(&mut have);
            }
            normalise_include(&mut want);
            normalise_include(&mut have);
            same(&want, &have, "$")
                .map_err(|why| format!("{why}\n    expected {}\n    got      {}", short(&want), short(&have)))
        }
    }
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 600 {
        format!("{}...", &s[..s.char_indices().nth(600).map_or(s.len(), |(i, _)| i)])
    } else {
        s
    }
}

/// Include lists compare as sets (chromadb echoes them in the caller's order).
fn normalise_include(v: &mut Value) {
    if let Some(Value::Array(items)) = v.get_mut("include") {
        items.sort_by_key(Value::to_string);
        let _ = Include::Documents;
    }
}

fn sort_ids(v: &mut Value) {
    if let Some(Value::Array(per_query)) = v.get_mut("ids") {
        for q in per_query {
            if let Value::Array(ids) = q {
                ids.sort_by_key(Value::to_string);
            }
        }
    }
    for k in ["distances", "documents", "metadatas", "embeddings"] {
        if let Some(x) = v.get_mut(k) {
            *x = Value::Null;
        }
    }
}

#[path = "compare.rs"]
mod compare;
use compare::same;
