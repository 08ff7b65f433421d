//! What a gate has done in this process: counters and latency, kept in memory
//! (docs/DESIGN.md §12). Every call also emits a `tracing` event (target
//! `startgate`) with the same facts — never params, never credentials.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::model::{Outcome, StartResult};

/// How many recent calls of each kind the latency summary is taken over.
pub const LATENCY_WINDOW: usize = 1024;

/// A snapshot of a gate's metrics since it was opened, in this process.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MetricsSnapshot {
    /// Start results (`start`, `start_sequence`) by operation, then outcome.
    pub starts: BTreeMap<String, BTreeMap<String, u64>>,
    /// Blocked starts by their primary reason code.
    pub blocked: BTreeMap<String, u64>,
    /// Accepted starts that ended a stale run and took its scope.
    pub takeovers: u64,
    /// Runs ended by `reap_stale`.
    pub reaped_runs: u64,
    /// Failed calls by stable error code.
    pub errors: BTreeMap<String, u64>,
    /// Latency per call kind over its last [`LATENCY_WINDOW`] calls.
    pub latency: BTreeMap<String, Latency>,
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
            tracing::warn!(
                target: "startgate",
                call = kind,
                duration_us = us,
                error = %err.code(),
                "{kind} failed"
            );
        } else {
            tracing::debug!(target: "startgate", call = kind, duration_us = us, "{kind}");
        }
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
    pub(crate) fn call<T>(&self, kind: &'static str, elapsed: Duration, result: &Result<T, Error>) {
        self.lock().record_call(kind, micros(elapsed), result);
    }

    /// Records a start call (as [`Metrics::call`]) and counts its result, under
    /// one lock.
    pub(crate) fn start(
        &self,
        kind: &'static str,
        elapsed: Duration,
        result: &Result<StartResult, Error>,
    ) {
        let us = micros(elapsed);
        let mut state = self.lock();
        state.record_call(kind, us, result);
        let Ok(result) = result else {
            return;
        };
        let snapshot = &mut state.snapshot;
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
            outcome = %result.outcome,
            reason_code = primary.unwrap_or_default(),
            run_id = run_id.unwrap_or(0),
            replaced_run_id = result.replaced_run_id.unwrap_or(0),
            duration_us = us,
            "{} {}: {}",
            kind,
            result.operation,
            result.outcome
        );
    }

    /// Counts runs ended by a reap.
    pub(crate) fn reaped(&self, runs: usize) {
        self.lock().snapshot.reaped_runs += runs as u64;
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
