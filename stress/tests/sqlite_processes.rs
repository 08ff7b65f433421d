//! The scope lock on SQLite, proven with 8 OS processes sharing one database file.

use std::process::{Command, Stdio};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use sqlx::sqlite::SqlitePoolOptions;
use sqlx::Row;
use startgate::{Gate, ProviderConnection, Registry};
use startgate_stress::{check, tenants, Event, RunRecord, Verdict, REGISTRY};

const WORKERS: usize = 8;
const TENANTS: usize = 3;

struct TempDb(std::path::PathBuf);

impl TempDb {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join("startgate-stress");
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join(format!("{tag}-{}.db", std::process::id()));
        let db = TempDb(path);
        db.clean();
        db
    }
    fn url(&self) -> String {
        format!("sqlite://{}", self.0.display())
    }
    fn clean(&self) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.0.display()));
        }
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        self.clean();
    }
}

fn seed() -> u64 {
    std::env::var("STARTGATE_STRESS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(1)
        })
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// Migrates and seeds the database, optionally without the scope lock.
fn prepare(url: &str, drop_scope_index: bool) {
    runtime().block_on(async {
        let registry = Registry::from_toml_str(REGISTRY).expect("registry");
        let gate = Gate::open(url, registry).await.expect("open");
        gate.migrate().await.expect("migrate");
        for tenant in tenants(TENANTS) {
            gate.upsert_connection(&ProviderConnection::ready(
                tenant,
                "graph",
                "microsoft_graph",
            ))
            .await
            .expect("connection");
        }
        gate.close().await;
        if drop_scope_index {
            let pool = SqlitePoolOptions::new().connect(url).await.expect("pool");
            sqlx::query("DROP INDEX operation_runs_one_active_per_scope")
                .execute(&pool)
                .await
                .expect("drop index");
            pool.close().await;
        }
    });
}

/// Runs the workers as separate OS processes and collects what they report.
fn hammer(url: &str, iterations: u64, seed: u64) -> Vec<Event> {
    let children: Vec<_> = (0..WORKERS)
        .map(|worker| {
            Command::new(env!("CARGO_BIN_EXE_startgate-stress"))
                .args(["worker", "--database", url])
                .args(["--worker", &worker.to_string()])
                .args(["--iterations", &iterations.to_string()])
                .args(["--tenants", &TENANTS.to_string()])
                .args(["--seed", &seed.to_string()])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn worker")
        })
        .collect();
    let mut events = Vec::new();
    for child in children {
        let output = child.wait_with_output().expect("worker output");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "worker failed: {stderr}");
        assert!(
            !stderr.contains("unexpected error"),
            "worker reported: {stderr}"
        );
        for line in String::from_utf8_lossy(&output.stdout).lines() {
            events.push(serde_json::from_str::<Event>(line).expect("event line"));
        }
    }
    events
}

/// Reads the history back with plain SQL, independent of the gate's code.
fn verify(url: &str, events: &[Event]) -> Verdict {
    runtime().block_on(async {
        let pool = SqlitePoolOptions::new().connect(url).await.expect("pool");
        let runs: Vec<RunRecord> = sqlx::query(
            "SELECT id, tenant_id, provider_connection_id, status, fencing_token, queued_at, finished_at \
             FROM operation_runs WHERE fencing_token IS NOT NULL",
        )
        .fetch_all(&pool)
        .await
        .expect("runs")
        .into_iter()
        .map(|row| RunRecord {
            id: row.get(0),
            tenant_id: row.get(1),
            connection_id: row.get(2),
            status: row.get(3),
            fencing_token: row.get(4),
            queued_at: row.get(5),
            finished_at: row.get(6),
        })
        .collect();
        let accepted_attempts: Vec<i64> =
            sqlx::query_scalar("SELECT run_id FROM start_attempts WHERE outcome = 'accepted'")
                .fetch_all(&pool)
                .await
                .expect("attempts");
        pool.close().await;
        check(&runs, events, &accepted_attempts)
    })
}

fn totals(events: &[Event]) -> std::collections::BTreeMap<String, u64> {
    let mut totals = std::collections::BTreeMap::new();
    for event in events {
        if let Event::Summary { counts, .. } = event {
            for (k, v) in counts {
                *totals.entry(k.clone()).or_insert(0) += v;
            }
        }
    }
    totals
}

#[test]
fn eight_processes_never_hold_one_scope_twice() {
    let seed = seed();
    let db = TempDb::new("hammer");
    prepare(&db.url(), false);
    let started = Instant::now();
    let events = hammer(&db.url(), 800, seed);
    let elapsed = started.elapsed();
    let verdict = verify(&db.url(), &events);
    let totals = totals(&events);
    println!(
        "seed {seed}: {WORKERS} processes, {} admitted runs, {} accepted results, {} takeovers in {elapsed:?}; totals {totals:?}",
        verdict.admitted_runs, verdict.accepted_results, verdict.takeovers
    );
    assert!(
        verdict.violations.is_empty(),
        "seed {seed}: {} violation(s):\n{}",
        verdict.violations.len(),
        verdict.violations.join("\n")
    );
    // The run must have exercised contention, not just succeeded quietly.
    assert!(
        verdict.accepted_results >= 200,
        "too few admissions: {totals:?}"
    );
    assert_eq!(verdict.accepted_results, verdict.accepted_attempts);
    for outcome in ["scope_busy", "deduped", "takeover", "completed", "advanced"] {
        assert!(
            totals.get(outcome).copied().unwrap_or(0) > 0,
            "no {outcome} happened: {totals:?}"
        );
    }
}

#[test]
fn without_the_scope_index_the_checker_sees_double_admission() {
    let seed = seed();
    let db = TempDb::new("no-lock");
    prepare(&db.url(), true);
    let events = hammer(&db.url(), 150, seed);
    let verdict = verify(&db.url(), &events);
    let overlaps = verdict
        .violations
        .iter()
        .filter(|v| v.contains("active together") || v.contains("still active when"))
        .count();
    println!("seed {seed}: without the index, {overlaps} overlapping admissions were detected");
    assert!(
        overlaps > 0,
        "seed {seed}: the checker missed double admission: {:?}",
        verdict.violations
    );
}
