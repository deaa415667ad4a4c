//! `create`, `import`, `export` and `delete`.

use std::io::{BufRead, BufWriter, IsTerminal, Write};
use std::path::Path;
use std::time::Instant;

use chromalite::core::{wire, GetRequest, Include, RecordBatch};
use chromalite::{Client, Collection};
use serde_json::{json, Value};

use crate::args::ReadOpts;
use crate::embed::{EmbedOpts, Lazy};
use crate::{CliError, CliResult};

/// The configuration for `--space` and `--embedding-function`, if either was given.
fn collection_config(space: Option<&str>, embed: &EmbedOpts) -> CliResult<Option<Value>> {
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

/// Reports durable progress: `committed N` lines for scripts, a bar for people.
struct Progress {
    tty: bool,
    started: Instant,
    total_bytes: u64,
}

impl Progress {
    fn report(&self, committed: usize, bytes_read: u64) {
        if self.tty {
            let frac = if self.total_bytes == 0 { 1.0 } else { bytes_read as f64 / self.total_bytes as f64 };
            let filled = (frac * 30.0) as usize;
            let rate = committed as f64 / self.started.elapsed().as_secs_f64().max(1e-3);
            eprint!("\r[{}{}] {committed} records, {rate:.0}/s ", "#".repeat(filled), " ".repeat(30 - filled.min(30)));
        } else {
            eprintln!("committed {committed}");
        }
    }
}

/// One parsed line of an import file: id, embedding (`None`: embed the document), document, metadata.
type ImportLine = (String, Option<Vec<f32>>, Option<String>, Option<Value>);

/// `can_embed`: `Ok` when the collection's embedding function can embed documents here, else why not.
fn parse_line(line: &str, lineno: usize, can_embed: &Result<(), String>) -> CliResult<ImportLine> {
    let bad = |msg: String| CliError::Usage(format!("line {lineno}: {msg}"));
    let v: Value = serde_json::from_str(line).map_err(|e| bad(format!("not valid JSON: {e}")))?;
    let id = v["id"].as_str().ok_or_else(|| bad("missing string \"id\"".into()))?.to_owned();
    let emb = match v.get("embedding") {
        None | Some(Value::Null) => None,
        Some(e) => Some(wire::embedding(e).map_err(|e| bad(e.to_string()))?),
    };
    let doc = match v.get("document") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => return Err(bad(format!("\"document\" must be a string, got {other}"))),
    };
    if emb.is_none() {
        if doc.is_none() {
            return Err(bad("no \"embedding\" and no \"document\" to embed".into()));
        }
        can_embed.clone().map_err(|why| bad(format!("no \"embedding\": {why}")))?;
    }
    let meta = v.get("metadata").filter(|m| !m.is_null()).cloned();
    Ok((id, emb, doc, meta))
}

/// `import NAME --file F`: upserts records in batches; each `committed N` line is printed only
/// after the batch is durable. Records without an embedding have their document embedded, when
/// the collection has an embedding function; the model is loaded only if such a record comes.
pub fn import(
    client: &Client,
    name: &str,
    file: &Path,
    batch_size: usize,
    space: Option<&str>,
    embed: &EmbedOpts,
) -> CliResult {
    let f = std::fs::File::open(file).map_err(|e| CliError::Usage(format!("cannot open {}: {e}", file.display())))?;
    let total_bytes = f.metadata().map_or(0, |m| m.len());
    let mut b = client.create_collection(name).get_or_create();
    if let Some(cfg) = collection_config(space, embed)? {
        b = b.configuration(cfg);
    }
    let col = b.run()?;
    let can_embed = match crate::embed::applies(&col, embed) {
        Ok(true) => Ok(()),
        Ok(false) => Err(format!(
            "collection {name} has no embedding function; give embeddings, or create it with --embedding-function default"
        )),
        Err(e) => Err(e.message()),
    };
    let mut embedder = Lazy::new(embed);
    let progress = Progress { tty: std::io::stderr().is_terminal(), started: Instant::now(), total_bytes };
    let (mut committed, mut bytes_read) = (0usize, 0u64);
    let mut pending: Vec<ImportLine> = Vec::with_capacity(batch_size);
    for (i, line) in std::io::BufReader::new(f).lines().enumerate() {
        let line = line.map_err(|e| CliError::Usage(format!("cannot read {}: {e}", file.display())))?;
        bytes_read += line.len() as u64 + 1;
        if line.trim().is_empty() {
            continue;
        }
        pending.push(parse_line(&line, i + 1, &can_embed)?);
        if pending.len() >= batch_size {
            committed += write_batch(&col, &mut pending, &mut embedder)?;
            progress.report(committed, bytes_read);
        }
    }
    if !pending.is_empty() {
        committed += write_batch(&col, &mut pending, &mut embedder)?;
        progress.report(committed, bytes_read);
    }
    if progress.tty {
        eprintln!();
    }
    outln!("imported {committed} records into {name} in {:.2}s", progress.started.elapsed().as_secs_f64());
    Ok(())
}

fn write_batch(col: &Collection, pending: &mut Vec<ImportLine>, embedder: &mut Lazy<'_>) -> CliResult<usize> {
    let n = pending.len();
    // Only records without an embedding go through the model.
    let missing: Vec<usize> = (0..n).filter(|&i| pending[i].1.is_none()).collect();
    if !missing.is_empty() {
        let texts: Vec<&str> = missing.iter().map(|&i| pending[i].2.as_deref().unwrap_or_default()).collect();
        let vectors = embedder.embed(&texts)?;
        for (i, v) in missing.into_iter().zip(vectors) {
            pending[i].1 = Some(v);
        }
    }
    let mut batch = RecordBatch::default();
    let (mut embs, mut docs, mut metas) = (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
    for (id, e, d, m) in pending.drain(..) {
        batch.ids.push(id);
        embs.push(e.unwrap_or_default());
        docs.push(d);
        metas.push(
            m.map(|m| wire::strict_metadata(&m).map(|m| m.into_iter().map(|(k, v)| (k, Some(v))).collect()))
                .transpose()?,
        );
    }
    batch.embeddings = Some(embs);
    batch.documents = Some(docs).filter(|d: &Vec<Option<String>>| d.iter().any(Option::is_some));
    batch.metadatas = Some(metas).filter(|m| m.iter().any(Option::is_some));
    col.upsert_batch(&batch)?;
    Ok(n)
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

/// `delete NAME [--ids] [--where] [--where-document]`.
pub fn delete(client: &Client, name: &str, read: &ReadOpts) -> CliResult {
    let parse = |what: &str, t: &Option<String>| -> CliResult<Option<Value>> {
        t.as_deref()
            .map(|t| serde_json::from_str(t).map_err(|e| CliError::Usage(format!("{what} is not valid JSON: {e}"))))
            .transpose()
    };
    let col = client.get_collection(name)?;
    let before = col.count()?;
    col.delete(
        read.ids.clone(),
        parse("--where", &read.where_)?.map(Into::into),
        parse("--where-document", &read.where_document)?.map(Into::into),
    )?;
    outln!("deleted {}", before.saturating_sub(col.count()?));
    Ok(())
}
