//! Bounded waits on PostgreSQL: a held lock makes calls fail with
//! `store_timeout` within the configured bound; a stopped server makes them
//! fail with `store_unavailable`; afterwards the same gate handle works again.
//!
//! This binary stops and restarts the local PostgreSQL cluster, so it holds one
//! test only (cargo runs test binaries one after another).

use std::time::{Duration, Instant};

use sqlx::{Connection, PgConnection};
use startgate::{
    Actor, Completion, CompletionOutcome, ErrorCode, Gate, GateOptions, ProviderConnection,
    Registry, StartRequest,
};
use startgate_testkit::{pg_ctlcluster, run_script, PgTestDb};

const REGISTRY: &str = r#"
[operations."inventory.sync"]
label = "Inventory sync"
capability = "sync"
"#;

fn request(n: usize) -> StartRequest {
    StartRequest::new(
        "inventory.sync",
        format!("tenant-{n}"),
        Actor::member("alice", ["sync"]),
    )
}

/// Restarts PostgreSQL however the test ends, so later tests find it running.
struct Restart;

impl Drop for Restart {
    fn drop(&mut self) {
        run_script("postgres-up");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waits_are_bounded_and_the_gate_recovers() {
    let db = PgTestDb::create("faults").await;
    let options = GateOptions {
        connect_timeout: Duration::from_secs(1),
        acquire_timeout: Duration::from_secs(1),
        statement_timeout: Duration::from_millis(800),
        max_connections: 2,
        ..GateOptions::default()
    };
    // The bound the README promises: acquire + statement, plus connect for
    // telling a dead server from a busy pool, plus scheduling slack.
    let bound = Duration::from_millis(1000 + 800 + 1000 + 700);
    let gate = Gate::open_with(
        &db.url(),
        Registry::from_toml_str(REGISTRY).expect("registry"),
        options,
    )
    .await
    .expect("open");
    gate.migrate().await.expect("migrate");
    for n in 0..4 {
        gate.upsert_connection(&ProviderConnection::ready(
            format!("tenant-{n}"),
            "graph",
            "graph",
        ))
        .await
        .expect("connection");
    }
    let first = gate.start(&request(0)).await.expect("start");
    let run = first.run.expect("accepted run");

    // 1. A lock held elsewhere: statements hit the timeout, nothing is written.
    let mut locker = PgConnection::connect(&db.url()).await.expect("locker");
    sqlx::query("BEGIN")
        .execute(&mut locker)
        .await
        .expect("begin");
    sqlx::query("LOCK TABLE startgate.operation_runs IN ACCESS EXCLUSIVE MODE")
        .execute(&mut locker)
        .await
        .expect("lock");
    let started = Instant::now();
    let err = gate
        .start(&request(1))
        .await
        .expect_err("start under a held lock");
    assert_eq!(err.code(), ErrorCode::StoreTimeout, "{err}");
    assert!(
        started.elapsed() < bound,
        "start took {:?}",
        started.elapsed()
    );
    let started = Instant::now();
    let err = gate
        .complete(&Completion::new(
            run.id,
            run.fencing_token.expect("token"),
            CompletionOutcome::Failed,
        ))
        .await
        .expect_err("complete under a held lock");
    assert_eq!(err.code(), ErrorCode::StoreTimeout, "{err}");
    assert!(
        started.elapsed() < bound,
        "complete took {:?}",
        started.elapsed()
    );
    sqlx::query("ROLLBACK")
        .execute(&mut locker)
        .await
        .expect("release");
    locker.close().await.ok();
    let runs = gate
        .list_runs(&Default::default())
        .await
        .expect("list after the lock");
    assert_eq!(
        runs.len(),
        1,
        "the timed-out start wrote nothing: {runs:#?}"
    );
    assert_eq!(
        gate.get_run(run.id).await.expect("run").status.as_str(),
        "queued"
    );

    // 2. PostgreSQL stops: store_unavailable within the bound, no hang.
    let _restart = Restart;
    pg_ctlcluster("stop");
    for n in 2..4 {
        let started = Instant::now();
        let err = gate
            .start(&request(n))
            .await
            .expect_err("start while stopped");
        assert_eq!(err.code(), ErrorCode::StoreUnavailable, "{err}");
        assert!(
            started.elapsed() < bound,
            "start took {:?} while stopped",
            started.elapsed()
        );
    }

    // 3. PostgreSQL is back: the same handle works, without reopening.
    run_script("postgres-up");
    let deadline = Instant::now() + Duration::from_secs(15);
    let recovered = loop {
        match gate.start(&request(2)).await {
            Ok(result) => break result,
            Err(err) if Instant::now() < deadline => {
                eprintln!("not yet: {err}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(err) => panic!("the gate did not recover: {err}"),
        }
    };
    assert_eq!(recovered.outcome.as_str(), "accepted");
    gate.close().await;
    db.drop_now().await;
}
