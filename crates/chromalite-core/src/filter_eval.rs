//! Evaluation of filters against one record, with chromadb 1.5.9's semantics.
//!
//! Chroma stores each metadata value in a column of its type and answers a filter with a subquery
//! per comparison, which fixes these rules (all mirrored here):
//!
//! - comparisons are typed: a string never equals a number, a bool never equals an int;
//! - ints and floats meet: an int operand also compares against float values (as `f64`), and a
//!   float operand also compares against int values *truncated toward zero* (so `{"$gte": 2.5}`
//!   matches an int `2`, exactly as chromadb does);
//! - negated operators (`$ne`, `$nin`, `$not_contains`, and the document negations) are
//!   complements, so they also hold for records that lack the key or the document;
//! - array values are only reached by `$contains` / `$not_contains`, which compare elements by type
//!   without the int/float bridge; scalar operators never match an array;
//! - document `$contains` is a case-sensitive substring test.

use std::cmp::Ordering;

use crate::filter::{FieldOp, WhereDocument};
use crate::metadata::{MetadataValue, Scalar};

pub(crate) fn field_matches(op: &FieldOp, value: Option<&MetadataValue>) -> bool {
    let scalar = value.and_then(MetadataValue::as_scalar);
    let cmp = |s: &Scalar, pred: fn(Ordering) -> bool| scalar.as_ref().is_some_and(|v| compare(v, s).is_some_and(pred));
    match op {
        FieldOp::Eq(s) => cmp(s, Ordering::is_eq),
        FieldOp::Ne(s) => !cmp(s, Ordering::is_eq),
        FieldOp::Gt(s) => cmp(s, Ordering::is_gt),
        FieldOp::Gte(s) => cmp(s, Ordering::is_ge),
        FieldOp::Lt(s) => cmp(s, Ordering::is_lt),
        FieldOp::Lte(s) => cmp(s, Ordering::is_le),
        FieldOp::In(list) => list.iter().any(|s| cmp(s, Ordering::is_eq)),
        FieldOp::Nin(list) => !list.iter().any(|s| cmp(s, Ordering::is_eq)),
        FieldOp::Contains(s) => value.is_some_and(|v| array_contains(v, s)),
        FieldOp::NotContains(s) => !value.is_some_and(|v| array_contains(v, s)),
    }
}

/// Orders a stored scalar against an operand the way Chroma's SQL does, or `None` when the two
/// never compare (different types).
fn compare(stored: &Scalar, operand: &Scalar) -> Option<Ordering> {
    match (stored, operand) {
        (Scalar::Str(a), Scalar::Str(b)) => Some(a.cmp(b)),
        (Scalar::Bool(a), Scalar::Bool(b)) => Some(a.cmp(b)),
        (Scalar::Int(a), Scalar::Int(b)) => Some(a.cmp(b)),
        (Scalar::Float(a), Scalar::Float(b)) => a.partial_cmp(b),
        (Scalar::Float(a), Scalar::Int(b)) => a.partial_cmp(&(*b as f64)),
        // Chroma converts a float operand with `as i64` before comparing it to int values.
        (Scalar::Int(a), Scalar::Float(b)) => Some(a.cmp(&(*b as i64))),
        _ => None,
    }
}

/// Typed equality as used by `$contains` on arrays: same type and value.
#[must_use]
pub fn scalar_eq(a: &Scalar, b: &Scalar) -> bool {
    match (a, b) {
        (Scalar::Str(x), Scalar::Str(y)) => x == y,
        (Scalar::Bool(x), Scalar::Bool(y)) => x == y,
        (Scalar::Int(x), Scalar::Int(y)) => x == y,
        (Scalar::Float(x), Scalar::Float(y)) => x == y,
        _ => false,
    }
}

fn array_contains(v: &MetadataValue, s: &Scalar) -> bool {
    match v {
        MetadataValue::Array(a) => a.scalars().iter().any(|x| scalar_eq(x, s)),
        _ => false,
    }
}

/// Chroma answers `$contains` from a case-sensitive trigram index: a plain substring test.
fn like_contains(haystack: &str, needle: &str) -> bool {
    haystack.contains(needle)
}

pub(crate) fn document_matches(filter: &WhereDocument, document: Option<&str>) -> bool {
    match filter {
        WhereDocument::And(items) => items.iter().all(|f| f.matches(document)),
        WhereDocument::Or(items) => items.iter().any(|f| f.matches(document)),
        WhereDocument::Contains(t) => document.is_some_and(|d| like_contains(d, t)),
        WhereDocument::NotContains(t) => !document.is_some_and(|d| like_contains(d, t)),
        WhereDocument::Regex(r) => document.is_some_and(|d| r.is_match(d)),
        WhereDocument::NotRegex(r) => !document.is_some_and(|d| r.is_match(d)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_operand_truncates_against_ints_like_chroma() {
        let two = MetadataValue::Int(2);
        assert!(field_matches(&FieldOp::Gte(Scalar::Float(2.5)), Some(&two)));
        assert!(!field_matches(&FieldOp::Lt(Scalar::Float(2.5)), Some(&two)));
        assert!(field_matches(&FieldOp::Eq(Scalar::Int(2)), Some(&MetadataValue::Float(2.0))));
    }

    #[test]
    fn negations_include_missing_keys() {
        assert!(field_matches(&FieldOp::Ne(Scalar::Int(1)), None));
        assert!(field_matches(&FieldOp::Nin(vec![Scalar::Int(1)]), None));
        assert!(!field_matches(&FieldOp::Eq(Scalar::Str("1".into())), Some(&MetadataValue::Int(1))));
    }

    #[test]
    fn document_contains_is_case_sensitive() {
        assert!(like_contains("hello World", "hello"));
        assert!(!like_contains("Hello World", "hello"));
    }
}
