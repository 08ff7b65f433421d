//! The contract as JSON documents: what the C ABI and every binding call.
//! One method name and one object of named arguments in, one JSON document
//! out, the names of docs/DESIGN.md. Text arrives here through [`call`] and
//! the document functions; the Python and Node bindings convert their own
//! values and call [`call_value`]. Either way each argument is checked by
//! [`crate::input`] under its own name, so every surface refuses bad input
//! with the same words.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::error::{Error, Result};
use crate::gate::Gate;
use crate::input;
use crate::model::{
    Completion, ProviderConnection, Run, RunFilter, SequenceRequest, StartRequest, StartResult,
};
use crate::options::GateOptions;
use crate::registry::Registry;
use crate::time::{Clock, Timestamp};

/// Options for opening a gate, as a JSON object (every field optional):
/// `{"connect_timeout_ms": 5000, "acquire_timeout_ms": 5000,
///   "statement_timeout_ms": 5000, "max_connections": 8,
///   "manual_clock": "2026-01-01T09:00:00Z", "schema": "startgate"}`.
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
    /// PostgreSQL: the schema of the gate's relations (default `startgate`).
    pub schema: Option<String>,
}

impl OpenOptions {
    /// Parses options from JSON (an empty string or `null` means defaults).
    pub fn from_json(json: &str) -> Result<OpenOptions> {
        let trimmed = json.trim();
        if trimmed.is_empty() || trimmed == "null" {
            return Ok(OpenOptions::default());
        }
        input::parse("options", trimmed)
    }

    /// Options from a checked document (`null` means defaults).
    pub fn from_value(value: Value) -> Result<OpenOptions> {
        if value.is_null() {
            return Ok(OpenOptions::default());
        }
        input::check_value("options", &value)?;
        input::from_value("options", value)
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
            schema: self.schema.clone().unwrap_or(defaults.schema),
        })
    }
}

/// The registry a gate opens with, given the one way every surface gives it:
/// `registry`, the path of a TOML file, or `registry_toml`, the TOML text
/// itself; exactly one of the two.
pub fn load_registry(registry: Option<&str>, registry_toml: Option<&str>) -> Result<Registry> {
    match (registry, registry_toml) {
        (Some(_), Some(_)) => Err(input::invalid(
            "registry",
            "give the path of a registry file or its text as registry_toml, not both",
        )),
        (None, None) => Err(input::invalid(
            "registry",
            "missing: give the path of a registry file (or its text as registry_toml)",
        )),
        (Some(path), None) => {
            input::text("registry", path)?;
            if path.is_empty() {
                return Err(input::invalid("registry", "must not be empty"));
            }
            Registry::from_toml_file(path)
        }
        (None, Some(text)) => {
            input::text("registry_toml", text)?;
            Registry::from_toml_str(text)
        }
    }
}

/// Everything `open` needs as one document (the C ABI's
/// `startgate_open_json`): `url`, `registry` or `registry_toml`, and the
/// fields of [`OpenOptions`]. `share` is read by the C ABI itself.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenRequest {
    /// The database URL.
    pub url: String,
    /// The path of a registry TOML file.
    #[serde(default)]
    pub registry: Option<String>,
    /// The registry as TOML text.
    #[serde(default)]
    pub registry_toml: Option<String>,
    /// Share one pool per process among identical opens (C ABI, PHP).
    #[serde(default)]
    pub share: Option<bool>,
    /// The gate's options.
    #[serde(flatten)]
    pub options: OpenOptions,
}

impl OpenRequest {
    /// Parses an open document.
    pub fn from_json(json: &str) -> Result<OpenRequest> {
        input::parse("open", json)
    }

    /// The registry it names ([`load_registry`]).
    pub fn registry(&self) -> Result<Registry> {
        load_registry(self.registry.as_deref(), self.registry_toml.as_deref())
    }
}

/// The methods [`call`] accepts, in the order of the contract.
pub const METHODS: [&str; 21] = [
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
    "metrics",
];

/// An error as a JSON object: `{"code": "...", "message": "...", "field":
/// ...}`, where `field` names the offending field of an `invalid_request`
/// and is `null` otherwise.
pub fn error_json(err: &Error) -> Value {
    let field = match err {
        Error::InvalidRequest { field, .. } => Value::String(field.clone()),
        _ => Value::Null,
    };
    json!({ "code": err.code().as_str(), "message": err.to_string(), "field": field })
}

/// A call's result as a `Value` tree, failing as [`to_json`] does.
pub fn to_value<T: serde::Serialize>(value: &T) -> Result<Value> {
    serde_json::to_value(value).map_err(encode_failed)
}

/// A call's result as an [`Encoding`] receives it: serializable, and owned
/// (`Send + Sync + 'static`) so that the encoding may keep it.
pub trait CallResult: serde::Serialize + Send + Sync + 'static {}

impl<T: serde::Serialize + Send + Sync + 'static> CallResult for T {}

/// How a call's result leaves the library: as a `Value` tree, as JSON text
/// for the C ABI, or in a binding's own form written straight from the
/// result (Python's values, Node's camelCased text), through
/// [`call_encoded`].
pub trait Encoding {
    /// What a call answers with.
    type Output;
    /// Encodes a call's result. The result is handed over, so an encoding
    /// may keep it and convert it later, field by field (Python's results).
    fn encode<T: CallResult>(value: T) -> Result<Self::Output>;
    /// A result that is already a `Value` (taken as it is, not re-encoded).
    fn from_value(value: Value) -> Result<Self::Output>;
}

struct AsValue;

impl Encoding for AsValue {
    type Output = Value;
    fn encode<T: CallResult>(value: T) -> Result<Value> {
        to_value(&value)
    }
    fn from_value(value: Value) -> Result<Value> {
        Ok(value)
    }
}

/// Results as JSON text ([`to_json`]): what the C ABI hands over by default.
pub struct AsText;

impl Encoding for AsText {
    type Output = String;
    fn encode<T: CallResult>(value: T) -> Result<String> {
        to_json(&value)
    }
    fn from_value(value: Value) -> Result<String> {
        to_json(&value)
    }
}

struct Args<'a> {
    method: &'a str,
    map: Map<String, Value>,
    /// A document argument the binding wrote as JSON text: its name, its text.
    text: Option<(&'a str, &'a str)>,
}

impl Args<'_> {
    /// The argument `key`'s text, if it came as text: only a method's
    /// document does ([`takes_document`]), and only [`Args::document`]
    /// reads one.
    fn take_text(&mut self, key: &str) -> Option<&str> {
        match self.text {
            Some((name, text)) if name == key => {
                self.text = None;
                Some(text)
            }
            _ => None,
        }
    }

    fn take(&mut self, key: &str) -> Result<Value> {
        self.map
            .remove(key)
            .ok_or_else(|| Error::invalid(key, format!("missing (required by {})", self.method)))
    }

    fn optional(&mut self, key: &str) -> Option<Value> {
        self.map.remove(key).filter(|v| !v.is_null())
    }

    fn int(&mut self, key: &str) -> Result<i64> {
        input::integer(key, &self.take(key)?)
    }

    fn string(&mut self, key: &str) -> Result<String> {
        let value = self.take(key)?;
        text_value(key, value)
    }

    fn optional_string(&mut self, key: &str) -> Result<Option<String>> {
        self.optional(key).map(|v| text_value(key, v)).transpose()
    }

    /// A document argument: checked (no NUL, not too deep), then parsed with
    /// its path in errors (`actor.id`), or its own name for the whole.
    fn document<T: serde::de::DeserializeOwned>(&mut self, key: &str) -> Result<T> {
        if let Some(text) = self.take_text(key) {
            // Straight from the text into `T`, with the same checks and
            // words as the value below (what the C ABI's documents get).
            return input::parse(key, text);
        }
        let value = self.take(key)?;
        input::check_value(key, &value)?;
        input::from_value(key, value)
    }

    fn done(self) -> Result<()> {
        // Text left unread would mean `DOCUMENTS` names an argument its
        // method does not read as a document: refused, never ignored.
        if let Some((name, _)) = self.text {
            return Err(Error::invalid(
                name,
                format!("unknown argument for {}", self.method),
            ));
        }
        match self.map.keys().next() {
            None => Ok(()),
            Some(extra) => Err(Error::invalid(
                extra.clone(),
                format!("unknown argument for {}", self.method),
            )),
        }
    }
}

fn text_value(key: &str, value: Value) -> Result<String> {
    match value {
        Value::String(s) => {
            input::text(key, &s)?;
            Ok(s)
        }
        other => Err(Error::invalid(
            key,
            format!("expected a string, found {}", input::describe(&other)),
        )),
    }
}

/// Parses each element of a list of start requests on its own, so one
/// malformed request gets its error in place (named as for `start`: the
/// field inside the request, or `request` for the whole) instead of failing
/// the batch.
pub fn parse_requests(value: Value, field: &str) -> Result<Vec<Result<StartRequest>>> {
    let Value::Array(items) = value else {
        return Err(Error::invalid(
            field,
            format!(
                "expected a list of start requests, found {}",
                input::describe(&value)
            ),
        ));
    };
    if items.len() > crate::MAX_CHECK_REQUESTS {
        return Err(Error::invalid(
            field,
            format!("at most {} requests per check", crate::MAX_CHECK_REQUESTS),
        ));
    }
    Ok(items
        .into_iter()
        .map(|item| {
            input::check_value("request", &item)?;
            input::from_value("request", item)
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
pub const MAX_JSON_BYTES: usize = input::MAX_JSON_BYTES;

fn parse<T: serde::de::DeserializeOwned>(json: &str, what: &str) -> Result<T> {
    input::parse(what, json)
}

/// The error of a result that could not be encoded (`internal`): for every
/// encoding, the core's and a binding's.
pub fn encode_failed(e: impl std::fmt::Display) -> Error {
    Error::internal(format!("cannot encode the result: {e}"))
}

/// Encodes a result document.
pub fn to_json<T: serde::Serialize>(value: &T) -> Result<String> {
    // serde_json::to_string starts at 128 bytes and doubles: an accepted
    // start's 715 bytes took three reallocations (1,400 instructions of a
    // C start's 184,000; the UTF-8 check below costs 400).
    let mut out = Vec::with_capacity(1024);
    serde_json::to_writer(&mut out, value).map_err(encode_failed)?;
    String::from_utf8(out).map_err(encode_failed)
}

/// `tenant_id` → `tenantId`: a contract key as the Node surface names it.
pub fn camel(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    camel_into(key, &mut out);
    out
}

/// [`camel`], appended to `out`: each part after an underscore starts
/// upper case.
fn camel_into(key: &str, out: &mut String) {
    let mut parts = key.split('_');
    out.push_str(parts.next().unwrap_or_default());
    for part in parts {
        let mut chars = part.chars();
        if let Some(first) = chars.next() {
            // The contract's keys are ASCII: no trip through Unicode's tables.
            if first.is_ascii() {
                out.push(first.to_ascii_uppercase());
            } else {
                out.extend(first.to_uppercase());
            }
            out.push_str(chars.as_str());
        }
    }
}

/// [`camel`] of an ASCII key, appended to `out` as bytes: about 150
/// instructions a key, where splitting a `str` and walking its chars took
/// 440 for each key it renamed (an accepted start's result has sixteen).
fn camel_ascii(key: &[u8], out: &mut Vec<u8>) {
    let mut parts = key.split(|&byte| byte == b'_');
    out.extend_from_slice(parts.next().unwrap_or_default());
    for part in parts {
        if let Some((first, rest)) = part.split_first() {
            out.push(first.to_ascii_uppercase());
            out.extend_from_slice(rest);
        }
    }
}

/// Largest integer a JavaScript number holds exactly, 2^53 − 1.
const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// `value` as JSON text with every object key renamed by [`camel`], except
/// anywhere inside the value of a key in `opaque` (the host's own
/// documents), written in one pass as serde writes it: the object a `Value`
/// tree renamed key by key would give, without the tree or a second pass
/// over the text. `None` when the value holds an integer beyond
/// ±(2^53 − 1), which a JavaScript number cannot carry, or a map key that
/// is not text (the caller converts such a value through the tree).
pub fn to_camel_json<T: serde::Serialize>(value: &T, opaque: &[&str]) -> Result<Option<String>> {
    let mut refused = false;
    let mut out = Vec::with_capacity(1024);
    let formatter = CamelKeys {
        opaque,
        open: Vec::new(),
        in_key: false,
        key: String::new(),
        renamed: Vec::new(),
        opaque_next: false,
        refused: &mut refused,
    };
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
    value.serialize(&mut serializer).map_err(encode_failed)?;
    if refused {
        return Ok(None);
    }
    // serde_json writes only valid UTF-8.
    String::from_utf8(out).map(Some).map_err(encode_failed)
}

/// serde_json's compact output, with keys collected as they are written and
/// written renamed once complete (see [`to_camel_json`]).
struct CamelKeys<'a> {
    opaque: &'a [&'a str],
    /// Per open object or list: whether it is inside an opaque value.
    open: Vec<bool>,
    /// Whether a key is being written (into `key`, not the output).
    in_key: bool,
    /// The key being written, unescaped; reused from key to key.
    key: String,
    /// The key as written: a quote, then the key (renamed unless inside an
    /// opaque value); reused from key to key.
    renamed: Vec<u8>,
    /// Whether the value about to be written is an opaque key's.
    opaque_next: bool,
    /// Set for what only the tree can carry: a wide integer, a key that is
    /// not text.
    refused: &'a mut bool,
}

impl CamelKeys<'_> {
    fn inside(&self) -> bool {
        self.open.last().copied().unwrap_or(false)
    }

    fn open<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        bracket: &[u8],
    ) -> std::io::Result<()> {
        let inside = self.inside() || std::mem::take(&mut self.opaque_next);
        self.open.push(inside);
        writer.write_all(bracket)
    }

    /// Before an integer is written: refused beyond what a JS number holds
    /// exactly, and as a key (only text keys are renamed).
    fn check_integer(&mut self, magnitude: u128) {
        if self.in_key || magnitude > u128::from(MAX_SAFE_INTEGER) {
            *self.refused = true;
        }
    }

    fn refuse_key(&mut self) {
        if self.in_key {
            *self.refused = true;
        }
    }
}

macro_rules! camel_integers {
    ($($method:ident: $ty:ty),*) => {$(
        fn $method<W: ?Sized + std::io::Write>(&mut self, writer: &mut W, value: $ty) -> std::io::Result<()> {
            self.check_integer(i128::from(value).unsigned_abs());
            serde_json::ser::CompactFormatter.$method(writer, value)
        }
    )*};
}

impl serde_json::ser::Formatter for CamelKeys<'_> {
    camel_integers!(write_i8: i8, write_i16: i16, write_i32: i32, write_i64: i64,
        write_u8: u8, write_u16: u16, write_u32: u32, write_u64: u64);

    fn write_i128<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        value: i128,
    ) -> std::io::Result<()> {
        self.check_integer(value.unsigned_abs());
        serde_json::ser::CompactFormatter.write_i128(writer, value)
    }

    fn write_u128<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        value: u128,
    ) -> std::io::Result<()> {
        self.check_integer(value);
        serde_json::ser::CompactFormatter.write_u128(writer, value)
    }

    fn write_bool<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        value: bool,
    ) -> std::io::Result<()> {
        self.refuse_key();
        writer.write_all(if value { b"true" } else { b"false" })
    }

    fn write_f32<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        value: f32,
    ) -> std::io::Result<()> {
        self.refuse_key();
        serde_json::ser::CompactFormatter.write_f32(writer, value)
    }

    fn write_f64<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        value: f64,
    ) -> std::io::Result<()> {
        self.refuse_key();
        serde_json::ser::CompactFormatter.write_f64(writer, value)
    }

    fn begin_string<W: ?Sized + std::io::Write>(&mut self, writer: &mut W) -> std::io::Result<()> {
        if self.in_key {
            return Ok(());
        }
        writer.write_all(b"\"")
    }

    fn end_string<W: ?Sized + std::io::Write>(&mut self, writer: &mut W) -> std::io::Result<()> {
        if self.in_key {
            return Ok(());
        }
        writer.write_all(b"\"")
    }

    fn write_string_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        if self.in_key {
            self.key.push_str(fragment);
            return Ok(());
        }
        writer.write_all(fragment.as_bytes())
    }

    fn write_char_escape<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        escape: serde_json::ser::CharEscape,
    ) -> std::io::Result<()> {
        use serde_json::ser::CharEscape;
        if self.in_key {
            self.key.push(match escape {
                CharEscape::Quote => '"',
                CharEscape::ReverseSolidus => '\\',
                CharEscape::Solidus => '/',
                CharEscape::Backspace => '\u{8}',
                CharEscape::FormFeed => '\u{c}',
                CharEscape::LineFeed => '\n',
                CharEscape::CarriageReturn => '\r',
                CharEscape::Tab => '\t',
                CharEscape::AsciiControl(byte) => char::from(byte),
            });
            return Ok(());
        }
        serde_json::ser::CompactFormatter.write_char_escape(writer, escape)
    }

    fn begin_array<W: ?Sized + std::io::Write>(&mut self, writer: &mut W) -> std::io::Result<()> {
        self.open(writer, b"[")
    }

    fn end_array<W: ?Sized + std::io::Write>(&mut self, writer: &mut W) -> std::io::Result<()> {
        self.open.pop();
        writer.write_all(b"]")
    }

    fn begin_object<W: ?Sized + std::io::Write>(&mut self, writer: &mut W) -> std::io::Result<()> {
        self.open(writer, b"{")
    }

    fn end_object<W: ?Sized + std::io::Write>(&mut self, writer: &mut W) -> std::io::Result<()> {
        self.open.pop();
        writer.write_all(b"}")
    }

    fn begin_object_key<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.in_key = true;
        self.key.clear();
        if first {
            Ok(())
        } else {
            writer.write_all(b",")
        }
    }

    fn end_object_key<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
    ) -> std::io::Result<()> {
        self.in_key = false;
        let inside = self.inside();
        self.opaque_next = !inside && self.opaque.contains(&self.key.as_str());
        // The key is written quoted, in one write.
        let renamed = &mut self.renamed;
        renamed.clear();
        renamed.push(b'"');
        if inside {
            renamed.extend_from_slice(self.key.as_bytes());
        } else if self.key.is_ascii() {
            camel_ascii(self.key.as_bytes(), renamed);
        } else {
            return serde_json::to_writer(writer, &camel(&self.key)).map_err(std::io::Error::other);
        }
        if renamed[1..]
            .iter()
            .any(|&b| b < 0x20 || b == b'"' || b == b'\\')
        {
            // Whole characters were copied: the bytes are still UTF-8.
            let key = std::str::from_utf8(&renamed[1..]).map_err(std::io::Error::other)?;
            return serde_json::to_writer(writer, key).map_err(std::io::Error::other);
        }
        renamed.push(b'"');
        writer.write_all(renamed)
    }

    fn end_object_value<W: ?Sized + std::io::Write>(
        &mut self,
        _writer: &mut W,
    ) -> std::io::Result<()> {
        // A scalar value leaves it set: it opened nothing.
        self.opaque_next = false;
        Ok(())
    }
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
    let requests = parse_requests(input::parse_value("requests", requests)?, "requests")?;
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
/// `fencing_token`, and so on (see [`METHODS`]). Each argument is checked
/// under its own name, as [`call_value`] does.
pub async fn call(gate: &Gate, method: &str, args: &str) -> Result<String> {
    call_bytes(gate, method, args.as_bytes()).await
}

/// [`call`] with arguments as bytes that need not be UTF-8 (a C caller's):
/// text inside that is not valid Unicode is refused naming its field.
pub async fn call_bytes(gate: &Gate, method: &str, args: &[u8]) -> Result<String> {
    call_bytes_encoded::<AsText>(gate, method, args).await
}

/// [`call_bytes`] with the result encoded by `E` (see [`call_encoded`]).
pub async fn call_bytes_encoded<E: Encoding>(
    gate: &Gate,
    method: &str,
    args: &[u8],
) -> Result<E::Output> {
    let blank = std::str::from_utf8(args).is_ok_and(|text| matches!(text.trim(), "" | "null"));
    let map = if blank {
        Map::new()
    } else {
        match input::parse_arguments(args)? {
            Value::Object(map) => map,
            other => {
                return Err(Error::invalid(
                    "args",
                    format!(
                        "expected an object of named arguments, found {}",
                        input::describe(&other)
                    ),
                ))
            }
        }
    };
    dispatch::<E>(gate, method, map).await
}

/// The methods that touch no database: [`call_pure`] answers them at once.
pub const PURE_METHODS: [&str; 4] = ["present", "present_run", "advance_clock", "metrics"];

/// A call of one of [`PURE_METHODS`], answered at once on the caller's
/// thread (no runtime, no database), with the arguments checked as for
/// [`call_value`].
pub fn call_pure(gate: &Gate, method: &str, args: Map<String, Value>) -> Result<Value> {
    pure::<AsValue>(gate, method, pure_args(method, args)?)
}

/// [`call_pure`] with the result encoded by `E` (see [`call_encoded`]).
pub fn call_pure_encoded<E: Encoding>(
    gate: &Gate,
    method: &str,
    args: Map<String, Value>,
) -> Result<E::Output> {
    pure::<E>(gate, method, pure_args(method, args)?)
}

/// [`call_pure`] with the result as JSON text (see [`call_text`]).
pub fn call_pure_text(gate: &Gate, method: &str, args: Map<String, Value>) -> Result<String> {
    pure::<AsText>(gate, method, pure_args(method, args)?)
}

/// The arguments of a pure call, refused when `method` is not one.
fn pure_args(method: &str, map: Map<String, Value>) -> Result<Args<'_>> {
    if !PURE_METHODS.contains(&method) {
        return Err(Error::invalid(
            "method",
            format!(
                "\"{method}\" is not one of the calls that touch no database ({})",
                PURE_METHODS.join(", ")
            ),
        ));
    }
    Ok(Args {
        method,
        map,
        text: None,
    })
}

fn pure<E: Encoding>(gate: &Gate, method: &str, mut a: Args<'_>) -> Result<E::Output> {
    Ok(match method {
        "present" => {
            let result: StartResult = a.document("result")?;
            a.done()?;
            E::encode(gate.present(&result))?
        }
        "present_run" => {
            let run: Run = a.document("run")?;
            a.done()?;
            E::encode(gate.present_run(&run))?
        }
        "advance_clock" => {
            let seconds = a.take("seconds")?;
            let seconds = seconds
                .as_f64()
                .filter(|s| s.is_finite() && *s >= 0.0)
                .ok_or_else(|| {
                    Error::invalid(
                        "seconds",
                        format!(
                            "expected a non-negative number, found {}",
                            input::describe(&seconds)
                        ),
                    )
                })?;
            a.done()?;
            gate.advance_clock(Duration::from_secs_f64(seconds))?;
            E::from_value(Value::Null)?
        }
        "metrics" => {
            a.done()?;
            E::encode(gate.metrics())?
        }
        other => {
            return Err(Error::internal(format!("{other} is not a pure method")));
        }
    })
}

/// [`call`] with the arguments as values, as the Python and Node bindings
/// pass them after converting their own values (with the checks of
/// [`crate::input`] that only they can make). Returns the result document.
pub async fn call_value(gate: &Gate, method: &str, args: Map<String, Value>) -> Result<Value> {
    dispatch::<AsValue>(gate, method, args).await
}

/// [`call_value`] with the result encoded by `E`, straight from the result
/// (no `Value` tree in between).
pub async fn call_encoded<E: Encoding>(
    gate: &Gate,
    method: &str,
    args: Map<String, Value>,
) -> Result<E::Output> {
    dispatch::<E>(gate, method, args).await
}

/// [`call_value`] with the result as JSON text, written straight from the
/// result (no `Value` tree in between): what the C ABI hands over.
pub async fn call_text(gate: &Gate, method: &str, args: Map<String, Value>) -> Result<String> {
    dispatch::<AsText>(gate, method, args).await
}

/// The methods that take a document argument, and its name: what
/// [`call_document_encoded`] and [`call_pure_document_encoded`] decode
/// straight from text.
const DOCUMENTS: [(&str, &str); 6] = [
    ("start", "request"),
    ("start_sequence", "request"),
    ("complete", "completion"),
    ("upsert_connection", "connection"),
    ("present", "result"),
    ("present_run", "run"),
];

/// Whether `name` is `method`'s document argument, which
/// [`call_document_encoded`] decodes straight from text: `request` (start,
/// start_sequence), `completion` (complete), `connection`
/// (upsert_connection), `result` (present), `run` (present_run).
pub fn takes_document(method: &str, name: &str) -> bool {
    DOCUMENTS.contains(&(method, name))
}

/// Text given for an argument that is not a document, read as the value it
/// holds: checked afterwards as that argument's value is.
fn text_argument(name: &str, text: &str) -> Result<Value> {
    serde_json::from_str(text)
        .map_err(|err| Error::invalid(name, format!("is not one JSON value: {err}")))
}

/// [`call_encoded`] with one more argument, `name`, given as JSON text that
/// the binding wrote itself (Node writes plain JavaScript data as text in
/// one call): a method's document argument ([`takes_document`]) is decoded
/// straight from the text into its type, with the checks and words of a
/// value (those of [`input::parse`], as for a C caller's document); text
/// for any other argument is read as the value it holds, then checked as
/// that value would be.
pub async fn call_document_encoded<E: Encoding>(
    gate: &Gate,
    method: &str,
    mut args: Map<String, Value>,
    name: &str,
    text: &str,
) -> Result<E::Output> {
    if takes_document(method, name) {
        let a = Args {
            method,
            map: args,
            text: Some((name, text)),
        };
        return dispatch_args::<E>(gate, a).await;
    }
    args.insert(name.to_string(), text_argument(name, text)?);
    dispatch::<E>(gate, method, args).await
}

/// [`call_pure_encoded`] with the argument `name` as JSON text, as
/// [`call_document_encoded`] takes it.
pub fn call_pure_document_encoded<E: Encoding>(
    gate: &Gate,
    method: &str,
    mut args: Map<String, Value>,
    name: &str,
    text: &str,
) -> Result<E::Output> {
    if takes_document(method, name) {
        let mut a = pure_args(method, args)?;
        a.text = Some((name, text));
        return pure::<E>(gate, method, a);
    }
    args.insert(name.to_string(), text_argument(name, text)?);
    pure::<E>(gate, method, pure_args(method, args)?)
}

/// Decodes a method's document argument straight from a binding's own
/// values into its type, for [`decode_document`]: the Python binding reads
/// a plain request this way, without a [`Value`] tree in between.
pub trait DocumentDecoder {
    /// The document as `T`, or `None` when the binding cannot vouch for it:
    /// then the call takes the checked path ([`call_encoded`]), which
    /// decodes the same document or refuses it in the words every surface
    /// uses. `Some` must be exactly what that path would decode: the same
    /// `T`, and only for a document it would accept.
    fn decode<T: serde::de::DeserializeOwned>(self) -> Option<T>;
}

/// A method's document argument already decoded into its type, by
/// [`decode_document`]; [`call_decoded_encoded`] makes the call.
pub struct DecodedDocument(Decoded);

enum Decoded {
    Start(StartRequest),
    StartSequence(SequenceRequest),
    Complete(Completion),
    UpsertConnection(ProviderConnection),
    // Boxed: a result is three times the size of any request.
    Present(Box<StartResult>),
    PresentRun(Run),
}

/// `method` called with its document argument `name` alone (see
/// [`takes_document`]), decoded by `decoder`; `None` when `name` is not
/// `method`'s document or the decoder declines.
pub fn decode_document<D: DocumentDecoder>(
    method: &str,
    name: &str,
    decoder: D,
) -> Option<DecodedDocument> {
    let decoded = match (method, name) {
        ("start", "request") => Decoded::Start(decoder.decode()?),
        ("start_sequence", "request") => Decoded::StartSequence(decoder.decode()?),
        ("complete", "completion") => Decoded::Complete(decoder.decode()?),
        ("upsert_connection", "connection") => Decoded::UpsertConnection(decoder.decode()?),
        ("present", "result") => Decoded::Present(Box::new(decoder.decode()?)),
        ("present_run", "run") => Decoded::PresentRun(decoder.decode()?),
        _ => return None,
    };
    Some(DecodedDocument(decoded))
}

/// The call of a [`DecodedDocument`], its result encoded by `E`: what
/// [`call_encoded`] does once it has decoded the same document.
pub async fn call_decoded_encoded<E: Encoding>(
    gate: &Gate,
    document: DecodedDocument,
) -> Result<E::Output> {
    match document.0 {
        Decoded::Start(request) => E::encode(gate.start(&request).await?),
        Decoded::StartSequence(request) => E::encode(gate.start_sequence(&request).await?),
        Decoded::Complete(completion) => E::encode(gate.complete(&completion).await?),
        Decoded::UpsertConnection(connection) => {
            E::encode(gate.upsert_connection(&connection).await?)
        }
        Decoded::Present(result) => E::encode(gate.present(&result)),
        Decoded::PresentRun(run) => E::encode(gate.present_run(&run)),
    }
}

async fn dispatch<E: Encoding>(
    gate: &Gate,
    method: &str,
    args: Map<String, Value>,
) -> Result<E::Output> {
    let a = Args {
        method,
        map: args,
        text: None,
    };
    dispatch_args::<E>(gate, a).await
}

async fn dispatch_args<E: Encoding>(gate: &Gate, mut a: Args<'_>) -> Result<E::Output> {
    let method = a.method;
    let value = match method {
        "migrate" => {
            a.done()?;
            gate.migrate().await?;
            E::from_value(Value::Null)?
        }
        "start" => {
            let request: StartRequest = a.document("request")?;
            a.done()?;
            E::encode(gate.start(&request).await?)?
        }
        "check" => {
            let requests = parse_requests(a.take("requests")?, "requests")?;
            a.done()?;
            E::from_value(check_documents(gate, requests).await?)?
        }
        "start_sequence" => {
            let request: SequenceRequest = a.document("request")?;
            a.done()?;
            E::encode(gate.start_sequence(&request).await?)?
        }
        "mark_running" | "heartbeat" => {
            let (run_id, token) = (a.int("run_id")?, a.int("fencing_token")?);
            a.done()?;
            let run = if method == "heartbeat" {
                gate.heartbeat(run_id, token).await?
            } else {
                gate.mark_running(run_id, token).await?
            };
            E::encode(run)?
        }
        "complete" => {
            let completion: Completion = a.document("completion")?;
            a.done()?;
            E::encode(gate.complete(&completion).await?)?
        }
        "cancel" => {
            let run_id = a.int("run_id")?;
            let reason = a.optional_string("reason_code")?;
            a.done()?;
            E::encode(gate.cancel(run_id, reason.as_deref()).await?)?
        }
        "reap_stale" => {
            a.done()?;
            E::encode(gate.reap_stale().await?)?
        }
        "get_run" => {
            let run_id = a.int("run_id")?;
            a.done()?;
            E::encode(gate.get_run(run_id).await?)?
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
            E::encode(gate.list_runs(&filter).await?)?
        }
        "attempts_for_run" => {
            let run_id = a.int("run_id")?;
            a.done()?;
            E::encode(gate.attempts_for_run(run_id).await?)?
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
            E::encode(gate.list_attempts(tenant.as_deref(), limit).await?)?
        }
        "upsert_connection" => {
            let connection: ProviderConnection = a.document("connection")?;
            a.done()?;
            E::encode(gate.upsert_connection(&connection).await?)?
        }
        "get_connection" => {
            let (tenant, id) = (a.string("tenant_id")?, a.string("id")?);
            a.done()?;
            E::encode(gate.get_connection(&tenant, &id).await?)?
        }
        "default_connection" | "list_connections" => {
            let tenant = a.string("tenant_id")?;
            a.done()?;
            if method == "default_connection" {
                E::encode(gate.default_connection(&tenant).await?)?
            } else {
                E::encode(gate.list_connections(&tenant).await?)?
            }
        }
        "present" | "present_run" | "advance_clock" | "metrics" => pure::<E>(gate, method, a)?,
        other => {
            return Err(Error::invalid(
                "method",
                format!("unknown method \"{other}\" (known: {})", METHODS.join(", ")),
            ))
        }
    };
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPAQUE: [&str; 2] = ["params", "summary"];

    /// A decoder that declines, recording that it was asked.
    struct Asked<'a>(&'a std::cell::Cell<bool>);

    impl DocumentDecoder for Asked<'_> {
        fn decode<T: serde::de::DeserializeOwned>(self) -> Option<T> {
            self.0.set(true);
            None
        }
    }

    #[test]
    fn decode_document_asks_for_exactly_the_documents_call_reads_as_documents() {
        let names = [
            "request",
            "completion",
            "connection",
            "result",
            "run",
            "filter",
            "run_id",
        ];
        for method in METHODS {
            for name in names {
                let asked = std::cell::Cell::new(false);
                assert!(decode_document(method, name, Asked(&asked)).is_none());
                assert_eq!(asked.get(), takes_document(method, name), "{method} {name}");
            }
        }
    }

    /// What renaming a `Value` tree key by key gives (the Node surface's
    /// conversion before [`to_camel_json`]).
    fn renamed(value: Value, inside: bool) -> Value {
        match value {
            Value::Object(map) if !inside => Value::Object(
                map.into_iter()
                    .map(|(key, v)| {
                        let v = renamed(v, OPAQUE.contains(&key.as_str()));
                        (camel(&key), v)
                    })
                    .collect(),
            ),
            Value::Array(items) if !inside => {
                Value::Array(items.into_iter().map(|v| renamed(v, false)).collect())
            }
            other => other,
        }
    }

    #[test]
    fn camel_json_renames_as_the_tree_would() {
        for (key, renamed) in [
            ("tenant_id", "tenantId"),
            ("provider_connection_id", "providerConnectionId"),
            ("id", "id"),
            ("a__b", "aB"),
            ("_a", "A"),
            ("a_", "a"),
            ("é_é", "éÉ"),
            ("x_ß", "xSS"),
            ("__", ""),
            ("", ""),
            ("Tenant_id", "TenantId"),
            ("a_1b_c", "a1bC"),
        ] {
            assert_eq!(camel(key), renamed, "{key}");
            // The serializer renames alike.
            let written = to_camel_json(&json!({ key: 1 }), &OPAQUE).unwrap().unwrap();
            assert_eq!(written, format!("{{{}:1}}", json!(renamed)), "{key}");
        }
        let documents = [
            json!({"tenant_id": "t", "run": {"fencing_token": 7, "is_member": true, "x": null}}),
            json!({"params": {"keep_me": [{"and_me": 1}], "summary": {"a_b": 2}}, "next_run": [{"run_id": 1}]}),
            json!({"summary": "text_with_under_scores", "reason_code": "a_b", "list_of": [[], {}, [{"deep_key": -1.5e-7}]]}),
            json!({"escaped_\"key\\": {"new\nline_x": "v"}, "é_é": "ü_x", "n_1": -9007199254740991_i64}),
            json!([{"a_b": false}, {"params": [{"c_d": 1}]}, 12, "s_t"]),
            json!({"big_float": 1e300, "small_int": 0, "neg": -0.0}),
        ];
        for document in documents {
            let camel = to_camel_json(&document, &OPAQUE)
                .unwrap()
                .unwrap_or_else(|| panic!("{document}"));
            let parsed: Value = serde_json::from_str(&camel).unwrap();
            assert_eq!(parsed, renamed(document, false), "{camel}");
        }
        // Straight from a result type, as the Node surface writes it.
        let request = StartRequest::new(
            "inventory.sync",
            "contoso",
            crate::Actor::member("alice", ["inventory.sync"]),
        );
        let camel = to_camel_json(&request, &OPAQUE).unwrap().unwrap();
        let tree = renamed(serde_json::to_value(&request).unwrap(), false);
        assert_eq!(serde_json::from_str::<Value>(&camel).unwrap(), tree);
        assert!(
            camel.contains("\"tenantId\":\"contoso\"") && camel.contains("\"isMember\":true"),
            "{camel}"
        );
    }

    /// A document given as text (`call_document_encoded`) gets the answer
    /// the same document gets as a value: results, refusals, their fields
    /// and words, and nothing written for a refusal.
    #[tokio::test]
    async fn a_document_as_text_is_answered_as_the_same_value() {
        let registry =
            Registry::from_toml_str(include_str!("../../examples/registry.toml")).unwrap();
        let gate = Gate::open("sqlite::memory:", registry).await.unwrap();
        gate.migrate().await.unwrap();
        let actor = json!({"id": "alice", "is_member": true, "capabilities": ["inventory.sync"]});
        let mut deep = json!(1);
        for _ in 0..130 {
            deep = json!({ "d": deep });
        }
        let refused = [
            json!({"tenant_id": "t", "actor": actor}),
            json!({"operation": "inventory.sync", "tenant_id": "", "actor": actor}),
            json!({"operation": "inventory.sync", "tenant_id": "t\u{0}", "actor": actor}),
            json!({"operation": "inventory.sync", "tenant_id": "t", "actor": {"id": "a", "is_member": "yes"}}),
            json!({"operation": "inventory.sync", "tenant_id": "t", "actor": actor, "colour": 1}),
            json!({"operation": "inventory.sync", "tenant_id": "t", "actor": actor, "params": [1]}),
            json!({"operation": "inventory.sync", "tenant_id": "t", "actor": actor, "params": {"deep": deep}}),
            json!({"operation": "inventory.sync", "tenant_id": "t", "actor": actor, "subject": "x".repeat(5 << 20)}),
            json!({"operation": "inventory.synk", "tenant_id": "t", "actor": actor}),
            json!([1, 2]),
        ];
        for (i, document) in refused.iter().enumerate() {
            let text = document.to_string();
            let as_value = call_text(
                &gate,
                "start",
                [("request".to_string(), document.clone())]
                    .into_iter()
                    .collect(),
            )
            .await;
            let as_text =
                call_document_encoded::<AsText>(&gate, "start", Map::new(), "request", &text).await;
            let (Err(value_error), Err(text_error)) = (as_value, as_text) else {
                panic!("document {i} was not refused both ways");
            };
            assert_eq!(value_error.code(), text_error.code(), "document {i}");
            assert_eq!(
                value_error.to_string(),
                text_error.to_string(),
                "document {i}"
            );
        }
        assert!(gate
            .list_runs(&RunFilter::default())
            .await
            .unwrap()
            .is_empty());
        // Accepted one way, then deduped against that run the other way.
        let connection = json!({"tenant_id": "t", "id": "graph", "provider": "microsoft_graph",
            "display_name": "Graph", "is_default": true, "consent": "granted", "credential": "present", "health": "ok"});
        let stored = call_document_encoded::<AsValue>(
            &gate,
            "upsert_connection",
            Map::new(),
            "connection",
            &connection.to_string(),
        )
        .await
        .unwrap();
        assert_eq!(stored["display_name"], "Graph");
        let request = json!({"operation": "inventory.sync", "tenant_id": "t", "actor": actor, "params": {"n": 0.1}});
        let first = call_document_encoded::<AsValue>(
            &gate,
            "start",
            Map::new(),
            "request",
            &request.to_string(),
        )
        .await
        .unwrap();
        let second = call_value(
            &gate,
            "start",
            [("request".to_string(), request)].into_iter().collect(),
        )
        .await
        .unwrap();
        assert_eq!(first["outcome"], "accepted", "{first}");
        assert_eq!(first["run"]["params"]["n"], 0.1);
        assert_eq!(second["outcome"], "deduped", "{second}");
        assert_eq!(second["run"]["id"], first["run"]["id"]);
        // A name that is not the method's document is read as a value, and
        // refused as one would be.
        let error = call_document_encoded::<AsText>(&gate, "start", Map::new(), "requests", "{}")
            .await
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid request: request: missing (required by start)"
        );
        let error = call_pure_document_encoded::<AsText>(&gate, "present", Map::new(), "run", "{}")
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid request: result: missing (required by present)"
        );
        // The document itself, given as text to a pure call.
        let presented = call_pure_document_encoded::<AsValue>(
            &gate,
            "present",
            Map::new(),
            "result",
            &second.to_string(),
        )
        .unwrap();
        assert_eq!(
            presented,
            call_pure(
                &gate,
                "present",
                [("result".to_string(), second)].into_iter().collect()
            )
            .unwrap()
        );
    }

    #[test]
    fn camel_json_leaves_wide_integers_and_other_keys_to_the_tree() {
        for (value, wide) in [
            (json!({"id": 9007199254740991_i64}), false),
            (json!({"id": -9007199254740991_i64}), false),
            (json!({"id": 9007199254740992_i64}), true),
            (json!({"params": {"id": -9007199254740992_i64}}), true),
            (json!({"id": u64::MAX}), true),
            (json!({"id": 123456789012345678.0}), false),
        ] {
            let camel = to_camel_json(&value, &OPAQUE).unwrap();
            assert_eq!(camel.is_none(), wide, "{value}");
        }
        // A map whose keys are not text is written by serde as quoted
        // numbers; only the tree renames keys, so it goes there.
        let numbered: std::collections::BTreeMap<u32, u32> = [(1, 2)].into();
        assert_eq!(to_camel_json(&numbered, &OPAQUE).unwrap(), None);
        let texts: std::collections::BTreeMap<&str, u32> = [("a_b", 2)].into();
        assert_eq!(
            to_camel_json(&texts, &OPAQUE).unwrap().as_deref(),
            Some(r#"{"aB":2}"#)
        );
    }
}
