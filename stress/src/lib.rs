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
    /// The worker's totals.
    Summary {
        /// Calls made.
        calls: u64,
        /// Outcome and error counts by name.
        counts: BTreeMap<String, u64>,
    },
}

/// A run as the checker reads it from the database.
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
    /// Admission time (µs).
    pub queued_at: i64,
    /// End time (µs), if ended.
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

/// Checks the history of admitted runs (those with a fencing token) against
/// the workers' accepted results and the audit rows:
/// - on each scope, tokens are unique and each run ended before the next was
///   admitted (no two runs were ever active at once), and at most one is active;
/// - every accepted result names a distinct run that exists with that token;
/// - every admitted run has exactly one accepted audit row, and vice versa.
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
        let active = scope_runs
            .iter()
            .filter(|r| matches!(r.status.as_str(), "queued" | "running"))
            .count();
        if active > 1 {
            verdict.violations.push(format!(
                "scope ({tenant}, {connection}) ends with {active} active runs"
            ));
        }
        for pair in scope_runs.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            if a.fencing_token == b.fencing_token {
                verdict.violations.push(format!(
                    "runs {} and {} share fencing token {} on ({tenant}, {connection})",
                    a.id, b.id, a.fencing_token
                ));
            }
            match a.finished_at {
                Some(end) if end <= b.queued_at => {}
                Some(end) => verdict.violations.push(format!(
                    "runs {} and {} were active together on ({tenant}, {connection}): {} ended at {end}, {} was admitted at {}",
                    a.id, b.id, a.id, b.id, b.queued_at
                )),
                None => verdict.violations.push(format!(
                    "run {} was still active when run {} was admitted on ({tenant}, {connection})",
                    a.id, b.id
                )),
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

    fn run(id: i64, token: i64, queued_at: i64, finished_at: Option<i64>) -> RunRecord {
        RunRecord {
            id,
            tenant_id: "t".into(),
            connection_id: "c".into(),
            status: if finished_at.is_some() {
                "succeeded"
            } else {
                "queued"
            }
            .into(),
            fencing_token: token,
            queued_at,
            finished_at,
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
            run(1, 1, 0, Some(10)),
            run(2, 2, 10, Some(20)),
            run(3, 3, 25, None),
        ];
        let events = [accepted(1, 1), accepted(2, 2), accepted(3, 3)];
        let verdict = check(&runs, &events, &[1, 2, 3]);
        assert!(verdict.violations.is_empty(), "{:?}", verdict.violations);
    }

    #[test]
    fn overlap_duplicates_and_missing_audit_are_caught() {
        let runs = [
            run(1, 1, 0, Some(10)),
            run(2, 2, 5, None),
            run(3, 3, 6, None),
        ];
        let events = [
            accepted(1, 1),
            accepted(1, 1),
            accepted(2, 9),
            accepted(4, 4),
        ];
        let verdict = check(&runs, &events, &[1, 2, 7]);
        let text = verdict.violations.join("\n");
        for needle in [
            "runs 1 and 2 were active together",
            "run 2 was still active when run 3 was admitted",
            "ends with 2 active runs",
            "run 1 was reported accepted twice",
            "has token 2 but the caller was given 9",
            "accepted run 4 does not exist",
            "names run 7, which was never admitted",
            "admitted run 3 has no accepted audit row",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in\n{text}");
        }
    }
}
