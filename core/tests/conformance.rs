//! Runs every conformance vector of `tests/conformance/` against the Rust API,
//! on SQLite, PostgreSQL, and PostgreSQL through pgbouncer in transaction mode.

mod support;

use startgate::{Gate, Registry};
use support::conformance::{run_all, Store};
use support::PgTestDb;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_vectors_pass_on_sqlite() {
    let report = run_all(Store::Sqlite).await;
    assert!(report.passed >= 25, "only {} scenarios ran", report.passed);
}

async fn migrated(tag: &str) -> PgTestDb {
    let db = PgTestDb::create(tag).await;
    let gate = Gate::open(
        &db.url(),
        Registry::builder().build().expect("empty registry"),
    )
    .await
    .expect("open");
    gate.migrate().await.expect("migrate");
    gate.close().await;
    db
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_vectors_pass_on_postgres() {
    let db = migrated("conformance").await;
    let report = run_all(Store::Postgres {
        db: &db,
        pooled: false,
    })
    .await;
    assert!(report.passed >= 25, "only {} scenarios ran", report.passed);
    db.drop_now().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_vectors_pass_through_pgbouncer_transaction_mode() {
    let db = migrated("bouncer").await;
    let report = run_all(Store::Postgres {
        db: &db,
        pooled: true,
    })
    .await;
    assert!(report.passed >= 25, "only {} scenarios ran", report.passed);
    db.drop_now().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_vectors_pass_with_facts_from_a_host_view() {
    let db = migrated("host_view").await;
    db.use_host_view().await;
    let report = run_all(Store::HostView { db: &db }).await;
    assert!(report.passed >= 25, "only {} scenarios ran", report.passed);
    db.drop_now().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gate_behind_a_transaction_pooler_refuses_to_migrate() {
    let db = PgTestDb::create("pooled_migrate").await;
    let gate = Gate::open(
        &db.pooled_url(),
        Registry::builder().build().expect("registry"),
    )
    .await
    .expect("open through pgbouncer");
    let err = gate.migrate().await.expect_err("migrate through a pooler");
    assert_eq!(err.code().as_str(), "migration_failed");
    assert!(err.to_string().contains("directly"), "{err}");
    gate.close().await;
    db.drop_now().await;
}
