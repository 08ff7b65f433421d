//! Closing a gate leaves a complete database: after `migrate`, and after a
//! run of starts and `close`, the `.db` file alone — copied without its
//! `-wal` log, as a naive backup would — opens with the schema and every row
//! in it. (Each host surface, and a process that just ends, is checked by
//! tests/checkpoint/run.)

mod support;

use std::time::Duration;

use startgate::{
    Actor, Clock, Gate, GateOptions, ProviderConnection, Registry, RunFilter, RunStatus,
    StartRequest, Timestamp,
};
use support::TempDb;

const REGISTRY: &str = r#"
[operations."inventory.sync"]
label = "Inventory sync"
capability = "inventory.sync"
requires = ["connection_enabled", "consent", "credential", "health"]
"#;

/// Copies the database file alone and opens a gate on the copy, without
/// migrating it: everything read must have been in the `.db` file.
async fn open_copy(db: &TempDb, copy: &TempDb) -> Gate {
    std::fs::copy(&db.path, &copy.path).expect("copy the .db file");
    let registry = Registry::from_toml_str(REGISTRY).expect("registry");
    Gate::open(&copy.url(), registry)
        .await
        .expect("open the copy")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_db_file_alone_holds_the_schema_and_the_rows() {
    let db = TempDb::new("checkpoint");
    let registry = Registry::from_toml_str(REGISTRY).expect("registry");
    let gate = Gate::open(&db.url(), registry).await.expect("open");
    gate.migrate().await.expect("migrate");

    // After migrate, with the gate still open.
    let copy = TempDb::new("checkpoint-copy");
    let reopened = open_copy(&db, &copy).await;
    let runs = reopened
        .list_runs(&RunFilter::default())
        .await
        .expect("the copy has the schema");
    assert!(runs.is_empty());
    reopened.close().await;
    drop(copy);

    let actor = Actor::member("ops", ["inventory.sync"]);
    for tenant in ["contoso", "fabrikam", "northwind"] {
        gate.upsert_connection(&ProviderConnection::ready(
            tenant,
            "graph",
            "microsoft_graph",
        ))
        .await
        .expect("upsert");
        for _ in 0..2 {
            gate.start(&StartRequest::new("inventory.sync", tenant, actor.clone()))
                .await
                .expect("start");
        }
    }
    let wal = format!("{}-wal", db.path.display());
    let logged = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    assert!(logged > 0, "the starts were written to the log first");
    gate.close().await;
    assert_eq!(
        std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0),
        0,
        "closing copied the log into the file and emptied it"
    );

    let copy = TempDb::new("checkpoint-copy");
    let reopened = open_copy(&db, &copy).await;
    let runs = reopened
        .list_runs(&RunFilter::default())
        .await
        .expect("list runs");
    assert_eq!(runs.len(), 3, "every run is in the copy");
    for run in &runs {
        let attempts = reopened.attempts_for_run(run.id).await.expect("attempts");
        assert_eq!(
            attempts.len(),
            2,
            "accepted and deduped, for run {}",
            run.id
        );
    }
    assert_eq!(
        reopened
            .list_connections("fabrikam")
            .await
            .expect("connections")
            .len(),
        1
    );
    reopened.close().await;
}

/// A transaction larger than one write to the file (the gate's SQLite VFS
/// writes a commit's WAL frames together, and SQLite's `unix` VFS takes at
/// most 128 KiB per write) commits whole: one reap ends a thousand stale
/// runs, more than 128 KiB of pages in one commit (it failed as "database or
/// disk is full" before the VFS wrote in pieces), and a copy of the files
/// recovered by a fresh gate holds every one of them ended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reap_of_a_thousand_stale_runs_commits_whole() {
    const RUNS: usize = 1000;
    let db = TempDb::new("large-commit");
    let options = GateOptions {
        clock: Clock::manual(Timestamp::parse_rfc3339("2026-01-01T09:00:00Z").expect("time")),
        ..GateOptions::default()
    };
    let registry = Registry::from_toml_str(REGISTRY).expect("registry");
    let gate = Gate::open_with(&db.url(), registry, options)
        .await
        .expect("open");
    gate.migrate().await.expect("migrate");
    let actor = Actor::member("ops", ["inventory.sync"]);
    for i in 0..RUNS {
        let tenant = format!("tenant-{i:04}");
        gate.upsert_connection(&ProviderConnection::ready(
            &tenant,
            "graph",
            "microsoft_graph",
        ))
        .await
        .expect("upsert");
        gate.start(&StartRequest::new("inventory.sync", tenant, actor.clone()))
            .await
            .expect("start");
    }
    gate.advance_clock(Duration::from_secs(24 * 3600))
        .expect("advance");
    let reaped = gate
        .reap_stale()
        .await
        .expect("one reap of every stale run");
    assert_eq!(reaped.reaped.len(), RUNS);

    // What a process starting now would read if this one died here.
    let copy = TempDb::new("large-commit-copy");
    std::fs::copy(&db.path, &copy.path).expect("copy the .db file");
    let wal = |path: &std::path::Path| format!("{}-wal", path.display());
    std::fs::copy(wal(&db.path), wal(&copy.path)).expect("copy the -wal file");
    let registry = Registry::from_toml_str(REGISTRY).expect("registry");
    let recovered = Gate::open(&copy.url(), registry)
        .await
        .expect("open the copy");
    let runs = recovered
        .list_runs(&RunFilter {
            limit: Some(10 * RUNS as u32),
            ..RunFilter::default()
        })
        .await
        .expect("list runs");
    assert_eq!(runs.len(), RUNS);
    assert!(
        runs.iter().all(|run| run.status == RunStatus::Failed),
        "every run the reap ended is ended in the recovered copy"
    );
    recovered.close().await;
    gate.close().await;
}
