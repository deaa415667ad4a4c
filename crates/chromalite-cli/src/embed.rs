//! Embedding for `import` (records with a document and no embedding) and `query --text`.
//!
//! The CLI runs one function, chromadb's `default` (all-MiniLM-L6-v2, built with the `embed`
//! feature). Which collections it applies to is read from the configuration chromadb records, so
//! a collection Python created with its default function works here, and the reverse. The model
//! is loaded only when a text actually has to be embedded: importing pre-embedded records never
//! touches it.

use std::path::PathBuf;
use std::sync::Arc;

use chromalite::core::embedding::recorded_name;
use chromalite::{Collection, EmbeddingFunction};
use serde_json::{json, Value};

use crate::{CliError, CliResult};

/// `--embedding-function`, `--model-dir` and `--text` options.
#[derive(Debug, Default)]
pub struct EmbedOpts {
    /// The function to record on create (or to assume for a collection that records none).
    pub function: Option<String>,
    /// Where the model files are, before `CHROMALITE_MODEL_DIR` and the Hugging Face cache.
    pub model_dir: Option<PathBuf>,
    /// `query --text`: one query per occurrence.
    pub texts: Vec<String>,
}

/// The `embedding_function` entry for `--embedding-function NAME`: `default` (alias `minilm`,
/// `all-MiniLM-L6-v2`) is chromadb's default function; `none` records nothing.
pub fn function_entry(name: &str) -> CliResult<Value> {
    match name {
        "default" | "minilm" | "all-MiniLM-L6-v2" => Ok(json!({"type": "known", "name": "default", "config": {}})),
        "none" => Ok(Value::Null),
        other => Err(CliError::Usage(format!(
            "--embedding-function {other:?}: this build embeds with \"default\" (all-MiniLM-L6-v2) or \"none\""
        ))),
    }
}

/// Whether texts of `col` can be embedded here: it records chromadb's default function (or one
/// computing the same vectors), or records none and `--embedding-function default` says to assume it.
pub fn applies(col: &Collection, opts: &EmbedOpts) -> CliResult<bool> {
    let recorded = &col.info().config.embedding_function;
    match recorded_name(recorded) {
        Some("default" | "onnx_mini_lm_l6_v2") => Ok(true),
        Some("sentence_transformer")
            if recorded
                .pointer("/config/model_name")
                .and_then(Value::as_str)
                .is_some_and(|m| m.ends_with("all-MiniLM-L6-v2")) =>
        {
            Ok(true)
        }
        Some(other) => Err(CliError::Usage(format!(
            "collection {} records embedding function {other:?}, which this CLI cannot run; give embeddings instead",
            col.name()
        ))),
        None => match opts.function.as_deref() {
            Some(f) => Ok(!function_entry(f)?.is_null()),
            None => Ok(false),
        },
    }
}

/// Loads the model, once per process.
pub struct Lazy<'a> {
    opts: &'a EmbedOpts,
    model: Option<Arc<dyn EmbeddingFunction>>,
}

impl<'a> Lazy<'a> {
    pub fn new(opts: &'a EmbedOpts) -> Self {
        Lazy { opts, model: None }
    }

    /// Embeds `texts`, loading the model on first use.
    pub fn embed(&mut self, texts: &[&str]) -> CliResult<Vec<Vec<f32>>> {
        let model = match &self.model {
            Some(m) => Arc::clone(m),
            None => Arc::clone(self.model.insert(load(self.opts)?)),
        };
        model.embed(texts).map_err(|e| CliError::Store(e.into()))
    }
}

#[cfg(feature = "embed")]
fn load(opts: &EmbedOpts) -> CliResult<Arc<dyn EmbeddingFunction>> {
    let model =
        chromalite::embed::MiniLm::load(opts.model_dir.as_deref()).map_err(|e| CliError::Usage(e.to_string()))?;
    Ok(Arc::new(model))
}

#[cfg(not(feature = "embed"))]
fn load(_opts: &EmbedOpts) -> CliResult<Arc<dyn EmbeddingFunction>> {
    Err(CliError::Usage(
        "this chromalite was built without the `embed` feature, so it cannot embed texts; give embeddings, or rebuild with default features".into(),
    ))
}
