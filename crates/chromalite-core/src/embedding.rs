//! Embedding functions: turning documents and query texts into vectors, as chromadb does when a
//! collection is created with an `embedding_function`.
//!
//! chromadb 1.5.9 records a collection's function in its schema (`schema_str` in
//! `chroma.sqlite3`, under `keys["#embedding"].float_list.vector_index.config`) as
//! `{"type": "known", "name": "default", "config": {}}`. A collection created by Python with no
//! `embedding_function=` argument gets exactly that entry; `embedding_function=None` leaves the key
//! out. [`EmbeddingFunction::configuration_json`] writes the same shape, so both sides agree which
//! model a collection uses: a collection chromalite creates with the `MiniLm` function opens in Python
//! with chromadb's default (ONNX all-MiniLM-L6-v2), and a Python-made default collection is
//! recognised by [`EmbeddingFunction::is_recorded_as`].

use serde_json::{json, Value};

use crate::error::Error;

/// Why an embedding function could not embed its input.
///
/// Load-time problems (missing model files) belong to the implementing crate's own error type;
/// this is what remains at call time, named after the function so the message says which one.
#[derive(Debug, thiserror::Error)]
#[error("embedding function {function:?} failed: {message}")]
pub struct EmbeddingError {
    /// The function's chromadb name.
    pub function: String,
    /// What went wrong.
    pub message: String,
}

impl From<EmbeddingError> for Error {
    /// An embedding failure after the model loaded is not the caller's input nor the store: it is
    /// reported as `Internal`, with the function's message.
    fn from(e: EmbeddingError) -> Self {
        Error::Internal(e.to_string())
    }
}

/// Turns texts into embeddings; a collection that has one accepts documents without embeddings
/// and query texts.
///
/// Implementations must be deterministic (the same text gives the same vector) and return one
/// vector per input, in input order, all of one length.
pub trait EmbeddingFunction: Send + Sync + std::fmt::Debug {
    /// chromadb's registered name of the function (`"default"` for all-MiniLM-L6-v2).
    fn name(&self) -> &str;

    /// The `config` object chromadb records with the name (`{}` for the default function).
    fn config(&self) -> Value {
        json!({})
    }

    /// Embeds `texts`, one vector per text.
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbeddingError>;

    /// The `embedding_function` entry chromadb writes into a collection's configuration.
    fn configuration_json(&self) -> Value {
        json!({"type": "known", "name": self.name(), "config": self.config()})
    }

    /// Whether a recorded `embedding_function` entry names this function (or one chromadb computes
    /// identically). The default compares names only.
    fn is_recorded_as(&self, recorded: &Value) -> bool {
        recorded_name(recorded) == Some(self.name())
    }
}

/// The name of a recorded `embedding_function` entry of type `known`; `None` for no entry, for
/// `{"type": "legacy"}` (collections from before chromadb recorded functions) and for custom ones.
#[must_use]
pub fn recorded_name(recorded: &Value) -> Option<&str> {
    if recorded.get("type").and_then(Value::as_str) != Some("known") {
        return None;
    }
    recorded.get("name").and_then(Value::as_str)
}

/// Checks that `ef` may be used with a collection whose configuration records `recorded`: a
/// different known function is refused, as chromadb refuses it, because the stored vectors would
/// come from another model and every distance would be meaningless.
pub fn check_compatible(ef: &dyn EmbeddingFunction, recorded: &Value) -> crate::Result<()> {
    match recorded_name(recorded) {
        Some(name) if !ef.is_recorded_as(recorded) => Err(Error::invalid(format!(
            "the collection records embedding function {name:?}, but {:?} was given; vectors from different models cannot be compared",
            ef.name()
        ))),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Fixed;

    impl EmbeddingFunction for Fixed {
        fn name(&self) -> &'static str {
            "default"
        }
        fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbeddingError> {
            Ok(texts.iter().map(|t| vec![t.len() as f32]).collect())
        }
    }

    #[test]
    fn records_chromadb_shape() {
        assert_eq!(Fixed.configuration_json(), json!({"type": "known", "name": "default", "config": {}}));
        assert_eq!(recorded_name(&Fixed.configuration_json()), Some("default"));
        assert_eq!(recorded_name(&json!({"type": "legacy"})), None);
        assert_eq!(recorded_name(&Value::Null), None);
    }

    #[test]
    fn refuses_another_known_function() {
        assert!(check_compatible(&Fixed, &json!({"type": "known", "name": "default", "config": {}})).is_ok());
        assert!(check_compatible(&Fixed, &Value::Null).is_ok());
        assert!(check_compatible(&Fixed, &json!({"type": "legacy"})).is_ok());
        let err = check_compatible(&Fixed, &json!({"type": "known", "name": "openai", "config": {}})).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::InvalidArgument);
    }
}
