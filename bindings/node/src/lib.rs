//! The startgate Node.js addon (napi-rs). `Gate.open(url, { registry })`
//! resolves to a gate whose methods return Promises of plain objects; failures
//! reject with `Error` objects whose `code` is the contract's stable code.
//!
//! Field names are the contract's, camelCased (`tenant_id` → `tenantId`);
//! the contents of `params` and `summary` are the host's own and pass through
//! unchanged. Arguments arrive as plain JSON values and are checked here, so a
//! wrong type is an `invalid_request` naming the (camelCase) field. The
//! `#[napi(object)]` declarations below exist to generate `index.d.ts`; a test
//! checks that the objects returned at run time have exactly those fields.

#![allow(clippy::too_many_arguments)]

use std::future::Future;

use napi::bindgen_prelude::*;
use napi_derive::napi;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};

use startgate::json::OpenOptions as CoreOpenOptions;
use startgate::{
    Completion as CoreCompletion, ProviderConnection as CoreConnection, Registry, Run as CoreRun,
    RunFilter as CoreRunFilter, SequenceRequest as CoreSequenceRequest,
    StartRequest as CoreStartRequest, StartResult as CoreStartResult,
};

/// Keys whose values belong to the host and are never renamed.
const OPAQUE: [&str; 2] = ["params", "summary"];

fn camel(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    let mut upper = false;
    for c in key.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

fn snake(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 4);
    for c in key.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Renames object keys with `rename`, leaving the host's documents alone.
fn rename_keys(value: Value, rename: fn(&str) -> String) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(key, v)| {
                    let v = if OPAQUE.contains(&key.as_str())
                        || OPAQUE.contains(&snake(&key).as_str())
                    {
                        v
                    } else {
                        rename_keys(v, rename)
                    };
                    (rename(&key), v)
                })
                .collect::<Map<String, Value>>(),
        ),
        Value::Array(items) => {
            Value::Array(items.into_iter().map(|v| rename_keys(v, rename)).collect())
        }
        other => other,
    }
}

/// A JS argument as a contract document, with errors naming the camelCase field.
fn parse<T: DeserializeOwned>(value: Value, what: &str) -> startgate::Result<T> {
    let snake_case = rename_keys(value, snake);
    serde_path_to_error::deserialize(snake_case).map_err(|err| {
        let path = err.path().to_string();
        let field = if path == "." { what.to_string() } else { path };
        startgate::Error::InvalidRequest {
            field,
            message: err.into_inner().to_string(),
        }
    })
}

fn to_js_value<T: Serialize>(value: &T) -> startgate::Result<Value> {
    serde_json::to_value(value)
        .map(|v| rename_keys(v, camel))
        .map_err(|e| startgate::Error::Internal {
            message: format!("cannot encode the result: {e}"),
        })
}

/// Field names as Node callers write them: `actor.is_member` → `actor.isMember`,
/// and the same for every `` `name` `` serde quotes in a message.
fn camel_path(path: &str) -> String {
    path.split('.').map(camel).collect::<Vec<_>>().join(".")
}

fn camel_quoted(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for (i, part) in message.split('`').enumerate() {
        if i > 0 {
            out.push('`');
        }
        // Odd parts sit between backticks: identifiers serde quotes.
        if i % 2 == 1 && part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            out.push_str(&camel(part));
        } else {
            out.push_str(part);
        }
    }
    out
}

/// A JS `Error` with `code` set to the stable code, and the driver's error as `cause`.
fn js_error(env: &Env, err: &startgate::Error) -> Error {
    let code = err.code().as_str();
    let message = match err {
        startgate::Error::InvalidRequest { field, message } => {
            format!(
                "invalid request: {}: {}",
                camel_path(field),
                camel_quoted(message)
            )
        }
        other => other.to_string(),
    };
    let build = || -> Result<Error> {
        let mut error = JsError::from(Error::new(code, message.clone())).into_unknown(*env);
        let mut object = error.coerce_to_object()?;
        if let Some(source) = std::error::Error::source(err) {
            let cause = JsError::from(Error::from_reason(source.to_string())).into_unknown(*env);
            object.set_named_property("cause", cause)?;
        }
        error = object.into_unknown(env)?;
        Ok(Error::from(error))
    };
    build().unwrap_or_else(|e| e)
}

/// Runs `call` on napi's tokio runtime and settles the Promise on the JS
/// thread: the result as a camelCased object, or a rejection with our code.
fn promise<'env, F, T>(env: &'env Env, call: F) -> Result<PromiseRaw<'env, Value>>
where
    F: Future<Output = startgate::Result<T>> + Send + 'static,
    T: Serialize + Send + 'static,
{
    env.spawn_future_with_callback(
        async move { Ok(call.await) },
        |env, outcome| match outcome {
            Ok(value) => to_js_value(&value).map_err(|e| js_error(env, &e)),
            Err(err) => Err(js_error(env, &err)),
        },
    )
}

fn rejected<'env>(env: &'env Env, err: startgate::Error) -> Result<PromiseRaw<'env, Value>> {
    promise(env, async move { Err::<Value, _>(err) })
}

/// A registry given as TOML text, or as the path of a TOML file.
fn registry_text(registry: &str) -> startgate::Result<String> {
    if !registry.contains('\n') && std::path::Path::new(registry).is_file() {
        std::fs::read_to_string(registry).map_err(|e| {
            startgate::Error::RegistryInvalid(startgate::RegistryProblems(vec![
                startgate::RegistryProblem {
                    path: String::new(),
                    message: format!("cannot read {registry}: {e}"),
                },
            ]))
        })
    } else {
        Ok(registry.to_string())
    }
}

/// An open start gate. Methods return Promises; the gate is safe to use from
/// many concurrent calls.
#[napi]
pub struct Gate {
    inner: startgate::Gate,
}

#[napi]
impl Gate {
    /// Opens a gate on `url` (a SQLite path or `sqlite:` URL, or a
    /// `postgres://` URL) with `options.registry` as TOML text or a file path.
    #[napi(ts_return_type = "Promise<Gate>")]
    pub fn open<'env>(
        env: &'env Env,
        url: String,
        #[napi(ts_arg_type = "OpenOptions")] options: Value,
    ) -> Result<PromiseRaw<'env, Gate>> {
        let opened = (|| -> startgate::Result<(Registry, startgate::GateOptions)> {
            let mut options = match options {
                Value::Object(map) => map,
                other => {
                    return Err(startgate::Error::InvalidRequest {
                        field: "options".into(),
                        message: format!("expected an object with `registry`, found {other}"),
                    })
                }
            };
            let registry = match options.remove("registry") {
                Some(Value::String(text)) => Registry::from_toml_str(&registry_text(&text)?)?,
                _ => {
                    return Err(startgate::Error::InvalidRequest {
                        field: "registry".into(),
                        message: "give the registry as TOML text or the path of a TOML file".into(),
                    })
                }
            };
            let open: CoreOpenOptions = parse(Value::Object(options), "options")?;
            Ok((registry, open.to_gate_options()?))
        })();
        let future = async move {
            let (registry, options) = opened?;
            startgate::Gate::open_with(&url, registry, options).await
        };
        env.spawn_future_with_callback(
            async move { Ok(future.await) },
            |env, outcome| match outcome {
                Ok(inner) => Ok(Gate { inner }),
                Err(err) => Err(js_error(env, &err)),
            },
        )
    }

    /// Applies the schema migrations (idempotent).
    #[napi(ts_return_type = "Promise<void>")]
    pub fn migrate<'env>(&self, env: &'env Env) -> Result<PromiseRaw<'env, Value>> {
        let gate = self.inner.clone();
        promise(
            env,
            async move { gate.migrate().await.map(|()| Value::Null) },
        )
    }

    /// The one start path: accepted / deduped / scope_busy / blocked / denied.
    #[napi(ts_return_type = "Promise<StartResult>")]
    pub fn start<'env>(
        &self,
        env: &'env Env,
        #[napi(ts_arg_type = "StartRequest")] request: Value,
    ) -> Result<PromiseRaw<'env, Value>> {
        let request: CoreStartRequest = match parse(request, "request") {
            Ok(r) => r,
            Err(e) => return rejected(env, e),
        };
        let gate = self.inner.clone();
        promise(env, async move { gate.start(&request).await })
    }

    /// What `start` would answer for each request, writing nothing; an invalid
    /// request gets `{ error: { code, message } }` in place.
    #[napi(ts_return_type = "Promise<Array<StartResult | CheckError>>")]
    pub fn check<'env>(
        &self,
        env: &'env Env,
        #[napi(ts_arg_type = "Array<StartRequest>")] requests: Value,
    ) -> Result<PromiseRaw<'env, Value>> {
        let requests =
            match startgate::json::parse_requests(rename_keys(requests, snake), "requests") {
                Ok(r) => r,
                Err(e) => return rejected(env, e),
            };
        let gate = self.inner.clone();
        promise(env, async move {
            startgate::json::check_documents(&gate, requests).await
        })
    }

    /// Starts operations in order on one scope; later steps are `pending`.
    #[napi(ts_return_type = "Promise<StartResult>")]
    pub fn start_sequence<'env>(
        &self,
        env: &'env Env,
        #[napi(ts_arg_type = "SequenceRequest")] request: Value,
    ) -> Result<PromiseRaw<'env, Value>> {
        let request: CoreSequenceRequest = match parse(request, "request") {
            Ok(r) => r,
            Err(e) => return rejected(env, e),
        };
        let gate = self.inner.clone();
        promise(env, async move { gate.start_sequence(&request).await })
    }

    /// The worker took the run. A rejection with code `invalid_transition` means: stop.
    #[napi(ts_return_type = "Promise<Run>")]
    pub fn mark_running<'env>(
        &self,
        env: &'env Env,
        run_id: i64,
        fencing_token: i64,
    ) -> Result<PromiseRaw<'env, Value>> {
        let gate = self.inner.clone();
        promise(env, async move {
            gate.mark_running(run_id, fencing_token).await
        })
    }

    /// Extends a running run's lease.
    #[napi(ts_return_type = "Promise<Run>")]
    pub fn heartbeat<'env>(
        &self,
        env: &'env Env,
        run_id: i64,
        fencing_token: i64,
    ) -> Result<PromiseRaw<'env, Value>> {
        let gate = self.inner.clone();
        promise(
            env,
            async move { gate.heartbeat(run_id, fencing_token).await },
        )
    }

    /// Ends a run; dispatch `next` when it is accepted.
    #[napi(ts_return_type = "Promise<CompletionResult>")]
    pub fn complete<'env>(
        &self,
        env: &'env Env,
        #[napi(ts_arg_type = "Completion")] completion: Value,
    ) -> Result<PromiseRaw<'env, Value>> {
        let completion: CoreCompletion = match parse(completion, "completion") {
            Ok(c) => c,
            Err(e) => return rejected(env, e),
        };
        let gate = self.inner.clone();
        promise(env, async move { gate.complete(&completion).await })
    }

    /// Cancels a pending or active run (an operator's decision).
    #[napi(ts_return_type = "Promise<CompletionResult>")]
    pub fn cancel<'env>(
        &self,
        env: &'env Env,
        run_id: i64,
        reason_code: Option<String>,
    ) -> Result<PromiseRaw<'env, Value>> {
        let gate = self.inner.clone();
        promise(env, async move {
            gate.cancel(run_id, reason_code.as_deref()).await
        })
    }

    /// Ends stale runs; admits pending runs of the scopes this frees.
    #[napi(ts_return_type = "Promise<ReapResult>")]
    pub fn reap_stale<'env>(&self, env: &'env Env) -> Result<PromiseRaw<'env, Value>> {
        let gate = self.inner.clone();
        promise(env, async move { gate.reap_stale().await })
    }

    /// One run by id.
    #[napi(ts_return_type = "Promise<Run>")]
    pub fn get_run<'env>(&self, env: &'env Env, run_id: i64) -> Result<PromiseRaw<'env, Value>> {
        let gate = self.inner.clone();
        promise(env, async move { gate.get_run(run_id).await })
    }

    /// Runs matching the filter, newest first.
    #[napi(ts_return_type = "Promise<Array<Run>>")]
    pub fn list_runs<'env>(
        &self,
        env: &'env Env,
        #[napi(ts_arg_type = "RunFilter | undefined | null")] filter: Option<Value>,
    ) -> Result<PromiseRaw<'env, Value>> {
        let filter: CoreRunFilter =
            match filter.filter(|f| !f.is_null()).map(|f| parse(f, "filter")) {
                None => CoreRunFilter::default(),
                Some(Ok(f)) => f,
                Some(Err(e)) => return rejected(env, e),
            };
        let gate = self.inner.clone();
        promise(env, async move { gate.list_runs(&filter).await })
    }

    /// The audit rows of the start attempts that created, were refused by, or replaced a run.
    #[napi(ts_return_type = "Promise<Array<StartAttempt>>")]
    pub fn attempts_for_run<'env>(
        &self,
        env: &'env Env,
        run_id: i64,
    ) -> Result<PromiseRaw<'env, Value>> {
        let gate = self.inner.clone();
        promise(env, async move { gate.attempts_for_run(run_id).await })
    }

    /// Records a provider connection's readiness facts (never secrets).
    #[napi(ts_return_type = "Promise<ProviderConnection>")]
    pub fn upsert_connection<'env>(
        &self,
        env: &'env Env,
        #[napi(ts_arg_type = "ProviderConnectionInput")] connection: Value,
    ) -> Result<PromiseRaw<'env, Value>> {
        let connection: CoreConnection = match parse(connection, "connection") {
            Ok(c) => c,
            Err(e) => return rejected(env, e),
        };
        let gate = self.inner.clone();
        promise(
            env,
            async move { gate.upsert_connection(&connection).await },
        )
    }

    /// One connection of a tenant, or `null`.
    #[napi(ts_return_type = "Promise<ProviderConnection | null>")]
    pub fn get_connection<'env>(
        &self,
        env: &'env Env,
        tenant_id: String,
        id: String,
    ) -> Result<PromiseRaw<'env, Value>> {
        let gate = self.inner.clone();
        promise(
            env,
            async move { gate.get_connection(&tenant_id, &id).await },
        )
    }

    /// Every connection of a tenant, by id.
    #[napi(ts_return_type = "Promise<Array<ProviderConnection>>")]
    pub fn list_connections<'env>(
        &self,
        env: &'env Env,
        tenant_id: String,
    ) -> Result<PromiseRaw<'env, Value>> {
        let gate = self.inner.clone();
        promise(env, async move { gate.list_connections(&tenant_id).await })
    }

    /// Operator feedback for a start result. Synchronous: no database access.
    #[napi(ts_return_type = "Presentation")]
    pub fn present(
        &self,
        env: &Env,
        #[napi(ts_arg_type = "StartResult")] result: Value,
    ) -> Result<Value> {
        let result: CoreStartResult = parse(result, "result").map_err(|e| js_error(env, &e))?;
        to_js_value(&self.inner.present(&result)).map_err(|e| js_error(env, &e))
    }

    /// Run-detail wording, from the same reason catalogue. Synchronous.
    #[napi(ts_return_type = "Presentation")]
    pub fn present_run(&self, env: &Env, #[napi(ts_arg_type = "Run")] run: Value) -> Result<Value> {
        let run: CoreRun = parse(run, "run").map_err(|e| js_error(env, &e))?;
        to_js_value(&self.inner.present_run(&run)).map_err(|e| js_error(env, &e))
    }

    /// Moves a manual clock (opened with `manualClock`) forward; tests and demos.
    #[napi]
    pub fn advance_clock(&self, env: &Env, seconds: f64) -> Result<()> {
        if !seconds.is_finite() || seconds < 0.0 {
            let err = startgate::Error::InvalidRequest {
                field: "seconds".into(),
                message: "must be a finite, non-negative number".into(),
            };
            return Err(js_error(env, &err));
        }
        self.inner
            .advance_clock(std::time::Duration::from_secs_f64(seconds))
            .map_err(|e| js_error(env, &e))
    }

    /// Closes the pool; later calls reject with `store_unavailable`.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn close<'env>(&self, env: &'env Env) -> Result<PromiseRaw<'env, Value>> {
        let gate = self.inner.clone();
        promise(env, async move {
            gate.close().await;
            Ok(Value::Null)
        })
    }
}

/// The library version.
#[napi]
pub fn version() -> String {
    startgate::VERSION.to_string()
}

// ---- TypeScript declarations (the runtime objects are checked against these) ----

/// Options of `Gate.open`.
#[napi(object)]
pub struct OpenOptions {
    /// The registry: TOML text, or the path of a TOML file.
    pub registry: String,
    pub connect_timeout_ms: Option<u32>,
    pub acquire_timeout_ms: Option<u32>,
    pub statement_timeout_ms: Option<u32>,
    pub max_connections: Option<u32>,
    /// Start a manual clock at this RFC 3339 instant (tests, demos).
    pub manual_clock: Option<String>,
}

/// Who asks, as facts the host established.
#[napi(object)]
pub struct Actor {
    pub id: String,
    pub is_member: bool,
    pub capabilities: Option<Vec<String>>,
}

/// A request to start one operation.
#[napi(object)]
pub struct StartRequest {
    pub operation: String,
    pub tenant_id: String,
    pub actor: Actor,
    pub provider_connection_id: Option<String>,
    pub subject: Option<String>,
    #[napi(ts_type = "Record<string, unknown>")]
    pub params: Option<Value>,
    #[napi(ts_type = "'user' | 'schedule' | 'system'")]
    pub initiator: Option<String>,
    pub tenant_active: Option<bool>,
}

/// A request to start operations in order on one scope.
#[napi(object)]
pub struct SequenceRequest {
    pub operations: Option<Vec<String>>,
    pub sequence: Option<String>,
    pub tenant_id: String,
    pub actor: Actor,
    pub provider_connection_id: Option<String>,
    pub subject: Option<String>,
    #[napi(ts_type = "Record<string, unknown>")]
    pub params: Option<Value>,
    #[napi(ts_type = "'user' | 'schedule' | 'system'")]
    pub initiator: Option<String>,
    pub tenant_active: Option<bool>,
}

/// A worker ending its run.
#[napi(object)]
pub struct Completion {
    pub run_id: i64,
    pub fencing_token: i64,
    #[napi(ts_type = "'succeeded' | 'partially_succeeded' | 'failed' | 'cancelled'")]
    pub outcome: String,
    pub reason_code: Option<String>,
    #[napi(ts_type = "Record<string, unknown>")]
    pub summary: Option<Value>,
}

/// Filters for `listRuns`.
#[napi(object)]
pub struct RunFilter {
    pub tenant_id: Option<String>,
    pub operation: Option<String>,
    #[napi(
        ts_type = "'blocked' | 'pending' | 'queued' | 'running' | 'succeeded' | 'partially_succeeded' | 'failed' | 'cancelled'"
    )]
    pub status: Option<String>,
    pub active: Option<bool>,
    pub limit: Option<u32>,
}

/// A provider connection to record: readiness facts only.
#[napi(object)]
pub struct ProviderConnectionInput {
    pub id: String,
    pub tenant_id: String,
    pub provider: String,
    pub display_name: Option<String>,
    pub is_default: Option<bool>,
    pub enabled: Option<bool>,
    #[napi(ts_type = "'granted' | 'missing' | 'revoked'")]
    pub consent: Option<String>,
    #[napi(ts_type = "'present' | 'missing' | 'expired' | 'invalid'")]
    pub credential: Option<String>,
    pub credential_expires_at: Option<String>,
    #[napi(ts_type = "'ok' | 'unhealthy' | 'unknown'")]
    pub health: Option<String>,
}

/// A stored provider connection.
#[napi(object)]
pub struct ProviderConnection {
    pub id: String,
    pub tenant_id: String,
    pub provider: String,
    pub display_name: String,
    pub is_default: bool,
    pub enabled: bool,
    #[napi(ts_type = "'granted' | 'missing' | 'revoked'")]
    pub consent: String,
    #[napi(ts_type = "'present' | 'missing' | 'expired' | 'invalid'")]
    pub credential: String,
    pub credential_expires_at: Option<String>,
    #[napi(ts_type = "'ok' | 'unhealthy' | 'unknown'")]
    pub health: String,
}

/// The record of one start. Timestamps are RFC 3339 strings in UTC.
#[napi(object)]
pub struct Run {
    pub id: i64,
    pub operation: String,
    pub tenant_id: String,
    pub provider_connection_id: Option<String>,
    pub subject: Option<String>,
    #[napi(
        ts_type = "'blocked' | 'pending' | 'queued' | 'running' | 'succeeded' | 'partially_succeeded' | 'failed' | 'cancelled'"
    )]
    pub status: String,
    #[napi(ts_type = "'user' | 'schedule' | 'system'")]
    pub initiator: String,
    pub actor_id: String,
    #[napi(ts_type = "Record<string, unknown> | null")]
    pub params: Option<Value>,
    pub created_at: String,
    pub since: String,
    pub queued_at: Option<String>,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub stale_at: Option<String>,
    pub fencing_token: Option<i64>,
    pub reason_code: Option<String>,
    pub reasons: Vec<String>,
    #[napi(ts_type = "unknown")]
    pub summary: Option<Value>,
    pub sequence_id: Option<i64>,
    pub sequence_position: Option<i64>,
    pub replaced_run_id: Option<i64>,
}

/// A labelled link: a next step, or "View run".
#[napi(object)]
pub struct Action {
    pub label: String,
    pub url: String,
}

/// One failing readiness check, rendered for people.
#[napi(object)]
pub struct Reason {
    pub code: String,
    pub message: String,
    pub next_steps: Vec<Action>,
}

/// The answer to a start.
#[napi(object)]
pub struct StartResult {
    #[napi(ts_type = "'accepted' | 'deduped' | 'scope_busy' | 'blocked' | 'denied'")]
    pub outcome: String,
    pub operation: String,
    pub tenant_id: String,
    pub run: Option<Run>,
    pub holder: Option<Run>,
    pub reasons: Vec<Reason>,
    pub status: Option<u32>,
    pub provider_connection_id: Option<String>,
    pub replaced_run_id: Option<i64>,
    pub params_differ: Option<bool>,
    pub pending: Vec<Run>,
}

/// An error in place of one `check` answer.
#[napi(object)]
pub struct CheckError {
    pub error: ErrorInfo,
}

/// A stable code and a message.
#[napi(object)]
pub struct ErrorInfo {
    #[napi(
        ts_type = "'invalid_request' | 'unknown_operation' | 'registry_invalid' | 'run_not_found' | 'invalid_transition' | 'store_unavailable' | 'store_timeout' | 'migration_failed' | 'internal'"
    )]
    pub code: String,
    pub message: String,
}

/// What ending a run produced.
#[napi(object)]
pub struct CompletionResult {
    pub run: Run,
    pub notify_initiator: bool,
    pub next: Option<StartResult>,
    pub next_blocked: Vec<StartResult>,
}

/// What `reapStale` did.
#[napi(object)]
pub struct ReapResult {
    pub reaped: Vec<Run>,
    pub next: Vec<StartResult>,
}

/// Operator feedback: the same words on every host.
#[napi(object)]
pub struct Presentation {
    pub outcome: String,
    pub status_label: String,
    #[napi(ts_type = "'success' | 'info' | 'warning' | 'danger'")]
    pub tone: String,
    pub title: String,
    pub body: String,
    pub run_url: Option<String>,
    pub actions: Vec<Action>,
}

/// The audit row of one start attempt.
#[napi(object)]
pub struct StartAttempt {
    pub id: i64,
    pub attempted_at: String,
    pub source: String,
    pub operation: String,
    pub tenant_id: String,
    pub provider_connection_id: Option<String>,
    pub subject: Option<String>,
    pub actor_id: String,
    #[napi(ts_type = "'user' | 'schedule' | 'system'")]
    pub initiator: String,
    #[napi(ts_type = "'accepted' | 'deduped' | 'scope_busy' | 'blocked' | 'denied'")]
    pub outcome: String,
    pub status: Option<u32>,
    pub run_id: Option<i64>,
    pub holder_run_id: Option<i64>,
    pub reason_code: Option<String>,
    pub reasons: Vec<String>,
    pub replaced_run_id: Option<i64>,
    pub params_differ: Option<bool>,
}
