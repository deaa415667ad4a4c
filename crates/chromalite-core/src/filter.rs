//! The `where` and `where_document` filters: an AST parsed from Chroma's JSON syntax, a typed
//! builder, and an evaluator with chromadb 1.5.9's semantics.
//!
//! ```
//! use chromalite_core::filter::Where;
//! use serde_json::json;
//!
//! let w = Where::from_json(&json!({"$and": [{"section": "games"}, {"size": {"$gt": 10}}]})).unwrap();
//! let built = Where::and([Where::eq("section", "games"), Where::gt("size", 10)]);
//! assert_eq!(w, built);
//! ```

use serde_json::Value;

use crate::error::{Error, Result};
use crate::metadata::{Metadata, MetadataValue, Scalar};

/// The metadata key under which a `where` clause may address the document (Chroma 1.x syntax).
pub const DOCUMENT_KEY: &str = "#document";

/// A metadata filter.
#[derive(Debug, Clone, PartialEq)]
pub enum Where {
    /// All sub-filters hold.
    And(Vec<Where>),
    /// At least one sub-filter holds.
    Or(Vec<Where>),
    /// A comparison on one metadata key.
    Field { key: String, op: FieldOp },
    /// A document predicate written inside `where` as `{"#document": {"$contains": ..}}`.
    Document(WhereDocument),
}

/// A comparison applied to one metadata key.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldOp {
    Eq(Scalar),
    Ne(Scalar),
    Gt(Scalar),
    Gte(Scalar),
    Lt(Scalar),
    Lte(Scalar),
    In(Vec<Scalar>),
    Nin(Vec<Scalar>),
    /// The key holds an array containing the scalar.
    Contains(Scalar),
    /// The key does not hold an array containing the scalar.
    NotContains(Scalar),
}

/// A document filter.
#[derive(Debug, Clone)]
pub enum WhereDocument {
    And(Vec<WhereDocument>),
    Or(Vec<WhereDocument>),
    Contains(String),
    NotContains(String),
    Regex(regex::Regex),
    NotRegex(regex::Regex),
}

impl PartialEq for WhereDocument {
    fn eq(&self, other: &Self) -> bool {
        use WhereDocument as D;
        match (self, other) {
            (D::And(a), D::And(b)) | (D::Or(a), D::Or(b)) => a == b,
            (D::Contains(a), D::Contains(b)) | (D::NotContains(a), D::NotContains(b)) => a == b,
            (D::Regex(a), D::Regex(b)) | (D::NotRegex(a), D::NotRegex(b)) => a.as_str() == b.as_str(),
            _ => false,
        }
    }
}

fn bad(msg: String) -> Error {
    Error::InvalidArgument(msg)
}

impl Where {
    /// Parses Chroma's JSON `where` syntax, applying chromadb's validation rules.
    pub fn from_json(v: &Value) -> Result<Where> {
        let obj = v.as_object().ok_or_else(|| bad(format!("Expected where to be a dict, got {v}")))?;
        let (key, value) =
            single_entry(obj).ok_or_else(|| bad(format!("Expected where to have exactly one operator, got {v}")))?;
        match key.as_str() {
            "$and" | "$or" => {
                let items = logical_items(value, "where")?;
                let parsed = items.iter().map(Where::from_json).collect::<Result<Vec<_>>>()?;
                Ok(if key == "$and" { Where::And(parsed) } else { Where::Or(parsed) })
            }
            k if k.starts_with('$') => Err(bad(format!(
                "Expected where key to be a metadata field name or a logical operator ($and, $or), got {k}"
            ))),
            DOCUMENT_KEY => parse_document_in_where(value),
            _ => Ok(Where::Field { key: key.clone(), op: parse_field_op(value)? }),
        }
    }

    /// Serialises back to Chroma's JSON syntax.
    #[must_use]
    pub fn to_json(&self) -> Value {
        match self {
            Where::And(v) => serde_json::json!({"$and": v.iter().map(Where::to_json).collect::<Vec<_>>()}),
            Where::Or(v) => serde_json::json!({"$or": v.iter().map(Where::to_json).collect::<Vec<_>>()}),
            Where::Field { key, op } => serde_json::json!({ key: op.to_json() }),
            Where::Document(d) => serde_json::json!({ DOCUMENT_KEY: d.to_json() }),
        }
    }

    /// `key == value`.
    pub fn eq(key: impl Into<String>, value: impl Into<ScalarArg>) -> Where {
        Where::Field { key: key.into(), op: FieldOp::Eq(value.into().0) }
    }
    /// `key != value`.
    pub fn ne(key: impl Into<String>, value: impl Into<ScalarArg>) -> Where {
        Where::Field { key: key.into(), op: FieldOp::Ne(value.into().0) }
    }
    /// `key > value`.
    pub fn gt(key: impl Into<String>, value: impl Into<ScalarArg>) -> Where {
        Where::Field { key: key.into(), op: FieldOp::Gt(value.into().0) }
    }
    /// `key >= value`.
    pub fn gte(key: impl Into<String>, value: impl Into<ScalarArg>) -> Where {
        Where::Field { key: key.into(), op: FieldOp::Gte(value.into().0) }
    }
    /// `key < value`.
    pub fn lt(key: impl Into<String>, value: impl Into<ScalarArg>) -> Where {
        Where::Field { key: key.into(), op: FieldOp::Lt(value.into().0) }
    }
    /// `key <= value`.
    pub fn lte(key: impl Into<String>, value: impl Into<ScalarArg>) -> Where {
        Where::Field { key: key.into(), op: FieldOp::Lte(value.into().0) }
    }
    /// `key` is one of `values`.
    pub fn is_in<V: Into<ScalarArg>>(key: impl Into<String>, values: impl IntoIterator<Item = V>) -> Where {
        Where::Field { key: key.into(), op: FieldOp::In(values.into_iter().map(|v| v.into().0).collect()) }
    }
    /// `key` is none of `values`.
    pub fn not_in<V: Into<ScalarArg>>(key: impl Into<String>, values: impl IntoIterator<Item = V>) -> Where {
        Where::Field { key: key.into(), op: FieldOp::Nin(values.into_iter().map(|v| v.into().0).collect()) }
    }
    /// The array under `key` contains `value`.
    pub fn contains(key: impl Into<String>, value: impl Into<ScalarArg>) -> Where {
        Where::Field { key: key.into(), op: FieldOp::Contains(value.into().0) }
    }
    /// The array under `key` does not contain `value`.
    pub fn not_contains(key: impl Into<String>, value: impl Into<ScalarArg>) -> Where {
        Where::Field { key: key.into(), op: FieldOp::NotContains(value.into().0) }
    }
    /// All of `items`.
    pub fn and(items: impl IntoIterator<Item = Where>) -> Where {
        Where::And(items.into_iter().collect())
    }
    /// Any of `items`.
    pub fn or(items: impl IntoIterator<Item = Where>) -> Where {
        Where::Or(items.into_iter().collect())
    }

    /// Evaluates the filter against a record's metadata and document.
    #[must_use]
    pub fn matches(&self, metadata: Option<&Metadata>, document: Option<&str>) -> bool {
        match self {
            Where::And(items) => items.iter().all(|w| w.matches(metadata, document)),
            Where::Or(items) => items.iter().any(|w| w.matches(metadata, document)),
            Where::Document(d) => d.matches(document),
            Where::Field { key, op } => op.matches(metadata.and_then(|m| m.get(key))),
        }
    }
}

/// A scalar accepted by the builder methods (`&str`, `String`, integers, floats, `bool`).
#[derive(Debug, Clone, PartialEq)]
pub struct ScalarArg(pub Scalar);

macro_rules! scalar_arg {
    ($($t:ty => |$v:ident| $e:expr),*) => {$(
        impl From<$t> for ScalarArg { fn from($v: $t) -> Self { ScalarArg($e) } }
    )*};
}
scalar_arg!(
    &str => |v| Scalar::Str(v.to_owned()),
    String => |v| Scalar::Str(v),
    i64 => |v| Scalar::Int(v),
    i32 => |v| Scalar::Int(i64::from(v)),
    u32 => |v| Scalar::Int(i64::from(v)),
    f64 => |v| Scalar::Float(v),
    bool => |v| Scalar::Bool(v),
    Scalar => |v| v
);

/// The only key/value pair of a JSON object, or `None` when it has zero or several.
fn single_entry(obj: &serde_json::Map<String, Value>) -> Option<(&String, &Value)> {
    let mut it = obj.iter();
    match (it.next(), it.next()) {
        (Some(entry), None) => Some(entry),
        _ => None,
    }
}

fn logical_items<'a>(value: &'a Value, what: &str) -> Result<&'a Vec<Value>> {
    let items = value.as_array().ok_or_else(|| {
        bad(format!("Expected {what} value for $and or $or to be a list of {what} expressions, got {value}"))
    })?;
    if items.len() <= 1 {
        return Err(bad(format!(
            "Expected {what} value for $and or $or to be a list with at least two {what} expressions, got {value}"
        )));
    }
    Ok(items)
}

fn parse_document_in_where(value: &Value) -> Result<Where> {
    let (op, operand) = value
        .as_object()
        .and_then(single_entry)
        .ok_or_else(|| bad(format!("Expected operator expression to have exactly one operator, got {value}")))?;
    let text = operand.as_str().ok_or_else(|| {
        bad(format!("Expected operand value to be a str for operator {op} on #document, got {operand}"))
    })?;
    // chromadb's where validation knows no $regex / $not_regex: inside `where` the document only
    // takes $contains and $not_contains (regexes go through where_document).
    let doc = match op.as_str() {
        "$contains" => WhereDocument::Contains(text.to_owned()),
        "$not_contains" => WhereDocument::NotContains(text.to_owned()),
        other => return Err(bad(format!("Unsupported operator {other} on #document"))),
    };
    Ok(Where::Document(doc))
}

fn parse_field_op(value: &Value) -> Result<FieldOp> {
    let Some(obj) = value.as_object() else {
        let scalar = where_operand(value).ok_or_else(|| {
            bad(format!("Expected where value to be a str, int, float, or operator expression, got {value}"))
        })?;
        return Ok(FieldOp::Eq(scalar));
    };
    let (op, operand) = single_entry(obj)
        .ok_or_else(|| bad(format!("Expected operator expression to have exactly one operator, got {value}")))?;
    match op.as_str() {
        "$gt" | "$gte" | "$lt" | "$lte" => parse_comparison(op, operand),
        "$in" | "$nin" => parse_membership(op, operand),
        "$eq" | "$ne" | "$contains" | "$not_contains" => {
            let s = where_operand(operand).ok_or_else(|| {
                bad(format!("Expected where operand value to be a str, int, float or bool for operator {op}, got {operand}"))
            })?;
            Ok(match op.as_str() {
                "$eq" => FieldOp::Eq(s),
                "$ne" => FieldOp::Ne(s),
                "$contains" => FieldOp::Contains(s),
                _ => FieldOp::NotContains(s),
            })
        }
        other => Err(bad(format!(
            "Expected where operator to be one of $gt, $gte, $lt, $lte, $ne, $eq, $in, $nin, $contains, $not_contains, got {other}"
        ))),
    }
}

fn parse_comparison(op: &str, operand: &Value) -> Result<FieldOp> {
    let s = match operand {
        Value::Number(_) => where_operand(operand)
            .ok_or_else(|| bad(format!("Integer operand {operand} of {op} is out of the 64-bit signed range")))?,
        _ => {
            return Err(bad(format!("Expected operand value to be an int or a float for operator {op}, got {operand}")))
        }
    };
    Ok(match op {
        "$gt" => FieldOp::Gt(s),
        "$gte" => FieldOp::Gte(s),
        "$lt" => FieldOp::Lt(s),
        _ => FieldOp::Lte(s),
    })
}

fn parse_membership(op: &str, operand: &Value) -> Result<FieldOp> {
    let items = operand
        .as_array()
        .ok_or_else(|| bad(format!("Expected operand value to be an list for operator {op}, got {operand}")))?;
    let scalars: Vec<Scalar> = items.iter().filter_map(where_operand).collect();
    let same_type = scalars.first().is_some_and(|f| scalars.iter().all(|s| s.type_name() == f.type_name()));
    if scalars.len() != items.len() || !same_type {
        return Err(bad(format!(
            "Expected where operand value to be a non-empty list, and all values to be of the same type got {operand}"
        )));
    }
    Ok(if op == "$in" { FieldOp::In(scalars) } else { FieldOp::Nin(scalars) })
}

/// A scalar operand of a `where` comparison, or `None` when chromadb refuses it.
///
/// chromadb parses the filter JSON with `serde_json` and takes a number as an int only when it fits
/// `i64` and as a float only when it was written as one or overflows `u64`: an integer in
/// `i64::MAX + 1 ..= u64::MAX` is neither and makes the clause invalid, while a larger one is a float.
fn where_operand(v: &Value) -> Option<Scalar> {
    match v {
        Value::Number(n) if n.is_u64() && !n.is_i64() => None,
        _ => Scalar::from_json(v),
    }
}

impl FieldOp {
    /// The JSON operator expression.
    #[must_use]
    pub fn to_json(&self) -> Value {
        let list = |v: &Vec<Scalar>| Value::Array(v.iter().map(Scalar::to_json).collect());
        match self {
            FieldOp::Eq(s) => serde_json::json!({"$eq": s.to_json()}),
            FieldOp::Ne(s) => serde_json::json!({"$ne": s.to_json()}),
            FieldOp::Gt(s) => serde_json::json!({"$gt": s.to_json()}),
            FieldOp::Gte(s) => serde_json::json!({"$gte": s.to_json()}),
            FieldOp::Lt(s) => serde_json::json!({"$lt": s.to_json()}),
            FieldOp::Lte(s) => serde_json::json!({"$lte": s.to_json()}),
            FieldOp::In(v) => serde_json::json!({"$in": list(v)}),
            FieldOp::Nin(v) => serde_json::json!({"$nin": list(v)}),
            FieldOp::Contains(s) => serde_json::json!({"$contains": s.to_json()}),
            FieldOp::NotContains(s) => serde_json::json!({"$not_contains": s.to_json()}),
        }
    }

    /// Evaluates the comparison against the value stored under the key, if any.
    #[must_use]
    pub fn matches(&self, value: Option<&MetadataValue>) -> bool {
        crate::filter_eval::field_matches(self, value)
    }
}

impl WhereDocument {
    /// Parses Chroma's JSON `where_document` syntax, applying chromadb's validation rules.
    pub fn from_json(v: &Value) -> Result<WhereDocument> {
        let obj = v.as_object().ok_or_else(|| bad(format!("Expected where document to be a dictionary, got {v}")))?;
        let (op, operand) = single_entry(obj)
            .ok_or_else(|| bad(format!("Expected where document to have exactly one operator, got {v}")))?;
        if op == "$and" || op == "$or" {
            let items = logical_items(operand, "document")?;
            let parsed = items.iter().map(WhereDocument::from_json).collect::<Result<Vec<_>>>()?;
            return Ok(if op == "$and" { WhereDocument::And(parsed) } else { WhereDocument::Or(parsed) });
        }
        if !matches!(op.as_str(), "$contains" | "$not_contains" | "$regex" | "$not_regex") {
            return Err(bad(format!(
                "Expected where document operator to be one of $contains, $not_contains, $regex, $not_regex, $and, $or, got {op}"
            )));
        }
        let text = operand.as_str().ok_or_else(|| {
            bad(format!("Expected where document operand value for operator {op} to be a str, got {operand}"))
        })?;
        if text.is_empty() {
            return Err(bad(format!("Expected where document operand value for operator {op} to be a non-empty str")));
        }
        Ok(match op.as_str() {
            "$contains" => WhereDocument::Contains(text.to_owned()),
            "$not_contains" => WhereDocument::NotContains(text.to_owned()),
            "$regex" => WhereDocument::Regex(compile_regex(text)?),
            _ => WhereDocument::NotRegex(compile_regex(text)?),
        })
    }

    /// Serialises back to Chroma's JSON syntax.
    #[must_use]
    pub fn to_json(&self) -> Value {
        let list = |v: &Vec<WhereDocument>| Value::Array(v.iter().map(WhereDocument::to_json).collect());
        match self {
            WhereDocument::And(v) => serde_json::json!({"$and": list(v)}),
            WhereDocument::Or(v) => serde_json::json!({"$or": list(v)}),
            WhereDocument::Contains(s) => serde_json::json!({"$contains": s}),
            WhereDocument::NotContains(s) => serde_json::json!({"$not_contains": s}),
            WhereDocument::Regex(r) => serde_json::json!({"$regex": r.as_str()}),
            WhereDocument::NotRegex(r) => serde_json::json!({"$not_regex": r.as_str()}),
        }
    }

    /// The document contains `text`.
    pub fn contains(text: impl Into<String>) -> WhereDocument {
        WhereDocument::Contains(text.into())
    }

    /// The document does not contain `text`.
    pub fn not_contains(text: impl Into<String>) -> WhereDocument {
        WhereDocument::NotContains(text.into())
    }

    /// The document matches the regular expression `pattern`.
    pub fn regex(pattern: &str) -> Result<WhereDocument> {
        compile_regex(pattern).map(WhereDocument::Regex)
    }

    /// Evaluates the filter against a record's document.
    #[must_use]
    pub fn matches(&self, document: Option<&str>) -> bool {
        crate::filter_eval::document_matches(self, document)
    }
}

fn compile_regex(pattern: &str) -> Result<regex::Regex> {
    // chromadb parses the pattern with regex-syntax and refuses any part that works on bytes
    // rather than characters: a class with Unicode mode off, e.g. `(?-u)\w` ("Byte pattern is not
    // allowed"), which the regex crate itself would accept.
    let hir = regex_syntax::parse(pattern).map_err(|e| bad(format!("invalid regular expression {pattern:?}: {e}")))?;
    if has_byte_part(&hir) {
        return Err(bad(format!("invalid regular expression {pattern:?}: byte patterns are not allowed")));
    }
    // chromadb compiles the pattern with the regex crate's default limits (inside SQLite's
    // REGEXP); a pattern past them fails there, as an internal error of the query.
    regex::Regex::new(pattern).map_err(|e| match e {
        regex::Error::CompiledTooBig(_) => Error::Internal(format!("regular expression {pattern:?}: {e}")),
        _ => bad(format!("invalid regular expression {pattern:?}: {e}")),
    })
}

/// Whether a parsed pattern has a byte class or a literal that is not UTF-8.
fn has_byte_part(hir: &regex_syntax::hir::Hir) -> bool {
    use regex_syntax::hir::{Class, HirKind};
    match hir.kind() {
        HirKind::Empty | HirKind::Look(_) => false,
        HirKind::Literal(lit) => std::str::from_utf8(&lit.0).is_err(),
        HirKind::Class(class) => matches!(class, Class::Bytes(_)),
        HirKind::Repetition(rep) => has_byte_part(&rep.sub),
        HirKind::Capture(cap) => has_byte_part(&cap.sub),
        HirKind::Concat(items) | HirKind::Alternation(items) => items.iter().any(has_byte_part),
    }
}
