//! [`Client`] and [`Collection`]: the user-facing handles over any backend.

use std::sync::Arc;

use chromalite_core::{CollectionInfo, DatabaseRef, EmbeddingFunction, ModifyCollection, Result, VectorBackend};
use chromalite_memory::MemoryBackend;

use crate::requests::{CreateBuilder, DeleteBuilder, GetBuilder, QueryBuilder, WriteBuilder, WriteKind};

/// A connection to one store, scoped to a tenant and database.
#[derive(Clone)]
pub struct Client {
    backend: Arc<dyn VectorBackend>,
    db: DatabaseRef,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("backend", &self.backend.kind()).field("db", &self.db).finish()
    }
}

impl Client {
    /// A client over any backend, on the default tenant and database.
    pub fn with_backend(backend: Arc<dyn VectorBackend>) -> Client {
        Client { backend, db: DatabaseRef::default() }
    }

    /// A fresh in-memory store (nothing survives the process).
    #[must_use]
    pub fn in_memory() -> Client {
        Client::with_backend(Arc::new(MemoryBackend::new()))
    }

    /// Opens (or creates) a Chroma persist directory as its single writer.
    ///
    /// The directory is what Python `chromadb.PersistentClient(path)` uses; both can work on it
    /// (not at the same moment as writers: a second writer gets `ErrorKind::Locked`).
    pub fn persistent(path: impl AsRef<std::path::Path>) -> Result<Client> {
        Ok(Client::with_backend(Arc::new(chromalite_sqlite::SqliteBackend::open(path.as_ref())?)))
    }

    /// Opens an existing Chroma persist directory for reading only: no writer lock is taken, so
    /// it works beside a writer in another process (chromalite or chromadb) and sees its commits.
    /// Writes fail with `ErrorKind::ReadOnly`; a missing directory is `NotFound`.
    pub fn persistent_read_only(path: impl AsRef<std::path::Path>) -> Result<Client> {
        Ok(Client::with_backend(Arc::new(chromalite_sqlite::SqliteBackend::open_read_only(path.as_ref())?)))
    }

    /// Opens (or creates) a `LanceDB` store: one Lance table per collection (cargo feature `lance`).
    ///
    /// Same API and answers as the other backends; records stay on disk, so collections can
    /// outgrow RAM. It is not a Chroma directory: copy between the two with [`crate::migrate`].
    #[cfg(feature = "lance")]
    pub fn lance(path: impl AsRef<std::path::Path>) -> Result<Client> {
        Client::lance_with(path, chromalite_lance::LanceOptions::default())
    }

    /// Opens an existing `LanceDB` store for reading only (cargo feature `lance`): no writer lock
    /// is taken, so it works beside a writer in another process and sees its commits. Writes fail
    /// with `ErrorKind::ReadOnly`; a missing store is `NotFound`. The Lance counterpart of
    /// [`Client::persistent_read_only`].
    #[cfg(feature = "lance")]
    pub fn lance_read_only(path: impl AsRef<std::path::Path>) -> Result<Client> {
        Ok(Client::with_backend(Arc::new(chromalite_lance::LanceBackend::open_read_only(path.as_ref())?)))
    }

    /// [`Client::lance`] with explicit options (vector index threshold, lock wait, read-only).
    #[cfg(feature = "lance")]
    pub fn lance_with(path: impl AsRef<std::path::Path>, options: chromalite_lance::LanceOptions) -> Result<Client> {
        Ok(Client::with_backend(Arc::new(chromalite_lance::LanceBackend::open_with(path.as_ref(), options)?)))
    }

    /// A Chroma server at `url` (`http://host:port`), without a token.
    ///
    /// No request is sent yet: calls fail with `ErrorKind::Unavailable` while the server is down
    /// and work again once it is back.
    pub fn remote(url: &str) -> Result<Client> {
        Client::remote_with(&chromalite_remote::RemoteOptions::new(url))
    }

    /// A Chroma server with explicit options (token, auth header, timeouts, pool size).
    pub fn remote_with(options: &chromalite_remote::RemoteOptions) -> Result<Client> {
        Ok(Client::with_backend(Arc::new(chromalite_remote::RemoteBackend::with_options(options)?)))
    }

    /// The same store, scoped to another tenant and database (which must exist).
    #[must_use]
    pub fn scoped(&self, tenant: &str, database: &str) -> Client {
        Client { backend: Arc::clone(&self.backend), db: DatabaseRef::new(tenant, database) }
    }

    /// The backend this client talks to.
    #[must_use]
    pub fn backend(&self) -> &Arc<dyn VectorBackend> {
        &self.backend
    }

    /// The tenant and database this client works in.
    #[must_use]
    pub fn database(&self) -> &DatabaseRef {
        &self.db
    }

    /// Checks the backend answers.
    pub fn heartbeat(&self) -> Result<u64> {
        self.backend.heartbeat()
    }

    /// Starts creating a collection; finish with [`CreateBuilder::run`].
    #[must_use]
    pub fn create_collection(&self, name: &str) -> CreateBuilder<'_> {
        CreateBuilder::new(self, name)
    }

    /// The collection `name`, creating it with defaults if missing.
    pub fn get_or_create_collection(&self, name: &str) -> Result<Collection> {
        self.create_collection(name).get_or_create().run()
    }

    /// The existing collection `name` (`NotFound` otherwise).
    pub fn get_collection(&self, name: &str) -> Result<Collection> {
        let info = self.backend.get_collection(&self.db, name)?;
        Ok(self.handle(info))
    }

    /// All collections, in chromadb's order.
    pub fn list_collections(&self) -> Result<Vec<Collection>> {
        Ok(self.backend.list_collections(&self.db, None, 0)?.into_iter().map(|i| self.handle(i)).collect())
    }

    /// Deletes a collection and its records.
    pub fn delete_collection(&self, name: &str) -> Result<()> {
        self.backend.delete_collection(&self.db, name)
    }

    pub(crate) fn handle(&self, info: CollectionInfo) -> Collection {
        Collection { client: self.clone(), info, ef: None }
    }
}

/// A handle on one collection. Cheap to clone; every call goes to the backend.
#[derive(Debug, Clone)]
pub struct Collection {
    client: Client,
    info: CollectionInfo,
    /// Embeds documents written without embeddings and query texts, as chromadb's collection does.
    ef: Option<Arc<dyn EmbeddingFunction>>,
}

impl Collection {
    /// The collection's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.info.name
    }

    /// The collection's UUID.
    #[must_use]
    pub fn id(&self) -> &str {
        &self.info.id
    }

    /// The description the backend gave when this handle was made.
    #[must_use]
    pub fn info(&self) -> &CollectionInfo {
        &self.info
    }

    pub(crate) fn backend(&self) -> &dyn VectorBackend {
        self.client.backend.as_ref()
    }

    /// This handle with `ef` attached: writes that give documents but no embeddings embed them,
    /// and [`Collection::query_texts`] works. Refused (`InvalidArgument`) when the collection's
    /// configuration records a different known function, as chromadb refuses it.
    pub fn with_embedding_function(mut self, ef: Arc<dyn EmbeddingFunction>) -> Result<Collection> {
        chromalite_core::embedding::check_compatible(ef.as_ref(), &self.info.config.embedding_function)?;
        self.ef = Some(ef);
        Ok(self)
    }

    /// The embedding function attached to this handle, if any.
    #[must_use]
    pub fn embedding_function(&self) -> Option<&Arc<dyn EmbeddingFunction>> {
        self.ef.as_ref()
    }

    /// Nearest-neighbour search for each of `texts`, embedded by the attached embedding function
    /// (`InvalidArgument` at `run` when there is none); finish with [`QueryBuilder::run`].
    #[must_use]
    pub fn query_texts<T: Into<String>>(&self, texts: impl IntoIterator<Item = T>) -> QueryBuilder<'_> {
        QueryBuilder::with_texts(self, texts.into_iter().map(Into::into).collect())
    }

    /// Adds records (existing ids are ignored, as in chromadb).
    pub fn add<I: Into<String>>(&self, ids: impl IntoIterator<Item = I>) -> WriteBuilder<'_> {
        WriteBuilder::new(self, WriteKind::Add, ids)
    }

    /// Inserts or updates records.
    pub fn upsert<I: Into<String>>(&self, ids: impl IntoIterator<Item = I>) -> WriteBuilder<'_> {
        WriteBuilder::new(self, WriteKind::Upsert, ids)
    }

    /// Updates existing records (missing ids are ignored).
    pub fn update<I: Into<String>>(&self, ids: impl IntoIterator<Item = I>) -> WriteBuilder<'_> {
        WriteBuilder::new(self, WriteKind::Update, ids)
    }

    /// Reads records; finish with [`GetBuilder::run`].
    #[must_use]
    pub fn get(&self) -> GetBuilder<'_> {
        GetBuilder::new(self)
    }

    /// Nearest-neighbour search for each of `embeddings`; finish with [`QueryBuilder::run`].
    #[must_use]
    pub fn query(&self, embeddings: Vec<Vec<f32>>) -> QueryBuilder<'_> {
        QueryBuilder::new(self, embeddings)
    }

    /// Deletes records by ids and/or filters, at most a limit; finish with [`DeleteBuilder::run`],
    /// which returns chromadb's `deleted` count.
    #[must_use]
    pub fn delete(&self) -> DeleteBuilder<'_> {
        DeleteBuilder::new(self)
    }

    /// Runs a prepared [`DeleteRequest`](chromalite_core::DeleteRequest); returns chromadb's
    /// `deleted` count.
    pub fn delete_request(&self, req: &chromalite_core::DeleteRequest) -> Result<usize> {
        self.backend().delete_records(&self.info, req)
    }

    /// Runs a prepared [`GetRequest`](chromalite_core::GetRequest).
    pub fn get_request(&self, req: &chromalite_core::GetRequest) -> Result<chromalite_core::GetResult> {
        self.backend().get(&self.info, req)
    }

    /// Runs a prepared [`QueryRequest`](chromalite_core::QueryRequest).
    pub fn query_request(&self, req: &chromalite_core::QueryRequest) -> Result<chromalite_core::QueryResult> {
        self.backend().query(&self.info, req)
    }

    /// Upserts a prepared [`RecordBatch`](chromalite_core::RecordBatch).
    pub fn upsert_batch(&self, batch: &chromalite_core::RecordBatch) -> Result<()> {
        self.backend().upsert(&self.info, batch)
    }

    /// Adds a prepared [`RecordBatch`](chromalite_core::RecordBatch).
    pub fn add_batch(&self, batch: &chromalite_core::RecordBatch) -> Result<()> {
        self.backend().add(&self.info, batch)
    }

    /// Number of records.
    pub fn count(&self) -> Result<usize> {
        self.backend().count(&self.info)
    }

    /// The first `limit` records with embeddings, documents and metadatas.
    pub fn peek(&self, limit: usize) -> Result<chromalite_core::GetResult> {
        self.backend().peek(&self.info, limit)
    }

    /// Changes mutable configuration (e.g. `{"hnsw": {"ef_search": 50}}`), as chromadb's
    /// `modify(configuration=...)`.
    pub fn modify_configuration(&self, configuration: &serde_json::Value) -> Result<()> {
        let req = ModifyCollection { new_configuration: Some(configuration.clone()), ..ModifyCollection::default() };
        self.backend().modify_collection(&self.client.db, &self.info.name, &req)
    }

    /// Renames the collection and/or replaces its metadata; returns the updated handle.
    pub fn modify(&self, new_name: Option<&str>, new_metadata: Option<&serde_json::Value>) -> Result<Collection> {
        let req = ModifyCollection {
            new_name: new_name.map(str::to_owned),
            new_metadata: new_metadata.map(chromalite_core::wire::modify_metadata).transpose()?,
            new_configuration: None,
        };
        self.backend().modify_collection(&self.client.db, &self.info.name, &req)?;
        self.client.get_collection(new_name.unwrap_or(&self.info.name))
    }
}
