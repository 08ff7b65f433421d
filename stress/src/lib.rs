//! Tools to prove the scope lock with real processes: a worker that hammers a
//! few hot scopes (`startgate-stress worker`), and a checker that reads the
//! resulting history straight from the database and lists every violation.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// The registry the workers use: two operations with short timeouts so
/// abandoned runs go stale (and get taken over) within the test.
pub const REGISTRY: &str = r#"
[operations."inventory.sync"]
label = "Inventory sync"
capability = "inventory.sync"
requires = ["connection_enabled"]
dispatch_timeout = "400ms"
lease = "400ms"

[operations."compliance.snapshot"]
label = "Compliance snapshot"
capability = "inventory.sync"
requires = ["connection_enabled"]
dispatch_timeout = "400ms"
lease = "400ms"

[sequences.pair]
label = "Pair"
operations = ["inventory.sync", "compliance.snapshot"]
"#;

/// The registry of the clock-skew test: leases far shorter than the skew
/// (±120 s) between its hosts, long enough to heartbeat comfortably.
pub const SKEW_REGISTRY: &str = r#"
[operations."skew.hold"]
label = "Skew hold"
capability = "inventory.sync"
requires = ["connection_enabled"]
dispatch_timeout = "1500ms"
lease = "1500ms"

[operations."skew.other"]
label = "Skew other"
capability = "inventory.sync"
requires = ["connection_enabled"]
dispatch_timeout = "1500ms"
lease = "1500ms"
"#;

/// The hot tenants; each has one default connection `graph`.
pub fn tenants(count: usize) -> Vec<String> {
    (0..count).map(|i| format!("tenant-{i}")).collect()
}

/// One event a worker reports on stdout (a JSON line).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A start (or a sequence advance handed to this worker) was accepted.
    Accepted {
        /// The run.
        run_id: i64,
        /// Its fencing token.
        fencing_token: i64,
        /// Its tenant.
        tenant_id: String,
        /// The stale run it replaced.
        replaced_run_id: Option<i64>,
    },
    /// A call failed with a store error (fault mode only).
    Failure {
        /// What was called (`start`, `complete`, …).
        call: String,
        /// The stable error code.
        code: String,
        /// Wall-clock time the call returned, in ms since the Unix epoch.
        at_ms: u64,
        /// How long the call took.
        elapsed_ms: u64,
        /// Whether the error said the write may have been committed.
        outcome_unknown: bool,
        /// The tenant the call was for (`None` for calls across tenants, like reap).
        tenant_id: Option<String>,
    },
    /// The worker's totals.
    Summary {
        /// Calls made.
        calls: u64,
        /// Outcome and error counts by name.
        counts: BTreeMap<String, u64>,
        /// The slowest call, in ms (excluding the worker's own pauses).
        #[serde(default)]
        max_call_ms: u64,
        /// When the last call that did not fail with a store error returned
        /// (ms since the Unix epoch).
        #[serde(default)]
        last_ok_at_ms: u64,
    },
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Admitted runs that no caller was told about and that no error flagged as
/// possibly written (`outcome_unknown`) explains. A run is explained by an
/// unknown-outcome failure for its tenant (or one across tenants); each such
/// failure explains at most one run, except a cross-tenant one (a reap may
/// admit several).
pub fn unreported_runs(runs: &[RunRecord], events: &[Event]) -> Vec<String> {
    let reported: BTreeSet<i64> = events
        .iter()
        .filter_map(|e| match e {
            Event::Accepted { run_id, .. } => Some(*run_id),
            _ => None,
        })
        .collect();
    let mut unknown: BTreeMap<Option<&str>, usize> = BTreeMap::new();
    for event in events {
        if let Event::Failure {
            outcome_unknown: true,
            tenant_id,
            ..
        } = event
        {
            *unknown.entry(tenant_id.as_deref()).or_default() += 1;
        }
    }
    let wildcard = unknown.get(&None).copied().unwrap_or(0) > 0;
    let mut problems = Vec::new();
    for run in runs.iter().filter(|r| !reported.contains(&r.id)) {
        match unknown.get_mut(&Some(run.tenant_id.as_str())) {
            Some(left) if *left > 0 => *left -= 1,
            _ if wildcard => {}
            _ => problems.push(format!(
                "run {} ({}) was admitted but no caller was told, and no error said it may exist",
                run.id, run.tenant_id
            )),
        }
    }
    problems
}

/// An admitted run (one that got a fencing token) as the checker reads it
/// straight from the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRecord {
    /// Run id.
    pub id: i64,
    /// Tenant.
    pub tenant_id: String,
    /// Connection.
    pub connection_id: String,
    /// Status.
    pub status: String,
    /// Fencing token.
    pub fencing_token: i64,
    /// The scope's highest token when the run ended (`None` while active).
    pub scope_token_at_end: Option<i64>,
    /// When it was admitted, as recorded (µs since the epoch).
    pub queued_at: Option<i64>,
    /// When it ended, as recorded (`None` while active).
    pub finished_at: Option<i64>,
}

/// What the checker found.
#[derive(Debug, Default)]
pub struct Verdict {
    /// Admitted runs examined.
    pub admitted_runs: usize,
    /// Accepted results the workers reported.
    pub accepted_results: usize,
    /// Accepted audit rows.
    pub accepted_attempts: usize,
    /// Stale takeovers seen.
    pub takeovers: usize,
    /// Every violation found, in words.
    pub violations: Vec<String>,
}

/// Checks the history of admitted runs against the workers' accepted results
/// and the audit rows.
///
/// No two runs were ever active on one scope at once exactly when, per scope:
/// tokens are unique (each admission takes the scope's highest token plus one),
/// every ended run saw its own token as the scope's highest when it ended (a
/// run admitted while it was active would have raised it), and the run still
/// active, if any, holds the highest token. Unlike timestamps, this does not
/// depend on clocks or on commit order matching statement order.
///
/// The recorded timestamps must tell the same story: per scope, in token
/// order, each run was admitted no earlier than the one before it ended, and
/// ended no earlier than it was admitted. (Where the stores read the time
/// from — the database server on PostgreSQL — is what makes this hold for
/// hosts whose clocks disagree.)
///
/// Also: every accepted result names a distinct run that exists with the token
/// the caller was given, and every admitted run has exactly one accepted audit
/// row, and vice versa.
pub fn check(runs: &[RunRecord], accepted: &[Event], accepted_attempt_run_ids: &[i64]) -> Verdict {
    let mut verdict = Verdict {
        admitted_runs: runs.len(),
        accepted_attempts: accepted_attempt_run_ids.len(),
        ..Verdict::default()
    };
    let mut by_scope: BTreeMap<(&str, &str), Vec<&RunRecord>> = BTreeMap::new();
    for run in runs {
        by_scope
            .entry((&run.tenant_id, &run.connection_id))
            .or_default()
            .push(run);
    }
    for ((tenant, connection), mut scope_runs) in by_scope {
        scope_runs.sort_by_key(|r| (r.fencing_token, r.id));
        let highest = scope_runs.last().map_or(0, |r| r.fencing_token);
        for pair in scope_runs.windows(2) {
            if pair[0].fencing_token == pair[1].fencing_token {
                verdict.violations.push(format!(
                    "runs {} and {} share fencing token {} on ({tenant}, {connection})",
                    pair[0].id, pair[1].id, pair[0].fencing_token
                ));
            }
        }
        let active: Vec<&&RunRecord> = scope_runs
            .iter()
            .filter(|r| matches!(r.status.as_str(), "queued" | "running"))
            .collect();
        if active.len() > 1 {
            let ids: Vec<String> = active.iter().map(|r| r.id.to_string()).collect();
            verdict.violations.push(format!(
                "runs {} are all still active on ({tenant}, {connection})",
                ids.join(", ")
            ));
        }
        for run in &active {
            if run.fencing_token != highest {
                verdict.violations.push(format!(
                    "run {} is still active on ({tenant}, {connection}) but a later run (token {highest}) was admitted",
                    run.id
                ));
            }
        }
        for run in &scope_runs {
            if let (Some(queued), Some(finished)) = (run.queued_at, run.finished_at) {
                if finished < queued {
                    verdict.violations.push(format!(
                        "run {} on ({tenant}, {connection}) ended ({finished} µs) before it was admitted ({queued} µs)",
                        run.id
                    ));
                }
            }
        }
        for pair in scope_runs.windows(2) {
            let (before, after) = (pair[0], pair[1]);
            match (before.finished_at, after.queued_at) {
                (Some(ended), Some(admitted)) if admitted < ended => {
                    verdict.violations.push(format!(
                        "by the recorded times, runs {} and {} were active at once on ({tenant}, {connection}): \
                         {} was admitted at {admitted} µs, {} µs before {} ended",
                        before.id,
                        after.id,
                        after.id,
                        ended - admitted,
                        before.id
                    ))
                }
                (None, Some(_)) => verdict.violations.push(format!(
                    "run {} on ({tenant}, {connection}) has no end time although run {} was admitted after it",
                    before.id, after.id
                )),
                _ => {}
            }
        }
        for run in scope_runs
            .iter()
            .filter(|r| !matches!(r.status.as_str(), "queued" | "running"))
        {
            match run.scope_token_at_end {
                Some(at_end) if at_end == run.fencing_token => {}
                Some(at_end) => verdict.violations.push(format!(
                    "run {} (token {}) was active while a later run (token {at_end}) was admitted on ({tenant}, {connection})",
                    run.id, run.fencing_token
                )),
                None => verdict
                    .violations
                    .push(format!("run {} ended without recording the scope's token", run.id)),
            }
        }
    }

    let by_id: BTreeMap<i64, &RunRecord> = runs.iter().map(|r| (r.id, r)).collect();
    let mut seen = BTreeSet::new();
    for event in accepted {
        let Event::Accepted {
            run_id,
            fencing_token,
            replaced_run_id,
            ..
        } = event
        else {
            continue;
        };
        verdict.accepted_results += 1;
        if replaced_run_id.is_some() {
            verdict.takeovers += 1;
        }
        if !seen.insert(*run_id) {
            verdict
                .violations
                .push(format!("run {run_id} was reported accepted twice"));
        }
        match by_id.get(run_id) {
            None => verdict
                .violations
                .push(format!("accepted run {run_id} does not exist")),
            Some(run) if run.fencing_token != *fencing_token => verdict.violations.push(format!(
                "accepted run {run_id} has token {} but the caller was given {fencing_token}",
                run.fencing_token
            )),
            Some(_) => {}
        }
    }

    let mut audited = BTreeSet::new();
    for run_id in accepted_attempt_run_ids {
        if !audited.insert(*run_id) {
            verdict
                .violations
                .push(format!("run {run_id} has two accepted audit rows"));
        }
        if !by_id.contains_key(run_id) {
            verdict.violations.push(format!(
                "accepted audit row names run {run_id}, which was never admitted"
            ));
        }
    }
    for id in by_id.keys() {
        if !audited.contains(id) {
            verdict
                .violations
                .push(format!("admitted run {id} has no accepted audit row"));
        }
    }
    verdict
}

/// The gate's relations as plain SQL names them: in the `startgate` schema
/// on PostgreSQL, unqualified in a SQLite file.
fn table(url: &str, name: &str) -> String {
    if url.starts_with("postgres") {
        format!("startgate.{name}")
    } else {
        name.to_string()
    }
}

fn history(url: &str) -> String {
    format!(
        "SELECT id, tenant_id, provider_connection_id, status, fencing_token, scope_token_at_end, \
         queued_at, finished_at FROM {} WHERE fencing_token IS NOT NULL",
        table(url, "operation_runs")
    )
}

fn accepted_attempts(url: &str) -> String {
    format!(
        "SELECT run_id FROM {} WHERE outcome = 'accepted'",
        table(url, "start_attempts")
    )
}

/// Reads the admitted runs and the accepted audit rows with plain SQL,
/// independent of the gate's code. Works on SQLite and PostgreSQL URLs.
pub async fn load_history(url: &str) -> Result<(Vec<RunRecord>, Vec<i64>), sqlx::Error> {
    type Raw = (
        i64,
        String,
        String,
        String,
        i64,
        Option<i64>,
        Option<i64>,
        Option<i64>,
    );
    let (rows, attempts): (Vec<Raw>, Vec<i64>) = if url.starts_with("postgres") {
        let pool = sqlx::PgPool::connect(url).await?;
        let rows = sqlx::query_as(&history(url)).fetch_all(&pool).await?;
        let attempts = sqlx::query_scalar(&accepted_attempts(url))
            .fetch_all(&pool)
            .await?;
        pool.close().await;
        (rows, attempts)
    } else {
        let pool = sqlx::SqlitePool::connect(url).await?;
        let rows = sqlx::query_as(&history(url)).fetch_all(&pool).await?;
        let attempts = sqlx::query_scalar(&accepted_attempts(url))
            .fetch_all(&pool)
            .await?;
        pool.close().await;
        (rows, attempts)
    };
    let runs = rows
        .into_iter()
        .map(
            |(
                id,
                tenant_id,
                connection_id,
                status,
                fencing_token,
                scope_token_at_end,
                queued_at,
                finished_at,
            )| RunRecord {
                id,
                tenant_id,
                connection_id,
                status,
                fencing_token,
                scope_token_at_end,
                queued_at,
                finished_at,
            },
        )
        .collect();
    Ok((runs, attempts))
}

/// A small deterministic PRNG (xorshift64*), so runs are reproducible by seed.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed (zero is replaced).
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// The next value.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A value in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(id: i64, token: i64, status: &str, at_end: Option<i64>) -> RunRecord {
        let active = matches!(status, "queued" | "running");
        RunRecord {
            id,
            tenant_id: "t".into(),
            connection_id: "c".into(),
            status: status.into(),
            fencing_token: token,
            scope_token_at_end: at_end,
            queued_at: Some(token * 10),
            finished_at: (!active).then_some(token * 10 + 5),
        }
    }

    fn accepted(run_id: i64, token: i64) -> Event {
        Event::Accepted {
            run_id,
            fencing_token: token,
            tenant_id: "t".into(),
            replaced_run_id: None,
        }
    }

    #[test]
    fn a_clean_history_has_no_violations() {
        let runs = [
            run(1, 1, "succeeded", Some(1)),
            run(2, 2, "failed", Some(2)),
            run(3, 3, "running", None),
        ];
        let events = [accepted(1, 1), accepted(2, 2), accepted(3, 3)];
        let verdict = check(&runs, &events, &[1, 2, 3]);
        assert!(verdict.violations.is_empty(), "{:?}", verdict.violations);
    }

    #[test]
    fn overlap_duplicates_and_missing_audit_are_caught() {
        let runs = [
            run(1, 1, "succeeded", Some(2)),
            run(2, 2, "queued", None),
            run(3, 3, "running", None),
            run(4, 3, "cancelled", Some(3)),
        ];
        let events = [
            accepted(1, 1),
            accepted(1, 1),
            accepted(2, 9),
            accepted(7, 4),
        ];
        let verdict = check(&runs, &events, &[1, 2, 8]);
        let text = verdict.violations.join("\n");
        for needle in [
            "share fencing token 3",
            "runs 2, 3 are all still active",
            "run 2 is still active on (t, c) but a later run (token 3) was admitted",
            "run 1 (token 1) was active while a later run (token 2) was admitted",
            "run 1 was reported accepted twice",
            "has token 2 but the caller was given 9",
            "accepted run 7 does not exist",
            "names run 8, which was never admitted",
            "admitted run 3 has no accepted audit row",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in\n{text}");
        }
    }

    #[test]
    fn recorded_times_that_overlap_are_caught() {
        let mut first = run(1, 1, "succeeded", Some(1));
        first.finished_at = Some(30);
        let second = run(2, 2, "succeeded", Some(2)); // admitted at 20, before 30
        let mut third = run(3, 3, "failed", Some(3));
        third.finished_at = Some(25); // ends before it was admitted (30)
        let verdict = check(&[first, second, third], &[], &[1, 2, 3]);
        let text = verdict.violations.join("\n");
        assert!(
            text.contains("runs 1 and 2 were active at once")
                && text.contains("10 µs before 1 ended"),
            "{text}"
        );
        assert!(
            text.contains("run 3 on (t, c) ended (25 µs) before it was admitted (30 µs)"),
            "{text}"
        );
    }
}
