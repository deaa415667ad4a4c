//! Errors of the session layer.

use std::path::PathBuf;

use chromalite_core::ErrorKind;

/// What can go wrong in the session layer itself. Backend failures keep their own typed
/// [`chromalite_core::Error`] (and its stable kind) inside [`SessionError::Store`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The store (or the pool's backend) refused or failed.
    #[error(transparent)]
    Store(#[from] chromalite_core::Error),
    /// A file of the session layer could not be read or written.
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A session id that was never started here, was ended, or expired.
    #[error("session {0:?} is unknown or expired; start a new one")]
    UnknownSession(String),
    /// A file of the session layer (journal, session record) is unreadable.
    #[error("corrupt session file {path}: {detail}")]
    CorruptState { path: PathBuf, detail: String },
    /// The store is damaged in a way repair cannot fix from what is on disk.
    #[error("cannot repair {path}: {reason}")]
    Unrepairable { path: PathBuf, reason: String },
    /// Refused because it would delete data the store references.
    #[error("refusing to remove {path}: {reason}")]
    Refused { path: PathBuf, reason: String },
}

impl SessionError {
    /// The closest stable [`ErrorKind`], so callers can branch the same way as on backend errors.
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        match self {
            SessionError::Store(e) => e.kind(),
            SessionError::Io { .. } => ErrorKind::Io,
            SessionError::UnknownSession(_) => ErrorKind::NotFound,
            SessionError::CorruptState { .. } | SessionError::Unrepairable { .. } => ErrorKind::Corrupt,
            SessionError::Refused { .. } => ErrorKind::InvalidArgument,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        SessionError::Io { path: path.into(), source }
    }
}

/// Result alias of the session layer.
pub type SessionResult<T> = std::result::Result<T, SessionError>;
