//! Error type of the crate.

use std::path::PathBuf;

/// Everything that can go wrong in this crate. Branch on [`HnswError::kind`]
/// rather than on the message.
#[derive(Debug, thiserror::Error)]
pub enum HnswError {
    /// Reading or writing a file failed (including a missing file).
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A file is present but its content is not a valid index: truncated,
    /// zeroed, random or inconsistent with the other files.
    #[error("corrupt index file {file}: field `{field}`: {detail} (rebuild the segment from its records)")]
    Corrupt {
        /// File name, e.g. `header.bin`.
        file: String,
        /// The field that failed validation, e.g. `cur_element_count`.
        field: String,
        /// What was wrong.
        detail: String,
    },
    /// A vector (or a stored index) has a different dimension than expected.
    #[error("dimension mismatch: expected {expected}, got {got}")]
    DimensionMismatch {
        /// The index dimension.
        expected: usize,
        /// The dimension that was supplied or found.
        got: usize,
    },
    /// A caller passed an unusable argument.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

impl HnswError {
    /// A stable, machine-readable category: `NotFound`, `Io`, `Corrupt`,
    /// `DimensionMismatch` or `InvalidArgument`.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            HnswError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => "NotFound",
            HnswError::Io { .. } => "Io",
            HnswError::Corrupt { .. } => "Corrupt",
            HnswError::DimensionMismatch { .. } => "DimensionMismatch",
            HnswError::InvalidArgument(_) => "InvalidArgument",
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        HnswError::Io { path: path.into(), source }
    }

    pub(crate) fn corrupt(file: &str, field: &str, detail: impl Into<String>) -> Self {
        HnswError::Corrupt { file: file.to_string(), field: field.to_string(), detail: detail.into() }
    }
}
