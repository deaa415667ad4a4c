//! The conformance suite on the remote backend, against a real chromadb 1.5.9 `chroma run`.
//!
//! One server serves every scenario; each scenario starts on a freshly reset server, as each of
//! chromadb's expectations was recorded on a fresh client.

mod conformance;
mod remote_support;

#[test]
fn remote_backend_matches_chromadb() {
    let Some(python) = remote_support::python_or_skip("remote_backend_matches_chromadb") else { return };
    let server = remote_support::ChromaServer::start(&python);
    let url = server.url();
    conformance::run_all("remote", &|_dir| Box::new(remote_support::reset_backend(&url)));
}
