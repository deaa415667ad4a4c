//! `import NAME --file records.jsonl`: all or nothing for bad input.
//!
//! The whole file is checked first (JSON, id, embedding, document, metadata, one dimension, the
//! collection's dimension, no id twice) without writing anything, so a bad line exits 1 naming
//! the line and leaves the store as it was: no records, and no collection created for them. Only
//! then are the records upserted in batches, each `committed N` line printed once its batch is
//! durable. A failure of the store itself during that pass (a full disk, another writer) says how
//! many records were committed; importing the same file again is safe (records are upserted).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, IsTerminal};
use std::path::Path;
use std::time::Instant;

use chromalite::core::validate::{self, WriteOp};
use chromalite::core::{wire, ErrorKind, RecordBatch};
use chromalite::{Client, Collection};
use serde_json::Value;

use crate::embed::{EmbedOpts, Lazy};
use crate::records::collection_config;
use crate::{CliError, CliResult};

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

/// The records of `lines` as one write batch (embeddings missing for records still to be embedded).
fn to_batch(lines: Vec<ImportLine>) -> CliResult<RecordBatch> {
    let n = lines.len();
    let mut batch = RecordBatch::default();
    let (mut embs, mut docs, mut metas) = (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
    for (id, e, d, m) in lines {
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
    Ok(batch)
}

/// Calls `f` with each non-blank line and its 1-based number; the byte count read so far.
fn each_line(file: &Path, mut f: impl FnMut(&str, usize, u64) -> CliResult) -> CliResult {
    let reader =
        std::fs::File::open(file).map_err(|e| CliError::Usage(format!("cannot open {}: {e}", file.display())))?;
    let mut bytes_read = 0u64;
    for (i, line) in BufReader::new(reader).lines().enumerate() {
        let line = line.map_err(|e| CliError::Usage(format!("cannot read {}: {e}", file.display())))?;
        bytes_read += line.len() as u64 + 1;
        if !line.trim().is_empty() {
            f(&line, i + 1, bytes_read)?;
        }
    }
    Ok(())
}

/// The first pass: every line checked as the store would check it, nothing written. Returns the
/// number of records.
fn check_file(file: &Path, mut dimension: Option<usize>, can_embed: &Result<(), String>) -> CliResult<usize> {
    let mut first_line: HashMap<String, usize> = HashMap::new();
    each_line(file, |line, lineno, _| {
        let bad = |msg: String| CliError::Usage(format!("line {lineno}: {msg}"));
        let record = parse_line(line, lineno, can_embed)?;
        if let Some(earlier) = first_line.insert(record.0.clone(), lineno) {
            return Err(bad(format!("id {:?} is already on line {earlier}", record.0)));
        }
        let to_embed = record.1.is_none();
        let len = record.1.as_ref().map(Vec::len);
        let mut batch = to_batch(vec![record]).map_err(|e| bad(e.message()))?;
        if to_embed {
            // Checked with a stand-in vector; the model's output has the dimension it has.
            batch.embeddings = Some(vec![vec![0.0]]);
        }
        validate::record_batch(&batch, WriteOp::Upsert, if to_embed { None } else { dimension })
            .map_err(|e| bad(e.to_string()))?;
        dimension = dimension.or(len);
        Ok(())
    })?;
    Ok(first_line.len())
}

/// Whether records without an embedding can be embedded: by the existing collection's function,
/// or by the one `--embedding-function` records on the collection this import creates.
fn embeds(existing: Option<&Collection>, name: &str, embed: &EmbedOpts) -> Result<(), String> {
    let applies = match existing {
        Some(col) => crate::embed::applies(col, embed),
        None => embed.function.as_deref().map_or(Ok(false), |f| crate::embed::function_entry(f).map(|e| !e.is_null())),
    };
    match applies {
        Ok(true) => Ok(()),
        Ok(false) => Err(format!(
            "collection {name} has no embedding function; give embeddings, or create it with --embedding-function default"
        )),
        Err(e) => Err(e.message()),
    }
}

/// `import NAME --file F [--batch-size N] [--space S] [--embedding-function F]`.
pub fn run(
    client: &Client,
    name: &str,
    file: &Path,
    batch_size: usize,
    space: Option<&str>,
    embed: &EmbedOpts,
) -> CliResult {
    let total_bytes =
        std::fs::metadata(file).map_err(|e| CliError::Usage(format!("cannot open {}: {e}", file.display())))?.len();
    let config = collection_config(space, embed)?;
    let existing = match client.get_collection(name) {
        Ok(col) => Some(col),
        Err(e) if e.kind() == ErrorKind::NotFound => {
            validate::collection_name(name)?;
            None
        }
        Err(e) => return Err(e.into()),
    };
    let can_embed = embeds(existing.as_ref(), name, embed);
    let total = check_file(file, existing.as_ref().and_then(|c| c.info().dimension), &can_embed)?;

    let mut b = client.create_collection(name).get_or_create();
    if let Some(cfg) = config {
        b = b.configuration(cfg);
    }
    let col = b.run()?;
    let mut embedder = Lazy::new(embed);
    let progress = Progress { tty: std::io::stderr().is_terminal(), started: Instant::now(), total_bytes };
    let mut committed = 0usize;
    let mut pending: Vec<ImportLine> = Vec::with_capacity(batch_size);
    let written = each_line(file, |line, lineno, bytes_read| {
        pending.push(parse_line(line, lineno, &can_embed)?);
        if pending.len() >= batch_size {
            committed += write_batch(&col, &mut pending, &mut embedder)?;
            progress.report(committed, bytes_read);
        }
        Ok(())
    })
    .and_then(|()| {
        if !pending.is_empty() {
            committed += write_batch(&col, &mut pending, &mut embedder)?;
            progress.report(committed, total_bytes);
        }
        Ok(())
    });
    if progress.tty {
        eprintln!();
    }
    written.map_err(|e| {
        CliError::Context(
            Box::new(e),
            format!(
                "{committed} of {total} records were committed before this failure; importing the file again is safe (records are upserted)"
            ),
        )
    })?;
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
    col.upsert_batch(&to_batch(std::mem::take(pending))?)?;
    Ok(n)
}
