//! `index_metadata.pickle`: the label <-> record-id maps of an HNSW segment.
//!
//! Chroma 1.x (Rust) writes a pickle (protocol 3) of a plain dict with six
//! keys; chromadb 0.4-0.6 (Python) pickled a `PersistentData` object whose
//! `__dict__` holds the same keys. Both read into [`SegmentMetadata`]; we
//! always write the 1.x form.

use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::HnswError;
use crate::format::write_atomic;

/// File name of the metadata pickle inside a segment folder.
pub const METADATA_FILE: &str = "index_metadata.pickle";

/// The content of `index_metadata.pickle`, with Chroma's key names.
///
/// Chroma 1.x declares the integers as `u32` (labels, `total_elements_added`,
/// seq ids) and `max_seq_id` as `Option<u64>`; in the pickle they are plain
/// ints, so the wider types here read and write the same bytes as long as the
/// values fit Chroma's types (labels below 2^32).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentMetadata {
    /// Always `None` in files written by Chroma 1.x (the collection row in
    /// `SQLite` holds the dimension); older Python versions stored it.
    #[serde(default)]
    pub dimensionality: Option<usize>,
    /// Highest label handed out so far; the next new record gets this + 1
    /// (labels start at 1).
    pub total_elements_added: u64,
    /// Legacy: Chroma 1.x writes `None` and keeps the real value in the `SQLite`
    /// table `max_seq_id`; a value here is migrated into that table when
    /// Chroma opens the segment.
    #[serde(default)]
    pub max_seq_id: Option<i64>,
    /// Record id -> HNSW label, for live records only.
    pub id_to_label: HashMap<String, u64>,
    /// HNSW label -> record id, for live records only.
    pub label_to_id: HashMap<u64, String>,
    /// Record id -> seq id; empty in files written by Chroma 1.x.
    #[serde(default)]
    pub id_to_seq_id: HashMap<String, i64>,
}

impl SegmentMetadata {
    /// Reads and decodes a metadata pickle (1.x dict or legacy object form).
    pub fn read(path: &Path) -> Result<Self, HnswError> {
        let bytes = std::fs::read(path).map_err(|e| HnswError::io(path, e))?;
        Self::from_bytes(&bytes)
    }

    /// Decodes pickle bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, HnswError> {
        let meta: SegmentMetadata = serde_pickle::from_slice(bytes, serde_pickle::DeOptions::new())
            .map_err(|e| HnswError::corrupt(METADATA_FILE, "pickle", e.to_string()))?;
        meta.validate()?;
        Ok(meta)
    }

    /// Encodes to pickle bytes (protocol 3, as Chroma 1.x writes).
    pub fn to_bytes(&self) -> Result<Vec<u8>, HnswError> {
        serde_pickle::to_vec(self, serde_pickle::SerOptions::new())
            .map_err(|e| HnswError::InvalidArgument(format!("cannot pickle segment metadata: {e}")))
    }

    /// Writes the pickle atomically (temp file, fsync, rename, fsync dir).
    pub fn write(&self, path: &Path) -> Result<(), HnswError> {
        write_atomic(path, &self.to_bytes()?)
    }

    /// Checks that the two maps are inverse to each other.
    pub fn validate(&self) -> Result<(), HnswError> {
        if self.id_to_label.len() != self.label_to_id.len() {
            return Err(HnswError::corrupt(
                METADATA_FILE,
                "label_to_id",
                format!(
                    "id_to_label has {} entries but label_to_id has {}",
                    self.id_to_label.len(),
                    self.label_to_id.len()
                ),
            ));
        }
        for (id, label) in &self.id_to_label {
            if self.label_to_id.get(label) != Some(id) {
                return Err(HnswError::corrupt(
                    METADATA_FILE,
                    "label_to_id",
                    format!("id {id:?} maps to label {label}, which does not map back to it"),
                ));
            }
        }
        Ok(())
    }

    /// The label the next new record gets (`total_elements_added + 1`).
    #[must_use]
    pub fn next_label(&self) -> u64 {
        self.total_elements_added + 1
    }

    /// Registers a new record id under the next label and returns it, as
    /// Chroma's segment writer does for `add` / new `upsert`. An id already
    /// present keeps its label.
    pub fn assign_label(&mut self, id: &str) -> u64 {
        if let Some(&l) = self.id_to_label.get(id) {
            return l;
        }
        let label = self.next_label();
        self.total_elements_added = label;
        self.id_to_label.insert(id.to_string(), label);
        self.label_to_id.insert(label, id.to_string());
        label
    }

    /// Forgets a record id (Chroma removes deleted records from both maps; the
    /// label is never reused). Returns its label.
    pub fn remove_id(&mut self, id: &str) -> Option<u64> {
        let label = self.id_to_label.remove(id)?;
        self.label_to_id.remove(&label);
        self.id_to_seq_id.remove(id);
        Some(label)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_labels() {
        let mut m = SegmentMetadata::default();
        assert_eq!(m.assign_label("a"), 1);
        assert_eq!(m.assign_label("b"), 2);
        assert_eq!(m.assign_label("a"), 1);
        assert_eq!(m.remove_id("a"), Some(1));
        assert_eq!(m.assign_label("a"), 3);
        let bytes = m.to_bytes().unwrap();
        let back = SegmentMetadata::from_bytes(&bytes).unwrap();
        assert_eq!(back, m);
        assert_eq!(back.total_elements_added, 3);
    }

    #[test]
    fn garbage_is_corrupt() {
        for bytes in [&b""[..], b"\x80\x03", b"not a pickle", b"\x80\x03}q\x00."] {
            let e = SegmentMetadata::from_bytes(bytes).unwrap_err();
            assert_eq!(e.kind(), "Corrupt", "{e}");
        }
    }

    #[test]
    fn write_is_atomic_and_readable() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(METADATA_FILE);
        let mut m = SegmentMetadata::default();
        m.assign_label("x");
        m.write(&p).unwrap();
        assert_eq!(SegmentMetadata::read(&p).unwrap(), m);
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }
}
