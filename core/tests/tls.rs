//! TLS to PostgreSQL, against a server that refuses unencrypted
//! connections (testkit::tls): `sslmode=require` carries every conformance
//! vector; `verify-ca` and `verify-full` with the right CA connect; a wrong
//! CA, a host name the certificate does not name, and no TLS at all are
//! refused with `store_unavailable` whose message names TLS (never
//! `internal`). (`verify-full` is checked against the names the certificate
//! carries: `localhost` and `127.0.0.1`.)

mod support;

use sqlx::{Connection, PgConnection};
use startgate::{Gate, Registry};
use startgate_testkit::tls::TlsServer;
use support::conformance::{run_all, Store};
use support::PgTestDb;

fn registry() -> Registry {
    Registry::builder().build().expect("empty registry")
}

async fn connect_with(url: &str) -> Result<Gate, startgate::Error> {
    Gate::open(url, registry()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_vectors_pass_over_tls_and_certificates_are_checked() {
    let server = TlsServer::start();
    let base = server.base("127.0.0.1");
    let mut admin = PgConnection::connect(&format!("{base}/postgres?sslmode=require"))
        .await
        .expect("admin over TLS");
    let db = PgTestDb::create_with(&mut admin, &base, "?sslmode=require", "tls").await;
    admin.close().await.ok();

    // Every vector, with every connection encrypted (the server takes no other).
    let gate = connect_with(&db.url())
        .await
        .expect("open with sslmode=require");
    gate.migrate().await.expect("migrate over TLS");
    gate.close().await;
    let report = run_all(Store::Postgres {
        db: &db,
        pooled: false,
    })
    .await;
    assert!(report.passed >= 25, "only {} scenarios ran", report.passed);

    let name = &db.name;
    let ca = server.ca.display();
    let wrong = server.wrong_ca.display();
    for url in [
        format!("{base}/{name}?sslmode=verify-ca&sslrootcert={ca}"),
        format!(
            "{}/{name}?sslmode=verify-full&sslrootcert={ca}",
            server.base("localhost")
        ),
        format!("{base}/{name}?sslmode=verify-full&sslrootcert={ca}"),
        format!("{base}/{name}?sslmode=prefer"),
    ] {
        let gate = connect_with(&url)
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        assert!(gate.list_runs(&Default::default()).await.is_ok(), "{url}");
        gate.close().await;
    }
    for (url, says) in [
        (
            format!("{base}/{name}?sslmode=verify-ca&sslrootcert={wrong}"),
            "TLS",
        ),
        (
            format!("{base}/{name}?sslmode=verify-full&sslrootcert={wrong}"),
            "TLS",
        ),
        (format!("{base}/{name}?sslmode=disable"), "no encryption"),
    ] {
        let err = connect_with(&url).await.expect_err(&url);
        assert_eq!(err.code().as_str(), "store_unavailable", "{url}: {err}");
        assert!(err.to_string().contains(says), "{url}: {err}");
    }
    db.drop_now().await;
}
