//! The startgate C ABI. `include/startgate.h` is generated from this file.
//!
//! Conventions (they are repeated in the header and the README):
//! - Every function returns a `startgate_status`; `STARTGATE_OK` is 0. On any
//!   other status, `*out_error` (when not NULL) receives an error object the
//!   caller frees with `startgate_error_free`; its code string is the stable
//!   code of the contract. Outputs are written only on success.
//! - Structured values cross as UTF-8 JSON documents in the shapes of the
//!   contract (a handle may hand its results over in PHP's `serialize()`
//!   format instead: `startgate_set_result_format`). A returned `char *`
//!   belongs to the caller, who frees it with `startgate_string_free`.
//!   Strings passed in are borrowed for the call only.
//! - Input follows docs/DESIGN.md §10: a document is exactly one JSON value,
//!   text is valid Unicode without NUL, ids are exact integers; a refusal is
//!   `invalid_request` whose error object also names the field.
//! - Every `*_free` accepts NULL. A handle is safe to use from several threads
//!   at once, and after `fork()` in the child (which gets its own connections).
//! - No panic crosses the boundary: it becomes `STARTGATE_INTERNAL`.

#![allow(non_camel_case_types)]

use std::ffi::{c_char, c_void, CStr, CString};
use std::panic::{self, AssertUnwindSafe};
use std::sync::Mutex;

use startgate_core::{
    json, Completion, Error, ErrorCode, ProviderConnection, Run, SequenceRequest, StartRequest,
    StartResult,
};

mod handle;
mod php;

use handle::{Handle, OpenSpec};
use startgate_host::block_on_in;

/// The outcome of a call. The values are stable: a retired value stays reserved.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum startgate_status {
    /// Success; outputs were written.
    STARTGATE_OK = 0,
    /// A malformed argument (NULL, not UTF-8, bad JSON, wrong field): `invalid_request`.
    STARTGATE_INVALID_REQUEST = 1,
    /// The operation type is not in the registry: `unknown_operation`.
    STARTGATE_UNKNOWN_OPERATION = 2,
    /// The registry document is invalid: `registry_invalid`.
    STARTGATE_REGISTRY_INVALID = 3,
    /// No run has this id: `run_not_found`.
    STARTGATE_RUN_NOT_FOUND = 4,
    /// The run cannot make this transition (the worker must stop): `invalid_transition`.
    STARTGATE_INVALID_TRANSITION = 5,
    /// The database cannot be reached, or the gate was closed: `store_unavailable`.
    STARTGATE_STORE_UNAVAILABLE = 6,
    /// The database did not answer in time: `store_timeout`.
    STARTGATE_STORE_TIMEOUT = 7,
    /// Applying migrations failed: `migration_failed`.
    STARTGATE_MIGRATION_FAILED = 8,
    /// A bug or an unexpected state (including a caught panic): `internal`.
    STARTGATE_INTERNAL = 9,
}

/// How a handle writes the result documents its calls hand over (see
/// `startgate_set_result_format`). The values are stable.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum startgate_result_format {
    /// UTF-8 JSON text in the shapes of the contract: the default.
    STARTGATE_RESULT_JSON = 0,
    /// The same document in PHP's `serialize()` format: `unserialize()` of
    /// it is the array `json_decode($json, true)` gives for the JSON text.
    /// What the PHP package uses.
    STARTGATE_RESULT_PHP_SERIALIZE = 1,
}

impl startgate_result_format {
    /// The format a `startgate_result_format` value names, if it names one.
    fn from_u32(value: u32) -> Option<startgate_result_format> {
        use startgate_result_format::*;
        [STARTGATE_RESULT_JSON, STARTGATE_RESULT_PHP_SERIALIZE]
            .into_iter()
            .find(|format| *format as u32 == value)
    }

    /// Encodes a call's result.
    fn encode<T: serde::Serialize>(self, value: &T) -> Result<String, Error> {
        match self {
            startgate_result_format::STARTGATE_RESULT_JSON => json::to_json(value),
            startgate_result_format::STARTGATE_RESULT_PHP_SERIALIZE => php::to_serialized(value),
        }
    }
}

/// `STARTGATE_RESULT_PHP_SERIALIZE` for the core's generic calls (JSON is
/// the core's own [`json::AsText`]).
struct AsPhp;

impl json::Encoding for AsPhp {
    type Output = String;
    fn encode<T: json::CallResult>(value: T) -> Result<String, Error> {
        php::to_serialized(&value)
    }
    fn from_value(value: serde_json::Value) -> Result<String, Error> {
        php::to_serialized(&value)
    }
}

fn status_of(code: ErrorCode) -> startgate_status {
    use startgate_status::*;
    match code {
        ErrorCode::InvalidRequest => STARTGATE_INVALID_REQUEST,
        ErrorCode::UnknownOperation => STARTGATE_UNKNOWN_OPERATION,
        ErrorCode::RegistryInvalid => STARTGATE_REGISTRY_INVALID,
        ErrorCode::RunNotFound => STARTGATE_RUN_NOT_FOUND,
        ErrorCode::InvalidTransition => STARTGATE_INVALID_TRANSITION,
        ErrorCode::StoreUnavailable => STARTGATE_STORE_UNAVAILABLE,
        ErrorCode::StoreTimeout => STARTGATE_STORE_TIMEOUT,
        ErrorCode::MigrationFailed => STARTGATE_MIGRATION_FAILED,
        ErrorCode::Internal => STARTGATE_INTERNAL,
    }
}

/// An open gate. Opaque; created by `startgate_open` / `startgate_open_file`,
/// released by `startgate_free`.
pub struct startgate_gate {
    _private: u8,
}

/// Details of a failed call: a stable code string, a message and, for
/// `invalid_request`, the offending field. Opaque; released by
/// `startgate_error_free`.
pub struct startgate_error {
    code: &'static CStr,
    message: CString,
    field: Option<CString>,
}

fn invalid(field: &str, message: &str) -> Error {
    Error::InvalidRequest {
        field: field.to_string(),
        message: message.to_string(),
    }
}

fn code_cstr(code: ErrorCode) -> &'static CStr {
    match code {
        ErrorCode::InvalidRequest => c"invalid_request",
        ErrorCode::UnknownOperation => c"unknown_operation",
        ErrorCode::RegistryInvalid => c"registry_invalid",
        ErrorCode::RunNotFound => c"run_not_found",
        ErrorCode::InvalidTransition => c"invalid_transition",
        ErrorCode::StoreUnavailable => c"store_unavailable",
        ErrorCode::StoreTimeout => c"store_timeout",
        ErrorCode::MigrationFailed => c"migration_failed",
        ErrorCode::Internal => c"internal",
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    }
}

/// Silences the default panic output once: a caught panic is reported through
/// the error object, not printed into the host's logs.
fn quiet_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if std::env::var_os("STARTGATE_DEBUG_PANICS").is_some() {
                previous(info);
            }
        }));
    });
}

/// The panic boundary around every export: runs `body`, turns an error or a
/// panic into a status and (when `out_error` is not NULL) an error object.
fn guard(
    out_error: *mut *mut startgate_error,
    body: impl FnOnce() -> Result<(), Error>,
) -> startgate_status {
    quiet_panics();
    startgate_core::log::install();
    let outcome = panic::catch_unwind(AssertUnwindSafe(body)).unwrap_or_else(|payload| {
        Err(Error::Internal {
            message: format!("startgate panicked: {}", panic_message(payload.as_ref())),
        })
    });
    deliver_logs();
    match outcome {
        Ok(()) => startgate_status::STARTGATE_OK,
        Err(err) => {
            let status = status_of(err.code());
            if !out_error.is_null() {
                let message = printable(&err.to_string());
                let field = match &err {
                    Error::InvalidRequest { field, .. } => Some(printable(field)),
                    _ => None,
                };
                let error = Box::new(startgate_error {
                    code: code_cstr(err.code()),
                    message,
                    field,
                });
                // SAFETY: the caller passes a valid location or NULL (checked).
                unsafe { *out_error = Box::into_raw(error) };
            }
            status
        }
    }
}

/// A borrowed, validated UTF-8 argument.
///
/// # Safety
/// `ptr` is NULL or points to a NUL-terminated string valid for the call.
unsafe fn text<'a>(ptr: *const c_char, name: &str) -> Result<&'a str, Error> {
    if ptr.is_null() {
        return Err(invalid(name, "must not be NULL"));
    }
    // SAFETY: non-NULL and NUL-terminated per the contract above.
    unsafe { CStr::from_ptr(ptr) }
        .to_str()
        .map_err(|_| startgate_core::input::not_unicode(name))
}

/// Like [`text`], but NULL means "absent".
///
/// # Safety
/// As for [`text`].
unsafe fn optional_text<'a>(ptr: *const c_char, name: &str) -> Result<Option<&'a str>, Error> {
    if ptr.is_null() {
        Ok(None)
    } else {
        // SAFETY: as for `text`.
        unsafe { text(ptr, name) }.map(Some)
    }
}

/// A borrowed document argument, parsed from its bytes (which need not be
/// UTF-8: text inside that is not is refused naming its field).
///
/// # Safety
/// As for [`text`].
unsafe fn document(ptr: *const c_char, name: &str) -> Result<serde_json::Value, Error> {
    // SAFETY: as for `text`.
    startgate_core::input::parse_value_bytes(name, unsafe { document_bytes(ptr, name) }?)
}

/// A borrowed document argument decoded as `T`, with the answers of
/// [`document`] then the core's decoding, and without a value tree in
/// between when the document needs none (`input::parse_bytes`).
///
/// # Safety
/// As for [`text`].
unsafe fn decoded<T: serde::de::DeserializeOwned>(
    ptr: *const c_char,
    name: &str,
) -> Result<T, Error> {
    // SAFETY: as for `text`.
    startgate_core::input::parse_bytes(name, unsafe { document_bytes(ptr, name) }?)
}

/// The bytes of a document argument, refused when NULL.
///
/// # Safety
/// As for [`text`].
unsafe fn document_bytes<'a>(ptr: *const c_char, name: &str) -> Result<&'a [u8], Error> {
    if ptr.is_null() {
        return Err(invalid(name, "must not be NULL"));
    }
    // SAFETY: non-NULL and NUL-terminated per the contract of `text`.
    Ok(unsafe { CStr::from_ptr(ptr) }.to_bytes())
}

/// Calls `method` with one named document argument and encodes the result
/// in `format`.
async fn with_document(
    core: startgate_core::Gate,
    format: startgate_result_format,
    method: &'static str,
    name: &'static str,
    value: serde_json::Value,
) -> Result<String, Error> {
    let mut args = serde_json::Map::new();
    args.insert(name.to_string(), value);
    match format {
        startgate_result_format::STARTGATE_RESULT_JSON => {
            document_call::<json::AsText>(&core, method, args).await
        }
        startgate_result_format::STARTGATE_RESULT_PHP_SERIALIZE => {
            document_call::<AsPhp>(&core, method, args).await
        }
    }
}

/// [`with_document`]'s call, its result encoded by `E`: a pure method at
/// once, any other through the store.
async fn document_call<E: json::Encoding>(
    core: &startgate_core::Gate,
    method: &'static str,
    args: serde_json::Map<String, serde_json::Value>,
) -> Result<E::Output, Error> {
    if json::PURE_METHODS.contains(&method) {
        return json::call_pure_encoded::<E>(core, method, args);
    }
    json::call_encoded::<E>(core, method, args).await
}

/// Opens a handle from the spec `spec` builds and writes it to `*out_gate`.
///
/// # Safety
/// `out_gate` and `out_error` are valid locations or NULL.
unsafe fn open_into(
    out_gate: *mut *mut startgate_gate,
    out_error: *mut *mut startgate_error,
    spec: impl FnOnce() -> Result<OpenSpec, Error>,
) -> startgate_status {
    guard(out_error, || {
        if out_gate.is_null() {
            return Err(invalid("out_gate", "must not be NULL"));
        }
        let gate = Handle::open(spec()?)?;
        // SAFETY: checked non-NULL above; valid per the caller's contract.
        unsafe { *out_gate = gate };
        Ok(())
    })
}

/// Hands a JSON document to the caller.
///
/// # Safety
/// `out` is a valid location (checked non-NULL by the caller).
unsafe fn give(out: *mut *mut c_char, json: String) -> Result<(), Error> {
    let json = CString::new(json).map_err(|_| Error::Internal {
        message: "a result contained a NUL byte".into(),
    })?;
    // SAFETY: `out` is valid per the contract.
    unsafe { *out = json.into_raw() };
    Ok(())
}

/// Runs a JSON-returning call on a live handle: checks `out`, resolves the
/// handle (never dereferencing a stale or foreign pointer), runs `call` (on
/// the calling thread; only a wait goes to the process's runtime) and writes
/// the result only on success.
///
/// # Safety
/// `out` and `out_error` are valid locations or NULL.
unsafe fn json_call<F, Fut>(
    gate: *const startgate_gate,
    out: *mut *mut c_char,
    out_error: *mut *mut startgate_error,
    call: F,
) -> startgate_status
where
    F: FnOnce(startgate_core::Gate, startgate_result_format) -> Result<Fut, Error>,
    Fut: std::future::Future<Output = Result<String, Error>>,
{
    guard(out_error, || {
        if out.is_null() {
            return Err(invalid("out_json", "must not be NULL"));
        }
        let handle = Handle::lookup(gate)?;
        let format = handle.result_format();
        let live = handle.live()?;
        let json = block_on_in(live.runtime, call(live.gate, format)?)?;
        // SAFETY: checked non-NULL above.
        unsafe { give(out, json) }
    })
}

/// Receives the library's log records (see `startgate_set_log_callback`).
/// `level` is "error", "warn", "info", "debug" or "trace"; `message` a short
/// sentence such as "start inventory.sync: accepted"; `fields_json` a JSON
/// object of the event's fields: `call`, `operation`, `tenant_id`, `outcome`,
/// `reason_code`, `run_id`, `duration_us`, `round_trips`, `retries`, `error`,
/// … (absent when they do not apply; never params or credentials). The
/// strings are borrowed for the call of the callback only.
pub type startgate_log_callback = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        level: *const c_char,
        message: *const c_char,
        fields_json: *const c_char,
    ),
>;

/// The host's log callback and its `user_data` (as an address, to be `Send`).
type LogSink = (
    unsafe extern "C" fn(*mut c_void, *const c_char, *const c_char, *const c_char),
    usize,
);

/// `text` as a C string; a NUL inside (an error may quote the input) is
/// written `\0` rather than cutting the text short.
fn printable(text: &str) -> CString {
    CString::new(text.replace('\0', "\\0")).unwrap_or_default()
}

static LOG_SINK: Mutex<Option<LogSink>> = Mutex::new(None);

/// Hands the records waiting for the host to its callback, on this thread.
fn deliver_logs() {
    let sink = *LOG_SINK
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let Some((callback, user_data)) = sink else {
        return;
    };
    startgate_core::log::deliver(|record| {
        let level = printable(record.level.as_str());
        let message = printable(&record.message);
        let fields = printable(&serde_json::Value::Object(record.fields).to_string());
        // SAFETY: the host registered this callback for exactly these
        // arguments; the strings live until it returns.
        unsafe {
            callback(
                user_data as *mut c_void,
                level.as_ptr(),
                message.as_ptr(),
                fields.as_ptr(),
            )
        };
    });
}

/// Routes the library's log records to `callback` (NULL: stop; records then
/// go to stderr when the environment sets `STARTGATE_LOG=info` or another
/// level, and nowhere otherwise). `level` ("error", "warn", "info", "debug"
/// or "trace"; NULL means "info") is the least severe level delivered.
///
/// Records are delivered on the thread of a startgate call, before that call
/// returns, one at a time (never two callbacks at once): a call's own records
/// by the time it returns, unless another thread is delivering at that
/// moment, which then delivers them. `user_data` is passed back unchanged.
/// The callback may call startgate (its records wait for the next delivery).
///
/// # Safety
/// `callback`, if not NULL, is callable with the arguments above from any
/// thread that calls startgate, until it is replaced; `level` is NULL or a
/// NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn startgate_set_log_callback(
    callback: startgate_log_callback,
    user_data: *mut c_void,
    level: *const c_char,
    out_error: *mut *mut startgate_error,
) -> startgate_status {
    guard(out_error, || {
        // SAFETY: NULL or NUL-terminated per the contract.
        let level = match unsafe { optional_text(level, "level") }? {
            None => startgate_core::log::LogLevel::Info,
            Some(name) => startgate_core::log::LogLevel::named("level", name)?,
        };
        let mut sink = LOG_SINK
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *sink = callback.map(|f| (f, user_data as usize));
        startgate_core::log::set_host_level(callback.map(|_| level));
        Ok(())
    })
}

/// The library's version, e.g. "0.1.0" (equal to `STARTGATE_VERSION` of the
/// header it was built with). A static string: do not free it.
#[no_mangle]
pub extern "C" fn startgate_version() -> *const c_char {
    static VERSION: &CStr =
        match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
            Ok(v) => v,
            Err(_) => c"unknown",
        };
    VERSION.as_ptr()
}

/// The stable code string of a status ("invalid_request", …; "ok" for
/// `STARTGATE_OK`, "unknown" for a value this library does not define). Static.
#[no_mangle]
pub extern "C" fn startgate_status_code(status: u32) -> *const c_char {
    use startgate_status::*;
    let code = [
        (STARTGATE_OK as u32, c"ok"),
        (STARTGATE_INVALID_REQUEST as u32, c"invalid_request"),
        (STARTGATE_UNKNOWN_OPERATION as u32, c"unknown_operation"),
        (STARTGATE_REGISTRY_INVALID as u32, c"registry_invalid"),
        (STARTGATE_RUN_NOT_FOUND as u32, c"run_not_found"),
        (STARTGATE_INVALID_TRANSITION as u32, c"invalid_transition"),
        (STARTGATE_STORE_UNAVAILABLE as u32, c"store_unavailable"),
        (STARTGATE_STORE_TIMEOUT as u32, c"store_timeout"),
        (STARTGATE_MIGRATION_FAILED as u32, c"migration_failed"),
        (STARTGATE_INTERNAL as u32, c"internal"),
    ]
    .into_iter()
    .find(|(value, _)| *value == status)
    .map_or(c"unknown", |(_, code)| code);
    code.as_ptr()
}

/// Opens a gate on `url` (a SQLite path or `sqlite:` URL, or a `postgres://`
/// URL, optionally with `?pool_mode=transaction` behind pgbouncer) with the
/// registry given as TOML text. `options_json` may be NULL, or an object with
/// `connect_timeout_ms`, `acquire_timeout_ms`, `statement_timeout_ms`,
/// `max_connections`, `schema` (PostgreSQL: the schema of the gate's tables,
/// default `startgate`), `manual_clock` (RFC 3339; tests) and `share` (true:
/// handles opened with the same url, registry and options share one pool per
/// process, which outlives `startgate_free` — what PHP-FPM wants).
/// On success `*out_gate` receives a handle to release with `startgate_free`.
///
/// # Safety
/// Every pointer is NULL or valid for the call; strings are NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn startgate_open(
    url: *const c_char,
    registry_toml: *const c_char,
    options_json: *const c_char,
    out_gate: *mut *mut startgate_gate,
    out_error: *mut *mut startgate_error,
) -> startgate_status {
    // SAFETY: per the function's contract.
    unsafe {
        open_into(out_gate, out_error, || {
            let url = text(url, "url")?;
            let toml = text(registry_toml, "registry_toml")?;
            let options = optional_text(options_json, "options")?.unwrap_or("");
            OpenSpec::from_parts(url, None, Some(toml), options)
        })
    }
}

/// Like `startgate_open`, with the registry read from the TOML file at
/// `registry_path`.
///
/// # Safety
/// As for `startgate_open`.
#[no_mangle]
pub unsafe extern "C" fn startgate_open_file(
    url: *const c_char,
    registry_path: *const c_char,
    options_json: *const c_char,
    out_gate: *mut *mut startgate_gate,
    out_error: *mut *mut startgate_error,
) -> startgate_status {
    // SAFETY: per the function's contract.
    unsafe {
        open_into(out_gate, out_error, || {
            let url = text(url, "url")?;
            let path = text(registry_path, "registry")?;
            let options = optional_text(options_json, "options")?.unwrap_or("");
            OpenSpec::from_parts(url, Some(path), None, options)
        })
    }
}

/// Like `startgate_open`, with everything in one JSON document: `url`, the
/// registry as `registry` (the path of a TOML file) or `registry_toml` (its
/// text), `share`, and the options of `startgate_open`. JSON carries any
/// character, so this is the entry point for hosts whose strings may hold a
/// NUL byte (PHP): such a URL or path is refused, never cut short.
///
/// # Safety
/// Every pointer is NULL or valid for the call; strings are NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn startgate_open_json(
    open_json: *const c_char,
    out_gate: *mut *mut startgate_gate,
    out_error: *mut *mut startgate_error,
) -> startgate_status {
    // SAFETY: per the function's contract.
    unsafe {
        open_into(out_gate, out_error, || {
            OpenSpec::from_json(text(open_json, "open")?)
        })
    }
}

/// Sets how this handle writes the result documents its calls hand over in
/// `*out_json`, from its next call on: `format` is one of
/// `startgate_result_format` (`STARTGATE_RESULT_JSON`, the default, or
/// `STARTGATE_RESULT_PHP_SERIALIZE`). Another value is `invalid_request`
/// naming `format`. Only this handle changes, not others sharing its pool;
/// log records' `fields_json` stays JSON.
///
/// # Safety
/// `gate` is a handle from `startgate_open*` (or anything: unknown handles are refused).
#[no_mangle]
pub unsafe extern "C" fn startgate_set_result_format(
    gate: *const startgate_gate,
    format: u32,
    out_error: *mut *mut startgate_error,
) -> startgate_status {
    guard(out_error, || {
        let format = startgate_result_format::from_u32(format).ok_or_else(|| {
            invalid(
                "format",
                &format!("{format} is not a startgate_result_format (0: JSON, 1: PHP serialize)"),
            )
        })?;
        Handle::lookup(gate)?.set_result_format(format);
        Ok(())
    })
}

/// Closes the gate: its pool is closed (unless shared) and every later call on
/// this handle fails with `STARTGATE_STORE_UNAVAILABLE`. The handle itself
/// stays valid until `startgate_free`. Closing twice is fine.
///
/// # Safety
/// `gate` is a handle from `startgate_open*` (or anything: unknown handles are refused).
#[no_mangle]
pub unsafe extern "C" fn startgate_close(
    gate: *const startgate_gate,
    out_error: *mut *mut startgate_error,
) -> startgate_status {
    guard(out_error, || Handle::lookup(gate)?.close())
}

/// Releases a handle (closing it first unless its pool is shared). NULL, and a
/// pointer that is not a live handle, are ignored.
///
/// # Safety
/// `gate` must not be used after this call.
#[no_mangle]
pub unsafe extern "C" fn startgate_free(gate: *mut startgate_gate) {
    let _ = panic::catch_unwind(|| Handle::release(gate));
}

/// Applies the schema migrations (idempotent). Run it against PostgreSQL
/// directly, not through a transaction pooler.
///
/// # Safety
/// Every pointer is NULL or valid for the call.
#[no_mangle]
pub unsafe extern "C" fn startgate_migrate(
    gate: *const startgate_gate,
    out_error: *mut *mut startgate_error,
) -> startgate_status {
    guard(out_error, || {
        let live = Handle::lookup(gate)?.live()?;
        block_on_in(live.runtime, live.gate.migrate())
    })
}

/// Starts an operation: `request_json` is a start request; `*out_json`
/// receives the start result (outcome accepted / deduped / scope_busy /
/// blocked / denied). Refusals are results, not errors.
///
/// # Safety
/// Every pointer is NULL or valid for the call; strings are NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn startgate_start(
    gate: *const startgate_gate,
    request_json: *const c_char,
    out_json: *mut *mut c_char,
    out_error: *mut *mut startgate_error,
) -> startgate_status {
    // SAFETY: per the function's contract.
    unsafe {
        json_call(gate, out_json, out_error, |core, format| {
            let request: StartRequest = decoded(request_json, "request")?;
            Ok(async move { format.encode(&core.start(&request).await?) })
        })
    }
}

/// The decisions `startgate_start` would make for a JSON list of start
/// requests, writing nothing. `*out_json` receives a list with, per request,
/// a start result or `{"error": {"code", "message"}}`.
///
/// # Safety
/// Every pointer is NULL or valid for the call; strings are NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn startgate_check(
    gate: *const startgate_gate,
    requests_json: *const c_char,
    out_json: *mut *mut c_char,
    out_error: *mut *mut startgate_error,
) -> startgate_status {
    // SAFETY: per the function's contract.
    unsafe {
        json_call(gate, out_json, out_error, |core, format| {
            let requests = document(requests_json, "requests")?;
            Ok(with_document(core, format, "check", "requests", requests))
        })
    }
}

/// Starts an ordered list of operations on one scope (`operations`, or a
/// registry `sequence`); the later steps are recorded as pending and listed
/// in the result's `pending`.
///
/// # Safety
/// Every pointer is NULL or valid for the call; strings are NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn startgate_start_sequence(
    gate: *const startgate_gate,
    request_json: *const c_char,
    out_json: *mut *mut c_char,
    out_error: *mut *mut startgate_error,
) -> startgate_status {
    // SAFETY: per the function's contract.
    unsafe {
        json_call(gate, out_json, out_error, |core, format| {
            let request: SequenceRequest = decoded(request_json, "request")?;
            Ok(async move { format.encode(&core.start_sequence(&request).await?) })
        })
    }
}

/// The worker took the run (`queued` → `running`, lease started; repeating it
/// renews the lease). `*out_json` receives the run.
/// `STARTGATE_INVALID_TRANSITION` means the worker must stop.
///
/// # Safety
/// Every pointer is NULL or valid for the call.
#[no_mangle]
pub unsafe extern "C" fn startgate_mark_running(
    gate: *const startgate_gate,
    run_id: i64,
    fencing_token: i64,
    out_json: *mut *mut c_char,
    out_error: *mut *mut startgate_error,
) -> startgate_status {
    // SAFETY: per the function's contract.
    unsafe {
        json_call(gate, out_json, out_error, |core, format| {
            Ok(async move { format.encode(&core.mark_running(run_id, fencing_token).await?) })
        })
    }
}

/// Extends a running run's lease. `*out_json` receives the run.
///
/// # Safety
/// Every pointer is NULL or valid for the call.
#[no_mangle]
pub unsafe extern "C" fn startgate_heartbeat(
    gate: *const startgate_gate,
    run_id: i64,
    fencing_token: i64,
    out_json: *mut *mut c_char,
    out_error: *mut *mut startgate_error,
) -> startgate_status {
    // SAFETY: per the function's contract.
    unsafe {
        json_call(gate, out_json, out_error, |core, format| {
            Ok(async move { format.encode(&core.heartbeat(run_id, fencing_token).await?) })
        })
    }
}

/// Ends a run (`completion_json`: run_id, fencing_token, outcome, optional
/// reason_code and summary). `*out_json` receives `{run, notify_initiator,
/// next, next_blocked}`; dispatch `next` when it is accepted.
///
/// # Safety
/// Every pointer is NULL or valid for the call; strings are NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn startgate_complete(
    gate: *const startgate_gate,
    completion_json: *const c_char,
    out_json: *mut *mut c_char,
    out_error: *mut *mut startgate_error,
) -> startgate_status {
    // SAFETY: per the function's contract.
    unsafe {
        json_call(gate, out_json, out_error, |core, format| {
            let completion: Completion = decoded(completion_json, "completion")?;
            Ok(async move { format.encode(&core.complete(&completion).await?) })
        })
    }
}

/// Cancels a pending or active run (an operator's decision; `reason_code` may
/// be NULL). `*out_json` receives a completion result.
///
/// # Safety
/// Every pointer is NULL or valid for the call; strings are NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn startgate_cancel(
    gate: *const startgate_gate,
    run_id: i64,
    reason_code: *const c_char,
    out_json: *mut *mut c_char,
    out_error: *mut *mut startgate_error,
) -> startgate_status {
    // SAFETY: per the function's contract.
    unsafe {
        json_call(gate, out_json, out_error, |core, format| {
            let reason = optional_text(reason_code, "reason_code")?.map(str::to_string);
            Ok(async move { format.encode(&core.cancel(run_id, reason.as_deref()).await?) })
        })
    }
}

/// Ends every stale run as failed (`run_lease_expired`) and admits pending
/// sequence runs of the scopes this frees. `*out_json` receives `{reaped, next}`.
///
/// # Safety
/// Every pointer is NULL or valid for the call.
#[no_mangle]
pub unsafe extern "C" fn startgate_reap_stale(
    gate: *const startgate_gate,
    out_json: *mut *mut c_char,
    out_error: *mut *mut startgate_error,
) -> startgate_status {
    // SAFETY: per the function's contract.
    unsafe {
        json_call(gate, out_json, out_error, |core, format| {
            Ok(async move { format.encode(&core.reap_stale().await?) })
        })
    }
}

/// One run by id (without its fencing token).
///
/// # Safety
/// Every pointer is NULL or valid for the call.
#[no_mangle]
pub unsafe extern "C" fn startgate_get_run(
    gate: *const startgate_gate,
    run_id: i64,
    out_json: *mut *mut c_char,
    out_error: *mut *mut startgate_error,
) -> startgate_status {
    // SAFETY: per the function's contract.
    unsafe {
        json_call(gate, out_json, out_error, |core, format| {
            Ok(async move { format.encode(&core.get_run(run_id).await?) })
        })
    }
}

/// Runs matching `filter_json` (NULL for all; fields tenant_id, operation,
/// status, active, limit), newest first.
///
/// # Safety
/// Every pointer is NULL or valid for the call; strings are NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn startgate_list_runs(
    gate: *const startgate_gate,
    filter_json: *const c_char,
    out_json: *mut *mut c_char,
    out_error: *mut *mut startgate_error,
) -> startgate_status {
    // SAFETY: per the function's contract.
    unsafe {
        json_call(gate, out_json, out_error, |core, format| {
            let filter = if filter_json.is_null() {
                serde_json::Value::Null
            } else {
                document(filter_json, "filter")?
            };
            Ok(with_document(core, format, "list_runs", "filter", filter))
        })
    }
}

/// The start attempts (audit rows) that created, were refused by, or replaced a run.
///
/// # Safety
/// Every pointer is NULL or valid for the call.
#[no_mangle]
pub unsafe extern "C" fn startgate_attempts_for_run(
    gate: *const startgate_gate,
    run_id: i64,
    out_json: *mut *mut c_char,
    out_error: *mut *mut startgate_error,
) -> startgate_status {
    // SAFETY: per the function's contract.
    unsafe {
        json_call(gate, out_json, out_error, |core, format| {
            Ok(async move { format.encode(&core.attempts_for_run(run_id).await?) })
        })
    }
}

/// Records (or replaces) a provider connection's readiness facts;
/// `*out_json` receives the stored connection.
///
/// # Safety
/// Every pointer is NULL or valid for the call; strings are NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn startgate_upsert_connection(
    gate: *const startgate_gate,
    connection_json: *const c_char,
    out_json: *mut *mut c_char,
    out_error: *mut *mut startgate_error,
) -> startgate_status {
    // SAFETY: per the function's contract.
    unsafe {
        json_call(gate, out_json, out_error, |core, format| {
            let connection: ProviderConnection = decoded(connection_json, "connection")?;
            Ok(async move { format.encode(&core.upsert_connection(&connection).await?) })
        })
    }
}

/// One connection of a tenant; `*out_json` receives it, or `null`.
///
/// # Safety
/// Every pointer is NULL or valid for the call; strings are NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn startgate_get_connection(
    gate: *const startgate_gate,
    tenant_id: *const c_char,
    connection_id: *const c_char,
    out_json: *mut *mut c_char,
    out_error: *mut *mut startgate_error,
) -> startgate_status {
    // SAFETY: per the function's contract.
    unsafe {
        json_call(gate, out_json, out_error, |core, format| {
            let tenant = text(tenant_id, "tenant_id")?.to_string();
            let id = text(connection_id, "id")?.to_string();
            Ok(async move { format.encode(&core.get_connection(&tenant, &id).await?) })
        })
    }
}

/// Every connection of a tenant, by id.
///
/// # Safety
/// Every pointer is NULL or valid for the call; strings are NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn startgate_list_connections(
    gate: *const startgate_gate,
    tenant_id: *const c_char,
    out_json: *mut *mut c_char,
    out_error: *mut *mut startgate_error,
) -> startgate_status {
    // SAFETY: per the function's contract.
    unsafe {
        json_call(gate, out_json, out_error, |core, format| {
            let tenant = text(tenant_id, "tenant_id")?.to_string();
            Ok(async move { format.encode(&core.list_connections(&tenant).await?) })
        })
    }
}

/// Operator feedback for a start result document (no database access).
///
/// # Safety
/// Every pointer is NULL or valid for the call; strings are NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn startgate_present(
    gate: *const startgate_gate,
    result_json: *const c_char,
    out_json: *mut *mut c_char,
    out_error: *mut *mut startgate_error,
) -> startgate_status {
    // SAFETY: per the function's contract.
    unsafe {
        json_call(gate, out_json, out_error, |core, format| {
            let result: StartResult = decoded(result_json, "result")?;
            Ok(std::future::ready(format.encode(&core.present(&result))))
        })
    }
}

/// Run-detail wording for a run document (no database access).
///
/// # Safety
/// Every pointer is NULL or valid for the call; strings are NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn startgate_present_run(
    gate: *const startgate_gate,
    run_json: *const c_char,
    out_json: *mut *mut c_char,
    out_error: *mut *mut startgate_error,
) -> startgate_status {
    // SAFETY: per the function's contract.
    unsafe {
        json_call(gate, out_json, out_error, |core, format| {
            let run: Run = decoded(run_json, "run")?;
            Ok(std::future::ready(format.encode(&core.present_run(&run))))
        })
    }
}

/// Moves a gate opened with `manual_clock` forward by `seconds` (tests and
/// demos); `STARTGATE_INVALID_REQUEST` on the system clock.
///
/// # Safety
/// Every pointer is NULL or valid for the call.
#[no_mangle]
pub unsafe extern "C" fn startgate_advance_clock(
    gate: *const startgate_gate,
    seconds: f64,
    out_error: *mut *mut startgate_error,
) -> startgate_status {
    guard(out_error, || {
        if !seconds.is_finite() || seconds < 0.0 {
            return Err(invalid("seconds", "must be a finite, non-negative number"));
        }
        let core = Handle::lookup(gate)?.gate()?;
        core.advance_clock(std::time::Duration::from_secs_f64(seconds))
    })
}

/// Any operation by name with a JSON object of named arguments (the names of
/// the contract, e.g. `{"run_id": 7, "fencing_token": 1}` for
/// "mark_running"); `*out_json` receives the result document.
///
/// # Safety
/// Every pointer is NULL or valid for the call; strings are NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn startgate_call(
    gate: *const startgate_gate,
    method: *const c_char,
    args_json: *const c_char,
    out_json: *mut *mut c_char,
    out_error: *mut *mut startgate_error,
) -> startgate_status {
    // SAFETY: per the function's contract.
    unsafe {
        json_call(gate, out_json, out_error, |core, format| {
            let method = text(method, "method")?.to_string();
            let args = if args_json.is_null() {
                Vec::new()
            } else {
                // Non-NULL and NUL-terminated per the contract (the
                // surrounding unsafe block is this function's).
                CStr::from_ptr(args_json).to_bytes().to_vec()
            };
            Ok(async move {
                match format {
                    startgate_result_format::STARTGATE_RESULT_JSON => {
                        json::call_bytes_encoded::<json::AsText>(&core, &method, &args).await
                    }
                    startgate_result_format::STARTGATE_RESULT_PHP_SERIALIZE => {
                        json::call_bytes_encoded::<AsPhp>(&core, &method, &args).await
                    }
                }
            })
        })
    }
}

/// Frees a string returned by this library. NULL is ignored.
///
/// # Safety
/// `s` came from this library and is not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn startgate_string_free(s: *mut c_char) {
    if !s.is_null() {
        // SAFETY: `s` was produced by `CString::into_raw` in `give`.
        drop(unsafe { CString::from_raw(s) });
    }
}

/// The stable code string of an error ("invalid_request", …). Static: valid
/// for the life of the process. NULL gives NULL.
///
/// # Safety
/// `error` is NULL or a live error object.
#[no_mangle]
pub unsafe extern "C" fn startgate_error_code(error: *const startgate_error) -> *const c_char {
    // SAFETY: NULL or live per the contract.
    match unsafe { error.as_ref() } {
        Some(e) => e.code.as_ptr(),
        None => std::ptr::null(),
    }
}

/// The error's message, for people. Owned by the error object: valid until
/// `startgate_error_free`. NULL gives NULL.
///
/// # Safety
/// `error` is NULL or a live error object.
#[no_mangle]
pub unsafe extern "C" fn startgate_error_message(error: *const startgate_error) -> *const c_char {
    // SAFETY: NULL or live per the contract.
    match unsafe { error.as_ref() } {
        Some(e) => e.message.as_ptr(),
        None => std::ptr::null(),
    }
}

/// The field an `invalid_request` names, by its contract path (`tenant_id`,
/// `actor.capabilities[2]`, `run_id`); NULL for other errors. Owned by the
/// error object: valid until `startgate_error_free`. NULL gives NULL.
///
/// # Safety
/// `error` is NULL or a live error object.
#[no_mangle]
pub unsafe extern "C" fn startgate_error_field(error: *const startgate_error) -> *const c_char {
    // SAFETY: NULL or live per the contract.
    match unsafe { error.as_ref() }.and_then(|e| e.field.as_ref()) {
        Some(field) => field.as_ptr(),
        None => std::ptr::null(),
    }
}

/// Frees an error object. NULL is ignored.
///
/// # Safety
/// `error` came from this library and is not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn startgate_error_free(error: *mut startgate_error) {
    if !error.is_null() {
        // SAFETY: produced by `Box::into_raw` in `guard`.
        drop(unsafe { Box::from_raw(error) });
    }
}

#[cfg(test)]
mod conformance_tests;

#[cfg(test)]
mod tests {
    use super::*;

    fn committed(name: &str) -> String {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../include/");
        std::fs::read_to_string(format!("{path}{name}")).expect("committed header")
    }

    fn generated(name: &str) -> String {
        std::fs::read_to_string(format!("{}/{name}", env!("OUT_DIR"))).expect("generated header")
    }

    #[test]
    fn committed_headers_match_the_source() {
        for name in ["startgate.h", "startgate_php.h", "startgate_preload.h"] {
            assert!(
                committed(name) == generated(name),
                "include/{name} differs from what cbindgen generates from ffi/src: \
                 run scripts/gen-header and commit the result"
            );
        }
    }

    #[test]
    fn header_version_runtime_version_and_cargo_agree() {
        let header = committed("startgate.h");
        let wanted = format!(
            "#define STARTGATE_VERSION \"{}\"",
            env!("CARGO_PKG_VERSION")
        );
        assert!(header.contains(&wanted), "header lacks {wanted}");
        // SAFETY: a static NUL-terminated string.
        let runtime = unsafe { CStr::from_ptr(startgate_version()) }
            .to_str()
            .expect("utf-8");
        assert_eq!(runtime, env!("CARGO_PKG_VERSION"));
    }

    #[test]
    fn every_status_has_its_code_string() {
        for code in ErrorCode::ALL {
            let status = status_of(code) as u32;
            // SAFETY: static strings.
            let text = unsafe { CStr::from_ptr(startgate_status_code(status)) };
            assert_eq!(text.to_str().expect("utf-8"), code.as_str());
        }
        // SAFETY: static string.
        let unknown = unsafe { CStr::from_ptr(startgate_status_code(77)) };
        assert_eq!(unknown.to_str().expect("utf-8"), "unknown");
    }

    #[test]
    fn php_header_has_no_preprocessor_lines() {
        let php = committed("startgate_php.h");
        assert!(
            php.lines().all(|l| !l.trim_start().starts_with('#')),
            "{php}"
        );
        assert!(php.contains("startgate_status startgate_start("));
        let preload = committed("startgate_preload.h");
        assert_eq!(
            preload.lines().take(2).collect::<Vec<_>>(),
            [
                "#define FFI_SCOPE \"startgate\"",
                "#define FFI_LIB \"libstartgate.so.0\""
            ]
        );
        assert!(
            preload.ends_with(&php),
            "the preload header is the PHP one, prefixed"
        );
    }
}
