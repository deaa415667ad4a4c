//! An HNSW vector index whose memory layout and files are those of
//! hnswlib as Chroma's fork persists them, so that a segment folder written
//! by `chromadb` 1.x loads without rebuilding the graph, and a folder written
//! here loads in `chromadb`.
//!
//! # What it is
//! * [`Index`]: Hierarchical Navigable Small World graph with hnswlib's level
//!   assignment (`floor(-ln(u) / ln(M))` from the same `minstd_rand0`
//!   generator), its neighbour-selection heuristic
//!   (`getNeighborsByHeuristic2`), update-in-place (`updatePoint`) and delete
//!   marks (`markDelete`). Spaces `l2` (squared Euclidean), `ip`
//!   (`1 - dot`) and `cosine` (`1 - dot` of vectors normalised at insert and at
//!   query time).
//! * [`Index::insert_batch`] links a batch in parallel and then refines it:
//!   every element of the batch is searched for once more on the finished
//!   graph and linked again at level 0. hnswlib has no such pass; it costs
//!   about a quarter more build time and gives a graph of higher recall at
//!   the same `ef` (on 59k `MiniLM` vectors, M = 16, `ef_construction` = 100:
//!   recall@10 at `ef` = 100 about 0.982 instead of 0.980, hnswlib 0.973).
//!   The result is still an ordinary hnswlib graph (lists of at most `2M` at
//!   level 0, `M` above), so Chroma searches it as its own. Whenever the index
//!   has grown by an eighth, elements whose in-links were all pruned away
//!   (which no graph search, Chroma's included, could ever return) are linked
//!   again from a reachable neighbour.
//! * Persistence in Chroma's four files `header.bin`, `data_level0.bin`,
//!   `length.bin`, `link_lists.bin` ([`Index::load`], [`Index::save`]) and
//!   the `index_metadata.pickle` label map ([`pickle::SegmentMetadata`]).
//!   The byte layout is described in `FORMAT.md` beside this crate.
//!
//! # Guarantees
//! * **Loading never panics and never reads out of bounds.** Every size and
//!   offset in a file is checked against the header and the file lengths
//!   before anything is allocated or read; a damaged file gives
//!   [`HnswError::Corrupt`] naming the file and the field. A mutation test
//!   (byte flips, truncations, zeroed and random files) and a cargo-fuzz
//!   target check this.
//! * **Saving is crash-safe per file**: new files are written beside the old
//!   ones, fsynced, renamed into place and the directory fsynced.
//! * **Filtered search never comes back short**: when few labels pass the
//!   filter they are scanned exactly, and a graph search that returns fewer
//!   than `k` results falls back to an exact scan.
//! * `Index` is `Send + Sync`; [`Index::insert_batch`] and
//!   [`Index::search_batch`] run on the rayon thread pool.
//! * `unsafe` is confined to a few spots, each with its proof in a `SAFETY`
//!   comment: the calls into the AVX2/AVX-512 distance kernels (made only after
//!   run-time CPU feature detection), prefetch hints, the `f32` view of vector
//!   words in the interleaved level-0 records (vector words are written only
//!   through `&mut Index`), the byte view those records are read into from
//!   `data_level0.bin`, the hand-over of that zero-filled buffer from
//!   `Vec<u32>` to `Vec<AtomicU32>`, and `madvise(MADV_HUGEPAGE)` on it (Linux).
//!
//! # Example
//! ```
//! use chromalite_hnsw::{Index, Params, Space};
//!
//! let mut index = Index::new(3, Space::Cosine, Params::default());
//! index.insert(1, &[1.0, 0.0, 0.0])?;
//! index.insert_batch(&[(2, vec![0.0, 1.0, 0.0]), (3, vec![0.9, 0.1, 0.0])])?;
//! index.mark_deleted(1)?;
//!
//! let hits = index.search(&[1.0, 0.0, 0.0], 2, None)?;
//! assert_eq!(hits[0].0, 3);
//! assert_eq!(hits.len(), 2);
//!
//! // Only even labels.
//! let even = |label: u64| label % 2 == 0;
//! let hits = index.search(&[1.0, 0.0, 0.0], 5, Some(&even))?;
//! assert_eq!(hits.iter().map(|h| h.0).collect::<Vec<_>>(), vec![2]);
//!
//! // Persist and reload in Chroma's layout.
//! let dir = tempfile::tempdir()?;
//! index.save(dir.path())?;
//! let loaded = Index::load(dir.path(), 3, Space::Cosine, 100)?;
//! assert_eq!(loaded.search(&[1.0, 0.0, 0.0], 1, None)?[0].0, 3);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod distance;
mod error;
mod format;
mod index;
pub mod pickle;
mod rng;

pub use distance::{reference, simd_kernels_active, simd_level, Space};
pub use error::HnswError;
pub use format::{
    Header, DATA_LEVEL0_FILE, HEADER_FILE, HEADER_SIZE, LENGTH_FILE, LINK_LISTS_FILE, PERSISTENCE_VERSION,
};
pub use index::{Index, Params};

/// Portable distance kernels, exposed for benchmarks and cross-checks.
pub mod kernels {
    pub use crate::distance::{dot_portable, l2_portable};
}

#[cfg(test)]
mod tests;
