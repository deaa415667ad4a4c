//! Request bodies and response parsing for the v2 API's JSON shapes.

use chromalite_core::metadata::{metadata_from_json, metadata_to_json, update_metadata_to_json, Metadata};
use chromalite_core::{
    CollectionConfig, CollectionInfo, Database, DatabaseRef, Error, GetRequest, GetResult, Include, QueryRequest,
    QueryResult, RecordBatch, Result, Selection,
};
use serde_json::{json, Map, Value};

/// A server answer that does not have the documented shape.
fn shape(what: &str, v: &Value) -> Error {
    let mut text = v.to_string();
    text.truncate(200);
    Error::Internal(format!("unexpected server answer for {what}: {text}"))
}

fn str_field<'a>(v: &'a Value, key: &str, what: &str) -> Result<&'a str> {
    v.get(key).and_then(Value::as_str).ok_or_else(|| shape(what, v))
}

/// `Collection` → [`CollectionInfo`].
pub(crate) fn collection(v: &Value) -> Result<CollectionInfo> {
    let metadata = match v.get("metadata") {
        None | Some(Value::Null) => None,
        Some(m) => {
            Some(metadata_from_json(m).map_err(|e| Error::Internal(format!("collection metadata from server: {e}")))?)
        }
    };
    // The server owns the configuration and applies it itself; a key this version does not know
    // (a newer server) must not make the collection unusable, so fall back to the defaults.
    let config = v.get("configuration_json").map(CollectionConfig::from_json).and_then(Result::ok).unwrap_or_default();
    Ok(CollectionInfo {
        id: str_field(v, "id", "collection")?.to_owned(),
        name: str_field(v, "name", "collection")?.to_owned(),
        db: DatabaseRef::new(str_field(v, "tenant", "collection")?, str_field(v, "database", "collection")?),
        metadata,
        config,
        dimension: v.get("dimension").and_then(Value::as_u64).and_then(|d| usize::try_from(d).ok()),
    })
}

/// A JSON array of `Collection`s.
pub(crate) fn collections(v: &Value) -> Result<Vec<CollectionInfo>> {
    v.as_array().ok_or_else(|| shape("list_collections", v))?.iter().map(collection).collect()
}

/// `Database` → [`Database`].
pub(crate) fn database(v: &Value) -> Result<Database> {
    Ok(Database {
        id: str_field(v, "id", "database")?.to_owned(),
        name: str_field(v, "name", "database")?.to_owned(),
        tenant: str_field(v, "tenant", "database")?.to_owned(),
    })
}

/// A non-negative count (`count`, `collections_count`).
pub(crate) fn count(v: &Value) -> Result<usize> {
    v.as_u64().and_then(|n| usize::try_from(n).ok()).ok_or_else(|| shape("count", v))
}

fn embeddings_json(e: &[Vec<f32>]) -> Value {
    Value::Array(e.iter().map(|v| Value::Array(v.iter().map(|x| json!(f64::from(*x))).collect())).collect())
}

/// Embeddings the way chromadb's Python client sends them to servers that accept it: base64 of
/// the little-endian `f32` bytes. A quarter of the size of decimal text, exact, and the server
/// skips parsing decimals (a 20,000 × 384 import runs about twice as fast).
fn embeddings_base64(e: &[Vec<f32>]) -> Value {
    Value::Array(
        e.iter().map(|v| Value::String(base64(&v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>()))).collect(),
    )
}

/// Standard base64 with padding (RFC 4648 §4).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, b)| acc | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The body of `add`, `upsert` and `update`; `base64` when the server accepts packed embeddings.
pub(crate) fn batch(b: &RecordBatch, base64: bool) -> Value {
    let encode = if base64 { embeddings_base64 } else { embeddings_json };
    json!({
        "ids": b.ids,
        "embeddings": b.embeddings.as_deref().map(encode),
        "documents": b.documents,
        "metadatas": b.metadatas.as_ref().map(|ms| ms.iter().map(|m| m.as_ref().map_or(Value::Null, update_metadata_to_json)).collect::<Vec<_>>()),
    })
}

/// The `ids` / `where` / `where_document` part shared by get, query and delete.
pub(crate) fn selection(s: &Selection) -> Map<String, Value> {
    let mut body = Map::new();
    body.insert("ids".into(), s.ids.as_ref().map_or(Value::Null, |i| json!(i)));
    body.insert("where".into(), s.where_.as_ref().map_or(Value::Null, chromalite_core::Where::to_json));
    body.insert(
        "where_document".into(),
        s.where_document.as_ref().map_or(Value::Null, chromalite_core::WhereDocument::to_json),
    );
    body
}

fn include_json(include: &[Include]) -> Value {
    Value::Array(include.iter().map(|i| Value::String(i.as_str().into())).collect())
}

/// The body of `get`.
pub(crate) fn get_body(req: &GetRequest) -> Value {
    let mut body = selection(&req.selection);
    body.insert("limit".into(), json!(req.limit));
    body.insert("offset".into(), json!(req.offset));
    body.insert("include".into(), include_json(&server_columns(&req.include)));
    Value::Object(body)
}

/// The body of `query`; `result` is the empty result whose columns decide what to ask for.
pub(crate) fn query_body(req: &QueryRequest, result: &QueryResult) -> Value {
    let mut body = selection(&req.selection);
    body.insert("query_embeddings".into(), embeddings_json(&req.embeddings));
    body.insert("n_results".into(), json!(req.n_results));
    body.insert("include".into(), include_json(&query_columns(result)));
    Value::Object(body)
}

/// The columns a server can return; `data` is hydrated client-side by chromadb (from URIs with a
/// data loader), so servers reject it and it is never sent.
fn server_columns(include: &[Include]) -> Vec<Include> {
    include.iter().copied().filter(|i| *i != Include::Data).collect()
}

fn query_columns(r: &QueryResult) -> Vec<Include> {
    let mut cols = Vec::new();
    for (present, inc) in [
        (r.distances.is_some(), Include::Distances),
        (r.documents.is_some(), Include::Documents),
        (r.metadatas.is_some(), Include::Metadatas),
        (r.embeddings.is_some(), Include::Embeddings),
        (r.uris.is_some(), Include::Uris),
    ] {
        if present {
            cols.push(inc);
        }
    }
    cols
}

fn array<'a>(v: &'a Value, what: &str) -> Result<&'a Vec<Value>> {
    v.as_array().ok_or_else(|| shape(what, v))
}

/// A column must hold one entry per id: callers index the columns by the position of the id.
fn check_len(len: usize, n: usize, what: &str) -> Result<()> {
    if len == n {
        Ok(())
    } else {
        Err(Error::Internal(format!("unexpected server answer: {len} {what} for {n} ids")))
    }
}

/// The array `v`, holding one entry per id.
fn per_id<'a>(v: &'a Value, n: usize, what: &str) -> Result<&'a Vec<Value>> {
    let items = array(v, what)?;
    check_len(items.len(), n, what)?;
    Ok(items)
}

fn strings(v: &Value) -> Result<Vec<String>> {
    array(v, "ids")?.iter().map(|s| s.as_str().map(str::to_owned).ok_or_else(|| shape("ids", s))).collect()
}

fn opt_strings(v: &Value, n: usize, what: &str) -> Result<Vec<Option<String>>> {
    if v.is_null() {
        return Ok(vec![None; n]);
    }
    per_id(v, n, what)?
        .iter()
        .map(
            |s| {
                if s.is_null() {
                    Ok(None)
                } else {
                    s.as_str().map(|s| Some(s.to_owned())).ok_or_else(|| shape(what, s))
                }
            },
        )
        .collect()
}

fn floats(v: &Value, what: &str) -> Result<Vec<f32>> {
    if v.is_null() {
        return Ok(Vec::new());
    }
    // Servers send f32 values; narrowing back from JSON's f64 restores them exactly.
    array(v, what)?.iter().map(|x| x.as_f64().map(|f| f as f32).ok_or_else(|| shape(what, x))).collect()
}

fn vectors(v: &Value, n: usize) -> Result<Vec<Vec<f32>>> {
    if v.is_null() {
        return Ok(vec![Vec::new(); n]);
    }
    per_id(v, n, "embeddings")?.iter().map(|e| floats(e, "embedding")).collect()
}

fn metadatas(v: &Value, n: usize) -> Result<Vec<Option<Metadata>>> {
    if v.is_null() {
        return Ok(vec![None; n]);
    }
    per_id(v, n, "metadatas")?
        .iter()
        .map(|m| match m {
            Value::Null => Ok(None),
            m => metadata_from_json(m)
                .map(Some)
                .map_err(|e| Error::Internal(format!("record metadata from server: {e}"))),
        })
        .collect()
}

fn column<'a>(v: &'a Value, key: &str) -> &'a Value {
    v.get(key).unwrap_or(&Value::Null)
}

/// A `get` response, shaped like every other backend's result for `include`.
pub(crate) fn get_result(v: &Value, include: &[Include]) -> Result<GetResult> {
    let ids = strings(column(v, "ids"))?;
    let n = ids.len();
    let has = |i| include.contains(&i);
    Ok(GetResult {
        embeddings: has(Include::Embeddings).then(|| vectors(column(v, "embeddings"), n)).transpose()?,
        documents: has(Include::Documents).then(|| opt_strings(column(v, "documents"), n, "documents")).transpose()?,
        metadatas: has(Include::Metadatas).then(|| metadatas(column(v, "metadatas"), n)).transpose()?,
        uris: has(Include::Uris).then(|| opt_strings(column(v, "uris"), n, "uris")).transpose()?,
        ids,
        include: include.to_vec(),
    })
}

/// A `query` response, filled into `result` (from [`QueryResult::new`]) query by query.
pub(crate) fn query_result(v: &Value, mut result: QueryResult) -> Result<QueryResult> {
    let per_query = array(column(v, "ids"), "ids")?;
    for (q, ids) in per_query.iter().enumerate() {
        let ids = strings(ids)?;
        let n = ids.len();
        let nth = |key: &str| column(v, key).get(q).unwrap_or(&Value::Null);
        if let Some(d) = result.distances.as_mut() {
            let distances = floats(nth("distances"), "distances")?;
            check_len(distances.len(), n, "distances")?;
            d.push(distances);
        }
        if let Some(e) = result.embeddings.as_mut() {
            e.push(vectors(nth("embeddings"), n)?);
        }
        if let Some(d) = result.documents.as_mut() {
            d.push(opt_strings(nth("documents"), n, "documents")?);
        }
        if let Some(m) = result.metadatas.as_mut() {
            m.push(metadatas(nth("metadatas"), n)?);
        }
        if let Some(u) = result.uris.as_mut() {
            u.push(opt_strings(nth("uris"), n, "uris")?);
        }
        result.ids.push(ids);
    }
    Ok(result)
}

/// The body of `create_collection`.
pub(crate) fn create_body(req: &chromalite_core::CreateCollection) -> Value {
    json!({
        "name": req.name,
        "metadata": req.metadata.as_ref().map(metadata_to_json),
        "configuration": req.configuration,
        "get_or_create": req.get_or_create,
    })
}

/// The body of a collection `PUT` (rename / new metadata / new configuration).
pub(crate) fn modify_body(req: &chromalite_core::ModifyCollection) -> Value {
    json!({
        "new_name": req.new_name,
        "new_metadata": req.new_metadata.as_ref().map(update_metadata_to_json),
        "new_configuration": req.new_configuration,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chromalite_core::metadata::UpdateMetadata;

    #[test]
    fn get_result_follows_include() {
        let v = json!({"ids": ["a", "b"], "documents": ["x", null], "metadatas": [{"k": 1.0}, null], "embeddings": null, "include": []});
        let r = get_result(&v, &[Include::Documents, Include::Metadatas, Include::Uris]).unwrap();
        assert_eq!(r.documents, Some(vec![Some("x".into()), None]));
        assert_eq!(r.uris, Some(vec![None, None]));
        assert!(r.embeddings.is_none());
        assert_eq!(r.to_json()["metadatas"], json!([{"k": 1.0}, null]));
    }

    #[test]
    fn query_asks_for_metadatas_and_uris_when_data_is_included() {
        let result = QueryResult::new(&[Include::Data]);
        let body = query_body(&QueryRequest { embeddings: vec![vec![1.0]], ..Default::default() }, &result);
        assert_eq!(body["include"], json!(["metadatas", "uris"]));
        let v = json!({"ids": [["a"]], "metadatas": [[{"k": "v"}]], "uris": [[null]]});
        let r = query_result(&v, result).unwrap();
        assert_eq!(r.ids, vec![vec!["a".to_string()]]);
        assert_eq!(r.uris, Some(vec![vec![None]]));
    }

    #[test]
    fn columns_that_do_not_match_the_ids_are_refused() {
        let get = json!({"ids": ["a", "b"], "documents": ["x"]});
        let err = get_result(&get, &[Include::Documents]).unwrap_err();
        assert_eq!(err.kind(), chromalite_core::ErrorKind::Internal, "{err}");
        for v in [
            json!({"ids": [["a", "b"]], "distances": [[0.5]]}),
            json!({"ids": [["a"]], "distances": [[0.5]], "metadatas": [[null, null]]}),
            json!({"ids": [["a"]], "distances": [[0.5]], "embeddings": [[]]}),
        ] {
            let result = QueryResult::new(&[Include::Distances, Include::Metadatas, Include::Embeddings]);
            assert!(query_result(&v, result).is_err(), "{v}");
        }
    }

    #[test]
    fn batch_keeps_null_metadata_values_for_update() {
        let mut b = RecordBatch::new(["a"]);
        let mut m = UpdateMetadata::new();
        m.insert("gone".into(), None);
        b.metadatas = Some(vec![Some(m)]);
        assert_eq!(batch(&b, true)["metadatas"], json!([{"gone": null}]));
        assert_eq!(batch(&b, true)["embeddings"], Value::Null);
    }

    #[test]
    fn embeddings_pack_as_little_endian_f32_base64() {
        for (given, want) in [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foobar", "Zm9vYmFy")] {
            assert_eq!(base64(given.as_bytes()), want);
        }
        let mut b = RecordBatch::new(["a"]);
        b.embeddings = Some(vec![vec![1.0, -2.5]]);
        // struct.pack("<2f", 1.0, -2.5) == b"\x00\x00\x80?\x00\x00 \xc0"
        assert_eq!(batch(&b, true)["embeddings"], json!(["AACAPwAAIMA="]));
        assert_eq!(batch(&b, false)["embeddings"], json!([[1.0, -2.5]]));
    }
}
