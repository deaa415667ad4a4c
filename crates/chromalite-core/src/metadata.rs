//! Metadata values: the scalars and homogeneous arrays Chroma stores beside a record.

use std::collections::BTreeMap;

use serde::de::{Deserializer, Error as _};
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};

/// A record's or collection's metadata. Keys are sorted so output is deterministic.
pub type Metadata = BTreeMap<String, MetadataValue>;

/// Metadata as sent by `update`/`upsert`: a `None` value removes the key.
pub type UpdateMetadata = BTreeMap<String, Option<MetadataValue>>;

/// One scalar metadata value.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
}

/// A homogeneous metadata array (Chroma rejects mixed-type arrays).
#[derive(Debug, Clone, PartialEq)]
pub enum MetadataArray {
    Bool(Vec<bool>),
    Int(Vec<i64>),
    Float(Vec<f64>),
    Str(Vec<String>),
}

/// A metadata value: a scalar or an array of one scalar type.
#[derive(Debug, Clone, PartialEq)]
pub enum MetadataValue {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Array(MetadataArray),
}

impl Scalar {
    /// Parses a JSON scalar (no null, arrays or objects).
    #[must_use]
    pub fn from_json(v: &serde_json::Value) -> Option<Scalar> {
        match v {
            serde_json::Value::Bool(b) => Some(Scalar::Bool(*b)),
            serde_json::Value::Number(n) => Some(number_to_scalar(n)),
            serde_json::Value::String(s) => Some(Scalar::Str(s.clone())),
            _ => None,
        }
    }

    /// The JSON form of this scalar.
    #[must_use]
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Scalar::Bool(b) => serde_json::Value::Bool(*b),
            Scalar::Int(i) => serde_json::Value::from(*i),
            Scalar::Float(f) => float_json(*f),
            Scalar::Str(s) => serde_json::Value::String(s.clone()),
        }
    }

    /// A short name of the scalar's type, for messages.
    #[must_use]
    pub fn type_name(&self) -> &'static str {
        match self {
            Scalar::Bool(_) => "bool",
            Scalar::Int(_) => "int",
            Scalar::Float(_) => "float",
            Scalar::Str(_) => "str",
        }
    }
}

fn number_to_scalar(n: &serde_json::Number) -> Scalar {
    if let Some(i) = n.as_i64() {
        Scalar::Int(i)
    } else {
        Scalar::Float(n.as_f64().unwrap_or(f64::NAN))
    }
}

fn float_json(f: f64) -> serde_json::Value {
    serde_json::Number::from_f64(f).map_or(serde_json::Value::Null, serde_json::Value::Number)
}

impl From<Scalar> for MetadataValue {
    fn from(s: Scalar) -> Self {
        match s {
            Scalar::Bool(b) => MetadataValue::Bool(b),
            Scalar::Int(i) => MetadataValue::Int(i),
            Scalar::Float(f) => MetadataValue::Float(f),
            Scalar::Str(s) => MetadataValue::Str(s),
        }
    }
}

impl MetadataArray {
    /// Number of elements.
    #[must_use]
    pub fn len(&self) -> usize {
        match self {
            MetadataArray::Bool(v) => v.len(),
            MetadataArray::Int(v) => v.len(),
            MetadataArray::Float(v) => v.len(),
            MetadataArray::Str(v) => v.len(),
        }
    }

    /// True when the array has no elements.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The elements as scalars.
    #[must_use]
    pub fn scalars(&self) -> Vec<Scalar> {
        match self {
            MetadataArray::Bool(v) => v.iter().map(|b| Scalar::Bool(*b)).collect(),
            MetadataArray::Int(v) => v.iter().map(|i| Scalar::Int(*i)).collect(),
            MetadataArray::Float(v) => v.iter().map(|f| Scalar::Float(*f)).collect(),
            MetadataArray::Str(v) => v.iter().map(|s| Scalar::Str(s.clone())).collect(),
        }
    }

    fn from_scalars(items: Vec<Scalar>) -> Result<MetadataArray, String> {
        let first = items.first().ok_or("metadata arrays must not be empty")?;
        let ty = first.type_name();
        if items.iter().any(|s| s.type_name() != ty) {
            return Err("metadata array elements must all have the same type".into());
        }
        Ok(match first {
            Scalar::Bool(_) => MetadataArray::Bool(
                items.into_iter().filter_map(|s| if let Scalar::Bool(b) = s { Some(b) } else { None }).collect(),
            ),
            Scalar::Int(_) => MetadataArray::Int(
                items.into_iter().filter_map(|s| if let Scalar::Int(i) = s { Some(i) } else { None }).collect(),
            ),
            Scalar::Float(_) => MetadataArray::Float(
                items.into_iter().filter_map(|s| if let Scalar::Float(f) = s { Some(f) } else { None }).collect(),
            ),
            Scalar::Str(_) => MetadataArray::Str(
                items.into_iter().filter_map(|s| if let Scalar::Str(t) = s { Some(t) } else { None }).collect(),
            ),
        })
    }
}

impl MetadataValue {
    /// Parses one JSON value; `null` is not a value (see [`UpdateMetadata`]).
    pub fn from_json(v: &serde_json::Value) -> Result<MetadataValue, String> {
        if let Some(s) = Scalar::from_json(v) {
            return Ok(s.into());
        }
        match v {
            serde_json::Value::Array(items) => {
                let scalars = items
                    .iter()
                    .map(|i| {
                        Scalar::from_json(i)
                            .ok_or_else(|| format!("metadata array elements must be str, int, float or bool, got {i}"))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                MetadataArray::from_scalars(scalars).map(MetadataValue::Array)
            }
            other => {
                Err(format!("metadata values must be str, int, float, bool or a list of one of those, got {other}"))
            }
        }
    }

    /// The JSON form of this value.
    #[must_use]
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            MetadataValue::Bool(b) => Scalar::Bool(*b).to_json(),
            MetadataValue::Int(i) => Scalar::Int(*i).to_json(),
            MetadataValue::Float(f) => Scalar::Float(*f).to_json(),
            MetadataValue::Str(s) => serde_json::Value::String(s.clone()),
            MetadataValue::Array(a) => serde_json::Value::Array(a.scalars().iter().map(Scalar::to_json).collect()),
        }
    }

    /// The scalar if this value is not an array.
    #[must_use]
    pub fn as_scalar(&self) -> Option<Scalar> {
        match self {
            MetadataValue::Bool(b) => Some(Scalar::Bool(*b)),
            MetadataValue::Int(i) => Some(Scalar::Int(*i)),
            MetadataValue::Float(f) => Some(Scalar::Float(*f)),
            MetadataValue::Str(s) => Some(Scalar::Str(s.clone())),
            MetadataValue::Array(_) => None,
        }
    }
}

impl Serialize for MetadataValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

impl<'de> Deserialize<'de> for MetadataValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        MetadataValue::from_json(&v).map_err(D::Error::custom)
    }
}

macro_rules! impl_from {
    ($($t:ty => $variant:ident),*) => {$(
        impl From<$t> for MetadataValue {
            fn from(v: $t) -> Self { MetadataValue::$variant(v.into()) }
        }
    )*};
}
impl_from!(bool => Bool, i64 => Int, i32 => Int, f64 => Float, String => Str, &str => Str);

/// Parses a JSON object into [`Metadata`]; `null` values are rejected.
pub fn metadata_from_json(v: &serde_json::Value) -> Result<Metadata, String> {
    let obj = v.as_object().ok_or_else(|| format!("metadata must be a JSON object, got {v}"))?;
    obj.iter().map(|(k, v)| MetadataValue::from_json(v).map(|mv| (k.clone(), mv))).collect()
}

/// Parses a JSON object into [`UpdateMetadata`]; `null` values mean "remove this key".
pub fn update_metadata_from_json(v: &serde_json::Value) -> Result<UpdateMetadata, String> {
    let obj = v.as_object().ok_or_else(|| format!("metadata must be a JSON object, got {v}"))?;
    obj.iter()
        .map(|(k, v)| {
            if v.is_null() {
                Ok((k.clone(), None))
            } else {
                MetadataValue::from_json(v).map(|mv| (k.clone(), Some(mv)))
            }
        })
        .collect()
}

/// The JSON object form of a metadata map.
#[must_use]
pub fn metadata_to_json(m: &Metadata) -> serde_json::Value {
    serde_json::Value::Object(m.iter().map(|(k, v)| (k.clone(), v.to_json())).collect())
}

/// The JSON object form of an update map: `null` for a key to remove.
#[must_use]
pub fn update_metadata_to_json(m: &UpdateMetadata) -> serde_json::Value {
    serde_json::Value::Object(
        m.iter()
            .map(|(k, v)| (k.clone(), v.as_ref().map_or(serde_json::Value::Null, MetadataValue::to_json)))
            .collect(),
    )
}

/// Applies an update: keys with `Some` are set, keys with `None` are removed.
pub fn merge_metadata(base: &mut Metadata, update: &UpdateMetadata) {
    for (k, v) in update {
        match v {
            Some(v) => {
                base.insert(k.clone(), v.clone());
            }
            None => {
                base.remove(k);
            }
        }
    }
}

/// Prefix of metadata keys Chroma reserves for itself; such keys are stored and filterable but
/// never returned to callers.
pub const RESERVED_PREFIX: &str = "chroma:";

/// The metadata a read returns: `None` when nothing is stored, otherwise the map without reserved
/// `chroma:` keys (which can leave `{}`, exactly as chromadb returns it).
#[must_use]
pub fn visible(m: Option<&Metadata>) -> Option<Metadata> {
    let m = m.filter(|m| !m.is_empty())?;
    Some(m.iter().filter(|(k, _)| !k.starts_with(RESERVED_PREFIX)).map(|(k, v)| (k.clone(), v.clone())).collect())
}

/// Drops `None` entries: what an `add` stores when given an update-style map.
#[must_use]
pub fn strip_nulls(update: &UpdateMetadata) -> Metadata {
    update.iter().filter_map(|(k, v)| v.clone().map(|v| (k.clone(), v))).collect()
}
