//! chromalite: an embedded vector store that reads and writes Chroma's on-disk format.
//!
//! A Rust program links chromalite and uses Chroma collections with no Chroma server: the
//! persistent backend opens the directory a Python `chromadb.PersistentClient` wrote (and Python
//! keeps working with what chromalite writes); the in-memory backend is the fallback; every backend
//! implements one trait, [`VectorBackend`], and passes one conformance suite whose expectations were
//! produced by chromadb 1.5.9.
//!
//! # Guarantees
//! - Same answers as chromadb 1.5.9: ids, order, documents, metadatas, distances (1e-4).
//! - Typed errors with a stable [`ErrorKind`]; bad input never loses data.
//!
//! # Example
//! ```
//! use chromalite::{Client, Include};
//! use serde_json::json;
//!
//! let client = Client::in_memory();
//! let col = client.create_collection("notes").space(chromalite::Space::Cosine).run()?;
//! col.add(["a", "b", "c"])
//!     .embeddings(vec![vec![1.0, 0.0], vec![0.0, 1.0], vec![0.7, 0.7]])
//!     .documents(["apples", "bananas", "apple bread"])
//!     .metadatas([json!({"kind": "fruit"}), json!({"kind": "fruit"}), json!({"kind": "bread"})])
//!     .run()?;
//! let hits = col
//!     .query(vec![vec![1.0, 0.1]])
//!     .n_results(2)
//!     .where_(json!({"kind": "fruit"}))
//!     .include([Include::Documents, Include::Distances])
//!     .run()?;
//! assert_eq!(hits.ids[0], vec!["a", "b"]);
//! assert_eq!(col.count()?, 3);
//! # Ok::<(), chromalite::Error>(())
//! ```

mod client;
pub mod migrate;
mod requests;

pub use chromalite_core as core;
pub use chromalite_core::{
    CollectionInfo, EmbeddingFunction, Error, ErrorKind, GetResult, Include, Metadata, MetadataValue, QueryResult,
    Result, Space, VectorBackend, Where, WhereDocument,
};
#[cfg(feature = "embed")]
pub use chromalite_embed as embed;
#[cfg(feature = "lance")]
pub use chromalite_lance as lance;
pub use chromalite_remote as remote;
pub use client::{Client, Collection};
pub use requests::{CreateBuilder, DeleteBuilder, Filter, GetBuilder, QueryBuilder, WriteBuilder};
