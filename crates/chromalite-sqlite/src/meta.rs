//! The metadata segment: `embeddings`, `embedding_metadata`, `embedding_metadata_array` and the
//! trigram FTS table, written by applying log entries exactly as Chroma's `SQLite` writer does.

use std::collections::HashMap;

use chromalite_core::metadata::{Metadata, MetadataArray, MetadataValue, UpdateMetadata};
use rusqlite::types::{Value as SqlValue, ValueRef};
use rusqlite::{params, Connection, OptionalExtension};

use crate::log::{Entry, Op, DOCUMENT_KEY};

type Sql<T> = rusqlite::Result<T>;

/// The position (`max_seq_id`) of a segment; 0 when it has none.
pub fn max_seq_id(c: &Connection, segment_id: &str) -> Sql<i64> {
    let v: Option<SqlValue> =
        c.query_row("SELECT seq_id FROM max_seq_id WHERE segment_id = ?1", [segment_id], |r| r.get(0)).optional()?;
    Ok(v.map_or(0, |v| seq_from_sql(&v)))
}

/// Reads a seq id stored as an integer, or as the 8-byte big-endian blob of old Chroma versions.
#[must_use]
pub fn seq_from_sql(v: &SqlValue) -> i64 {
    match v {
        SqlValue::Integer(i) => *i,
        SqlValue::Blob(b) if b.len() == 8 => {
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            i64::from_be_bytes(a)
        }
        _ => 0,
    }
}

pub fn set_max_seq_id(c: &Connection, segment_id: &str, seq_id: i64) -> Sql<()> {
    c.prepare_cached(
        "INSERT INTO max_seq_id (segment_id, seq_id) VALUES (?1, ?2) ON CONFLICT(segment_id) DO UPDATE SET seq_id = excluded.seq_id",
    )?
    .execute(params![segment_id, seq_id])
    .map(drop)
}

/// A change to the full-text table, applied after the batch's other writes.
enum FtsOp<'a> {
    Delete(i64),
    Insert(i64, &'a str),
}

/// Applies log entries (in log order) to the metadata segment and records its new position.
/// `note_key(key, type)` is told every metadata key written, for the collection schema.
///
/// Full-text changes are applied last, in order. `SQLite` opens a statement savepoint for every
/// multi-index insert inside a transaction, and FTS5 flushes its pending terms to disk (and merges
/// segments) at each savepoint once it has joined the transaction; touching the FTS table only
/// after the other tables keeps its terms in memory until commit, which made ingest of documented
/// records several times faster. The final table contents are the same.
pub fn apply(
    c: &Connection,
    segment_id: &str,
    entries: &[(i64, &Entry)],
    note_key: &mut dyn FnMut(&str, &str),
) -> Sql<()> {
    let Some(max) = entries.iter().map(|(s, _)| *s).max() else { return Ok(()) };
    let mut fts = Vec::new();
    for (seq, e) in entries {
        apply_one(c, segment_id, *seq, e, note_key, &mut fts)?;
    }
    for op in fts {
        match op {
            FtsOp::Delete(id) => delete_document(c, id)?,
            FtsOp::Insert(id, doc) => {
                c.prepare_cached("INSERT INTO embedding_fulltext_search (rowid, string_value) VALUES (?1, ?2)")?
                    .execute(params![id, doc])?;
            }
        }
    }
    set_max_seq_id(c, segment_id, max)
}

fn apply_one<'e>(
    c: &Connection,
    seg: &str,
    seq: i64,
    e: &'e Entry,
    note_key: &mut dyn FnMut(&str, &str),
    fts: &mut Vec<FtsOp<'e>>,
) -> Sql<()> {
    let offset_id: Option<i64> = match e.op {
        Op::Add => c
            .prepare_cached(
                "INSERT INTO embeddings (segment_id, embedding_id, seq_id) VALUES (?1, ?2, ?3) \
                 ON CONFLICT(segment_id, embedding_id) DO NOTHING RETURNING id",
            )?
            .query_row(params![seg, e.id, seq], |r| r.get(0))
            .optional()?,
        Op::Update => c
            .prepare_cached(
                "UPDATE embeddings SET seq_id = ?3 WHERE segment_id = ?1 AND embedding_id = ?2 RETURNING id",
            )?
            .query_row(params![seg, e.id, seq], |r| r.get(0))
            .optional()?,
        Op::Upsert => c
            .prepare_cached(
                "INSERT INTO embeddings (segment_id, embedding_id, seq_id) VALUES (?1, ?2, ?3) \
                 ON CONFLICT(segment_id, embedding_id) DO UPDATE SET seq_id = excluded.seq_id RETURNING id",
            )?
            .query_row(params![seg, e.id, seq], |r| r.get(0))
            .optional()?,
        Op::Delete => {
            let id: Option<i64> = c
                .prepare_cached("DELETE FROM embeddings WHERE segment_id = ?1 AND embedding_id = ?2 RETURNING id")?
                .query_row(params![seg, e.id], |r| r.get(0))
                .optional()?;
            if let Some(id) = id {
                c.prepare_cached("DELETE FROM embedding_metadata WHERE id = ?1")?.execute([id])?;
                c.prepare_cached("DELETE FROM embedding_metadata_array WHERE id = ?1")?.execute([id])?;
                fts.push(FtsOp::Delete(id));
            }
            return Ok(());
        }
    };
    let Some(id) = offset_id else { return Ok(()) };
    // A row just created by `add` has no metadata yet, so there is nothing to delete first.
    let fresh = e.op == Op::Add;
    write_metadata(c, id, &e.metadata, e.document.as_deref(), fresh, note_key)?;
    if let Some(doc) = &e.document {
        if e.op != Op::Add {
            fts.push(FtsOp::Delete(id));
        }
        fts.push(FtsOp::Insert(id, doc));
    }
    Ok(())
}

fn delete_document(c: &Connection, id: i64) -> Sql<()> {
    c.prepare_cached("DELETE FROM embedding_fulltext_search WHERE rowid = ?1")?.execute([id]).map(drop)
}

/// Sets, replaces or removes metadata keys; a key is stored either as a scalar row or as array
/// element rows, so writing one form removes the other.
fn write_metadata(
    c: &Connection,
    id: i64,
    meta: &UpdateMetadata,
    doc: Option<&str>,
    fresh: bool,
    note_key: &mut dyn FnMut(&str, &str),
) -> Sql<()> {
    let mut upsert = c.prepare_cached(
        "INSERT INTO embedding_metadata (id, key, string_value, int_value, float_value, bool_value) VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
         ON CONFLICT(id, key) DO UPDATE SET string_value = excluded.string_value, int_value = excluded.int_value, \
         float_value = excluded.float_value, bool_value = excluded.bool_value",
    )?;
    let mut del_scalar = c.prepare_cached("DELETE FROM embedding_metadata WHERE id = ?1 AND key = ?2")?;
    let mut del_array = c.prepare_cached("DELETE FROM embedding_metadata_array WHERE id = ?1 AND key = ?2")?;
    let mut ins_array = c.prepare_cached(
        "INSERT INTO embedding_metadata_array (id, key, string_value, int_value, float_value, bool_value) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    let doc_value = doc.map(|d| MetadataValue::Str(d.to_owned()));
    let doc_entry = doc_value.as_ref().map(|v| (DOCUMENT_KEY, Some(v)));
    for (key, value) in meta.iter().map(|(k, v)| (k.as_str(), v.as_ref())).chain(doc_entry) {
        match value {
            None => {
                del_scalar.execute(params![id, key])?;
                del_array.execute(params![id, key])?;
            }
            Some(MetadataValue::Array(arr)) => {
                note_key(key, array_type(arr));
                if !fresh {
                    del_scalar.execute(params![id, key])?;
                    del_array.execute(params![id, key])?;
                }
                for s in arr.scalars() {
                    let v: MetadataValue = s.into();
                    let (sv, iv, fv, bv) = columns(&v);
                    ins_array.execute(params![id, key, sv, iv, fv, bv])?;
                }
            }
            Some(v) => {
                note_key(key, scalar_type(v));
                let (sv, iv, fv, bv) = columns(v);
                upsert.execute(params![id, key, sv, iv, fv, bv])?;
                if !fresh {
                    del_array.execute(params![id, key])?;
                }
            }
        }
    }
    Ok(())
}

fn columns(v: &MetadataValue) -> (Option<&str>, Option<i64>, Option<f64>, Option<bool>) {
    match v {
        MetadataValue::Str(s) => (Some(s.as_str()), None, None, None),
        MetadataValue::Int(i) => (None, Some(*i), None, None),
        MetadataValue::Float(f) => (None, None, Some(*f), None),
        MetadataValue::Bool(b) => (None, None, None, Some(*b)),
        MetadataValue::Array(_) => (None, None, None, None),
    }
}

fn scalar_type(v: &MetadataValue) -> &'static str {
    match v {
        MetadataValue::Str(_) => "string",
        MetadataValue::Int(_) => "int",
        MetadataValue::Float(_) => "float",
        MetadataValue::Bool(_) => "bool",
        MetadataValue::Array(a) => array_type(a),
    }
}

fn array_type(a: &MetadataArray) -> &'static str {
    match a {
        MetadataArray::Str(_) => "string",
        MetadataArray::Int(_) => "int",
        MetadataArray::Float(_) => "float",
        MetadataArray::Bool(_) => "bool",
    }
}

/// Number of records in the segment.
pub fn count(c: &Connection, segment_id: &str) -> Sql<usize> {
    let n: i64 = c.query_row("SELECT COUNT(*) FROM embeddings WHERE segment_id = ?1", [segment_id], |r| r.get(0))?;
    Ok(usize::try_from(n).unwrap_or(0))
}

/// A record's metadata and document as stored.
#[derive(Debug, Default, Clone)]
pub struct Stored {
    pub metadata: Option<Metadata>,
    pub document: Option<String>,
}

/// Loads metadata and documents of the given offset ids. With `only_document`, metadata rows
/// other than the document are skipped.
pub fn hydrate(c: &Connection, offset_ids: &[i64], only_document: bool) -> Sql<HashMap<i64, Stored>> {
    let ids_json = serde_json::to_string(offset_ids).unwrap_or_else(|_| "[]".into());
    let mut out: HashMap<i64, Stored> = HashMap::with_capacity(offset_ids.len());
    let sql = if only_document {
        "SELECT id, key, string_value, int_value, float_value, bool_value FROM embedding_metadata \
         WHERE key = 'chroma:document' AND id IN (SELECT value FROM json_each(?1))"
    } else {
        "SELECT id, key, string_value, int_value, float_value, bool_value FROM embedding_metadata WHERE id IN (SELECT value FROM json_each(?1))"
    };
    let mut stmt = c.prepare_cached(sql)?;
    let mut rows = stmt.query([&ids_json])?;
    while let Some(r) = rows.next()? {
        let id: i64 = r.get(0)?;
        let key: String = r.get(1)?;
        let Some(value) = scalar_from_row(r, 2)? else { continue };
        let rec = out.entry(id).or_default();
        match value {
            MetadataValue::Str(s) if key == DOCUMENT_KEY => rec.document = Some(s),
            v => {
                rec.metadata.get_or_insert_with(Metadata::new).insert(key, v);
            }
        }
    }
    if !only_document {
        hydrate_arrays(c, &ids_json, &mut out)?;
    }
    Ok(out)
}

fn hydrate_arrays(c: &Connection, ids_json: &str, out: &mut HashMap<i64, Stored>) -> Sql<()> {
    let mut stmt = c.prepare_cached(
        "SELECT id, key, string_value, int_value, float_value, bool_value FROM embedding_metadata_array \
         WHERE id IN (SELECT value FROM json_each(?1)) ORDER BY rowid",
    )?;
    let mut rows = stmt.query([ids_json])?;
    let mut arrays: HashMap<(i64, String), Vec<MetadataValue>> = HashMap::new();
    let mut order: Vec<(i64, String)> = Vec::new();
    while let Some(r) = rows.next()? {
        let id: i64 = r.get(0)?;
        let key: String = r.get(1)?;
        let Some(value) = scalar_from_row(r, 2)? else { continue };
        let slot = arrays.entry((id, key.clone())).or_insert_with(|| {
            order.push((id, key));
            Vec::new()
        });
        slot.push(value);
    }
    for k in order {
        let items = arrays.remove(&k).unwrap_or_default();
        if let Some(arr) = array_from(items) {
            out.entry(k.0)
                .or_default()
                .metadata
                .get_or_insert_with(Metadata::new)
                .insert(k.1, MetadataValue::Array(arr));
        }
    }
    Ok(())
}

/// Builds an array from element values, using the first element's type (as Chroma does).
fn array_from(items: Vec<MetadataValue>) -> Option<MetadataArray> {
    Some(match items.first()? {
        MetadataValue::Str(_) => MetadataArray::Str(
            items.into_iter().filter_map(|v| if let MetadataValue::Str(s) = v { Some(s) } else { None }).collect(),
        ),
        MetadataValue::Int(_) => MetadataArray::Int(
            items.into_iter().filter_map(|v| if let MetadataValue::Int(i) = v { Some(i) } else { None }).collect(),
        ),
        MetadataValue::Float(_) => MetadataArray::Float(
            items.into_iter().filter_map(|v| if let MetadataValue::Float(f) = v { Some(f) } else { None }).collect(),
        ),
        MetadataValue::Bool(_) => MetadataArray::Bool(
            items.into_iter().filter_map(|v| if let MetadataValue::Bool(b) = v { Some(b) } else { None }).collect(),
        ),
        MetadataValue::Array(_) => return None,
    })
}

/// The value of columns `start..start+4` (string, int, float, bool): the first non-NULL wins.
fn scalar_from_row(r: &rusqlite::Row<'_>, start: usize) -> Sql<Option<MetadataValue>> {
    if let ValueRef::Text(t) = r.get_ref(start)? {
        return Ok(Some(MetadataValue::Str(String::from_utf8_lossy(t).into_owned())));
    }
    if let Some(i) = r.get::<_, Option<i64>>(start + 1)? {
        return Ok(Some(MetadataValue::Int(i)));
    }
    if let Some(f) = r.get::<_, Option<f64>>(start + 2)? {
        return Ok(Some(MetadataValue::Float(f)));
    }
    Ok(r.get::<_, Option<bool>>(start + 3)?.map(MetadataValue::Bool))
}

/// Offset id and user id of every record in the segment whose user id is in `ids`.
pub fn offsets_of(c: &Connection, segment_id: &str, ids: &[String]) -> Sql<Vec<(i64, String)>> {
    let ids_json = serde_json::to_string(ids).unwrap_or_else(|_| "[]".into());
    let mut stmt = c.prepare_cached(
        "SELECT id, embedding_id FROM embeddings WHERE segment_id = ?1 AND embedding_id IN (SELECT value FROM json_each(?2)) ORDER BY id",
    )?;
    let rows = stmt.query_map(params![segment_id, ids_json], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}
