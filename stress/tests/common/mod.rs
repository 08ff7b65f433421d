//! Shared by the multi-process tests: seed the database, run the worker
//! processes, check the history.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use startgate::{Gate, ProviderConnection, Registry};
use startgate_stress::{check, load_history, tenants, unreported_runs, Event, Verdict, REGISTRY};

pub const TENANTS: usize = 3;

pub fn seed() -> u64 {
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

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// Migrates and seeds the database, optionally without the unique indexes
/// that refuse a second admission on a scope: the scope lock itself, and the
/// per-scope fencing token (two concurrent starts compute the same token, so
/// it refuses the second one too).
pub fn prepare(url: &str, drop_locks: bool) {
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
        if drop_locks {
            for index in [
                "operation_runs_one_active_per_scope",
                "operation_runs_fencing",
            ] {
                if url.starts_with("postgres") {
                    let pool = sqlx::PgPool::connect(url).await.expect("pool");
                    let sql = format!("DROP INDEX startgate.{index}");
                    sqlx::query(&sql).execute(&pool).await.expect("drop index");
                    pool.close().await;
                } else {
                    let pool = sqlx::SqlitePool::connect(url).await.expect("pool");
                    let sql = format!("DROP INDEX {index}");
                    sqlx::query(&sql).execute(&pool).await.expect("drop index");
                    pool.close().await;
                }
            }
        }
    });
}

/// The stress binary, run under Debian's `faketime` with its clock shifted
/// by `skew_seconds` (the monotonic clock is left alone, so timers behave).
/// `faketime` is installed by `scripts/deps`; a missing one fails the test.
pub fn skewed_command(skew_seconds: i64) -> Command {
    let faketime = ["/usr/bin/faketime", "/usr/local/bin/faketime"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("faketime is not installed (scripts/deps installs Debian's faketime)");
    let mut command = Command::new(faketime);
    command
        .arg("-f")
        .arg(format!("{skew_seconds:+}s"))
        .arg(env!("CARGO_BIN_EXE_startgate-stress"))
        .env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
    command
}

/// Runs `workers` worker processes for `iterations` steps each, then checks
/// the history they left. Returns the events, the verdict and the seed.
pub fn hammer(url: &str, workers: usize, iterations: u64) -> (Vec<Event>, Verdict, u64) {
    hammer_skewed(url, &vec![None; workers], iterations)
}

/// [`hammer`], each worker going on after its iterations until `at_least`
/// has passed.
pub fn hammer_at_least(
    url: &str,
    workers: usize,
    iterations: u64,
    at_least: Duration,
) -> (Vec<Event>, Verdict, u64) {
    hammer_tasks(url, workers, 1, iterations, at_least)
}

/// [`hammer_at_least`] with `tasks` concurrent workers in each process,
/// sharing its gate (their writes overlap, as a server's requests do).
pub fn hammer_tasks(
    url: &str,
    workers: usize,
    tasks: u64,
    iterations: u64,
    at_least: Duration,
) -> (Vec<Event>, Verdict, u64) {
    hammer_with(
        url,
        &vec![None; workers],
        Steps {
            iterations,
            at_least,
            tasks,
        },
        Errors::Unexpected,
    )
}

/// How long each worker runs: its iterations, then on until `at_least` has
/// passed since it began.
#[derive(Clone, Copy)]
struct Steps {
    iterations: u64,
    at_least: Duration,
    /// Concurrent workers per process.
    tasks: u64,
}

impl Steps {
    fn count(iterations: u64) -> Self {
        Steps {
            iterations,
            at_least: Duration::ZERO,
            tasks: 1,
        }
    }
}

/// Whether workers must report no unexpected error. Not so without the
/// unique indexes: the engine relies on them, and a takeover may then give
/// up under contention (`internal`) — a symptom of the same broken schema
/// whose double admissions the checker must see.
#[derive(Clone, Copy, PartialEq)]
enum Errors {
    Unexpected,
    Tolerated,
}

/// [`hammer`] with one worker per entry of `skews`: `Some(seconds)` runs it
/// under `faketime` with its clock shifted by that much.
pub fn hammer_skewed(
    url: &str,
    skews: &[Option<i64>],
    iterations: u64,
) -> (Vec<Event>, Verdict, u64) {
    hammer_with(url, skews, Steps::count(iterations), Errors::Unexpected)
}

fn hammer_with(
    url: &str,
    skews: &[Option<i64>],
    steps: Steps,
    errors: Errors,
) -> (Vec<Event>, Verdict, u64) {
    let workers = skews.len();
    let seed = seed();
    let started = Instant::now();
    let children: Vec<_> = skews
        .iter()
        .enumerate()
        .map(|(worker, skew)| {
            match skew {
                Some(seconds) => skewed_command(*seconds),
                None => Command::new(env!("CARGO_BIN_EXE_startgate-stress")),
            }
            .args(["worker", "--database", url])
            .args(["--worker", &worker.to_string()])
            .args(["--iterations", &steps.iterations.to_string()])
            .args(["--at-least-ms", &steps.at_least.as_millis().to_string()])
            .args(["--tasks", &steps.tasks.to_string()])
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
            errors == Errors::Tolerated || !stderr.contains("unexpected error"),
            "worker reported: {stderr}"
        );
        for line in String::from_utf8_lossy(&output.stdout).lines() {
            events.push(serde_json::from_str::<Event>(line).expect("event line"));
        }
    }
    println!("{workers} processes finished in {:?}", started.elapsed());
    let (runs, attempts) = runtime().block_on(load_history(url)).expect("history");
    let mut verdict = check(&runs, &events, &attempts);
    // No store errors here, so every admitted run was reported to a caller.
    verdict.violations.extend(unreported_runs(&runs, &events));
    (events, verdict, seed)
}

pub fn totals(events: &[Event]) -> BTreeMap<String, u64> {
    let mut totals = BTreeMap::new();
    for event in events {
        if let Event::Summary { counts, .. } = event {
            for (k, v) in counts {
                *totals.entry(k.clone()).or_insert(0) += v;
            }
        }
    }
    totals
}

/// Start attempts of every kind (start and sequence calls).
pub fn start_attempts(totals: &BTreeMap<String, u64>) -> u64 {
    ["accepted", "deduped", "scope_busy", "blocked"]
        .iter()
        .flat_map(|o| [o.to_string(), format!("sequence_{o}")])
        .map(|k| totals.get(&k).copied().unwrap_or(0))
        .sum()
}

pub fn report(
    store: &str,
    workers: usize,
    verdict: &Verdict,
    totals: &BTreeMap<String, u64>,
    seed: u64,
) {
    println!(
        "{store} seed {seed}: {workers} processes, {} start attempts, {} admitted runs, {} accepted results, \
         {} takeovers, {} violations; totals {totals:?}",
        start_attempts(totals),
        verdict.admitted_runs,
        verdict.accepted_results,
        verdict.takeovers,
        verdict.violations.len()
    );
    assert!(
        verdict.violations.is_empty(),
        "seed {seed}: {} violation(s):\n{}",
        verdict.violations.len(),
        verdict.violations.join("\n")
    );
    assert_eq!(verdict.accepted_results, verdict.accepted_attempts);
}

/// With the unique indexes dropped, the same hammer produces overlaps the
/// checker reports: proof that the checker is not vacuous. Returns how many
/// it reported (a race is likely in a run, not certain: the caller retries).
pub fn without_unique_indexes(url: &str, workers: usize, iterations: u64) -> usize {
    let (_, verdict, seed) = hammer_with(
        url,
        &vec![None; workers],
        Steps::count(iterations),
        Errors::Tolerated,
    );
    let overlaps = verdict
        .violations
        .iter()
        .filter(|v| {
            v.contains("was active while a later run")
                || v.contains("are all still active")
                || v.contains("but a later run")
                || v.contains("share fencing token")
                || v.contains("were active at once")
        })
        .count();
    println!("seed {seed}: without the index, {overlaps} overlapping admissions were detected");
    if overlaps == 0 {
        println!(
            "seed {seed}: the checker's report: {:?}",
            verdict.violations
        );
    }
    overlaps
}
