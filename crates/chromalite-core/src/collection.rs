//! Tenants, databases and collections, and a collection's configuration.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::metadata::{Metadata, MetadataValue};

/// Name of the tenant every store starts with.
pub const DEFAULT_TENANT: &str = "default_tenant";
/// Name of the database every store starts with.
pub const DEFAULT_DATABASE: &str = "default_database";

/// A distance function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Space {
    /// Squared Euclidean distance.
    #[default]
    L2,
    /// `1 - dot(a, b)`.
    Ip,
    /// `1 - cos(a, b)`.
    Cosine,
}

impl Space {
    /// Chroma's name of the space.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Space::L2 => "l2",
            Space::Ip => "ip",
            Space::Cosine => "cosine",
        }
    }

    /// Parses Chroma's name of a space.
    pub fn parse(s: &str) -> Result<Space> {
        match s {
            "l2" => Ok(Space::L2),
            "ip" => Ok(Space::Ip),
            "cosine" => Ok(Space::Cosine),
            other => Err(Error::invalid(format!("unknown space {other:?}: expected l2, ip or cosine"))),
        }
    }
}

impl std::fmt::Display for Space {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The HNSW part of a collection's configuration, with Chroma's defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HnswConfig {
    pub space: Space,
    pub ef_construction: usize,
    pub ef_search: usize,
    pub max_neighbors: usize,
    pub resize_factor: f64,
    pub sync_threshold: usize,
}

impl Default for HnswConfig {
    fn default() -> Self {
        HnswConfig {
            space: Space::L2,
            ef_construction: 100,
            ef_search: 100,
            max_neighbors: 16,
            resize_factor: 1.2,
            sync_threshold: 1000,
        }
    }
}

/// A collection's configuration as Chroma stores it in `config_json_str`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CollectionConfig {
    pub hnsw: HnswConfig,
    /// The `embedding_function` entry, kept verbatim (`null` when none was configured).
    pub embedding_function: Value,
}

impl CollectionConfig {
    /// Resolves a configuration the way chromadb does on create: an explicit `configuration`
    /// wins, then legacy `hnsw:*` keys in the collection metadata, then the defaults.
    pub fn resolve(configuration: Option<&Value>, metadata: Option<&Metadata>) -> Result<CollectionConfig> {
        let mut cfg = CollectionConfig::default();
        if let Some(m) = metadata {
            apply_legacy_metadata(&mut cfg.hnsw, m)?;
        }
        if let Some(c) = configuration {
            cfg.apply_json(c)?;
        }
        Ok(cfg)
    }

    /// Applies a user-supplied configuration JSON (`{"hnsw": {...}, "embedding_function": ..}`).
    pub fn apply_json(&mut self, c: &Value) -> Result<()> {
        let obj =
            c.as_object().ok_or_else(|| Error::invalid(format!("configuration must be a JSON object, got {c}")))?;
        if let Some(h) = obj.get("hnsw").filter(|h| !h.is_null()) {
            let h = h.as_object().ok_or_else(|| Error::invalid("configuration.hnsw must be an object"))?;
            for (k, v) in h {
                apply_hnsw_key(&mut self.hnsw, k, v)?;
            }
        }
        if let Some(ef) = obj.get("embedding_function") {
            self.embedding_function = ef.clone();
        }
        Ok(())
    }

    /// Applies `modify(configuration=...)` as chromadb 1.5.9 does: only `hnsw.ef_search`,
    /// `max_neighbors`, `num_threads`, `resize_factor`, `sync_threshold` and `batch_size` may
    /// change; `space`, `ef_construction` and unknown keys are refused (`InvalidArgument`), and the
    /// configuration is left as it was.
    pub fn apply_modify_json(&mut self, c: &Value) -> Result<()> {
        const MUTABLE: [&str; 6] =
            ["ef_search", "max_neighbors", "num_threads", "resize_factor", "sync_threshold", "batch_size"];
        let obj =
            c.as_object().ok_or_else(|| Error::invalid(format!("configuration must be a JSON object, got {c}")))?;
        let mut next = self.hnsw.clone();
        if let Some(h) = obj.get("hnsw").filter(|h| !h.is_null()) {
            let h = h.as_object().ok_or_else(|| Error::invalid("configuration.hnsw must be an object"))?;
            for (k, v) in h {
                if !MUTABLE.contains(&k.as_str()) {
                    return Err(Error::invalid(format!(
                        "unknown field `{k}`, expected one of `ef_search`, `max_neighbors`, `num_threads`, \
                         `resize_factor`, `sync_threshold`, `batch_size`"
                    )));
                }
                apply_hnsw_key(&mut next, k, v)?;
            }
        }
        self.hnsw = next;
        if let Some(ef) = obj.get("embedding_function") {
            self.embedding_function = ef.clone();
        }
        Ok(())
    }

    /// The JSON Chroma stores and returns as `configuration_json`.
    #[must_use]
    pub fn to_json(&self) -> Value {
        let h = &self.hnsw;
        json!({
            "hnsw": {
                "space": h.space.as_str(),
                "ef_construction": h.ef_construction,
                "ef_search": h.ef_search,
                "max_neighbors": h.max_neighbors,
                "resize_factor": h.resize_factor,
                "sync_threshold": h.sync_threshold,
            },
            "spann": null,
            "embedding_function": self.embedding_function,
        })
    }

    /// Parses the stored `configuration_json`, tolerating missing keys (defaults apply).
    pub fn from_json(v: &Value) -> Result<CollectionConfig> {
        let mut cfg = CollectionConfig::default();
        cfg.apply_json(v)?;
        Ok(cfg)
    }
}

fn as_usize(k: &str, v: &Value) -> Result<usize> {
    v.as_u64()
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| Error::invalid(format!("hnsw configuration {k} must be a non-negative integer, got {v}")))
}

fn apply_hnsw_key(h: &mut HnswConfig, k: &str, v: &Value) -> Result<()> {
    match k {
        "space" => h.space = Space::parse(v.as_str().unwrap_or_default())?,
        "ef_construction" => h.ef_construction = as_usize(k, v)?,
        "ef_search" => h.ef_search = as_usize(k, v)?,
        "max_neighbors" | "M" => h.max_neighbors = as_usize(k, v)?,
        "sync_threshold" => h.sync_threshold = as_usize(k, v)?,
        "batch_size" | "num_threads" => {}
        "resize_factor" => {
            h.resize_factor =
                v.as_f64().ok_or_else(|| Error::invalid(format!("hnsw resize_factor must be a number, got {v}")))?;
        }
        other => return Err(Error::invalid(format!("unknown hnsw configuration key {other:?}"))),
    }
    Ok(())
}

fn apply_legacy_metadata(h: &mut HnswConfig, m: &Metadata) -> Result<()> {
    for (k, v) in m {
        let Some(name) = k.strip_prefix("hnsw:") else { continue };
        let json = v.to_json();
        match (name, v) {
            ("space", MetadataValue::Str(s)) => h.space = Space::parse(s)?,
            ("construction_ef", _) => h.ef_construction = as_usize(k, &json)?,
            ("search_ef", _) => h.ef_search = as_usize(k, &json)?,
            ("M", _) => h.max_neighbors = as_usize(k, &json)?,
            ("sync_threshold", _) => h.sync_threshold = as_usize(k, &json)?,
            ("resize_factor", _) => h.resize_factor = json.as_f64().unwrap_or(h.resize_factor),
            _ => {}
        }
    }
    Ok(())
}

/// A tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tenant {
    pub name: String,
}

/// A database inside a tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Database {
    pub id: String,
    pub name: String,
    pub tenant: String,
}

/// Where a collection lives: tenant and database names.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DatabaseRef {
    pub tenant: String,
    pub database: String,
}

impl Default for DatabaseRef {
    fn default() -> Self {
        DatabaseRef { tenant: DEFAULT_TENANT.into(), database: DEFAULT_DATABASE.into() }
    }
}

impl DatabaseRef {
    /// A reference to `database` in `tenant`.
    pub fn new(tenant: impl Into<String>, database: impl Into<String>) -> Self {
        DatabaseRef { tenant: tenant.into(), database: database.into() }
    }
}

/// A collection as the backend describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct CollectionInfo {
    /// Chroma's collection UUID, in its hyphenated text form.
    pub id: String,
    pub name: String,
    pub db: DatabaseRef,
    pub metadata: Option<Metadata>,
    pub config: CollectionConfig,
    /// The embedding length, once the first record fixed it.
    pub dimension: Option<usize>,
}

/// The arguments of `create_collection`.
#[derive(Debug, Clone, Default)]
pub struct CreateCollection {
    pub name: String,
    pub metadata: Option<Metadata>,
    /// User configuration JSON, as chromadb's `configuration=` argument.
    pub configuration: Option<Value>,
    /// Return the existing collection instead of failing with `AlreadyExists`.
    pub get_or_create: bool,
}

/// The arguments of `modify_collection`.
#[derive(Debug, Clone, Default)]
pub struct ModifyCollection {
    pub new_name: Option<String>,
    /// Replaces the whole metadata; `None` values are dropped (an all-`None` map clears it).
    pub new_metadata: Option<crate::metadata::UpdateMetadata>,
    pub new_configuration: Option<Value>,
}

/// A fresh random UUID (version 4) in hyphenated form, as Chroma uses for collection, database and
/// segment ids.
///
/// Randomness comes from std's per-process random `RandomState` keys mixed with a counter and the
/// clock, which is enough for unique identifiers (they are not secrets) without another dependency.
#[must_use]
pub fn new_uuid() -> String {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let state = std::collections::hash_map::RandomState::new();
    let mut bytes = [0u8; 16];
    for (i, chunk) in bytes.chunks_mut(8).enumerate() {
        let mut h = state.build_hasher();
        h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        h.write_usize(i);
        h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
        chunk.copy_from_slice(&h.finish().to_le_bytes());
    }
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().fold(String::with_capacity(32), |mut acc, b| {
        use std::fmt::Write;
        let _ = write!(acc, "{b:02x}");
        acc
    });
    format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
}
