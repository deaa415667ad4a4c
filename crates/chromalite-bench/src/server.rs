//! A local `chroma run` (from the venv that holds chromadb) for the remote-backend row.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running server; dropping it kills the process.
pub struct LocalChroma {
    child: Child,
    pub url: String,
}

impl LocalChroma {
    /// Starts `$(dirname python)/chroma run` on a free loopback port with its data in `dir`, and
    /// waits (up to a minute) for its heartbeat.
    pub fn start(python: &Path, dir: &Path) -> Result<LocalChroma, String> {
        let chroma: PathBuf = python.parent().ok_or("python path has no directory")?.join("chroma");
        let port =
            std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map_err(|e| e.to_string())?.port();
        let child = Command::new(&chroma)
            .args(["run", "--host", "127.0.0.1", "--port", &port.to_string(), "--path"])
            .arg(dir)
            .env("ANONYMIZED_TELEMETRY", "False")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", chroma.display()))?;
        let server = LocalChroma { child, url: format!("http://127.0.0.1:{port}") };
        let deadline = Instant::now() + Duration::from_mins(1);
        while Instant::now() < deadline {
            if chromalite::Client::remote(&server.url).and_then(|c| c.heartbeat()).is_ok() {
                return Ok(server);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Err(format!("chroma run on port {port} did not answer its heartbeat within 60 s"))
    }
}

impl Drop for LocalChroma {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
