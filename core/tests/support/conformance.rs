//! The Rust runner for the conformance vectors (format: tests/conformance/README.md).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};
use startgate::{
    Clock, Completion, Error, Gate, GateOptions, ProviderConnection, Registry, RunFilter,
    SequenceRequest, StartRequest, StartResult, Timestamp,
};

use super::{repo_root, PgTestDb, TempDb};

/// Which store a run uses.
pub enum Store<'a> {
    Sqlite,
    /// A migrated PostgreSQL test database, emptied before each scenario;
    /// `pooled` reaches it through pgbouncer in transaction mode.
    Postgres {
        db: &'a PgTestDb,
        pooled: bool,
    },
}

pub struct Report {
    pub passed: usize,
}

pub fn scenario_files() -> Vec<PathBuf> {
    let dir = repo_root().join("tests/conformance");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/conformance exists")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
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
    };
    let gate = Gate::open_with(&url, registry, options)
        .await
        .map_err(|e| format!("open: {e}"))?;
    if migrate {
        gate.migrate().await.map_err(|e| format!("migrate: {e}"))?;
    }
    let outcome = run_scenario(&gate, &scenario).await;
    gate.close().await;
    outcome
}

async fn run_scenario(gate: &Gate, scenario: &Value) -> Result<(), String> {
    for (i, conn) in scenario
        .get("connections")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
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
        let mut args = raw.clone();
        if let Value::Object(map) = &mut args {
            for key in EXPECTATION_KEYS {
                map.remove(key);
            }
        }
        let call = substitute(&args, &vars).map_err(context)?;
        let outcome = invoke(gate, name, &call).await;
        let result = match (outcome, raw.get("expect_error")) {
            (Err(err), Some(Value::String(code))) => {
                let actual = err.get("code").and_then(Value::as_str).unwrap_or("");
                if actual != code {
                    return Err(context(format!("expected error {code}, got {err}")));
                }
                let message = err.get("message").and_then(Value::as_str).unwrap_or("");
                for key in ["expect_message", "expect_field"] {
                    if let Some(Value::String(part)) = raw.get(key) {
                        if !message.contains(part.as_str()) {
                            return Err(context(format!(
                                "error message {message:?} lacks {part:?}"
                            )));
                        }
                    }
                }
                continue;
            }
            (Ok(value), Some(code)) => {
                return Err(context(format!(
                    "expected error {code}, got success {value}"
                )));
            }
            (Err(err), None) => return Err(context(format!("unexpected error {err}"))),
            (Err(_), Some(other)) => {
                return Err(context(format!(
                    "expect_error must be a code string, not {other}"
                )))
            }
            (Ok(value), None) => value,
        };
        if let Some(Value::Object(saves)) = raw.get("save") {
            for (var, path) in saves {
                let path = path
                    .as_str()
                    .ok_or_else(|| context("save paths are strings".into()))?;
                let value = lookup(&result, path)
                    .ok_or_else(|| context(format!("nothing at {path} to save as {var}")))?;
                vars.insert(var.clone(), value.clone());
            }
        }
        if let Some(expected) = raw.get("expect") {
            let expected = substitute(expected, &vars).map_err(context)?;
            matches(&expected, &result, "result").map_err(context)?;
        }
        if let Some(expected) = raw.get("present") {
            let expected = substitute(expected, &vars).map_err(context)?;
            let parsed: StartResult = serde_json::from_value(result.clone())
                .map_err(|e| context(format!("result is not a start result: {e}")))?;
            let shown = serde_json::to_value(gate.present(&parsed)).map_err(|e| e.to_string())?;
            matches(&expected, &shown, "presentation").map_err(context)?;
        }
        if let Some(expected) = raw.get("present_run") {
            let expected = substitute(expected, &vars).map_err(context)?;
            let run = match name {
                "complete" | "cancel" => result.get("run").unwrap_or(&Value::Null),
                _ => &result,
            };
            let run: startgate::Run = serde_json::from_value(run.clone())
                .map_err(|e| context(format!("result is not a run: {e}")))?;
            let shown = serde_json::to_value(gate.present_run(&run)).map_err(|e| e.to_string())?;
            matches(&expected, &shown, "presentation").map_err(context)?;
        }
    }
    Ok(())
}

const EXPECTATION_KEYS: [&str; 6] = [
    "expect",
    "expect_error",
    "expect_message",
    "present",
    "present_run",
    "save",
];

fn error_value(err: &Error) -> Value {
    json!({ "code": err.code().as_str(), "message": err.to_string() })
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

async fn invoke(gate: &Gate, name: &str, call: &Value) -> Result<Value, Value> {
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

/// Replaces every string that is exactly `$name` with the saved value, and
/// every `${name}` inside a longer string with the value's text.
fn substitute(value: &Value, vars: &BTreeMap<String, Value>) -> Result<Value, String> {
    Ok(match value {
        Value::String(s) if s.starts_with('$') && !s.starts_with("${") && s.len() > 1 => vars
            .get(&s[1..])
            .cloned()
            .ok_or_else(|| format!("variable {s} was never saved"))?,
        Value::String(s) if s.contains("${") => {
            let mut out = String::new();
            let mut rest = s.as_str();
            while let Some(start) = rest.find("${") {
                out.push_str(&rest[..start]);
                let end = rest[start..]
                    .find('}')
                    .ok_or_else(|| format!("unclosed ${{ in {s:?}"))?;
                let name = &rest[start + 2..start + end];
                match vars.get(name) {
                    Some(Value::String(text)) => out.push_str(text),
                    Some(other) => out.push_str(&other.to_string()),
                    None => return Err(format!("variable ${name} was never saved")),
                }
                rest = &rest[start + end + 1..];
            }
            out.push_str(rest);
            Value::String(out)
        }
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| substitute(v, vars))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), substitute(v, vars)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => other.clone(),
    })
}

fn lookup<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.')
        .try_fold(value, |v, key| match key.parse::<usize>() {
            Ok(index) => v.get(index),
            Err(_) => v.get(key),
        })
}

/// The matching rules of tests/conformance/README.md.
pub fn matches(expected: &Value, actual: &Value, path: &str) -> Result<(), String> {
    match expected {
        Value::String(s) if s == "<any>" => {
            if actual.is_null() {
                Err(format!("{path}: expected a value, found null"))
            } else {
                Ok(())
            }
        }
        Value::Object(fields) => {
            for (key, want) in fields {
                let got = actual.get(key).unwrap_or(&Value::Null);
                matches(want, got, &format!("{path}.{key}"))?;
            }
            if actual.is_object() || fields.is_empty() {
                Ok(())
            } else {
                Err(format!("{path}: expected an object, found {actual}"))
            }
        }
        Value::Array(items) => {
            let got = actual
                .as_array()
                .ok_or_else(|| format!("{path}: expected a list, found {actual}"))?;
            if got.len() != items.len() {
                return Err(format!(
                    "{path}: expected {} item(s), found {}: {actual}",
                    items.len(),
                    got.len()
                ));
            }
            for (i, (want, have)) in items.iter().zip(got).enumerate() {
                matches(want, have, &format!("{path}[{i}]"))?;
            }
            Ok(())
        }
        want => {
            if want == actual {
                Ok(())
            } else {
                Err(format!("{path}: expected {want}, found {actual}"))
            }
        }
    }
}
