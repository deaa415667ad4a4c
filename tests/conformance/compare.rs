//! JSON comparison with chromadb's tolerances: floats within 1e-4 (relative above 1), ints and
//! floats kept apart in metadata, missing keys equal to `null`.

use serde_json::Value;

const TOLERANCE: f64 = 1e-4;

/// Compares `have` against `want`; the error names the first differing path.
pub fn same(want: &Value, have: &Value, path: &str) -> std::result::Result<(), String> {
    match (want, have) {
        (Value::Number(a), Value::Number(b)) => {
            if a.is_f64() != b.is_f64() && !path.contains("embeddings") && !path.contains("distances") {
                return Err(format!("{path}: number type differs ({a} vs {b})"));
            }
            let (x, y) = (a.as_f64().unwrap_or(f64::NAN), b.as_f64().unwrap_or(f64::NAN));
            if (x - y).abs() <= TOLERANCE * x.abs().max(1.0) {
                Ok(())
            } else {
                Err(format!("{path}: {a} != {b}"))
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            if a.len() != b.len() {
                return Err(format!("{path}: length {} != {}", a.len(), b.len()));
            }
            a.iter().zip(b).enumerate().try_for_each(|(i, (x, y))| same(x, y, &format!("{path}[{i}]")))
        }
        (Value::Object(a), Value::Object(b)) => {
            let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            keys.into_iter().try_for_each(|k| {
                same(a.get(k).unwrap_or(&Value::Null), b.get(k).unwrap_or(&Value::Null), &format!("{path}.{k}"))
            })
        }
        _ if want == have => Ok(()),
        _ => Err(format!("{path}: {want} != {have}")),
    }
}
