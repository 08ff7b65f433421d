//! Database faults under load: four worker processes start, drive and
//! complete runs on PostgreSQL while the test kills their backends, holds a
//! table lock past the statement timeout and restarts the server. Then:
//!
//! - every call returned a result or `store_unavailable` / `store_timeout`
//!   within the configured bound (the workers time every call);
//! - every `accepted` result names a run that exists, no scope ever had two
//!   active runs, and every admitted run was either reported to a caller or
//!   explained by an error that said its outcome was unknown;
//! - after the lease no scope is held by an orphan (a fresh start takes it);
//! - every worker's gate served calls again after the faults, without
//!   reopening.
//!
//! `STARTGATE_FAULT_SECONDS` stretches the run (the long variant).

mod common;

use std::collections::BTreeMap;
use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{prepare, runtime, seed, TENANTS};
use sqlx::{Connection, PgConnection};
use startgate::{Actor, Gate, Outcome, Registry, StartRequest};
use startgate_stress::{check, load_history, now_ms, tenants, unreported_runs, Event, REGISTRY};
use startgate_testkit::{admin_url, pg_ctlcluster, run_script, PgTestDb};

const WORKERS: usize = 4;
/// Connect, acquire and statement timeout of every worker's gate.
const TIMEOUT_MS: u64 = 1500;

/// The longest a call may take: the client-side bound (acquire + statement)
/// plus the connect probe that tells `store_unavailable` from a busy pool,
/// plus scheduling slack on a busy 2-core machine.
const CALL_BOUND_MS: u64 = 3 * TIMEOUT_MS + 1000;

struct Worker {
    child: Child,
    stdout: std::thread::JoinHandle<String>,
}

fn spawn_worker(url: &str, worker: usize, seed: u64, duration: Duration) -> Worker {
    let mut child = Command::new(env!("CARGO_BIN_EXE_startgate-stress"))
        .args(["worker", "--database", url, "--faults", "1"])
        .args(["--worker", &worker.to_string()])
        .args(["--tenants", &TENANTS.to_string()])
        .args(["--seed", &seed.to_string()])
        .args(["--duration-ms", &duration.as_millis().to_string()])
        .args(["--timeout-ms", &TIMEOUT_MS.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn worker");
    // Drained as it comes: a full pipe would stall the worker mid-call.
    let mut pipe = child.stdout.take().expect("stdout");
    let stdout = std::thread::spawn(move || {
        let mut out = String::new();
        pipe.read_to_string(&mut out).expect("read worker stdout");
        out
    });
    Worker { child, stdout }
}

/// What was done to the database.
#[derive(Debug, Default)]
struct Faults {
    backends_terminated: u64,
    locks_held: u64,
    restarts: u64,
}

async fn admin() -> PgConnection {
    for _ in 0..100 {
        if let Ok(conn) = PgConnection::connect(&admin_url()).await {
            return conn;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("PostgreSQL did not come back");
}

async fn terminate_backends(database: &str) -> u64 {
    let mut conn = admin().await;
    let killed: i64 = sqlx::query_scalar(
        "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM \
           (SELECT pid FROM pg_stat_activity \
             WHERE datname = $1 AND application_name = 'startgate' AND pid <> pg_backend_pid() \
             ORDER BY random() LIMIT 2) victims",
    )
    .bind(database)
    .fetch_one(&mut conn)
    .await
    .expect("terminate backends");
    conn.close().await.ok();
    killed as u64
}

/// Holds an exclusive lock on the runs table past the statement timeout.
async fn hold_lock(url: &str, hold: Duration) {
    let mut conn = PgConnection::connect(url).await.expect("lock connection");
    sqlx::query("BEGIN")
        .execute(&mut conn)
        .await
        .expect("begin");
    sqlx::query("LOCK TABLE startgate.operation_runs IN ACCESS EXCLUSIVE MODE")
        .execute(&mut conn)
        .await
        .expect("lock");
    tokio::time::sleep(hold).await;
    sqlx::query("ROLLBACK")
        .execute(&mut conn)
        .await
        .expect("rollback");
    conn.close().await.ok();
}

fn restart_postgres() {
    pg_ctlcluster("restart");
    run_script("postgres-up");
}

#[test]
fn faults_under_load_lose_nothing_and_bound_every_call() {
    let scale: u64 = std::env::var("STARTGATE_FAULT_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let rt = runtime();
    let db = rt.block_on(PgTestDb::create("faults"));
    let url = db.url();
    prepare(&url, false);
    let seed = seed();
    // Faults take ~15 s (longer with STARTGATE_FAULT_SECONDS); the workers
    // keep going well past them so recovery is observed.
    let fault_rounds = 1 + scale / 15;
    let duration = Duration::from_secs(15 * fault_rounds + 15);
    let started = Instant::now();
    let workers: Vec<Worker> = (0..WORKERS)
        .map(|w| spawn_worker(&url, w, seed, duration))
        .collect();

    let mut faults = Faults::default();
    rt.block_on(async {
        tokio::time::sleep(Duration::from_secs(2)).await;
        for _ in 0..fault_rounds {
            // (b) random backends killed, every 200 ms for 4 s.
            for _ in 0..20 {
                faults.backends_terminated += terminate_backends(&db.name).await;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            // (c) a lock held past the statement timeout, twice.
            for _ in 0..2 {
                hold_lock(&url, Duration::from_millis(TIMEOUT_MS + 1500)).await;
                faults.locks_held += 1;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            // (a) the server restarted under the workers.
            // Blocking is fine: nothing else runs on this test's runtime.
            restart_postgres();
            faults.restarts += 1;
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    let faults_ended_ms = now_ms();
    let faults_took = started.elapsed();
    assert!(
        faults_took + Duration::from_secs(8) < duration,
        "the faults took {faults_took:?}, leaving too little time to observe recovery"
    );

    let mut events = Vec::new();
    for mut worker in workers {
        let status = worker.child.wait().expect("worker exit");
        let out = worker.stdout.join().expect("stdout thread");
        assert!(status.success(), "a worker failed (exit {status})");
        for line in out.lines() {
            events.push(serde_json::from_str::<Event>(line).expect("event line"));
        }
    }

    // Every call bounded; only the store's codes (and refused transitions).
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    let mut unknown = 0u64;
    let mut attempts = 0u64;
    let mut slowest_ms = 0u64;
    let recovered_by = faults_ended_ms + CALL_BOUND_MS;
    for event in &events {
        match event {
            Event::Failure {
                code,
                elapsed_ms,
                at_ms,
                outcome_unknown,
                call,
                ..
            } => {
                *errors.entry(code.clone()).or_default() += 1;
                unknown += u64::from(*outcome_unknown);
                assert!(
                    *elapsed_ms <= CALL_BOUND_MS,
                    "{call} failed with {code} after {elapsed_ms} ms, past the {CALL_BOUND_MS} ms bound"
                );
                assert!(
                    *at_ms <= recovered_by,
                    "{call} still failed with {code} {} ms after the last fault",
                    at_ms - faults_ended_ms
                );
            }
            Event::Summary {
                counts,
                max_call_ms,
                last_ok_at_ms,
                ..
            } => {
                slowest_ms = slowest_ms.max(*max_call_ms);
                assert!(
                    *max_call_ms <= CALL_BOUND_MS,
                    "a call took {max_call_ms} ms, past the {CALL_BOUND_MS} ms bound"
                );
                // The same gate served calls after the faults: no reopening.
                assert!(
                    *last_ok_at_ms > recovered_by + 2000,
                    "a worker's gate did not recover after the faults: {counts:?}"
                );
                for (name, n) in counts {
                    let outcome = name.trim_start_matches("sequence_");
                    if ["accepted", "deduped", "scope_busy", "blocked"].contains(&outcome) {
                        attempts += n;
                    }
                    if let Some(code) = name.strip_prefix("error:") {
                        assert!(
                            ["store_unavailable", "store_timeout", "invalid_transition"]
                                .contains(&code),
                            "unexpected error code {code}"
                        );
                    }
                }
            }
            Event::Accepted { .. } => {}
        }
    }
    // The faults were real: each kind surfaced to callers.
    assert!(
        errors.get("store_unavailable").copied().unwrap_or(0) > 0,
        "no store_unavailable seen: {errors:?}"
    );
    assert!(
        errors.get("store_timeout").copied().unwrap_or(0) > 0,
        "no store_timeout seen: {errors:?}"
    );

    // Nothing lost, nothing admitted twice, nothing admitted in secret.
    let (runs, accepted_audits) = rt.block_on(load_history(&url)).expect("history");
    let verdict = check(&runs, &events, &accepted_audits);
    let unreported = unreported_runs(&runs, &events);
    let unexplained: Vec<&String> = verdict.violations.iter().chain(&unreported).collect();
    assert!(
        unexplained.is_empty(),
        "seed {seed}: {} violation(s):\n{}",
        unexplained.len(),
        unexplained
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );

    // After the lease, no scope is held by an orphan: a fresh start takes each.
    let orphans_taken_over = rt.block_on(async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let registry = Registry::from_toml_str(REGISTRY).expect("registry");
        let gate = Gate::open(&url, registry).await.expect("open");
        let mut taken_over = 0;
        for tenant in tenants(TENANTS) {
            let request = StartRequest::new(
                "inventory.sync",
                tenant.as_str(),
                Actor::member("after-the-storm", ["inventory.sync"]),
            );
            let result = gate.start(&request).await.expect("start after faults");
            assert_eq!(
                result.outcome,
                Outcome::Accepted,
                "{tenant} is still held after the lease: {result:?}"
            );
            taken_over += usize::from(result.replaced_run_id.is_some());
        }
        gate.close().await;
        taken_over
    });

    println!(
        "RELIABILITY faults: seed {seed}, {WORKERS} processes, {attempts} start attempts, \
         {} backends terminated, {} locks held past the timeout, {} restarts; errors {errors:?} \
         ({unknown} said the outcome was unknown); slowest call {slowest_ms} ms (bound \
         {CALL_BOUND_MS} ms); {} admitted runs, {} accepted results, \
         runs lost 0, double admissions 0, unreported runs {}; {orphans_taken_over} orphaned \
         scopes taken over after the lease; faults took {faults_took:?}",
        faults.backends_terminated,
        faults.locks_held,
        faults.restarts,
        verdict.admitted_runs,
        verdict.accepted_results,
        runs.len() - verdict.accepted_results,
    );
    rt.block_on(db.drop_now());
}
