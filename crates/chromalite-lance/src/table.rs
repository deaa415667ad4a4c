//! One collection's Lance table: writes with Chroma's merge rules, reads with its order, search.
//!
//! Every public function here is async and runs on the shared runtime (see [`crate::runtime`]).
//! A write is one Lance commit (append, or a merge-insert keyed on `id`), so it lands whole or not
//! at all.

use std::collections::HashMap;

use arrow_array::RecordBatch;
use chromalite_core::validate::WriteOp;
use chromalite_core::{distance, Error, Include, RecordBatch as Batch, Result, Selection, Space};
use futures::TryStreamExt;
use lancedb::index::vector::IvfHnswSqIndexBuilder;
use lancedb::index::Index;
use lancedb::query::{ColumnOrdering, ExecutableQuery, QueryBase, Select};
use lancedb::{DistanceType, Table};

use crate::pushdown::{self, Pushdown};
use crate::rows::{self, Row, DOCUMENT, EMBEDDING, ID, METADATA, SEQ};
use crate::runtime::lance_error;

/// Rows per `IN (...)` list when deleting a computed set of ids.
const DELETE_CHUNK: usize = 4096;

/// The columns a read needs.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Columns {
    pub embedding: bool,
    pub document: bool,
    pub metadata: bool,
}

impl Columns {
    /// What `include` asks for, plus what the evaluator needs when the pushdown is not exact.
    pub fn for_read(include: &[Include], push: &Pushdown) -> Columns {
        let eval = !push.exact;
        Columns {
            embedding: include.contains(&Include::Embeddings),
            document: eval || include.contains(&Include::Documents),
            metadata: eval || include.contains(&Include::Metadatas) || include.contains(&Include::Data),
        }
    }

    fn names(self) -> Vec<&'static str> {
        let mut v = vec![SEQ, ID];
        for (on, name) in [(self.embedding, EMBEDDING), (self.document, DOCUMENT), (self.metadata, METADATA)] {
            if on {
                v.push(name);
            }
        }
        v
    }
}

/// A collection table and its name (the collection id) for error messages.
#[derive(Clone)]
pub(crate) struct CollectionTable {
    pub table: Table,
    pub name: String,
}

impl CollectionTable {
    fn err(&self, e: lancedb::Error) -> Error {
        lance_error(&self.name, e)
    }

    /// The vector length fixed by the first write.
    pub async fn dimension(&self) -> Result<Option<usize>> {
        let schema = self.table.schema().await.map_err(|e| self.err(e))?;
        Ok(rows::dimension_of(&schema))
    }

    pub async fn count(&self) -> Result<usize> {
        self.table.count_rows(None).await.map_err(|e| self.err(e))
    }

    /// For `doctor`: the rows (each one read, so a missing data file shows) and the versions kept.
    pub async fn check(&self) -> Result<(usize, usize)> {
        let rows = self.scan(None, Columns::default()).await?.len();
        let versions = self.table.list_versions().await.map_err(|e| self.err(e))?.len();
        Ok((rows, versions))
    }

    /// The next free `seq` (one past the largest stored).
    pub async fn next_seq(&self) -> Result<u64> {
        let rows = self.scan(None, Columns::default()).await?;
        Ok(rows.iter().map(|r| r.seq + 1).max().unwrap_or(0))
    }

    /// Rows passing the SQL filter, in storage order.
    async fn scan(&self, filter: Option<&str>, cols: Columns) -> Result<Vec<Row>> {
        let mut q = self.table.query().select(Select::columns(&cols.names()));
        if let Some(f) = filter {
            q = q.only_if(f);
        }
        self.collect(q).await
    }

    /// Runs a query and reads all its rows.
    async fn collect(&self, q: impl ExecutableQuery) -> Result<Vec<Row>> {
        let batches: Vec<RecordBatch> =
            q.execute().await.map_err(|e| self.err(e))?.try_collect().await.map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for b in &batches {
            out.extend(rows::from_batch(b, &self.name)?);
        }
        Ok(out)
    }

    /// The selected rows in Chroma's order (insertion), after `offset`, at most `limit`.
    pub async fn get(
        &self,
        sel: &Selection,
        include: &[Include],
        offset: usize,
        limit: Option<usize>,
    ) -> Result<Vec<Row>> {
        let push = pushdown::selection(sel);
        let cols = Columns::for_read(include, &push);
        if push.exact {
            return self.page(push.sql.as_deref(), cols, offset, limit).await;
        }
        let mut rows = self.selected(sel, &push, cols).await?;
        rows.sort_by_key(|r| r.seq);
        Ok(rows.into_iter().skip(offset).take(limit.unwrap_or(usize::MAX)).collect())
    }

    /// Lance orders and pages by itself when its filter is the whole selection.
    async fn page(&self, filter: Option<&str>, cols: Columns, offset: usize, limit: Option<usize>) -> Result<Vec<Row>> {
        if limit == Some(0) {
            return Ok(Vec::new());
        }
        let mut q = self
            .table
            .query()
            .select(Select::columns(&cols.names()))
            .order_by(Some(vec![ColumnOrdering::asc_nulls_last(SEQ.to_string())]));
        if let Some(f) = filter {
            q = q.only_if(f);
        }
        if offset > 0 {
            q = q.offset(offset);
        }
        if let Some(l) = limit {
            q = q.limit(l);
        }
        self.collect(q).await
    }

    /// Rows the selection matches, re-checked with the core evaluator when the SQL was not exact.
    async fn selected(&self, sel: &Selection, push: &Pushdown, cols: Columns) -> Result<Vec<Row>> {
        let rows = self.scan(push.sql.as_deref(), cols).await?;
        if push.exact {
            return Ok(rows);
        }
        Ok(rows.into_iter().filter(|r| sel.filters_match(r.metadata.as_ref(), r.document.as_deref())).collect())
    }

    /// Deletes the selected records.
    pub async fn delete(&self, sel: &Selection) -> Result<()> {
        let push = pushdown::selection(sel);
        if push.exact {
            let predicate = push.sql.unwrap_or_else(|| "TRUE".into());
            self.table.delete(predicate.as_str()).await.map_err(|e| self.err(e))?;
            return Ok(());
        }
        let cols = Columns { embedding: false, document: true, metadata: true };
        let ids: Vec<String> = self.selected(sel, &push, cols).await?.into_iter().map(|r| r.id).collect();
        for chunk in ids.chunks(DELETE_CHUNK) {
            self.table.delete(pushdown::ids_in(chunk).as_str()).await.map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    /// Nearest neighbours of each query among the selected records, nearest first.
    pub async fn query(
        &self,
        space: Space,
        queries: &[Vec<f32>],
        k: usize,
        sel: &Selection,
        include: &[Include],
    ) -> Result<Vec<Vec<(Row, f32)>>> {
        let push = pushdown::selection(sel);
        let mut cols = Columns::for_read(include, &push);
        cols.embedding = true;
        if sel.is_empty() {
            let mut out = Vec::with_capacity(queries.len());
            for q in queries {
                out.push(self.nearest(space, q, k, cols).await?);
            }
            return Ok(out);
        }
        // A filtered query is answered exactly over the matching rows, as Chroma's brute-force
        // path does: never fewer results than exist.
        let candidates = self.selected(sel, &push, cols).await?;
        Ok(queries.iter().map(|q| rank(space, q, &candidates, k)).collect())
    }

    async fn nearest(&self, space: Space, q: &[f32], k: usize, cols: Columns) -> Result<Vec<(Row, f32)>> {
        // A few extra candidates so ties at the cut are broken by insertion order, as elsewhere.
        let fetch = k + k / 2 + 8;
        let search = self
            .table
            .query()
            .nearest_to(q)
            .map_err(|e| self.err(e))?
            .distance_type(distance_type(space))
            .refine_factor(REFINE_FACTOR)
            .select(Select::columns(&cols.names()))
            .limit(fetch);
        let rows = self.collect(search).await?;
        Ok(rank(space, q, &rows, k))
    }

    /// Creates the table of a collection with its first write (which fixes the dimension).
    pub async fn create(conn: &lancedb::Connection, name: &str, batch: &Batch, next_seq: &mut u64) -> Result<Self> {
        let (rows, _) = merged_rows(batch, WriteOp::Add, &HashMap::new(), next_seq);
        let dim = rows.first().map_or(0, |r| r.embedding.len());
        let data = rows::to_batch(&rows, dim)?;
        let table = conn.create_table(name, data).execute().await.map_err(|e| lance_error(name, e))?;
        Ok(CollectionTable { table, name: name.to_string() })
    }

    /// Applies one write under Chroma's rules and commits it. `next_seq` numbers new records.
    pub async fn write(&self, batch: &Batch, op: WriteOp, next_seq: &mut u64) -> Result<()> {
        let existing = self.existing(&batch.ids).await?;
        let Some(dim) = self.dimension().await? else {
            return Err(Error::Internal(format!("table {} has no embedding column", self.name)));
        };
        let (rows, only_new) = merged_rows(batch, op, &existing, next_seq);
        if rows.is_empty() {
            return Ok(());
        }
        let data = rows::to_batch(&rows, dim)?;
        if only_new {
            self.table.add(data).execute().await.map_err(|e| self.err(e))?;
        } else {
            let mut merge = self.table.merge_insert(&[ID]);
            merge.when_matched_update_all(None).when_not_matched_insert_all();
            let reader: Box<dyn arrow_array::RecordBatchReader + Send> =
                Box::new(arrow_array::RecordBatchIterator::new(vec![Ok(data.clone())], data.schema()));
            merge.execute(reader).await.map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    /// Which of these ids are stored.
    pub async fn live_ids(&self, ids: &[String]) -> Result<std::collections::HashSet<String>> {
        let rows = self.scan(Some(&pushdown::ids_in(ids)), Columns::default()).await?;
        Ok(rows.into_iter().map(|r| r.id).collect())
    }

    /// The stored rows for these ids, by id.
    async fn existing(&self, ids: &[String]) -> Result<HashMap<String, Row>> {
        let cols = Columns { embedding: true, document: true, metadata: true };
        let rows = self.scan(Some(&pushdown::ids_in(ids)), cols).await?;
        Ok(rows.into_iter().map(|r| (r.id.clone(), r)).collect())
    }

    /// Keeps the vector index in step with the table once it has `threshold` rows: builds it,
    /// folds new rows in once they are a tenth of the indexed ones, and retrains it (new IVF
    /// partitions) once the table has doubled since training, so partitions fit the data. The
    /// doubling rule bounds the total rebuild work to about twice one build of the final table.
    /// Returns whether the index changed.
    pub async fn maintain_index(&self, space: Space, threshold: usize) -> Result<bool> {
        if self.count().await? < threshold {
            return Ok(false);
        }
        let indices = self.table.list_indices().await.map_err(|e| self.err(e))?;
        let Some(index) = indices.iter().find(|i| i.columns.iter().any(|c| c == EMBEDDING)) else {
            self.build_index(space).await?;
            return Ok(true);
        };
        let Some(stats) = self.table.index_stats(&index.name).await.map_err(|e| self.err(e))? else {
            return Ok(false);
        };
        let indexed = stats.num_indexed_rows.max(1);
        if stats.num_unindexed_rows >= indexed {
            self.build_index(space).await?;
        } else if stats.num_unindexed_rows * 10 >= indexed {
            let action = lancedb::table::OptimizeAction::Index(lancedb::table::OptimizeOptions::default());
            self.table.optimize(action).await.map_err(|e| self.err(e))?;
        } else {
            return Ok(false);
        }
        Ok(true)
    }

    /// Compacts the table's files and removes the versions no reader can still need. See
    /// [`crate::LanceOptions::version_grace`]. Returns the bytes removed.
    pub async fn tidy(&self, grace: std::time::Duration) -> Result<u64> {
        self.compact().await?;
        self.prune(grace).await
    }

    /// Merges small fragments (appends and merge-inserts each write one) and rewrites fragments
    /// with many deleted rows (upserts and deletes leave the replaced rows behind). Fragments of
    /// `COMPACT_TARGET_ROWS` rows or more with few deletions are left alone, so the work per call
    /// stays bounded by what changed rather than by the table's size.
    async fn compact(&self) -> Result<()> {
        let options = lancedb::table::CompactionOptions {
            target_rows_per_fragment: COMPACT_TARGET_ROWS,
            ..lancedb::table::CompactionOptions::default()
        };
        let action = lancedb::table::OptimizeAction::Compact { options, remap_options: None };
        self.table.optimize(action).await.map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Removes old table versions, keeping every version that was the newest at some moment in
    /// the last `grace` (a read-only reader in another process may have started reading it then)
    /// and the current one. Returns the bytes removed.
    async fn prune(&self, grace: std::time::Duration) -> Result<u64> {
        let mut versions = self.table.list_versions().await.map_err(|e| self.err(e))?;
        versions.sort_by_key(|v| v.version);
        let grace = chrono::Duration::from_std(grace).unwrap_or(chrono::Duration::MAX);
        let cutoff = chrono::Utc::now().checked_sub_signed(grace).unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC);
        // The oldest version still needed: the first one replaced after the cutoff (or the newest).
        let Some(keep) =
            versions.windows(2).find(|w| w[1].timestamp > cutoff).map(|w| &w[0]).or_else(|| versions.last())
        else {
            return Ok(0);
        };
        if versions.first().is_some_and(|v| v.version == keep.version) {
            return Ok(0);
        }
        // Versions committed strictly before the kept one go. `delete_unverified`: files no
        // version references are leftovers of failed writes, never of a write in progress, since
        // this process is the store's only writer and holds its write mutex here.
        let stats =
            self.table.optimize_prune_before(keep.timestamp, Some(true), Some(false)).await.map_err(|e| self.err(e))?;
        Ok(stats.prune.map_or(0, |p| p.bytes_removed))
    }

    async fn build_index(&self, space: Space) -> Result<()> {
        let builder = IvfHnswSqIndexBuilder::default().distance_type(distance_type(space));
        self.table
            .create_index(&[EMBEDDING], Index::IvfHnswSq(builder))
            .replace(true)
            .execute()
            .await
            .map_err(|e| self.err(e))
    }
}

/// Compaction leaves fragments of this many rows (and few deletions) alone. Lance's default (about
/// a million) would rewrite the whole table on every compaction until it is that large.
const COMPACT_TARGET_ROWS: usize = 64 * 1024;

/// How many times `k` candidates an indexed search re-ranks with exact distances. Lance's vector
/// index compares 8-bit quantised vectors; re-ranking the best `k * REFINE_FACTOR` with the full
/// vectors restores the order among close neighbours (see the crate docs for the measured recall).
const REFINE_FACTOR: u32 = 4;

fn distance_type(space: Space) -> DistanceType {
    match space {
        Space::L2 => DistanceType::L2,
        Space::Ip => DistanceType::Dot,
        Space::Cosine => DistanceType::Cosine,
    }
}

/// The `k` nearest rows with Chroma's distances (computed here, not taken from Lance, so every
/// backend reports the same numbers), ties broken by insertion order.
fn rank(space: Space, q: &[f32], rows: &[Row], k: usize) -> Vec<(Row, f32)> {
    let mut scored: Vec<(f32, &Row)> = rows.iter().map(|r| (distance::distance(space, q, &r.embedding), r)).collect();
    scored.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.seq.cmp(&b.1.seq)));
    scored.into_iter().take(k).map(|(d, r)| (r.clone(), d)).collect()
}

/// The rows a write stores, and whether all of them are new (a plain append suffices).
fn merged_rows(batch: &Batch, op: WriteOp, existing: &HashMap<String, Row>, next_seq: &mut u64) -> (Vec<Row>, bool) {
    let mut rows = Vec::with_capacity(batch.len());
    let mut only_new = true;
    for i in 0..batch.len() {
        match (existing.get(&batch.ids[i]), op) {
            (Some(_), WriteOp::Add) | (None, WriteOp::Update) => {}
            (Some(old), WriteOp::Upsert | WriteOp::Update) => {
                only_new = false;
                rows.push(updated(old.clone(), batch, i));
            }
            (None, WriteOp::Add | WriteOp::Upsert) => {
                rows.push(inserted(batch, i, *next_seq));
                *next_seq += 1;
            }
        }
    }
    (rows, only_new)
}

fn inserted(batch: &Batch, i: usize, seq: u64) -> Row {
    Row {
        seq,
        id: batch.ids[i].clone(),
        embedding: batch.embeddings.as_ref().map(|e| e[i].clone()).unwrap_or_default(),
        document: batch.documents.as_ref().and_then(|d| d[i].clone()),
        metadata: batch.new_metadata(i),
    }
}

fn updated(mut row: Row, batch: &Batch, i: usize) -> Row {
    batch.merge_into(i, &mut row.embedding, &mut row.document, &mut row.metadata);
    row
}
