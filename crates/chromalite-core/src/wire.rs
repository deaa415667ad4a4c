//! Conversions from chromadb's JSON argument shapes to requests.
//!
//! The CLI, the conformance suite and the HTTP backend all receive Chroma-style JSON (the same keys
//! as chromadb's Python and REST APIs); these functions turn it into typed requests, rejecting
//! malformed input with `InvalidArgument` exactly where chromadb does.

use serde_json::Value;

use crate::error::{Error, Result};
use crate::filter::{Where, WhereDocument};
use crate::metadata::{metadata_from_json, update_metadata_from_json, Metadata, UpdateMetadata};
use crate::record::{DeleteRequest, GetRequest, Include, QueryRequest, RecordBatch, Selection};
use crate::validate;

fn present<'a>(obj: &'a Value, key: &str) -> Option<&'a Value> {
    obj.get(key).filter(|v| !v.is_null())
}

/// chromadb's `maybe_cast_one_to_many`: a lone value where a list is expected is a list of one.
fn one_or_many(v: &Value) -> std::borrow::Cow<'_, [Value]> {
    match v {
        Value::Array(items) => std::borrow::Cow::Borrowed(items.as_slice()),
        Value::Null => std::borrow::Cow::Borrowed(&[]),
        other => std::borrow::Cow::Owned(vec![other.clone()]),
    }
}

/// A list of strings (a single string is a list of one, as chromadb's Python API takes it).
pub fn ids(v: &Value) -> Result<Vec<String>> {
    if v.is_null() {
        return Err(Error::invalid("Expected IDs to be a list, got null"));
    }
    let items = one_or_many(v);
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

/// A list of vectors, normalised as chromadb's `normalize_embeddings` does: a flat list of numbers is
/// one vector, and only the first value of the first vector must be a number that is not a bool
/// (the rest go through `numpy.array(row, dtype=float32)`, which takes a bool as 0 or 1).
pub fn embeddings(v: &Value) -> Result<Vec<Vec<f32>>> {
    let items = v.as_array().ok_or_else(|| Error::invalid(format!("Expected embeddings to be a list, got {v}")))?;
    let is_number = |x: &Value| x.is_number();
    let refuse = || {
        Error::invalid(format!(
            "Expected embeddings to be a list of floats or ints, a list of lists, a numpy array, or a list of numpy arrays, got {v}"
        ))
    };
    match items.first() {
        None => Ok(Vec::new()),
        Some(first) if is_number(first) => Ok(vec![numpy_row(v)?]),
        Some(Value::Array(row)) if row.first().is_some_and(is_number) => items.iter().map(numpy_row).collect(),
        Some(Value::Array(row)) if row.is_empty() => {
            Err(Error::invalid("Expected each embedding to have at least 1 value, got none at pos 0"))
        }
        Some(_) => Err(refuse()),
    }
}

/// One vector as `numpy.array(row, dtype=float32)` converts it: numbers, and bools as 0 or 1.
fn numpy_row(v: &Value) -> Result<Vec<f32>> {
    let items = v
        .as_array()
        .ok_or_else(|| Error::invalid(format!("Expected an embedding to be a list of numbers, got {v}")))?;
    items
        .iter()
        .map(|x| match x {
            Value::Bool(b) => Ok(f32::from(u8::from(*b))),
            _ => x.as_f64().map(|f| f as f32).ok_or_else(|| {
                Error::invalid(format!("Expected each value in the embedding to be a int or float, got {x}"))
            }),
        })
        .collect()
}

/// A list of documents (`null` entries allowed; a single string is a list of one).
pub fn documents(v: &Value) -> Result<Vec<Option<String>>> {
    let items = one_or_many(v);
    items
        .iter()
        .map(|d| match d {
            Value::Null => Ok(None),
            Value::String(s) => Ok(Some(s.clone())),
            other => Err(Error::invalid(format!("Expected document to be a str, got {other}"))),
        })
        .collect()
}

/// A list of record metadatas (`null` entries allowed; `null` values mean "remove key"; a single
/// object is a list of one).
pub fn metadatas(v: &Value) -> Result<Vec<Option<UpdateMetadata>>> {
    let items = one_or_many(v);
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

/// Collection metadata given to create. chromadb refuses `null` values there (its bindings cannot
/// convert `None` to a metadata value), unlike in `modify`, where they remove a key.
pub fn collection_metadata(v: &Value) -> Result<Metadata> {
    let m = update_metadata_from_json(v).map_err(Error::InvalidArgument)?;
    if m.is_empty() {
        return Err(Error::invalid("Expected metadata to be a non-empty dict, got 0 metadata attributes"));
    }
    if let Some((key, _)) = m.iter().find(|(_, v)| v.is_none()) {
        return Err(Error::invalid(format!("Collection metadata value for key {key:?} must not be None")));
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

/// A `delete` request from an object with the selection keys plus `limit`. chromadb takes a
/// `limit` that is an `int` (not a bool) from 0 to `u32::MAX`: Python refuses bools, floats and
/// negatives, and the Rust bindings cannot convert larger ones.
pub fn delete_request(obj: &Value) -> Result<DeleteRequest> {
    let limit = present(obj, "limit")
        .map(|v| {
            v.as_u64().filter(|_| !v.is_boolean()).and_then(|n| u32::try_from(n).ok()).ok_or_else(|| {
                Error::invalid(format!("limit must be a non-negative integer of at most 2^32 - 1, got {v}"))
            })
        })
        .transpose()?;
    Ok(DeleteRequest { selection: selection(obj)?, limit })
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

/// An optional non-negative integer argument (`limit`, `offset`); negatives are rejected. A bool
/// counts as 0 or 1, as Python's `isinstance(True, int)` lets it through chromadb's checks.
pub fn non_negative(obj: &Value, key: &str) -> Result<Option<usize>> {
    present(obj, key)
        .map(|v| {
            python_int(v)
                .and_then(|n| usize::try_from(n).ok())
                .ok_or_else(|| Error::invalid(format!("Expected {key} to be a non-negative integer, got {v}")))
        })
        .transpose()
}

/// An integer argument as Python sees it: a JSON integer, or a bool as 0 or 1.
fn python_int(v: &Value) -> Option<i64> {
    match v {
        Value::Bool(b) => Some(i64::from(*b)),
        _ => v.as_i64(),
    }
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
            python_int(v)
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
