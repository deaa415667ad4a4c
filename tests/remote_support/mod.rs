//! A real `chroma run` (chromadb 1.5.9 from `CHROMALITE_PYTHON`'s venv) for the remote-backend
//! tests: on a free 127.0.0.1 port, in a temporary directory, stopped when the guard drops —
//! including when a test panics.

#![allow(dead_code)] // each test binary uses a different part

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chromalite_core::VectorBackend;
use chromalite_remote::{RemoteBackend, RemoteOptions};

const STARTUP: Duration = Duration::from_mins(1);

#[path = "../support/chroma_python.rs"]
mod chroma_python;

/// The venv's python (see `tests/support/chroma_python.rs`), or `None` after a SKIP line.
pub fn python_or_skip(test: &str) -> Option<PathBuf> {
    chroma_python::chroma_python(test)
}

/// A free port on 127.0.0.1 (the OS picks it; the listener is closed before the server binds).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("bind an ephemeral port").port()
}

/// Waits until `url` answers a heartbeat; panics with `log`'s tail after [`STARTUP`].
pub fn wait_for_heartbeat(url: &str, child: &mut Child, log: &Path) {
    let probe = RemoteBackend::with_options(
        &RemoteOptions::new(url).connect_timeout(Duration::from_millis(500)).read_timeout(Duration::from_secs(5)),
    )
    .expect("probe backend");
    let deadline = Instant::now() + STARTUP;
    while Instant::now() < deadline {
        if probe.heartbeat().is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("server at {url} exited early ({status}):\n{}", tail(log));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("server at {url} did not answer a heartbeat within {STARTUP:?}:\n{}", tail(log));
}

fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// Kills and reaps a child; errors mean it already exited.
fn stop(child: &mut Option<Child>) {
    if let Some(mut c) = child.take() {
        let _ = c.kill();
        let _ = c.wait();
    }
}

/// A running `chroma run`. Dropping it kills the server (the data directory goes with the guard).
pub struct ChromaServer {
    child: Option<Child>,
    port: u16,
    chroma: PathBuf,
    dir: tempfile::TempDir,
}

impl ChromaServer {
    /// Starts a server next to `python` (`$(dirname python)/chroma`) and waits for its heartbeat.
    pub fn start(python: &Path) -> ChromaServer {
        let chroma = python.parent().expect("python path has a directory").join("chroma");
        let mut server =
            ChromaServer { child: None, port: free_port(), chroma, dir: tempfile::tempdir().expect("tempdir") };
        server.spawn();
        server
    }

    // A config file rather than flags: `allow_reset` has no flag or environment variable, and
    // reset is the only way to give each conformance scenario a pristine server (see
    // `reset_backend`).
    fn spawn(&mut self) {
        let log_path = self.dir.path().join("server.log");
        let config = self.dir.path().join("chroma.yaml");
        let data = self.dir.path().join("data");
        let yaml = format!(
            "persist_path: {:?}\nallow_reset: true\nlisten_address: \"127.0.0.1\"\nport: {}\n",
            data.display().to_string(),
            self.port
        );
        std::fs::write(&config, yaml).expect("server config");
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&log_path).expect("server log");
        let mut child = Command::new(&self.chroma)
            .arg("run")
            .arg(&config)
            .env("ANONYMIZED_TELEMETRY", "False")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.chroma.display()));
        wait_for_heartbeat(&self.url(), &mut child, &log_path);
        self.child = Some(child);
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server abruptly (SIGKILL), keeping its data directory.
    pub fn kill(&mut self) {
        stop(&mut self.child);
    }

    /// Starts the server again on the same port and directory.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for ChromaServer {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

/// A token-checking reverse proxy (`tests/py/remote_auth_proxy.py`) in front of a server.
pub struct AuthProxy {
    child: Option<Child>,
    port: u16,
}

impl AuthProxy {
    /// Starts the proxy for `upstream`, accepting only `token`.
    pub fn start(python: &Path, upstream: &str, token: &str, log_dir: &Path) -> AuthProxy {
        let port = free_port();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/remote_auth_proxy.py");
        let log_path = log_dir.join(format!("auth-proxy-{port}.log"));
        let log = std::fs::File::create(&log_path).expect("proxy log");
        let mut child = Command::new(python)
            .arg(script)
            .args(["--port", &port.to_string(), "--upstream", upstream])
            // The token goes through the environment so it is not visible in `ps` output.
            .env("REMOTE_AUTH_PROXY_TOKEN", token)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .expect("start auth proxy");
        let url = format!("http://127.0.0.1:{port}");
        wait_for_heartbeat(&url, &mut child, &log_path);
        AuthProxy { child: Some(child), port }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for AuthProxy {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

/// A backend on a freshly reset server: the state each conformance scenario expects.
///
/// Deleting the collections is not enough: chromadb 1.5.9's `delete_collection` leaves the
/// records' rows in `embedding_metadata_array` behind, and the database reuses the freed
/// `embeddings.id` values, so records added later inherit stale array metadata.
pub fn reset_backend(url: &str) -> RemoteBackend {
    let backend = RemoteBackend::connect(url).expect("remote backend");
    backend.reset().expect("reset (the test server runs with allow_reset)");
    backend
}
