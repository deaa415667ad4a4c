//! `where` / `where_document` pushed down to SQL.
//!
//! The translation mirrors the SQL Chroma's local metadata reader generates, so results follow
//! chromadb's semantics by construction, quirks included: ints and floats compare across types by
//! converting the operand (`{"n": {"$lt": 2.5}}` tests `int_value < 2` and `float_value < 2.5`),
//! `$ne`/`$nin`/`$not_contains` also match records lacking the key, `$contains` on metadata looks
//! only at array elements, and document `$contains` is a case-sensitive `LIKE` on the FTS table.

use chromalite_core::filter::{FieldOp, Where, WhereDocument};
use chromalite_core::metadata::Scalar;
use rusqlite::types::Value as SqlValue;

/// The parameters of a SQL filter being built; expressions refer to them as `?N`.
#[derive(Debug, Default)]
pub struct SqlFilter {
    pub params: Vec<SqlValue>,
}

impl SqlFilter {
    fn push(&mut self, v: SqlValue) -> String {
        self.params.push(v);
        format!("?{}", self.params.len())
    }
}

/// Adds the `where` clause to `f`, returning the expression text.
pub fn where_sql(f: &mut SqlFilter, w: &Where) -> String {
    match w {
        Where::And(items) => join(f, items, " AND ", "1", where_sql),
        Where::Or(items) => join(f, items, " OR ", "0", where_sql),
        Where::Document(d) => document_sql(f, d),
        Where::Field { key, op } => field_sql(f, key, op),
    }
}

/// Adds the `where_document` clause to `f`, returning the expression text.
pub fn document_sql(f: &mut SqlFilter, d: &WhereDocument) -> String {
    match d {
        WhereDocument::And(items) => join(f, items, " AND ", "1", document_sql),
        WhereDocument::Or(items) => join(f, items, " OR ", "0", document_sql),
        WhereDocument::Contains(p) | WhereDocument::NotContains(p) => {
            let escaped = p.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
            let param = f.push(SqlValue::Text(format!("%{escaped}%")));
            let not = if matches!(d, WhereDocument::NotContains(_)) { "NOT " } else { "" };
            format!("e.id {not}IN (SELECT rowid FROM embedding_fulltext_search WHERE string_value LIKE {param} ESCAPE '\\')")
        }
        WhereDocument::Regex(r) | WhereDocument::NotRegex(r) => {
            let param = f.push(SqlValue::Text(r.as_str().to_owned()));
            let not = if matches!(d, WhereDocument::NotRegex(_)) { "NOT " } else { "" };
            format!("e.id {not}IN (SELECT rowid FROM embedding_fulltext_search WHERE string_value REGEXP {param})")
        }
    }
}

fn join<T>(f: &mut SqlFilter, items: &[T], sep: &str, empty: &str, each: fn(&mut SqlFilter, &T) -> String) -> String {
    if items.is_empty() {
        return empty.to_owned();
    }
    let parts: Vec<String> = items.iter().map(|i| each(f, i)).collect();
    format!("({})", parts.join(sep))
}

fn field_sql(f: &mut SqlFilter, key: &str, op: &FieldOp) -> String {
    match op {
        FieldOp::Eq(s) => primitive(f, key, "=", s, false),
        FieldOp::Ne(s) => primitive(f, key, "=", s, true),
        FieldOp::Gt(s) => primitive(f, key, ">", s, false),
        FieldOp::Gte(s) => primitive(f, key, ">=", s, false),
        FieldOp::Lt(s) => primitive(f, key, "<", s, false),
        FieldOp::Lte(s) => primitive(f, key, "<=", s, false),
        FieldOp::In(v) => membership(f, key, v, false),
        FieldOp::Nin(v) => membership(f, key, v, true),
        FieldOp::Contains(s) | FieldOp::NotContains(s) => {
            let (col, val) = column_value(s);
            let k = f.push(SqlValue::Text(key.to_owned()));
            let v = f.push(val);
            let not = if matches!(op, FieldOp::NotContains(_)) { "NOT " } else { "" };
            format!("e.id {not}IN (SELECT id FROM embedding_metadata_array WHERE key = {k} AND {col} = {v})")
        }
    }
}

fn column_value(s: &Scalar) -> (&'static str, SqlValue) {
    match s {
        Scalar::Str(v) => ("string_value", SqlValue::Text(v.clone())),
        Scalar::Int(i) => ("int_value", SqlValue::Integer(*i)),
        Scalar::Float(x) => ("float_value", SqlValue::Real(*x)),
        Scalar::Bool(b) => ("bool_value", SqlValue::Integer(i64::from(*b))),
    }
}

/// Chroma's union of the int and the float column for numeric operands; one column otherwise.
fn primitive(f: &mut SqlFilter, key: &str, cmp: &str, s: &Scalar, negate: bool) -> String {
    let k = f.push(SqlValue::Text(key.to_owned()));
    let not = if negate { "NOT " } else { "" };
    let numeric = match s {
        Scalar::Int(i) => Some((*i, *i as f64)),
        Scalar::Float(x) => Some((*x as i64, *x)),
        _ => None,
    };
    if let Some((i, x)) = numeric {
        let pi = f.push(SqlValue::Integer(i));
        let px = f.push(SqlValue::Real(x));
        return format!(
            "e.id {not}IN (SELECT id FROM embedding_metadata WHERE key = {k} AND int_value {cmp} {pi} \
             UNION SELECT id FROM embedding_metadata WHERE key = {k} AND float_value {cmp} {px})"
        );
    }
    let (col, val) = column_value(s);
    let v = f.push(val);
    format!("e.id {not}IN (SELECT id FROM embedding_metadata WHERE key = {k} AND {col} {cmp} {v})")
}

/// `$in` / `$nin`: numeric lists also test the other numeric column with converted values
/// (combined with OR for `$in`, AND for `$nin`, as Chroma does).
fn membership(f: &mut SqlFilter, key: &str, values: &[Scalar], negate: bool) -> String {
    let Some(first) = values.first() else {
        return if negate { "1".into() } else { "0".into() };
    };
    let not = if negate { "NOT " } else { "" };
    let subquery = |f: &mut SqlFilter, col: &str, vals: Vec<SqlValue>| {
        let k = f.push(SqlValue::Text(key.to_owned()));
        let list: Vec<String> = vals.into_iter().map(|v| f.push(v)).collect();
        format!("e.id {not}IN (SELECT id FROM embedding_metadata WHERE key = {k} AND {col} IN ({}))", list.join(", "))
    };
    let combine = if negate { " AND " } else { " OR " };
    match first {
        Scalar::Int(_) | Scalar::Float(_) => {
            let ints: Vec<SqlValue> = values.iter().map(|s| SqlValue::Integer(as_int(s))).collect();
            let floats: Vec<SqlValue> = values.iter().map(|s| SqlValue::Real(as_float(s))).collect();
            let a = subquery(f, "int_value", ints);
            let b = subquery(f, "float_value", floats);
            format!("({a}{combine}{b})")
        }
        Scalar::Str(_) => {
            let vals = values.iter().map(|s| column_value(s).1).collect();
            subquery(f, "string_value", vals)
        }
        Scalar::Bool(_) => {
            let vals = values.iter().map(|s| column_value(s).1).collect();
            subquery(f, "bool_value", vals)
        }
    }
}

fn as_int(s: &Scalar) -> i64 {
    match s {
        Scalar::Int(i) => *i,
        Scalar::Float(x) => *x as i64,
        Scalar::Bool(b) => i64::from(*b),
        Scalar::Str(_) => 0,
    }
}

fn as_float(s: &Scalar) -> f64 {
    match s {
        Scalar::Int(i) => *i as f64,
        Scalar::Float(x) => *x,
        Scalar::Bool(b) => f64::from(u8::from(*b)),
        Scalar::Str(_) => 0.0,
    }
}
