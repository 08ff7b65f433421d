//! The contract as JSON documents: what the C ABI (and every surface that
//! speaks JSON) calls. One method name and one JSON object of arguments in,
//! one JSON document out, the same names as DESIGN.md.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::error::{Error, Result};
use crate::gate::{Gate, GateOptions};
use crate::model::{
    Completion, ProviderConnection, Run, RunFilter, SequenceRequest, StartRequest, StartResult,
};
use crate::time::{Clock, Timestamp};

/// Options for opening a gate, as a JSON object (every field optional):
/// `{"connect_timeout_ms": 5000, "acquire_timeout_ms": 5000,
///   "statement_timeout_ms": 5000, "max_connections": 8,
///   "manual_clock": "2026-01-01T09:00:00Z"}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenOptions {
    /// Bound on establishing a connection, in milliseconds.
    pub connect_timeout_ms: Option<u64>,
    /// Bound on waiting for a pooled connection, in milliseconds.
    pub acquire_timeout_ms: Option<u64>,
    /// Bound on one statement, in milliseconds.
    pub statement_timeout_ms: Option<u64>,
    /// Pool size.
    pub max_connections: Option<u32>,
    /// Start a manual clock at this instant instead of using the system clock
    /// (tests and demos; move it with `advance_clock`).
    pub manual_clock: Option<Timestamp>,
}

impl OpenOptions {
    /// Parses options from JSON (an empty string or `null` means defaults).
    pub fn from_json(json: &str) -> Result<OpenOptions> {
        let trimmed = json.trim();
        if trimmed.is_empty() || trimmed == "null" {
            return Ok(OpenOptions::default());
        }
        Error::parse_json(trimmed)
    }

    /// The gate options these describe.
    pub fn to_gate_options(&self) -> Result<GateOptions> {
        let defaults = GateOptions::default();
        let ms = |field: &str, value: Option<u64>, default: Duration| -> Result<Duration> {
            match value {
                None => Ok(default),
                Some(0) => Err(Error::invalid(field, "must be at least 1 millisecond")),
                Some(ms) => Ok(Duration::from_millis(ms)),
            }
        };
        if self.max_connections == Some(0) {
            return Err(Error::invalid("max_connections", "must be at least 1"));
        }
        Ok(GateOptions {
            connect_timeout: ms(
                "connect_timeout_ms",
                self.connect_timeout_ms,
                defaults.connect_timeout,
            )?,
            acquire_timeout: ms(
                "acquire_timeout_ms",
                self.acquire_timeout_ms,
                defaults.acquire_timeout,
            )?,
            statement_timeout: ms(
                "statement_timeout_ms",
                self.statement_timeout_ms,
                defaults.statement_timeout,
            )?,
            max_connections: self.max_connections.unwrap_or(defaults.max_connections),
            clock: self.manual_clock.map(Clock::manual).unwrap_or_default(),
        })
    }
}

/// The methods [`call`] accepts, in the order of the contract.
pub const METHODS: [&str; 20] = [
    "migrate",
    "start",
    "check",
    "start_sequence",
    "mark_running",
    "heartbeat",
    "complete",
    "cancel",
    "reap_stale",
    "get_run",
    "list_runs",
    "attempts_for_run",
    "list_attempts",
    "upsert_connection",
    "get_connection",
    "default_connection",
    "list_connections",
    "present",
    "present_run",
    "advance_clock",
];

/// An error as a JSON object: `{"code": "...", "message": "..."}`.
pub fn error_json(err: &Error) -> Value {
    json!({ "code": err.code().as_str(), "message": err.to_string() })
}

fn to_value<T: serde::Serialize>(value: &T) -> Result<Value> {
    serde_json::to_value(value)
        .map_err(|e| Error::internal(format!("cannot encode the result: {e}")))
}

struct Args<'a> {
    method: &'a str,
    map: Map<String, Value>,
}

impl Args<'_> {
    fn take(&mut self, key: &str) -> Result<Value> {
        self.map
            .remove(key)
            .ok_or_else(|| Error::invalid(key, format!("missing (required by {})", self.method)))
    }

    fn optional(&mut self, key: &str) -> Option<Value> {
        self.map.remove(key).filter(|v| !v.is_null())
    }

    fn int(&mut self, key: &str) -> Result<i64> {
        let value = self.take(key)?;
        value
            .as_i64()
            .ok_or_else(|| Error::invalid(key, format!("expected an integer, found {value}")))
    }

    fn string(&mut self, key: &str) -> Result<String> {
        match self.take(key)? {
            Value::String(s) => Ok(s),
            other => Err(Error::invalid(
                key,
                format!("expected a string, found {other}"),
            )),
        }
    }

    fn optional_string(&mut self, key: &str) -> Result<Option<String>> {
        match self.optional(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(Error::invalid(
                key,
                format!("expected a string, found {other}"),
            )),
        }
    }

    /// A document argument, parsed with its path in errors (`request.actor.id`).
    fn document<T: serde::de::DeserializeOwned>(&mut self, key: &str) -> Result<T> {
        let value = self.take(key)?;
        serde_path_to_error::deserialize(value).map_err(|err| {
            let path = err.path().to_string();
            let field = if path == "." {
                key.to_string()
            } else {
                format!("{key}.{path}")
            };
            Error::invalid(field, err.into_inner().to_string())
        })
    }

    fn done(self) -> Result<()> {
        match self.map.keys().next() {
            None => Ok(()),
            Some(extra) => Err(Error::invalid(
                extra.clone(),
                format!("unknown argument for {}", self.method),
            )),
        }
    }
}

/// Parses each element of a JSON list of start requests on its own, so one
/// malformed request gets its error in place instead of failing the batch.
pub fn parse_requests(value: Value, field: &str) -> Result<Vec<Result<StartRequest>>> {
    let Value::Array(items) = value else {
        return Err(Error::invalid(field, "expected a list of start requests"));
    };
    Ok(items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            serde_path_to_error::deserialize(item).map_err(|err| {
                let path = err.path().to_string();
                let at = if path == "." {
                    format!("{field}[{i}]")
                } else {
                    format!("{field}[{i}].{path}")
                };
                Error::invalid(at, err.into_inner().to_string())
            })
        })
        .collect())
}

/// `check` over JSON: each answer is a start result, or `{"error": {...}}`.
pub async fn check_documents(gate: &Gate, requests: Vec<Result<StartRequest>>) -> Result<Value> {
    let valid: Vec<StartRequest> = requests
        .iter()
        .filter_map(|r| r.as_ref().ok().cloned())
        .collect();
    let mut answers = gate.check(&valid).await?.into_iter();
    let mut out = Vec::with_capacity(requests.len());
    for request in requests {
        out.push(match request {
            Err(err) => json!({ "error": error_json(&err) }),
            Ok(_) => match answers.next() {
                Some(Ok(result)) => to_value(&result)?,
                Some(Err(err)) => json!({ "error": error_json(&err) }),
                None => return Err(Error::internal("check lost an answer")),
            },
        });
    }
    Ok(Value::Array(out))
}

/// Largest JSON document accepted by the JSON surfaces, in bytes.
pub const MAX_JSON_BYTES: usize = 4 * 1024 * 1024;

fn parse<T: serde::de::DeserializeOwned>(json: &str, what: &str) -> Result<T> {
    if json.len() > MAX_JSON_BYTES {
        return Err(Error::invalid(
            what,
            format!("is {} bytes; the limit is {MAX_JSON_BYTES}", json.len()),
        ));
    }
    Error::parse_json(json)
}

/// Encodes a result document.
pub fn to_json<T: serde::Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value)
        .map_err(|e| Error::internal(format!("cannot encode the result: {e}")))
}

/// `start` with a start request document; returns the start result document.
pub async fn start(gate: &Gate, request: &str) -> Result<String> {
    to_json(
        &gate
            .start(&parse::<StartRequest>(request, "request")?)
            .await?,
    )
}

/// `check` with a JSON list of start requests; returns a list of answers.
pub async fn check(gate: &Gate, requests: &str) -> Result<String> {
    let requests = parse_requests(parse::<Value>(requests, "requests")?, "requests")?;
    to_json(&check_documents(gate, requests).await?)
}

/// `start_sequence` with a sequence request document.
pub async fn start_sequence(gate: &Gate, request: &str) -> Result<String> {
    to_json(
        &gate
            .start_sequence(&parse::<SequenceRequest>(request, "request")?)
            .await?,
    )
}

/// `complete` with a completion document; returns the completion result.
pub async fn complete(gate: &Gate, completion: &str) -> Result<String> {
    to_json(
        &gate
            .complete(&parse::<Completion>(completion, "completion")?)
            .await?,
    )
}

/// `list_runs` with a filter document (empty or `null` for no filter).
pub async fn list_runs(gate: &Gate, filter: &str) -> Result<String> {
    let filter: RunFilter = match filter.trim() {
        "" | "null" => RunFilter::default(),
        text => parse(text, "filter")?,
    };
    to_json(&gate.list_runs(&filter).await?)
}

/// `upsert_connection` with a provider connection document.
pub async fn upsert_connection(gate: &Gate, connection: &str) -> Result<String> {
    to_json(
        &gate
            .upsert_connection(&parse::<ProviderConnection>(connection, "connection")?)
            .await?,
    )
}

/// `present` with a start result document; returns the presentation.
pub fn present(gate: &Gate, result: &str) -> Result<String> {
    to_json(&gate.present(&parse::<StartResult>(result, "result")?))
}

/// `present_run` with a run document; returns the presentation.
pub fn present_run(gate: &Gate, run: &str) -> Result<String> {
    to_json(&gate.present_run(&parse::<Run>(run, "run")?))
}

/// Calls `method` with a JSON object of named arguments and returns the result
/// as a JSON document. The argument names are the contract's: `start` takes
/// `request`, `complete` takes `completion`, `mark_running` takes `run_id` and
/// `fencing_token`, and so on (see [`METHODS`]).
pub async fn call(gate: &Gate, method: &str, args: &str) -> Result<String> {
    let args = args.trim();
    let map = if args.is_empty() || args == "null" {
        Map::new()
    } else {
        match parse::<Value>(args, "(arguments)")? {
            Value::Object(map) => map,
            other => {
                return Err(Error::invalid(
                    "(arguments)",
                    format!("expected a JSON object of named arguments, found {other}"),
                ))
            }
        }
    };
    let mut a = Args { method, map };
    let value = match method {
        "migrate" => {
            a.done()?;
            gate.migrate().await?;
            Value::Null
        }
        "start" => {
            let request: StartRequest = a.document("request")?;
            a.done()?;
            to_value(&gate.start(&request).await?)?
        }
        "check" => {
            let requests = parse_requests(a.take("requests")?, "requests")?;
            a.done()?;
            check_documents(gate, requests).await?
        }
        "start_sequence" => {
            let request: SequenceRequest = a.document("request")?;
            a.done()?;
            to_value(&gate.start_sequence(&request).await?)?
        }
        "mark_running" | "heartbeat" => {
            let (run_id, token) = (a.int("run_id")?, a.int("fencing_token")?);
            a.done()?;
            let run = if method == "heartbeat" {
                gate.heartbeat(run_id, token).await?
            } else {
                gate.mark_running(run_id, token).await?
            };
            to_value(&run)?
        }
        "complete" => {
            let completion: Completion = a.document("completion")?;
            a.done()?;
            to_value(&gate.complete(&completion).await?)?
        }
        "cancel" => {
            let run_id = a.int("run_id")?;
            let reason = a.optional_string("reason_code")?;
            a.done()?;
            to_value(&gate.cancel(run_id, reason.as_deref()).await?)?
        }
        "reap_stale" => {
            a.done()?;
            to_value(&gate.reap_stale().await?)?
        }
        "get_run" => {
            let run_id = a.int("run_id")?;
            a.done()?;
            to_value(&gate.get_run(run_id).await?)?
        }
        "list_runs" => {
            let filter: RunFilter = match a.optional("filter") {
                Some(v) => {
                    a.map.insert("filter".into(), v);
                    a.document("filter")?
                }
                None => RunFilter::default(),
            };
            a.done()?;
            to_value(&gate.list_runs(&filter).await?)?
        }
        "attempts_for_run" => {
            let run_id = a.int("run_id")?;
            a.done()?;
            to_value(&gate.attempts_for_run(run_id).await?)?
        }
        "list_attempts" => {
            let tenant = a.optional_string("tenant_id")?;
            let limit = match a.optional("limit") {
                None => 100,
                Some(v) => v
                    .as_u64()
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or_else(|| {
                        Error::invalid("limit", format!("expected a count, found {v}"))
                    })?,
            };
            a.done()?;
            to_value(&gate.list_attempts(tenant.as_deref(), limit).await?)?
        }
        "upsert_connection" => {
            let connection: ProviderConnection = a.document("connection")?;
            a.done()?;
            to_value(&gate.upsert_connection(&connection).await?)?
        }
        "get_connection" => {
            let (tenant, id) = (a.string("tenant_id")?, a.string("id")?);
            a.done()?;
            to_value(&gate.get_connection(&tenant, &id).await?)?
        }
        "default_connection" | "list_connections" => {
            let tenant = a.string("tenant_id")?;
            a.done()?;
            if method == "default_connection" {
                to_value(&gate.default_connection(&tenant).await?)?
            } else {
                to_value(&gate.list_connections(&tenant).await?)?
            }
        }
        "present" => {
            let result: StartResult = a.document("result")?;
            a.done()?;
            to_value(&gate.present(&result))?
        }
        "present_run" => {
            let run: Run = a.document("run")?;
            a.done()?;
            to_value(&gate.present_run(&run))?
        }
        "advance_clock" => {
            let seconds = a.take("seconds")?;
            let seconds = seconds
                .as_f64()
                .filter(|s| s.is_finite() && *s >= 0.0)
                .ok_or_else(|| {
                    Error::invalid(
                        "seconds",
                        format!("expected a non-negative number, found {seconds}"),
                    )
                })?;
            a.done()?;
            gate.advance_clock(Duration::from_secs_f64(seconds))?;
            Value::Null
        }
        other => {
            return Err(Error::invalid(
                "method",
                format!("unknown method \"{other}\" (known: {})", METHODS.join(", ")),
            ))
        }
    };
    to_json(&value)
}
