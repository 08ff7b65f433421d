//! The Rust runner for the conformance vectors (format: tests/conformance/README.md).
//! Calls go through the typed API; a call whose arguments hold a tag (a value
//! a JSON file cannot hold, such as a lone surrogate) goes through the JSON
//! text entries (`from_json`, `json::call`), the only way such input reaches
//! Rust. `$number` tags (NaN, infinities) cannot be written as JSON text, so
//! those calls are skipped here.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};
use startgate::{
    Clock, Completion, Error, Gate, GateOptions, ProviderConnection, Registry, RunFilter,
    SequenceRequest, StartRequest, StartResult, Timestamp,
};
use startgate_testkit::conformance::{
    after_success, arguments, check_error, has_number_tag, has_tags, json_text, scenario_files,
    substitute, vectors_dir,
};

use super::{PgTestDb, TempDb};

/// Which store a run uses.
pub enum Store<'a> {
    Sqlite,
    /// A migrated PostgreSQL test database, emptied before each scenario;
    /// `pooled` reaches it through pgbouncer in transaction mode.
    Postgres {
        db: &'a PgTestDb,
        pooled: bool,
    },
    /// A migrated PostgreSQL test database whose connection facts come from
    /// the host's own table through a view (tests/conformance/host_view.sql):
    /// connections are written the host's way, never with `upsert_connection`.
    HostView {
        db: &'a PgTestDb,
    },
}

pub struct Report {
    pub passed: usize,
}

/// Runs every scenario; panics with every failure listed.
pub async fn run_all(store: Store<'_>) -> Report {
    let mut failures = Vec::new();
    let mut passed = 0;
    for file in scenario_files() {
        match run_file(&file, &store).await {
            Ok(()) => passed += 1,
            Err(message) => failures.push(format!("{}: {message}", file.display())),
        }
    }
    assert!(
        failures.is_empty(),
        "{} scenario(s) failed:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    Report { passed }
}

async fn run_file(file: &Path, store: &Store<'_>) -> Result<(), String> {
    let text = std::fs::read_to_string(file).map_err(|e| e.to_string())?;
    let scenario: Value = serde_json::from_str(&text).map_err(|e| format!("bad JSON: {e}"))?;
    let registry = match (scenario.get("registry"), scenario.get("registry_toml")) {
        (Some(Value::String(name)), None) => {
            Registry::from_toml_file(file.parent().expect("parent").join(name))
        }
        (None, Some(Value::String(toml))) => Registry::from_toml_str(toml),
        _ => return Err("give exactly one of `registry` or `registry_toml`".into()),
    }
    .map_err(|e| format!("registry: {e}"))?;
    let clock_start = scenario
        .get("clock")
        .and_then(Value::as_str)
        .unwrap_or("2026-01-01T09:00:00Z");
    let clock = Clock::manual(Timestamp::parse_rfc3339(clock_start)?);
    let options = GateOptions {
        clock,
        ..GateOptions::default()
    };
    let temp = TempDb::new("conformance");
    let (url, migrate) = match store {
        Store::Sqlite => (temp.url(), true),
        Store::Postgres { db, pooled } => {
            db.reset().await;
            if *pooled {
                (db.pooled_url(), false)
            } else {
                (db.url(), true)
            }
        }
        Store::HostView { db } => {
            db.reset().await;
            (db.url(), false)
        }
    };
    let host = match store {
        Store::HostView { db } => Some(*db),
        _ => None,
    };
    let gate = Gate::open_with(&url, registry, options)
        .await
        .map_err(|e| format!("open: {e}"))?;
    if migrate {
        gate.migrate().await.map_err(|e| format!("migrate: {e}"))?;
    }
    let outcome = run_scenario(&gate, &scenario, host).await;
    gate.close().await;
    outcome
}

/// `host`: a host-view database, where connections are the host's to write
/// (`host_save_connection`), not the gate's.
async fn run_scenario(
    gate: &Gate,
    scenario: &Value,
    host: Option<&PgTestDb>,
) -> Result<(), String> {
    for (i, conn) in scenario
        .get("connections")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        if let Some(db) = host {
            db.host_save_connection(conn).await?;
            continue;
        }
        let conn = ProviderConnection::from_json(&conn.to_string())
            .map_err(|e| format!("connections[{i}]: {e}"))?;
        gate.upsert_connection(&conn)
            .await
            .map_err(|e| format!("connections[{i}]: {e}"))?;
    }
    let mut vars: BTreeMap<String, Value> = BTreeMap::new();
    let calls = scenario
        .get("calls")
        .and_then(Value::as_array)
        .ok_or("missing `calls`")?;
    for (i, raw) in calls.iter().enumerate() {
        let name = raw.get("call").and_then(Value::as_str).unwrap_or("?");
        let context = |msg: String| format!("calls[{i}] ({name}): {msg}");
        // Arguments use what earlier calls saved; expectations may also use
        // what this call saves.
        let call = substitute(&arguments(raw), &vars).map_err(context)?;
        if has_number_tag(&call) {
            continue;
        }
        if let (Some(_), "upsert_connection") = (host, name) {
            // The host writes its own table; the gate's own validation of
            // upsert_connection is not what this setup is about.
            if raw.get("expect_error").is_some() {
                continue;
            }
        }
        let outcome = if let (Some(db), "upsert_connection") = (host, name) {
            host_upsert(gate, db, &call["connection"]).await
        } else if has_tags(&call) {
            invoke_text(gate, name, &call).await
        } else {
            invoke(gate, name, &call).await
        };
        let result = match outcome {
            Err(err) => {
                check_error(raw, &err).map_err(context)?;
                continue;
            }
            Ok(value) => value,
        };
        let present = |function: &str, doc: &Value| -> Result<Value, String> {
            let shown = if function == "present" {
                let parsed: StartResult = serde_json::from_value(doc.clone())
                    .map_err(|e| format!("result is not a start result: {e}"))?;
                serde_json::to_value(gate.present(&parsed))
            } else {
                let run: startgate::Run = serde_json::from_value(doc.clone())
                    .map_err(|e| format!("result is not a run: {e}"))?;
                serde_json::to_value(gate.present_run(&run))
            };
            shown.map_err(|e| e.to_string())
        };
        after_success(raw, &result, &mut vars, present).map_err(context)?;
    }
    Ok(())
}

fn error_value(err: &Error) -> Value {
    startgate::json::error_json(err)
}

fn to_json<T: serde::Serialize>(value: T) -> Result<Value, Value> {
    serde_json::to_value(value).map_err(|e| json!({"code": "internal", "message": e.to_string()}))
}

fn arg<'a>(call: &'a Value, key: &str) -> Result<&'a Value, Value> {
    call.get(key)
        .ok_or_else(|| json!({"code": "runner", "message": format!("missing argument `{key}`")}))
}

fn int_arg(call: &Value, key: &str) -> Result<i64, Value> {
    arg(call, key)?
        .as_i64()
        .ok_or_else(|| json!({"code": "runner", "message": format!("`{key}` is not an integer")}))
}

/// Whether a scalar argument is one the typed API cannot take (a fraction
/// for an id, a non-string for text): only JSON text carries it to Rust.
fn needs_text(name: &str, call: &Value) -> bool {
    let not_i64 = |key: &str| call.get(key).is_some_and(|v| !v.is_i64());
    let not_text = |key: &str| {
        call.get(key)
            .is_some_and(|v| !v.is_string() && !v.is_null())
    };
    match name {
        "mark_running" | "heartbeat" => not_i64("run_id") || not_i64("fencing_token"),
        "get_run" | "attempts_for_run" => not_i64("run_id"),
        "cancel" => not_i64("run_id") || not_text("reason_code"),
        "get_connection" => not_text("tenant_id") || not_text("id"),
        "list_connections" => not_text("tenant_id"),
        _ => false,
    }
}

async fn invoke(gate: &Gate, name: &str, call: &Value) -> Result<Value, Value> {
    if needs_text(name, call) {
        return invoke_text(gate, name, call).await;
    }
    let e = |err: Error| error_value(&err);
    match name {
        "start" => {
            let request = StartRequest::from_json(&arg(call, "request")?.to_string()).map_err(e)?;
            to_json(gate.start(&request).await.map_err(e)?)
        }
        "check" => {
            let items = arg(call, "requests")?
                .as_array()
                .cloned()
                .unwrap_or_default();
            // Requests that do not parse get their error in place, like the JSON surfaces.
            let parsed: Vec<Result<StartRequest, Error>> = items
                .iter()
                .map(|r| StartRequest::from_json(&r.to_string()))
                .collect();
            let valid: Vec<StartRequest> = parsed
                .iter()
                .filter_map(|p| p.as_ref().ok().cloned())
                .collect();
            let mut answers = gate.check(&valid).await.map_err(e)?.into_iter();
            let mut out = Vec::new();
            for p in parsed {
                out.push(match p {
                    Err(err) => json!({ "error": error_value(&err) }),
                    Ok(_) => match answers.next() {
                        Some(Ok(result)) => to_json(result)?,
                        Some(Err(err)) => json!({ "error": error_value(&err) }),
                        None => {
                            return Err(
                                json!({"code": "runner", "message": "check lost an answer"}),
                            )
                        }
                    },
                });
            }
            Ok(Value::Array(out))
        }
        "start_sequence" => {
            let request =
                SequenceRequest::from_json(&arg(call, "request")?.to_string()).map_err(e)?;
            to_json(gate.start_sequence(&request).await.map_err(e)?)
        }
        "mark_running" => to_json(
            gate.mark_running(int_arg(call, "run_id")?, int_arg(call, "fencing_token")?)
                .await
                .map_err(e)?,
        ),
        "heartbeat" => to_json(
            gate.heartbeat(int_arg(call, "run_id")?, int_arg(call, "fencing_token")?)
                .await
                .map_err(e)?,
        ),
        "complete" => {
            let completion =
                Completion::from_json(&arg(call, "completion")?.to_string()).map_err(e)?;
            to_json(gate.complete(&completion).await.map_err(e)?)
        }
        "cancel" => {
            let reason = call.get("reason_code").and_then(Value::as_str);
            to_json(
                gate.cancel(int_arg(call, "run_id")?, reason)
                    .await
                    .map_err(e)?,
            )
        }
        "reap_stale" => to_json(gate.reap_stale().await.map_err(e)?),
        "get_run" => to_json(gate.get_run(int_arg(call, "run_id")?).await.map_err(e)?),
        "list_runs" => {
            let filter = call.get("filter").cloned().unwrap_or_else(|| json!({}));
            let filter: RunFilter = serde_json::from_value(filter)
                .map_err(|err| json!({"code": "invalid_request", "message": err.to_string()}))?;
            to_json(gate.list_runs(&filter).await.map_err(e)?)
        }
        "attempts_for_run" => to_json(
            gate.attempts_for_run(int_arg(call, "run_id")?)
                .await
                .map_err(e)?,
        ),
        "upsert_connection" => {
            let conn =
                ProviderConnection::from_json(&arg(call, "connection")?.to_string()).map_err(e)?;
            to_json(gate.upsert_connection(&conn).await.map_err(e)?)
        }
        "get_connection" => {
            let tenant = arg(call, "tenant_id")?.as_str().unwrap_or_default();
            let id = arg(call, "id")?.as_str().unwrap_or_default();
            to_json(gate.get_connection(tenant, id).await.map_err(e)?)
        }
        "list_connections" => {
            let tenant = arg(call, "tenant_id")?.as_str().unwrap_or_default();
            to_json(gate.list_connections(tenant).await.map_err(e)?)
        }
        "open" => open(call).await,
        "advance_clock" => {
            let seconds = arg(call, "seconds")?
                .as_f64()
                .ok_or_else(|| json!({"code": "runner", "message": "`seconds` is not a number"}))?;
            gate.advance_clock(Duration::from_secs_f64(seconds))
                .map_err(e)?;
            Ok(Value::Null)
        }
        other => Err(json!({"code": "runner", "message": format!("unknown call `{other}`")})),
    }
}

/// `upsert_connection` in a host-view setup: the host writes its table and
/// the result is what the gate now reads through the view.
async fn host_upsert(gate: &Gate, host: &PgTestDb, doc: &Value) -> Result<Value, Value> {
    host.host_save_connection(doc)
        .await
        .map_err(|e| json!({"code": "runner", "message": e}))?;
    let tenant = doc["tenant_id"].as_str().unwrap_or_default();
    let id = doc["id"].as_str().unwrap_or_default();
    to_json(
        gate.get_connection(tenant, id)
            .await
            .map_err(|e| error_value(&e))?,
    )
}

/// A call through the JSON text entries: a document argument with the
/// type's `from_json`, anything else with `json::call`.
async fn invoke_text(gate: &Gate, name: &str, call: &Value) -> Result<Value, Value> {
    let e = |err: Error| error_value(&err);
    let text = |key: &str| json_text(&call[key]);
    match name {
        "start" => {
            let request = StartRequest::from_json(&text("request")).map_err(e)?;
            to_json(gate.start(&request).await.map_err(e)?)
        }
        "start_sequence" => {
            let request = SequenceRequest::from_json(&text("request")).map_err(e)?;
            to_json(gate.start_sequence(&request).await.map_err(e)?)
        }
        "complete" => {
            let completion = Completion::from_json(&text("completion")).map_err(e)?;
            to_json(gate.complete(&completion).await.map_err(e)?)
        }
        "upsert_connection" => {
            let connection = ProviderConnection::from_json(&text("connection")).map_err(e)?;
            to_json(gate.upsert_connection(&connection).await.map_err(e)?)
        }
        _ => {
            let result = startgate::json::call(gate, name, &json_text(call))
                .await
                .map_err(e)?;
            serde_json::from_str(&result)
                .map_err(|err| json!({"code": "runner", "message": err.to_string()}))
        }
    }
}

/// The `open` call: opens a second gate (registry paths are relative to
/// tests/conformance) and closes it again.
async fn open(call: &Value) -> Result<Value, Value> {
    let e = |err: Error| error_value(&err);
    let url = call["url"].as_str().unwrap_or_default();
    let registry = call["registry"]
        .as_str()
        .map(|p| vectors_dir().join(p).to_string_lossy().into_owned());
    let registry =
        startgate::json::load_registry(registry.as_deref(), call["registry_toml"].as_str())
            .map_err(e)?;
    let gate = Gate::open(url, registry).await.map_err(e)?;
    gate.close().await;
    Ok(Value::Null)
}
