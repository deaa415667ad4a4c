//! Arbitrary bytes as `index_metadata.pickle`: decode must not panic.
#![no_main]

use chromalite_hnsw::pickle::SegmentMetadata;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(meta) = SegmentMetadata::from_bytes(data) {
        let bytes = meta.to_bytes().expect("re-encode");
        assert_eq!(SegmentMetadata::from_bytes(&bytes).expect("re-decode"), meta);
    }
});
