//! The cross-backend conformance suite (tests/conformance at the workspace root) on this backend.
//! `fixtures` in this crate is a symlink to the workspace fixtures, which the suite reads
//! relative to the manifest directory.

#[path = "../../../tests/conformance/mod.rs"]
mod conformance;

#[test]
fn sqlite_backend_matches_chromadb() {
    conformance::run_all("sqlite", &|dir| {
        Box::new(chromalite_sqlite::SqliteBackend::open(dir).expect("open persist directory"))
    });
}
