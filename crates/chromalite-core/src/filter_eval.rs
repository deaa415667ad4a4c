//! Evaluation of filters against one record, with chromadb 1.5.9's type rules.
//!
//! The rules were established by running chromadb (see `fixtures/conformance`): comparisons are
//! typed (a string never equals a number; ints and floats compare numerically), negated operators
//! also hold for records that lack the key, and array values are only reached by
//! `$contains` / `$not_contains`.

use std::cmp::Ordering;

use crate::filter::{FieldOp, WhereDocument};
use crate::metadata::{MetadataValue, Scalar};

pub(crate) fn field_matches(op: &FieldOp, value: Option<&MetadataValue>) -> bool {
    match op {
        FieldOp::Eq(s) => value.is_some_and(|v| scalar_value_eq(v, s)),
        FieldOp::Ne(s) => !value.is_some_and(|v| scalar_value_eq(v, s)),
        FieldOp::Gt(s) => compare(value, s).is_some_and(Ordering::is_gt),
        FieldOp::Gte(s) => compare(value, s).is_some_and(Ordering::is_ge),
        FieldOp::Lt(s) => compare(value, s).is_some_and(Ordering::is_lt),
        FieldOp::Lte(s) => compare(value, s).is_some_and(Ordering::is_le),
        FieldOp::In(list) => value.is_some_and(|v| list.iter().any(|s| scalar_value_eq(v, s))),
        FieldOp::Nin(list) => !value.is_some_and(|v| list.iter().any(|s| scalar_value_eq(v, s))),
        FieldOp::Contains(s) => value.is_some_and(|v| array_contains(v, s)),
        FieldOp::NotContains(s) => !value.is_some_and(|v| array_contains(v, s)),
    }
}

fn scalar_value_eq(v: &MetadataValue, s: &Scalar) -> bool {
    v.as_scalar().is_some_and(|x| scalar_eq(&x, s))
}

/// Typed equality: numbers compare by value across int/float, everything else by type and value.
#[must_use]
pub fn scalar_eq(a: &Scalar, b: &Scalar) -> bool {
    match (a, b) {
        (Scalar::Str(x), Scalar::Str(y)) => x == y,
        (Scalar::Bool(x), Scalar::Bool(y)) => x == y,
        (Scalar::Int(x), Scalar::Int(y)) => x == y,
        _ => match (as_f64(a), as_f64(b)) {
            (Some(x), Some(y)) => x == y,
            _ => false,
        },
    }
}

fn as_f64(s: &Scalar) -> Option<f64> {
    match s {
        Scalar::Int(i) => Some(*i as f64),
        Scalar::Float(f) => Some(*f),
        _ => None,
    }
}

fn compare(value: Option<&MetadataValue>, operand: &Scalar) -> Option<Ordering> {
    let v = value?.as_scalar()?;
    match (&v, operand) {
        (Scalar::Int(x), Scalar::Int(y)) => Some(x.cmp(y)),
        _ => as_f64(&v)?.partial_cmp(&as_f64(operand)?),
    }
}

fn array_contains(v: &MetadataValue, s: &Scalar) -> bool {
    match v {
        MetadataValue::Array(a) => a.scalars().iter().any(|x| scalar_eq(x, s)),
        _ => false,
    }
}

pub(crate) fn document_matches(filter: &WhereDocument, document: Option<&str>) -> bool {
    match filter {
        WhereDocument::And(items) => items.iter().all(|f| f.matches(document)),
        WhereDocument::Or(items) => items.iter().any(|f| f.matches(document)),
        WhereDocument::Contains(t) => document.is_some_and(|d| d.contains(t.as_str())),
        WhereDocument::NotContains(t) => !document.is_some_and(|d| d.contains(t.as_str())),
        WhereDocument::Regex(r) => document.is_some_and(|d| r.is_match(d)),
        WhereDocument::NotRegex(r) => !document.is_some_and(|d| r.is_match(d)),
    }
}
