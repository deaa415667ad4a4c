//! One collection's records, in Chroma's storage order.

use std::collections::{BTreeMap, HashMap};

use chromalite_core::{distance, GetRequest, Metadata, QueryRequest, Record, RecordBatch, Selection, Space};

/// A record as stored: the embedding is always present once written.
#[derive(Debug, Clone)]
struct Stored {
    id: String,
    embedding: Vec<f32>,
    document: Option<String>,
    metadata: Option<Metadata>,
}

/// The records of one collection.
///
/// Records are keyed by a sequence number that is assigned on first insert and kept on update, so
/// iteration order equals Chroma's (its `embeddings.id` row order).
#[derive(Debug, Default)]
pub(crate) struct Records {
    by_seq: BTreeMap<u64, Stored>,
    seq_of: HashMap<String, u64>,
    next_seq: u64,
}

impl Records {
    pub(crate) fn len(&self) -> usize {
        self.by_seq.len()
    }

    /// Whether `id` is a live record.
    pub(crate) fn contains(&self, id: &str) -> bool {
        self.seq_of.contains_key(id)
    }

    /// Inserts the batch's new ids; existing ids are left untouched (as chromadb's `add`).
    pub(crate) fn add(&mut self, batch: &RecordBatch) {
        for i in 0..batch.len() {
            if !self.seq_of.contains_key(&batch.ids[i]) {
                self.insert_new(batch, i);
            }
        }
    }

    /// Inserts new ids and merges into existing ones.
    pub(crate) fn upsert(&mut self, batch: &RecordBatch) {
        for i in 0..batch.len() {
            if self.seq_of.contains_key(&batch.ids[i]) {
                self.update_one(batch, i);
            } else {
                self.insert_new(batch, i);
            }
        }
    }

    /// Merges into existing ids; missing ids are skipped.
    pub(crate) fn update(&mut self, batch: &RecordBatch) {
        for i in 0..batch.len() {
            if self.seq_of.contains_key(&batch.ids[i]) {
                self.update_one(batch, i);
            }
        }
    }

    fn insert_new(&mut self, batch: &RecordBatch, i: usize) {
        let stored = Stored {
            id: batch.ids[i].clone(),
            embedding: batch.embeddings.as_ref().map(|e| e[i].clone()).unwrap_or_default(),
            document: batch.documents.as_ref().and_then(|d| d[i].clone()),
            metadata: batch.new_metadata(i),
        };
        let seq = self.next_seq;
        self.next_seq += 1;
        self.seq_of.insert(stored.id.clone(), seq);
        self.by_seq.insert(seq, stored);
    }

    fn update_one(&mut self, batch: &RecordBatch, i: usize) {
        let Some(rec) = self.seq_of.get(&batch.ids[i]).and_then(|s| self.by_seq.get_mut(s)) else { return };
        batch.merge_into(i, &mut rec.embedding, &mut rec.document, &mut rec.metadata);
    }

    /// Removes the selected records (at most `limit`, the first in storage order); returns how
    /// many were removed.
    pub(crate) fn delete(&mut self, selection: &Selection, limit: Option<usize>) -> usize {
        let doomed: Vec<u64> = self.selected(selection).take(limit.unwrap_or(usize::MAX)).map(|(seq, _)| seq).collect();
        for seq in &doomed {
            if let Some(rec) = self.by_seq.remove(seq) {
                self.seq_of.remove(&rec.id);
            }
        }
        doomed.len()
    }

    fn selected<'a>(&'a self, selection: &'a Selection) -> impl Iterator<Item = (u64, &'a Stored)> + 'a {
        let wanted: Option<std::collections::HashSet<&str>> =
            selection.ids.as_ref().map(|ids| ids.iter().map(String::as_str).collect());
        self.by_seq
            .iter()
            .filter(move |(_, r)| wanted.as_ref().is_none_or(|w| w.contains(r.id.as_str())))
            .filter(move |(_, r)| selection.filters_match(r.metadata.as_ref(), r.document.as_deref()))
            .map(|(seq, r)| (*seq, r))
    }

    /// Records matching `req`, in storage order, with offset and limit applied.
    pub(crate) fn get(&self, req: &GetRequest) -> Vec<Record> {
        self.selected(&req.selection)
            .skip(req.offset)
            .take(req.limit.unwrap_or(usize::MAX))
            .map(|(_, r)| to_record(r))
            .collect()
    }

    /// Exact nearest neighbours of each query among the selected records.
    pub(crate) fn query(&self, space: Space, req: &QueryRequest) -> Vec<Vec<(Record, f32)>> {
        let candidates: Vec<(u64, &Stored)> = self.selected(&req.selection).collect();
        req.embeddings
            .iter()
            .map(|q| {
                let mut scored: Vec<(f32, u64, &Stored)> =
                    candidates.iter().map(|(seq, r)| (distance::distance(space, q, &r.embedding), *seq, *r)).collect();
                scored.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
                scored.into_iter().take(req.n_results).map(|(d, _, r)| (to_record(r), d)).collect()
            })
            .collect()
    }
}

fn to_record(r: &Stored) -> Record {
    Record {
        id: r.id.clone(),
        embedding: Some(r.embedding.clone()),
        document: r.document.clone(),
        metadata: r.metadata.clone(),
    }
}
