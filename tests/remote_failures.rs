//! The remote backend against a real chromadb 1.5.9 server going away, coming back, and
//! refusing a wrong token; plus tenants, databases and the `Client::remote` facade.

mod remote_support;

use std::time::{Duration, Instant};

use chromalite::Client;
use chromalite_core::{CreateCollection, DatabaseRef, Error, ErrorKind, RecordBatch, VectorBackend};
use chromalite_remote::{AuthHeader, RemoteBackend, RemoteOptions};
use remote_support::{AuthProxy, ChromaServer};

fn quick(url: &str) -> RemoteOptions {
    RemoteOptions::new(url).connect_timeout(Duration::from_secs(1)).read_timeout(Duration::from_secs(20))
}

fn batch(ids: &[&str]) -> RecordBatch {
    let mut b = RecordBatch::new(ids.iter().copied());
    b.embeddings = Some(ids.iter().enumerate().map(|(i, _)| vec![i as f32, 1.0]).collect());
    b
}

fn create(b: &dyn VectorBackend, name: &str) -> chromalite_core::Result<chromalite_core::CollectionInfo> {
    b.create_collection(&DatabaseRef::default(), &CreateCollection { name: name.into(), ..Default::default() })
}

#[test]
fn server_killed_then_restarted_same_client_recovers() {
    let Some(python) = remote_support::python_or_skip("server_killed_then_restarted_same_client_recovers") else {
        return;
    };
    let mut server = ChromaServer::start(&python);
    let backend = RemoteBackend::with_options(&quick(&server.url())).expect("backend");
    let col = create(&backend, "survivor").expect("create");
    backend.add(&col, &batch(&["a", "b", "c"])).expect("add");
    assert_eq!(backend.count(&col).expect("count"), 3);

    server.kill();
    let started = Instant::now();
    for outcome in [backend.count(&col).map(drop), backend.heartbeat().map(drop), backend.add(&col, &batch(&["d"]))] {
        let err = outcome.expect_err("server is down");
        assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
        assert!(matches!(err, Error::Unavailable { retry_after: None, .. }));
    }
    assert!(started.elapsed() < Duration::from_secs(5), "failing fast took {:?}", started.elapsed());

    server.restart();
    assert_eq!(backend.count(&col).expect("count after restart"), 3, "data survived and the same client works");
    backend.add(&col, &batch(&["d"])).expect("add after restart");
    assert_eq!(backend.count(&col).expect("count"), 4);
}

#[test]
fn wrong_or_missing_token_is_unauthorized() {
    let Some(python) = remote_support::python_or_skip("wrong_or_missing_token_is_unauthorized") else { return };
    let server = ChromaServer::start(&python);
    let logs = tempfile::tempdir().expect("tempdir");
    let proxy = AuthProxy::start(&python, &server.url(), "right-token", logs.path());

    for opts in [
        quick(&proxy.url()).token("wrong-token-value"),
        quick(&proxy.url()),
        quick(&proxy.url()).token("wrong-token-value").auth_header(AuthHeader::Bearer),
    ] {
        let backend = RemoteBackend::with_options(&opts).expect("backend");
        let err = create(&backend, "guarded").expect_err("no valid token");
        assert!(matches!(&err, Error::Unauthorized(_)), "{err:?}");
        assert!(!format!("{err} {err:?} {backend:?}").contains("wrong-token-value"), "token leaked: {err:?}");
    }
    for header in [AuthHeader::XChromaToken, AuthHeader::Bearer] {
        let backend = RemoteBackend::with_options(&quick(&proxy.url()).token("right-token").auth_header(header))
            .expect("backend");
        let name = if header == AuthHeader::Bearer { "bearer-ok" } else { "header-ok" };
        let col = create(&backend, name).expect("authorized create");
        backend.add(&col, &batch(&["x"])).expect("authorized add");
        assert_eq!(backend.count(&col).expect("count"), 1);
    }
}

#[test]
fn tenants_databases_and_the_client_facade() {
    let Some(python) = remote_support::python_or_skip("tenants_databases_and_the_client_facade") else { return };
    let server = ChromaServer::start(&python);
    let backend = RemoteBackend::with_options(&quick(&server.url())).expect("backend");
    assert!(!backend.version().expect("version").is_empty());

    backend.create_tenant("acme").expect("create tenant");
    assert_eq!(backend.create_tenant("acme").expect_err("twice").kind(), ErrorKind::AlreadyExists);
    assert_eq!(backend.get_tenant("acme").expect("get tenant").name, "acme");
    let err = backend.get_tenant("nobody").expect_err("missing tenant");
    assert!(matches!(&err, Error::NotFound { what: "tenant", name } if name == "nobody"), "{err:?}");

    let db = DatabaseRef::new("acme", "prod");
    backend.create_database(&db).expect("create database");
    assert_eq!(backend.create_database(&db).expect_err("twice").kind(), ErrorKind::AlreadyExists);
    assert_eq!(backend.get_database(&db).expect("get database").name, "prod");
    let names: Vec<String> =
        backend.list_databases("acme", None, 0).expect("list").into_iter().map(|d| d.name).collect();
    assert_eq!(names, ["prod"]);

    // The facade: one line switches an application to the server.
    let client = Client::remote(&server.url()).expect("client").scoped("acme", "prod");
    let col = client.get_or_create_collection("notes").expect("collection");
    col.add(["n1", "n2"])
        .embeddings(vec![vec![1.0, 0.0], vec![0.0, 1.0]])
        .documents(["one", "two"])
        .run()
        .expect("add");
    let hits = col.query(vec![vec![0.9, 0.1]]).n_results(1).run().expect("query");
    assert_eq!(hits.ids, vec![vec!["n1".to_string()]]);
    assert_eq!(backend.count_collections(&db).expect("count in acme/prod"), 1);
    assert_eq!(backend.count_collections(&DatabaseRef::default()).expect("default db untouched"), 0);

    backend.delete_database(&db).expect("delete database");
    assert_eq!(backend.get_database(&db).expect_err("deleted").kind(), ErrorKind::NotFound);
}
