//! Records as Lance rows: the table schema and the conversions both ways.
//!
//! One table per collection, with these columns:
//!
//! | column      | type                          | holds                                            |
//! |-------------|-------------------------------|--------------------------------------------------|
//! | `seq`       | `UInt64`                      | insertion order (kept on update), Chroma's `get` order |
//! | `id`        | `Utf8`                        | the record id                                    |
//! | `embedding` | `FixedSizeList<Float32, dim>` | the vector, as given (cosine is normalised only to measure) |
//! | `document`  | `Utf8`, nullable              | the document                                     |
//! | `metadata`  | `Utf8`, nullable              | the metadata as JSON (keeps int vs float apart)  |
//! | `terms`     | `List<Utf8>`                  | filter terms of the metadata (see [`crate::pushdown`]) |

use std::sync::Arc;

use arrow_array::builder::{ListBuilder, StringBuilder};
use arrow_array::types::Float32Type;
use arrow_array::{Array, FixedSizeListArray, Float32Array, RecordBatch, StringArray, UInt64Array};
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef};
use chromalite_core::metadata::{metadata_from_json, metadata_to_json};
use chromalite_core::{Error, Metadata, Record, Result};

use crate::pushdown::terms_of;

pub(crate) const SEQ: &str = "seq";
pub(crate) const ID: &str = "id";
pub(crate) const EMBEDDING: &str = "embedding";
pub(crate) const DOCUMENT: &str = "document";
pub(crate) const METADATA: &str = "metadata";
pub(crate) const TERMS: &str = "terms";

/// One stored record.
#[derive(Debug, Clone, Default)]
pub(crate) struct Row {
    pub seq: u64,
    pub id: String,
    /// Empty when the column was not read.
    pub embedding: Vec<f32>,
    pub document: Option<String>,
    pub metadata: Option<Metadata>,
}

impl Row {
    pub fn into_record(self) -> Record {
        Record { id: self.id, embedding: Some(self.embedding), document: self.document, metadata: self.metadata }
    }
}

/// The schema of a collection table whose vectors have `dim` components.
pub(crate) fn schema(dim: usize) -> Result<SchemaRef> {
    let dim = i32::try_from(dim).map_err(|_| Error::invalid(format!("dimension {dim} is too large for Lance")))?;
    Ok(Arc::new(Schema::new(vec![
        Field::new(SEQ, DataType::UInt64, false),
        Field::new(ID, DataType::Utf8, false),
        Field::new(
            EMBEDDING,
            DataType::FixedSizeList(Arc::new(Field::new("item", DataType::Float32, true)), dim),
            false,
        ),
        Field::new(DOCUMENT, DataType::Utf8, true),
        Field::new(METADATA, DataType::Utf8, true),
        Field::new(TERMS, DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))), false),
    ])))
}

/// The vector length of a table with this schema.
pub(crate) fn dimension_of(schema: &Schema) -> Option<usize> {
    match schema.field_with_name(EMBEDDING).ok()?.data_type() {
        DataType::FixedSizeList(_, n) => usize::try_from(*n).ok(),
        _ => None,
    }
}

/// Rows as one Arrow batch of the table schema.
pub(crate) fn to_batch(rows: &[Row], dim: usize) -> Result<RecordBatch> {
    let schema = schema(dim)?;
    let seqs = UInt64Array::from_iter_values(rows.iter().map(|r| r.seq));
    let ids = StringArray::from_iter_values(rows.iter().map(|r| r.id.as_str()));
    let embeddings = FixedSizeListArray::from_iter_primitive::<Float32Type, _, _>(
        rows.iter().map(|r| Some(r.embedding.iter().copied().map(Some).collect::<Vec<_>>())),
        i32::try_from(dim).unwrap_or(i32::MAX),
    );
    let documents: StringArray = rows.iter().map(|r| r.document.as_deref()).collect();
    let metadatas: StringArray =
        rows.iter().map(|r| r.metadata.as_ref().map(|m| metadata_to_json(m).to_string())).collect();
    let mut terms = ListBuilder::new(StringBuilder::new());
    for r in rows {
        for t in r.metadata.as_ref().map(terms_of).unwrap_or_default() {
            terms.values().append_value(t);
        }
        terms.append(true);
    }
    let columns: Vec<Arc<dyn Array>> = vec![
        Arc::new(seqs),
        Arc::new(ids),
        Arc::new(embeddings),
        Arc::new(documents),
        Arc::new(metadatas),
        Arc::new(terms.finish()),
    ];
    RecordBatch::try_new(schema, columns).map_err(arrow_error)
}

#[allow(clippy::needless_pass_by_value)] // used as `map_err(arrow_error)`
pub(crate) fn arrow_error(e: ArrowError) -> Error {
    Error::Internal(format!("arrow: {e}"))
}

/// Reads the rows of a batch. Columns left out of the projection come back empty.
pub(crate) fn from_batch(batch: &RecordBatch, table: &str) -> Result<Vec<Row>> {
    let n = batch.num_rows();
    let mut rows: Vec<Row> = (0..n).map(|_| Row::default()).collect();
    if let Some(c) = column::<UInt64Array>(batch, SEQ, table)? {
        for (r, v) in rows.iter_mut().zip(c.values().iter()) {
            r.seq = *v;
        }
    }
    if let Some(c) = column::<StringArray>(batch, ID, table)? {
        for (i, r) in rows.iter_mut().enumerate() {
            r.id = c.value(i).to_string();
        }
    }
    if let Some(c) = column::<FixedSizeListArray>(batch, EMBEDDING, table)? {
        let values = c
            .values()
            .as_any()
            .downcast_ref::<Float32Array>()
            .ok_or_else(|| Error::corrupt(table, EMBEDDING, "vector items are not float32"))?;
        let dim = usize::try_from(c.value_length()).unwrap_or(0);
        for (i, r) in rows.iter_mut().enumerate() {
            let start = (c.offset() + i) * dim;
            r.embedding = values.values().get(start..start + dim).map(<[f32]>::to_vec).unwrap_or_default();
        }
    }
    if let Some(c) = column::<StringArray>(batch, DOCUMENT, table)? {
        for (i, r) in rows.iter_mut().enumerate() {
            r.document = c.is_valid(i).then(|| c.value(i).to_string());
        }
    }
    if let Some(c) = column::<StringArray>(batch, METADATA, table)? {
        for (i, r) in rows.iter_mut().enumerate() {
            r.metadata = if c.is_valid(i) { Some(parse_metadata(c.value(i), table)?) } else { None };
        }
    }
    Ok(rows)
}

fn column<'a, T: 'static>(batch: &'a RecordBatch, name: &str, table: &str) -> Result<Option<&'a T>> {
    let Some(c) = batch.column_by_name(name) else { return Ok(None) };
    c.as_any()
        .downcast_ref::<T>()
        .map(Some)
        .ok_or_else(|| Error::corrupt(table, name, format!("unexpected column type {}", c.data_type())))
}

fn parse_metadata(text: &str, table: &str) -> Result<Metadata> {
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| Error::corrupt(table, METADATA, e.to_string()))?;
    metadata_from_json(&v).map_err(|e| Error::corrupt(table, METADATA, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chromalite_core::MetadataValue;

    #[test]
    fn rows_round_trip_through_arrow() {
        let mut meta = Metadata::new();
        meta.insert("n".into(), MetadataValue::Int(3));
        meta.insert("x".into(), MetadataValue::Float(3.0));
        let rows = vec![
            Row {
                seq: 7,
                id: "a".into(),
                embedding: vec![1.0, 2.0],
                document: Some("doc".into()),
                metadata: Some(meta),
            },
            Row { seq: 9, id: "b".into(), embedding: vec![3.0, 4.0], document: None, metadata: None },
        ];
        let batch = to_batch(&rows, 2).unwrap();
        let back = from_batch(&batch, "t").unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(back[0].seq, 7);
        assert_eq!(back[1].embedding, vec![3.0, 4.0]);
        assert_eq!(back[0].metadata, rows[0].metadata, "int and float stay apart");
        assert_eq!(back[1].document, None);
        assert_eq!(dimension_of(&batch.schema()), Some(2));
    }
}
