//! Several hosts whose clocks disagree share one PostgreSQL. Each host is an
//! OS process run under Debian's `faketime`, its clock shifted by +120 s,
//! 0 s or −120 s; leases are 1.5 s. The database's clock decides, so:
//!
//! - a live, heartbeating holder is never taken over, whichever host holds
//!   it and whichever hosts contend (they get deduped / scope busy), and its
//!   heartbeats are never refused;
//! - a holder that stopped heartbeating is taken over on time — no earlier
//!   than its lease deadline, and within a second of it — by every host;
//! - under a mixed-clock hammer, the recorded timestamps never show two runs
//!   of one scope active at once.
//!
//! Each process reports its own wall clock, and the test checks that the
//! shift really took effect, so the test cannot pass because faketime did
//! nothing.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};

use common::{hammer_skewed, prepare, report, runtime, skewed_command, start_attempts, totals};
use serde_json::Value;
use startgate_stress::now_ms;
use startgate_testkit::PgTestDb;

const SKEW_S: i64 = 120;
/// How long the holder keeps heartbeating (its lease is 1.5 s).
const ALIVE_MS: u64 = 3_000;
/// Contenders that must not win stop well inside the holder's life.
const CONTEND_MS: u64 = 2_000;
/// A stale run is taken over within this long of its lease deadline.
const ON_TIME_US: i64 = 1_000_000;

struct Process {
    skew: i64,
    spawned_ms: u64,
    child: Child,
}

fn spawn(skew: i64, args: &[&str]) -> Process {
    let spawned_ms = now_ms();
    let child = skewed_command(skew)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn a skewed process");
    Process {
        skew,
        spawned_ms,
        child,
    }
}

impl Process {
    /// Reads the first line while the process keeps running.
    fn first_line(&mut self) -> Value {
        let stdout = self.child.stdout.as_mut().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("read");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("bad line {line:?}: {e}"))
    }

    /// Waits for the process and returns its (remaining) lines.
    fn finish(self) -> Vec<Value> {
        let output = self.child.wait_with_output().expect("wait");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "process with clock {:+}s failed: {stderr}",
            self.skew
        );
        let lines: Vec<Value> = String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad line {l:?}: {e}")))
            .collect();
        let finished_ms = now_ms();
        for line in &lines {
            if let Some(local) = line["local_ms"].as_i64() {
                check_skew(self.skew, local, self.spawned_ms, finished_ms);
            }
        }
        lines
    }
}

/// The process's wall clock really was shifted by `skew` seconds.
fn check_skew(skew: i64, local_ms: i64, from_ms: u64, to_ms: u64) {
    let shifted = skew * 1000;
    let (low, high) = (
        from_ms as i64 + shifted - 2_000,
        to_ms as i64 + shifted + 2_000,
    );
    assert!(
        (low..=high).contains(&local_ms),
        "a process meant to run {skew:+}s off reported {local_ms} ms, outside {low}..={high}: faketime did not shift its clock"
    );
}

fn events<'a>(lines: &'a [Value], kind: &str) -> Vec<&'a Value> {
    lines.iter().filter(|l| l["event"] == kind).collect()
}

/// One round: a holder on `holder_skew` heartbeats for a while, the three
/// hosts contend while it lives, then only `taker_skew` keeps trying and must
/// take the stale run over on time.
fn round(url: &str, holder_skew: i64, taker_skew: i64) {
    let alive = ALIVE_MS.to_string();
    let mut holder = spawn(
        holder_skew,
        &["lease-holder", "--database", url, "--alive-ms", &alive],
    );
    let held = holder.first_line();
    assert_eq!(held["event"], "held", "{held}");
    check_skew(
        holder_skew,
        held["local_ms"].as_i64().expect("local_ms"),
        holder.spawned_ms,
        now_ms(),
    );
    let held_run = held["run_id"].as_i64().expect("run id");

    let contend = CONTEND_MS.to_string();
    let contenders: Vec<Process> = [SKEW_S, 0, -SKEW_S]
        .into_iter()
        .filter(|s| *s != taker_skew)
        .enumerate()
        .map(|(i, skew)| {
            let worker = i.to_string();
            spawn(
                skew,
                &[
                    "probe",
                    "--database",
                    url,
                    "--worker",
                    &worker,
                    "--stop-after-ms",
                    &contend,
                ],
            )
        })
        .collect();
    let taker = spawn(
        taker_skew,
        &[
            "probe",
            "--database",
            url,
            "--worker",
            "9",
            "--stop-after-ms",
            "15000",
        ],
    );

    // Contenders while the holder lives: never accepted, always refused by it.
    for contender in contenders {
        let skew = contender.skew;
        let lines = contender.finish();
        let probes = events(&lines, "probe");
        assert!(
            probes.len() >= 10,
            "host {skew:+}s probed only {} times",
            probes.len()
        );
        for probe in probes {
            assert!(
                matches!(probe["outcome"].as_str(), Some("deduped" | "scope_busy")),
                "host {skew:+}s got {probe} while run {held_run} (host {holder_skew:+}s) was alive"
            );
            assert_eq!(probe["holder_run_id"].as_i64(), Some(held_run), "{probe}");
        }
    }

    // The holder heartbeated all along and was never refused.
    let holder_lines = holder.finish();
    assert!(events(&holder_lines, "lost").is_empty(), "{holder_lines:?}");
    assert_eq!(
        events(&holder_lines, "stopped").len(),
        1,
        "{holder_lines:?}"
    );
    let beats = events(&holder_lines, "heartbeat");
    assert!(beats.len() >= 8, "only {} heartbeats", beats.len());
    let deadline = beats
        .last()
        .and_then(|b| b["stale_at_us"].as_i64())
        .expect("the last heartbeat's lease deadline");

    // The taker was refused until the lease ran out, then took the run over.
    let taker_lines = taker.finish();
    let probes = events(&taker_lines, "probe");
    let (last, before) = probes.split_last().expect("the taker probed");
    assert_eq!(
        last["outcome"], "accepted",
        "host {taker_skew:+}s never took over run {held_run}: {taker_lines:?}"
    );
    assert_eq!(last["replaced_run_id"].as_i64(), Some(held_run), "{last}");
    for probe in before {
        assert!(
            matches!(probe["outcome"].as_str(), Some("deduped" | "scope_busy")),
            "{probe}"
        );
    }
    let (status, reason, finished_at) = runtime().block_on(async {
        let pool = sqlx::PgPool::connect(url).await.expect("connect");
        let row: (String, Option<String>, Option<i64>) = sqlx::query_as(
            "SELECT status, reason_code, finished_at FROM startgate.operation_runs WHERE id = $1",
        )
        .bind(held_run)
        .fetch_one(&pool)
        .await
        .expect("the held run");
        pool.close().await;
        row
    });
    assert_eq!(
        (status.as_str(), reason.as_deref()),
        ("failed", Some("run_lease_expired"))
    );
    let ended = finished_at.expect("finished_at");
    println!(
        "holder {holder_skew:+}s, taker {taker_skew:+}s: run {held_run} taken over {} ms after its lease deadline",
        (ended - deadline) / 1000
    );
    assert!(
        ended >= deadline,
        "run {held_run} was taken over {} µs before its lease ran out",
        deadline - ended
    );
    assert!(
        ended - deadline <= ON_TIME_US,
        "run {held_run} was taken over {} µs after its lease ran out (host {taker_skew:+}s)",
        ended - deadline
    );
}

#[test]
fn hosts_with_skewed_clocks_agree_on_leases_on_postgres() {
    let db = runtime().block_on(PgTestDb::create("skew"));
    prepare(&db.url(), false);
    // Every host takes over once; each holder lives on another host's clock.
    round(&db.url(), -SKEW_S, SKEW_S);
    round(&db.url(), SKEW_S, 0);
    round(&db.url(), 0, -SKEW_S);
    runtime().block_on(db.drop_now());
}

#[test]
fn history_recorded_by_skewed_hosts_never_overlaps_on_postgres() {
    let db = runtime().block_on(PgTestDb::create("skew_hammer"));
    prepare(&db.url(), false);
    let iterations: u64 = std::env::var("STARTGATE_STRESS_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(1_500, |n: u64| n / 4);
    let skews = [Some(SKEW_S), Some(0), Some(-SKEW_S)];
    let (events, verdict, seed) = hammer_skewed(&db.url(), &skews, iterations);
    let totals = totals(&events);
    report(
        "postgres (clocks +120 s, 0 s, -120 s)",
        skews.len(),
        &verdict,
        &totals,
        seed,
    );
    assert!(start_attempts(&totals) > 1_000, "{totals:?}");
    for outcome in ["takeover", "completed"] {
        assert!(
            totals.get(outcome).copied().unwrap_or(0) > 0,
            "no {outcome}: {totals:?}"
        );
    }
    runtime().block_on(db.drop_now());
}
