//! Records, the requests that read and write them, and their results in chromadb's shape.

use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::filter::{Where, WhereDocument};
use crate::metadata::{metadata_to_json, Metadata, UpdateMetadata};

/// A field a read can return.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Include {
    Documents,
    Metadatas,
    Embeddings,
    Distances,
    Uris,
    Data,
}

impl Include {
    /// Chroma's name of the field.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Include::Documents => "documents",
            Include::Metadatas => "metadatas",
            Include::Embeddings => "embeddings",
            Include::Distances => "distances",
            Include::Uris => "uris",
            Include::Data => "data",
        }
    }

    /// Parses Chroma's name of a field.
    pub fn parse(s: &str) -> Result<Include> {
        Ok(match s.trim() {
            "documents" => Include::Documents,
            "metadatas" => Include::Metadatas,
            "embeddings" => Include::Embeddings,
            "distances" => Include::Distances,
            "uris" => Include::Uris,
            "data" => Include::Data,
            other => {
                return Err(Error::invalid(format!(
                    "Expected include item to be one of documents, embeddings, metadatas, distances, uris, data, got {other}"
                )))
            }
        })
    }

    /// chromadb's default for `get`.
    pub const GET_DEFAULT: &'static [Include] = &[Include::Metadatas, Include::Documents];
    /// chromadb's default for `query`.
    pub const QUERY_DEFAULT: &'static [Include] = &[Include::Metadatas, Include::Documents, Include::Distances];

    /// Parses a comma-separated list such as `documents,distances`.
    pub fn parse_list(s: &str) -> Result<Vec<Include>> {
        s.split(',').filter(|p| !p.trim().is_empty()).map(Include::parse).collect()
    }
}

/// Records to write: `add`, `upsert` and `update` share this shape.
///
/// Absent columns are `None`; inside a present column, a `None` entry means "no value" for that
/// record (on `update`, "leave unchanged"). A metadata entry whose value is `None` removes that key
/// on `update`/`upsert`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RecordBatch {
    pub ids: Vec<String>,
    pub embeddings: Option<Vec<Vec<f32>>>,
    pub documents: Option<Vec<Option<String>>>,
    pub metadatas: Option<Vec<Option<UpdateMetadata>>>,
}

impl RecordBatch {
    /// A batch of `ids` with nothing else yet.
    pub fn new(ids: impl IntoIterator<Item = impl Into<String>>) -> Self {
        RecordBatch { ids: ids.into_iter().map(Into::into).collect(), ..Default::default() }
    }

    /// Number of records.
    #[must_use]
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// True when the batch has no records.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The metadata record `i` is stored with when it is new: `None` values dropped, and an
    /// empty map stored as no metadata (as chromadb returns it).
    #[must_use]
    pub fn new_metadata(&self, i: usize) -> Option<Metadata> {
        let update = self.metadatas.as_ref().and_then(|m| m.get(i)).and_then(Option::as_ref)?;
        Some(crate::metadata::strip_nulls(update)).filter(|m| !m.is_empty())
    }

    /// Applies record `i` to a stored record with chromadb's update rules (shared by `update` and
    /// by `upsert` of an existing id): a given embedding or document replaces the stored one, a
    /// metadata map merges key by key (a `None` value removes the key); absent fields stay.
    pub fn merge_into(
        &self,
        i: usize,
        embedding: &mut Vec<f32>,
        document: &mut Option<String>,
        metadata: &mut Option<Metadata>,
    ) {
        if let Some(e) = self.embeddings.as_ref().and_then(|e| e.get(i)) {
            embedding.clone_from(e);
        }
        if let Some(doc) = self.documents.as_ref().and_then(|d| d.get(i)).and_then(Option::as_ref) {
            *document = Some(doc.clone());
        }
        if let Some(update) = self.metadatas.as_ref().and_then(|m| m.get(i)).and_then(Option::as_ref) {
            let mut merged = metadata.take().unwrap_or_default();
            crate::metadata::merge_metadata(&mut merged, update);
            *metadata = Some(merged).filter(|m| !m.is_empty());
        }
    }
}

/// Which records a `get` or `delete` selects.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Selection {
    pub ids: Option<Vec<String>>,
    pub where_: Option<Where>,
    pub where_document: Option<WhereDocument>,
}

impl Selection {
    /// True when no criterion is set (selects every record).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.ids.is_none() && self.where_.is_none() && self.where_document.is_none()
    }

    /// Whether a record passes the `where` and `where_document` parts (ids are checked apart).
    #[must_use]
    pub fn filters_match(&self, metadata: Option<&Metadata>, document: Option<&str>) -> bool {
        self.where_.as_ref().is_none_or(|w| w.matches(metadata, document))
            && self.where_document.as_ref().is_none_or(|d| d.matches(document))
    }
}

/// The arguments of chromadb's `Collection.delete(ids, where, where_document, limit)`.
///
/// chromadb deletes in two ways, and counts accordingly (`DeleteResult["deleted"]`):
/// - **ids only** (no `where`, no `where_document`): every given id is deleted and counted,
///   whether or not it exists (deleting `["a", "missing"]` reports 2);
/// - **with a filter**: the records matching the filters (and the ids, when given too) are
///   deleted and counted; `limit` deletes only the first `limit` of them in `get` order.
///
/// chromadb refuses a request with no criterion, a `limit` without `where`/`where_document`, and
/// (as with every ids argument) an empty or duplicated id list; `limit: Some(0)` deletes nothing.
///
/// ```
/// use chromalite_core::{DeleteRequest, Selection, Where};
///
/// let oldest_two = DeleteRequest::new(Selection { where_: Some(Where::eq("kind", "log")), ..Default::default() })
///     .limit(2);
/// assert_eq!(oldest_two.limit, Some(2));
/// assert!(oldest_two.ids_only().is_none());
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeleteRequest {
    pub selection: Selection,
    /// At most this many records (the first in `get` order); only together with a filter.
    pub limit: Option<u32>,
}

impl DeleteRequest {
    /// Deletes what `selection` selects, with no limit.
    #[must_use]
    pub fn new(selection: Selection) -> Self {
        DeleteRequest { selection, limit: None }
    }

    /// Deletes at most `n` records.
    #[must_use]
    pub fn limit(mut self, n: u32) -> Self {
        self.limit = Some(n);
        self
    }

    /// The ids when they are the only criterion: chromadb then deletes them without looking them
    /// up, and reports all of them as deleted (missing ones too).
    #[must_use]
    pub fn ids_only(&self) -> Option<&[String]> {
        let s = &self.selection;
        if s.where_.is_none() && s.where_document.is_none() {
            s.ids.as_deref()
        } else {
            None
        }
    }

    /// The `limit` as a `usize` (no limit: `None`).
    #[must_use]
    pub fn limit_usize(&self) -> Option<usize> {
        self.limit.map(|n| usize::try_from(n).unwrap_or(usize::MAX))
    }
}

impl From<Selection> for DeleteRequest {
    fn from(selection: Selection) -> Self {
        DeleteRequest::new(selection)
    }
}

/// The arguments of `get`.
#[derive(Debug, Clone, PartialEq)]
pub struct GetRequest {
    pub selection: Selection,
    pub limit: Option<usize>,
    pub offset: usize,
    pub include: Vec<Include>,
}

impl Default for GetRequest {
    fn default() -> Self {
        GetRequest { selection: Selection::default(), limit: None, offset: 0, include: Include::GET_DEFAULT.to_vec() }
    }
}

/// The arguments of `query`.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryRequest {
    pub embeddings: Vec<Vec<f32>>,
    pub n_results: usize,
    /// Restricts the search to these ids and the filters.
    pub selection: Selection,
    pub include: Vec<Include>,
}

impl Default for QueryRequest {
    fn default() -> Self {
        QueryRequest {
            embeddings: Vec::new(),
            n_results: 10,
            selection: Selection::default(),
            include: Include::QUERY_DEFAULT.to_vec(),
        }
    }
}

/// One stored record.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Record {
    pub id: String,
    pub embedding: Option<Vec<f32>>,
    pub document: Option<String>,
    pub metadata: Option<Metadata>,
}

/// The result of `get`: parallel columns, present when included.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GetResult {
    pub ids: Vec<String>,
    pub embeddings: Option<Vec<Vec<f32>>>,
    pub documents: Option<Vec<Option<String>>>,
    pub metadatas: Option<Vec<Option<Metadata>>>,
    /// chromalite stores no URIs; when requested, every entry is `None` (as chromadb without URIs).
    pub uris: Option<Vec<Option<String>>>,
    pub include: Vec<Include>,
}

impl GetResult {
    /// Builds the columns requested by `include` from records in result order.
    #[must_use]
    pub fn from_records(records: Vec<Record>, include: &[Include]) -> GetResult {
        let has = |i| include.contains(&i);
        let mut r = GetResult { include: include.to_vec(), ..Default::default() };
        r.embeddings = has(Include::Embeddings).then(Vec::new);
        r.documents = has(Include::Documents).then(Vec::new);
        r.metadatas = has(Include::Metadatas).then(Vec::new);
        r.uris = has(Include::Uris).then(Vec::new);
        for rec in records {
            if let Some(u) = r.uris.as_mut() {
                u.push(None);
            }
            if let Some(e) = r.embeddings.as_mut() {
                e.push(rec.embedding.unwrap_or_default());
            }
            if let Some(d) = r.documents.as_mut() {
                d.push(rec.document);
            }
            if let Some(m) = r.metadatas.as_mut() {
                m.push(crate::metadata::visible(rec.metadata.as_ref()));
            }
            r.ids.push(rec.id);
        }
        r
    }

    /// chromadb's JSON shape: every key of its `GetResult` (`ids`, `embeddings`, `documents`,
    /// `uris`, `data`, `metadatas`), `null` where not included, plus `include`.
    #[must_use]
    pub fn to_json(&self) -> Value {
        json!({
            "ids": self.ids,
            "embeddings": self.embeddings.as_ref().map(|e| embeddings_json(e)),
            "documents": self.documents,
            "uris": self.uris,
            "data": Value::Null,
            "metadatas": self.metadatas.as_ref().map(|m| metadatas_json(m)),
            "include": include_json(&self.include),
        })
    }
}

/// The result of `query`: one list per query embedding in each column.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct QueryResult {
    pub ids: Vec<Vec<String>>,
    pub distances: Option<Vec<Vec<f32>>>,
    pub embeddings: Option<Vec<Vec<Vec<f32>>>>,
    pub documents: Option<Vec<Vec<Option<String>>>>,
    pub metadatas: Option<Vec<Vec<Option<Metadata>>>>,
    pub uris: Option<Vec<Vec<Option<String>>>>,
    pub include: Vec<Include>,
}

impl QueryResult {
    /// An empty result for `include`, ready for [`QueryResult::push`].
    ///
    /// Asking a query for `data` behaves as chromadb does without a data loader: `uris` joins the
    /// include list and metadatas are returned.
    #[must_use]
    pub fn new(include: &[Include]) -> QueryResult {
        let mut include = include.to_vec();
        let data = include.contains(&Include::Data);
        if data && !include.contains(&Include::Uris) {
            include.push(Include::Uris);
        }
        let has = |i| include.contains(&i);
        QueryResult {
            ids: Vec::new(),
            distances: has(Include::Distances).then(Vec::new),
            embeddings: has(Include::Embeddings).then(Vec::new),
            documents: has(Include::Documents).then(Vec::new),
            metadatas: (data || has(Include::Metadatas)).then(Vec::new),
            uris: has(Include::Uris).then(Vec::new),
            include,
        }
    }

    /// Appends one query's hits, nearest first.
    pub fn push(&mut self, hits: Vec<(Record, f32)>) {
        let (records, distances): (Vec<Record>, Vec<f32>) = hits.into_iter().unzip();
        if let Some(d) = self.distances.as_mut() {
            d.push(distances);
        }
        let mut columns = self.include.clone();
        if self.metadatas.is_some() {
            columns.push(Include::Metadatas);
        }
        let g = GetResult::from_records(records, &columns);
        if let Some(u) = self.uris.as_mut() {
            u.push(g.uris.unwrap_or_default());
        }
        if let Some(e) = self.embeddings.as_mut() {
            e.push(g.embeddings.unwrap_or_default());
        }
        if let Some(d) = self.documents.as_mut() {
            d.push(g.documents.unwrap_or_default());
        }
        if let Some(m) = self.metadatas.as_mut() {
            m.push(g.metadatas.unwrap_or_default());
        }
        self.ids.push(g.ids);
    }

    /// chromadb's JSON shape, nested per query: every key of its `QueryResult` (`ids`,
    /// `distances`, `embeddings`, `documents`, `uris`, `data`, `metadatas`), `null` where not
    /// included, plus `include`.
    #[must_use]
    pub fn to_json(&self) -> Value {
        json!({
            "ids": self.ids,
            "distances": self.distances,
            "embeddings": self.embeddings.as_ref().map(|q| q.iter().map(|e| embeddings_json(e)).collect::<Vec<_>>()),
            "documents": self.documents,
            "uris": self.uris,
            "data": Value::Null,
            "metadatas": self.metadatas.as_ref().map(|q| q.iter().map(|m| metadatas_json(m)).collect::<Vec<_>>()),
            "include": include_json(&self.include),
        })
    }
}

fn embeddings_json(e: &[Vec<f32>]) -> Value {
    Value::Array(e.iter().map(|v| Value::Array(v.iter().map(|x| json!(f64::from(*x))).collect())).collect())
}

fn metadatas_json(m: &[Option<Metadata>]) -> Value {
    Value::Array(m.iter().map(|m| m.as_ref().map_or(Value::Null, metadata_to_json)).collect())
}

fn include_json(include: &[Include]) -> Value {
    Value::Array(include.iter().map(|i| Value::String(i.as_str().into())).collect())
}
