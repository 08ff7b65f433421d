//! The startgate Node.js addon (napi-rs). `Gate.open(url, { registry })`
//! resolves to a gate whose methods return Promises of plain objects; failures
//! reject with `Error` objects whose `code` is the contract's stable code (and
//! `field`, for `invalid_request`, the offending field by its contract name).
//!
//! Field names are the contract's, camelCased (`tenant_id` → `tenantId`);
//! the contents of `params` and `summary` are the host's own and pass through
//! unchanged. Arguments arrive as raw JS values and are converted here with
//! the checks only this side can make (`convert`: plain data as JSON text
//! written by one JavaScript call, anything else value by value), then
//! checked and decoded by the core exactly as on every other surface, so a wrong argument is an
//! `invalid_request` with the same words everywhere — and a rejected Promise,
//! never a synchronous throw. The `#[napi(object)]` declarations below exist
//! to generate `index.d.ts`; a test checks that the objects returned at run
//! time have exactly those fields.

#![allow(clippy::too_many_arguments)]

mod convert;

use std::collections::HashMap;
use std::future::Future;

use napi::bindgen_prelude::*;
use napi_derive::napi;
use serde_json::{Map, Value};

use startgate::json::{self as contract, load_registry, OpenOptions as CoreOpenOptions};
use startgate::{input, Registry};

use contract::camel;
use convert::{argument, parse_json, plain_text, OPAQUE};

/// Renames object keys to camelCase, leaving the host's documents alone.
fn camel_keys(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(key, v)| {
                    let v = if OPAQUE.contains(&key.as_str()) {
                        v
                    } else {
                        camel_keys(v)
                    };
                    // Most keys have no underscore: kept, not copied.
                    let key = if key.contains('_') { camel(&key) } else { key };
                    (key, v)
                })
                .collect::<Map<String, Value>>(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(camel_keys).collect()),
        other => other,
    }
}

/// A result on its way to JavaScript, its keys camelCased. Most go as JSON
/// text: V8's `JSON.parse` builds the objects in one call, where a `Value`
/// tree costs N-API calls per key and per value. One holding an integer that
/// a JS number cannot carry exactly goes as the tree, which makes it a
/// BigInt, as every result did before: never a rounded number.
pub enum Camel {
    /// JSON text, for `JSON.parse`.
    Text(String),
    /// The tree, converted value by value.
    Tree(Value),
}

impl Camel {
    fn of(value: Value) -> Camel {
        let value = camel_keys(value);
        if has_wide_integer(&value) {
            Camel::Tree(value)
        } else {
            Camel::Text(value.to_string())
        }
    }
}

/// A call's result written as camelCased JSON text straight from the core's
/// types (no `Value` tree in between), or as the tree when it holds a wide
/// integer.
struct AsCamel;

impl contract::Encoding for AsCamel {
    type Output = Camel;

    fn encode<T: contract::CallResult>(value: T) -> startgate::Result<Camel> {
        match contract::to_camel_json(&value, &OPAQUE)? {
            Some(camel) => Ok(Camel::Text(camel)),
            // A wide integer must reach JavaScript as a BigInt: value by value.
            None => contract::to_value(&value).map(Camel::of),
        }
    }

    fn from_value(value: Value) -> startgate::Result<Camel> {
        Ok(Camel::of(value))
    }
}

/// Whether `value` holds an integer beyond ±(2^53 − 1), which napi turns
/// into a BigInt and `JSON.parse` would round.
fn has_wide_integer(value: &Value) -> bool {
    const MAX_SAFE: i64 = (1 << 53) - 1;
    match value {
        Value::Number(n) => match n.as_i64() {
            Some(i) => !(-MAX_SAFE..=MAX_SAFE).contains(&i),
            None => n.is_u64(),
        },
        Value::Array(items) => items.iter().any(has_wide_integer),
        Value::Object(map) => map.values().any(has_wide_integer),
        Value::Null | Value::Bool(_) | Value::String(_) => false,
    }
}

impl ToNapiValue for Camel {
    unsafe fn to_napi_value(env: sys::napi_env, val: Self) -> Result<sys::napi_value> {
        // SAFETY: `env` is the live env napi hands to this conversion.
        match val {
            Camel::Tree(value) => unsafe { Value::to_napi_value(env, value) },
            Camel::Text(text) => {
                unsafe { parse_json(env, &text) }.map_err(|err| Error::from_reason(err.to_string()))
            }
        }
    }
}

/// A JS `Error` with `code` set to the stable code, `field` for
/// `invalid_request`, and the driver's error as `cause`.
fn js_error(env: &Env, err: &startgate::Error) -> Error {
    let code = err.code().as_str();
    let message = err.to_string();
    let build = || -> Result<Error> {
        let mut error = JsError::from(Error::new(code, message.clone())).into_unknown(*env);
        let mut object = error.coerce_to_object()?;
        if let startgate::Error::InvalidRequest { field, .. } = err {
            object.set_named_property("field", field.as_str())?;
        }
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
fn promise<'env, F>(env: &'env Env, call: F) -> Result<PromiseRaw<'env, Camel>>
where
    F: Future<Output = startgate::Result<Camel>> + Send + 'static,
{
    env.spawn_future_with_callback(async move { Ok(call.await) }, |env, outcome| {
        deliver_logs(env);
        match outcome {
            Ok(camel) => Ok(camel),
            Err(err) => Err(js_error(env, &err)),
        }
    })
}

/// A boxed call on the gate.
type Call = std::pin::Pin<Box<dyn Future<Output = startgate::Result<Camel>> + Send>>;

/// Polls `call` once on the JS thread, inside napi's runtime: a call that
/// needs no wait (SQLite on a free connection) finishes here; one that does
/// comes back to be spawned (its next poll registers the task's waker).
fn first_poll(mut call: Call) -> std::result::Result<startgate::Result<Camel>, Call> {
    napi::bindgen_prelude::within_runtime_if_available(|| {
        let mut context = std::task::Context::from_waker(std::task::Waker::noop());
        match call.as_mut().poll(&mut context) {
            std::task::Poll::Ready(result) => Ok(result),
            std::task::Poll::Pending => Err(call),
        }
    })
}

/// Named JS arguments, each checked under its contract name: values, and
/// the method's document (`contract::takes_document`) as text when it is
/// plain JSON data (`convert::plain_text`), which the core decodes straight
/// into its type.
struct Arguments {
    values: Map<String, Value>,
    text: Option<(String, String)>,
}

/// Converts named JS arguments (see [`Arguments`]).
fn arguments(
    env: &Env,
    method: &str,
    args: Vec<(&str, Unknown<'_>)>,
) -> startgate::Result<Arguments> {
    let mut converted = Arguments {
        values: Map::new(),
        text: None,
    };
    for (name, value) in args {
        if contract::takes_document(method, name) {
            if let Some(text) = plain_text(env, name, &value)? {
                converted.text = Some((name.to_string(), text));
                continue;
            }
        }
        let value = argument(env, name, value)?;
        converted.values.insert(name.to_string(), value);
    }
    Ok(converted)
}

/// A text argument, or `None` for null / undefined.
fn optional_text(name: &str, value: Option<Value>) -> startgate::Result<Option<String>> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(input::invalid(
            name,
            format!("expected a string, found {}", input::describe(&other)),
        )),
    }
}

/// What `Gate.open` needs, from its JS arguments.
fn open_parts(
    env: &Env,
    url: Unknown<'_>,
    options: Unknown<'_>,
) -> startgate::Result<(String, Registry, startgate::GateOptions)> {
    // STARTGATE_LOG reaches stderr for a host that sets no logger.
    startgate::log::install();
    let url = optional_text("url", Some(argument(env, "url", url)?))?
        .ok_or_else(|| input::invalid("url", "missing"))?;
    let mut options = match argument(env, "options", options)? {
        Value::Object(map) => map,
        other => {
            return Err(input::invalid(
                "options",
                format!(
                    "expected an object with `registry` (a file path) or `registryToml`, found {}",
                    input::describe(&other)
                ),
            ))
        }
    };
    let registry = optional_text("registry", options.remove("registry"))?;
    let registry_toml = optional_text("registry_toml", options.remove("registry_toml"))?;
    let registry = load_registry(registry.as_deref(), registry_toml.as_deref())?;
    let open = CoreOpenOptions::from_value(Value::Object(options))?;
    Ok((url, registry, open.to_gate_options()?))
}

/// An open start gate. Methods return Promises; the gate is safe to use from
/// many concurrent calls.
#[napi]
pub struct Gate {
    inner: startgate::Gate,
}

impl Gate {
    /// Calls `method` on the runtime with named JS arguments; a bad argument
    /// rejects the Promise (never throws).
    fn call<'env>(
        &self,
        env: &'env Env,
        method: &'static str,
        args: Vec<(&str, Unknown<'_>)>,
    ) -> Result<PromiseRaw<'env, Camel>> {
        let args = arguments(env, method, args);
        let gate = self.inner.clone();
        let call = Box::pin(async move {
            let Arguments { values, text } = args?;
            match text {
                Some((name, text)) => {
                    contract::call_document_encoded::<AsCamel>(&gate, method, values, &name, &text)
                        .await
                }
                None => contract::call_encoded::<AsCamel>(&gate, method, values).await,
            }
        });
        match first_poll(call) {
            // Settled on the JS thread, without a hop to the runtime and back.
            Ok(settled) => {
                deliver_logs(env);
                match settled {
                    Ok(camel) => PromiseRaw::resolve(env, camel),
                    Err(err) => PromiseRaw::reject(env, js_error(env, &err)),
                }
            }
            Err(waiting) => promise(env, waiting),
        }
    }

    /// A call that touches no database, answered at once (throws on bad input).
    fn pure(&self, env: &Env, method: &str, args: Vec<(&str, Unknown<'_>)>) -> Result<Camel> {
        let result = arguments(env, method, args)
            .and_then(|Arguments { values, text }| match text {
                Some((name, text)) => contract::call_pure_document_encoded::<AsCamel>(
                    &self.inner,
                    method,
                    values,
                    &name,
                    &text,
                ),
                None => contract::call_pure_encoded::<AsCamel>(&self.inner, method, values),
            })
            .map_err(|e| js_error(env, &e));
        deliver_logs(env);
        result
    }
}

#[napi]
impl Gate {
    /// Opens a gate on `url` (a SQLite path, `sqlite::memory:` or a
    /// `postgres://` URL) with `options.registry`, the path of a registry
    /// TOML file (or `options.registryToml`, its text).
    #[napi(ts_return_type = "Promise<Gate>")]
    pub fn open<'env>(
        env: &'env Env,
        #[napi(ts_arg_type = "string")] url: Unknown<'env>,
        #[napi(ts_arg_type = "OpenOptions")] options: Unknown<'env>,
    ) -> Result<PromiseRaw<'env, Gate>> {
        let parts = open_parts(env, url, options);
        let future = async move {
            let (url, registry, options) = parts?;
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
    pub fn migrate<'env>(&self, env: &'env Env) -> Result<PromiseRaw<'env, Camel>> {
        self.call(env, "migrate", vec![])
    }

    /// The one start path: accepted / deduped / scope_busy / blocked / denied.
    #[napi(ts_return_type = "Promise<StartResult>")]
    pub fn start<'env>(
        &self,
        env: &'env Env,
        #[napi(ts_arg_type = "StartRequest")] request: Unknown<'env>,
    ) -> Result<PromiseRaw<'env, Camel>> {
        self.call(env, "start", vec![("request", request)])
    }

    /// What `start` would answer for each request, writing nothing; an invalid
    /// request gets `{ error: { code, message, field } }` in place.
    #[napi(ts_return_type = "Promise<Array<StartResult | CheckError>>")]
    pub fn check<'env>(
        &self,
        env: &'env Env,
        #[napi(ts_arg_type = "Array<StartRequest>")] requests: Unknown<'env>,
    ) -> Result<PromiseRaw<'env, Camel>> {
        self.call(env, "check", vec![("requests", requests)])
    }

    /// Starts operations in order on one scope; later steps are `pending`.
    #[napi(ts_return_type = "Promise<StartResult>")]
    pub fn start_sequence<'env>(
        &self,
        env: &'env Env,
        #[napi(ts_arg_type = "SequenceRequest")] request: Unknown<'env>,
    ) -> Result<PromiseRaw<'env, Camel>> {
        self.call(env, "start_sequence", vec![("request", request)])
    }

    /// The worker took the run. A rejection with code `invalid_transition` means: stop.
    #[napi(ts_return_type = "Promise<Run>")]
    pub fn mark_running<'env>(
        &self,
        env: &'env Env,
        #[napi(ts_arg_type = "number | bigint")] run_id: Unknown<'env>,
        #[napi(ts_arg_type = "number | bigint")] fencing_token: Unknown<'env>,
    ) -> Result<PromiseRaw<'env, Camel>> {
        self.call(
            env,
            "mark_running",
            vec![("run_id", run_id), ("fencing_token", fencing_token)],
        )
    }

    /// Extends a running run's lease.
    #[napi(ts_return_type = "Promise<Run>")]
    pub fn heartbeat<'env>(
        &self,
        env: &'env Env,
        #[napi(ts_arg_type = "number | bigint")] run_id: Unknown<'env>,
        #[napi(ts_arg_type = "number | bigint")] fencing_token: Unknown<'env>,
    ) -> Result<PromiseRaw<'env, Camel>> {
        self.call(
            env,
            "heartbeat",
            vec![("run_id", run_id), ("fencing_token", fencing_token)],
        )
    }

    /// Ends a run; dispatch `next` when it is accepted.
    #[napi(ts_return_type = "Promise<CompletionResult>")]
    pub fn complete<'env>(
        &self,
        env: &'env Env,
        #[napi(ts_arg_type = "Completion")] completion: Unknown<'env>,
    ) -> Result<PromiseRaw<'env, Camel>> {
        self.call(env, "complete", vec![("completion", completion)])
    }

    /// Cancels a pending or active run (an operator's decision).
    #[napi(ts_return_type = "Promise<CompletionResult>")]
    pub fn cancel<'env>(
        &self,
        env: &'env Env,
        #[napi(ts_arg_type = "number | bigint")] run_id: Unknown<'env>,
        #[napi(ts_arg_type = "string | undefined | null")] reason_code: Option<Unknown<'env>>,
    ) -> Result<PromiseRaw<'env, Camel>> {
        let mut args = vec![("run_id", run_id)];
        args.extend(reason_code.map(|r| ("reason_code", r)));
        self.call(env, "cancel", args)
    }

    /// Ends stale runs; admits pending runs of the scopes this frees.
    #[napi(ts_return_type = "Promise<ReapResult>")]
    pub fn reap_stale<'env>(&self, env: &'env Env) -> Result<PromiseRaw<'env, Camel>> {
        self.call(env, "reap_stale", vec![])
    }

    /// One run by id.
    #[napi(ts_return_type = "Promise<Run>")]
    pub fn get_run<'env>(
        &self,
        env: &'env Env,
        #[napi(ts_arg_type = "number | bigint")] run_id: Unknown<'env>,
    ) -> Result<PromiseRaw<'env, Camel>> {
        self.call(env, "get_run", vec![("run_id", run_id)])
    }

    /// Runs matching the filter, newest first.
    #[napi(ts_return_type = "Promise<Array<Run>>")]
    pub fn list_runs<'env>(
        &self,
        env: &'env Env,
        #[napi(ts_arg_type = "RunFilter | undefined | null")] filter: Option<Unknown<'env>>,
    ) -> Result<PromiseRaw<'env, Camel>> {
        self.call(
            env,
            "list_runs",
            filter.map(|f| ("filter", f)).into_iter().collect(),
        )
    }

    /// The audit rows of the start attempts that created, were refused by, or replaced a run.
    #[napi(ts_return_type = "Promise<Array<StartAttempt>>")]
    pub fn attempts_for_run<'env>(
        &self,
        env: &'env Env,
        #[napi(ts_arg_type = "number | bigint")] run_id: Unknown<'env>,
    ) -> Result<PromiseRaw<'env, Camel>> {
        self.call(env, "attempts_for_run", vec![("run_id", run_id)])
    }

    /// Records a provider connection's readiness facts (never secrets).
    #[napi(ts_return_type = "Promise<ProviderConnection>")]
    pub fn upsert_connection<'env>(
        &self,
        env: &'env Env,
        #[napi(ts_arg_type = "ProviderConnectionInput")] connection: Unknown<'env>,
    ) -> Result<PromiseRaw<'env, Camel>> {
        self.call(env, "upsert_connection", vec![("connection", connection)])
    }

    /// One connection of a tenant, or `null`.
    #[napi(ts_return_type = "Promise<ProviderConnection | null>")]
    pub fn get_connection<'env>(
        &self,
        env: &'env Env,
        #[napi(ts_arg_type = "string")] tenant_id: Unknown<'env>,
        #[napi(ts_arg_type = "string")] id: Unknown<'env>,
    ) -> Result<PromiseRaw<'env, Camel>> {
        self.call(
            env,
            "get_connection",
            vec![("tenant_id", tenant_id), ("id", id)],
        )
    }

    /// Every connection of a tenant, by id.
    #[napi(ts_return_type = "Promise<Array<ProviderConnection>>")]
    pub fn list_connections<'env>(
        &self,
        env: &'env Env,
        #[napi(ts_arg_type = "string")] tenant_id: Unknown<'env>,
    ) -> Result<PromiseRaw<'env, Camel>> {
        self.call(env, "list_connections", vec![("tenant_id", tenant_id)])
    }

    /// Operator feedback for a start result. Synchronous: no database access.
    #[napi(ts_return_type = "Presentation")]
    pub fn present(
        &self,
        env: &Env,
        #[napi(ts_arg_type = "StartResult")] result: Unknown<'_>,
    ) -> Result<Camel> {
        self.pure(env, "present", vec![("result", result)])
    }

    /// Run-detail wording, from the same reason catalogue. Synchronous.
    #[napi(ts_return_type = "Presentation")]
    pub fn present_run(
        &self,
        env: &Env,
        #[napi(ts_arg_type = "Run")] run: Unknown<'_>,
    ) -> Result<Camel> {
        self.pure(env, "present_run", vec![("run", run)])
    }

    /// What this gate has done in this process since it opened: starts by
    /// operation and outcome, blocked starts by primary reason, takeovers,
    /// reaped runs, failed calls by error code, latency per call kind.
    /// Synchronous: no database access. The keys of its maps are data (an
    /// operation's name, an outcome, a code, a call kind), so they are left as
    /// they are; only the snapshot's own fields are camelCased.
    #[napi(ts_return_type = "Metrics")]
    pub fn metrics(&self, env: &Env) -> Result<Value> {
        let snapshot = serde_json::to_value(self.inner.metrics()).map_err(|e| {
            let message = e.to_string();
            js_error(env, &startgate::Error::Internal { message })
        })?;
        let Value::Object(fields) = snapshot else {
            return Ok(snapshot);
        };
        Ok(Value::Object(
            fields
                .into_iter()
                .map(|(key, value)| {
                    let value = match (key.as_str(), value) {
                        ("latency", Value::Object(kinds)) => Value::Object(
                            kinds.into_iter().map(|(k, v)| (k, camel_keys(v))).collect(),
                        ),
                        (_, value) => value,
                    };
                    (camel(&key), value)
                })
                .collect(),
        ))
    }

    /// Moves a manual clock (opened with `manualClock`) forward; tests and demos.
    #[napi(ts_return_type = "void")]
    pub fn advance_clock(
        &self,
        env: &Env,
        #[napi(ts_arg_type = "number")] seconds: Unknown<'_>,
    ) -> Result<()> {
        self.pure(env, "advance_clock", vec![("seconds", seconds)])
            .map(|_| ())
    }

    /// Closes the pool; later calls reject with `store_unavailable`.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn close<'env>(&self, env: &'env Env) -> Result<PromiseRaw<'env, Camel>> {
        let gate = self.inner.clone();
        promise(env, async move {
            gate.close().await;
            Ok(Camel::Text("null".into()))
        })
    }
}

/// The logger `setLogger` installed: its callback, on the JS thread that
/// installed it (only that thread calls it).
type Logger = FunctionRef<Value, Unknown<'static>>;

/// A slot that never deletes its reference when its thread ends (the JS
/// environment is gone by then); `setLogger` replaces it while it is live.
struct LoggerSlot(Option<Logger>);

impl Drop for LoggerSlot {
    fn drop(&mut self) {
        std::mem::forget(self.0.take());
    }
}

thread_local! {
    static LOGGER: std::cell::RefCell<LoggerSlot> = const { std::cell::RefCell::new(LoggerSlot(None)) };
}

/// Hands the library's waiting log records to this thread's logger, if any.
fn deliver_logs(env: &Env) {
    // Taken out while it runs: a logger that calls the gate (or setLogger)
    // finds no logger to re-enter.
    let Some(logger) = LOGGER.with(|slot| slot.borrow_mut().0.take()) else {
        return;
    };
    if let Ok(callback) = logger.borrow_back(env) {
        startgate::log::deliver(|record| {
            let record = serde_json::json!({
                "level": record.level.as_str(),
                "message": record.message,
                "target": record.target,
                "fields": camel_keys(Value::Object(record.fields)),
            });
            // A logger that throws loses that record; the exception is
            // cleared, never thrown at the caller of the gate.
            let _ = callback.call(record);
        });
    }
    LOGGER.with(|slot| {
        let mut slot = slot.borrow_mut();
        if slot.0.is_none() {
            slot.0 = Some(logger);
        }
    });
}

/// Routes the library's log records to `callback`, for records at `level`
/// (`'error'`, `'warn'`, `'info'` (the default), `'debug'` or `'trace'`) and
/// more severe; `null` stops (then `STARTGATE_LOG=info` in the environment
/// sends them to stderr). Each record is handed over on this thread as the
/// call that produced it settles, before its Promise resolves: `{ level,
/// message, target, fields }`, `fields` holding `call`, `operation`,
/// `tenantId`, `outcome`, `reasonCode`, `runId`, `durationUs`, `roundTrips`,
/// `retries`, `error`, … (absent where they do not apply; never params or
/// credentials). Throws `invalid_request` on a bad argument.
#[napi(
    ts_args_type = "callback: ((record: LogRecord) => void) | null, level?: 'error' | 'warn' | 'info' | 'debug' | 'trace'"
)]
pub fn set_logger(env: Env, callback: Unknown<'_>, level: Option<Unknown<'_>>) -> Result<()> {
    let fail = |err: startgate::Error| js_error(&env, &err);
    let level = match level.map(|l| argument(&env, "level", l)).transpose() {
        Err(err) => return Err(fail(err)),
        Ok(None | Some(Value::Null)) => startgate::log::LogLevel::Info,
        Ok(Some(Value::String(name))) => {
            startgate::log::LogLevel::named("level", &name).map_err(fail)?
        }
        Ok(Some(_)) => return Err(fail(startgate::log::LogLevel::invalid("level"))),
    };
    let logger = match callback.get_type()? {
        ValueType::Null | ValueType::Undefined => None,
        ValueType::Function => {
            // SAFETY: checked to be a function just above.
            let function: Function<'_, Value, Unknown<'static>> = unsafe { callback.cast()? };
            Some(function.create_ref()?)
        }
        _ => {
            return Err(fail(input::invalid(
                "callback",
                "expected a function or null",
            )))
        }
    };
    startgate::log::install();
    startgate::log::set_host_level(logger.as_ref().map(|_| level));
    let previous = LOGGER.with(|slot| std::mem::replace(&mut slot.borrow_mut().0, logger));
    drop(previous);
    Ok(())
}

/// A record of the library's log, as `setLogger`'s callback receives it.
#[napi(object)]
pub struct LogRecord {
    #[napi(ts_type = "'error' | 'warn' | 'info' | 'debug' | 'trace'")]
    pub level: String,
    /// A short sentence, e.g. `start inventory.sync: accepted`.
    pub message: String,
    /// Always `startgate`.
    pub target: String,
    /// The event's fields (`call`, `operation`, `tenantId`, `outcome`,
    /// `reasonCode`, `runId`, `durationUs`, `roundTrips`, `retries`, …).
    #[napi(ts_type = "Record<string, string | number | boolean>")]
    pub fields: HashMap<String, Value>,
}

/// The library version.
#[napi]
pub fn version() -> String {
    startgate::VERSION.to_string()
}

// ---- TypeScript declarations (the runtime objects are checked against these) ----

/// Options of `Gate.open`: the registry (a file path, or `registryToml`,
/// its text; exactly one) and the gate's bounds.
#[napi(object)]
pub struct OpenOptions {
    /// The path of the registry TOML file.
    pub registry: Option<String>,
    /// The registry as TOML text (instead of `registry`).
    pub registry_toml: Option<String>,
    pub connect_timeout_ms: Option<u32>,
    pub acquire_timeout_ms: Option<u32>,
    pub statement_timeout_ms: Option<u32>,
    pub max_connections: Option<u32>,
    /// Start a manual clock at this RFC 3339 instant (tests, demos).
    pub manual_clock: Option<String>,
    /// PostgreSQL: the schema of the gate's tables (default `startgate`).
    pub schema: Option<String>,
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

/// A stable code and a message (and, for `invalid_request`, the field).
#[napi(object)]
pub struct ErrorInfo {
    #[napi(
        ts_type = "'invalid_request' | 'unknown_operation' | 'registry_invalid' | 'run_not_found' | 'invalid_transition' | 'store_unavailable' | 'store_timeout' | 'migration_failed' | 'internal'"
    )]
    pub code: String,
    pub message: String,
    pub field: Option<String>,
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

/// What a gate has done in this process (`Gate.metrics()`).
#[napi(object)]
pub struct Metrics {
    /// Start results by operation name, then outcome.
    pub starts: HashMap<String, HashMap<String, i64>>,
    /// Blocked starts by primary reason code.
    pub blocked: HashMap<String, i64>,
    /// Accepted starts that ended a stale run.
    pub takeovers: i64,
    /// Runs ended by `reapStale`.
    pub reaped_runs: i64,
    /// Failed calls by stable error code.
    pub errors: HashMap<String, i64>,
    /// Latency per call kind (`start`, `mark_running`, …) over its recent calls.
    pub latency: HashMap<String, Latency>,
}

/// A latency summary of one call kind.
#[napi(object)]
pub struct Latency {
    pub calls: i64,
    pub p50_us: i64,
    pub p99_us: i64,
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
