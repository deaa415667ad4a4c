//! Request builders: `col.query(q).n_results(10).where_(json!({..})).run()`.

use std::sync::Arc;

use chromalite_core::{
    wire, CreateCollection, DeleteRequest, EmbeddingFunction, Error, GetRequest, GetResult, Include, QueryRequest,
    QueryResult, RecordBatch, Result, Selection, Space, Where, WhereDocument,
};
use serde_json::Value;

use crate::client::{Client, Collection};

/// A filter given either as Chroma JSON or as a typed AST.
#[derive(Debug, Clone)]
pub enum Filter {
    Json(Value),
    Where(Where),
    Document(WhereDocument),
}

impl From<Value> for Filter {
    fn from(v: Value) -> Self {
        Filter::Json(v)
    }
}

impl From<Where> for Filter {
    fn from(w: Where) -> Self {
        Filter::Where(w)
    }
}

impl From<WhereDocument> for Filter {
    fn from(d: WhereDocument) -> Self {
        Filter::Document(d)
    }
}

impl Filter {
    pub(crate) fn into_where(self) -> Result<Where> {
        match self {
            Filter::Json(v) => Where::from_json(&v),
            Filter::Where(w) => Ok(w),
            Filter::Document(d) => Ok(Where::Document(d)),
        }
    }

    pub(crate) fn into_where_document(self) -> Result<WhereDocument> {
        match self {
            Filter::Json(v) => WhereDocument::from_json(&v),
            Filter::Document(d) => Ok(d),
            Filter::Where(_) => Err(Error::invalid("a metadata filter was given where a document filter is expected")),
        }
    }
}

/// The record criteria `get` and `query` share; filters are parsed when the call runs.
#[derive(Debug, Default)]
struct Criteria {
    ids: Option<Vec<String>>,
    where_: Option<Filter>,
    where_document: Option<Filter>,
}

impl Criteria {
    fn into_selection(self) -> Result<Selection> {
        Ok(Selection {
            ids: self.ids,
            where_: self.where_.map(Filter::into_where).transpose()?,
            where_document: self.where_document.map(Filter::into_where_document).transpose()?,
        })
    }
}

/// `ids`, `where_` and `where_document` for a builder with a `criteria` field.
macro_rules! criteria_methods {
    () => {
        /// Only records with these ids.
        #[must_use]
        pub fn ids<I: Into<String>>(mut self, ids: impl IntoIterator<Item = I>) -> Self {
            self.criteria.ids = Some(ids.into_iter().map(Into::into).collect());
            self
        }

        /// A metadata filter (Chroma JSON or [`Where`]).
        #[must_use]
        pub fn where_(mut self, f: impl Into<Filter>) -> Self {
            self.criteria.where_ = Some(f.into());
            self
        }

        /// A document filter (Chroma JSON or [`WhereDocument`]).
        #[must_use]
        pub fn where_document(mut self, f: impl Into<Filter>) -> Self {
            self.criteria.where_document = Some(f.into());
            self
        }
    };
}

/// Builds a `create_collection` call.
#[derive(Debug)]
pub struct CreateBuilder<'a> {
    client: &'a Client,
    req: CreateCollection,
    metadata: Option<Value>,
    ef: Option<Arc<dyn EmbeddingFunction>>,
}

impl<'a> CreateBuilder<'a> {
    pub(crate) fn new(client: &'a Client, name: &str) -> Self {
        CreateBuilder {
            client,
            req: CreateCollection { name: name.into(), ..Default::default() },
            metadata: None,
            ef: None,
        }
    }

    /// Collection metadata (a JSON object).
    #[must_use]
    pub fn metadata(mut self, m: Value) -> Self {
        self.metadata = Some(m);
        self
    }

    /// The distance function (stored in the configuration, as chromadb does).
    #[must_use]
    pub fn space(mut self, space: Space) -> Self {
        let mut cfg = self.req.configuration.take().unwrap_or_else(|| serde_json::json!({}));
        cfg["hnsw"]["space"] = Value::String(space.as_str().into());
        self.req.configuration = Some(cfg);
        self
    }

    /// A full configuration JSON, as chromadb's `configuration=` argument.
    #[must_use]
    pub fn configuration(mut self, c: Value) -> Self {
        self.req.configuration = Some(c);
        self
    }

    /// Return the existing collection instead of failing with `AlreadyExists`.
    #[must_use]
    pub fn get_or_create(mut self) -> Self {
        self.req.get_or_create = true;
        self
    }

    /// The collection's embedding function: recorded in its configuration as chromadb records it
    /// (so Python opens the collection with the same model) and attached to the returned handle.
    #[must_use]
    pub fn embedding_function(mut self, ef: Arc<dyn EmbeddingFunction>) -> Self {
        self.ef = Some(ef);
        self
    }

    /// Creates the collection.
    pub fn run(mut self) -> Result<Collection> {
        self.req.metadata = self.metadata.as_ref().map(wire::collection_metadata).transpose()?;
        if let Some(ef) = &self.ef {
            let mut cfg = self.req.configuration.take().unwrap_or_else(|| serde_json::json!({}));
            cfg["embedding_function"] = ef.configuration_json();
            self.req.configuration = Some(cfg);
        }
        let info = self.client.backend().create_collection(self.client.database(), &self.req)?;
        let col = self.client.handle(info);
        match self.ef {
            Some(ef) => col.with_embedding_function(ef),
            None => Ok(col),
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum WriteKind {
    Add,
    Upsert,
    Update,
}

/// Builds an `add`, `upsert` or `update` call.
#[derive(Debug)]
pub struct WriteBuilder<'a> {
    col: &'a Collection,
    kind: WriteKind,
    batch: RecordBatch,
    metadatas: Option<Vec<Value>>,
}

impl<'a> WriteBuilder<'a> {
    pub(crate) fn new<I: Into<String>>(col: &'a Collection, kind: WriteKind, ids: impl IntoIterator<Item = I>) -> Self {
        WriteBuilder { col, kind, batch: RecordBatch::new(ids), metadatas: None }
    }

    /// One embedding per id.
    #[must_use]
    pub fn embeddings(mut self, e: Vec<Vec<f32>>) -> Self {
        self.batch.embeddings = Some(e);
        self
    }

    /// One document per id.
    #[must_use]
    pub fn documents<D: Into<String>>(mut self, docs: impl IntoIterator<Item = D>) -> Self {
        self.batch.documents = Some(docs.into_iter().map(|d| Some(d.into())).collect());
        self
    }

    /// One metadata object (or `null`) per id.
    #[must_use]
    pub fn metadatas(mut self, m: impl IntoIterator<Item = Value>) -> Self {
        self.metadatas = Some(m.into_iter().collect());
        self
    }

    /// Performs the write. Without embeddings, the documents are embedded by the collection's
    /// embedding function (if it has one; the backend refuses the write otherwise, as chromadb).
    pub fn run(mut self) -> Result<()> {
        if let Some(m) = self.metadatas.take() {
            self.batch.metadatas = Some(wire::metadatas(&Value::Array(m))?);
        }
        if let (None, Some(docs), Some(ef)) =
            (&self.batch.embeddings, &self.batch.documents, self.col.embedding_function())
        {
            self.batch.embeddings = Some(embed_documents(ef.as_ref(), docs)?);
        }
        let (b, info) = (self.col.backend(), self.col.info());
        match self.kind {
            WriteKind::Add => b.add(info, &self.batch),
            WriteKind::Upsert => b.upsert(info, &self.batch),
            WriteKind::Update => b.update(info, &self.batch),
        }
    }
}

/// Embeds a document column; every record needs a document then, as in chromadb.
pub(crate) fn embed_documents(ef: &dyn EmbeddingFunction, docs: &[Option<String>]) -> Result<Vec<Vec<f32>>> {
    let texts = docs
        .iter()
        .map(|d| {
            d.as_deref().ok_or_else(|| Error::invalid("every record needs a document (or an embedding) to be embedded"))
        })
        .collect::<Result<Vec<&str>>>()?;
    Ok(ef.embed(&texts)?)
}

/// Builds a `get` call.
#[derive(Debug)]
pub struct GetBuilder<'a> {
    col: &'a Collection,
    req: GetRequest,
    criteria: Criteria,
}

impl<'a> GetBuilder<'a> {
    pub(crate) fn new(col: &'a Collection) -> Self {
        GetBuilder { col, req: GetRequest::default(), criteria: Criteria::default() }
    }

    criteria_methods!();

    /// At most `n` records.
    #[must_use]
    pub fn limit(mut self, n: usize) -> Self {
        self.req.limit = Some(n);
        self
    }

    /// Skip the first `n` matching records.
    #[must_use]
    pub fn offset(mut self, n: usize) -> Self {
        self.req.offset = n;
        self
    }

    /// Which fields to return (default: metadatas and documents).
    #[must_use]
    pub fn include(mut self, fields: impl IntoIterator<Item = Include>) -> Self {
        self.req.include = fields.into_iter().collect();
        self
    }

    /// Runs the read.
    pub fn run(mut self) -> Result<GetResult> {
        self.req.selection = self.criteria.into_selection()?;
        self.col.backend().get(self.col.info(), &self.req)
    }
}

/// Builds a `delete` call: chromadb's `Collection.delete(ids, where, where_document, limit)`.
///
/// [`run`](DeleteBuilder::run) returns chromadb's `deleted` count: with ids alone, the number of
/// ids given (missing ones included: chromadb deletes them without looking them up); with a
/// filter, the number of records that matched (and, with ids too, were among them).
///
/// ```
/// use chromalite::Client;
/// use serde_json::json;
///
/// let client = Client::in_memory();
/// let col = client.create_collection("jobs").run()?;
/// col.add(["a", "b", "c"])
///     .embeddings(vec![vec![1.0], vec![2.0], vec![3.0]])
///     .metadatas([json!({"done": true}), json!({"done": false}), json!({"done": true})])
///     .run()?;
/// // The first finished job, in `get` order (insertion order): "a".
/// assert_eq!(col.delete().where_(json!({"done": true})).limit(1).run()?, 1);
/// // Ids alone count every id given, as chromadb does.
/// assert_eq!(col.delete().ids(["b", "gone"]).run()?, 2);
/// assert_eq!(col.get().run()?.ids, vec!["c"]);
/// # Ok::<(), chromalite::Error>(())
/// ```
#[derive(Debug)]
pub struct DeleteBuilder<'a> {
    col: &'a Collection,
    criteria: Criteria,
    limit: Option<u32>,
}

impl<'a> DeleteBuilder<'a> {
    pub(crate) fn new(col: &'a Collection) -> Self {
        DeleteBuilder { col, criteria: Criteria::default(), limit: None }
    }

    criteria_methods!();

    /// Deletes at most `n` records, the first matching ones in `get` order. Only together with
    /// [`where_`](DeleteBuilder::where_) or [`where_document`](DeleteBuilder::where_document)
    /// (`run` refuses it otherwise, as chromadb does).
    #[must_use]
    pub fn limit(mut self, n: u32) -> Self {
        self.limit = Some(n);
        self
    }

    /// Runs the delete; returns chromadb's `deleted` count. At least one of ids, `where_` and
    /// `where_document` is required.
    pub fn run(self) -> Result<usize> {
        let req = DeleteRequest { selection: self.criteria.into_selection()?, limit: self.limit };
        self.col.backend().delete_records(self.col.info(), &req)
    }
}

/// Builds a `query` call.
#[derive(Debug)]
pub struct QueryBuilder<'a> {
    col: &'a Collection,
    req: QueryRequest,
    criteria: Criteria,
    texts: Option<Vec<String>>,
}

impl<'a> QueryBuilder<'a> {
    pub(crate) fn new(col: &'a Collection, embeddings: Vec<Vec<f32>>) -> Self {
        QueryBuilder {
            col,
            req: QueryRequest { embeddings, ..Default::default() },
            criteria: Criteria::default(),
            texts: None,
        }
    }

    pub(crate) fn with_texts(col: &'a Collection, texts: Vec<String>) -> Self {
        QueryBuilder { texts: Some(texts), ..QueryBuilder::new(col, Vec::new()) }
    }

    /// Neighbours per query (default 10).
    #[must_use]
    pub fn n_results(mut self, n: usize) -> Self {
        self.req.n_results = n;
        self
    }

    criteria_methods!();

    /// Which fields to return (default: metadatas, documents, distances).
    #[must_use]
    pub fn include(mut self, fields: impl IntoIterator<Item = Include>) -> Self {
        self.req.include = fields.into_iter().collect();
        self
    }

    /// Runs the search.
    pub fn run(mut self) -> Result<QueryResult> {
        if self.req.n_results == 0 {
            return Err(Error::invalid("Number of requested results 0, cannot be negative, or zero."));
        }
        self.req.selection = self.criteria.into_selection()?;
        if let Some(texts) = &self.texts {
            let ef = self.col.embedding_function().ok_or_else(|| {
                Error::invalid(
                    "query texts need an embedding function: attach one with Collection::with_embedding_function",
                )
            })?;
            self.req.embeddings = ef.embed(&texts.iter().map(String::as_str).collect::<Vec<_>>())?;
        }
        self.col.backend().query(self.col.info(), &self.req)
    }
}
