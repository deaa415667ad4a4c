//! Mutation test of the loader: byte flips, truncations, extensions, zeroed
//! and random files over a real saved index. No mutation may panic; each
//! either loads (and then searches, inserts and saves without panicking) or
//! fails with a typed error naming a file and field. Bounded to a few seconds.

use std::fmt::Write as _;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::time::{Duration, Instant};

use chromalite_hnsw::{HnswError, Index, Params, Space, DATA_LEVEL0_FILE, HEADER_FILE, LENGTH_FILE, LINK_LISTS_FILE};

const FILES: [&str; 4] = [HEADER_FILE, DATA_LEVEL0_FILE, LENGTH_FILE, LINK_LISTS_FILE];
const DIM: usize = 6;
const BUDGET: Duration = Duration::from_secs(5);

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

fn build_original(dir: &Path) -> Vec<Vec<u8>> {
    // Small M gives many upper-level elements, so link_lists.bin has content.
    let mut idx = Index::new(DIM, Space::Cosine, Params { m: 4, ef_construction: 20, ..Params::default() });
    let mut r = Rng(0x9E37_79B9_7F4A_7C15);
    let items: Vec<(u64, Vec<f32>)> =
        (0..120).map(|i| (i + 1, (0..DIM).map(|_| (r.below(2000) as f32) / 1000.0 - 1.0).collect())).collect();
    idx.insert_batch(&items).unwrap();
    idx.mark_deleted(7).unwrap();
    idx.save(dir).unwrap();
    FILES.iter().map(|f| std::fs::read(dir.join(f)).unwrap()).collect()
}

#[derive(Default, Debug)]
struct Tally {
    loaded: usize,
    corrupt: usize,
    dim: usize,
    other: usize,
}

/// Writes `files` into `dir`, loads, and exercises a successful load.
fn check(dir: &Path, files: &[Vec<u8>], what: &str, tally: &mut Tally) {
    for (name, bytes) in FILES.iter().zip(files) {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
    let outcome = catch_unwind(AssertUnwindSafe(|| -> Result<Option<HnswError>, String> {
        match Index::load(dir, DIM, Space::Cosine, 10) {
            Ok(mut idx) => {
                let q = vec![0.5; DIM];
                let _ = idx.search(&q, 5, None).unwrap();
                let odd = |l: u64| l % 2 == 1;
                let _ = idx.search(&q, 5, Some(&odd)).unwrap();
                idx.insert(10_000, &q).unwrap();
                idx.insert(3, &[0.1; DIM]).unwrap();
                let _ = idx.mark_deleted(5);
                let out = tempfile::tempdir().unwrap();
                idx.save(out.path()).unwrap();
                Index::load(out.path(), DIM, Space::Cosine, 10)
                    .map(|_| ())
                    .map_err(|e| format!("re-load failed: {e}"))?;
                Ok(None)
            }
            Err(e) => Ok(Some(e)),
        }
    }));
    match outcome {
        Err(payload) => panic!("PANIC on mutation: {what}: {:?}", payload.downcast_ref::<String>()),
        Ok(Err(msg)) => panic!("mutation {what}: {msg}"),
        Ok(Ok(None)) => tally.loaded += 1,
        Ok(Ok(Some(HnswError::Corrupt { file, field, .. }))) => {
            assert!(FILES.contains(&file.as_str()), "{what}: unknown file {file}");
            assert!(!field.is_empty(), "{what}: empty field");
            tally.corrupt += 1;
        }
        Ok(Ok(Some(HnswError::DimensionMismatch { .. }))) => tally.dim += 1,
        Ok(Ok(Some(e))) => {
            assert!(e.kind() != "Io" || !e.to_string().is_empty());
            tally.other += 1;
        }
    }
}

#[test]
fn loader_survives_mutations() {
    let start = Instant::now();
    let orig_dir = tempfile::tempdir().unwrap();
    let original = build_original(orig_dir.path());
    let dir = tempfile::tempdir().unwrap();
    let mut tally = Tally::default();
    let mut r = Rng(12345);

    // The pristine files load.
    check(dir.path(), &original, "pristine", &mut tally);
    assert_eq!(tally.loaded, 1);

    // Deterministic cases: each file empty, zeroed, random, truncated by one,
    // and extended by one, and the header with every 8-byte-aligned word set
    // to extreme values.
    for f in 0..4 {
        let len = original[f].len();
        let variants: Vec<(String, Vec<u8>)> = vec![
            ("empty".into(), Vec::new()),
            ("zeroed".into(), vec![0; len]),
            ("random".into(), r.bytes(len)),
            ("minus one".into(), original[f][..len.saturating_sub(1)].to_vec()),
            ("plus one".into(), [original[f].clone(), vec![0]].concat()),
            ("half".into(), original[f][..len / 2].to_vec()),
        ];
        for (name, bytes) in variants {
            let mut files = original.clone();
            files[f] = bytes;
            check(dir.path(), &files, &format!("{} {name}", FILES[f]), &mut tally);
        }
    }
    for off in (0..original[0].len()).step_by(4) {
        for val in [0u8, 0xFF, 0x7F, 0x80] {
            let mut files = original.clone();
            let end = (off + 8).min(files[0].len());
            for b in &mut files[0][off..end] {
                *b = val;
            }
            check(dir.path(), &files, &format!("header word at {off} = {val:#x}"), &mut tally);
        }
    }
    // All four files zeroed / random at once.
    check(dir.path(), &original.iter().map(|f| vec![0; f.len()]).collect::<Vec<_>>(), "all zeroed", &mut tally);
    let all_random: Vec<Vec<u8>> = original.iter().map(|f| r.bytes(f.len())).collect();
    check(dir.path(), &all_random, "all random", &mut tally);

    // Random mutations until the budget is used up (at least 2000).
    let mut n = 0;
    while n < 2000 || (start.elapsed() < BUDGET && n < 20_000) {
        if start.elapsed() > BUDGET * 2 {
            break;
        }
        let mut files = original.clone();
        let f = r.below(4);
        let what = match r.below(5) {
            0 | 1 => {
                // Flip 1-4 random bits.
                let mut desc = format!("{}: flips", FILES[f]);
                for _ in 0..=r.below(4) {
                    if files[f].is_empty() {
                        break;
                    }
                    let pos = r.below(files[f].len());
                    let bit = r.below(8);
                    files[f][pos] ^= 1 << bit;
                    let _ = write!(desc, " {pos}.{bit}");
                }
                desc
            }
            2 => {
                let cut = r.below(files[f].len() + 1);
                files[f].truncate(cut);
                format!("{}: truncate to {cut}", FILES[f])
            }
            3 => {
                // Overwrite a random run with random bytes.
                let len = files[f].len();
                let pos = r.below(len);
                let run = 1 + r.below(16);
                let end = (pos + run).min(len);
                let fill = r.bytes(end - pos);
                files[f][pos..end].copy_from_slice(&fill);
                format!("{}: random run {pos}..{end}", FILES[f])
            }
            _ => {
                // Append garbage.
                let extra_len = 1 + r.below(64);
                let extra = r.bytes(extra_len);
                files[f].extend_from_slice(&extra);
                format!("{}: append {}", FILES[f], extra.len())
            }
        };
        check(dir.path(), &files, &what, &mut tally);
        n += 1;
    }
    println!("{n} random mutations in {:?}: {tally:?}", start.elapsed());
    assert!(tally.corrupt > 100, "{tally:?}");
}
