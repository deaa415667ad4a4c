//! A [`VectorBackend`](chromalite_core::VectorBackend) that talks to a Chroma server over its HTTP
//! API v2 (`/api/v2/...`), so an application moves from an embedded store to a Chroma server —
//! single node (`chroma run`) or Chroma's distributed deployment — by changing one line.
//!
//! # Guarantees
//! - **Same semantics as the other backends.** Requests are checked with chromadb's client-side
//!   rules (`chromalite_core::validate`) before they are sent, as chromadb's Python client does,
//!   and results come back in the shapes every backend returns; the conformance suite passes
//!   against a real chromadb 1.5.9 server.
//! - **Typed errors.** 404 → `NotFound`, 409 → `AlreadyExists`, other 4xx → `InvalidArgument`
//!   (`DimensionMismatch` for a wrong embedding length), 401/403 → `Unauthorized`; connection
//!   refused, TLS failures, 429 and 5xx → `Unavailable`, whose `retry_after` carries the
//!   server's `Retry-After`; a read that exceeds the read timeout → `Timeout`. The server's own
//!   message is kept in the error text.
//! - **Secrets stay secret.** The token is sent as `x-chroma-token` or `Authorization: Bearer`
//!   and never appears in `Debug` output, error messages or logs.
//! - **Survives server restarts.** Connections are pooled with r2d2 and checked with a heartbeat
//!   on checkout; a connection that failed is dropped, so the same backend works again as soon
//!   as the server is back. Creating a backend does no I/O.
//! - **Compact writes.** Embeddings go out base64-packed (little-endian `f32`, as chromadb's
//!   Python client sends them) when the server's pre-flight check accepts that, else as numbers.
//! - **TLS** via rustls with the webpki root certificates; connect and read timeouts apply to
//!   every request.
//!
//! # Example
//! ```no_run
//! use chromalite_core::{CreateCollection, DatabaseRef, QueryRequest, RecordBatch, VectorBackend};
//! use chromalite_remote::{RemoteBackend, RemoteOptions};
//!
//! let store = RemoteBackend::with_options(&RemoteOptions::new("http://localhost:8000").token("s3cret"))?;
//! let db = DatabaseRef::default(); // default_tenant / default_database
//! let col = store.create_collection(&db, &CreateCollection { name: "docs".into(), get_or_create: true, ..Default::default() })?;
//! let mut batch = RecordBatch::new(["a", "b"]);
//! batch.embeddings = Some(vec![vec![0.0, 1.0], vec![1.0, 0.0]]);
//! store.upsert(&col, &batch)?;
//! let hits = store.query(&col, &QueryRequest { embeddings: vec![vec![0.9, 0.1]], n_results: 1, ..Default::default() })?;
//! assert_eq!(hits.ids, vec![vec!["b".to_string()]]);
//! # Ok::<(), chromalite_core::Error>(())
//! ```

mod backend;
mod convert;
mod errors;
mod http;
mod options;

pub use backend::RemoteBackend;
pub use options::{AuthHeader, RemoteOptions, Token};
