//! Translating `ids` / `where` / `where_document` into Lance SQL filters.
//!
//! A selection becomes a [`Pushdown`]: a SQL predicate that holds for *every* record the selection
//! matches (it may let through more), and whether it is *exact* (lets through nothing more).
//! Readers always re-check inexact predicates with the core evaluator, so the answer is chromadb's
//! whatever Lance can express; exact ones let Lance page and order by itself.
//!
//! Metadata is stored as JSON, which SQL cannot compare with Chroma's typed rules. For the
//! comparisons that are plain typed equality, each row also carries `terms`: one string per
//! string/bool scalar (`key␟s␟value`, `key␟b␟true`) and per array element (`key␟as␟value`,
//! `key␟ai␟3`, `key␟af␟2.5`, `key␟ab␟false`). Then
//!
//! - `$eq` / `$in` on a string or bool operand is `array_has(terms, ..)` (strings only equal
//!   strings and bools only bools in Chroma, so this is exact), `$ne` / `$nin` its negation (Chroma's
//!   negations also hold for records without the key, as `NOT array_has` does);
//! - `$contains` / `$not_contains` on arrays compare elements by type without the int/float bridge,
//!   so every element type maps exactly;
//! - numeric comparisons (`$gt`..., and `$eq` on numbers, where ints and floats meet with Chroma's
//!   truncation rule) and `$regex` are left to the evaluator;
//! - document `$contains` is a case-sensitive substring test, as SQL `strpos`.
//!
//! `␟` is U+001F. A key or operand that contains it is never pushed down, which keeps the terms of
//! different keys from being confused.

use chromalite_core::filter::FieldOp;
use chromalite_core::{Metadata, MetadataArray, MetadataValue, Scalar, Selection, Where, WhereDocument};

use crate::rows::{DOCUMENT, ID, TERMS};

const SEP: char = '\u{1f}';

/// A SQL predicate for a selection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pushdown {
    /// `None` when nothing could be pushed down (every row is a candidate).
    pub sql: Option<String>,
    /// True when the predicate matches exactly the selected records.
    pub exact: bool,
}

impl Pushdown {
    fn exact(sql: String) -> Pushdown {
        Pushdown { sql: Some(sql), exact: true }
    }

    fn none() -> Pushdown {
        Pushdown { sql: None, exact: false }
    }

    fn all(parts: Vec<Pushdown>) -> Pushdown {
        let exact = parts.iter().all(|p| p.exact);
        let sqls: Vec<String> = parts.into_iter().filter_map(|p| p.sql).collect();
        match sqls.len() {
            0 => Pushdown { sql: None, exact },
            1 => Pushdown { sql: sqls.into_iter().next(), exact },
            _ => Pushdown { sql: Some(format!("({})", sqls.join(" AND "))), exact },
        }
    }

    fn any(parts: Vec<Pushdown>) -> Pushdown {
        // One unrestricted branch lets every row through.
        if parts.iter().any(|p| p.sql.is_none()) {
            return Pushdown::none();
        }
        let exact = parts.iter().all(|p| p.exact);
        let sqls: Vec<String> = parts.into_iter().filter_map(|p| p.sql).collect();
        Pushdown { sql: Some(format!("({})", sqls.join(" OR "))), exact }
    }
}

/// The predicate for a whole selection.
pub(crate) fn selection(sel: &Selection) -> Pushdown {
    let mut parts = Vec::new();
    if let Some(ids) = &sel.ids {
        parts.push(Pushdown::exact(ids_in(ids)));
    }
    if let Some(w) = &sel.where_ {
        parts.push(where_(w));
    }
    if let Some(d) = &sel.where_document {
        parts.push(document(d));
    }
    let p = Pushdown::all(parts);
    if sel.is_empty() {
        Pushdown { sql: None, exact: true }
    } else {
        p
    }
}

/// `id IN (...)`, or `FALSE` for no ids.
pub(crate) fn ids_in(ids: &[String]) -> String {
    if ids.is_empty() {
        return "FALSE".into();
    }
    let list: Vec<String> = ids.iter().map(|i| literal(i)).collect();
    format!("{ID} IN ({})", list.join(", "))
}

fn where_(w: &Where) -> Pushdown {
    match w {
        Where::And(items) => Pushdown::all(items.iter().map(where_).collect()),
        Where::Or(items) => Pushdown::any(items.iter().map(where_).collect()),
        Where::Document(d) => document(d),
        Where::Field { key, op } if !key.contains(SEP) => field(key, op),
        Where::Field { .. } => Pushdown::none(),
    }
}

fn field(key: &str, op: &FieldOp) -> Pushdown {
    let one = |s: &Scalar| scalar_term(key, s);
    let many = |list: &[Scalar]| list.iter().map(|s| scalar_term(key, s)).collect::<Option<Vec<_>>>();
    let sql = match op {
        FieldOp::Eq(s) => one(s).map(|t| has(&t)),
        FieldOp::Ne(s) => one(s).map(|t| format!("NOT {}", has(&t))),
        FieldOp::In(list) => many(list).map(|ts| has_any(&ts)),
        FieldOp::Nin(list) => many(list).map(|ts| format!("NOT {}", has_any(&ts))),
        FieldOp::Contains(s) => element_term(key, s).map(|t| has(&t)),
        FieldOp::NotContains(s) => element_term(key, s).map(|t| format!("NOT {}", has(&t))),
        FieldOp::Gt(_) | FieldOp::Gte(_) | FieldOp::Lt(_) | FieldOp::Lte(_) => None,
    };
    sql.map_or_else(Pushdown::none, Pushdown::exact)
}

fn document(d: &WhereDocument) -> Pushdown {
    match d {
        WhereDocument::And(items) => Pushdown::all(items.iter().map(document).collect()),
        WhereDocument::Or(items) => Pushdown::any(items.iter().map(document).collect()),
        WhereDocument::Contains(t) => Pushdown::exact(contains(t)),
        WhereDocument::NotContains(t) => Pushdown::exact(format!("({DOCUMENT} IS NULL OR NOT {})", contains(t))),
        WhereDocument::Regex(_) | WhereDocument::NotRegex(_) => Pushdown::none(),
    }
}

fn contains(text: &str) -> String {
    // An empty needle is in every document; strpos returns 1 for it, which keeps that rule.
    format!("strpos({DOCUMENT}, {}) > 0", literal(text))
}

fn has(term: &str) -> String {
    format!("array_has({TERMS}, {})", literal(term))
}

fn has_any(terms: &[String]) -> String {
    let list: Vec<String> = terms.iter().map(|t| literal(t)).collect();
    format!("array_has_any({TERMS}, make_array({}))", list.join(", "))
}

/// A SQL string literal. SQL escapes only the quote itself.
pub(crate) fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// The term of a string or bool scalar value, `None` for numbers or text holding the separator.
fn scalar_term(key: &str, s: &Scalar) -> Option<String> {
    match s {
        Scalar::Str(v) if !v.contains(SEP) => Some(format!("{key}{SEP}s{SEP}{v}")),
        Scalar::Bool(b) => Some(format!("{key}{SEP}b{SEP}{b}")),
        _ => None,
    }
}

/// The term of one array element.
fn element_term(key: &str, s: &Scalar) -> Option<String> {
    match s {
        Scalar::Str(v) if v.contains(SEP) => None,
        Scalar::Str(v) => Some(format!("{key}{SEP}as{SEP}{v}")),
        Scalar::Int(i) => Some(format!("{key}{SEP}ai{SEP}{i}")),
        Scalar::Float(f) => Some(format!("{key}{SEP}af{SEP}{}", float_text(*f))),
        Scalar::Bool(b) => Some(format!("{key}{SEP}ab{SEP}{b}")),
    }
}

/// Equal floats give equal text (`-0.0 == 0.0`).
fn float_text(f: f64) -> String {
    if f == 0.0 {
        "0".into()
    } else {
        format!("{f:?}")
    }
}

/// The filter terms stored with a record's metadata.
pub(crate) fn terms_of(m: &Metadata) -> Vec<String> {
    let mut out = Vec::new();
    for (key, value) in m {
        match value {
            MetadataValue::Str(v) => out.push(format!("{key}{SEP}s{SEP}{v}")),
            MetadataValue::Bool(b) => out.push(format!("{key}{SEP}b{SEP}{b}")),
            MetadataValue::Int(_) | MetadataValue::Float(_) => {}
            MetadataValue::Array(a) => out.extend(array_terms(key, a)),
        }
    }
    out
}

fn array_terms(key: &str, a: &MetadataArray) -> Vec<String> {
    a.scalars().iter().filter_map(|s| element_term(key, s)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pushdown(w: &serde_json::Value) -> Pushdown {
        selection(&Selection { where_: Some(Where::from_json(w).unwrap()), ..Default::default() })
    }

    #[test]
    fn typed_equality_is_exact_and_numbers_are_not() {
        let p = pushdown(&json!({"color": "red"}));
        assert!(p.exact);
        assert_eq!(p.sql.unwrap(), "array_has(terms, 'color\u{1f}s\u{1f}red')");
        let p = pushdown(&json!({"n": {"$gt": 3}}));
        assert_eq!(p, Pushdown::none());
    }

    #[test]
    fn and_keeps_the_pushable_half_or_gives_up() {
        let p = pushdown(&json!({"$and": [{"color": "red"}, {"n": {"$gt": 3}}]}));
        assert!(!p.exact);
        assert!(p.sql.unwrap().contains("array_has"));
        assert_eq!(pushdown(&json!({"$or": [{"color": "red"}, {"n": {"$gt": 3}}]})), Pushdown::none());
    }

    #[test]
    fn quotes_are_escaped() {
        assert_eq!(literal("it's"), "'it''s'");
        assert_eq!(ids_in(&["a'b".to_string()]), "id IN ('a''b')");
    }

    #[test]
    fn terms_cover_strings_bools_and_array_elements() {
        let m =
            chromalite_core::metadata::metadata_from_json(&json!({"s": "x", "b": true, "n": 1, "a": [1, 2]})).unwrap();
        let t = terms_of(&m);
        assert!(t.contains(&format!("s{SEP}s{SEP}x")));
        assert!(t.contains(&format!("b{SEP}b{SEP}true")));
        assert!(t.contains(&format!("a{SEP}ai{SEP}2")));
        assert_eq!(t.len(), 4);
    }
}
