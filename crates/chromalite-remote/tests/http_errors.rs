//! Error mapping against scripted HTTP answers and dead or hung servers.

mod canned;

use std::time::Duration;

use canned::{Canned, Reply};
use chromalite_core::{DatabaseRef, Error, ErrorKind, VectorBackend};
use chromalite_remote::{RemoteBackend, RemoteOptions};

fn backend(url: &str) -> RemoteBackend {
    let opts =
        RemoteOptions::new(url).connect_timeout(Duration::from_millis(500)).read_timeout(Duration::from_millis(500));
    RemoteBackend::with_options(&opts).expect("backend")
}

fn list_error(reply: Reply) -> Error {
    let server = Canned::start(Some(reply));
    backend(&server.url).list_collections(&DatabaseRef::default(), None, 0).expect_err("scripted failure")
}

#[test]
fn unavailable_honours_retry_after_seconds() {
    let err = list_error(
        Reply::new("503 Service Unavailable", r#"{"error":"Overloaded","message":"try later"}"#)
            .header("Retry-After", "7"),
    );
    match err {
        Error::Unavailable { message, retry_after } => {
            assert_eq!(retry_after, Some(Duration::from_secs(7)));
            assert!(message.contains("Overloaded: try later"), "{message}");
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

#[test]
fn too_many_requests_is_unavailable_with_http_date_retry_after() {
    let err = list_error(
        Reply::new("429 Too Many Requests", "slow down").header("Retry-After", "Fri, 31 Dec 9999 23:59:59 GMT"),
    );
    assert!(matches!(err, Error::Unavailable { retry_after: Some(d), .. } if d > Duration::from_hours(1)), "{err:?}");
}

#[test]
fn client_errors_keep_the_server_message() {
    let err = list_error(Reply::new(
        "400 Bad Request",
        r#"{"error":"InvalidArgumentError","message":"Invalid where clause"}"#,
    ));
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert!(err.to_string().contains("Invalid where clause"), "{err}");
    assert_eq!(list_error(Reply::new("401 Unauthorized", "")).kind(), ErrorKind::Unauthorized);
    assert_eq!(list_error(Reply::new("500 Internal Server Error", "boom")).kind(), ErrorKind::Unavailable);
}

#[test]
fn connection_refused_is_unavailable() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("port").port();
    let err = backend(&format!("http://127.0.0.1:{port}")).heartbeat().expect_err("nothing listens");
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(err.kind().is_transient());
}

#[test]
fn a_hung_server_times_out() {
    let server = Canned::start(None);
    let started = std::time::Instant::now();
    let err = backend(&server.url).count_collections(&DatabaseRef::default()).expect_err("no answer");
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn tls_to_a_plain_http_server_fails_as_unavailable() {
    let server = Canned::start(Some(Reply::new("200 OK", "[]")));
    let err = backend(&server.url.replace("http://", "https://")).heartbeat().expect_err("not TLS");
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
}

#[test]
fn bad_urls_are_invalid_arguments() {
    assert_eq!(RemoteBackend::connect("localhost:8000").expect_err("no scheme").kind(), ErrorKind::InvalidArgument);
}
