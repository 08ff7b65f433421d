//! Which writes wait for the WAL flush (docs/DESIGN.md §6): an admission
//! commits as durably as the server's `synchronous_commit` says (here `on`,
//! the default: one flush each); a refusal's audit row — deduped, scope busy,
//! blocked — does not wait for a flush of its own. Counted with the server's
//! own `pg_stat_wal.wal_sync`. Alone in its test binary, so no other test's
//! commits are counted.

mod support;

use sqlx::{Connection, PgConnection};
use startgate::{Actor, Gate, Outcome, ProviderConnection, Registry, StartRequest};
use support::PgTestDb;

const REGISTRY: &str = r#"
[operations."inventory.sync"]
label = "Inventory sync"
capability = "inventory.sync"
requires = ["consent"]

[operations."restore.execute"]
label = "Restore"
capability = "inventory.sync"
requires = ["consent"]
"#;

const STARTS: usize = 40;

async fn wal_syncs(url: &str) -> i64 {
    let mut conn = PgConnection::connect(url).await.expect("connect");
    let syncs = sqlx::query_scalar("SELECT wal_sync FROM pg_stat_wal")
        .fetch_one(&mut conn)
        .await
        .expect("pg_stat_wal");
    conn.close().await.ok();
    syncs
}

fn request(operation: &str, tenant: String) -> StartRequest {
    StartRequest::new(
        operation,
        tenant,
        Actor::member("alice", ["inventory.sync"]),
    )
}

async fn open(url: &str) -> Gate {
    Gate::open(url, Registry::from_toml_str(REGISTRY).expect("registry"))
        .await
        .expect("open")
}

/// Runs `STARTS` starts that must all end in `outcome`; returns the WAL
/// flushes the server did meanwhile. On a gate of its own, closed before
/// counting: a server process reports its statistics when it exits.
async fn flushes(url: &str, outcome: Outcome, starts: &[StartRequest]) -> i64 {
    let before = wal_syncs(url).await;
    let gate = open(url).await;
    for request in starts {
        let result = gate.start(request).await.expect("start");
        assert_eq!(result.outcome, outcome, "{request:?}");
    }
    gate.close().await;
    // The statistics arrive as the server processes exit, just after.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    wal_syncs(url).await - before
}

#[tokio::test]
async fn admissions_wait_for_the_flush_and_refusals_do_not() {
    let db = PgTestDb::create("durability").await;
    let url = db.url();
    let mut server = PgConnection::connect(&url).await.expect("connect");
    let setting: String = sqlx::query_scalar("SHOW synchronous_commit")
        .fetch_one(&mut server)
        .await
        .expect("show");
    assert_eq!(
        setting, "on",
        "the server's default, which this test counts against"
    );
    server.close().await.ok();
    let gate = open(&url).await;
    gate.migrate().await.expect("migrate");
    for i in 0..STARTS {
        gate.upsert_connection(&ProviderConnection::ready(
            format!("t{i}"),
            "graph",
            "microsoft_graph",
        ))
        .await
        .expect("connection");
        gate.upsert_connection(&ProviderConnection {
            consent: startgate::Consent::Missing,
            ..ProviderConnection::ready(format!("blocked{i}"), "graph", "microsoft_graph")
        })
        .await
        .expect("connection");
    }
    let tenants = |prefix: &str, operation: &str| -> Vec<StartRequest> {
        (0..STARTS)
            .map(|i| request(operation, format!("{prefix}{i}")))
            .collect()
    };

    gate.close().await;
    let accepted = flushes(&url, Outcome::Accepted, &tenants("t", "inventory.sync")).await;
    let deduped = flushes(&url, Outcome::Deduped, &tenants("t", "inventory.sync")).await;
    let busy = flushes(&url, Outcome::ScopeBusy, &tenants("t", "restore.execute")).await;
    let blocked = flushes(
        &url,
        Outcome::Blocked,
        &tenants("blocked", "inventory.sync"),
    )
    .await;
    println!(
        "WAL flushes for {STARTS} starts each: accepted {accepted}, deduped {deduped}, \
         scope busy {busy}, blocked {blocked}"
    );
    // Each admission flushed before start returned. (Counting the flushes of
    // the two pg_stat_wal reads too: they write nothing.)
    assert!(accepted >= STARTS as i64, "accepted: {accepted} flushes");
    // The WAL writer flushes in the background every 200 ms, and a server's
    // checkpoint may too: a few, more on a loaded machine where the phase
    // takes longer, but never one per refusal (a quarter is far from both).
    for (what, count) in [
        ("deduped", deduped),
        ("scope busy", busy),
        ("blocked", blocked),
    ] {
        assert!(
            count < STARTS as i64 / 4,
            "{what}: {count} flushes for {STARTS} refusals"
        );
    }
    db.drop_now().await;
}
