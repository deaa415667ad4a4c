//! Copying collections between stores of any kind (persistent, Lance, remote, memory).
//!
//! A copy recreates the collection with its metadata and configuration, then moves the records in
//! insertion order, page by page, with ids, embeddings, documents and metadata as stored. The
//! target collection must not exist yet: a copy never merges into or overwrites data. At the end
//! the record counts of both sides are compared.
//!
//! ```
//! use chromalite::{migrate, Client};
//!
//! let from = Client::in_memory();
//! let col = from.create_collection("notes").run()?;
//! col.add(["a", "b"]).embeddings(vec![vec![1.0, 0.0], vec![0.0, 1.0]]).documents(["x", "y"]).run()?;
//! let to = Client::in_memory();
//! let copied = migrate::copy_collection(&from, &to, "notes", 1000, &mut |_| {})?;
//! assert_eq!(copied, 2);
//! assert_eq!(to.get_collection("notes")?.count()?, 2);
//! # Ok::<(), chromalite::Error>(())
//! ```

use chromalite_core::{CreateCollection, Error, GetRequest, Include, RecordBatch, Result};

use crate::Client;

/// Progress of one collection's copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress<'a> {
    pub collection: &'a str,
    /// Records copied so far.
    pub copied: usize,
    /// Records in the source when the copy started.
    pub total: usize,
}

/// Copies collection `name` from `from` into `to` (both in their own tenant and database), in
/// pages of `page` records, calling `progress` after each page. Returns the number of records.
pub fn copy_collection(
    from: &Client,
    to: &Client,
    name: &str,
    page: usize,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<usize> {
    let src = from.backend().get_collection(from.database(), name)?;
    let total = from.backend().count(&src)?;
    let create = CreateCollection {
        name: name.to_string(),
        metadata: src.metadata.clone(),
        configuration: Some(src.config.to_json()),
        get_or_create: false,
    };
    let dst = to.backend().create_collection(to.database(), &create)?;
    let page = page.max(1);
    let mut copied = 0;
    loop {
        let req = GetRequest {
            limit: Some(page),
            offset: copied,
            include: vec![Include::Embeddings, Include::Documents, Include::Metadatas],
            ..Default::default()
        };
        let got = from.backend().get(&src, &req)?;
        if got.ids.is_empty() {
            break;
        }
        let n = got.ids.len();
        let batch = RecordBatch {
            ids: got.ids,
            embeddings: got.embeddings,
            documents: got.documents,
            metadatas: got.metadatas.map(|ms| {
                ms.into_iter().map(|m| m.map(|m| m.into_iter().map(|(k, v)| (k, Some(v))).collect())).collect()
            }),
        };
        to.backend().add(&dst, &batch)?;
        copied += n;
        progress(Progress { collection: name, copied, total });
    }
    to.backend().flush()?;
    let landed = to.backend().count(&dst)?;
    if landed != copied {
        return Err(Error::Internal(format!(
            "copy of {name:?}: read {copied} records but the target holds {landed} (were ids duplicated in the source?)"
        )));
    }
    Ok(copied)
}

/// Copies every collection of `from`'s database (or those named in `only`), in listing order.
/// Returns (collection, records) pairs.
pub fn copy_all(
    from: &Client,
    to: &Client,
    only: &[String],
    page: usize,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<Vec<(String, usize)>> {
    let names: Vec<String> = if only.is_empty() {
        from.backend().list_collections(from.database(), None, 0)?.into_iter().map(|c| c.name).collect()
    } else {
        only.to_vec()
    };
    names.into_iter().map(|name| copy_collection(from, to, &name, page, progress).map(|n| (name, n))).collect()
}
