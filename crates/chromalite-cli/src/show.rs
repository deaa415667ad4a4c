//! `collections`, `get` and `query`: JSON in chromadb's result shape, or readable text.

use std::path::Path;

use chromalite::core::wire;
use chromalite::{Client, GetResult, QueryResult};
use serde_json::{json, Value};

use crate::args::ReadOpts;
use crate::embed::{EmbedOpts, Lazy};
use crate::{CliError, CliResult};

fn parse_json(what: &str, text: &str) -> CliResult<Value> {
    serde_json::from_str(text).map_err(|e| CliError::Usage(format!("{what} is not valid JSON: {e}")))
}

/// The read options as a chromadb-style argument object, so the same parser as every other
/// entry point applies.
fn request_object(read: &ReadOpts) -> CliResult<Value> {
    let mut obj = json!({});
    if let Some(ids) = &read.ids {
        obj["ids"] = json!(ids);
    }
    if let Some(w) = &read.where_ {
        obj["where"] = parse_json("--where", w)?;
    }
    if let Some(w) = &read.where_document {
        obj["where_document"] = parse_json("--where-document", w)?;
    }
    if let Some(list) = &read.include {
        let items: Vec<&str> = list.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
        obj["include"] = json!(items);
    }
    Ok(obj)
}

/// `collections [--json]`.
pub fn collections(client: &Client, json_out: bool) -> CliResult {
    let cols = client.list_collections()?;
    if json_out {
        let items: Vec<Value> = cols
            .iter()
            .map(|c| {
                let info = c.info();
                json!({
                    "name": info.name,
                    "id": info.id,
                    "metadata": info.metadata.as_ref().map(chromalite::core::metadata::metadata_to_json),
                    "configuration_json": info.config.to_json(),
                })
            })
            .collect();
        outln!("{}", Value::Array(items));
    } else {
        for c in cols {
            outln!("{}", c.name());
        }
    }
    Ok(())
}

/// `get NAME ...`.
pub fn get(client: &Client, name: &str, limit: Option<usize>, offset: Option<usize>, read: &ReadOpts) -> CliResult {
    let mut obj = request_object(read)?;
    obj["limit"] = json!(limit);
    obj["offset"] = json!(offset);
    let req = wire::get_request(&obj)?;
    let col = client.get_collection(name)?;
    let result = col.get_request(&req)?;
    if read.json {
        outln!("{}", chroma_shape(result.to_json()));
    } else {
        print_get(&result)?;
    }
    Ok(())
}

/// `query NAME --embeddings FILE ...`.
pub fn query(
    client: &Client,
    name: &str,
    file: Option<&Path>,
    n_results: usize,
    read: &ReadOpts,
    embed: &EmbedOpts,
) -> CliResult {
    let col = client.get_collection(name)?;
    let embeddings = if let Some(file) = file {
        let text = std::fs::read_to_string(file)
            .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", file.display())))?;
        let embeddings = parse_json("--embeddings file", &text)?;
        // A single vector is accepted as a one-query batch.
        if embeddings.as_array().and_then(|a| a.first()).is_some_and(Value::is_number) {
            json!([embeddings])
        } else {
            embeddings
        }
    } else {
        if !crate::embed::applies(&col, embed)? {
            return Err(CliError::Usage(format!(
                "collection {name} has no embedding function to embed --text with; use --embeddings, or --embedding-function default if its vectors are all-MiniLM-L6-v2's"
            )));
        }
        let texts: Vec<&str> = embed.texts.iter().map(String::as_str).collect();
        json!(Lazy::new(embed).embed(&texts)?)
    };
    let mut obj = request_object(read)?;
    obj["query_embeddings"] = embeddings;
    obj["n_results"] = json!(n_results);
    let req = wire::query_request(&obj)?;
    let result = col.query_request(&req)?;
    if read.json {
        outln!("{}", chroma_shape(result.to_json()));
    } else {
        print_query(&result)?;
    }
    Ok(())
}

/// A result's JSON with chromadb's `included` key beside `include` (the CLI contract's name), so
/// the output has every key of the dict chromadb's `collection.get` / `query` return.
fn chroma_shape(mut v: Value) -> Value {
    v["included"] = v["include"].clone();
    v
}

/// A document cut to one readable line.
pub fn snippet(doc: Option<&str>, width: usize) -> String {
    let Some(doc) = doc else { return "-".into() };
    let one_line: String = doc.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= width {
        one_line
    } else {
        format!("{}…", one_line.chars().take(width.saturating_sub(1)).collect::<String>())
    }
}

fn metadata_text(m: Option<&chromalite::Metadata>) -> String {
    m.map_or_else(|| "-".into(), |m| chromalite::core::metadata::metadata_to_json(m).to_string())
}

fn print_get(r: &GetResult) -> CliResult {
    for (i, id) in r.ids.iter().enumerate() {
        let doc = r.documents.as_ref().and_then(|d| d[i].as_deref());
        let meta = r.metadatas.as_ref().and_then(|m| m[i].as_ref());
        outln!("{id}\t{}\t{}", snippet(doc, 70), metadata_text(meta));
        if let Some(e) = &r.embeddings {
            outln!("  embedding[{}] {:?}…", e[i].len(), &e[i][..e[i].len().min(4)]);
        }
    }
    outln!("({} records)", r.ids.len());
    Ok(())
}

fn print_query(r: &QueryResult) -> CliResult {
    for (q, ids) in r.ids.iter().enumerate() {
        outln!("query {q}:");
        for (i, id) in ids.iter().enumerate() {
            let dist = r.distances.as_ref().map_or(String::from("-"), |d| format!("{:.4}", d[q][i]));
            let doc = r.documents.as_ref().and_then(|d| d[q][i].as_deref());
            outln!("  {:>2}. {id}  {dist}  {}", i + 1, snippet(doc, 70));
        }
    }
    Ok(())
}
