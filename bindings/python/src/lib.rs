//! The native half of the `startgate` Python package: a thin wrapper that
//! holds a fork-aware gate. Arguments arrive as Python values and are
//! converted here, with the checks only this side can make (a lone surrogate,
//! a NaN, a key that is not a string, nesting deeper than the limit; see
//! `startgate::input`), then handed to the core's `call_encoded`, which checks
//! and decodes them exactly as it does for every other surface. A method's
//! document made only of plain values (a start's request, most often) is
//! read straight into the core's type instead (`decode.rs`), with no JSON
//! value in between; anything it cannot vouch for takes the path above, which
//! decides every refusal. Results come
//! back as Python values, or, where the Python layer asks (the contract's
//! shapes), as a `Document` it reads one field at a time (`document.rs`).
//! A blocking call (`NativeGate.call`) answers as the Python layer's method
//! does: the result made into its class (a [`Shape`]), or the contract's
//! exception raised, with the logger's level taken and the call's records
//! delivered around it (`set_layer`). Blocking calls release the GIL;
//! asynchronous calls run on the same process-wide runtime: one that
//! finishes without waiting answers at once, as a blocking call does, and
//! one that waits reports `(True, result)` or `(False, (code, message,
//! cause, field))` through a callback the Python layer hands over to its
//! event loop.

use std::sync::Arc;

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use serde_json::{Map, Number, Value};
use startgate::input::{self, Place};
use startgate::json::{self, load_registry, OpenOptions};
use startgate::Error;
use startgate_host::{block_on_in, poll_once_in, Live, Polled, ProcessGate};

mod decode;
mod document;
use decode::PyDecoder;
use document::{Document, Field, Shape};

/// `(code, message, cause, field)` of an error; `cause` is the driver's error
/// text and `field` the offending field of an `invalid_request`, if any.
type Failure = (String, String, Option<String>, Option<String>);

fn failure(err: &Error) -> Failure {
    let cause = std::error::Error::source(err).map(|source| source.to_string());
    let field = match err {
        Error::InvalidRequest { field, .. } => Some(field.clone()),
        _ => None,
    };
    (
        err.code().as_str().to_string(),
        err.to_string(),
        cause,
        field,
    )
}

fn type_name(value: &Bound<'_, PyAny>) -> String {
    value
        .get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "an unknown object".into())
}

/// The Python layer's converter of the contract's own objects (its
/// dataclasses, enums and datetimes) to JSON data, and the depth below which
/// it applies; registered once, at import, by `set_contract_values`. Plain
/// JSON data (most of a request) never reaches it.
static CONTRACT_VALUES: PyOnceLock<(Py<PyAny>, usize)> = PyOnceLock::new();

/// What the registered converter makes of `value`, or `None` if it is not
/// one of the contract's objects. Any exception it raises (it raises
/// `ValueError` for a value it refuses) is the field's `invalid_request`,
/// worded with the exception's text.
fn contract_value<'py>(
    value: &Bound<'py, PyAny>,
    field: &str,
    depth: usize,
) -> Result<Option<Bound<'py, PyAny>>, Error> {
    let py = value.py();
    let Some((convert, below)) = CONTRACT_VALUES.get(py) else {
        return Ok(None);
    };
    if depth >= *below {
        return Ok(None);
    }
    let converted = convert
        .bind(py)
        .call1((value, field))
        .map_err(|err| input::invalid(field, err.value(py).to_string()))?;
    Ok((!converted.is(value)).then_some(converted))
}

/// A Python value as JSON data. `root` names the argument; `place` is where
/// the value sits inside it.
fn to_value(
    root: &str,
    place: &Place<'_>,
    value: &Bound<'_, PyAny>,
    depth: usize,
) -> Result<Value, Error> {
    let at = || place.field(root);
    if value.is_none() {
        return Ok(Value::Null);
    }
    // Before ints: a bool is an int in Python.
    if let Ok(b) = value.cast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if let Ok(s) = value.cast::<PyString>() {
        // Read in place (abi3 3.10+), strictly: a lone surrogate is an error, not a "?".
        return s
            .to_str()
            .map(|s| Value::String(s.to_owned()))
            .map_err(|_| input::not_unicode(at()));
    }
    if let Ok(i) = value.cast::<PyInt>() {
        if let Ok(n) = i.extract::<i64>() {
            return Ok(Value::from(n));
        }
        if let Ok(n) = i.extract::<u64>() {
            return Ok(Value::from(n));
        }
        let text = i.str().map(|s| s.to_string()).unwrap_or_default();
        return Err(input::out_of_range(at(), &text));
    }
    if let Ok(f) = value.cast::<PyFloat>() {
        return Number::from_f64(f.value())
            .map(Value::Number)
            .ok_or_else(|| input::not_finite(at()));
    }
    let nested = value.is_instance_of::<PyDict>()
        || value.is_instance_of::<PyList>()
        || value.is_instance_of::<PyTuple>();
    if nested && depth >= input::MAX_DEPTH {
        return Err(input::too_deep(root));
    }
    if let Ok(dict) = value.cast::<PyDict>() {
        let mut map = Map::new();
        for (key, item) in dict.iter() {
            let Ok(key) = key.cast::<PyString>() else {
                return Err(input::key_not_text(at(), &type_name(&key)));
            };
            let key = key.to_str().map_err(|_| input::not_unicode(at()))?;
            let item = to_value(root, &Place::Key(place, key), &item, depth + 1)?;
            map.insert(key.to_owned(), item);
        }
        return Ok(Value::Object(map));
    }
    let items: Vec<Bound<'_, PyAny>> = if let Ok(list) = value.cast::<PyList>() {
        list.iter().collect()
    } else if let Ok(tuple) = value.cast::<PyTuple>() {
        tuple.iter().collect()
    } else {
        return match contract_value(value, &at(), depth)? {
            // Walked as data: what it holds may be the contract's objects too.
            Some(converted) if !is_contract_object(&converted) => {
                to_value(root, place, &converted, depth)
            }
            _ => Err(input::not_json(at(), &type_name(value))),
        };
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| to_value(root, &Place::Index(place, i), item, depth + 1))
        .collect::<Result<Vec<_>, _>>()
        .map(Value::Array)
}

/// Whether the converter left `value` as something only it could convert
/// again (a converter that answers with another such object would loop).
fn is_contract_object(value: &Bound<'_, PyAny>) -> bool {
    !(value.is_none()
        || value.is_instance_of::<PyBool>()
        || value.is_instance_of::<PyString>()
        || value.is_instance_of::<PyInt>()
        || value.is_instance_of::<PyFloat>()
        || value.is_instance_of::<PyDict>()
        || value.is_instance_of::<PyList>()
        || value.is_instance_of::<PyTuple>())
}

/// The named arguments of a call.
fn arguments(args: &Bound<'_, PyDict>) -> Result<Map<String, Value>, Error> {
    let mut map = Map::new();
    for (key, value) in args.iter() {
        let key: String = key.extract().map_err(|_| Error::Internal {
            message: "argument names are strings".into(),
        })?;
        let converted = to_value(&key, &Place::Root, &value, 0)?;
        map.insert(key, converted);
    }
    Ok(map)
}

/// A call's arguments as the core takes them.
// Not boxed: one per call, moved once into the call's future; a box would
// be an allocation per start for the rarer variant's sake.
#[allow(clippy::large_enum_variant)]
enum Prepared {
    /// A method's plain document, alone, read straight into its type
    /// (`decode`): no JSON value in between.
    Decoded(json::DecodedDocument),
    /// Named values, for the checked path.
    Values(Map<String, Value>),
}

/// Reads a call's arguments, with the GIL: a method's document given alone
/// is decoded straight into its type where `decode` can vouch for it; any
/// other arguments, and any document it declines, are converted to values
/// for the checked path, which decides every refusal.
fn prepare(method: &str, args: &Bound<'_, PyDict>) -> Result<Prepared, Error> {
    if args.len() == 1 {
        if let Some((name, value)) = args.iter().next() {
            if let Ok(name) = name.cast::<PyString>() {
                if let Ok(name) = name.to_str() {
                    if let Some(decoded) = json::decode_document(method, name, PyDecoder(&value)) {
                        return Ok(Prepared::Decoded(decoded));
                    }
                }
            }
        }
    }
    arguments(args).map(Prepared::Values)
}

/// Makes the call of [`prepare`]'s arguments, its result encoded by `E`.
async fn call_prepared<E: json::Encoding>(
    gate: &startgate::Gate,
    method: &str,
    prepared: Prepared,
) -> Result<E::Output, Error> {
    match prepared {
        Prepared::Decoded(document) => json::call_decoded_encoded::<E>(gate, document).await,
        Prepared::Values(args) => json::call_encoded::<E>(gate, method, args).await,
    }
}

/// Results as Python values, written by serde straight from the core's
/// types (no `Value` tree, no second walk). Encoding runs where the call
/// finished, with the GIL taken for it.
struct AsPython;

impl json::Encoding for AsPython {
    type Output = Py<PyAny>;

    fn encode<T: json::CallResult>(value: T) -> Result<Py<PyAny>, Error> {
        Python::attach(|py| {
            document::python_from(py, &value)
                .map(Bound::unbind)
                .map_err(|err| json::encode_failed(&err))
        })
    }

    fn from_value(value: Value) -> Result<Py<PyAny>, Error> {
        Self::encode(value)
    }
}

/// Results kept as the core returned them, handed to Python as a
/// [`Document`]: the fields a caller reads become Python values, and only
/// those (see `document`). Nothing is converted where the call finished.
struct AsDocument;

impl json::Encoding for AsDocument {
    type Output = Arc<dyn document::Source>;

    fn encode<T: json::CallResult>(value: T) -> Result<Self::Output, Error> {
        Ok(Arc::new(value))
    }

    fn from_value(value: Value) -> Result<Self::Output, Error> {
        Self::encode(value)
    }
}

/// A call's result, made a Python value once the GIL is held.
trait IntoPython {
    fn into_python(self, py: Python<'_>) -> PyResult<Py<PyAny>>;
}

impl IntoPython for Py<PyAny> {
    fn into_python(self, _: Python<'_>) -> PyResult<Py<PyAny>> {
        Ok(self)
    }
}

/// An object becomes a [`Document`]; anything else (a list, a scalar) is
/// converted whole.
impl IntoPython for Arc<dyn document::Source> {
    fn into_python(self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        Document::of_result(py, self).map(Bound::unbind)
    }
}

fn answer<'py, O: IntoPython>(
    py: Python<'py>,
    result: Result<O, Error>,
) -> PyResult<Bound<'py, PyTuple>> {
    match result.map(|value| value.into_python(py)) {
        Ok(Ok(value)) => (true, value).into_pyobject(py),
        Ok(Err(err)) => (false, failure(&json::encode_failed(&err))).into_pyobject(py),
        Err(err) => (false, failure(&err)).into_pyobject(py),
    }
}

/// A text argument of `open` (`url`, `registry`, `registry_toml`), or `None`.
fn optional_text(name: &str, value: &Bound<'_, PyAny>) -> Result<Option<String>, Error> {
    match to_value(name, &Place::Root, value, 0)? {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s)),
        other => Err(input::invalid(
            name,
            format!("expected a string, found {}", input::describe(&other)),
        )),
    }
}

/// An open gate. Safe to share between threads; survives `os.fork()`.
#[pyclass(module = "startgate._native", frozen)]
struct NativeGate {
    inner: ProcessGate,
}

impl NativeGate {
    /// Makes the call, blocking without the GIL; the result as a Python value.
    fn call_encoded<E>(
        &self,
        py: Python<'_>,
        method: String,
        args: Bound<'_, PyDict>,
    ) -> Result<Py<PyAny>, Error>
    where
        E: json::Encoding,
        E::Output: IntoPython + Send,
    {
        let prepared = prepare(&method, &args);
        let result = py.detach(|| {
            let prepared = prepared?;
            let live = self.inner.live()?;
            block_on_in(
                live.runtime,
                call_prepared::<E>(&live.gate, &method, prepared),
            )
        })?;
        result
            .into_python(py)
            .map_err(|err| json::encode_failed(&err))
    }

    /// Runs the call as far as it goes without waiting: `Some` with its
    /// answer when it finished so, else `None` with the call spawned on the
    /// runtime, `done(ok, payload)` called when it finishes (see `call_async`).
    fn call_async_encoded<E>(
        &self,
        py: Python<'_>,
        method: String,
        args: Bound<'_, PyDict>,
        done: Py<PyAny>,
    ) -> PyResult<Option<Result<Py<PyAny>, Error>>>
    where
        E: json::Encoding + 'static,
        E::Output: IntoPython + Send + 'static,
    {
        let prepared = prepare(&method, &args);
        let polled = py.detach(move || -> Result<Option<Result<E::Output, Error>>, Error> {
            let prepared = prepared?;
            let Live { gate, runtime } = self.inner.live()?;
            let call = async move { call_prepared::<E>(&gate, &method, prepared).await };
            match poll_once_in(runtime, call) {
                Polled::Ready(result) => Ok(Some(result)),
                Polled::Pending(call) => {
                    runtime.spawn(async move {
                        let result = call.await;
                        Python::attach(|py| {
                            let args = match answer(py, result) {
                                Ok(args) => args,
                                Err(err) => return err.write_unraisable(py, None),
                            };
                            if let Err(err) = done.call1(py, args) {
                                // The event loop may be closed; nobody is waiting any more.
                                err.write_unraisable(py, None);
                            }
                        });
                    });
                    Ok(None)
                }
            }
        });
        Ok(match polled.and_then(|finished| finished.transpose()) {
            Ok(Some(output)) => Some(
                output
                    .into_python(py)
                    .map_err(|err| json::encode_failed(&err)),
            ),
            Ok(None) => None,
            Err(err) => Some(Err(err)),
        })
    }
}

/// How `call` and `call_async` make a result: with the [`Shape`] given as
/// `decode` (the result comes as a `Document`), else as Python values.
fn shape_of<'a, 'py>(decode: &'a Option<Bound<'py, PyAny>>) -> Option<&'a Bound<'py, Shape>> {
    decode.as_ref().and_then(|d| d.cast::<Shape>().ok())
}

/// A finished call's answer, as the Python layer's methods give it: its
/// records delivered, then the result made by `decode` (see `call`), or the
/// contract's exception raised.
fn settle<'py>(
    py: Python<'py>,
    result: Result<Py<PyAny>, Error>,
    decode: &Option<Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    deliver_logs(py)?;
    let value = match result {
        Ok(value) => value.into_bound(py),
        Err(err) => return Err(raised(py, &err)),
    };
    match (shape_of(decode), decode) {
        (Some(shape), _) => shape.get().make(value),
        (None, Some(decode)) => decode.call1((value,)),
        (None, None) => Ok(value),
    }
}

#[pymethods]
impl NativeGate {
    /// Opens a gate; returns `(True, gate)` or `(False, failure)`. `registry`
    /// is the path of a TOML file, `registry_toml` the TOML text (exactly one).
    #[staticmethod]
    fn open(
        py: Python<'_>,
        url: Bound<'_, PyAny>,
        registry: Bound<'_, PyAny>,
        registry_toml: Bound<'_, PyAny>,
        options: Bound<'_, PyAny>,
    ) -> PyResult<Py<PyAny>> {
        let prepared = (|| -> Result<_, Error> {
            let url =
                optional_text("url", &url)?.ok_or_else(|| input::invalid("url", "missing"))?;
            let registry = optional_text("registry", &registry)?;
            let registry_toml = optional_text("registry_toml", &registry_toml)?;
            let options = to_value("options", &Place::Root, &options, 0)?;
            Ok((url, registry, registry_toml, options))
        })();
        let opened = py.detach(|| -> Result<ProcessGate, Error> {
            let (url, registry, registry_toml, options) = prepared?;
            let options = OpenOptions::from_value(options)?.to_gate_options()?;
            let registry = load_registry(registry.as_deref(), registry_toml.as_deref())?;
            ProcessGate::open(&url, registry, options)
        });
        match opened {
            Ok(inner) => Ok((true, NativeGate { inner })
                .into_pyobject(py)?
                .into_any()
                .unbind()),
            Err(err) => Ok((false, failure(&err))
                .into_pyobject(py)?
                .into_any()
                .unbind()),
        }
    }

    /// Calls `method` with a dict of named arguments, blocking (without the
    /// GIL) until the answer, and answers as the Python layer's methods do:
    /// the result made by `decode`, or the contract's exception raised.
    /// `decode` is a [`Shape`] (the result comes as a `Document`, read one
    /// field at a time), a function of the result's Python value, or `None`
    /// (the value itself). The `startgate` logger's level is taken before
    /// the call, and the call's records are delivered to it before this
    /// returns (see `set_layer`).
    #[pyo3(signature = (method, args, decode = None))]
    fn call<'py>(
        &self,
        py: Python<'py>,
        method: String,
        args: Bound<'py, PyDict>,
        decode: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        sync_log_level(py)?;
        let result = if shape_of(&decode).is_some() {
            self.call_encoded::<AsDocument>(py, method, args)
        } else {
            self.call_encoded::<AsPython>(py, method, args)
        };
        settle(py, result, &decode)
    }

    /// Runs the call as far as it goes without waiting. A call that needs no
    /// wait (SQLite on a free connection) answers here as `call` does, with
    /// no hop to the runtime's threads: `(result,)`, or the contract's
    /// exception raised. Otherwise returns `None` and the call continues on
    /// the runtime; `done(ok, payload)` is called (with the GIL, on a
    /// runtime thread) when it finishes, `payload` the result's value (a
    /// `Document` when `decode` is a `Shape`) or `(code, message, cause,
    /// field)`, for the Python layer to settle in its event loop.
    #[pyo3(signature = (method, args, done, decode = None))]
    fn call_async<'py>(
        &self,
        py: Python<'py>,
        method: String,
        args: Bound<'py, PyDict>,
        done: Py<PyAny>,
        decode: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Option<Bound<'py, PyTuple>>> {
        sync_log_level(py)?;
        let finished = if shape_of(&decode).is_some() {
            self.call_async_encoded::<AsDocument>(py, method, args, done)?
        } else {
            self.call_async_encoded::<AsPython>(py, method, args, done)?
        };
        match finished {
            Some(result) => Ok(Some(PyTuple::new(py, [settle(py, result, &decode)?])?)),
            None => Ok(None),
        }
    }

    /// Closes the pool; later calls fail with `store_unavailable`.
    fn close(&self, py: Python<'_>) -> PyResult<Option<Failure>> {
        Ok(py
            .detach(|| self.inner.close())
            .err()
            .map(|err| failure(&err)))
    }
}

/// Registers the Python layer's converter of the contract's objects:
/// `convert(value, field)` answers JSON data, the value itself when it is
/// not one of them, or raises (`ValueError`) for one it refuses; it applies
/// to values at a depth below `below`. The first registration in a process
/// stays (a reloaded module's is the same function).
#[pyfunction]
fn set_contract_values(py: Python<'_>, convert: Py<PyAny>, below: usize) {
    // Err only means one is registered already.
    let _ = CONTRACT_VALUES.set(py, (convert, below));
}

/// What the Python layer registers once (`set_layer`): its `error_for`,
/// the `startgate` logger and `_log.deliver_records`.
struct Layer {
    error_for: Py<PyAny>,
    logger: Py<PyAny>,
    deliver: Py<PyAny>,
    /// Whether the logger's class keeps `logging.Logger`'s own
    /// `getEffectiveLevel`, which the native module then follows itself.
    own_levels: bool,
}

static LAYER: PyOnceLock<Layer> = PyOnceLock::new();

/// Registers the Python layer's `error_for(code, message, cause, field)`
/// (the contract's exception for a failure), the `startgate` logger, and
/// `deliver()` (logs the records collected since the last delivery). The
/// first registration in a process stays.
#[pyfunction]
fn set_layer(
    py: Python<'_>,
    error_for: Py<PyAny>,
    logger: Py<PyAny>,
    deliver: Py<PyAny>,
) -> PyResult<()> {
    let name = intern!(py, "getEffectiveLevel");
    let standard = py.import("logging")?.getattr("Logger")?.getattr(name)?;
    let own_levels = logger.bind(py).get_type().getattr(name)?.is(&standard);
    // Err only means one is registered already.
    let _ = LAYER.set(
        py,
        Layer {
            error_for,
            logger,
            deliver,
            own_levels,
        },
    );
    Ok(())
}

/// `logger.getEffectiveLevel()` as `logging.Logger` computes it (the first
/// level set, from the logger up through its parents, else `NOTSET`), read
/// from the attributes without running its Python frame on every call.
fn effective_level(logger: &Bound<'_, PyAny>) -> PyResult<i64> {
    let py = logger.py();
    let mut current = logger.clone();
    loop {
        let level: i64 = current.getattr(intern!(py, "level"))?.extract()?;
        if level != 0 {
            return Ok(level);
        }
        let parent = current.getattr(intern!(py, "parent"))?;
        if parent.is_none() {
            return Ok(0);
        }
        current = parent;
    }
}

/// The library level that lets through what a `logging` level does: the
/// most verbose one at or above it (trace is 5, below `DEBUG`).
fn level_for(level: i64) -> Option<startgate::log::LogLevel> {
    use startgate::log::LogLevel;
    match level {
        ..=5 => Some(LogLevel::Trace),
        6..=10 => Some(LogLevel::Debug),
        11..=20 => Some(LogLevel::Info),
        21..=30 => Some(LogLevel::Warn),
        31..=40 => Some(LogLevel::Error),
        _ => None,
    }
}

/// Collects records at what the `startgate` logger lets through now (the
/// application may change its level or disable it at any time), so the
/// library builds no record the logger would drop.
fn sync_log_level(py: Python<'_>) -> PyResult<()> {
    let Some(layer) = LAYER.get(py) else {
        return Ok(());
    };
    let logger = layer.logger.bind(py);
    let wanted = if logger.getattr(intern!(py, "disabled"))?.is_truthy()? {
        None
    } else {
        let level: i64 = if layer.own_levels {
            effective_level(logger)?
        } else {
            logger
                .call_method0(intern!(py, "getEffectiveLevel"))?
                .extract()?
        };
        level_for(level)
    };
    if wanted != startgate::log::host_level() {
        startgate::log::set_host_level(wanted);
    }
    Ok(())
}

/// Hands the call's records to `logging` on this thread, if any are
/// collected (a call at the default level, `WARNING`, mostly has none, and
/// then no Python frame runs).
fn deliver_logs(py: Python<'_>) -> PyResult<()> {
    match LAYER.get(py) {
        Some(layer) if startgate::log::host_level().is_some() && startgate::log::waiting() => {
            layer.deliver.call0(py).map(drop)
        }
        _ => Ok(()),
    }
}

/// The contract's exception for `err`, made by the Python layer's `error_for`.
fn raised(py: Python<'_>, err: &Error) -> PyErr {
    let Some(layer) = LAYER.get(py) else {
        return pyo3::exceptions::PyRuntimeError::new_err(err.to_string());
    };
    match layer.error_for.call1(py, failure(err)) {
        Ok(exception) => PyErr::from_value(exception.into_bound(py)),
        Err(raised) => raised,
    }
}

/// The library version.
#[pyfunction]
fn version() -> &'static str {
    startgate::VERSION
}

/// The log records collected since the last call, oldest first, as
/// `(level, message, fields)`; called on the Python thread after each call.
#[pyfunction]
fn take_logs(py: Python<'_>) -> PyResult<Bound<'_, PyList>> {
    let mut records = Vec::new();
    startgate::log::deliver(|record| records.push(record));
    let list = PyList::empty(py);
    for record in records {
        let fields = document::python_from(py, &record.fields)?;
        list.append((record.level.as_str(), record.message, fields))?;
    }
    Ok(list)
}

#[pymodule]
fn _native(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<NativeGate>()?;
    module.add_class::<Document>()?;
    module.add_class::<Field>()?;
    module.add_class::<Shape>()?;
    module.add_function(wrap_pyfunction!(set_layer, module)?)?;
    module.add_function(wrap_pyfunction!(version, module)?)?;
    module.add_function(wrap_pyfunction!(set_contract_values, module)?)?;
    module.add_function(wrap_pyfunction!(take_logs, module)?)?;
    startgate::log::install();
    Ok(())
}
