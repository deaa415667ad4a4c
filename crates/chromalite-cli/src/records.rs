//! `create`, `export` and `delete` (`import` is in `crate::import`).

use std::io::{BufWriter, Write};
use std::path::Path;

use chromalite::core::{GetRequest, Include};
use chromalite::Client;
use serde_json::{json, Value};

use crate::args::ReadOpts;
use crate::embed::EmbedOpts;
use crate::{CliError, CliResult};

/// The configuration for `--space` and `--embedding-function`, if either was given.
pub fn collection_config(space: Option<&str>, embed: &EmbedOpts) -> CliResult<Option<Value>> {
    let mut cfg = space
        .map(|s| chromalite::Space::parse(s).map(|sp| json!({"hnsw": {"space": sp.as_str()}})))
        .transpose()
        .map_err(CliError::from)?;
    if let Some(f) = &embed.function {
        let entry = crate::embed::function_entry(f)?;
        if !entry.is_null() {
            cfg.get_or_insert_with(|| json!({}))["embedding_function"] = entry;
        }
    }
    Ok(cfg)
}

/// `create NAME [--space S] [--metadata JSON] [--embedding-function F]`.
pub fn create(
    client: &Client,
    name: &str,
    space: Option<&str>,
    metadata: Option<&str>,
    embed: &EmbedOpts,
) -> CliResult {
    let mut b = client.create_collection(name);
    if let Some(cfg) = collection_config(space, embed)? {
        b = b.configuration(cfg);
    }
    if let Some(m) = metadata {
        b = b.metadata(
            serde_json::from_str(m).map_err(|e| CliError::Usage(format!("--metadata is not valid JSON: {e}")))?,
        );
    }
    let col = b.run()?;
    outln!("created {} ({})", col.name(), col.id());
    Ok(())
}

/// `export NAME [--file F]`: every record as one JSON line, in storage order.
pub fn export(client: &Client, name: &str, file: Option<&Path>) -> CliResult {
    let col = client.get_collection(name)?;
    let out: Box<dyn Write> = match file {
        Some(p) => Box::new(
            std::fs::File::create(p).map_err(|e| CliError::Usage(format!("cannot create {}: {e}", p.display())))?,
        ),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut out = BufWriter::new(out);
    let include = vec![Include::Embeddings, Include::Documents, Include::Metadatas];
    let mut offset = 0;
    loop {
        let req = GetRequest { limit: Some(1000), offset, include: include.clone(), ..Default::default() };
        let page = col.get_request(&req)?;
        for (i, id) in page.ids.iter().enumerate() {
            let mut rec = json!({"id": id, "embedding": page.embeddings.as_ref().map(|e| &e[i])});
            if let Some(d) = page.documents.as_ref().and_then(|d| d[i].as_ref()) {
                rec["document"] = json!(d);
            }
            if let Some(m) = page.metadatas.as_ref().and_then(|m| m[i].as_ref()) {
                rec["metadata"] = chromalite::core::metadata::metadata_to_json(m);
            }
            writeln!(out, "{rec}").map_err(CliError::from)?;
        }
        offset += page.ids.len();
        if page.ids.len() < 1000 {
            break;
        }
    }
    out.flush().map_err(CliError::from)?;
    Ok(())
}

/// `delete NAME [--ids] [--where] [--where-document] [--limit N]`: prints `deleted N` with
/// chromadb's count (every id given when ids are the only criterion, missing ones included; the
/// records matched otherwise).
pub fn delete(client: &Client, name: &str, limit: Option<u32>, read: &ReadOpts) -> CliResult {
    let parse = |what: &str, t: &Option<String>| -> CliResult<Option<Value>> {
        t.as_deref()
            .map(|t| serde_json::from_str(t).map_err(|e| CliError::Usage(format!("{what} is not valid JSON: {e}"))))
            .transpose()
    };
    let col = client.get_collection(name)?;
    let mut req = col.delete();
    if let Some(ids) = &read.ids {
        req = req.ids(ids.iter().cloned());
    }
    if let Some(w) = parse("--where", &read.where_)? {
        req = req.where_(w);
    }
    if let Some(d) = parse("--where-document", &read.where_document)? {
        req = req.where_document(d);
    }
    if let Some(n) = limit {
        req = req.limit(n);
    }
    outln!("deleted {}", req.run()?);
    Ok(())
}
