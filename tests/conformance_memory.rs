//! The conformance suite on the in-memory backend.

mod conformance;

#[test]
fn memory_backend_matches_chromadb() {
    conformance::run_all("memory", &|_dir| Box::new(chromalite_memory::MemoryBackend::new()));
}
