//! Conversions from chromadb's JSON argument shapes to requests.
//!
//! The CLI, the conformance suite and the HTTP backend all receive Chroma-style JSON (the same keys
//! as chromadb's Python and REST APIs); these functions turn it into typed requests, rejecting
//! malformed input with `InvalidArgument` exactly where chromadb does.

use serde_json::Value;

use crate::error::{Error, Result};
use crate::filter::{Where, WhereDocument};
use crate::metadata::{metadata_from_json, update_metadata_from_json, Metadata, UpdateMetadata};
use crate::record::{GetRequest, Include, QueryRequest, RecordBatch, Selection};
use crate::validate;

fn present<'a>(obj: &'a Value, key: &str) -> Option<&'a Value> {
    obj.get(key).filter(|v| !v.is_null())
}

/// A list of strings.
pub fn ids(v: &Value) -> Result<Vec<String>> {
    let items = v.as_array().ok_or_else(|| Error::invalid(format!("Expected IDs to be a list, got {v}")))?;
    items
        .iter()
        .map(|i| {
            i.as_str().map(str::to_owned).ok_or_else(|| Error::invalid(format!("Expected ID to be a str, got {i}")))
        })
        .collect()
}

/// One vector of numbers.
pub fn embedding(v: &Value) -> Result<Vec<f32>> {
    let items = v
        .as_array()
        .ok_or_else(|| Error::invalid(format!("Expected an embedding to be a list of numbers, got {v}")))?;
    items
        .iter()
        .map(|x| {
            x.as_f64().filter(|_| !x.is_boolean()).map(|f| f as f32).ok_or_else(|| {
                Error::invalid(format!("Expected each value in the embedding to be a int or float, got {x}"))
            })
        })
        .collect()
}

/// A list of vectors.
pub fn embeddings(v: &Value) -> Result<Vec<Vec<f32>>> {
    let items = v.as_array().ok_or_else(|| Error::invalid(format!("Expected embeddings to be a list, got {v}")))?;
    items.iter().map(embedding).collect()
}

/// A list of documents (`null` entries allowed).
pub fn documents(v: &Value) -> Result<Vec<Option<String>>> {
    let items = v.as_array().ok_or_else(|| Error::invalid(format!("Expected documents to be a list, got {v}")))?;
    items
        .iter()
        .map(|d| match d {
            Value::Null => Ok(None),
            Value::String(s) => Ok(Some(s.clone())),
            other => Err(Error::invalid(format!("Expected document to be a str, got {other}"))),
        })
        .collect()
}

/// A list of record metadatas (`null` entries allowed; `null` values mean "remove key").
pub fn metadatas(v: &Value) -> Result<Vec<Option<UpdateMetadata>>> {
    let items = v.as_array().ok_or_else(|| Error::invalid(format!("Expected metadatas to be a list, got {v}")))?;
    items
        .iter()
        .map(|m| {
            if m.is_null() {
                Ok(None)
            } else {
                update_metadata_from_json(m).map(Some).map_err(Error::InvalidArgument)
            }
        })
        .collect()
}

/// Collection metadata given to create (`null` values are dropped, as chromadb stores them).
pub fn collection_metadata(v: &Value) -> Result<Metadata> {
    let m = update_metadata_from_json(v).map_err(Error::InvalidArgument)?;
    if m.is_empty() {
        return Err(Error::invalid("Expected metadata to be a non-empty dict, got 0 metadata attributes"));
    }
    Ok(crate::metadata::strip_nulls(&m))
}

/// Collection metadata given to modify (`null` values allowed).
pub fn modify_metadata(v: &Value) -> Result<UpdateMetadata> {
    update_metadata_from_json(v).map_err(Error::InvalidArgument)
}

/// Metadata that must not contain `null` (e.g. a record in an import file).
pub fn strict_metadata(v: &Value) -> Result<Metadata> {
    metadata_from_json(v).map_err(Error::InvalidArgument)
}

/// A write batch from an object with `ids`, `embeddings`, `documents`, `metadatas`.
pub fn record_batch(obj: &Value) -> Result<RecordBatch> {
    Ok(RecordBatch {
        ids: ids(obj.get("ids").unwrap_or(&Value::Null))?,
        embeddings: present(obj, "embeddings").map(embeddings).transpose()?,
        documents: present(obj, "documents").map(documents).transpose()?,
        metadatas: present(obj, "metadatas").map(metadatas).transpose()?,
    })
}

/// A selection from an object with optional `ids`, `where`, `where_document`.
pub fn selection(obj: &Value) -> Result<Selection> {
    Ok(Selection {
        ids: present(obj, "ids").map(ids).transpose()?,
        where_: present(obj, "where").map(Where::from_json).transpose()?,
        where_document: present(obj, "where_document").map(WhereDocument::from_json).transpose()?,
    })
}

/// An include list (`null` means the default for the operation).
pub fn include(v: Option<&Value>, default: &[Include]) -> Result<Vec<Include>> {
    let Some(v) = v.filter(|v| !v.is_null()) else { return Ok(default.to_vec()) };
    let items = v.as_array().ok_or_else(|| Error::invalid(format!("Expected include to be a list, got {v}")))?;
    items
        .iter()
        .map(|i| {
            i.as_str()
                .ok_or_else(|| Error::invalid(format!("Expected include item to be a str, got {i}")))
                .and_then(Include::parse)
        })
        .collect()
}

/// An optional non-negative integer argument (`limit`, `offset`); negatives are rejected.
pub fn non_negative(obj: &Value, key: &str) -> Result<Option<usize>> {
    present(obj, key)
        .map(|v| {
            v.as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .ok_or_else(|| Error::invalid(format!("Expected {key} to be a non-negative integer, got {v}")))
        })
        .transpose()
}

/// A `get` request from an object with the selection keys plus `limit`, `offset`, `include`.
pub fn get_request(obj: &Value) -> Result<GetRequest> {
    let req = GetRequest {
        selection: selection(obj)?,
        limit: non_negative(obj, "limit")?,
        offset: non_negative(obj, "offset")?.unwrap_or(0),
        include: include(obj.get("include"), Include::GET_DEFAULT)?,
    };
    validate::get_request(&req)?;
    Ok(req)
}

/// A `query` request from an object with `query_embeddings`, `n_results`, the selection keys and
/// `include`.
pub fn query_request(obj: &Value) -> Result<QueryRequest> {
    let embs = embeddings(obj.get("query_embeddings").unwrap_or(&Value::Null))?;
    let n_results = match present(obj, "n_results") {
        None => 10,
        Some(v) => validate::n_results(
            v.as_i64()
                .ok_or_else(|| Error::invalid(format!("Expected requested number of results to be a int, got {v}")))?,
        )?,
    };
    Ok(QueryRequest {
        embeddings: embs,
        n_results,
        selection: selection(obj)?,
        include: include(obj.get("include"), Include::QUERY_DEFAULT)?,
    })
}
