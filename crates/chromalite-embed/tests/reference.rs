//! all-MiniLM-L6-v2 against reference vectors computed from the same weights by an independent
//! float32 implementation (`fixtures/minilm/minilm-reference.json`): 20 sentences including the
//! empty string, Unicode, emoji and input longer than the 256-token limit.
//!
//! Needs the model files: `scripts/test` provisions them and sets `CHROMALITE_MODEL_DIR`. Without
//! that variable and without a Hugging Face cache copy the test prints SKIP and passes, so a plain
//! `cargo test` works offline; with the variable set, a missing model fails the test.

use std::path::Path;

use chromalite_core::EmbeddingFunction;
use chromalite_embed::{EmbedError, MiniLm, MODEL_DIR_ENV};
use serde_json::Value;

fn model() -> Option<MiniLm> {
    match MiniLm::load(None) {
        Ok(m) => Some(m),
        Err(e @ EmbedError::ModelNotFound { .. }) if std::env::var_os(MODEL_DIR_ENV).is_none() => {
            eprintln!("SKIP: no all-MiniLM-L6-v2 model ({e})");
            None
        }
        Err(e) => panic!("{MODEL_DIR_ENV} is set but the model does not load: {e}"),
    }
}

fn reference() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/minilm/minilm-reference.json");
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum();
    let na: f64 = a.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb)
}

#[test]
fn matches_reference_vectors() {
    let Some(model) = model() else { return };
    let r = reference();
    assert_eq!(
        r["max_tokens"].as_u64(),
        Some(model.max_tokens() as u64),
        "reference computed with another token limit"
    );
    let sentences: Vec<&str> = r["sentences"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    let expected: Vec<Vec<f32>> = r["embeddings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect())
        .collect();
    assert_eq!(sentences.len(), 20);
    // Batch of 32 > 20: all sentences in one packed batch, split over threads.
    let got = model.embed(&sentences).unwrap();
    let mut worst = (1.0f64, 0);
    for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
        assert_eq!(g.len(), 384);
        let c = cosine(g, e);
        let norm: f32 = g.iter().map(|v| v * v).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "sentence {i} not unit length: {norm}");
        if c < worst.0 {
            worst = (c, i);
        }
        assert!(c >= 0.9999, "sentence {i} {:?}: cosine {c}", sentences[i]);
    }
    eprintln!("minilm reference: worst cosine {:.7} (sentence {})", worst.0, worst.1);

    // The same vectors one at a time and on one thread: packing and threads change nothing.
    let single = model.with_batch_size(1).with_threads(1);
    let again = single.embed(&sentences).unwrap();
    for (a, b) in again.iter().zip(&got) {
        assert!(cosine(a, b) > 0.999_999);
    }
}

#[test]
fn truncates_long_input_at_the_model_limit() {
    let Some(model) = model() else { return };
    let long = "word ".repeat(1000);
    let ids = model.tokenize(&long).unwrap();
    assert_eq!(ids.len(), 256);
    assert_eq!((ids[0], ids[255]), (101, 102), "[CLS] ... [SEP] survive truncation");
    assert_eq!(model.tokenize("").unwrap(), vec![101, 102]);
}

#[test]
fn recognises_chromadb_names_for_the_same_model() {
    let Some(model) = model() else { return };
    let known = |name: &str, config: Value| serde_json::json!({"type": "known", "name": name, "config": config});
    assert_eq!(model.configuration_json(), known("default", serde_json::json!({})));
    assert!(model.is_recorded_as(&known("onnx_mini_lm_l6_v2", serde_json::json!({"preferred_providers": null}))));
    assert!(model.is_recorded_as(&known("sentence_transformer", serde_json::json!({"model_name": "all-MiniLM-L6-v2"}))));
    assert!(
        !model.is_recorded_as(&known("sentence_transformer", serde_json::json!({"model_name": "all-mpnet-base-v2"})))
    );
    assert!(!model.is_recorded_as(&known("openai", serde_json::json!({}))));
}
