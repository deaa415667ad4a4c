//! chromalite's persistent backend: a [`VectorBackend`](chromalite_core::VectorBackend) over a
//! Chroma 1.x persist directory (`chroma.sqlite3` plus one HNSW folder per collection), read and
//! written in the exact format Python `chromadb==1.5.9`'s `PersistentClient` uses, so Python and
//! Rust programs can share one directory. The format is described in `docs/format.md`.
//!
//! # Guarantees
//! - **Compatible**: directories created here open in chromadb 1.5.9 without migrating (same
//!   schema, `migrations` rows, catalog rows, `schema_str`, log encoding, HNSW files and pickle),
//!   and directories chromadb wrote open here, including writes it left only in the log.
//! - **Durable**: a write that returned `Ok` is committed in `SQLite` (log and metadata segment in
//!   one transaction) and survives `kill -9`. HNSW folders are a cache: snapshots are written
//!   beside the live folder, fsynced and swapped in by rename, and a missing or damaged folder is
//!   rebuilt from the log, which keeps the newest vector of every live record.
//! - **Multi-process**: one writer per directory, enforced with an OS lock on `chromalite.lock`
//!   (a second writer gets [`Error::Locked`](chromalite_core::Error::Locked) naming the holder's
//!   pid after a bounded wait); any number of [`SqliteBackend::open_read_only`] handles in other
//!   processes see committed data (`SQLite` WAL, busy timeout).
//! - **Never panics on damaged input**: damaged files give `Corrupt` errors naming file and field.
//!
//! # Example
//! ```
//! use chromalite_core::{CreateCollection, DatabaseRef, QueryRequest, RecordBatch, VectorBackend};
//! use chromalite_sqlite::SqliteBackend;
//!
//! let dir = tempfile::tempdir()?;
//! let store = SqliteBackend::open(dir.path())?;
//! let col = store.create_collection(&DatabaseRef::default(), &CreateCollection { name: "docs".into(), ..Default::default() })?;
//! let mut batch = RecordBatch::new(["a", "b"]);
//! batch.embeddings = Some(vec![vec![0.0, 1.0], vec![1.0, 0.0]]);
//! batch.documents = Some(vec![Some("first".into()), Some("second".into())]);
//! store.add(&col, &batch)?;
//! drop(store); // persists the HNSW snapshot; the log already made the add durable
//!
//! let store = SqliteBackend::open(dir.path())?;
//! let hits = store.query(&col, &QueryRequest { embeddings: vec![vec![0.9, 0.1]], n_results: 1, ..Default::default() })?;
//! assert_eq!(hits.ids, vec![vec!["b".to_string()]]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod backend;
pub mod conn;
mod filter;
pub mod lock;
pub mod log;
mod meta;
pub mod sysdb;
pub mod vector;

pub use backend::{Options, SqliteBackend};
pub use lock::{WriterLock, LOCK_FILE};
