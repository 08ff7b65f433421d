//! What a gate has done in this process: counters and latency, kept in memory
//! (docs/DESIGN.md §12). Every call also emits a `tracing` event (target
//! `startgate`) with the same facts — never params, never credentials — and
//! the round trips it made to the database and the lost races it retried.

use std::cell::Cell;
use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::model::{Outcome, StartResult};

/// How many recent calls of each kind the latency summary is taken over.
pub const LATENCY_WINDOW: usize = 1024;

/// What starts decided, counted the same way by a gate in memory
/// ([`MetricsSnapshot`]) and by the database ([`DatabaseStats`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartCounts {
    /// Start results (`start`, `start_sequence`) by operation, then outcome.
    pub starts: BTreeMap<String, BTreeMap<String, u64>>,
    /// Blocked starts by their primary reason code.
    pub blocked: BTreeMap<String, u64>,
    /// Accepted starts that ended a stale run and took its scope.
    pub takeovers: u64,
    /// Runs ended as lease-expired by `reap_stale` (not by a takeover).
    pub reaped_runs: u64,
}

/// A snapshot of a gate's metrics since it was opened, in this process.
/// Its JSON form is flat: `starts`, `blocked`, `takeovers`, `reaped_runs`,
/// `errors`, `latency`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MetricsSnapshot {
    /// What this gate's starts decided, and its reaps.
    #[serde(flatten)]
    pub counts: StartCounts,
    /// Failed calls by stable error code.
    pub errors: BTreeMap<String, u64>,
    /// Latency per call kind over its last [`LATENCY_WINDOW`] calls.
    pub latency: BTreeMap<String, Latency>,
}

/// What the database records of every gate sharing it ([`crate::Gate::stats`]):
/// the counts of a [`MetricsSnapshot`], over every process and since the
/// database was created, and the runs by status now. Failed calls and latency
/// are only known to the process that made the calls (its `metrics()`). Its
/// JSON form is flat: `starts`, `blocked`, `takeovers`, `reaped_runs`, `runs`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatabaseStats {
    /// What every gate's starts decided, and the reaps.
    #[serde(flatten)]
    pub counts: StartCounts,
    /// Runs by status (`queued`, `running`, `succeeded`, …) now.
    pub runs: BTreeMap<String, u64>,
}

impl DatabaseStats {
    /// The counts in the Prometheus text exposition format (version 0.0.4).
    pub fn to_prometheus(&self) -> String {
        let mut out = String::new();
        let mut family = |name: &str, kind: &str, help: &str, samples: Vec<(String, u64)>| {
            out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
            for (labels, value) in samples {
                out.push_str(&format!("{name}{labels} {value}\n"));
            }
        };
        let counts = &self.counts;
        let starts = counts
            .starts
            .iter()
            .flat_map(|(operation, outcomes)| {
                outcomes.iter().map(move |(outcome, n)| {
                    (
                        labels(&[("operation", operation), ("outcome", outcome)]),
                        *n,
                    )
                })
            })
            .collect();
        family(
            "startgate_starts_total",
            "counter",
            "Start attempts by operation and outcome.",
            starts,
        );
        let blocked = counts
            .blocked
            .iter()
            .map(|(reason, n)| (labels(&[("reason_code", reason)]), *n))
            .collect();
        family(
            "startgate_blocked_total",
            "counter",
            "Blocked start attempts by primary reason code.",
            blocked,
        );
        family(
            "startgate_takeovers_total",
            "counter",
            "Accepted starts that ended a stale run and took its scope.",
            vec![(String::new(), counts.takeovers)],
        );
        family(
            "startgate_reaped_runs_total",
            "counter",
            "Runs ended as lease-expired by a reap.",
            vec![(String::new(), counts.reaped_runs)],
        );
        let runs = self
            .runs
            .iter()
            .map(|(status, n)| (labels(&[("status", status)]), *n))
            .collect();
        family("startgate_runs", "gauge", "Runs by status.", runs);
        out
    }
}

/// `{name="value",…}` with Prometheus's escapes (backslash, quote, newline).
fn labels(pairs: &[(&str, &str)]) -> String {
    let inner: Vec<String> = pairs
        .iter()
        .map(|(name, value)| {
            let escaped = value
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            format!("{name}=\"{escaped}\"")
        })
        .collect();
    format!("{{{}}}", inner.join(","))
}

/// A latency summary of one call kind.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// Calls of this kind since the gate opened.
    pub calls: u64,
    /// Median, in microseconds, over the recent window.
    pub p50_us: u64,
    /// 99th percentile, in microseconds, over the recent window.
    pub p99_us: u64,
}

/// What one call asked of the database: statements and transaction-control
/// commands sent and answered (on PostgreSQL each is a network round trip,
/// on SQLite a call into the library), and transactions run again after
/// losing a race to a concurrent writer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct CallCounts {
    pub(crate) round_trips: u32,
    pub(crate) retries: u32,
}

tokio::task_local! {
    static CALL: Cell<CallCounts>;
}

fn count(change: impl FnOnce(&mut CallCounts)) {
    // Outside a counted call (migrations, a pool's own pings) nothing counts.
    let _ = CALL.try_with(|cell| {
        let mut counts = cell.get();
        change(&mut counts);
        cell.set(counts);
    });
}

/// Counts one request to the database in the current call.
pub(crate) fn round_trip() {
    count(|c| c.round_trips = c.round_trips.saturating_add(1));
}

/// Counts one transaction run again after a lost race in the current call.
pub(crate) fn retry() {
    count(|c| c.retries = c.retries.saturating_add(1));
}

/// Runs `call`, counting its round trips and retries.
pub(crate) async fn counted<F: Future>(call: F) -> (F::Output, CallCounts) {
    CALL.scope(Cell::new(CallCounts::default()), async {
        let output = call.await;
        (output, CALL.with(Cell::get))
    })
    .await
}

#[derive(Debug, Default)]
struct State {
    snapshot: MetricsSnapshot,
    windows: BTreeMap<&'static str, VecDeque<u64>>,
}

/// Adds one to `key`'s count, allocating the key only the first time.
fn bump(counts: &mut BTreeMap<String, u64>, key: &str) {
    match counts.get_mut(key) {
        Some(count) => *count += 1,
        None => {
            counts.insert(key.to_string(), 1);
        }
    }
}

impl State {
    /// Records a call's latency, and its error code when it failed.
    fn record_call<T>(&mut self, kind: &'static str, us: u64, result: &Result<T, Error>) {
        let window = self.windows.entry(kind).or_default();
        if window.len() == LATENCY_WINDOW {
            window.pop_front();
        }
        window.push_back(us);
        // Percentiles are taken when a snapshot is asked for, not per call.
        match self.snapshot.latency.get_mut(kind) {
            Some(latency) => latency.calls += 1,
            None => {
                let first = Latency {
                    calls: 1,
                    ..Latency::default()
                };
                self.snapshot.latency.insert(kind.to_string(), first);
            }
        }
        if let Err(err) = result {
            bump(&mut self.snapshot.errors, err.code().as_str());
        }
    }
}

/// The event of a call that is not a start's decision (a start's own event
/// says more): a failure at `warn`, a run's step at `info`, the rest at
/// `debug`. Emitted outside the metrics lock, so a host's logger never
/// holds up the other calls.
fn log_call<T>(
    kind: &'static str,
    us: u64,
    counts: CallCounts,
    run_id: Option<i64>,
    result: &Result<T, Error>,
) {
    // One event, at the level given, with the fields every call has.
    macro_rules! call_event {
        ($level:ident) => {
            tracing::$level!(
                target: "startgate",
                call = kind,
                run_id,
                duration_us = us,
                round_trips = counts.round_trips,
                retries = counts.retries,
                "{kind}"
            )
        };
    }
    match result {
        Err(err) => {
            // An invalid request's message may quote what was sent: only
            // the field it names is logged.
            let (field, message) = match err {
                Error::InvalidRequest { field, .. } => (Some(field.as_str()), None),
                other => (None, Some(other.to_string())),
            };
            tracing::warn!(
                target: "startgate",
                call = kind,
                run_id,
                error = err.code().as_str(),
                field,
                error_message = message,
                duration_us = us,
                round_trips = counts.round_trips,
                retries = counts.retries,
                "{kind} failed: {}",
                err.code().as_str()
            );
        }
        Ok(_) if is_lifecycle(kind) => call_event!(info),
        Ok(_) => call_event!(debug),
    }
}

/// The counters of one gate (shared by its clones).
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    state: Mutex<State>,
}

fn micros(elapsed: Duration) -> u64 {
    u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX)
}

impl Metrics {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Plain counters: a panic while holding the lock leaves them usable.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Records one call of `kind` that took `elapsed`: its latency, and its
    /// error code when it failed.
    pub(crate) fn call<T>(
        &self,
        kind: &'static str,
        elapsed: Duration,
        counts: CallCounts,
        run_id: Option<i64>,
        result: &Result<T, Error>,
    ) {
        let us = micros(elapsed);
        self.lock().record_call(kind, us, result);
        log_call(kind, us, counts, run_id, result);
    }

    /// Records a start call (as [`Metrics::call`]) and counts its result, under
    /// one lock.
    pub(crate) fn start(
        &self,
        kind: &'static str,
        elapsed: Duration,
        counts: CallCounts,
        result: &Result<StartResult, Error>,
    ) {
        let us = micros(elapsed);
        let mut state = self.lock();
        state.record_call(kind, us, result);
        let Ok(result) = result else {
            drop(state);
            return log_call(kind, us, counts, None, result);
        };
        let snapshot = &mut state.snapshot.counts;
        let outcomes = match snapshot.starts.get_mut(&result.operation) {
            Some(outcomes) => outcomes,
            None => snapshot.starts.entry(result.operation.clone()).or_default(),
        };
        bump(outcomes, result.outcome.as_str());
        let primary = result.reasons.first().map(|r| r.code.as_str());
        if result.outcome == Outcome::Blocked {
            bump(&mut snapshot.blocked, primary.unwrap_or_default());
        }
        if result.outcome == Outcome::Accepted && result.replaced_run_id.is_some() {
            snapshot.takeovers += 1;
        }
        drop(state);
        let run_id = result
            .run
            .as_ref()
            .map(|r| r.id)
            .or(result.holder.as_ref().map(|h| h.id));
        tracing::info!(
            target: "startgate",
            call = kind,
            operation = %result.operation,
            tenant_id = %result.tenant_id,
            outcome = result.outcome.as_str(),
            reason_code = primary,
            run_id,
            replaced_run_id = result.replaced_run_id,
            params_differ = result.params_differ,
            duration_us = us,
            round_trips = counts.round_trips,
            retries = counts.retries,
            "{} {}: {}",
            kind,
            result.operation,
            result.outcome
        );
    }

    /// Counts runs ended by a reap.
    pub(crate) fn reaped(&self, runs: usize) {
        self.lock().snapshot.counts.reaped_runs += runs as u64;
    }

    /// The counters as they stand.
    pub(crate) fn snapshot(&self) -> MetricsSnapshot {
        let state = self.lock();
        let mut snapshot = state.snapshot.clone();
        for (kind, window) in &state.windows {
            let mut sorted: Vec<u64> = window.iter().copied().collect();
            sorted.sort_unstable();
            if let Some(latency) = snapshot.latency.get_mut(*kind) {
                latency.p50_us = percentile(&sorted, 50);
                latency.p99_us = percentile(&sorted, 99);
            }
        }
        snapshot
    }
}

/// Calls that change a run: logged at `info`, the rest at `debug`.
fn is_lifecycle(kind: &str) -> bool {
    matches!(kind, "mark_running" | "complete" | "cancel" | "reap_stale")
}

/// The nearest-rank `pct`th percentile of sorted samples (0 when empty).
fn percentile(sorted: &[u64], pct: usize) -> u64 {
    let rank = (sorted.len() * pct).div_ceil(100).max(1);
    sorted.get(rank - 1).copied().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn nearest_rank_percentiles() {
        let samples: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&samples, 50), 50);
        assert_eq!(percentile(&samples, 99), 99);
        assert_eq!(percentile(&[7], 99), 7);
        assert_eq!(percentile(&[], 50), 0);
    }
}
