//! A result as JSON text that becomes Python values one field at a time.
//!
//! A caller of `start` reads its outcome and its run's id, and rarely more;
//! building every field of the result and of its run as Python objects (and
//! freeing them) costs a start more than the rest of the binding. A
//! [`Document`] keeps the result as the text serde writes (in the contract's
//! field order); reading a field scans the object's keys up to it and
//! converts only its value, and an object value becomes a `Document` of its
//! own. `to_dict` converts the whole object, in document order. The text is
//! always serde's own output (a `Document` cannot be made from Python), so
//! the scan only has to find where values end, not check them.

use std::sync::Arc;

use pyo3::exceptions::{PyAttributeError, PyKeyError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyType};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// A JSON object of a result, read one field at a time (see the module).
#[pyclass(module = "startgate._native", frozen)]
pub struct Document {
    text: Arc<str>,
    /// Where the object starts in `text` (its `{`); it runs to its matching `}`.
    start: usize,
}

impl Document {
    /// The object at `start` of `text`, which serde wrote; `None` unless a
    /// JSON object starts there.
    pub fn new(text: Arc<str>, start: usize) -> Option<Document> {
        (text.as_bytes().get(start) == Some(&b'{')).then_some(Document { text, start })
    }

    /// Where the value of field `key` starts, if the object has that field.
    fn find(&self, key: &str) -> Option<usize> {
        let bytes = self.text.as_bytes();
        let mut at = self.start + 1;
        loop {
            at = skip_space(bytes, at);
            if bytes.get(at) != Some(&b'"') {
                return None; // `}`: no such field.
            }
            let name_end = string_end(bytes, at)?;
            let name = &self.text[at..name_end];
            at = skip_space(bytes, name_end);
            if bytes.get(at) != Some(&b':') {
                return None;
            }
            at = skip_space(bytes, at + 1);
            if key_is(name, key) {
                return Some(at);
            }
            at = skip_space(bytes, value_end(bytes, at)?);
            match bytes.get(at) {
                Some(b',') => at += 1,
                _ => return None,
            }
        }
    }

    /// The value of field `key`: a `Document` for an object, Python values
    /// for anything else.
    fn item<'py>(&self, py: Python<'py>, key: &str) -> PyResult<Bound<'py, PyAny>> {
        let Some(at) = self.find(key) else {
            return Err(PyKeyError::new_err(key.to_string()));
        };
        if let Some(document) = Document::new(Arc::clone(&self.text), at) {
            return Ok(Bound::new(py, document)?.into_any());
        }
        python_from_text(py, &self.text[at..])
    }
}

#[pymethods]
impl Document {
    /// The value of field `key`: a `Document` for an object, Python values
    /// for anything else.
    fn __getitem__<'py>(&self, py: Python<'py>, key: &str) -> PyResult<Bound<'py, PyAny>> {
        self.item(py, key)
    }

    /// The whole object as a dict, in document order.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        python_from_text(py, &self.text[self.start..])
    }

    fn __repr__(&self) -> String {
        let end = value_end(self.text.as_bytes(), self.start).unwrap_or(self.text.len());
        format!("Document({})", &self.text[self.start..end])
    }
}

/// A field of a result dataclass not read yet (`_types._decoded` gives
/// every field one): the first read takes the value from the instance's
/// document (its `raw` dict, or else its `Document`), decodes it with
/// `decode` if given, and sets it in the instance's `__dict__`, where it is
/// found before this non-data descriptor from then on (as is a value the
/// dataclass's `__init__` sets). Native because the reads a caller makes (a
/// start's `outcome`, `run`, `run.id`) were most of the Python layer's time
/// per call: a descriptor written in Python runs a frame per read.
#[pyclass(module = "startgate._native", frozen)]
pub struct Field {
    name: Py<PyString>,
    decode: Option<Py<PyAny>>,
}

#[pymethods]
impl Field {
    #[new]
    #[pyo3(signature = (name, decode = None))]
    fn new(name: Py<PyString>, decode: Option<Py<PyAny>>) -> Field {
        Field { name, decode }
    }

    /// The field's name.
    #[getter]
    fn name(&self, py: Python<'_>) -> Py<PyString> {
        self.name.clone_ref(py)
    }

    /// What decodes the document's value, or `None` (taken as it is).
    #[getter]
    fn decode(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.decode.as_ref().map(|decode| decode.clone_ref(py))
    }

    fn __get__<'py>(
        slf: &Bound<'py, Field>,
        instance: &Bound<'py, PyAny>,
        _owner: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        if instance.is_none() {
            return Ok(slf.clone().into_any());
        }
        let py = slf.py();
        let this = slf.get();
        let name = this.name.bind(py);
        let state = instance
            .getattr(intern!(py, "__dict__"))?
            .cast_into::<PyDict>()?;
        // An instance holds a `_document` until its `raw` is first read, and
        // then `raw` alone: the common case is found first.
        let value = match state.get_item(intern!(py, "_document"))? {
            Some(document) if !document.is_none() => match document.cast::<Document>() {
                Ok(document) => document.get().item(py, name.to_str()?)?,
                Err(_) => document.get_item(name)?,
            },
            _ => match state.get_item(intern!(py, "raw"))? {
                Some(raw) if !raw.is_none() => raw.get_item(name)?,
                _ => {
                    return Err(PyAttributeError::new_err(format!(
                        "'{}' object has no attribute '{}'",
                        instance.get_type().name()?,
                        name
                    )))
                }
            },
        };
        let value = match &this.decode {
            Some(decode) => match decode.bind(py).cast::<Shape>() {
                Ok(shape) => shape.get().make(value)?,
                Err(_) => decode.bind(py).call1((value,))?,
            },
            None => value,
        };
        state.set_item(name, &value)?;
        Ok(value)
    }
}

/// Makes instances of one of the result dataclasses (`_types._Decoded`:
/// `StartResult`, `Run`, …) from a document, as their `from_dict` does,
/// without running Python: a new instance whose `__dict__` holds the
/// `Document` (or, for a mapping, its `raw` dict) for its fields to read.
/// `None` stays `None`. Native because a start's result and its run were
/// made by two Python frames each, on every call.
#[pyclass(module = "startgate._native", frozen)]
pub struct Shape {
    class: Py<PyType>,
    /// The class's `__new__` (`object.__new__`: the dataclass's `__init__`
    /// is not run, as `from_dict` does not run it).
    new: Py<PyAny>,
}

impl Shape {
    /// An instance for `value` (a `Document` or a mapping), or `None`.
    pub fn make<'py>(&self, value: Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let py = value.py();
        if value.is_none() {
            return Ok(value);
        }
        let class = self.class.bind(py);
        let instance = self.new.bind(py).call1((class,))?;
        let state = instance
            .getattr(intern!(py, "__dict__"))?
            .cast_into::<PyDict>()?;
        if value.is_instance_of::<Document>() {
            state.set_item(intern!(py, "_document"), value)?;
        } else {
            let raw = py.get_type::<PyDict>().call1((value,))?;
            state.set_item(intern!(py, "raw"), raw)?;
        }
        Ok(instance)
    }
}

#[pymethods]
impl Shape {
    #[new]
    fn py_new(class: Bound<'_, PyType>) -> PyResult<Shape> {
        let new = class.getattr(intern!(class.py(), "__new__"))?.unbind();
        Ok(Shape {
            class: class.unbind(),
            new,
        })
    }

    /// An instance for `value` (see the class), or `None` for `None`.
    fn __call__<'py>(&self, value: Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        self.make(value)
    }
}

/// Whether the JSON string `quoted` (quotes included) is `key`.
fn key_is(quoted: &str, key: &str) -> bool {
    let inner = &quoted[1..quoted.len() - 1];
    if !inner.contains('\\') {
        return inner == key;
    }
    serde_json::from_str::<String>(quoted).is_ok_and(|name| name == key)
}

fn skip_space(bytes: &[u8], mut at: usize) -> usize {
    while matches!(bytes.get(at), Some(b' ' | b'\n' | b'\r' | b'\t')) {
        at += 1;
    }
    at
}

/// Where the string starting at `at` (its opening quote) ends, past its closing quote.
fn string_end(bytes: &[u8], at: usize) -> Option<usize> {
    let mut i = at + 1;
    loop {
        match bytes.get(i)? {
            b'"' => return Some(i + 1),
            b'\\' => i += 2,
            _ => i += 1,
        }
    }
}

/// Where the value starting at `at` ends.
fn value_end(bytes: &[u8], at: usize) -> Option<usize> {
    match bytes.get(at)? {
        b'"' => string_end(bytes, at),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut i = at;
            loop {
                match bytes.get(i)? {
                    b'"' => {
                        i = string_end(bytes, i)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(i + 1);
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
        }
        _ => {
            let mut i = at;
            while !matches!(
                bytes.get(i),
                None | Some(b',' | b'}' | b']' | b' ' | b'\n' | b'\r' | b'\t')
            ) {
                i += 1;
            }
            Some(i)
        }
    }
}

/// The JSON value at the start of `json` as Python values, objects as dicts
/// in document order; what follows the value is not read.
pub fn python_from_text<'py>(py: Python<'py>, json: &str) -> PyResult<Bound<'py, PyAny>> {
    let mut reader = serde_json::Deserializer::from_str(json);
    ToPython(py)
        .deserialize(&mut reader)
        .map_err(|err| PyValueError::new_err(format!("cannot read a result: {err}")))
}

/// A JSON value as Python values, by the same conversion as [`python_from_text`].
pub fn python_from_value<'py>(
    py: Python<'py>,
    value: &serde_json::Value,
) -> PyResult<Bound<'py, PyAny>> {
    ToPython(py)
        .deserialize(value)
        .map_err(|err| PyValueError::new_err(format!("cannot convert a result: {err}")))
}

/// Builds Python values as serde reads JSON: no tree in between.
#[derive(Clone, Copy)]
struct ToPython<'py>(Python<'py>);

impl<'de, 'py> DeserializeSeed<'de> for ToPython<'py> {
    type Value = Bound<'py, PyAny>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

fn failed<E: de::Error>(err: PyErr) -> E {
    E::custom(err)
}

impl<'de, 'py> Visitor<'de> for ToPython<'py> {
    type Value = Bound<'py, PyAny>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JSON data")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(PyBool::new(self.0, v).to_owned().into_any())
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(PyInt::new(self.0, v).into_any())
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(PyInt::new(self.0, v).into_any())
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(PyFloat::new(self.0, v).into_any())
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(PyString::new(self.0, v).into_any())
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(self.0.None().into_bound(self.0))
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        self.visit_unit()
    }
    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        self.deserialize(deserializer)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element_seed(self)? {
            items.push(item);
        }
        Ok(PyList::new(self.0, items).map_err(failed)?.into_any())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let dict = PyDict::new(self.0);
        while let Some(key) = map.next_key_seed(self)? {
            let value = map.next_value_seed(self)?;
            dict.set_item(key, value).map_err(failed)?;
        }
        Ok(dict.into_any())
    }
}
