//! The log (`embeddings_queue`): Chroma's encoding of write operations.
//!
//! Every write is appended here before any segment sees it; segments record the highest `seq_id`
//! they have applied (`max_seq_id`) and catch up from the log on open.

use chromalite_core::metadata::{MetadataValue, UpdateMetadata};
use chromalite_core::{Error, Result};
use rusqlite::types::ValueRef;
use rusqlite::{params, Connection, Row};

/// The metadata key under which the log carries a record's document.
pub const DOCUMENT_KEY: &str = "chroma:document";

/// A log operation, with Chroma's integer codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Add = 0,
    Update = 1,
    Upsert = 2,
    Delete = 3,
}

impl Op {
    pub(crate) fn from_code(code: i64) -> Option<Op> {
        Some(match code {
            0 => Op::Add,
            1 => Op::Update,
            2 => Op::Upsert,
            3 => Op::Delete,
            _ => return None,
        })
    }
}

/// One operation on one record.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub op: Op,
    pub id: String,
    pub vector: Option<Vec<f32>>,
    /// Keys to set (`Some`) or remove (`None`). Empty when the write carried no metadata.
    pub metadata: UpdateMetadata,
    pub document: Option<String>,
}

/// An entry read back with its position in the log.
#[derive(Debug, Clone, PartialEq)]
pub struct Logged {
    pub seq_id: i64,
    pub entry: Entry,
}

/// The topic naming a collection's entries; Chroma fixes the tenant/namespace parts to `default`.
#[must_use]
pub fn topic(collection_id: &str) -> String {
    format!("persistent://default/default/{collection_id}")
}

/// Little-endian `f32`s, Chroma's `FLOAT32` encoding.
#[must_use]
pub fn encode_vector(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn decode_vector(bytes: &[u8]) -> Option<Vec<f32>> {
    if !bytes.len().is_multiple_of(4) {
        return None;
    }
    Some(bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
}

/// The `metadata` column: the update map plus the document under [`DOCUMENT_KEY`].
#[must_use]
pub fn encode_metadata(e: &Entry) -> String {
    let mut obj = serde_json::Map::new();
    for (k, v) in &e.metadata {
        obj.insert(k.clone(), v.as_ref().map_or(serde_json::Value::Null, MetadataValue::to_json));
    }
    if let Some(doc) = &e.document {
        obj.insert(DOCUMENT_KEY.to_owned(), serde_json::Value::String(doc.clone()));
    }
    serde_json::Value::Object(obj).to_string()
}

fn decode_metadata(text: &str) -> std::result::Result<(UpdateMetadata, Option<String>), String> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let serde_json::Value::Object(obj) = v else {
        return Err("not a JSON object".into());
    };
    let mut meta = UpdateMetadata::new();
    let mut document = None;
    for (k, v) in obj {
        if k == DOCUMENT_KEY {
            match v {
                serde_json::Value::String(s) => document = Some(s),
                serde_json::Value::Null => {}
                other => return Err(format!("{DOCUMENT_KEY} is not a string: {other}")),
            }
        } else if v.is_null() {
            meta.insert(k, None);
        } else {
            meta.insert(k.clone(), Some(MetadataValue::from_json(&v).map_err(|e| format!("key {k}: {e}"))?));
        }
    }
    Ok((meta, document))
}

/// Appends entries for one collection; returns the `seq_id` of each, in order.
///
/// Runs inside the caller's transaction so the entries and their effect on the metadata segment
/// commit together.
pub fn append(c: &Connection, collection_id: &str, entries: &[Entry]) -> rusqlite::Result<Vec<i64>> {
    let topic = topic(collection_id);
    let mut stmt = c.prepare_cached(
        "INSERT INTO embeddings_queue (operation, topic, id, vector, encoding, metadata) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    let mut seqs = Vec::with_capacity(entries.len());
    for e in entries {
        let vector = e.vector.as_deref().map(encode_vector);
        let encoding = vector.as_ref().map(|_| "FLOAT32");
        stmt.execute(params![e.op as i64, topic, e.id, vector, encoding, encode_metadata(e)])?;
        seqs.push(c.last_insert_rowid());
    }
    Ok(seqs)
}

/// Reads a collection's entries with `seq_id > after`, oldest first.
pub fn read_after(c: &Connection, db_file: &str, collection_id: &str, after: i64) -> Result<Vec<Logged>> {
    let mut stmt = c
        .prepare_cached(
            "SELECT seq_id, operation, id, vector, encoding, metadata FROM embeddings_queue \
             WHERE topic = ?1 AND seq_id > ?2 ORDER BY seq_id",
        )
        .map_err(|e| Error::Internal(format!("reading log: {e}")))?;
    let mut rows =
        stmt.query(params![topic(collection_id), after]).map_err(|e| Error::Internal(format!("reading log: {e}")))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(|e| Error::Internal(format!("reading log: {e}")))? {
        out.push(decode_row(row, db_file)?);
    }
    Ok(out)
}

/// Whether the log holds entries of the collection newer than `after` (a range scan on the
/// primary key from `after`, so it costs nothing when the segment is current).
pub fn has_after(c: &Connection, collection_id: &str, after: i64) -> rusqlite::Result<bool> {
    c.prepare_cached("SELECT 1 FROM embeddings_queue WHERE seq_id > ?2 AND topic = ?1 LIMIT 1")?
        .exists(params![topic(collection_id), after])
}

/// Decodes one `embeddings_queue` row (columns `seq_id, operation, id, vector, encoding, metadata`).
pub fn decode_row(row: &Row<'_>, db_file: &str) -> Result<Logged> {
    let seq_id: i64 = row.get(0).map_err(|e| bad(db_file, "?", "seq_id", &e.to_string()))?;
    let field = |name: &str, detail: &str| bad(db_file, &seq_id.to_string(), name, detail);
    let code: i64 = row.get(1).map_err(|e| field("operation", &e.to_string()))?;
    let op = Op::from_code(code).ok_or_else(|| field("operation", &format!("unknown code {code}")))?;
    let id: String = row.get(2).map_err(|e| field("id", &e.to_string()))?;
    let vector = match row.get_ref(3).map_err(|e| field("vector", &e.to_string()))? {
        ValueRef::Null => None,
        ValueRef::Blob(b) => {
            let encoding: Option<String> = row.get(4).map_err(|e| field("encoding", &e.to_string()))?;
            match encoding.as_deref() {
                Some("FLOAT32") | None => {
                    Some(decode_vector(b).ok_or_else(|| field("vector", "length is not a multiple of 4"))?)
                }
                Some(other) => return Err(field("encoding", &format!("unsupported encoding {other}"))),
            }
        }
        _ => return Err(field("vector", "not a blob")),
    };
    let (metadata, document) = match row.get_ref(5).map_err(|e| field("metadata", &e.to_string()))? {
        ValueRef::Null => (UpdateMetadata::new(), None),
        ValueRef::Text(t) => {
            let text = std::str::from_utf8(t).map_err(|e| field("metadata", &e.to_string()))?;
            decode_metadata(text).map_err(|e| field("metadata", &e))?
        }
        _ => return Err(field("metadata", "not text")),
    };
    Ok(Logged { seq_id, entry: Entry { op, id, vector, metadata, document } })
}

fn bad(db_file: &str, seq: &str, column: &str, detail: &str) -> Error {
    Error::corrupt(db_file, format!("embeddings_queue[seq_id={seq}].{column}"), detail)
}

/// Whether Chroma's `automatically_purge` switch is on (missing or unreadable counts as on).
pub fn auto_purge(c: &Connection) -> rusqlite::Result<bool> {
    let json: Option<String> = c
        .query_row("SELECT config_json_str FROM embeddings_queue_config ORDER BY id LIMIT 1", [], |r| r.get(0))
        .map_or_else(|e| if matches!(e, rusqlite::Error::QueryReturnedNoRows) { Ok(None) } else { Err(e) }, Ok)?;
    Ok(json
        .and_then(|j| serde_json::from_str::<serde_json::Value>(&j).ok())
        .and_then(|v| v.get("automatically_purge").and_then(serde_json::Value::as_bool))
        .unwrap_or(true))
}

/// The entries [`purge`] removes: parameters topic, position, metadata segment.
macro_rules! purgeable {
    () => {
        "FROM embeddings_queue WHERE topic = ?1 AND seq_id < ?2 AND seq_id NOT IN (
             SELECT MAX(seq_id) FROM embeddings_queue
             WHERE topic = ?1 AND vector IS NOT NULL
               AND id IN (SELECT embedding_id FROM embeddings WHERE segment_id = ?3)
             GROUP BY id)"
    };
}

/// Removes log entries no longer needed, keeping enough to rebuild the vector segment.
///
/// Chroma deletes everything below `min(metadata, vector)` position, which leaves vectors only in
/// the HNSW files. We also keep, per live record, the newest entry that carries its vector, so a
/// missing or damaged HNSW folder can be rebuilt from `SQLite` alone.
pub fn purge(c: &Connection, collection_id: &str, metadata_segment: &str, below: i64) -> rusqlite::Result<usize> {
    c.execute(concat!("DELETE ", purgeable!()), params![topic(collection_id), below, metadata_segment])
}

/// How many entries [`purge`] would remove.
pub fn purgeable(c: &Connection, collection_id: &str, metadata_segment: &str, below: i64) -> rusqlite::Result<usize> {
    let n: i64 = c.query_row(
        concat!("SELECT COUNT(*) ", purgeable!()),
        params![topic(collection_id), below, metadata_segment],
        |r| r.get(0),
    )?;
    Ok(usize::try_from(n).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_round_trips_with_document_and_removals() {
        let mut meta = UpdateMetadata::new();
        meta.insert("f".into(), Some(MetadataValue::Float(2.0)));
        meta.insert("i".into(), Some(MetadataValue::Int(2)));
        meta.insert("gone".into(), None);
        meta.insert("arr".into(), Some(MetadataValue::from_json(&serde_json::json!(["a", "b"])).unwrap()));
        let e = Entry {
            op: Op::Upsert,
            id: "x".into(),
            vector: None,
            metadata: meta.clone(),
            document: Some("doc".into()),
        };
        let text = encode_metadata(&e);
        assert!(text.contains(r#""f":2.0"#), "{text}");
        let (back, doc) = decode_metadata(&text).unwrap();
        assert_eq!(back, meta);
        assert_eq!(doc.as_deref(), Some("doc"));
    }

    #[test]
    fn vector_encoding_is_little_endian_f32() {
        assert_eq!(encode_vector(&[1.0, 2.0]), vec![0, 0, 0x80, 0x3f, 0, 0, 0, 0x40]);
        assert_eq!(decode_vector(&encode_vector(&[1.5, -3.25])).unwrap(), vec![1.5, -3.25]);
        assert!(decode_vector(&[1, 2, 3]).is_none());
    }
}
