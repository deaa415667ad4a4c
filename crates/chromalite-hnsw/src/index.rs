//! The HNSW graph: insertion, update, deletion marks and search.
//!
//! Memory layout is hnswlib's: `level0` holds one fixed-size record per
//! element, word for word the record of `data_level0.bin` (on little-endian
//! machines byte for byte), so that a search hop touches one region of memory
//! and loading is one bulk read plus a validation sweep:
//!
//! * word 0 is hnswlib's `linklistsizeint`: bits 0..16 hold the neighbour
//!   count, bit 16 (the low bit of byte 2) is the delete mark;
//! * words `1..=max_m0` hold level-0 neighbour internal ids;
//! * then `dim` words of vector (f32 bits), then the label as two words (low, high).
//!
//! * `upper`: per element with level `L > 0`, `L` blocks of `max_m + 1` words
//!   laid out like word 0 + links (the content of `link_lists.bin`).
//! * `lengths`, `labels`, `levels`: one entry per element (`labels` duplicates
//!   the label words for the hot lookups and `len`).
//!
//! Words are atomics so that the parallel batch insert can let several threads
//! read link lists while others rewrite them (each writer holds the lock stripe
//! of the list it writes, exactly one stripe at a time, so the locking cannot
//! deadlock). Vector and label words are written only through `&mut Index`
//! (`get_mut`), never through a shared reference: that is what makes the
//! plain `&[f32]` view of a vector in [`Index::vector`] sound.

use std::cmp::{Ordering as CmpOrdering, Reverse};
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use rayon::prelude::*;

use crate::distance::{kernel_for, normalize, DistFn, Space};
use crate::error::HnswError;
use crate::rng::LevelRng;

/// Construction and search parameters. `Default` gives Chroma 1.x's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params {
    /// Neighbours per node on upper layers (`hnsw:M`, Chroma's `max_neighbors`); level 0 keeps `2 * m`.
    pub m: usize,
    /// Candidate list size while building (`hnsw:construction_ef`).
    pub ef_construction: usize,
    /// Candidate list size while searching (`hnsw:search_ef`).
    pub ef_search: usize,
    /// Initial capacity; the index grows on demand.
    pub max_elements: usize,
    /// Seed of the level generator.
    pub seed: u64,
}

impl Default for Params {
    /// Chroma 1.x: M = 16, `ef_construction` = 100, `ef_search` = 100, initial
    /// capacity 100 (`DEFAULT_MAX_ELEMENTS`), seed 0.
    fn default() -> Self {
        Params { m: 16, ef_construction: 100, ef_search: 100, max_elements: 100, seed: 0 }
    }
}

/// Bit of word 0 of a level-0 list that marks an element deleted (hnswlib's
/// `DELETE_MARK` in byte 2).
pub(crate) const DELETE_BIT: u32 = 1 << 16;
pub(crate) const COUNT_MASK: u32 = 0xFFFF;
const NO_ENTRY: u64 = u64::MAX;
const LOCK_STRIPES: usize = 4096;
/// Below this many allowed elements a filtered query is answered exactly.
/// Below this many vector components in the index (about 2,700 vectors of 384 dimensions) an
/// exact scan costs no more than a graph search at the default ef, and it is never wrong, so small
/// collections answer exactly, as users comparing against brute force expect.
const EXACT_SCAN_WORK: usize = 1 << 20;

/// Label -> element id. Labels are integers chosen by the caller (Chroma numbers them 1, 2, 3...),
/// not attacker-controlled keys, so a multiplicative hash replaces `SipHash`: opening a large segment
/// inserts every label and then looks each one up, and `SipHash` was a tenth of that time.
pub(crate) type LabelMap = HashMap<u64, u32, std::hash::BuildHasherDefault<LabelHasher>>;

/// Fibonacci hashing of one `u64`: the high bits, which the table uses, depend on every input bit.
#[derive(Default)]
pub(crate) struct LabelHasher(u64);

impl std::hash::Hasher for LabelHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u64(&mut self, x: u64) {
        self.0 = (self.0 ^ x).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// Candidates nearest first, as `heuristic` returns them.
fn sorted_by_distance(mut cands: Vec<Cand>) -> Vec<Cand> {
    cands.sort_by(|a, b| a.d.total_cmp(&b.d));
    cands
}

/// How many not-yet-visited neighbours ahead of the one being measured have their vectors
/// prefetched: a 384-d vector spans 25 cache lines, and fetching one vector's lines while the
/// distance to another is computed hides most of the memory latency (measured best of 1..=4 and
/// "all at once" on debian-minilm: +25-30 % single-thread QPS over prefetching only the next
/// neighbour, visited or not).
const PREFETCH_AHEAD: usize = 4;

/// Elements linked serially before parallel linking starts (see `insert_batch`).
const SERIAL_PREFIX: u32 = 1024;

const BRUTE_FORCE_MIN: usize = 4096;

#[derive(Clone, Copy, Debug)]
pub(crate) struct Cand {
    pub(crate) d: f32,
    pub(crate) id: u32,
}

impl PartialEq for Cand {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == CmpOrdering::Equal
    }
}
impl Eq for Cand {}
impl PartialOrd for Cand {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}
impl Ord for Cand {
    fn cmp(&self, other: &Self) -> CmpOrdering {
        self.d.total_cmp(&other.d).then(self.id.cmp(&other.id))
    }
}

/// Visited-set with generation tags, reused across searches.
struct Visited {
    tags: Vec<u16>,
    cur: u16,
}

impl Visited {
    fn prepare(&mut self, n: usize) {
        if self.tags.len() < n {
            self.tags.resize(n, 0);
        }
        self.cur = self.cur.wrapping_add(1);
        if self.cur == 0 {
            self.tags.fill(0);
            self.cur = 1;
        }
    }
    #[inline]
    fn insert(&mut self, id: u32) -> bool {
        let slot = &mut self.tags[id as usize];
        if *slot == self.cur {
            false
        } else {
            *slot = self.cur;
            true
        }
    }
}

#[derive(Default)]
struct VisitedPool {
    pool: Mutex<Vec<Visited>>,
}

impl VisitedPool {
    fn get(&self, n: usize) -> Visited {
        let mut v = lock(&self.pool).pop().unwrap_or(Visited { tags: Vec::new(), cur: 0 });
        v.prepare(n);
        v
    }
    fn put(&self, v: Visited) {
        lock(&self.pool).push(v);
    }
}

// `words_as_f32` reinterprets `AtomicU32` words as `f32`: both must have the same size, and the
// words' alignment must satisfy `f32`'s.
const _: () = assert!(
    std::mem::size_of::<AtomicU32>() == std::mem::size_of::<f32>()
        && std::mem::align_of::<AtomicU32>() >= std::mem::align_of::<f32>()
);

/// The `f32` values whose bits `words` hold.
#[inline]
fn words_as_f32(words: &[AtomicU32]) -> &[f32] {
    // SAFETY: `AtomicU32` has the size of `f32` and at least its alignment (checked at compile
    // time above), every bit pattern is a valid `f32`, and the slice covers exactly the memory of
    // `words`, so the pointer is valid and aligned for `words.len()` floats. The words live in
    // `UnsafeCell`s, so the remaining condition is that nothing writes them while the returned
    // borrow (tied to `words`) lives: callers pass only vector words of `Index::level0`, which are
    // written exclusively through `&mut Index` (`get_mut` in `push_element`'s construction,
    // `update_existing` and the loader), never through a shared reference, so no write can
    // overlap a shared borrow of them.
    unsafe { std::slice::from_raw_parts(words.as_ptr().cast::<f32>(), words.len()) }
}

/// Hints the CPU to start loading the cache line holding `x`.
#[inline]
fn prefetch<T>(x: &T) {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse"))]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // SAFETY: `_mm_prefetch` requires only the SSE target feature, which
        // the cfg above guarantees is enabled for this whole build. A
        // prefetch is a cache hint: it does not read or write memory as far
        // as the program is concerned and cannot fault, and the pointer comes
        // from a live reference anyway.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(std::ptr::from_ref(x).cast::<i8>()) };
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse")))]
    {
        let _ = x;
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn encode_entry(id: u32, level: usize) -> u64 {
    ((level as u64) << 32) | u64::from(id)
}

fn decode_entry(v: u64) -> Option<(u32, usize)> {
    if v == NO_ENTRY {
        None
    } else {
        Some((v as u32, (v >> 32) as usize))
    }
}

/// An HNSW index whose memory and files follow hnswlib as Chroma's fork
/// persists them. See the crate documentation.
pub struct Index {
    pub(crate) dim: usize,
    pub(crate) space: Space,
    pub(crate) m: usize,
    pub(crate) max_m: usize,
    pub(crate) max_m0: usize,
    pub(crate) ef_construction: usize,
    pub(crate) ef_search: usize,
    pub(crate) mult: f64,
    pub(crate) capacity: usize,
    /// One `stride`-word record per element, laid out as a `data_level0.bin` record.
    pub(crate) level0: Vec<AtomicU32>,
    /// Words per record: `max_m0 + 1` link words, `dim` vector words, 2 label words.
    pub(crate) stride: usize,
    pub(crate) lengths: Vec<f32>,
    pub(crate) labels: Vec<u64>,
    pub(crate) levels: Vec<u8>,
    pub(crate) upper: Vec<Box<[AtomicU32]>>,
    pub(crate) label_map: LabelMap,
    pub(crate) num_deleted: usize,
    /// `(level << 32) | node`, or `NO_ENTRY`.
    pub(crate) entry: AtomicU64,
    pub(crate) rng: LevelRng,
    dist: DistFn,
    global: Mutex<()>,
    stripes: Box<[Mutex<()>]>,
    visited: VisitedPool,
    /// Element count at the last reachability check (see `reconnect_unreachable`).
    reach_checked: usize,
}

impl std::fmt::Debug for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Index")
            .field("dim", &self.dim)
            .field("space", &self.space)
            .field("m", &self.m)
            .field("ef_construction", &self.ef_construction)
            .field("ef_search", &self.ef_search)
            .field("len", &self.len())
            .field("elements", &self.labels.len())
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl Index {
    /// Creates an empty index. `m` is clamped to `2..=32767` (level-0 lists
    /// hold `2m` neighbours in a 16-bit count), `ef_construction` to at least
    /// `m` (as hnswlib does) and `ef_search` to at least 1.
    #[must_use]
    pub fn new(dim: usize, space: Space, params: Params) -> Index {
        let m = params.m.clamp(2, 32_767);
        Self::with_layout(
            dim,
            space,
            m,
            m,
            2 * m,
            params.ef_construction.max(m),
            params.ef_search.max(1),
            1.0 / (m as f64).ln(),
            params.max_elements,
            params.seed,
        )
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn with_layout(
        dim: usize,
        space: Space,
        m: usize,
        max_m: usize,
        max_m0: usize,
        ef_construction: usize,
        ef_search: usize,
        mult: f64,
        capacity: usize,
        seed: u64,
    ) -> Index {
        Index {
            dim,
            space,
            m,
            max_m,
            max_m0,
            ef_construction,
            ef_search,
            mult,
            capacity,
            level0: Vec::new(),
            stride: max_m0 + 1 + dim + 2,
            lengths: Vec::new(),
            labels: Vec::new(),
            levels: Vec::new(),
            upper: Vec::new(),
            label_map: LabelMap::default(),
            num_deleted: 0,
            entry: AtomicU64::new(NO_ENTRY),
            rng: LevelRng::new(seed),
            dist: kernel_for(space),
            global: Mutex::new(()),
            stripes: (0..LOCK_STRIPES).map(|_| Mutex::new(())).collect(),
            visited: VisitedPool::default(),
            reach_checked: 0,
        }
    }

    // ----- small accessors -------------------------------------------------

    /// Vector dimension.
    #[must_use]
    pub fn dim(&self) -> usize {
        self.dim
    }
    /// Distance space.
    #[must_use]
    pub fn space(&self) -> Space {
        self.space
    }
    /// Number of live (not deleted) elements.
    #[must_use]
    pub fn len(&self) -> usize {
        self.labels.len() - self.num_deleted
    }
    /// Whether there is no live element.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Number of stored elements including deleted ones (hnswlib's `cur_element_count`).
    #[must_use]
    pub fn len_with_deleted(&self) -> usize {
        self.labels.len()
    }
    /// Current capacity (hnswlib's `max_elements`); grows on demand.
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.capacity
    }
    /// The `M` parameter.
    #[must_use]
    pub fn m(&self) -> usize {
        self.m
    }
    /// The `ef_construction` parameter.
    #[must_use]
    pub fn ef_construction(&self) -> usize {
        self.ef_construction
    }
    /// The current search `ef`.
    #[must_use]
    pub fn ef(&self) -> usize {
        self.ef_search
    }
    /// Sets the search `ef` (at least 1).
    pub fn set_ef(&mut self, ef: usize) {
        self.ef_search = ef.max(1);
    }
    /// Whether `label` is present and not deleted.
    #[must_use]
    pub fn contains(&self, label: u64) -> bool {
        self.label_map.get(&label).is_some_and(|&id| !self.is_deleted(id))
    }
    /// Whether `label` is present but marked deleted.
    #[must_use]
    pub fn is_marked_deleted(&self, label: u64) -> bool {
        self.label_map.get(&label).is_some_and(|&id| self.is_deleted(id))
    }
    /// Live labels, in internal-id order.
    pub fn labels(&self) -> impl Iterator<Item = u64> + '_ {
        self.labels.iter().enumerate().filter(|(i, _)| !self.is_deleted(*i as u32)).map(|(_, l)| *l)
    }
    /// Labels marked deleted, in internal-id order.
    pub fn deleted_labels(&self) -> impl Iterator<Item = u64> + '_ {
        self.labels.iter().enumerate().filter(|(i, _)| self.is_deleted(*i as u32)).map(|(_, l)| *l)
    }

    /// The vector as stored (normalised for cosine, as hnswlib keeps it in
    /// `data_level0.bin`); `None` for unknown or deleted labels.
    #[must_use]
    pub fn get_vector(&self, label: u64) -> Option<Vec<f32>> {
        let &id = self.label_map.get(&label)?;
        if self.is_deleted(id) {
            return None;
        }
        Some(self.vector(id).to_vec())
    }

    /// The vector as Chroma's fork returns it from `getDataByLabel`: for
    /// cosine, the stored unit vector multiplied by the length kept in
    /// `length.bin` (so approximately the vector originally inserted); for
    /// the other spaces the stored vector.
    #[must_use]
    pub fn get_original_vector(&self, label: u64) -> Option<Vec<f32>> {
        let &id = self.label_map.get(&label)?;
        if self.is_deleted(id) {
            return None;
        }
        let v = self.vector(id);
        if self.space == Space::Cosine {
            let len = self.lengths[id as usize];
            Some(v.iter().map(|x| x * len).collect())
        } else {
            Some(v.to_vec())
        }
    }

    /// Offset of the vector words in a record.
    #[inline]
    pub(crate) fn vector_offset(&self) -> usize {
        self.max_m0 + 1
    }

    #[inline]
    pub(crate) fn vector(&self, id: u32) -> &[f32] {
        let start = id as usize * self.stride + self.vector_offset();
        words_as_f32(&self.level0[start..start + self.dim])
    }

    /// Vector words of `id`, for writing through `&mut self`.
    pub(crate) fn vector_words_mut(&mut self, id: u32) -> &mut [AtomicU32] {
        let start = id as usize * self.stride + self.vector_offset();
        &mut self.level0[start..start + self.dim]
    }

    /// Word 0 of element `id`'s record (neighbour count and delete mark).
    #[inline]
    fn header_word(&self, id: u32) -> &AtomicU32 {
        &self.level0[id as usize * self.stride]
    }

    /// Prefetches element `id`'s vector.
    #[inline]
    fn prefetch_vector(&self, id: u32) {
        let start = id as usize * self.stride + self.vector_offset();
        if let Some(v) = self.level0.get(start..start + self.dim) {
            // One hint per 64-byte line (16 words): vectors are read
            // whole, and a neighbour's vector is almost never in cache.
            for x in v.iter().step_by(16) {
                prefetch(x);
            }
        }
    }

    /// Prefetches the link list of `id` at `level`.
    #[inline]
    fn prefetch_links(&self, id: u32, level: usize) {
        if level == 0 {
            if let Some(x) = self.level0.get(id as usize * self.stride) {
                prefetch(x);
            }
        } else if let Some(x) = self.upper.get(id as usize).and_then(|u| u.get((level - 1) * (self.max_m + 1))) {
            prefetch(x);
        }
    }

    #[inline]
    fn dist(&self, a: &[f32], b: &[f32]) -> f32 {
        (self.dist)(a, b)
    }

    #[inline]
    pub(crate) fn is_deleted(&self, id: u32) -> bool {
        self.header_word(id).load(Ordering::Relaxed) & DELETE_BIT != 0
    }

    /// Header word + neighbour slots of `id` at `level`.
    #[inline]
    fn list(&self, id: u32, level: usize) -> &[AtomicU32] {
        if level == 0 {
            let start = id as usize * self.stride;
            &self.level0[start..=start + self.max_m0]
        } else {
            let s = self.max_m + 1;
            &self.upper[id as usize][(level - 1) * s..level * s]
        }
    }

    #[inline]
    fn read_list(list: &[AtomicU32], out: &mut Vec<u32>) {
        out.clear();
        let count = (list[0].load(Ordering::Acquire) & COUNT_MASK) as usize;
        let count = count.min(list.len() - 1);
        out.extend(list[1..=count].iter().map(|w| w.load(Ordering::Relaxed)));
    }

    /// Writes `ids` into `list`, keeping the delete bit. Caller holds the stripe lock.
    fn write_list(list: &[AtomicU32], ids: impl ExactSizeIterator<Item = u32>) {
        let n = ids.len().min(list.len() - 1);
        for (slot, id) in list[1..].iter().zip(ids) {
            slot.store(id, Ordering::Relaxed);
        }
        let header = list[0].load(Ordering::Relaxed);
        list[0].store((header & !COUNT_MASK) | n as u32, Ordering::Release);
    }

    fn stripe(&self, id: u32) -> MutexGuard<'_, ()> {
        lock(&self.stripes[id as usize % LOCK_STRIPES])
    }

    // ----- capacity ----------------------------------------------------------

    /// Sets the capacity. Fails if it is below the number of stored elements
    /// (including deleted ones), like hnswlib's `resizeIndex`.
    pub fn resize(&mut self, new_capacity: usize) -> Result<(), HnswError> {
        if new_capacity < self.labels.len() {
            return Err(HnswError::InvalidArgument(format!(
                "cannot resize to {new_capacity}: the index holds {} elements",
                self.labels.len()
            )));
        }
        if new_capacity > u32::MAX as usize {
            return Err(HnswError::InvalidArgument(format!("capacity {new_capacity} exceeds 2^32 - 1")));
        }
        self.capacity = new_capacity;
        Ok(())
    }

    fn ensure_capacity(&mut self, needed: usize) -> Result<(), HnswError> {
        if needed > self.capacity {
            // Chroma's rule: grow to the next power of two.
            let cap = needed.checked_next_power_of_two().unwrap_or(needed);
            self.resize(cap.min(u32::MAX as usize).max(needed))?;
        }
        Ok(())
    }

    fn check_dim(&self, v: &[f32]) -> Result<(), HnswError> {
        if v.len() == self.dim {
            Ok(())
        } else {
            Err(HnswError::DimensionMismatch { expected: self.dim, got: v.len() })
        }
    }

    // ----- insertion ---------------------------------------------------------

    /// Inserts `vector` under `label`. An existing label is updated in place
    /// (and un-deleted), as hnswlib's `addPoint` does. Grows capacity as needed.
    pub fn insert(&mut self, label: u64, vector: &[f32]) -> Result<(), HnswError> {
        self.check_dim(vector)?;
        if let Some(&id) = self.label_map.get(&label) {
            self.update_existing(id, vector);
            return Ok(());
        }
        self.ensure_capacity(self.labels.len() + 1)?;
        let id = self.push_element(label, vector);
        self.link_new(id);
        self.check_reachability();
        Ok(())
    }

    /// Inserts many vectors, linking new elements in parallel with rayon.
    /// Later duplicates of a label win; existing labels are updated in place.
    /// Either every item is applied or (on a dimension error) none is.
    pub fn insert_batch(&mut self, items: &[(u64, Vec<f32>)]) -> Result<(), HnswError> {
        for (_, v) in items {
            self.check_dim(v)?;
        }
        // Last occurrence of each label wins.
        let mut last: HashMap<u64, usize> = HashMap::with_capacity(items.len());
        for (i, (label, _)) in items.iter().enumerate() {
            last.insert(*label, i);
        }
        let mut new_items = Vec::new();
        let mut updates = Vec::new();
        for (i, (label, v)) in items.iter().enumerate() {
            if last[label] != i {
                continue;
            }
            match self.label_map.get(label) {
                Some(&id) => updates.push((id, v)),
                None => new_items.push((*label, v)),
            }
        }
        self.ensure_capacity(self.labels.len() + new_items.len())?;
        let first = self.labels.len() as u32;
        self.level0.reserve(new_items.len() * self.stride);
        for (label, v) in &new_items {
            self.push_element(*label, v);
        }
        let end = self.labels.len() as u32;
        if end - first < 64 || rayon::current_num_threads() == 1 {
            for id in first..end {
                self.link_new(id);
            }
        } else {
            // Elements linked concurrently cannot see each other, and in a small graph that can
            // leave an element no other element links to, unreachable by any graph search (a
            // Chroma process searching a segment we wrote has no exact fallback). So the first
            // SERIAL_PREFIX elements of an index are linked one by one; later ones join a graph
            // large enough that concurrent inserts rarely compete for the same neighbours.
            let serial_end = end.min(first.max(SERIAL_PREFIX));
            for id in first..serial_end {
                self.link_new(id);
            }
            let this = &*self;
            (serial_end..end).into_par_iter().for_each(|id| this.link_new(id));
            self.refine_batch(first, end);
        }
        for (id, v) in updates {
            self.update_existing(id, v);
        }
        self.check_reachability();
        Ok(())
    }

    /// Runs [`Index::reconnect_unreachable`] once the index has grown by an eighth since the last
    /// run (and at the first write after a load): the pass reads every level-0 list, so running
    /// it at geometric steps keeps its cost a constant share of the inserts.
    fn check_reachability(&mut self) {
        let n = self.labels.len();
        if n > self.reach_checked + self.reach_checked / 8 {
            self.reconnect_unreachable();
            self.reach_checked = n;
        }
    }

    /// Makes every live element reachable over level-0 links from the entry point again.
    ///
    /// hnswlib's back-link pruning can drop an element's last in-link; a graph search (Chroma's,
    /// searching a segment we wrote, has no exact fallback) can then never return it, whatever
    /// `ef`. About 5 of 59k elements end up so on debian-minilm, in hnswlib's graphs as in ours.
    /// Each one found is searched for from the entry point (which finds reachable elements only)
    /// and linked from the nearest found element with a free slot, or else in place of the
    /// farthest neighbour of the nearest found element that other lists also point to.
    pub(crate) fn reconnect_unreachable(&self) {
        let Some((ep, _)) = decode_entry(self.entry.load(Ordering::Acquire)) else {
            return;
        };
        let n = self.labels.len();
        let mut in_degree = vec![0u32; n];
        let mut buf = Vec::with_capacity(self.max_m0);
        for id in 0..n as u32 {
            Self::read_list(self.list(id, 0), &mut buf);
            for &x in &buf {
                in_degree[x as usize] += 1;
            }
        }
        // Each repair costs a search. Real embeddings leave a handful of orphans, but an `ip`
        // collection of unnormalised vectors can leave half its elements nobody's neighbour, so a
        // pass repairs at most 1/64 of the index (later passes go on): a bounded share of the
        // inserts that triggered it.
        let mut budget = (n / 64).max(256);
        // A replaced link can, rarely, have been the last one from the reachable part to its
        // target (its other in-links coming from unreachable elements): a few rounds catch that.
        for _ in 0..3 {
            let mut reached = vec![false; n];
            self.mark_reachable(ep, &mut reached);
            let mut linked = false;
            for x in 0..n as u32 {
                if budget == 0 {
                    return;
                }
                if !reached[x as usize] && !self.is_deleted(x) {
                    budget -= 1;
                    if self.link_from_reachable(x, &mut in_degree) {
                        self.mark_reachable(x, &mut reached);
                        linked = true;
                    }
                }
            }
            if !linked {
                break;
            }
        }
    }

    /// Test support: removes every link to `x`, at every level, as pruning could have.
    #[cfg(test)]
    pub(crate) fn unlink_everywhere(&self, x: u32) {
        let mut buf = Vec::new();
        for id in 0..self.labels.len() as u32 {
            for level in 0..=usize::from(self.levels[id as usize]) {
                Self::read_list(self.list(id, level), &mut buf);
                if buf.contains(&x) {
                    buf.retain(|&y| y != x);
                    Self::write_list(self.list(id, level), buf.iter().copied());
                }
            }
        }
    }

    /// Marks everything reachable from `start` over links of any level (a search reaches level 0
    /// wherever its descent through the upper levels ended).
    fn mark_reachable(&self, start: u32, reached: &mut [bool]) {
        let mut stack = vec![start];
        reached[start as usize] = true;
        let mut buf = Vec::with_capacity(self.max_m0);
        while let Some(x) = stack.pop() {
            for level in 0..=usize::from(self.levels[x as usize]) {
                Self::read_list(self.list(x, level), &mut buf);
                for &y in &buf {
                    if !reached[y as usize] {
                        reached[y as usize] = true;
                        stack.push(y);
                    }
                }
            }
        }
    }

    /// Puts a link to the unreachable element `x` into the level-0 list of a reachable element
    /// near it; `false` when no such list could take it.
    fn link_from_reachable(&self, x: u32, in_degree: &mut [u32]) -> bool {
        let Some((ep, max_level)) = decode_entry(self.entry.load(Ordering::Acquire)) else {
            return false;
        };
        let q = self.vector(x);
        let cur = if max_level > 0 { self.greedy(q, ep, max_level, 0) } else { ep };
        let found = sorted_by_distance(self.search_layer(cur, q, 0, self.ef_construction).into_vec());
        let mut buf = Vec::with_capacity(self.max_m0);
        for y in found.iter().map(|c| c.id).filter(|&y| y != x) {
            let _g = self.stripe(y);
            Self::read_list(self.list(y, 0), &mut buf);
            if buf.len() < self.max_m0 {
                buf.push(x);
                Self::write_list(self.list(y, 0), buf.iter().copied());
                in_degree[x as usize] += 1;
                return true;
            }
        }
        for y in found.iter().map(|c| c.id).filter(|&y| y != x) {
            let _g = self.stripe(y);
            Self::read_list(self.list(y, 0), &mut buf);
            let yv = self.vector(y);
            let farthest = buf
                .iter()
                .enumerate()
                .filter(|&(_, &z)| in_degree[z as usize] > 1)
                .map(|(i, &z)| (self.dist(yv, self.vector(z)), i))
                .max_by(|a, b| a.0.total_cmp(&b.0));
            if let Some((_, i)) = farthest {
                in_degree[buf[i] as usize] -= 1;
                buf[i] = x;
                Self::write_list(self.list(y, 0), buf.iter().copied());
                in_degree[x as usize] += 1;
                return true;
            }
        }
        false
    }

    /// Appends an element (vector, label, level, empty lists); returns its id.
    fn push_element(&mut self, label: u64, vector: &[f32]) -> u32 {
        let id = self.labels.len() as u32;
        let normalised;
        let stored = if self.space == Space::Cosine {
            let len;
            (normalised, len) = normalize(vector);
            self.lengths.push(len);
            &normalised[..]
        } else {
            self.lengths.push(0.0);
            vector
        };
        self.level0.extend((0..=self.max_m0).map(|_| AtomicU32::new(0)));
        self.level0.extend(stored.iter().map(|x| AtomicU32::new(x.to_bits())));
        self.level0.extend([AtomicU32::new(label as u32), AtomicU32::new((label >> 32) as u32)]);
        let level = self.rng.level(self.mult);
        self.labels.push(label);
        self.levels.push(level as u8);
        self.upper.push((0..level * (self.max_m + 1)).map(|_| AtomicU32::new(0)).collect());
        self.label_map.insert(label, id);
        id
    }

    /// Greedy descent from `cur` through levels `from..=to+1` (descending).
    fn greedy(&self, q: &[f32], mut cur: u32, from: usize, to: usize) -> u32 {
        let mut curdist = self.dist(q, self.vector(cur));
        let mut buf = Vec::with_capacity(self.max_m);
        for level in (to + 1..=from).rev() {
            let mut changed = true;
            while changed {
                changed = false;
                Self::read_list(self.list(cur, level), &mut buf);
                for &cand in &buf {
                    let d = self.dist(q, self.vector(cand));
                    if d < curdist {
                        curdist = d;
                        cur = cand;
                        changed = true;
                    }
                }
            }
        }
        cur
    }

    /// hnswlib's `addPoint` for an element whose data is already in place.
    fn link_new(&self, id: u32) {
        let level = self.levels[id as usize] as usize;
        let q = self.vector(id);
        let guard = lock(&self.global);
        let Some((ep, max_level)) = decode_entry(self.entry.load(Ordering::Acquire)) else {
            self.entry.store(encode_entry(id, level), Ordering::Release);
            return;
        };
        let held = if level > max_level {
            Some(guard)
        } else {
            drop(guard);
            None
        };
        let mut cur = ep;
        if level < max_level {
            cur = self.greedy(q, cur, max_level, level);
        }
        let ep_deleted = self.is_deleted(ep);
        for l in (0..=level.min(max_level)).rev() {
            let mut top = self.search_layer(cur, q, l, self.ef_construction);
            if ep_deleted {
                top.push(Cand { d: self.dist(q, self.vector(ep)), id: ep });
                if top.len() > self.ef_construction {
                    top.pop();
                }
            }
            if top.is_empty() {
                continue;
            }
            cur = self.connect(id, top, l, false);
        }
        if held.is_some() && level > max_level {
            self.entry.store(encode_entry(id, level), Ordering::Release);
        }
        drop(held);
    }

    /// After a parallel batch, searches the finished graph once more for the batch's elements and
    /// connects them again at level 0: an element's own list merges the new candidates (pruned
    /// with the same heuristic as any full list) and its M heuristic picks get a back-link.
    ///
    /// An element is linked at insertion to the graph as it was then; elements that arrived later
    /// (and, in a parallel batch, those linked at the same time) are invisible to it, and a batch
    /// inserted in data order (debian-minilm is sorted by package name) brings similar elements
    /// together, which prune each other's back-links. The second search runs on the finished graph
    /// from the entry point, the way a query arrives, so it also builds bridges into regions that
    /// queries reached badly. Its beam is the level-0 list size (2M), not `ef_construction`.
    ///
    /// Hubs (elements more lists point to than one list holds, about 7 % on debian-minilm) are
    /// left as they are: every search passes them already, and re-pruning their full lists only
    /// loses routes. Measured on debian-minilm (M = 16, `ef_construction` = 100, recall@10 at
    /// ef = 100, one build each): without this pass 0.9790-0.9808 (mean 0.9799, 5 builds); with it
    /// 0.9811-0.9836 (mean 0.9826, 12 builds) for about 30 % more build time; with hubs included
    /// 0.9801-0.9830 (mean 0.9816, 11 builds); relinking only weakly linked elements (fewer than
    /// M/2 in-links, the previous rule) or a beam of 16 gained less than 0.001. The cost is
    /// proportional to the batch, not to the index.
    fn refine_batch(&self, first: u32, end: u32) {
        let ef = self.max_m0.max(self.m);
        let in_degree = self.batch_in_degrees(first, end);
        let picked: Vec<u32> = (first..end)
            .filter(|&id| usize::from(in_degree[(id - first) as usize]) <= self.max_m0 && !self.is_deleted(id))
            .collect();
        picked.into_par_iter().for_each(|id| {
            let Some((ep, max_level)) = decode_entry(self.entry.load(Ordering::Acquire)) else {
                return;
            };
            let q = self.vector(id);
            let cur = if max_level > 0 { self.greedy(q, ep, max_level, 0) } else { ep };
            let top: BinaryHeap<Cand> = self.search_layer(cur, q, 0, ef).into_iter().filter(|c| c.id != id).collect();
            if !top.is_empty() {
                self.connect(id, top, 0, false);
            }
        });
    }

    /// How many level-0 lists point to each element of `first..end`. Only lists that can point to
    /// the batch are read (the batch's own lists and those of the elements they point to, which
    /// received its back-links), so a small batch added to a large index costs time in proportion
    /// to the batch. A back-link whose target later dropped the batch element is missed; that
    /// only makes an element look less linked than it is.
    fn batch_in_degrees(&self, first: u32, end: u32) -> Vec<u16> {
        let mut buf = Vec::with_capacity(self.max_m0);
        let mut sources: Vec<u32> = (first..end).collect();
        for id in first..end {
            Self::read_list(self.list(id, 0), &mut buf);
            sources.extend_from_slice(&buf);
        }
        sources.sort_unstable();
        sources.dedup();
        let mut in_degree = vec![0u16; (end - first) as usize];
        for &s in &sources {
            Self::read_list(self.list(s, 0), &mut buf);
            for &x in &buf {
                if (first..end).contains(&x) {
                    let d = &mut in_degree[(x - first) as usize];
                    *d = d.saturating_add(1);
                }
            }
        }
        in_degree
    }

    /// hnswlib's `searchBaseLayer`: a search on one layer keeping the `ef` best (`ef_construction`
    /// when linking); deleted elements are traversed but not returned.
    fn search_layer(&self, ep: u32, q: &[f32], layer: usize, ef: usize) -> BinaryHeap<Cand> {
        let has_deletions = self.num_deleted > 0;
        let mut visited = self.visited.get(self.labels.len());
        let mut top: BinaryHeap<Cand> = BinaryHeap::new();
        let mut cands: BinaryHeap<Reverse<Cand>> = BinaryHeap::new();
        let mut lower;
        if self.is_deleted(ep) {
            lower = f32::MAX;
            cands.push(Reverse(Cand { d: lower, id: ep }));
        } else {
            let d = self.dist(q, self.vector(ep));
            top.push(Cand { d, id: ep });
            cands.push(Reverse(Cand { d, id: ep }));
            lower = d;
        }
        visited.insert(ep);
        let mut buf = Vec::with_capacity(self.max_m0);
        while let Some(Reverse(c)) = cands.peek().copied() {
            if c.d > lower && top.len() >= ef {
                break;
            }
            cands.pop();
            Self::read_list(self.list(c.id, layer), &mut buf);
            buf.retain(|&n| visited.insert(n));
            for &n in buf.iter().take(PREFETCH_AHEAD) {
                self.prefetch_vector(n);
            }
            for (j, &n) in buf.iter().enumerate() {
                if let Some(&next) = buf.get(j + PREFETCH_AHEAD) {
                    self.prefetch_vector(next);
                }
                let d = self.dist(q, self.vector(n));
                if top.len() < ef || lower > d {
                    cands.push(Reverse(Cand { d, id: n }));
                    self.prefetch_links(n, layer);
                    if !has_deletions || !self.is_deleted(n) {
                        top.push(Cand { d, id: n });
                    }
                    if top.len() > ef {
                        top.pop();
                    }
                    if let Some(t) = top.peek() {
                        lower = t.d;
                    }
                }
            }
        }
        self.visited.put(visited);
        top
    }

    /// hnswlib's `getNeighborsByHeuristic2`: returns the kept candidates,
    /// closest first.
    fn heuristic(&self, mut cands: Vec<Cand>, m: usize) -> Vec<Cand> {
        cands.sort_unstable();
        if cands.len() < m {
            return cands;
        }
        let mut out: Vec<Cand> = Vec::with_capacity(m);
        for c in cands {
            if out.len() >= m {
                break;
            }
            let v = self.vector(c.id);
            if out.iter().all(|s| self.dist(self.vector(s.id), v) >= c.d) {
                out.push(c);
            }
        }
        out
    }

    /// hnswlib's `mutuallyConnectNewElement`. Returns the closest selected
    /// neighbour (the next entry point).
    fn connect(&self, id: u32, top: BinaryHeap<Cand>, level: usize, is_update: bool) -> u32 {
        let m_cur = if level == 0 { self.max_m0 } else { self.max_m };
        let selected = self.heuristic(top.into_vec(), self.m);
        let next = selected[0].id;
        {
            let _g = self.stripe(id);
            let list = self.list(id, level);
            let mut existing = Vec::new();
            Self::read_list(list, &mut existing);
            if is_update || existing.is_empty() {
                // hnswlib stores the list farthest first.
                Self::write_list(list, selected.iter().rev().map(|c| c.id));
            } else {
                // During a parallel build another element may already have linked itself into this
                // new element's list (hnswlib prevents that by holding the element's own lock for
                // its whole insertion; our striped locks cannot be held that long without risking
                // deadlock). Overwriting would drop that back-link and can leave the other element
                // unreachable, so keep both, pruned with the same heuristic as any full list.
                let q = self.vector(id);
                let mut cands: Vec<Cand> = selected.clone();
                for n in existing {
                    if n != id && !cands.iter().any(|c| c.id == n) {
                        cands.push(Cand { d: self.dist(q, self.vector(n)), id: n });
                    }
                }
                let kept = if cands.len() > m_cur { self.heuristic(cands, m_cur) } else { sorted_by_distance(cands) };
                Self::write_list(list, kept.iter().rev().map(|c| c.id));
            }
        }
        let q = self.vector(id);
        let mut buf = Vec::with_capacity(m_cur);
        for s in &selected {
            if s.id == id {
                continue;
            }
            let _g = self.stripe(s.id);
            let list = self.list(s.id, level);
            Self::read_list(list, &mut buf);
            // Also for new elements: in a parallel build `s` may have linked to `id` already.
            if buf.contains(&id) {
                continue;
            }
            if buf.len() < m_cur {
                buf.push(id);
                Self::write_list(list, buf.iter().copied());
            } else {
                let sv = self.vector(s.id);
                let mut cands = Vec::with_capacity(buf.len() + 1);
                cands.push(Cand { d: self.dist(q, sv), id });
                for &n in &buf {
                    cands.push(Cand { d: self.dist(self.vector(n), sv), id: n });
                }
                let kept = self.heuristic(cands, m_cur);
                Self::write_list(list, kept.iter().rev().map(|c| c.id));
            }
        }
        next
    }

    /// hnswlib's `addPoint` on an existing label: un-delete, then `updatePoint`.
    fn update_existing(&mut self, id: u32, vector: &[f32]) {
        if self.is_deleted(id) {
            self.header_word(id).fetch_and(!DELETE_BIT, Ordering::Relaxed);
            self.num_deleted -= 1;
        }
        let normalised;
        let stored = if self.space == Space::Cosine {
            let len;
            (normalised, len) = normalize(vector);
            self.lengths[id as usize] = len;
            &normalised[..]
        } else {
            vector
        };
        for (w, x) in self.vector_words_mut(id).iter_mut().zip(stored) {
            *w.get_mut() = x.to_bits();
        }
        let Some((ep, max_level)) = decode_entry(self.entry.load(Ordering::Acquire)) else {
            return;
        };
        if ep == id && self.labels.len() == 1 {
            return;
        }
        let elem_level = self.levels[id as usize] as usize;
        let mut buf = Vec::new();
        for layer in 0..=elem_level {
            Self::read_list(self.list(id, layer), &mut buf);
            if buf.is_empty() {
                continue;
            }
            let one_hop = buf.clone();
            let mut s_cand: HashSet<u32> = HashSet::new();
            s_cand.insert(id);
            let mut s_neigh: Vec<u32> = Vec::new();
            for &n in &one_hop {
                s_cand.insert(n);
                if !s_neigh.contains(&n) {
                    s_neigh.push(n);
                }
                Self::read_list(self.list(n, layer), &mut buf);
                s_cand.extend(buf.iter().copied());
            }
            let m_cur = if layer == 0 { self.max_m0 } else { self.max_m };
            for &neigh in &s_neigh {
                let size = if s_cand.contains(&neigh) { s_cand.len() - 1 } else { s_cand.len() };
                let keep = self.ef_construction.min(size);
                let nv = self.vector(neigh);
                let mut heap: BinaryHeap<Cand> = BinaryHeap::new();
                for &c in &s_cand {
                    if c == neigh {
                        continue;
                    }
                    let d = self.dist(nv, self.vector(c));
                    if heap.len() < keep {
                        heap.push(Cand { d, id: c });
                    } else if heap.peek().is_some_and(|t| d < t.d) {
                        heap.pop();
                        heap.push(Cand { d, id: c });
                    }
                }
                let kept = self.heuristic(heap.into_vec(), m_cur);
                Self::write_list(self.list(neigh, layer), kept.iter().rev().map(|c| c.id));
            }
        }
        self.repair_connections(id, ep, elem_level, max_level);
    }

    /// hnswlib's `repairConnectionsForUpdate`.
    fn repair_connections(&self, id: u32, ep: u32, level: usize, max_level: usize) {
        let q = self.vector(id);
        let mut cur = ep;
        if level < max_level {
            cur = self.greedy(q, cur, max_level, level);
        }
        for l in (0..=level.min(max_level)).rev() {
            let top = self.search_layer(cur, q, l, self.ef_construction);
            let mut filtered: BinaryHeap<Cand> = top.into_iter().filter(|c| c.id != id).collect();
            if filtered.is_empty() {
                continue;
            }
            if self.is_deleted(ep) && ep != id {
                filtered.push(Cand { d: self.dist(q, self.vector(ep)), id: ep });
                if filtered.len() > self.ef_construction {
                    filtered.pop();
                }
            }
            cur = self.connect(id, filtered, l, true);
        }
    }

    // ----- deletion ----------------------------------------------------------

    /// Marks `label` deleted (hnswlib's `markDelete`: the graph is unchanged,
    /// the element is skipped in results). Returns `false` if the label is
    /// unknown or already deleted.
    pub fn mark_deleted(&mut self, label: u64) -> Result<bool, HnswError> {
        let Some(&id) = self.label_map.get(&label) else {
            return Ok(false);
        };
        if self.is_deleted(id) {
            return Ok(false);
        }
        self.header_word(id).fetch_or(DELETE_BIT, Ordering::Relaxed);
        self.num_deleted += 1;
        Ok(true)
    }

    // ----- search --------------------------------------------------------------

    /// The `k` nearest live elements to `query`, ascending by distance.
    /// `filter`, if given, is an allowed-label predicate. When few labels pass
    /// the filter (or the graph search comes back short) the allowed elements
    /// are scanned exactly, so the result holds `min(k, allowed live count)`
    /// entries.
    pub fn search(
        &self,
        query: &[f32],
        k: usize,
        filter: Option<&(dyn Fn(u64) -> bool + Sync)>,
    ) -> Result<Vec<(u64, f32)>, HnswError> {
        self.check_dim(query)?;
        if k == 0 || self.is_empty() {
            return Ok(Vec::new());
        }
        let normalised;
        let q = if self.space == Space::Cosine {
            normalised = normalize(query).0;
            &normalised[..]
        } else {
            query
        };
        let Some(filter) = filter else {
            if self.len() * self.dim <= EXACT_SCAN_WORK {
                return Ok(self.brute_force(q, k, None));
            }
            let res = self.search_graph(q, k, None);
            if res.len() < k.min(self.len()) {
                return Ok(self.brute_force(q, k, None));
            }
            return Ok(res);
        };
        // Count the allowed live elements, up to a threshold; if few pass,
        // scan them exactly.
        let threshold = BRUTE_FORCE_MIN.max(self.ef_search.max(k) * self.max_m0);
        let mut allowed = Vec::new();
        let mut over = false;
        for (i, &label) in self.labels.iter().enumerate() {
            if !self.is_deleted(i as u32) && filter(label) {
                if allowed.len() == threshold {
                    over = true;
                    break;
                }
                allowed.push(i as u32);
            }
        }
        if !over {
            return Ok(self.brute_force(q, k, Some(&allowed)));
        }
        let res = self.search_graph(q, k, Some(filter));
        if res.len() < k {
            // More than `threshold` elements are allowed, so k of them exist.
            let all: Vec<u32> = (0..self.labels.len() as u32)
                .filter(|&i| !self.is_deleted(i) && filter(self.labels[i as usize]))
                .collect();
            return Ok(self.brute_force(q, k, Some(&all)));
        }
        Ok(res)
    }

    /// Runs [`Index::search`] for many queries in parallel.
    pub fn search_batch(
        &self,
        queries: &[Vec<f32>],
        k: usize,
        filter: Option<&(dyn Fn(u64) -> bool + Sync)>,
    ) -> Result<Vec<Vec<(u64, f32)>>, HnswError> {
        queries.par_iter().map(|q| self.search(q, k, filter)).collect()
    }

    /// Exact scan over `ids` (or all live elements), `q` already normalised.
    fn brute_force(&self, q: &[f32], k: usize, ids: Option<&[u32]>) -> Vec<(u64, f32)> {
        // `k` comes from the caller; no more than every element can be kept.
        let mut heap: BinaryHeap<Cand> = BinaryHeap::with_capacity(k.min(self.labels.len()) + 1);
        let mut consider = |id: u32| {
            let d = self.dist(q, self.vector(id));
            if heap.len() < k {
                heap.push(Cand { d, id });
            } else if heap.peek().is_some_and(|t| d < t.d) {
                heap.pop();
                heap.push(Cand { d, id });
            }
        };
        match ids {
            Some(ids) => ids.iter().for_each(|&i| consider(i)),
            None => (0..self.labels.len() as u32).filter(|&i| !self.is_deleted(i)).for_each(consider),
        }
        heap.into_sorted_vec().into_iter().map(|c| (self.labels[c.id as usize], c.d)).collect()
    }

    /// hnswlib's `searchKnn`: greedy descent, then `searchBaseLayerST` with
    /// `max(ef, k)`.
    pub(crate) fn search_graph(
        &self,
        q: &[f32],
        k: usize,
        filter: Option<&(dyn Fn(u64) -> bool + Sync)>,
    ) -> Vec<(u64, f32)> {
        let Some((ep, max_level)) = decode_entry(self.entry.load(Ordering::Acquire)) else {
            return Vec::new();
        };
        let cur = if max_level > 0 { self.greedy(q, ep, max_level, 0) } else { ep };
        let ef = self.ef_search.max(k);
        let has_deletions = self.num_deleted > 0;
        let allowed = |id: u32| -> bool {
            (!has_deletions || !self.is_deleted(id)) && filter.is_none_or(|f| f(self.labels[id as usize]))
        };
        let mut visited = self.visited.get(self.labels.len());
        // `ef` comes from the caller or a file header; the heaps never hold more than every element.
        let cap = ef.min(self.labels.len()) + 1;
        let mut top: BinaryHeap<Cand> = BinaryHeap::with_capacity(cap);
        let mut cands: BinaryHeap<Reverse<Cand>> = BinaryHeap::with_capacity(cap * 2);
        let mut lower;
        if allowed(cur) {
            let d = self.dist(q, self.vector(cur));
            lower = d;
            top.push(Cand { d, id: cur });
            cands.push(Reverse(Cand { d, id: cur }));
        } else {
            lower = f32::MAX;
            cands.push(Reverse(Cand { d: lower, id: cur }));
        }
        visited.insert(cur);
        let s0 = self.max_m0 + 1;
        let mut fresh: Vec<u32> = Vec::with_capacity(s0);
        while let Some(Reverse(c)) = cands.peek().copied() {
            if c.d > lower && top.len() >= ef {
                break;
            }
            cands.pop();
            let list = self.list(c.id, 0);
            let count = ((list[0].load(Ordering::Acquire) & COUNT_MASK) as usize).min(s0 - 1);
            let nbrs = &list[1..=count];
            fresh.clear();
            for w in nbrs {
                let n = w.load(Ordering::Relaxed);
                if visited.insert(n) {
                    fresh.push(n);
                }
            }
            for &n in fresh.iter().take(PREFETCH_AHEAD) {
                self.prefetch_vector(n);
            }
            for (j, &n) in fresh.iter().enumerate() {
                if let Some(&next) = fresh.get(j + PREFETCH_AHEAD) {
                    self.prefetch_vector(next);
                }
                let d = self.dist(q, self.vector(n));
                if top.len() < ef || lower > d {
                    cands.push(Reverse(Cand { d, id: n }));
                    self.prefetch_links(n, 0);
                    if allowed(n) {
                        top.push(Cand { d, id: n });
                    }
                    if top.len() > ef {
                        top.pop();
                    }
                    if let Some(t) = top.peek() {
                        lower = t.d;
                    }
                }
            }
        }
        self.visited.put(visited);
        while top.len() > k {
            top.pop();
        }
        top.into_sorted_vec().into_iter().map(|c| (self.labels[c.id as usize], c.d)).collect()
    }

    /// Checks the graph invariants the search relies on (used after loading
    /// and by tests): neighbour ids in range, counts within limits, and every
    /// neighbour on level `l` has a level of at least `l`.
    /// Levels below `from_level` are skipped (the loader checks level 0 while decoding).
    pub(crate) fn check_links(&self, file: &str, from_level: usize) -> Result<(), HnswError> {
        let n = self.labels.len();
        let mut buf = Vec::new();
        for id in 0..n as u32 {
            let level = self.levels[id as usize] as usize;
            for l in from_level..=level {
                let list = self.list(id, l);
                let raw = (list[0].load(Ordering::Relaxed) & COUNT_MASK) as usize;
                if raw > list.len() - 1 {
                    return Err(HnswError::corrupt(
                        if l == 0 { "data_level0.bin" } else { file },
                        "link_count",
                        format!("element {id} level {l} has {raw} links, more than the maximum {}", list.len() - 1),
                    ));
                }
                Self::read_list(list, &mut buf);
                for &nb in &buf {
                    if nb as usize >= n || (self.levels[nb as usize] as usize) < l {
                        return Err(HnswError::corrupt(
                            if l == 0 { "data_level0.bin" } else { file },
                            "neighbor_id",
                            format!("element {id} level {l} links to {nb}, which is not an element on that level"),
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}
