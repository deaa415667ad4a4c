//! The core of chromalite: types, the [`VectorBackend`] trait, errors, filters and validation.
//!
//! This crate does no I/O. It fixes what every backend shares so they behave identically:
//!
//! - the data model of Chroma ([`Metadata`], [`RecordBatch`], [`GetRequest`], [`QueryRequest`],
//!   [`GetResult`], [`QueryResult`], [`CollectionInfo`]),
//! - the `where` / `where_document` filter language ([`filter::Where`], [`filter::WhereDocument`])
//!   parsed from Chroma's JSON syntax and evaluated with chromadb 1.5.9's semantics,
//! - chromadb's validation rules ([`validate`]) and distance functions ([`distance`]),
//! - one error enum whose [`Error::kind`] is stable, so callers branch without matching text.
//!
//! ```
//! use chromalite_core::filter::Where;
//! use chromalite_core::metadata::{Metadata, MetadataValue};
//! use serde_json::json;
//!
//! let filter = Where::from_json(&json!({"tags": {"$contains": "rust"}})).unwrap();
//! let mut meta = Metadata::new();
//! meta.insert("tags".into(), MetadataValue::from_json(&json!(["rust", "db"])).unwrap());
//! assert!(filter.matches(Some(&meta), None));
//!
//! let err = Where::from_json(&json!({"tags": {"$like": "x"}})).unwrap_err();
//! assert_eq!(err.kind(), chromalite_core::ErrorKind::InvalidArgument);
//! ```

pub mod backend;
pub mod collection;
pub mod distance;
pub mod embedding;
pub mod error;
pub mod filter;
mod filter_eval;
pub mod metadata;
pub mod record;
pub mod validate;
pub mod wire;

pub use backend::VectorBackend;
pub use collection::{
    new_uuid, CollectionConfig, CollectionInfo, CreateCollection, Database, DatabaseRef, HnswConfig, ModifyCollection,
    Space, Tenant, DEFAULT_DATABASE, DEFAULT_TENANT,
};
pub use embedding::{EmbeddingError, EmbeddingFunction};
pub use error::{Error, ErrorKind, Result};
pub use filter::{Where, WhereDocument};
pub use filter_eval::scalar_eq;
pub use metadata::{Metadata, MetadataArray, MetadataValue, Scalar, UpdateMetadata};
pub use record::{
    DeleteRequest, GetRequest, GetResult, Include, QueryRequest, QueryResult, Record, RecordBatch, Selection,
};
