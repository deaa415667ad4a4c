//! The token reaches the server in the chosen header and nowhere else: not in `Debug` output, not
//! in error messages (even when the server echoes it), not in any log record at any level.

mod canned;

use std::fmt::Write as _;
use std::sync::Mutex;

use canned::{Canned, Reply};
use chromalite_core::{DatabaseRef, VectorBackend};
use chromalite_remote::{AuthHeader, RemoteBackend, RemoteOptions};

const TOKEN: &str = "tok-3f9a-SECRET-never-print";

/// Collects every log record (ureq and r2d2 log through the `log` facade).
struct Capture(Mutex<String>);

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        let mut text = self.0.lock().expect("lock");
        let _ = writeln!(text, "{} {}: {}", record.level(), record.target(), record.args());
    }
    fn flush(&self) {}
}

static LOGS: Capture = Capture(Mutex::new(String::new()));

fn exercise(header: AuthHeader) -> String {
    // The server echoes the token back in its error message, as a careless proxy might.
    let echo = format!(r#"{{"error":"AuthError","message":"token {TOKEN} is not valid"}}"#);
    let server = Canned::start(Some(Reply::new("403 Forbidden", &echo)));
    let opts = RemoteOptions::new(&server.url).token(TOKEN).auth_header(header);
    let backend = RemoteBackend::with_options(&opts).expect("backend");
    let db = DatabaseRef::default();
    let mut seen = format!("{opts:?}\n{backend:?}\n");
    for _ in 0..2 {
        let err = backend.list_collections(&db, None, 0).expect_err("forbidden");
        assert_eq!(err.kind(), chromalite_core::ErrorKind::Unauthorized);
        let _ = writeln!(seen, "{err}\n{err:?}");
    }
    let requests = server.requests();
    let expected = match header {
        AuthHeader::XChromaToken => format!("x-chroma-token: {TOKEN}"),
        AuthHeader::Bearer => format!("authorization: Bearer {TOKEN}"),
    };
    assert!(
        requests.to_ascii_lowercase().contains(&expected.to_ascii_lowercase()),
        "token header not sent:\n{requests}"
    );
    seen
}

#[test]
fn token_never_leaks() {
    log::set_logger(&LOGS).expect("first logger");
    log::set_max_level(log::LevelFilter::Trace);
    let mut seen = exercise(AuthHeader::XChromaToken);
    seen.push_str(&exercise(AuthHeader::Bearer));
    let logs = LOGS.0.lock().expect("lock").clone();
    assert!(!logs.is_empty(), "the capture saw no log records at all");
    assert!(seen.contains("<redacted>"), "the echoed token should show as <redacted>:\n{seen}");
    assert!(!seen.contains(TOKEN), "token in Debug/error output:\n{seen}");
    assert!(!logs.contains(TOKEN), "token in logs:\n{logs}");
}
