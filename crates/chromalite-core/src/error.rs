//! The error type shared by every backend, with a stable [`ErrorKind`].

use std::time::Duration;

/// Result alias used across chromalite.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The stable classification of an [`Error`].
///
/// Callers (and the session layer) branch on the kind, never on message text. Kinds are only ever
/// added, never renamed, so `as_str()` is safe to persist or match in scripts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub enum ErrorKind {
    NotFound,
    AlreadyExists,
    InvalidArgument,
    DimensionMismatch,
    Locked,
    Corrupt,
    Unavailable,
    ReadOnly,
    Unauthorized,
    Timeout,
    Io,
    Internal,
}

impl ErrorKind {
    /// The kind's name, identical to the variant name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "NotFound",
            ErrorKind::AlreadyExists => "AlreadyExists",
            ErrorKind::InvalidArgument => "InvalidArgument",
            ErrorKind::DimensionMismatch => "DimensionMismatch",
            ErrorKind::Locked => "Locked",
            ErrorKind::Corrupt => "Corrupt",
            ErrorKind::Unavailable => "Unavailable",
            ErrorKind::ReadOnly => "ReadOnly",
            ErrorKind::Unauthorized => "Unauthorized",
            ErrorKind::Timeout => "Timeout",
            ErrorKind::Io => "Io",
            ErrorKind::Internal => "Internal",
        }
    }

    /// Whether retrying the same call later can succeed without anything else changing.
    #[must_use]
    pub fn is_transient(self) -> bool {
        matches!(self, ErrorKind::Locked | ErrorKind::Unavailable | ErrorKind::Timeout)
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Every failure a chromalite backend can report.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A tenant, database, collection or record does not exist.
    #[error("{what} {name:?} does not exist")]
    NotFound { what: &'static str, name: String },
    /// A tenant, database or collection with that name already exists.
    #[error("{what} {name:?} already exists")]
    AlreadyExists { what: &'static str, name: String },
    /// The request breaks one of Chroma's validation rules.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// An embedding's length differs from the collection's dimensionality.
    #[error("collection expecting embedding with dimension of {expected}, got {got}")]
    DimensionMismatch { expected: usize, got: usize },
    /// Another process holds the store's writer lock.
    #[error("store {path} is locked by another writer{}; wait for it to finish or stop it", pid.map(|p| format!(" (pid {p})")).unwrap_or_default())]
    Locked { path: String, pid: Option<u32> },
    /// A file of the store is damaged.
    #[error("corrupt {file}: {field}: {detail}; run `chromalite doctor` then `chromalite repair --yes`")]
    Corrupt { file: String, field: String, detail: String },
    /// The backend cannot be reached right now (server down, overloaded).
    #[error("backend unavailable: {message}")]
    Unavailable { message: String, retry_after: Option<Duration> },
    /// Writes are refused because the store was opened (or degraded to) read-only.
    #[error("store is read-only: {reason}")]
    ReadOnly { reason: String },
    /// Credentials were missing or rejected.
    #[error("not authorized: {0}")]
    Unauthorized(String),
    /// An operation did not finish within its time bound.
    #[error("timed out: {0}")]
    Timeout(String),
    /// An operating-system I/O failure.
    #[error("I/O error on {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// A bug or an unexpected state; the message says which.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// The stable kind of this error.
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::NotFound { .. } => ErrorKind::NotFound,
            Error::AlreadyExists { .. } => ErrorKind::AlreadyExists,
            Error::InvalidArgument(_) => ErrorKind::InvalidArgument,
            Error::DimensionMismatch { .. } => ErrorKind::DimensionMismatch,
            Error::Locked { .. } => ErrorKind::Locked,
            Error::Corrupt { .. } => ErrorKind::Corrupt,
            Error::Unavailable { .. } => ErrorKind::Unavailable,
            Error::ReadOnly { .. } => ErrorKind::ReadOnly,
            Error::Unauthorized(_) => ErrorKind::Unauthorized,
            Error::Timeout(_) => ErrorKind::Timeout,
            Error::Io { .. } => ErrorKind::Io,
            Error::Internal(_) => ErrorKind::Internal,
        }
    }

    /// Shorthand for [`Error::InvalidArgument`].
    pub fn invalid(msg: impl Into<String>) -> Self {
        Error::InvalidArgument(msg.into())
    }

    /// Shorthand for [`Error::NotFound`].
    pub fn not_found(what: &'static str, name: impl Into<String>) -> Self {
        Error::NotFound { what, name: name.into() }
    }

    /// Shorthand for [`Error::AlreadyExists`].
    pub fn already_exists(what: &'static str, name: impl Into<String>) -> Self {
        Error::AlreadyExists { what, name: name.into() }
    }

    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl AsRef<std::path::Path>, source: std::io::Error) -> Self {
        Error::Io { path: path.as_ref().display().to_string(), source }
    }

    /// Shorthand for [`Error::Corrupt`].
    pub fn corrupt(file: impl Into<String>, field: impl Into<String>, detail: impl Into<String>) -> Self {
        Error::Corrupt { file: file.into(), field: field.into(), detail: detail.into() }
    }
}
