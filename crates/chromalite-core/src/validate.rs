//! chromadb 1.5.9's validation rules for names, ids, records and requests.
//!
//! Every backend calls these before touching storage, so all of them accept and reject the same
//! inputs as chromadb (messages are close to chromadb's but not guaranteed identical).

use std::collections::HashSet;

use crate::error::{Error, Result};
use crate::metadata::UpdateMetadata;
use crate::record::{Include, RecordBatch};

/// The write operation a batch is validated for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOp {
    Add,
    Upsert,
    Update,
}

/// Checks a collection name: 3-512 chars of `[a-zA-Z0-9._-]`, alphanumeric at both ends, no `..`,
/// not an IP address.
pub fn collection_name(name: &str) -> Result<()> {
    let chars_ok = name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    let ends_ok = name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.chars().last().is_some_and(|c| c.is_ascii_alphanumeric());
    if !(3..=512).contains(&name.len()) || !chars_ok || !ends_ok {
        return Err(Error::invalid(format!(
            "Expected a name containing 3-512 characters from [a-zA-Z0-9._-], starting and ending with a character in [a-zA-Z0-9]. Got: {name}"
        )));
    }
    if name.contains("..") {
        return Err(Error::invalid(format!(
            "Expected a name that does not contains two consecutive periods (..). Got {name}"
        )));
    }
    if name.parse::<std::net::IpAddr>().is_ok() {
        return Err(Error::invalid(format!("Expected a name that is not a valid ip address. Got {name}")));
    }
    Ok(())
}

/// Checks a tenant or database name (same character rules as collections, any length >= 3).
pub fn tenant_or_database_name(what: &str, name: &str) -> Result<()> {
    if name.len() < 3 {
        return Err(Error::invalid(format!("{what} name must be at least 3 characters long, got {name:?}")));
    }
    Ok(())
}

/// Checks an id list given to a read or delete: non-empty, no duplicates.
pub fn ids(ids: &[String]) -> Result<()> {
    if ids.is_empty() {
        return Err(Error::invalid("Expected IDs to be a non-empty list, got 0 IDs"));
    }
    let mut seen = HashSet::with_capacity(ids.len());
    let mut dups: Vec<&str> = ids.iter().filter(|id| !seen.insert(id.as_str())).map(String::as_str).collect();
    if !dups.is_empty() {
        dups.dedup();
        return Err(Error::invalid(format!("Expected IDs to be unique, found duplicates of: {}", dups.join(", "))));
    }
    Ok(())
}

/// Checks a write batch against chromadb's rules for `op`.
///
/// `dimension` is the collection's dimensionality if it has one; the batch must agree with it and
/// within itself.
pub fn record_batch(batch: &RecordBatch, op: WriteOp, dimension: Option<usize>) -> Result<()> {
    ids(&batch.ids)?;
    if batch.ids.iter().any(String::is_empty) {
        return Err(Error::invalid("Empty ID, ID must have at least one character"));
    }
    let n = batch.ids.len();
    check_len("embeddings", batch.embeddings.as_ref().map(Vec::len), n)?;
    check_len("documents", batch.documents.as_ref().map(Vec::len), n)?;
    check_len("metadatas", batch.metadatas.as_ref().map(Vec::len), n)?;
    if op != WriteOp::Update && batch.embeddings.is_none() {
        return Err(Error::invalid(
            "You must provide embeddings, or an embedding function to compute them from documents",
        ));
    }
    if let Some(embs) = &batch.embeddings {
        embeddings(embs, dimension)?;
    }
    // chromadb lets a document be missing only when the embedding is given in the same call.
    if batch.embeddings.is_none() && batch.documents.iter().flatten().any(Option::is_none) {
        return Err(Error::invalid("Expected document to be a str, got None"));
    }
    for (i, m) in batch.metadatas.iter().flatten().enumerate() {
        if let Some(m) = m {
            metadata(m, op, i)?;
        }
    }
    Ok(())
}

fn check_len(what: &str, got: Option<usize>, n: usize) -> Result<()> {
    match got {
        Some(len) if len != n => {
            Err(Error::invalid(format!("Number of {what} ({len}) must match number of ids ({n})")))
        }
        _ => Ok(()),
    }
}

/// Checks embeddings are non-empty and of one dimension that matches `dimension` if known.
pub fn embeddings(embs: &[Vec<f32>], dimension: Option<usize>) -> Result<()> {
    if embs.is_empty() {
        return Err(Error::invalid("Expected embeddings to be a list with at least one item, got 0 embeddings"));
    }
    let expected = dimension.unwrap_or(embs[0].len());
    for (i, e) in embs.iter().enumerate() {
        if e.is_empty() {
            return Err(Error::invalid(format!(
                "Expected each embedding to have at least 1 value, got none at pos {i}"
            )));
        }
        if e.len() != expected {
            return Err(Error::DimensionMismatch { expected, got: e.len() });
        }
        if e.iter().any(|x| !x.is_finite()) {
            return Err(Error::invalid(format!(
                "Expected embedding values to be finite numbers, got a NaN or infinity at pos {i}"
            )));
        }
    }
    Ok(())
}

/// Checks the metadata of record `index`: non-empty, no reserved or operator-like keys, and no
/// `None` values on `add` (on `update`/`upsert` they delete the key).
pub fn metadata(m: &UpdateMetadata, op: WriteOp, index: usize) -> Result<()> {
    if m.is_empty() {
        return Err(Error::invalid("Expected metadata to be a non-empty dict, got 0 metadata attributes"));
    }
    if m.contains_key("chroma:document") {
        return Err(Error::invalid("Expected metadata to not contain the reserved key chroma:document"));
    }
    if m.keys().any(|k| k.is_empty() || k.starts_with('#') || k.starts_with('$')) {
        return Err(Error::invalid(format!("Validation error: metadatas: Invalid metadata at index {index}")));
    }
    if op == WriteOp::Add && m.values().any(Option::is_none) {
        return Err(Error::invalid("metadata values must not be None when adding records"));
    }
    Ok(())
}

/// Checks a delete selects something: chromadb refuses a delete with no criterion.
pub fn delete_selection(s: &crate::record::Selection) -> Result<()> {
    if s.is_empty() {
        return Err(Error::invalid("At least one of ids, where, or where_document must be provided in delete."));
    }
    if let Some(i) = &s.ids {
        ids(i)?;
    }
    Ok(())
}

/// Checks a delete request as chromadb 1.5.9 does: a criterion is required, valid ids, and a
/// `limit` only together with `where` or `where_document` (`_validate_and_prepare_delete_request`).
pub fn delete_request(req: &crate::record::DeleteRequest) -> Result<()> {
    delete_selection(&req.selection)?;
    if req.limit.is_some() && req.selection.where_.is_none() && req.selection.where_document.is_none() {
        return Err(Error::invalid("limit can only be specified when a where or where_document clause is provided"));
    }
    Ok(())
}

/// Checks new collection metadata given to `modify`.
pub fn modify_metadata(m: &UpdateMetadata) -> Result<()> {
    if m.is_empty() {
        return Err(Error::invalid("Expected metadata to be a non-empty dict, got 0 metadata attributes"));
    }
    if m.contains_key("hnsw:space") {
        return Err(Error::invalid(
            "Changing the distance function of a collection once it is created is not supported currently.",
        ));
    }
    Ok(())
}

/// Checks collection metadata (no `None` values, non-empty when given).
pub fn collection_metadata(m: &crate::metadata::Metadata) -> Result<()> {
    if m.is_empty() {
        return Err(Error::invalid("Expected metadata to be a non-empty dict, got 0 metadata attributes"));
    }
    Ok(())
}

/// Checks `n_results` is positive.
pub fn n_results(n: i64) -> Result<usize> {
    if n <= 0 {
        return Err(Error::invalid(format!("Number of requested results {n}, cannot be negative, or zero.")));
    }
    usize::try_from(n).map_err(|_| Error::invalid(format!("n_results {n} is too large")))
}

/// Checks an include list for `get` (which has no distances, and no data without a data loader).
pub fn get_include(include: &[Include]) -> Result<()> {
    if include.contains(&Include::Distances) {
        return Err(Error::invalid("Include item cannot be one of distances, got distances"));
    }
    if include.contains(&Include::Data) {
        return Err(Error::invalid("You must set a data loader on the collection if loading from URIs."));
    }
    Ok(())
}

/// Checks a get request's ids.
pub fn get_request(req: &crate::record::GetRequest) -> Result<()> {
    get_include(&req.include)?;
    if let Some(i) = &req.selection.ids {
        ids(i)?;
    }
    Ok(())
}

/// chromadb 1.5.9 refuses a `query` restricted by `ids` alone (no `where`, no `where_document`)
/// when one of those ids is not a live record of a collection that has ever held data: its local
/// executor maps each id to an HNSW label and fails with an internal "Error finding id". With a
/// filter, or before the collection's first write (no dimension yet), missing ids simply match
/// nothing. `live` says whether an id is a record of the collection.
pub fn query_ids_exist(
    selection: &crate::record::Selection,
    dimension: Option<usize>,
    live: impl Fn(&str) -> bool,
) -> Result<()> {
    let Some(ids) = &selection.ids else { return Ok(()) };
    if selection.where_.is_some() || selection.where_document.is_some() || dimension.is_none() {
        return Ok(());
    }
    match ids.iter().find(|id| !live(id)) {
        Some(id) => Err(Error::Internal(format!(
            "Error executing plan: Internal error: Error finding id {id:?} (chromadb refuses a query by ids that are not in the collection)"
        ))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collection_names_follow_chroma() {
        for ok in ["abc", "a_b-c.d", "ABC", &"a".repeat(512)] {
            assert!(collection_name(ok).is_ok(), "{ok}");
        }
        for bad in ["ab", "-abc", "abc-", "a..b", "1.1.1.1", "ab c", "Ünï", "_ab", "aaa.", &"a".repeat(513)] {
            assert!(collection_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn duplicate_ids_rejected() {
        let e = ids(&["a".into(), "b".into(), "a".into()]).unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::InvalidArgument);
        assert!(ids(&[]).is_err());
    }
}
