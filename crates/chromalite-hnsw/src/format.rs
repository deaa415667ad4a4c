//! Reading and writing the four-file layout of Chroma's hnswlib fork
//! (`header.bin`, `data_level0.bin`, `length.bin`, `link_lists.bin`).
//! See `FORMAT.md` beside this crate for the byte layout.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::distance::Space;
use crate::error::HnswError;
use crate::index::{Index, COUNT_MASK, DELETE_BIT};
use crate::rng::MAX_LEVEL;

/// File names of a persisted index.
pub const HEADER_FILE: &str = "header.bin";
/// Level-0 records: links, vector, label per element.
pub const DATA_LEVEL0_FILE: &str = "data_level0.bin";
/// One f32 per element: the norm before normalisation (cosine).
pub const LENGTH_FILE: &str = "length.bin";
/// Upper-layer link lists, one length-prefixed block per element.
pub const LINK_LISTS_FILE: &str = "link_lists.bin";

/// Size of `header.bin`.
pub const HEADER_SIZE: usize = 100;
/// hnswlib's `PERSISTENCE_VERSION`.
pub const PERSISTENCE_VERSION: i32 = 1;
/// Largest `M`/`maxM0` accepted from a file (counts are 16-bit).
const MAX_LINKS: u64 = 65_535;
/// Largest `ef_construction` accepted from a file.
const MAX_EF: u64 = 1 << 24;

/// The header fields, in file order.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Header {
    /// Always 1.
    pub version: i32,
    /// Always 0.
    pub offset_level0: u64,
    /// Capacity.
    pub max_elements: u64,
    /// Elements stored, including deleted ones.
    pub cur_element_count: u64,
    /// Bytes per `data_level0.bin` record.
    pub size_data_per_element: u64,
    /// Offset of the label inside a record.
    pub label_offset: u64,
    /// Offset of the vector inside a record.
    pub offset_data: u64,
    /// Level of the entry point (-1 when empty).
    pub maxlevel: i32,
    /// Internal id of the entry point (`u32::MAX` when empty).
    pub enterpoint_node: u32,
    /// Upper-layer list capacity.
    pub max_m: u64,
    /// Level-0 list capacity.
    pub max_m0: u64,
    /// M.
    pub m: u64,
    /// Level multiplier `1 / ln(M)`.
    pub mult: f64,
    /// Construction ef.
    pub ef_construction: u64,
}

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        out.copy_from_slice(&self.buf[self.pos..self.pos + N]);
        self.pos += N;
        out
    }
    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.take::<8>())
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.take::<4>())
    }
    fn i32(&mut self) -> i32 {
        i32::from_le_bytes(self.take::<4>())
    }
    fn f64(&mut self) -> f64 {
        f64::from_le_bytes(self.take::<8>())
    }
}

impl Header {
    /// Parses exactly [`HEADER_SIZE`] bytes (no validation beyond the length).
    pub fn parse(bytes: &[u8]) -> Result<Header, HnswError> {
        if bytes.len() != HEADER_SIZE {
            return Err(HnswError::corrupt(
                HEADER_FILE,
                "file_length",
                format!("expected {HEADER_SIZE} bytes, found {}", bytes.len()),
            ));
        }
        let mut c = Cursor { buf: bytes, pos: 0 };
        Ok(Header {
            version: c.i32(),
            offset_level0: c.u64(),
            max_elements: c.u64(),
            cur_element_count: c.u64(),
            size_data_per_element: c.u64(),
            label_offset: c.u64(),
            offset_data: c.u64(),
            maxlevel: c.i32(),
            enterpoint_node: c.u32(),
            max_m: c.u64(),
            max_m0: c.u64(),
            m: c.u64(),
            mult: c.f64(),
            ef_construction: c.u64(),
        })
    }

    /// Serialises the header.
    #[must_use]
    pub fn to_bytes(&self) -> [u8; HEADER_SIZE] {
        let mut out = Vec::with_capacity(HEADER_SIZE);
        out.extend_from_slice(&self.version.to_le_bytes());
        for v in [
            self.offset_level0,
            self.max_elements,
            self.cur_element_count,
            self.size_data_per_element,
            self.label_offset,
            self.offset_data,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&self.maxlevel.to_le_bytes());
        out.extend_from_slice(&self.enterpoint_node.to_le_bytes());
        for v in [self.max_m, self.max_m0, self.m] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&self.mult.to_le_bytes());
        out.extend_from_slice(&self.ef_construction.to_le_bytes());
        let mut arr = [0u8; HEADER_SIZE];
        arr.copy_from_slice(&out);
        arr
    }

    /// Checks every field for internal consistency and against `dim`.
    fn validate(&self, dim: usize) -> Result<(), HnswError> {
        let bad = |field: &str, detail: String| Err(HnswError::corrupt(HEADER_FILE, field, detail));
        if self.version != PERSISTENCE_VERSION {
            return bad("persistence_version", format!("expected {PERSISTENCE_VERSION}, found {}", self.version));
        }
        if self.offset_level0 != 0 {
            return bad("offset_level0", format!("expected 0, found {}", self.offset_level0));
        }
        for (name, v) in [("max_m0", self.max_m0), ("max_m", self.max_m), ("m", self.m)] {
            if v == 0 || v > MAX_LINKS {
                return bad(name, format!("{v} is outside 1..={MAX_LINKS}"));
            }
        }
        let links0 = (self.max_m0 + 1) * 4;
        if self.offset_data != links0 {
            return bad("offset_data", format!("expected (max_m0 + 1) * 4 = {links0}, found {}", self.offset_data));
        }
        if self.label_offset < self.offset_data || !(self.label_offset - self.offset_data).is_multiple_of(4) {
            return bad("label_offset", format!("{} is not offset_data plus a whole number of f32", self.label_offset));
        }
        let file_dim = (self.label_offset - self.offset_data) / 4;
        if file_dim != dim as u64 {
            let got = usize::try_from(file_dim).unwrap_or(usize::MAX);
            return Err(HnswError::DimensionMismatch { expected: dim, got });
        }
        // `dim` comes from the catalog, which can be damaged too: a huge one makes this overflow.
        if self.label_offset.checked_add(8) != Some(self.size_data_per_element) {
            return bad(
                "size_data_per_element",
                format!("expected label_offset {} + 8, found {}", self.label_offset, self.size_data_per_element),
            );
        }
        if self.max_elements > u64::from(u32::MAX) {
            return bad("max_elements", format!("{} exceeds 2^32 - 1", self.max_elements));
        }
        if self.cur_element_count > self.max_elements {
            return bad(
                "cur_element_count",
                format!("{} exceeds max_elements {}", self.cur_element_count, self.max_elements),
            );
        }
        if !(self.mult.is_finite() && self.mult > 0.0) {
            return bad("mult", format!("{} is not a positive finite number", self.mult));
        }
        if self.ef_construction == 0 || self.ef_construction > MAX_EF {
            return bad("ef_construction", format!("{} is outside 1..={MAX_EF}", self.ef_construction));
        }
        if self.cur_element_count > 0 {
            if self.maxlevel < 0 || self.maxlevel as usize > MAX_LEVEL {
                return bad("maxlevel", format!("{} is outside 0..={MAX_LEVEL}", self.maxlevel));
            }
            if u64::from(self.enterpoint_node) >= self.cur_element_count {
                return bad(
                    "enterpoint_node",
                    format!("{} is not below cur_element_count {}", self.enterpoint_node, self.cur_element_count),
                );
            }
        }
        Ok(())
    }
}

fn open_with_len(path: &Path) -> Result<(File, u64), HnswError> {
    let f = File::open(path).map_err(|e| HnswError::io(path, e))?;
    let len = f.metadata().map_err(|e| HnswError::io(path, e))?.len();
    Ok((f, len))
}

/// Reads exactly `n` bytes from the start of `f` after `n` was checked
/// against the file length.
fn read_prefix(f: File, n: u64, path: &Path) -> Result<Vec<u8>, HnswError> {
    let mut buf = Vec::with_capacity(n as usize);
    f.take(n).read_to_end(&mut buf).map_err(|e| HnswError::io(path, e))?;
    if buf.len() as u64 != n {
        return Err(HnswError::corrupt(
            &path.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default(),
            "file_length",
            format!("file shrank while reading: expected {n} bytes, read {}", buf.len()),
        ));
    }
    Ok(buf)
}

fn need(file: &str, have: u64, needed: Option<u64>, what: &str) -> Result<u64, HnswError> {
    match needed {
        Some(n) if n <= have => Ok(n),
        Some(n) => {
            Err(HnswError::corrupt(file, "file_length", format!("{what} needs {n} bytes but the file has {have}")))
        }
        None => Err(HnswError::corrupt(file, "file_length", format!("{what} overflows a 64-bit size"))),
    }
}

impl Index {
    /// Loads an index from the four files in `dir`, written by Chroma
    /// (chromadb 1.x) or by [`Index::save`]. Every size and offset is checked
    /// against the header and the file lengths before anything is read;
    /// damaged files give [`HnswError::Corrupt`] naming the file and field.
    pub fn load(dir: &Path, dim: usize, space: Space, ef_search: usize) -> Result<Index, HnswError> {
        // header.bin
        let hp = dir.join(HEADER_FILE);
        let (hf, hlen) = open_with_len(&hp)?;
        if hlen != HEADER_SIZE as u64 {
            return Err(HnswError::corrupt(
                HEADER_FILE,
                "file_length",
                format!("expected {HEADER_SIZE} bytes, found {hlen}"),
            ));
        }
        let header = Header::parse(&read_prefix(hf, HEADER_SIZE as u64, &hp)?)?;
        header.validate(dim)?;
        let count = header.cur_element_count;
        let rec = header.size_data_per_element;

        // data_level0.bin: at least `count` records (Chroma's file may be
        // longer: it is written at capacity when the index is created).
        let dp = dir.join(DATA_LEVEL0_FILE);
        let (df, dlen) = open_with_len(&dp)?;
        need(DATA_LEVEL0_FILE, dlen, count.checked_mul(rec), "cur_element_count records")?;
        let level0 = Records::File { file: df, path: dp.clone() };

        // length.bin
        let lp = dir.join(LENGTH_FILE);
        let (lf, llen) = open_with_len(&lp)?;
        let lneed = need(LENGTH_FILE, llen, count.checked_mul(4), "cur_element_count lengths")?;
        let length_bytes = read_prefix(lf, lneed, &lp)?;

        // link_lists.bin: exactly one length-prefixed block per element.
        let kp = dir.join(LINK_LISTS_FILE);
        let (kf, klen) = open_with_len(&kp)?;
        // Every element takes at least 4 bytes.
        need(LINK_LISTS_FILE, klen, count.checked_mul(4), "cur_element_count size prefixes")?;
        let links = read_prefix(kf, klen, &kp)?;

        build_index(&header, level0, &length_bytes, &links, dim, space, ef_search)
    }

    /// Decodes an index from the content of the four files held in memory
    /// (e.g. read from a blob store), with the same checks as
    /// [`Index::load`]: `data_level0` and `length` may be longer than needed
    /// (Chroma writes them at capacity), `link_lists` must be exact.
    pub fn from_bytes(
        header: &[u8],
        data_level0: &[u8],
        length: &[u8],
        link_lists: &[u8],
        dim: usize,
        space: Space,
        ef_search: usize,
    ) -> Result<Index, HnswError> {
        let h = Header::parse(header)?;
        h.validate(dim)?;
        let count = h.cur_element_count;
        let dneed = need(
            DATA_LEVEL0_FILE,
            data_level0.len() as u64,
            count.checked_mul(h.size_data_per_element),
            "cur_element_count records",
        )?;
        let lneed = need(LENGTH_FILE, length.len() as u64, count.checked_mul(4), "cur_element_count lengths")?;
        need(LINK_LISTS_FILE, link_lists.len() as u64, count.checked_mul(4), "cur_element_count size prefixes")?;
        build_index(
            &h,
            Records::Slice(&data_level0[..dneed as usize]),
            &length[..lneed as usize],
            link_lists,
            dim,
            space,
            ef_search,
        )
    }

    /// The header this index would write.
    #[must_use]
    pub fn header(&self) -> Header {
        let entry = self.entry.load(Ordering::Acquire);
        let (ep, maxlevel) = if entry == u64::MAX { (u32::MAX, -1) } else { (entry as u32, (entry >> 32) as i32) };
        let offset_data = ((self.max_m0 + 1) * 4) as u64;
        let label_offset = offset_data + (self.dim * 4) as u64;
        Header {
            version: PERSISTENCE_VERSION,
            offset_level0: 0,
            max_elements: self.capacity.max(self.labels.len()) as u64,
            cur_element_count: self.labels.len() as u64,
            size_data_per_element: label_offset + 8,
            label_offset,
            offset_data,
            maxlevel,
            enterpoint_node: ep,
            max_m: self.max_m as u64,
            max_m0: self.max_m0 as u64,
            m: self.m as u64,
            mult: self.mult,
            ef_construction: self.ef_construction as u64,
        }
    }

    /// Writes the four files into `dir` (created if missing), crash-safely:
    /// each file is written under a temporary name beside the old one and
    /// fsynced; then the data files are renamed over the old ones, the header
    /// last, and the directory is fsynced. A crash leaves each file either old
    /// or new; a crash between the renames leaves a mix that [`Index::load`]
    /// rejects as `Corrupt` unless the mix is consistent.
    pub fn save(&self, dir: &Path) -> Result<(), HnswError> {
        std::fs::create_dir_all(dir).map_err(|e| HnswError::io(dir, e))?;
        let header = self.header();
        let n = self.labels.len();
        let tmp = |name: &str| dir.join(format!("{name}.chromalite-tmp"));

        debug_assert_eq!(self.level0.len(), n * self.stride);
        // The records in memory are the file's records.
        write_file(&tmp(DATA_LEVEL0_FILE), |w| write_words(w, &self.level0))?;
        write_file(&tmp(LENGTH_FILE), |w| {
            for x in &self.lengths {
                w.write_all(&x.to_le_bytes())?;
            }
            Ok(())
        })?;
        write_file(&tmp(LINK_LISTS_FILE), |w| {
            for u in &self.upper {
                w.write_all(&((u.len() * 4) as u32).to_le_bytes())?;
                for word in u {
                    w.write_all(&word.load(Ordering::Relaxed).to_le_bytes())?;
                }
            }
            Ok(())
        })?;
        write_file(&tmp(HEADER_FILE), |w| w.write_all(&header.to_bytes()))?;
        for name in [DATA_LEVEL0_FILE, LENGTH_FILE, LINK_LISTS_FILE, HEADER_FILE] {
            let to = dir.join(name);
            std::fs::rename(tmp(name), &to).map_err(|e| HnswError::io(to, e))?;
        }
        sync_dir(dir)
    }
}

/// Writes words little-endian, converted a block at a time.
fn write_words(w: &mut impl Write, words: &[AtomicU32]) -> std::io::Result<()> {
    const BLOCK: usize = 1 << 14;
    let mut buf = vec![0u8; BLOCK * 4];
    for chunk in words.chunks(BLOCK) {
        for (b, x) in buf.chunks_exact_mut(4).zip(chunk) {
            b.copy_from_slice(&x.load(Ordering::Relaxed).to_le_bytes());
        }
        w.write_all(&buf[..chunk.len() * 4])?;
    }
    Ok(())
}

/// The bytes of `words`, for filling them from a file in one read.
fn words_as_bytes_mut(words: &mut [AtomicU32]) -> &mut [u8] {
    // SAFETY: the pointer and length cover exactly the memory of `words` (`size_of_val`), `u8`
    // needs no alignment, and the exclusive borrow (whose lifetime the result takes) means
    // nothing else reads or writes the words meanwhile. Every byte pattern is a valid `u8` and,
    // four at a time, a valid `AtomicU32`, so whatever is written through the result leaves valid
    // words behind.
    unsafe { std::slice::from_raw_parts_mut(words.as_mut_ptr().cast::<u8>(), std::mem::size_of_val(words)) }
}

// `zeroed_words` turns a `Vec<u32>` into a `Vec<AtomicU32>`: same size and alignment required.
const _: () = assert!(
    std::mem::size_of::<u32>() == std::mem::size_of::<AtomicU32>()
        && std::mem::align_of::<u32>() == std::mem::align_of::<AtomicU32>()
);

/// `len` zero words, in memory that has not been touched yet.
///
/// Opening a large segment is mostly the kernel faulting in the pages of this buffer one 4 KiB page
/// at a time (25,000 faults for a 100 MB segment cost more than copying the file). `vec![0; n]`
/// gets fresh zero pages from `calloc` without writing them, so the buffer can still be marked
/// for transparent huge pages before the file is read into it, and then faults in 2 MiB at a time.
fn zeroed_words(len: usize) -> Vec<AtomicU32> {
    let words = vec![0u32; len];
    advise_huge_pages(&words);
    let mut words = std::mem::ManuallyDrop::new(words);
    let (ptr, len, cap) = (words.as_mut_ptr(), words.len(), words.capacity());
    // SAFETY: the allocation came from the global allocator through a `Vec<u32>` whose ownership
    // `ManuallyDrop` hands over without freeing it; `AtomicU32` has the size and alignment of
    // `u32` (checked at compile time above), so the allocation's layout is the one a
    // `Vec<AtomicU32>` of capacity `cap` deallocates with; the first `len` elements are
    // initialised zeros, a valid `AtomicU32`.
    unsafe { Vec::from_raw_parts(ptr.cast::<AtomicU32>(), len, cap) }
}

/// Asks the kernel to back the whole 2 MiB pages inside `buf` with transparent huge pages.
#[cfg(target_os = "linux")]
fn advise_huge_pages(buf: &[u32]) {
    const HUGE: usize = 2 << 20;
    let start = buf.as_ptr() as usize;
    let end = start + std::mem::size_of_val(buf);
    let first = start.next_multiple_of(HUGE);
    let last = end - end % HUGE;
    if last > first {
        // SAFETY: the range [first, last) is 2 MiB-aligned and lies inside `buf`'s allocation,
        // which this process owns. MADV_HUGEPAGE is advice about how to back the pages: it does
        // not change their contents (zero, or whatever the program wrote) or their mapping, so no
        // Rust-visible memory changes. Failure (THP disabled) is harmless and ignored.
        unsafe {
            libc::madvise(first as *mut libc::c_void, last - first, libc::MADV_HUGEPAGE);
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn advise_huge_pages(_buf: &[u32]) {}

/// The `data_level0.bin` records (exactly `cur_element_count` of them), in memory or in the file.
enum Records<'a> {
    Slice(&'a [u8]),
    File { file: File, path: PathBuf },
}

impl Records<'_> {
    /// Copies the records into `out`, whose byte length the caller checked against the source.
    fn fill(self, out: &mut [AtomicU32]) -> Result<(), HnswError> {
        let bytes = words_as_bytes_mut(out);
        match self {
            Records::Slice(s) => bytes.copy_from_slice(&s[..bytes.len()]),
            Records::File { mut file, path } => {
                file.read_exact(bytes).map_err(|e| {
                    if e.kind() == std::io::ErrorKind::UnexpectedEof {
                        HnswError::corrupt(DATA_LEVEL0_FILE, "file_length", "file shrank while reading it")
                    } else {
                        HnswError::io(path, e)
                    }
                })?;
            }
        }
        if cfg!(target_endian = "big") {
            for w in out.iter_mut() {
                *w.get_mut() = u32::from_le(*w.get_mut());
            }
        }
        Ok(())
    }
}

fn build_index(
    header: &Header,
    level0: Records<'_>,
    length_bytes: &[u8],
    links: &[u8],
    dim: usize,
    space: Space,
    ef_search: usize,
) -> Result<Index, HnswError> {
    let mut index = Index::with_layout(
        dim,
        space,
        header.m as usize,
        header.max_m as usize,
        header.max_m0 as usize,
        header.ef_construction as usize,
        ef_search.max(1),
        header.mult,
        header.max_elements as usize,
        header.cur_element_count,
    );
    decode_elements(&mut index, header, level0, length_bytes, links)?;
    // Level 0 was checked while decoding.
    index.check_links(LINK_LISTS_FILE, 1)?;
    Ok(index)
}

/// Decodes the element records into `index` (created empty with the
/// header's layout), validating every link count, link id and label, and the
/// link-list sizes and levels, on the way.
fn decode_elements(
    index: &mut Index,
    header: &Header,
    level0: Records<'_>,
    length_bytes: &[u8],
    links: &[u8],
) -> Result<(), HnswError> {
    let n = header.cur_element_count as usize;
    // `stride * 4 == size_data_per_element` (validated header) and the caller checked
    // `n * size_data_per_element` against the file length, which bounds this allocation.
    debug_assert_eq!((index.stride * 4) as u64, header.size_data_per_element);
    let mut words = zeroed_words(n * index.stride);
    level0.fill(&mut words)?;
    index.labels.reserve_exact(n);
    index.lengths.reserve_exact(n);
    index.levels.reserve_exact(n);
    index.upper.reserve_exact(n);
    index.label_map.reserve(n);
    decode_level0(index, &mut words)?;
    index.level0 = words;
    index.lengths.extend(length_bytes[..n * 4].chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])));
    decode_upper(index, header, links)
}

/// Checks every level-0 record (link count, link ids, label) and registers its label.
fn decode_level0(index: &mut Index, words: &mut [AtomicU32]) -> Result<(), HnswError> {
    let (max_m0, stride) = (index.max_m0, index.stride);
    let n = words.len() / stride;
    let label_at = max_m0 + 1 + index.dim;
    for (i, rec) in words.chunks_exact_mut(stride).enumerate() {
        let head = *rec[0].get_mut();
        let count = (head & COUNT_MASK) as usize;
        if count > max_m0 {
            return Err(HnswError::corrupt(
                DATA_LEVEL0_FILE,
                "link_count",
                format!("element {i} level 0 has {count} links, more than the maximum {max_m0}"),
            ));
        }
        if let Some(bad) = rec[1..=count].iter_mut().map(|w| *w.get_mut()).find(|&nb| nb as usize >= n) {
            return Err(HnswError::corrupt(
                DATA_LEVEL0_FILE,
                "neighbor_id",
                format!("element {i} level 0 links to {bad}, which is not an element on that level"),
            ));
        }
        if head & DELETE_BIT != 0 {
            index.num_deleted += 1;
        }
        let label = u64::from(*rec[label_at].get_mut()) | (u64::from(*rec[label_at + 1].get_mut()) << 32);
        if index.label_map.insert(label, i as u32).is_some() {
            return Err(HnswError::corrupt(
                DATA_LEVEL0_FILE,
                "label",
                format!("label {label} appears twice (second time at element {i})"),
            ));
        }
        index.labels.push(label);
    }
    Ok(())
}

/// Reads every element's upper-layer lists from `link_lists.bin` (which must hold nothing else)
/// and sets the entry point, whose level must be the header's `maxlevel`.
fn decode_upper(index: &mut Index, header: &Header, links: &[u8]) -> Result<(), HnswError> {
    let n = index.labels.len();
    let per_level = (index.max_m + 1) * 4;
    let max_level = if n > 0 { header.maxlevel as usize } else { 0 };
    let mut pos = 0usize;
    for i in 0..n {
        let (upper, level) = read_upper_block(links, &mut pos, i, per_level, max_level)?;
        index.upper.push(upper);
        index.levels.push(level as u8);
    }
    if pos != links.len() {
        return Err(HnswError::corrupt(
            LINK_LISTS_FILE,
            "file_length",
            format!("{} bytes after the last element's link lists", links.len() - pos),
        ));
    }
    if n > 0 {
        // The header validation checked `enterpoint_node < cur_element_count`.
        let ep = header.enterpoint_node;
        let level = index.levels[ep as usize];
        if usize::from(level) != max_level {
            return Err(HnswError::corrupt(
                HEADER_FILE,
                "enterpoint_node",
                format!("entry point {ep} has level {level}, but maxlevel is {max_level}"),
            ));
        }
        index.entry.store(((max_level as u64) << 32) | u64::from(ep), Ordering::Release);
    }
    Ok(())
}

/// Reads element `i`'s block of `link_lists.bin` at `*pos`: a `u32` byte
/// count followed by `level` blocks of `max_m + 1` words.
fn read_upper_block(
    links: &[u8],
    pos: &mut usize,
    i: usize,
    per_level: usize,
    max_level: usize,
) -> Result<(Box<[AtomicU32]>, usize), HnswError> {
    let bad = |field: &str, detail: String| Err(HnswError::corrupt(LINK_LISTS_FILE, field, detail));
    let rest = &links[*pos..];
    if rest.len() < 4 {
        return bad("link_list_size", format!("file ends before the size of element {i}"));
    }
    let size = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
    if !size.is_multiple_of(per_level) {
        return bad(
            "link_list_size",
            format!("element {i}: {size} bytes is not a multiple of the per-level size {per_level}"),
        );
    }
    let level = size / per_level;
    if level > max_level {
        return bad("element_level", format!("element {i} has level {level}, above the header's maxlevel {max_level}"));
    }
    if rest.len() - 4 < size {
        return bad("link_list_size", format!("element {i} needs {size} bytes but only {} remain", rest.len() - 4));
    }
    let block = rest[4..4 + size]
        .chunks_exact(4)
        .map(|w| AtomicU32::new(u32::from_le_bytes([w[0], w[1], w[2], w[3]])))
        .collect();
    *pos += 4 + size;
    Ok((block, level))
}

/// Writes a file through a buffer and fsyncs it.
pub(crate) fn write_file(
    path: &Path,
    body: impl FnOnce(&mut BufWriter<&File>) -> std::io::Result<()>,
) -> Result<(), HnswError> {
    let f = File::create(path).map_err(|e| HnswError::io(path, e))?;
    {
        let mut w = BufWriter::with_capacity(1 << 20, &f);
        body(&mut w).map_err(|e| HnswError::io(path, e))?;
        w.flush().map_err(|e| HnswError::io(path, e))?;
    }
    f.sync_all().map_err(|e| HnswError::io(path, e))
}

/// fsyncs a directory so that renames inside it are durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), HnswError> {
    #[cfg(unix)]
    {
        let d = File::open(dir).map_err(|e| HnswError::io(dir, e))?;
        d.sync_all().map_err(|e| HnswError::io(dir, e))?;
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
    }
    Ok(())
}

/// Writes `bytes` to `path` atomically (temp file, fsync, rename, fsync dir).
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), HnswError> {
    let dir: PathBuf = path.parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let name = path.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!("{name}.chromalite-tmp"));
    write_file(&tmp, |w| w.write_all(bytes))?;
    std::fs::rename(&tmp, path).map_err(|e| HnswError::io(path, e))?;
    sync_dir(&dir)
}
