//! The native half of the `startgate` Python package: a thin wrapper that
//! holds a fork-aware gate and moves JSON documents across. Every call answers
//! `(True, result_json)` or `(False, (code, message, cause))`; the Python layer
//! turns those into typed objects and exceptions. Blocking calls release the
//! GIL; asynchronous calls run on the same process-wide runtime and report
//! through a callback the Python layer hands over to its event loop.

use pyo3::prelude::*;
use pyo3::types::PyTuple;
use startgate::json::{self, OpenOptions};
use startgate::{Error, Registry};
use startgate_host::{block_on, runtime, ProcessGate};

/// `(code, message, cause)` of an error; `cause` is the driver's error text, if any.
fn failure(err: &Error) -> (String, String, Option<String>) {
    let cause = std::error::Error::source(err).map(|source| source.to_string());
    (err.code().as_str().to_string(), err.to_string(), cause)
}

fn answer<'py>(py: Python<'py>, result: Result<String, Error>) -> PyResult<Bound<'py, PyTuple>> {
    match result {
        Ok(json) => (true, json).into_pyobject(py),
        Err(err) => (false, failure(&err)).into_pyobject(py),
    }
}

/// An open gate. Safe to share between threads; survives `os.fork()`.
#[pyclass(module = "startgate._native", frozen)]
struct NativeGate {
    inner: ProcessGate,
}

#[pymethods]
impl NativeGate {
    /// Opens a gate; returns `(True, gate)` or `(False, (code, message, cause))`.
    #[staticmethod]
    fn open(
        py: Python<'_>,
        url: String,
        registry_toml: String,
        options_json: String,
    ) -> PyResult<Py<PyAny>> {
        let opened = py.detach(|| -> Result<ProcessGate, Error> {
            let options = OpenOptions::from_json(&options_json)?.to_gate_options()?;
            let registry = Registry::from_toml_str(&registry_toml)?;
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

    /// Calls `method` with a JSON object of named arguments, blocking (without
    /// the GIL) until the answer.
    fn call<'py>(
        &self,
        py: Python<'py>,
        method: String,
        args_json: String,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let result = py.detach(|| {
            let gate = self.inner.gate()?;
            block_on(json::call(&gate, &method, &args_json))?
        });
        answer(py, result)
    }

    /// Starts the call on the runtime and returns at once; `done(ok, payload)`
    /// is called (with the GIL, on a runtime thread) when it finishes.
    fn call_async(
        &self,
        py: Python<'_>,
        method: String,
        args_json: String,
        done: Py<PyAny>,
    ) -> PyResult<()> {
        let callback = done.clone_ref(py);
        let started = py.detach(move || -> Result<(), Error> {
            let done = callback;
            let gate = self.inner.gate()?;
            runtime()?.spawn(async move {
                let result = json::call(&gate, &method, &args_json).await;
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
            Ok(())
        });
        if let Err(err) = started {
            done.call1(py, (false, failure(&err)))?;
        }
        Ok(())
    }

    /// Closes the pool; later calls fail with `store_unavailable`.
    fn close(&self, py: Python<'_>) -> PyResult<Option<(String, String, Option<String>)>> {
        Ok(py
            .detach(|| self.inner.close())
            .err()
            .map(|err| failure(&err)))
    }
}

/// The library version.
#[pyfunction]
fn version() -> &'static str {
    startgate::VERSION
}

#[pymodule]
fn _native(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<NativeGate>()?;
    module.add_function(wrap_pyfunction!(version, module)?)?;
    Ok(())
}
