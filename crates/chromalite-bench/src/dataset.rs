//! Benchmark data: the `debian-minilm` layout (`base.f32`, `base.jsonl`, `queries.f32`,
//! `truth.i32`), a subset or scaled copy of it, or a synthetic set with the same shape.

use std::fs;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

/// Vectors, records and exact truth, all in memory.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub dim: usize,
    pub base: Vec<Vec<f32>>,
    /// One `{"id", "document", "metadata"}` per base row.
    pub rows: Vec<Value>,
    pub queries: Vec<Vec<f32>>,
    /// Exact cosine top-k base row indices per query.
    pub truth: Vec<Vec<u32>>,
}

/// Reads rows of `dim` little-endian floats; `dim` is positive and `dim * 4` fits (see [`positive`]).
fn read_f32(path: &Path, dim: usize) -> Result<Vec<Vec<f32>>, String> {
    let bytes = fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if bytes.len() % (dim * 4) != 0 {
        return Err(format!("{} is not a whole number of {dim}-float rows", path.display()));
    }
    Ok(bytes
        .chunks_exact(dim * 4)
        .map(|r| r.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
        .collect())
}

fn write_f32(path: &Path, rows: &[Vec<f32>]) -> Result<(), String> {
    let bytes: Vec<u8> = rows.iter().flatten().flat_map(|x| x.to_le_bytes()).collect();
    fs::write(path, bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// `meta[key]` as a positive count small enough that four bytes per unit fit a `usize`.
fn positive(meta: &Value, key: &str) -> Result<usize, String> {
    meta[key]
        .as_u64()
        .and_then(|n| usize::try_from(n).ok())
        .filter(|n| *n > 0 && n.checked_mul(4).is_some())
        .ok_or_else(|| format!("meta.json: {key} must be a positive integer, got {}", meta[key]))
}

impl Dataset {
    /// Loads a directory in the debian-minilm layout, keeping the first `limit` base rows (truth is
    /// recomputed exactly when rows are dropped).
    pub fn load(dir: &Path, limit: Option<usize>, queries: usize) -> Result<Dataset, String> {
        let meta: Value =
            serde_json::from_str(&fs::read_to_string(dir.join("meta.json")).map_err(|e| format!("meta.json: {e}"))?)
                .map_err(|e| format!("meta.json: {e}"))?;
        let dim = positive(&meta, "dim")?;
        let mut base = read_f32(&dir.join("base.f32"), dim)?;
        let file = fs::File::open(dir.join("base.jsonl")).map_err(|e| format!("base.jsonl: {e}"))?;
        let keep = limit.unwrap_or(base.len()).min(base.len());
        let rows: Vec<Value> = std::io::BufReader::new(file)
            .lines()
            .take(keep)
            .map(|l| l.map_err(|e| e.to_string()).and_then(|l| serde_json::from_str(&l).map_err(|e| e.to_string())))
            .collect::<Result<_, _>>()?;
        let full = keep == base.len();
        base.truncate(keep);
        let mut qs = read_f32(&dir.join("queries.f32"), dim)?;
        qs.truncate(queries);
        if qs.is_empty() {
            return Err("no queries to run (queries.f32 is empty or --queries is 0)".into());
        }
        let truth = if full && dir.join("truth.i32").exists() {
            let t = fs::read(dir.join("truth.i32")).map_err(|e| e.to_string())?;
            let k = if meta.get("truth_k").is_some() { positive(&meta, "truth_k")? } else { 100 };
            t.chunks_exact(k * 4)
                .take(qs.len())
                .map(|r| r.chunks_exact(4).take(10).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
                .collect()
        } else {
            exact_truth(&base, &qs, 10)
        };
        Ok(Dataset { dim, base, rows, queries: qs, truth })
    }

    /// A synthetic set: clustered unit vectors with Debian-like documents and metadata.
    #[must_use]
    pub fn synthetic(n: usize, dim: usize, queries: usize, seed: u64) -> Dataset {
        let mut rng = Lcg(seed);
        let centers: Vec<Vec<f32>> =
            (0..32).map(|_| unit(&(0..dim).map(|_| rng.normal()).collect::<Vec<_>>())).collect();
        let point = |rng: &mut Lcg| {
            let c = &centers[rng.below(centers.len())];
            unit(&c.iter().map(|x| x + 0.35 * rng.normal() / (dim as f32).sqrt()).collect::<Vec<_>>())
        };
        let base: Vec<Vec<f32>> = (0..n).map(|_| point(&mut rng)).collect();
        let qs: Vec<Vec<f32>> = (0..queries).map(|_| point(&mut rng)).collect();
        let sections = ["libs", "devel", "games", "net", "doc", "utils", "python", "admin"];
        let rows = (0..n)
            .map(|i| {
                let section = sections[i % sections.len()];
                json!({"id": format!("d{i}"), "document": format!("synthetic package {i} in {section}, a tool for testing"),
                       "metadata": {"package": format!("pkg{i}"), "section": section, "priority": "optional", "installed_size": (i * 37) % 5000, "arch_all": i % 3 == 0}})
            })
            .collect();
        let truth = exact_truth(&base, &qs, 10);
        Dataset { dim, base, rows, queries: qs, truth }
    }

    /// `n` records made by perturbing the real rows (new ids, small noise), truth recomputed.
    #[must_use]
    pub fn scaled(&self, n: usize, seed: u64) -> Dataset {
        let mut rng = Lcg(seed);
        let mut base = Vec::with_capacity(n);
        let mut rows = Vec::with_capacity(n);
        for i in 0..n {
            let src = i % self.base.len();
            let v = if i < self.base.len() {
                self.base[src].clone()
            } else {
                unit(&self.base[src].iter().map(|x| x + 0.02 * rng.normal()).collect::<Vec<_>>())
            };
            base.push(v);
            let mut row = self.rows[src].clone();
            row["id"] = json!(format!("d{i}"));
            rows.push(row);
        }
        let truth = exact_truth(&base, &self.queries, 10);
        Dataset { dim: self.dim, base, rows, queries: self.queries.clone(), truth }
    }

    /// Writes the set in the debian-minilm layout so other processes (and Python) read identical data.
    pub fn write(&self, dir: &Path) -> Result<PathBuf, String> {
        fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        write_f32(&dir.join("base.f32"), &self.base)?;
        write_f32(&dir.join("queries.f32"), &self.queries)?;
        let mut f = std::io::BufWriter::new(fs::File::create(dir.join("base.jsonl")).map_err(|e| e.to_string())?);
        for r in &self.rows {
            writeln!(f, "{r}").map_err(|e| e.to_string())?;
        }
        f.flush().map_err(|e| e.to_string())?;
        let truth: Vec<u8> = self.truth.iter().flatten().flat_map(|x| x.to_le_bytes()).collect();
        fs::write(dir.join("truth.i32"), truth).map_err(|e| e.to_string())?;
        let meta = json!({"dim": self.dim, "base": self.base.len(), "queries": self.queries.len(), "truth_k": 10});
        fs::write(dir.join("meta.json"), meta.to_string()).map_err(|e| e.to_string())?;
        Ok(dir.to_path_buf())
    }
}

fn unit(v: &[f32]) -> Vec<f32> {
    chromalite_core::distance::normalized(v)
}

/// Exact cosine top-`k` (rows are compared after normalisation), computed in parallel chunks.
fn exact_truth(base: &[Vec<f32>], queries: &[Vec<f32>], k: usize) -> Vec<Vec<u32>> {
    let normed: Vec<Vec<f32>> = base.iter().map(|v| unit(v)).collect();
    std::thread::scope(|s| {
        let chunks: Vec<_> = queries
            .chunks(queries.len().div_ceil(2).max(1))
            .map(|qs| {
                let normed = &normed;
                s.spawn(move || {
                    qs.iter()
                        .map(|q| {
                            let q = unit(q);
                            let mut scored: Vec<(f32, u32)> = normed
                                .iter()
                                .enumerate()
                                .map(|(i, b)| (-chromalite_core::distance::dot(&q, b), i as u32))
                                .collect();
                            let kk = k.min(scored.len());
                            if kk > 0 {
                                scored.select_nth_unstable_by(kk - 1, |a, b| a.0.total_cmp(&b.0));
                            }
                            scored.truncate(kk);
                            scored.sort_by(|a, b| a.0.total_cmp(&b.0));
                            scored.into_iter().map(|(_, i)| i).collect()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        chunks.into_iter().flat_map(|h| h.join().unwrap_or_default()).collect()
    })
}

/// A tiny deterministic generator: reproducible synthetic data without a dependency.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 11
    }
    fn uniform(&mut self) -> f32 {
        (self.next() as f64 / (1u64 << 53) as f64) as f32
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn normal(&mut self) -> f32 {
        let (u1, u2) = (self.uniform().max(1e-7), self.uniform());
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f32::consts::PI * u2).cos()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn damaged_meta_or_empty_queries_are_errors_not_panics() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("base.f32"), 1.0f32.to_le_bytes()).unwrap();
        std::fs::write(dir.path().join("base.jsonl"), "{\"id\": \"d0\"}\n").unwrap();
        std::fs::write(dir.path().join("queries.f32"), 1.0f32.to_le_bytes()).unwrap();
        for meta in [r#"{"dim": 0}"#, r#"{"dim": 18446744073709551615}"#, r#"{"dim": "x"}"#] {
            std::fs::write(dir.path().join("meta.json"), meta).unwrap();
            assert!(Dataset::load(dir.path(), None, 10).is_err(), "{meta}");
        }
        std::fs::write(dir.path().join("meta.json"), r#"{"dim": 1}"#).unwrap();
        assert!(Dataset::load(dir.path(), None, 0).is_err());
        assert_eq!(Dataset::load(dir.path(), None, 10).unwrap().queries.len(), 1);
    }
}
