//! Feeds arbitrary bytes to the HNSW loader as the four segment files.
//!
//! Input layout: byte 0 selects the dimension (1..=16) and the space, bytes
//! 1..9 hold three little-endian u16 split points; the rest is cut into
//! header.bin | data_level0.bin | length.bin | link_lists.bin at those points
//! (the header is padded/cut to 100 bytes on half of the inputs so the fuzzer
//! gets past the first length check quickly). The loader must return Ok or a
//! typed error, never panic; a loaded index must search, insert and save.
#![no_main]

use chromalite_hnsw::{Index, Space, HEADER_SIZE};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 7 {
        return;
    }
    let dim = usize::from(data[0] % 16) + 1;
    let space = match (data[0] >> 4) % 3 {
        0 => Space::L2,
        1 => Space::InnerProduct,
        _ => Space::Cosine,
    };
    let fix_header = data[0] & 0x80 != 0;
    let s1 = usize::from(u16::from_le_bytes([data[1], data[2]]));
    let s2 = usize::from(u16::from_le_bytes([data[3], data[4]]));
    let s3 = usize::from(u16::from_le_bytes([data[5], data[6]]));
    let rest = &data[7..];
    let mut cuts = [s1.min(rest.len()), s2.min(rest.len()), s3.min(rest.len())];
    cuts.sort_unstable();
    let mut header = rest[..cuts[0]].to_vec();
    if fix_header {
        header.resize(HEADER_SIZE, 0);
    }
    let level0 = &rest[cuts[0]..cuts[1]];
    let length = &rest[cuts[1]..cuts[2]];
    let links = &rest[cuts[2]..];
    if let Ok(mut index) = Index::from_bytes(&header, level0, length, links, dim, space, 10) {
        let q = vec![0.25f32; dim];
        let _ = index.search(&q, 3, None);
        let odd = |l: u64| l % 2 == 1;
        let _ = index.search(&q, 3, Some(&odd));
        let _ = index.insert(u64::MAX, &q);
        let _ = index.mark_deleted(1);
        let dir = std::env::temp_dir().join(format!("chromalite-fuzz-{}", std::process::id()));
        if index.save(&dir).is_ok() {
            Index::load(&dir, dim, space, 10).expect("an index we saved must load");
        }
    }
});
