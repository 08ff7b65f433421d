//! Percentiles and the "median of rounds (min–max)" every figure is reported as.

use std::time::Duration;

/// The `q`-quantile (0..=1) of `samples` (nearest rank). 0 for no samples.
pub fn quantile(samples: &mut [f64], q: f64) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    samples.sort_by(|a, b| a.total_cmp(b));
    let rank = ((samples.len() as f64 - 1.0) * q).round() as usize;
    samples[rank.min(samples.len() - 1)]
}

/// One value per round, summarised as median (min–max).
#[derive(Debug, Clone, Default)]
pub struct Rounds(pub Vec<f64>);

impl Rounds {
    pub fn push(&mut self, value: f64) {
        self.0.push(value);
    }

    pub fn median(&self) -> f64 {
        quantile(&mut self.0.clone(), 0.5)
    }

    pub fn min(&self) -> f64 {
        self.0.iter().copied().fold(f64::INFINITY, f64::min)
    }

    pub fn max(&self) -> f64 {
        self.0.iter().copied().fold(f64::NEG_INFINITY, f64::max)
    }

    /// "12.3 (11.9–13.0)" with `digits` decimals.
    pub fn show(&self, digits: usize) -> String {
        format!(
            "{:.d$} ({:.d$}–{:.d$})",
            self.median(),
            self.min(),
            self.max(),
            d = digits
        )
    }
}

/// CPU time this process has used (all threads, user + system), in µs:
/// how much of a call's latency is spent in the client rather than waiting.
pub fn process_cpu_us() -> f64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage only writes the struct we pass; zeroed is a valid rusage.
    let usage = unsafe {
        if libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) != 0 {
            return 0.0;
        }
        usage.assume_init()
    };
    let us = |t: libc::timeval| t.tv_sec as f64 * 1e6 + t.tv_usec as f64;
    us(usage.ru_utime) + us(usage.ru_stime)
}

/// CPU time the PostgreSQL server's processes have used (user + system), in
/// µs: the other side of a throughput figure on a machine where client and
/// server share the cores. Processes that exit meanwhile are not counted
/// (the benchmarks keep their connections open).
pub fn server_cpu_us() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    let mut total = 0.0;
    for entry in entries.flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // pid (comm) state … utime stime: fields 14 and 15, counted after the comm.
        let Some((head, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        if !head.ends_with("(postgres") {
            continue;
        }
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let tick = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        total += tick(11) + tick(12);
    }
    total / ticks * 1e6
}

/// Per-operation latencies of one batch, in microseconds, and the client CPU
/// the batch used per operation.
#[derive(Debug, Clone, Default)]
pub struct Latencies(pub Vec<f64>, pub f64);

impl Latencies {
    pub fn record(&mut self, took: Duration) {
        self.0.push(took.as_secs_f64() * 1e6);
    }

    pub fn p(&self, q: f64) -> f64 {
        quantile(&mut self.0.clone(), q)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_and_rounds() {
        let mut v = vec![5.0, 1.0, 3.0, 2.0, 4.0];
        assert_eq!(quantile(&mut v, 0.5), 3.0);
        assert_eq!(quantile(&mut v, 0.0), 1.0);
        assert_eq!(quantile(&mut v, 1.0), 5.0);
        let r = Rounds(vec![2.0, 1.0, 3.0]);
        assert_eq!(r.show(1), "2.0 (1.0–3.0)");
    }
}
