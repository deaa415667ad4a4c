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
        let meta = match fast::decode(bytes) {
            Some(meta) => meta,
            None => serde_pickle::from_slice(bytes, serde_pickle::DeOptions::new())
                .map_err(|e| HnswError::corrupt(METADATA_FILE, "pickle", e.to_string()))?,
        };
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

    /// Checks that the two maps are inverse to each other and that every label was handed out
    /// (at most `total_elements_added`, which fits Chroma's `u32`), so [`next_label`](Self::next_label)
    /// neither overflows nor hands out a label in use.
    pub fn validate(&self) -> Result<(), HnswError> {
        if self.total_elements_added > u64::from(u32::MAX) {
            return Err(HnswError::corrupt(
                METADATA_FILE,
                "total_elements_added",
                format!("{} exceeds Chroma's limit 2^32 - 1", self.total_elements_added),
            ));
        }
        if let Some(label) = self.label_to_id.keys().find(|l| **l > self.total_elements_added) {
            return Err(HnswError::corrupt(
                METADATA_FILE,
                "label_to_id",
                format!("label {label} is above total_elements_added {}", self.total_elements_added),
            ));
        }
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

    /// The label the next new record gets (`total_elements_added + 1`; a decoded file holds at
    /// most `u32::MAX` there, see [`validate`](Self::validate)).
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

/// A decoder for the one shape Chroma 1.x (and [`SegmentMetadata::to_bytes`]) writes: serde-pickle's
/// protocol-3 dict of the six keys, nested dicts as `EMPTY_DICT` followed by `MARK ... SETITEMS`
/// batches, strings as `BINUNICODE`, ints as `BININT`. Opening a large segment spent most of its
/// pickle time in serde-pickle's generic value tree (two allocations per entry before the maps
/// are even built); this reads the entries straight into the maps.
///
/// Anything it does not expect (another opcode, a legacy chromadb object pickle, a negative label,
/// invalid UTF-8, trailing bytes...) makes it return `None`, and the caller falls back to
/// serde-pickle, which stays the reference for every other input and for the error messages.
/// So this decoder only needs to be right on what it accepts: there it returns what serde-pickle
/// would (a test checks that over mutated files).
mod fast {
    use std::collections::HashMap;

    use super::SegmentMetadata;

    enum Scalar<'a> {
        None,
        Int(i64),
        Str(&'a str),
    }

    impl<'a> Scalar<'a> {
        fn str(self) -> Option<&'a str> {
            match self {
                Scalar::Str(s) => Some(s),
                _ => None,
            }
        }
        fn uint(self) -> Option<u64> {
            match self {
                Scalar::Int(i) => u64::try_from(i).ok(),
                _ => None,
            }
        }
        fn int(self) -> Option<i64> {
            match self {
                Scalar::Int(i) => Some(i),
                _ => None,
            }
        }
    }

    struct Reader<'a> {
        b: &'a [u8],
        pos: usize,
    }

    impl<'a> Reader<'a> {
        fn peek(&self) -> Option<u8> {
            self.b.get(self.pos).copied()
        }
        fn take(&mut self, n: usize) -> Option<&'a [u8]> {
            let s = self.b.get(self.pos..self.pos.checked_add(n)?)?;
            self.pos += n;
            Some(s)
        }
        fn byte(&mut self) -> Option<u8> {
            self.take(1).map(|s| s[0])
        }
        fn u32(&mut self) -> Option<u32> {
            self.take(4).map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
        }
        fn eat(&mut self, op: u8) -> bool {
            if self.peek() == Some(op) {
                self.pos += 1;
                true
            } else {
                false
            }
        }
        /// `BINPUT` / `LONG_BINPUT` / `MEMOIZE` only record the top of the stack in the memo; as
        /// long as nothing reads the memo back (`BINGET` is not accepted) they can be skipped.
        fn skip_memo(&mut self) -> Option<()> {
            loop {
                match self.peek() {
                    Some(b'q') => _ = self.take(2)?,
                    Some(b'r') => _ = self.take(5)?,
                    Some(0x94) => _ = self.take(1)?,
                    _ => return Some(()),
                }
            }
        }
        fn scalar(&mut self) -> Option<Scalar<'a>> {
            let v = match self.byte()? {
                b'N' => Scalar::None,
                b'J' => Scalar::Int(i64::from(i32::from_le_bytes(self.take(4)?.try_into().ok()?))),
                b'K' => Scalar::Int(i64::from(self.byte()?)),
                b'M' => Scalar::Int(i64::from(u16::from_le_bytes(self.take(2)?.try_into().ok()?))),
                // LONG1: little-endian two's complement of 0..=8 bytes.
                0x8a => {
                    let n = usize::from(self.byte()?);
                    if n > 8 {
                        return None;
                    }
                    let raw = self.take(n)?;
                    let mut buf = if raw.last().is_some_and(|&b| b & 0x80 != 0) { [0xFF; 8] } else { [0; 8] };
                    buf[..n].copy_from_slice(raw);
                    Scalar::Int(i64::from_le_bytes(buf))
                }
                b'X' => {
                    let n = self.u32()? as usize;
                    Scalar::Str(std::str::from_utf8(self.take(n)?).ok()?)
                }
                0x8c => {
                    let n = usize::from(self.byte()?);
                    Scalar::Str(std::str::from_utf8(self.take(n)?).ok()?)
                }
                _ => return None,
            };
            self.skip_memo()?;
            Some(v)
        }
        /// The entries of a dict whose `EMPTY_DICT` was just read: `MARK (key value)* SETITEMS` batches.
        fn entries(&mut self, mut each: impl FnMut(Scalar<'a>, Scalar<'a>) -> Option<()>) -> Option<()> {
            self.skip_memo()?;
            while self.eat(b'(') {
                while !self.eat(b'u') {
                    let k = self.scalar()?;
                    let v = self.scalar()?;
                    each(k, v)?;
                }
            }
            Some(())
        }
    }

    /// Reads the nested dict of `key` (`id_to_label`, `label_to_id` or `id_to_seq_id`) into `meta`.
    fn read_map(r: &mut Reader<'_>, key: &str, meta: &mut SegmentMetadata, file_len: usize) -> Option<()> {
        if !r.eat(b'}') {
            return None;
        }
        match key {
            "id_to_label" => {
                // Chroma writes total_elements_added (the highest label, so at least the entry
                // count) first; an entry takes at least 10 bytes, which bounds the reservation by
                // the file size.
                let cap = usize::try_from(meta.total_elements_added).unwrap_or(0).min(file_len / 10);
                let mut m = HashMap::with_capacity(cap);
                r.entries(|k, v| {
                    m.insert(k.str()?.to_owned(), v.uint()?);
                    Some(())
                })?;
                meta.id_to_label = m;
            }
            "label_to_id" => {
                // Chroma writes id_to_label first; the inverse has as many entries.
                let mut m = HashMap::with_capacity(meta.id_to_label.len());
                r.entries(|k, v| {
                    m.insert(k.uint()?, v.str()?.to_owned());
                    Some(())
                })?;
                meta.label_to_id = m;
            }
            _ => {
                let mut m = HashMap::new();
                r.entries(|k, v| {
                    m.insert(k.str()?.to_owned(), v.int()?);
                    Some(())
                })?;
                meta.id_to_seq_id = m;
            }
        }
        Some(())
    }

    pub(super) fn decode(bytes: &[u8]) -> Option<SegmentMetadata> {
        let mut r = Reader { b: bytes, pos: 0 };
        if r.eat(0x80) {
            r.byte()?;
        }
        if !r.eat(b'}') {
            return None;
        }
        let mut meta = SegmentMetadata::default();
        let (mut total, mut i2l, mut l2i) = (false, false, false);
        r.skip_memo()?;
        while r.eat(b'(') {
            while !r.eat(b'u') {
                let key = r.scalar()?.str()?;
                match key {
                    "dimensionality" => {
                        meta.dimensionality = match r.scalar()? {
                            Scalar::None => None,
                            other => Some(usize::try_from(other.uint()?).ok()?),
                        };
                    }
                    "total_elements_added" => {
                        meta.total_elements_added = r.scalar()?.uint()?;
                        total = true;
                    }
                    "max_seq_id" => {
                        meta.max_seq_id = match r.scalar()? {
                            Scalar::None => None,
                            other => Some(other.int()?),
                        };
                    }
                    "id_to_label" | "label_to_id" | "id_to_seq_id" => {
                        read_map(&mut r, key, &mut meta, bytes.len())?;
                        i2l |= key == "id_to_label";
                        l2i |= key == "label_to_id";
                    }
                    _ => return None,
                }
            }
        }
        (r.eat(b'.') && r.pos == bytes.len() && total && i2l && l2i).then_some(meta)
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

    fn sample(n: u64) -> SegmentMetadata {
        let mut m = SegmentMetadata::default();
        for i in 0..n {
            m.assign_label(&format!("id-{i}-\u{e9}"));
        }
        for i in (0..n).step_by(7) {
            m.remove_id(&format!("id-{i}-\u{e9}"));
        }
        m
    }

    #[test]
    fn fast_decoder_reads_what_we_and_chroma_write() {
        for n in [0, 1, 999, 1000, 1001, 2500] {
            let m = sample(n);
            let bytes = m.to_bytes().unwrap();
            assert_eq!(fast::decode(&bytes).as_ref(), Some(&m), "n = {n}");
        }
        // A pickle written by chromadb 1.5.9 (committed fixture).
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fixtures/chroma-dirs/mixed/store/630d9e5f-37c9-4847-8a13-11678bdc1fc5")
            .join(METADATA_FILE);
        if let Ok(bytes) = std::fs::read(fixture) {
            let slow: SegmentMetadata = serde_pickle::from_slice(&bytes, serde_pickle::DeOptions::new()).unwrap();
            assert_eq!(fast::decode(&bytes), Some(slow));
        }
    }

    /// Wherever the fast decoder accepts a damaged file, it must agree with serde-pickle.
    #[test]
    fn fast_decoder_agrees_with_serde_pickle_on_mutations() {
        let bytes = sample(300).to_bytes().unwrap();
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut accepted = 0;
        for round in 0..4000 {
            let mut b = bytes.clone();
            match round % 3 {
                0 => {
                    let i = next() as usize % b.len();
                    b[i] = next() as u8;
                }
                1 => b.truncate(next() as usize % b.len()),
                _ => {
                    let i = next() as usize % b.len();
                    b[i] ^= 1 << (next() % 8);
                }
            }
            if let Some(fast) = fast::decode(&b) {
                accepted += 1;
                let slow: SegmentMetadata = serde_pickle::from_slice(&b, serde_pickle::DeOptions::new())
                    .unwrap_or_else(|e| panic!("round {round}: fast decoder accepted what serde-pickle rejects: {e}"));
                assert_eq!(fast, slow, "round {round}");
            }
        }
        assert!(accepted > 100, "{accepted}");
    }

    #[test]
    fn garbage_is_corrupt() {
        for bytes in [&b""[..], b"\x80\x03", b"not a pickle", b"\x80\x03}q\x00."] {
            let e = SegmentMetadata::from_bytes(bytes).unwrap_err();
            assert_eq!(e.kind(), "Corrupt", "{e}");
        }
    }

    #[test]
    fn labels_beyond_total_elements_added_are_corrupt() {
        let mut m = sample(3);
        m.total_elements_added = u64::from(u32::MAX) + 1;
        let e = SegmentMetadata::from_bytes(&m.to_bytes().unwrap()).unwrap_err();
        assert!(matches!(&e, HnswError::Corrupt { field, .. } if field == "total_elements_added"), "{e}");
        m.total_elements_added = 2; // label 3 is in use
        let e = SegmentMetadata::from_bytes(&m.to_bytes().unwrap()).unwrap_err();
        assert!(matches!(&e, HnswError::Corrupt { field, .. } if field == "label_to_id"), "{e}");
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
