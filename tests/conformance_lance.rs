//! The conformance suite on the `LanceDB` backend (cargo feature `lance`).
#![cfg(feature = "lance")]

mod conformance;

#[test]
fn lance_backend_matches_chromadb() {
    conformance::run_all("lance", &|dir| {
        Box::new(chromalite_lance::LanceBackend::open(dir).expect("open lance store"))
    });
}
