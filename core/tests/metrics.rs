//! A gate's metrics snapshot agrees with the audit table: after a storm of
//! concurrent starts (accepted, deduped, scope busy, blocked, denied, and
//! takeovers of stale runs), the counts by outcome equal the audit rows by
//! outcome, takeovers equal the audit rows that replaced a run, a reap's
//! runs are counted, and failed calls are counted by code. On SQLite and on
//! PostgreSQL.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use sqlx::{Connection, Row};
use startgate::{
    Actor, Clock, Consent, Gate, GateOptions, MetricsSnapshot, ProviderConnection, Registry,
    RunFilter, RunStatus, StartRequest, Timestamp,
};
use support::{PgTestDb, TempDb};

const REGISTRY: &str = r#"
[operations."inventory.sync"]
label = "Inventory sync"
capability = "inventory.sync"
requires = ["connection_enabled", "consent"]
lease = "5m"

[operations."restore.execute"]
label = "Restore"
capability = "restore.execute"
requires = ["connection_enabled", "consent"]
"#;

const TENANTS: usize = 6;
const TASKS: usize = 8;
const STARTS_PER_TASK: usize = 60;

async fn open(url: &str) -> Gate {
    let options = GateOptions {
        clock: Clock::manual(Timestamp::from_micros(1_800_000_000_000_000)),
        ..GateOptions::default()
    };
    let registry = Registry::from_toml_str(REGISTRY).expect("registry");
    let gate = Gate::open_with(url, registry, options).await.expect("open");
    gate.migrate().await.expect("migrate");
    for t in 0..TENANTS {
        let mut connection = ProviderConnection::ready(format!("t{t}"), "graph", "microsoft_graph");
        if t == 0 {
            connection.consent = Consent::Revoked; // every start here is blocked
        }
        gate.upsert_connection(&connection).await.expect("upsert");
    }
    gate
}

/// Concurrent starts over few scopes and two operations, by members with and
/// without the restore capability (so some are denied).
async fn storm(gate: &Gate, round: usize) -> usize {
    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let gate = gate.clone();
        tasks.push(tokio::spawn(async move {
            let mut calls = 0;
            for i in 0..STARTS_PER_TASK {
                let n = task * 7 + i * 3 + round;
                let operation = if n.is_multiple_of(3) {
                    "restore.execute"
                } else {
                    "inventory.sync"
                };
                let capabilities: &[&str] = if n.is_multiple_of(5) {
                    &["inventory.sync"]
                } else {
                    &["inventory.sync", "restore.execute"]
                };
                let actor = Actor::member(format!("op{task}"), capabilities.iter().copied());
                let request = StartRequest::new(operation, format!("t{}", n % TENANTS), actor);
                gate.start(&request).await.expect("start");
                calls += 1;
            }
            calls
        }));
    }
    let mut calls = 0;
    for task in tasks {
        calls += task.await.expect("task");
    }
    calls
}

fn by_outcome(metrics: &MetricsSnapshot) -> BTreeMap<String, i64> {
    let mut totals = BTreeMap::new();
    for outcomes in metrics.counts.starts.values() {
        for (outcome, count) in outcomes {
            *totals.entry(outcome.clone()).or_default() += *count as i64;
        }
    }
    totals
}

async fn check(gate: &Gate, audit: BTreeMap<String, i64>, replaced: i64, blocked_rows: i64) {
    let metrics = gate.metrics();
    assert_eq!(by_outcome(&metrics), audit, "metrics {metrics:?}");
    assert!(
        audit.len() >= 4,
        "the storm produced several outcomes: {audit:?}"
    );
    assert!(replaced > 0, "the storm took stale runs over");
    assert_eq!(metrics.counts.takeovers as i64, replaced);
    assert_eq!(
        metrics
            .counts
            .blocked
            .get("provider_consent_revoked")
            .copied()
            .unwrap_or(0) as i64,
        blocked_rows
    );
    let starts = metrics.latency.get("start").expect("start latency");
    assert_eq!(
        starts.calls as i64,
        audit.values().sum::<i64>() + 1,
        "+1: the invalid start"
    );
    assert!(
        starts.p50_us > 0 && starts.p50_us <= starts.p99_us,
        "{starts:?}"
    );
    assert_eq!(metrics.errors.get("invalid_request"), Some(&1));
    assert_eq!(metrics.counts.reaped_runs, 0, "no reap yet");
}

/// Two storms with the clock moved past every lease in between (so the
/// second takes the first's runs over), an invalid start, then a reap.
async fn run_storms(gate: &Gate) {
    storm(gate, 0).await;
    gate.advance_clock(Duration::from_secs(3600))
        .expect("advance");
    storm(gate, 1).await;
    let invalid = StartRequest::new("inventory.sync", "", Actor::member("x", ["inventory.sync"]));
    assert!(gate.start(&invalid).await.is_err());
}

async fn after_reap(gate: &Gate) {
    gate.advance_clock(Duration::from_secs(3600))
        .expect("advance");
    let reaped = gate.reap_stale().await.expect("reap");
    assert!(!reaped.reaped.is_empty());
    assert_eq!(
        gate.metrics().counts.reaped_runs,
        reaped.reaped.len() as u64
    );
    database_stats_agree(gate).await;
}

/// The database's own counts (`Gate::stats`, what `startgate stats` prints)
/// equal this gate's metrics: it was the database's only writer.
async fn database_stats_agree(gate: &Gate) {
    let metrics = gate.metrics();
    let stats = gate.stats().await.expect("stats");
    assert_eq!(stats.counts, metrics.counts);
    assert!(
        stats.counts.reaped_runs > 0 && stats.counts.takeovers > 0,
        "{stats:?}"
    );
    let runs: u64 = stats.runs.values().sum();
    let listed = gate
        .list_runs(&RunFilter {
            limit: Some(10_000),
            ..RunFilter::default()
        })
        .await
        .expect("runs");
    assert_eq!(runs, listed.len() as u64, "{:?}", stats.runs);
    assert_eq!(
        stats.runs.get("failed").copied().unwrap_or(0),
        listed
            .iter()
            .filter(|r| r.status == RunStatus::Failed)
            .count() as u64
    );
    // The Prometheus text carries the same numbers.
    let text = stats.to_prometheus();
    let sample = |line: &str| -> u64 { line.rsplit(' ').next().unwrap().parse().unwrap() };
    let starts: u64 = text
        .lines()
        .filter(|l| l.starts_with("startgate_starts_total{"))
        .map(sample)
        .sum();
    let total: u64 = stats.counts.starts.values().flat_map(|o| o.values()).sum();
    assert_eq!(starts, total, "{text}");
    let takeovers = text
        .lines()
        .find(|l| l.starts_with("startgate_takeovers_total "))
        .map(sample);
    assert_eq!(takeovers, Some(stats.counts.takeovers), "{text}");
    assert!(text.contains("# TYPE startgate_runs gauge"), "{text}");
}

/// The audit rows by outcome, those that replaced a run, and the blocked
/// ones, read with plain SQL from `table` over `conn`.
macro_rules! audit {
    ($conn:expr, $table:literal) => {{
        let rows = sqlx::query(concat!(
            "SELECT outcome, count(*) AS n FROM ",
            $table,
            " GROUP BY outcome"
        ))
        .fetch_all(&mut $conn)
        .await
        .expect("audit");
        let by_outcome: BTreeMap<String, i64> = rows
            .iter()
            .map(|r| (r.get::<String, _>("outcome"), r.get::<i64, _>("n")))
            .collect();
        let replaced: i64 = sqlx::query_scalar(concat!(
            "SELECT count(*) FROM ",
            $table,
            " WHERE replaced_run_id IS NOT NULL"
        ))
        .fetch_one(&mut $conn)
        .await
        .expect("replaced");
        let blocked: i64 = sqlx::query_scalar(concat!(
            "SELECT count(*) FROM ",
            $table,
            " WHERE outcome = 'blocked'"
        ))
        .fetch_one(&mut $conn)
        .await
        .expect("blocked");
        (by_outcome, replaced, blocked)
    }};
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_agree_with_the_audit_table_on_sqlite() {
    let db = TempDb::new("metrics");
    let gate = open(&db.url()).await;
    run_storms(&gate).await;
    let mut conn = sqlx::SqliteConnection::connect(&db.url())
        .await
        .expect("connect");
    let (audit, replaced, blocked) = audit!(conn, "start_attempts");
    conn.close().await.ok();
    check(&gate, audit, replaced, blocked).await;
    after_reap(&gate).await;
    gate.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_agree_with_the_audit_table_on_postgres() {
    let db = PgTestDb::create("metrics").await;
    let gate = open(&db.url()).await;
    run_storms(&gate).await;
    let mut conn = sqlx::PgConnection::connect(&db.url())
        .await
        .expect("connect");
    let (audit, replaced, blocked) = audit!(conn, "startgate.start_attempts");
    conn.close().await.ok();
    check(&gate, audit, replaced, blocked).await;
    after_reap(&gate).await;
    gate.close().await;
    db.drop_now().await;
}
