//! The catalog: tenants, databases, collections (with `schema_str`) and segments.

use chromalite_core::collection::{CollectionConfig, HnswConfig};
use chromalite_core::metadata::{Metadata, MetadataValue};
use chromalite_core::{CollectionInfo, Database, DatabaseRef, Error, Result, Space};
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{json, Value};

use crate::conn::new_uuid;

/// Segment type of the HNSW vector segment.
pub const VECTOR_SEGMENT_TYPE: &str = "urn:chroma:segment/vector/hnsw-local-persisted";
/// Segment type of the `SQLite` metadata segment.
pub const METADATA_SEGMENT_TYPE: &str = "urn:chroma:segment/metadata/sqlite";

/// A collection with everything the backend needs to reach its data.
#[derive(Debug, Clone)]
pub struct Collection {
    pub info: CollectionInfo,
    pub metadata_segment: String,
    pub vector_segment: String,
    /// The parsed `schema_str` (None for directories from Chroma versions before schemas).
    pub schema: Option<Value>,
}

type Sql<T> = rusqlite::Result<T>;

pub fn tenant_exists(c: &Connection, name: &str) -> Sql<bool> {
    c.query_row("SELECT EXISTS(SELECT 1 FROM tenants WHERE id = ?1)", [name], |r| r.get(0))
}

/// Inserts a tenant; `false` if it already existed.
pub fn create_tenant(c: &Connection, name: &str) -> Sql<bool> {
    Ok(c.execute("INSERT OR IGNORE INTO tenants (id) VALUES (?1)", [name])? == 1)
}

/// The id of a database, or `None`.
pub fn database_id(c: &Connection, db: &DatabaseRef) -> Sql<Option<String>> {
    c.query_row("SELECT id FROM databases WHERE name = ?1 AND tenant_id = ?2", params![db.database, db.tenant], |r| {
        r.get(0)
    })
    .optional()
}

/// Inserts a database with a fresh UUID; `false` if the tenant already has one of that name.
pub fn create_database(c: &Connection, db: &DatabaseRef) -> Sql<bool> {
    let id = new_uuid(c)?;
    let n = c.execute(
        "INSERT OR IGNORE INTO databases (id, name, tenant_id) VALUES (?1, ?2, ?3)",
        params![id, db.database, db.tenant],
    )?;
    Ok(n == 1)
}

/// A tenant's databases ordered by name, as Chroma lists them.
pub fn list_databases(c: &Connection, tenant: &str, limit: Option<usize>, offset: usize) -> Sql<Vec<Database>> {
    let mut stmt =
        c.prepare("SELECT id, name, tenant_id FROM databases WHERE tenant_id = ?1 ORDER BY name LIMIT ?2 OFFSET ?3")?;
    let rows = stmt.query_map(params![tenant, to_limit(limit), to_i64(offset)], |r| {
        Ok(Database { id: r.get(0)?, name: r.get(1)?, tenant: r.get(2)? })
    })?;
    rows.collect()
}

fn to_limit(limit: Option<usize>) -> i64 {
    limit.map_or(-1, to_i64)
}

fn to_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The ids of a database's collections.
pub fn collection_ids_in_database(c: &Connection, database_id: &str) -> Sql<Vec<String>> {
    let mut stmt = c.prepare("SELECT id FROM collections WHERE database_id = ?1")?;
    let rows = stmt.query_map([database_id], |r| r.get(0))?;
    rows.collect()
}

pub fn delete_database_row(c: &Connection, database_id: &str) -> Sql<()> {
    c.execute("DELETE FROM databases WHERE id = ?1", [database_id]).map(drop)
}

/// What a new collection is created with.
pub struct NewCollection<'a> {
    pub db: &'a DatabaseRef,
    pub database_id: &'a str,
    pub name: &'a str,
    pub metadata: Option<&'a Metadata>,
    pub config: &'a CollectionConfig,
}

/// Inserts a collection, its metadata and its two segments; returns the new collection id.
pub fn insert_collection(c: &Connection, new: &NewCollection<'_>) -> Sql<String> {
    let id = new_uuid(c)?;
    let schema = default_schema(new.config);
    c.execute(
        "INSERT INTO collections (id, name, config_json_str, schema_str, dimension, database_id) VALUES (?1, ?2, '{}', ?3, NULL, ?4)",
        params![id, new.name, schema.to_string(), new.database_id],
    )?;
    if let Some(m) = new.metadata {
        write_collection_metadata(c, &id, m)?;
    }
    for (ty, scope) in [(VECTOR_SEGMENT_TYPE, "VECTOR"), (METADATA_SEGMENT_TYPE, "METADATA")] {
        c.execute(
            "INSERT INTO segments (id, type, scope, collection) VALUES (?1, ?2, ?3, ?4)",
            params![new_uuid(c)?, ty, scope, id],
        )?;
    }
    Ok(id)
}

/// Replaces a collection's metadata rows (Chroma's `modify(metadata=...)` replaces the whole map).
pub fn write_collection_metadata(c: &Connection, collection_id: &str, metadata: &Metadata) -> Sql<()> {
    c.execute("DELETE FROM collection_metadata WHERE collection_id = ?1", [collection_id])?;
    let mut stmt = c.prepare_cached(
        "INSERT INTO collection_metadata (collection_id, key, str_value, int_value, float_value, bool_value) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for (key, v) in metadata {
        let (text, int, float, boolean) = match v {
            MetadataValue::Str(s) => (Some(s.as_str()), None, None, None),
            MetadataValue::Int(i) => (None, Some(*i), None, None),
            MetadataValue::Float(f) => (None, None, Some(*f), None),
            MetadataValue::Bool(b) => (None, None, None, Some(*b)),
            // Chroma 1.5.9 stores no arrays in collection metadata; keep them as JSON text.
            MetadataValue::Array(_) => {
                let json = v.to_json().to_string();
                stmt.execute(params![collection_id, key, json, None::<i64>, None::<f64>, None::<bool>])?;
                continue;
            }
        };
        stmt.execute(params![collection_id, key, text, int, float, boolean])?;
    }
    Ok(())
}

pub fn rename_collection(c: &Connection, collection_id: &str, name: &str) -> Sql<()> {
    c.execute("UPDATE collections SET name = ?1 WHERE id = ?2", params![name, collection_id]).map(drop)
}

pub fn set_dimension(c: &Connection, collection_id: &str, dim: usize) -> Sql<()> {
    c.execute("UPDATE collections SET dimension = ?1 WHERE id = ?2", params![to_i64(dim), collection_id]).map(drop)
}

pub fn set_schema(c: &Connection, collection_id: &str, schema: &Value) -> Sql<()> {
    c.execute("UPDATE collections SET schema_str = ?1 WHERE id = ?2", params![schema.to_string(), collection_id])
        .map(drop)
}

/// Deletes a collection's rows everywhere (catalog, metadata segment, log, positions).
pub fn delete_collection_rows(c: &Connection, col: &Collection) -> Sql<()> {
    let seg = &col.metadata_segment;
    for sql in [
        "DELETE FROM embedding_metadata WHERE id IN (SELECT id FROM embeddings WHERE segment_id = ?1)",
        "DELETE FROM embedding_metadata_array WHERE id IN (SELECT id FROM embeddings WHERE segment_id = ?1)",
        "DELETE FROM embedding_fulltext_search WHERE rowid IN (SELECT id FROM embeddings WHERE segment_id = ?1)",
        "DELETE FROM embeddings WHERE segment_id = ?1",
    ] {
        c.execute(sql, [seg])?;
    }
    let id = &col.info.id;
    for sql in [
        "DELETE FROM segment_metadata WHERE segment_id IN (SELECT id FROM segments WHERE collection = ?1)",
        "DELETE FROM max_seq_id WHERE segment_id IN (SELECT id FROM segments WHERE collection = ?1)",
        "DELETE FROM segments WHERE collection = ?1",
        "DELETE FROM collection_metadata WHERE collection_id = ?1",
        "DELETE FROM collections WHERE id = ?1",
    ] {
        c.execute(sql, [id])?;
    }
    c.execute("DELETE FROM embeddings_queue WHERE topic = ?1", [crate::log::topic(id)])?;
    Ok(())
}

/// Which collections to load.
pub enum Filter<'a> {
    ById(&'a str),
    ByName(&'a DatabaseRef, &'a str),
    InDatabase(&'a DatabaseRef, Option<usize>, usize),
}

/// Loads collections ordered by id, as Chroma lists them.
pub fn load_collections(c: &Connection, db_file: &str, filter: &Filter<'_>) -> Result<Vec<Collection>> {
    let base = "SELECT c.id, c.name, c.dimension, c.config_json_str, c.schema_str, d.tenant_id, d.name \
                FROM collections c JOIN databases d ON d.id = c.database_id";
    let to_sql = |e: rusqlite::Error| crate::conn::sqlite_error(std::path::Path::new(db_file), &e);
    let mut rows: Vec<RawCollection> = match filter {
        Filter::ById(id) => query_raw(c, &format!("{base} WHERE c.id = ?1"), params![id]),
        Filter::ByName(db, name) => query_raw(
            c,
            &format!("{base} WHERE c.name = ?1 AND d.name = ?2 AND d.tenant_id = ?3"),
            params![name, db.database, db.tenant],
        ),
        Filter::InDatabase(db, limit, offset) => query_raw(
            c,
            &format!("{base} WHERE d.name = ?1 AND d.tenant_id = ?2 ORDER BY c.id LIMIT ?3 OFFSET ?4"),
            params![db.database, db.tenant, to_limit(*limit), to_i64(*offset)],
        ),
    }
    .map_err(to_sql)?;
    rows.sort_by(|a, b| a.id.cmp(&b.id));
    rows.into_iter().map(|raw| finish_collection(c, db_file, raw)).collect()
}

struct RawCollection {
    id: String,
    name: String,
    dimension: Option<i64>,
    config_json: Option<String>,
    schema_json: Option<String>,
    tenant: String,
    database: String,
}

fn query_raw(c: &Connection, sql: &str, p: impl rusqlite::Params) -> Sql<Vec<RawCollection>> {
    let mut stmt = c.prepare(sql)?;
    let rows = stmt.query_map(p, |r| {
        Ok(RawCollection {
            id: r.get(0)?,
            name: r.get(1)?,
            dimension: r.get(2)?,
            config_json: r.get(3)?,
            schema_json: r.get(4)?,
            tenant: r.get(5)?,
            database: r.get(6)?,
        })
    })?;
    rows.collect()
}

fn finish_collection(c: &Connection, db_file: &str, raw: RawCollection) -> Result<Collection> {
    let to_sql = |e: rusqlite::Error| crate::conn::sqlite_error(std::path::Path::new(db_file), &e);
    let field = |f: &str| format!("collections[{}].{f}", raw.id);
    let metadata = read_collection_metadata(c, &raw.id).map_err(to_sql)?;
    let schema = match raw.schema_json.as_deref().map(str::trim) {
        None | Some("" | "null") => None,
        Some(text) => Some(
            serde_json::from_str::<Value>(text)
                .map_err(|e| Error::corrupt(db_file, field("schema_str"), e.to_string()))?,
        ),
    };
    let legacy = match raw.config_json.as_deref() {
        Some(text) => serde_json::from_str::<Value>(text)
            .map_err(|e| Error::corrupt(db_file, field("config_json_str"), e.to_string()))?,
        None => Value::Null,
    };
    let config = resolve_config(schema.as_ref(), &legacy, metadata.as_ref());
    let (mut vector_segment, mut metadata_segment) = (None, None);
    let mut stmt = c.prepare_cached("SELECT id, scope FROM segments WHERE collection = ?1").map_err(to_sql)?;
    let segs = stmt.query_map([&raw.id], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))).map_err(to_sql)?;
    for seg in segs {
        let (id, scope) = seg.map_err(to_sql)?;
        match scope.as_str() {
            "VECTOR" => vector_segment = Some(id),
            "METADATA" => metadata_segment = Some(id),
            _ => {}
        }
    }
    let missing =
        |what: &str| Error::corrupt(db_file, format!("segments[collection={}]", raw.id), format!("no {what} segment"));
    // Chroma stores the dimension as an i32; a larger one is damage (and would overflow the byte
    // sizes computed from it).
    let dimension = raw
        .dimension
        .map(|d| {
            i32::try_from(d)
                .ok()
                .and_then(|d| usize::try_from(d).ok())
                .ok_or_else(|| Error::corrupt(db_file, field("dimension"), format!("{d} is outside 0..=2^31-1")))
        })
        .transpose()?;
    Ok(Collection {
        info: CollectionInfo {
            id: raw.id.clone(),
            name: raw.name,
            db: DatabaseRef::new(raw.tenant, raw.database),
            metadata,
            config,
            dimension,
        },
        metadata_segment: metadata_segment.ok_or_else(|| missing("METADATA"))?,
        vector_segment: vector_segment.ok_or_else(|| missing("VECTOR"))?,
        schema,
    })
}

fn read_collection_metadata(c: &Connection, id: &str) -> Sql<Option<Metadata>> {
    let mut stmt = c.prepare_cached(
        "SELECT key, str_value, int_value, float_value, bool_value FROM collection_metadata WHERE collection_id = ?1 ORDER BY rowid",
    )?;
    let rows = stmt.query_map([id], |r| {
        let key: String = r.get(0)?;
        let value = if let Some(s) = r.get::<_, Option<String>>(1)? {
            Some(MetadataValue::Str(s))
        } else if let Some(i) = r.get::<_, Option<i64>>(2)? {
            Some(MetadataValue::Int(i))
        } else if let Some(f) = r.get::<_, Option<f64>>(3)? {
            Some(MetadataValue::Float(f))
        } else {
            r.get::<_, Option<bool>>(4)?.map(MetadataValue::Bool)
        };
        Ok((key, value))
    })?;
    let mut m = Metadata::new();
    for row in rows {
        if let (k, Some(v)) = row? {
            m.insert(k, v);
        }
    }
    Ok((!m.is_empty()).then_some(m))
}

/// The HNSW configuration: from `schema_str`, else a legacy `config_json_str`, else `hnsw:*`
/// collection metadata, else Chroma's defaults.
fn resolve_config(schema: Option<&Value>, legacy: &Value, metadata: Option<&Metadata>) -> CollectionConfig {
    let vector_config = schema.and_then(|s| {
        s.pointer("/keys/#embedding/float_list/vector_index/config")
            .or_else(|| s.pointer("/defaults/float_list/vector_index/config"))
    });
    if let Some(vc) = vector_config {
        let mut cfg = CollectionConfig::default();
        apply_hnsw_json(&mut cfg.hnsw, vc.get("hnsw").unwrap_or(&Value::Null));
        if let Some(space) = vc.get("space").and_then(Value::as_str).and_then(|s| Space::parse(s).ok()) {
            cfg.hnsw.space = space;
        }
        cfg.embedding_function = vc.get("embedding_function").cloned().unwrap_or(Value::Null);
        return cfg;
    }
    let mut cfg = CollectionConfig::resolve(None, metadata).unwrap_or_default();
    if let Some(h) = legacy.get("hnsw_configuration").or_else(|| legacy.get("hnsw")) {
        apply_hnsw_json(&mut cfg.hnsw, h);
        if let Some(space) = h.get("space").and_then(Value::as_str).and_then(|s| Space::parse(s).ok()) {
            cfg.hnsw.space = space;
        }
    }
    cfg
}

fn apply_hnsw_json(h: &mut HnswConfig, v: &Value) {
    let get = |k: &str| v.get(k).and_then(Value::as_u64).and_then(|n| usize::try_from(n).ok());
    if let Some(n) = get("ef_construction") {
        h.ef_construction = n;
    }
    if let Some(n) = get("ef_search") {
        h.ef_search = n;
    }
    if let Some(n) = get("max_neighbors").or_else(|| get("M")) {
        h.max_neighbors = n;
    }
    if let Some(n) = get("sync_threshold") {
        h.sync_threshold = n;
    }
    if let Some(f) = v.get("resize_factor").and_then(Value::as_f64) {
        h.resize_factor = f;
    }
}

/// The `schema_str` chromadb 1.5.9 writes for a new collection with this configuration.
#[must_use]
pub fn default_schema(cfg: &CollectionConfig) -> Value {
    let h = &cfg.hnsw;
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let hnsw = json!({
        "ef_construction": h.ef_construction, "max_neighbors": h.max_neighbors, "ef_search": h.ef_search,
        "num_threads": threads, "batch_size": 100, "sync_threshold": h.sync_threshold, "resize_factor": h.resize_factor,
    });
    let vector_config = |source_key: bool| {
        let mut m = serde_json::Map::new();
        m.insert("space".into(), json!(h.space.as_str()));
        if !cfg.embedding_function.is_null() {
            m.insert("embedding_function".into(), cfg.embedding_function.clone());
        }
        if source_key {
            m.insert("source_key".into(), json!("#document"));
        }
        m.insert("hnsw".into(), hnsw.clone());
        Value::Object(m)
    };
    json!({
        "defaults": {
            "string": string_index(false, true),
            "float_list": {"vector_index": {"enabled": false, "config": vector_config(false)}},
            "sparse_vector": {"sparse_vector_index": {"enabled": false, "config": {"embedding_function": {"type": "unknown"}, "bm25": false}}},
            "int": {"int_inverted_index": {"enabled": true, "config": {}}},
            "float": {"float_inverted_index": {"enabled": true, "config": {}}},
            "bool": {"bool_inverted_index": {"enabled": true, "config": {}}},
        },
        "keys": {
            "#embedding": {"float_list": {"vector_index": {"enabled": true, "config": vector_config(true)}}},
            "#document": {"string": string_index(true, false)},
        }
    })
}

fn string_index(fts: bool, inverted: bool) -> Value {
    json!({"fts_index": {"enabled": fts, "config": {}}, "string_inverted_index": {"enabled": inverted, "config": {}}})
}

/// Records that metadata `key` has been written with a value of `ty` (`string`, `int`, `float`,
/// `bool`), as Chroma's metadata writer does; returns whether the schema changed.
pub fn schema_note_key(schema: &mut Value, key: &str, ty: &str) -> bool {
    if key.starts_with("chroma:") {
        return false;
    }
    let Some(default) = schema.pointer(&format!("/defaults/{ty}")).cloned() else { return false };
    let Some(keys) = schema.get_mut("keys").and_then(Value::as_object_mut) else { return false };
    let entry = keys.entry(key.to_owned()).or_insert_with(|| json!({}));
    let Some(types) = entry.as_object_mut() else { return false };
    if types.contains_key(ty) {
        return false;
    }
    types.insert(ty.to_owned(), default);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_schema_matches_chroma_for_plain_collection() {
        let s = default_schema(&CollectionConfig::default());
        let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        let expected = format!(
            r##"{{"defaults":{{"string":{{"fts_index":{{"enabled":false,"config":{{}}}},"string_inverted_index":{{"enabled":true,"config":{{}}}}}},"float_list":{{"vector_index":{{"enabled":false,"config":{{"space":"l2","hnsw":{{"ef_construction":100,"max_neighbors":16,"ef_search":100,"num_threads":{threads},"batch_size":100,"sync_threshold":1000,"resize_factor":1.2}}}}}}}},"sparse_vector":{{"sparse_vector_index":{{"enabled":false,"config":{{"embedding_function":{{"type":"unknown"}},"bm25":false}}}}}},"int":{{"int_inverted_index":{{"enabled":true,"config":{{}}}}}},"float":{{"float_inverted_index":{{"enabled":true,"config":{{}}}}}},"bool":{{"bool_inverted_index":{{"enabled":true,"config":{{}}}}}}}},"keys":{{"#embedding":{{"float_list":{{"vector_index":{{"enabled":true,"config":{{"space":"l2","source_key":"#document","hnsw":{{"ef_construction":100,"max_neighbors":16,"ef_search":100,"num_threads":{threads},"batch_size":100,"sync_threshold":1000,"resize_factor":1.2}}}}}}}}}},"#document":{{"string":{{"fts_index":{{"enabled":true,"config":{{}}}},"string_inverted_index":{{"enabled":false,"config":{{}}}}}}}}}}}}"##
        );
        assert_eq!(s.to_string(), expected);
    }

    #[test]
    fn schema_keys_grow_once_per_type() {
        let mut s = default_schema(&CollectionConfig::default());
        assert!(schema_note_key(&mut s, "n", "int"));
        assert!(!schema_note_key(&mut s, "n", "int"));
        assert!(schema_note_key(&mut s, "n", "string"));
        assert!(!schema_note_key(&mut s, "chroma:document", "string"));
        assert_eq!(s.pointer("/keys/n/int"), s.pointer("/defaults/int"));
    }

    #[test]
    fn config_is_read_from_schema() {
        let mut cfg = CollectionConfig::default();
        cfg.hnsw.space = Space::Cosine;
        cfg.hnsw.max_neighbors = 24;
        let back = resolve_config(Some(&default_schema(&cfg)), &Value::Null, None);
        assert_eq!(back.hnsw, cfg.hnsw);
    }
}
