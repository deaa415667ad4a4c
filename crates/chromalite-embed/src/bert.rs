//! The BERT encoder (as `transformers.BertModel` in eval mode) and sentence-transformers' mean
//! pooling, in f32.
//!
//! Sequences are packed, not padded: the linear layers, layer norms and GELU act on each token
//! alone, so all tokens of a batch form one `[tokens, hidden]` matrix, and only attention looks at
//! sequence boundaries. This is exactly what a padded batch with an attention mask computes (masked
//! positions get zero weight) without spending time on padding.

use std::path::Path;

use safetensors::{Dtype, SafeTensors};
use serde_json::Value;

use crate::error::EmbedError;
use crate::gemm::{matmul, View};

/// The hyper-parameters read from `config.json` (all-MiniLM-L6-v2's values when it is absent).
#[derive(Debug, Clone, PartialEq)]
pub struct BertConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub max_position_embeddings: usize,
    pub type_vocab_size: usize,
    pub layer_norm_eps: f32,
}

impl Default for BertConfig {
    fn default() -> Self {
        BertConfig {
            vocab_size: 30522,
            hidden_size: 384,
            num_hidden_layers: 6,
            num_attention_heads: 12,
            intermediate_size: 1536,
            max_position_embeddings: 512,
            type_vocab_size: 2,
            layer_norm_eps: 1e-12,
        }
    }
}

impl BertConfig {
    /// Reads a Hugging Face `config.json`; keys it lacks keep the defaults. Only BERT-style encoders
    /// with GELU are accepted, since that is the only forward pass implemented here.
    pub fn from_json(path: &Path, v: &Value) -> Result<BertConfig, EmbedError> {
        let bad = |reason: String| EmbedError::InvalidModel { path: path.to_owned(), reason };
        if let Some(t) = v.get("model_type").and_then(Value::as_str) {
            if t != "bert" {
                return Err(bad(format!("model_type is {t:?}; only BERT encoders are supported")));
            }
        }
        if let Some(act) = v.get("hidden_act").and_then(Value::as_str) {
            if act != "gelu" {
                return Err(bad(format!("hidden_act is {act:?}; only \"gelu\" is supported")));
            }
        }
        if let Some(p) = v.get("position_embedding_type").and_then(Value::as_str) {
            if p != "absolute" {
                return Err(bad(format!("position_embedding_type is {p:?}; only \"absolute\" is supported")));
            }
        }
        let mut c = BertConfig::default();
        let get = |key: &str, slot: &mut usize| -> Result<(), EmbedError> {
            match v.get(key) {
                None => Ok(()),
                Some(x) => {
                    *slot = x.as_u64().and_then(|n| usize::try_from(n).ok()).filter(|&n| n > 0).ok_or_else(|| {
                        EmbedError::InvalidModel {
                            path: path.to_owned(),
                            reason: format!("{key} must be a positive integer, got {x}"),
                        }
                    })?;
                    Ok(())
                }
            }
        };
        get("vocab_size", &mut c.vocab_size)?;
        get("hidden_size", &mut c.hidden_size)?;
        get("num_hidden_layers", &mut c.num_hidden_layers)?;
        get("num_attention_heads", &mut c.num_attention_heads)?;
        get("intermediate_size", &mut c.intermediate_size)?;
        get("max_position_embeddings", &mut c.max_position_embeddings)?;
        get("type_vocab_size", &mut c.type_vocab_size)?;
        if let Some(eps) = v.get("layer_norm_eps").and_then(Value::as_f64) {
            c.layer_norm_eps = eps as f32;
        }
        if c.hidden_size % c.num_attention_heads != 0 {
            return Err(bad(format!(
                "hidden_size {} is not a multiple of num_attention_heads {}",
                c.hidden_size, c.num_attention_heads
            )));
        }
        Ok(c)
    }

    fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }
}

/// `y = x·Wᵀ + b` with `PyTorch`'s `[out, in]` weight layout.
struct Linear {
    w: Vec<f32>,
    b: Vec<f32>,
    n_in: usize,
    n_out: usize,
}

impl Linear {
    /// Applies the layer to `rows` rows of `x`, returning `[rows, n_out]`.
    fn forward(&self, x: &[f32], rows: usize) -> Vec<f32> {
        let mut y = vec![0.0; rows * self.n_out];
        let a = View { data: x, rows, cols: self.n_in, rs: self.n_in, cs: 1 };
        // Wᵀ seen through strides: element (k, j) of Wᵀ is W[j, k].
        let wt = View { data: &self.w, rows: self.n_in, cols: self.n_out, rs: 1, cs: self.n_in };
        matmul(a, wt, &mut y, self.n_out);
        for row in y.chunks_exact_mut(self.n_out) {
            for (v, b) in row.iter_mut().zip(&self.b) {
                *v += b;
            }
        }
        y
    }
}

struct LayerNorm {
    gamma: Vec<f32>,
    beta: Vec<f32>,
    eps: f32,
}

impl LayerNorm {
    /// Normalises each row of `x` in place (biased variance, as `PyTorch`).
    fn apply(&self, x: &mut [f32]) {
        let n = self.gamma.len();
        for row in x.chunks_exact_mut(n) {
            // Accumulate in f64: rows hold a few hundred values and the reference is f32 PyTorch,
            // whose reductions are more accurate than a naive f32 running sum.
            let mean = row.iter().map(|&v| f64::from(v)).sum::<f64>() / n as f64;
            let var = row.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum::<f64>() / n as f64;
            let inv = 1.0 / (var + f64::from(self.eps)).sqrt();
            for ((v, g), b) in row.iter_mut().zip(&self.gamma).zip(&self.beta) {
                *v = ((f64::from(*v) - mean) * inv) as f32 * g + b;
            }
        }
    }
}

struct Layer {
    /// Query, key and value projections stacked into one `[3·hidden, hidden]` weight, so one GEMM
    /// computes all three.
    qkv: Linear,
    attn_out: Linear,
    attn_norm: LayerNorm,
    intermediate: Linear,
    output: Linear,
    out_norm: LayerNorm,
}

/// The loaded encoder.
pub(crate) struct Bert {
    pub config: BertConfig,
    word: Vec<f32>,
    position: Vec<f32>,
    token_type: Vec<f32>,
    emb_norm: LayerNorm,
    layers: Vec<Layer>,
}

/// Reads tensors by name from a safetensors file, checking dtype and shape.
struct Tensors<'a> {
    st: SafeTensors<'a>,
    path: &'a Path,
    /// `""` or `"bert."`: checkpoints saved from `BertForX` heads prefix every name.
    prefix: &'static str,
}

impl Tensors<'_> {
    fn get(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>, EmbedError> {
        let full = format!("{}{name}", self.prefix);
        let bad = |reason: String| EmbedError::InvalidModel { path: self.path.to_owned(), reason };
        let t = self.st.tensor(&full).map_err(|_| bad(format!("tensor {full} is missing")))?;
        if t.dtype() != Dtype::F32 {
            return Err(bad(format!("tensor {full} has dtype {:?}; only F32 checkpoints are supported", t.dtype())));
        }
        if t.shape() != shape {
            return Err(bad(format!("tensor {full} has shape {:?}, config says {shape:?}", t.shape())));
        }
        Ok(t.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
    }

    fn linear(&self, name: &str, n_out: usize, n_in: usize) -> Result<Linear, EmbedError> {
        Ok(Linear {
            w: self.get(&format!("{name}.weight"), &[n_out, n_in])?,
            b: self.get(&format!("{name}.bias"), &[n_out])?,
            n_in,
            n_out,
        })
    }

    fn norm(&self, name: &str, n: usize, eps: f32) -> Result<LayerNorm, EmbedError> {
        Ok(LayerNorm {
            gamma: self.get(&format!("{name}.weight"), &[n])?,
            beta: self.get(&format!("{name}.bias"), &[n])?,
            eps,
        })
    }
}

impl Bert {
    /// Loads the encoder's weights from the bytes of `model.safetensors`.
    #[allow(clippy::many_single_char_names)] // h, d, n, q, k, v, p: the notation of the BERT paper
    pub fn load(path: &Path, bytes: &[u8], config: BertConfig) -> Result<Bert, EmbedError> {
        let st = SafeTensors::deserialize(bytes).map_err(|e| EmbedError::InvalidModel {
            path: path.to_owned(),
            reason: format!("not a safetensors file: {e}"),
        })?;
        let prefix = if st.names().iter().any(|n| n.starts_with("bert.")) { "bert." } else { "" };
        let t = Tensors { st, path, prefix };
        let (h, c) = (config.hidden_size, &config);
        let eps = c.layer_norm_eps;
        let mut layers = Vec::with_capacity(c.num_hidden_layers);
        for l in 0..c.num_hidden_layers {
            let p = format!("encoder.layer.{l}");
            let (q, k, v) = (
                t.linear(&format!("{p}.attention.self.query"), h, h)?,
                t.linear(&format!("{p}.attention.self.key"), h, h)?,
                t.linear(&format!("{p}.attention.self.value"), h, h)?,
            );
            let qkv = Linear { w: [q.w, k.w, v.w].concat(), b: [q.b, k.b, v.b].concat(), n_in: h, n_out: 3 * h };
            layers.push(Layer {
                qkv,
                attn_out: t.linear(&format!("{p}.attention.output.dense"), h, h)?,
                attn_norm: t.norm(&format!("{p}.attention.output.LayerNorm"), h, eps)?,
                intermediate: t.linear(&format!("{p}.intermediate.dense"), c.intermediate_size, h)?,
                output: t.linear(&format!("{p}.output.dense"), h, c.intermediate_size)?,
                out_norm: t.norm(&format!("{p}.output.LayerNorm"), h, eps)?,
            });
        }
        Ok(Bert {
            word: t.get("embeddings.word_embeddings.weight", &[c.vocab_size, h])?,
            position: t.get("embeddings.position_embeddings.weight", &[c.max_position_embeddings, h])?,
            token_type: t.get("embeddings.token_type_embeddings.weight", &[c.type_vocab_size, h])?,
            emb_norm: t.norm("embeddings.LayerNorm", h, eps)?,
            layers,
            config,
        })
    }

    /// Mean-pooled, L2-normalised sentence embeddings of tokenised sequences (`(ids, type_ids)`
    /// each, at most `max_position_embeddings` long, ids below `vocab_size`: the caller checks).
    #[allow(clippy::many_single_char_names)] // h, d, n, q, k, v, p: the notation of the BERT paper
    pub fn embed(&self, seqs: &[(&[u32], &[u32])]) -> Vec<Vec<f32>> {
        let h = self.config.hidden_size;
        let total: usize = seqs.iter().map(|s| s.0.len()).sum();
        let mut x = vec![0.0f32; total * h];
        let mut t = 0;
        for (ids, types) in seqs {
            for (pos, (&id, &ty)) in ids.iter().zip(types.iter()).enumerate() {
                let row = &mut x[t * h..(t + 1) * h];
                let w = &self.word[id as usize * h..][..h];
                let p = &self.position[pos * h..][..h];
                let ty = &self.token_type[ty as usize * h..][..h];
                for i in 0..h {
                    row[i] = w[i] + p[i] + ty[i];
                }
                t += 1;
            }
        }
        self.emb_norm.apply(&mut x);
        let lens: Vec<usize> = seqs.iter().map(|s| s.0.len()).collect();
        for layer in &self.layers {
            x = self.layer(layer, &x, total, &lens);
        }
        pool(&x, h, &lens)
    }

    fn layer(&self, layer: &Layer, x: &[f32], total: usize, lens: &[usize]) -> Vec<f32> {
        let h = self.config.hidden_size;
        let qkv = layer.qkv.forward(x, total);
        let ctx = self.attention(&qkv, total, lens);
        let mut a = layer.attn_out.forward(&ctx, total);
        for (v, r) in a.iter_mut().zip(x) {
            *v += r;
        }
        layer.attn_norm.apply(&mut a);
        let mut inter = layer.intermediate.forward(&a, total);
        for v in &mut inter {
            *v = gelu(*v);
        }
        let mut out = layer.output.forward(&inter, total);
        for (v, r) in out.iter_mut().zip(&a) {
            *v += r;
        }
        layer.out_norm.apply(&mut out);
        debug_assert_eq!(out.len(), total * h);
        out
    }

    /// Scaled dot-product self-attention of every head of every sequence; `qkv` rows are
    /// `[q | k | v]`, the result `[total, hidden]`.
    #[allow(clippy::many_single_char_names)] // h, d, n, q, k, v, p: the notation of the BERT paper
    fn attention(&self, qkv: &[f32], total: usize, lens: &[usize]) -> Vec<f32> {
        let h = self.config.hidden_size;
        let d = self.config.head_dim();
        let scale = 1.0 / (d as f32).sqrt();
        let mut ctx = vec![0.0f32; total * h];
        let mut scores = Vec::new();
        let mut start = 0;
        for &n in lens {
            scores.resize(n * n, 0.0);
            let rows = &qkv[start * 3 * h..(start + n) * 3 * h];
            for head in 0..self.config.num_attention_heads {
                let col = head * d;
                let q = View { data: &rows[col..], rows: n, cols: d, rs: 3 * h, cs: 1 };
                // Kᵀ through strides: element (i, j) is K[j, i].
                let kt = View { data: &rows[h + col..], rows: d, cols: n, rs: 1, cs: 3 * h };
                matmul(q, kt, &mut scores, n);
                for row in scores.chunks_exact_mut(n) {
                    softmax(row, scale);
                }
                let p = View { data: &scores, rows: n, cols: n, rs: n, cs: 1 };
                let v = View { data: &rows[2 * h + col..], rows: n, cols: d, rs: 3 * h, cs: 1 };
                matmul(p, v, &mut ctx[start * h + col..], h);
            }
            start += n;
        }
        ctx
    }
}

/// `softmax(scale · row)` in place, shifted by the maximum so no exponent overflows.
fn softmax(row: &mut [f32], scale: f32) {
    let max = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v)) * scale;
    let mut sum = 0.0f32;
    for v in row.iter_mut() {
        *v = (*v * scale - max).exp();
        sum += *v;
    }
    for v in row.iter_mut() {
        *v /= sum;
    }
}

/// BERT's exact GELU, `x · Φ(x)` (not the tanh approximation), as `hidden_act = "gelu"` means.
fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// The error function in f32 as Eigen and XLA compute it: `x·P(x²)/Q(x²)` on `x` clamped to
/// [-4, 4] (beyond, erf is 1 to f32 precision), within a few ulp of the true value. GELU runs on
/// every intermediate activation; with no `exp` call and no branch this loop vectorises, where an
/// `exp`-based erf took a quarter of the encoder's time. (Plain `*` and `+`, not `mul_add`: without
/// a compile-time FMA target feature `mul_add` is a call into libm, slower than the `exp` it replaced.)
fn erf(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = x2 * -2.726_142_3e-10 + 2.770_681_4e-8;
    p = x2 * p + -2.101_024e-6;
    p = x2 * p + -5.692_506_4e-5;
    p = x2 * p + -7.349_906_3e-4;
    p = x2 * p + -2.954_600_5e-3;
    p = x2 * p + -1.609_603_3e-2;
    let mut q = x2 * -1.456_607_2e-5 + -2.133_740_6e-4;
    q = x2 * q + -1.682_827e-3;
    q = x2 * q + -7.373_329e-3;
    q = x2 * q + -1.426_474e-2;
    x * p / q
}

/// Mean over each sequence's tokens (all of them count: no padding is packed), then division by
/// the L2 norm (floored at 1e-12 as `torch.nn.functional.normalize`).
fn pool(x: &[f32], h: usize, lens: &[usize]) -> Vec<Vec<f32>> {
    let mut out = Vec::with_capacity(lens.len());
    let mut start = 0;
    for &n in lens {
        let mut mean = vec![0.0f64; h];
        for row in x[start * h..(start + n) * h].chunks_exact(h) {
            for (m, &v) in mean.iter_mut().zip(row) {
                *m += f64::from(v);
            }
        }
        let count = n.max(1) as f64;
        let norm = mean.iter().map(|m| (m / count).powi(2)).sum::<f64>().sqrt().max(1e-12);
        out.push(mean.iter().map(|m| (m / count / norm) as f32).collect());
        start += n;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// erf from the Chebyshev fit of erfc in Numerical Recipes (§6.2, fractional error < 1.2e-7),
    /// in f64: an independent check of the rational approximation.
    fn erf_reference(x: f64) -> f64 {
        let z = x.abs();
        let t = 1.0 / (1.0 + 0.5 * z);
        let poly = -z * z - 1.265_512_23
            + t * (1.000_023_68
                + t * (0.374_091_96
                    + t * (0.096_784_18
                        + t * (-0.186_288_06
                            + t * (0.278_868_07
                                + t * (-1.135_203_98
                                    + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
        let erfc = t * poly.exp();
        if x >= 0.0 {
            1.0 - erfc
        } else {
            erfc - 1.0
        }
    }

    #[test]
    fn erf_agrees_with_an_independent_fit_everywhere() {
        let mut worst = 0.0f64;
        for i in -8000..=8000 {
            let x = f64::from(i) / 1000.0;
            worst = worst.max((f64::from(erf(x as f32)) - erf_reference(x)).abs());
        }
        assert!(worst < 5e-7, "max |erf error| {worst}");
    }

    #[test]
    fn erf_matches_known_values() {
        for (x, want) in [(0.0, 0.0), (0.5, 0.520_499_9), (1.0, 0.842_700_8), (-2.0, -0.995_322_3), (3.5, 0.999_999_3)]
        {
            assert!((erf(x) - want).abs() < 3e-7, "erf({x}) = {} want {want}", erf(x));
        }
    }

    #[test]
    fn softmax_sums_to_one_and_survives_large_scores() {
        let mut row = [1000.0, 1000.0, -1000.0];
        softmax(&mut row, 1.0);
        assert!((row[0] - 0.5).abs() < 1e-6 && row[2] == 0.0);
    }

    #[test]
    fn pooling_normalises() {
        let v = pool(&[3.0, 0.0, 3.0, 8.0], 2, &[2]);
        assert!((v[0][0] - 0.6).abs() < 1e-6 && (v[0][1] - 0.8).abs() < 1e-6);
    }
}
