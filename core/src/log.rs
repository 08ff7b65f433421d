//! The gate's `tracing` events, routed into a host's own logging
//! (docs/DESIGN.md §12).
//!
//! A Rust application installs its own subscriber and sees the events of
//! target `startgate` directly. The foreign surfaces (C, PHP, Python, Node)
//! and the CLI call [`install`], which sets this module's subscriber as the
//! process default. It keeps only the `startgate` target and then either
//!
//! - collects records for a host logger ([`set_host_level`]): the surface
//!   hands them over with [`deliver`] on the host's own thread, at the end of
//!   each call, so a PHP or Node callback never runs on a runtime thread; or
//! - with no host logger, writes one line per event to stderr at the level
//!   named by `STARTGATE_LOG` (`error`, `warn`, `info`, `debug`, `trace`);
//!   unset, nothing is written.
//!
//! Events carry the call, operation, tenant, outcome, reason code, run id,
//! duration, round trips and retries — never params, never credentials.

use std::collections::VecDeque;
use std::io::Write;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};

use serde_json::{Map, Number, Value};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Event, Metadata, Subscriber};

/// The target of every event and span the gate emits.
pub const TARGET: &str = "startgate";

/// How many records wait for a host that does not collect them before the
/// oldest are dropped (and the drop is reported with the next delivery).
pub const MAX_WAITING_RECORDS: usize = 10_000;

/// A record's severity, most severe first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    /// A failure the host must act on.
    Error = 1,
    /// A failed call.
    Warn = 2,
    /// A start's decision, a run's lifecycle step, a reap.
    Info = 3,
    /// Reads and other calls.
    Debug = 4,
    /// Everything.
    Trace = 5,
}

impl LogLevel {
    /// Every level's name, most severe first.
    pub const NAMES: [&'static str; 5] = ["error", "warn", "info", "debug", "trace"];

    /// The refusal of a level name that is not one of [`LogLevel::NAMES`],
    /// worded the same on every surface.
    pub fn invalid(field: &str) -> crate::Error {
        crate::Error::invalid(
            field,
            format!("must be one of {}", LogLevel::NAMES.join(", ")),
        )
    }

    /// The level named exactly `name`, or [`LogLevel::invalid`] naming
    /// `field`: what every surface's `level` argument goes through.
    pub fn named(field: &str, name: &str) -> Result<LogLevel, crate::Error> {
        LogLevel::parse(name).ok_or_else(|| LogLevel::invalid(field))
    }

    /// The level's name: `error`, `warn`, `info`, `debug` or `trace`.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }

    /// The level named exactly `name` (one of [`LogLevel::NAMES`]).
    pub fn parse(name: &str) -> Option<LogLevel> {
        match name {
            "error" => Some(LogLevel::Error),
            "warn" => Some(LogLevel::Warn),
            "info" => Some(LogLevel::Info),
            "debug" => Some(LogLevel::Debug),
            "trace" => Some(LogLevel::Trace),
            _ => None,
        }
    }

    fn of(level: &tracing::Level) -> LogLevel {
        match *level {
            tracing::Level::ERROR => LogLevel::Error,
            tracing::Level::WARN => LogLevel::Warn,
            tracing::Level::INFO => LogLevel::Info,
            tracing::Level::DEBUG => LogLevel::Debug,
            _ => LogLevel::Trace,
        }
    }

    fn from_rank(rank: u8) -> Option<LogLevel> {
        match rank {
            1 => Some(LogLevel::Error),
            2 => Some(LogLevel::Warn),
            3 => Some(LogLevel::Info),
            4 => Some(LogLevel::Debug),
            5 => Some(LogLevel::Trace),
            _ => None,
        }
    }
}

/// One event, as a host logger receives it.
#[derive(Debug, Clone, PartialEq)]
pub struct LogRecord {
    /// Its severity.
    pub level: LogLevel,
    /// Always [`TARGET`] for the gate's own events.
    pub target: String,
    /// A short sentence, e.g. `start inventory.sync: accepted`.
    pub message: String,
    /// The event's fields by name (`call`, `operation`, `tenant_id`,
    /// `outcome`, `reason_code`, `run_id`, `duration_us`, `round_trips`,
    /// `retries`, …); a field with no value is absent.
    pub fields: Map<String, Value>,
}

impl LogRecord {
    /// The record as one line: message, then `key=value` for each field.
    pub fn to_line(&self) -> String {
        let mut line = self.message.clone();
        for (key, value) in &self.fields {
            match value {
                Value::String(text) => line.push_str(&format!(" {key}={text:?}")),
                other => line.push_str(&format!(" {key}={other}")),
            }
        }
        line
    }
}

/// Where records go: the host's level (0: no host logger) and the stderr
/// level from `STARTGATE_LOG` (0: unset), and the records waiting for the host.
struct Routing {
    host_level: AtomicU8,
    stderr_level: AtomicU8,
    waiting: Mutex<VecDeque<LogRecord>>,
    dropped: AtomicU64,
    delivering: Mutex<()>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A queue of plain records stays consistent if a holder panicked.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn routing() -> &'static Routing {
    static ROUTING: OnceLock<Routing> = OnceLock::new();
    ROUTING.get_or_init(|| {
        // Unset or not a level name: nothing goes to stderr.
        let stderr = std::env::var("STARTGATE_LOG")
            .ok()
            .and_then(|name| LogLevel::parse(name.trim()))
            .map_or(0, |level| level as u8);
        Routing {
            host_level: AtomicU8::new(0),
            stderr_level: AtomicU8::new(stderr),
            waiting: Mutex::new(VecDeque::new()),
            dropped: AtomicU64::new(0),
            delivering: Mutex::new(()),
        }
    })
}

/// Installs the routing subscriber as the process's default, once. Returns
/// whether it is in place: `false` when the process already had another
/// default subscriber (which then sees the gate's events itself).
pub fn install() -> bool {
    static INSTALLED: OnceLock<bool> = OnceLock::new();
    *INSTALLED.get_or_init(|| {
        routing();
        tracing::subscriber::set_global_default(Routed).is_ok()
    })
}

/// Sends records at `level` and more severe to the host (collected for
/// [`deliver`]) instead of stderr; `None` detaches the host logger, dropping
/// what it had not collected.
pub fn set_host_level(level: Option<LogLevel>) {
    let routing = routing();
    routing
        .host_level
        .store(level.map_or(0, |l| l as u8), Ordering::Relaxed);
    if level.is_none() {
        lock(&routing.waiting).clear();
    }
}

/// The level a host logger receives, if one is attached.
pub fn host_level() -> Option<LogLevel> {
    LogLevel::from_rank(routing().host_level.load(Ordering::Relaxed))
}

/// Whether records (or a count of dropped ones) wait for the host: a host
/// may skip [`deliver`], and whatever it costs to set up, when none do.
pub fn waiting() -> bool {
    let routing = routing();
    routing.dropped.load(Ordering::Relaxed) > 0 || !lock(&routing.waiting).is_empty()
}

/// Hands the records waiting for the host to `sink`, oldest first, on the
/// calling thread. One thread delivers at a time; a delivery asked for while
/// another runs (including from inside `sink`) leaves its records to it.
pub fn deliver(mut sink: impl FnMut(LogRecord)) {
    let routing = routing();
    let Ok(_turn) = routing.delivering.try_lock() else {
        return;
    };
    loop {
        let batch = std::mem::take(&mut *lock(&routing.waiting));
        let dropped = routing.dropped.swap(0, Ordering::Relaxed);
        if batch.is_empty() && dropped == 0 {
            return;
        }
        if dropped > 0 {
            let mut fields = Map::new();
            fields.insert("dropped".into(), Value::from(dropped));
            sink(LogRecord {
                level: LogLevel::Warn,
                target: TARGET.into(),
                message: format!(
                    "{dropped} log records were dropped before the host collected them"
                ),
                fields,
            });
        }
        batch.into_iter().for_each(&mut sink);
    }
}

fn is_ours(metadata: &Metadata<'_>) -> bool {
    metadata.target() == TARGET
}

/// The most verbose level anyone receives now (0: nobody).
fn wanted() -> u8 {
    let routing = routing();
    match routing.host_level.load(Ordering::Relaxed) {
        0 => routing.stderr_level.load(Ordering::Relaxed),
        host => host,
    }
}

/// Collects an event's fields as JSON values.
struct Fields {
    message: String,
    fields: Map<String, Value>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_string();
        } else {
            self.fields
                .insert(field.name().into(), Value::String(value.into()));
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.fields.insert(field.name().into(), Value::from(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.fields.insert(field.name().into(), Value::from(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.fields.insert(field.name().into(), Value::Bool(value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        let number = Number::from_f64(value).map_or(Value::Null, Value::Number);
        self.fields.insert(field.name().into(), number);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        // `%value` fields and the message arrive here as Display text.
        let text = format!("{value:?}");
        if field.name() == "message" {
            self.message = text;
        } else {
            self.fields.insert(field.name().into(), Value::String(text));
        }
    }
}

fn write_stderr(record: &LogRecord) {
    let now = time::OffsetDateTime::now_utc();
    let stamp = now
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let level = record.level.as_str().to_ascii_uppercase();
    // A closed stderr is no reason to fail a call.
    let _ = writeln!(
        std::io::stderr().lock(),
        "{stamp} {level:>5} {}: {}",
        record.target,
        record.to_line()
    );
}

/// The subscriber [`install`] sets: the `startgate` target only, levels as
/// [`set_host_level`] and `STARTGATE_LOG` say. Spans are accepted and not
/// kept: every event carries its call's fields itself.
struct Routed;

impl Subscriber for Routed {
    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
        // Other crates' events (the drivers' statement logs among them) are
        // never even built; ours are asked about per call, as levels change.
        if is_ours(metadata) {
            Interest::sometimes()
        } else {
            Interest::never()
        }
    }

    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        is_ours(metadata) && LogLevel::of(metadata.level()) as u8 <= wanted()
    }

    fn new_span(&self, _span: &Attributes<'_>) -> Id {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Id::from_u64(NEXT.fetch_add(1, Ordering::Relaxed))
    }

    fn record(&self, _span: &Id, _values: &Record<'_>) {}

    fn record_follows_from(&self, _span: &Id, _follows: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let metadata = event.metadata();
        let mut fields = Fields {
            message: String::new(),
            fields: Map::new(),
        };
        event.record(&mut fields);
        let record = LogRecord {
            level: LogLevel::of(metadata.level()),
            target: metadata.target().to_string(),
            message: fields.message,
            fields: fields.fields,
        };
        let routing = routing();
        let host = routing.host_level.load(Ordering::Relaxed);
        if host == 0 {
            write_stderr(&record);
            return;
        }
        if record.level as u8 > host {
            return;
        }
        let mut waiting = lock(&routing.waiting);
        if waiting.len() >= MAX_WAITING_RECORDS {
            waiting.pop_front();
            routing.dropped.fetch_add(1, Ordering::Relaxed);
        }
        waiting.push_back(record);
    }

    fn enter(&self, _span: &Id) {}

    fn exit(&self, _span: &Id) {}
}

#[cfg(test)]
mod tests {
    use super::LogLevel;

    #[test]
    fn levels_parse_by_name_and_order_by_severity() {
        assert_eq!(LogLevel::parse("info"), Some(LogLevel::Info));
        // Exact names only: no case folding, no aliases, no trimming.
        for other in ["INFO", "warning", " info", "verbose", ""] {
            assert_eq!(LogLevel::parse(other), None, "{other:?}");
        }
        assert!(LogLevel::Error < LogLevel::Debug);
        for (level, name) in [
            LogLevel::Error,
            LogLevel::Warn,
            LogLevel::Info,
            LogLevel::Debug,
            LogLevel::Trace,
        ]
        .into_iter()
        .zip(LogLevel::NAMES)
        {
            assert_eq!(level.as_str(), name);
            assert_eq!(LogLevel::parse(name), Some(level));
            assert_eq!(LogLevel::from_rank(level as u8), Some(level));
        }
    }
}
