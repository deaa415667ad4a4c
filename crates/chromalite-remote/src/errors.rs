//! Mapping HTTP statuses and transport failures to chromalite's error kinds.
//!
//! Status codes decide the kind (Chroma's Rust and Python servers agree on them); the server's
//! `{"error": ..., "message": ...}` body supplies the text, which is kept verbatim except that the
//! caller's token, should a server ever echo it, is cut out.

use std::io;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chromalite_core::Error;

/// What a request is about, so `404` and `409` become a typed `NotFound`/`AlreadyExists` naming it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Subject {
    Server,
    Tenant(String),
    Database(String),
    Collection(String),
}

impl Subject {
    fn parts(&self) -> (&'static str, &str) {
        match self {
            Subject::Server => ("resource", ""),
            Subject::Tenant(n) => ("tenant", n),
            Subject::Database(n) => ("database", n),
            Subject::Collection(n) => ("collection", n),
        }
    }
}

/// The longest server message kept in an error; HTML error pages from proxies can be huge.
const MAX_MESSAGE: usize = 500;

/// Builds the error for a non-2xx response.
pub(crate) fn from_status(
    status: u16,
    retry_after: Option<Duration>,
    body: &[u8],
    subject: &Subject,
    secret: Option<&str>,
) -> Error {
    let message = redact(&server_message(status, body), secret);
    match status {
        401 | 403 => Error::Unauthorized(message),
        404 => {
            let (what, name) = named_subject(&message, subject);
            Error::not_found(what, name)
        }
        409 => {
            let (what, name) = named_subject(&message, subject);
            Error::already_exists(what, name)
        }
        // chromadb's server reports a rename onto an existing name as a 500 carrying SQLite's
        // unique-constraint failure; chromadb's own client raises that as "already exists".
        500 if message.contains("UNIQUE constraint failed") => {
            let (what, name) = subject.parts();
            Error::already_exists(what, name)
        }
        // A query by ids that are not in the collection: chromadb's executor fails for good
        // (its Python client raises InternalError), retrying will not help.
        500 if message.contains("Error finding id") => Error::Internal(message),
        // The server refuses a collection op in a missing database as a bad argument; chromadb's
        // client reports the missing database (NotFound) before sending anything.
        400 if message.contains("Database [") && message.contains("does not exist") => {
            let (what, name) = named_subject(&message, subject);
            Error::not_found(what, name)
        }
        429 | 500..=599 => Error::Unavailable { message: format!("server answered {status}: {message}"), retry_after },
        400..=499 => dimension_mismatch(&message).unwrap_or(Error::InvalidArgument(message)),
        _ => Error::Internal(format!("unexpected HTTP status {status}: {message}")),
    }
}

/// What a 404/409 is about: Chroma's messages name it (`Tenant [t] not found`, `Collection [c]
/// already exists`), which is more precise than the request's subject (a missing tenant while
/// asking for a database); the subject is the fallback.
fn named_subject(message: &str, subject: &Subject) -> (&'static str, String) {
    let text = message.split_once(": ").map_or(message, |(_, m)| m);
    let what = match text.split_whitespace().next().map(str::to_ascii_lowercase).as_deref() {
        Some("tenant") => Some("tenant"),
        Some("database") => Some("database"),
        Some("collection") => Some("collection"),
        _ => None,
    };
    let bracketed = text.split_once('[').and_then(|(_, r)| r.split_once(']')).map(|(n, _)| n.to_owned());
    match (what, bracketed, subject.parts()) {
        (Some(w), Some(n), _) => (w, n),
        (_, _, (w, n)) if !n.is_empty() => (w, n.to_owned()),
        _ => ("resource", message.to_owned()),
    }
}

/// `ErrorName: message` from Chroma's JSON error body, or the body text itself.
fn server_message(status: u16, body: &[u8]) -> String {
    let parsed: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let field = |k: &str| parsed.as_ref().and_then(|v| v.get(k)).and_then(serde_json::Value::as_str).map(str::to_owned);
    let text = match (field("error"), field("message")) {
        (Some(e), Some(m)) => format!("{e}: {m}"),
        (None, Some(m)) => m,
        (Some(e), None) => e,
        (None, None) => String::from_utf8_lossy(body).trim().to_owned(),
    };
    let text = if text.is_empty() { format!("HTTP {status}") } else { text };
    truncate(text)
}

fn truncate(mut s: String) -> String {
    if s.len() > MAX_MESSAGE {
        let cut = (0..=MAX_MESSAGE).rev().find(|i| s.is_char_boundary(*i)).unwrap_or(0);
        s.truncate(cut);
        s.push_str("...");
    }
    s
}

fn redact(text: &str, secret: Option<&str>) -> String {
    match secret.filter(|s| !s.is_empty()) {
        Some(s) => text.replace(s, "<redacted>"),
        None => text.to_owned(),
    }
}

/// Chroma reports a wrong embedding length as a 400 "Collection expecting embedding with
/// dimension of N, got M"; that deserves its own kind.
fn dimension_mismatch(message: &str) -> Option<Error> {
    let lower = message.to_ascii_lowercase();
    let rest = &lower[lower.find("dimension of ")? + "dimension of ".len()..];
    let expected = leading_number(rest)?;
    let got = leading_number(&rest[rest.find("got ")? + 4..])?;
    Some(Error::DimensionMismatch { expected, got })
}

fn leading_number(s: &str) -> Option<usize> {
    let digits: String = s.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// Maps a failure below HTTP (connect, TLS, socket, timeout) to `Unavailable` or `Timeout`.
pub(crate) fn from_transport(err: &ureq::Error, base_url: &str) -> Error {
    use ureq::Timeout as T;
    let unavailable = |what: String| Error::Unavailable { message: format!("{base_url}: {what}"), retry_after: None };
    match err {
        ureq::Error::Timeout(T::Connect | T::Resolve) => unavailable("connect timed out".into()),
        ureq::Error::Timeout(t) => Error::Timeout(format!("{base_url}: no answer in time ({t})")),
        ureq::Error::Io(e) if matches!(e.kind(), io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock) => {
            Error::Timeout(format!("{base_url}: {e}"))
        }
        ureq::Error::Io(e) => unavailable(e.to_string()),
        ureq::Error::HostNotFound => unavailable("host not found".into()),
        ureq::Error::ConnectionFailed => unavailable("connection failed".into()),
        ureq::Error::BadUri(_) | ureq::Error::Http(_) | ureq::Error::InvalidProxyUrl => {
            Error::invalid(format!("{base_url}: bad request address: {err}"))
        }
        // TLS and protocol failures: the server cannot be talked to; message says why.
        other => unavailable(other.to_string()),
    }
}

/// Parses `Retry-After`: delta-seconds or an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`).
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = http_date_to_unix(value)?;
    let now = now.duration_since(UNIX_EPOCH).ok()?.as_secs();
    Some(Duration::from_secs(at.saturating_sub(now)))
}

fn http_date_to_unix(s: &str) -> Option<u64> {
    // "Sun, 06 Nov 1994 08:49:37 GMT"
    let mut parts = s.split_once(", ")?.1.split(' ');
    let day: u64 = parts.next()?.parse().ok()?;
    let month_name = parts.next()?;
    let month = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        .iter()
        .position(|m| *m == month_name)? as u64
        + 1;
    let year: u64 = parts.next()?.parse().ok()?;
    let mut hms = parts.next()?.split(':').map(str::parse::<u64>);
    let (h, m, sec) = (hms.next()?.ok()?, hms.next()?.ok()?, hms.next()?.ok()?);
    if parts.next()? != "GMT" || !(1..=31).contains(&day) || year < 1970 {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + h * 3600 + m * 60 + sec)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: u64, month: u64, day: u64) -> u64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use chromalite_core::ErrorKind;

    fn status(code: u16, body: &str) -> Error {
        from_status(code, None, body.as_bytes(), &Subject::Collection("docs".into()), Some("tok"))
    }

    #[test]
    fn statuses_map_to_kinds() {
        assert_eq!(
            status(404, r#"{"error":"NotFoundError","message":"Collection [docs] does not exist"}"#).kind(),
            ErrorKind::NotFound
        );
        let tenant = status(404, r#"{"error":"NotFoundError","message":"Tenant [acme] not found"}"#);
        assert!(matches!(&tenant, Error::NotFound { what: "tenant", name } if name == "acme"), "{tenant:?}");
        let plain = from_status(404, None, b"no such page", &Subject::Server, None);
        assert_eq!(plain.kind(), ErrorKind::NotFound);
        assert_eq!(status(409, r#"{"error":"ChromaError","message":"exists"}"#).kind(), ErrorKind::AlreadyExists);
        assert_eq!(
            status(400, r#"{"error":"InvalidArgumentError","message":"Invalid where clause"}"#).kind(),
            ErrorKind::InvalidArgument
        );
        assert_eq!(status(422, "unprocessable").kind(), ErrorKind::InvalidArgument);
        assert_eq!(status(401, "").kind(), ErrorKind::Unauthorized);
        assert_eq!(status(403, r#"{"error":"AuthError","message":"Forbidden"}"#).kind(), ErrorKind::Unauthorized);
        assert_eq!(status(429, "slow down").kind(), ErrorKind::Unavailable);
        assert_eq!(status(503, "<html>").kind(), ErrorKind::Unavailable);
        let unique = r#"{"error":"InternalError","message":"(code: 2067) UNIQUE constraint failed: collections.name"}"#;
        assert_eq!(status(500, unique).kind(), ErrorKind::AlreadyExists);
    }

    #[test]
    fn server_message_is_kept_and_token_cut() {
        let e = status(400, r#"{"error":"InvalidArgumentError","message":"bad tok value"}"#);
        assert_eq!(e.to_string(), "invalid argument: InvalidArgumentError: bad <redacted> value");
    }

    #[test]
    fn dimension_message_becomes_dimension_mismatch() {
        let e = status(
            400,
            r#"{"error":"InvalidArgumentError","message":"Collection expecting embedding with dimension of 3, got 2"}"#,
        );
        assert!(matches!(e, Error::DimensionMismatch { expected: 3, got: 2 }), "{e:?}");
    }

    #[test]
    fn retry_after_forms() {
        let now = UNIX_EPOCH + Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:49:47 GMT", now), Some(Duration::from_secs(10)));
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:49:00 GMT", now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
        let e = from_status(503, Some(Duration::from_secs(3)), b"busy", &Subject::Server, None);
        assert!(matches!(e, Error::Unavailable { retry_after: Some(d), .. } if d == Duration::from_secs(3)));
    }

    #[test]
    fn long_bodies_are_truncated() {
        let e = status(400, &"é".repeat(1000));
        assert!(e.to_string().len() < MAX_MESSAGE + 40);
    }
}
