//! A result that becomes Python values one field at a time.
//!
//! A caller of `start` reads its outcome and its run's id, and rarely more;
//! building every field of the result and of its run as Python objects (and
//! freeing them), or first writing the result as JSON text to read back,
//! costs a start more than the rest of the binding. A [`Document`] keeps the
//! core's own result (the value the call returned, shared) and a path into
//! it; reading a field serializes the value down that path, converting only
//! the field's value (by `pythonize`, as the binding's other results are
//! converted), and an object value becomes a `Document` of its own, one
//! field further down. `to_dict` converts the whole object, in the order
//! serde writes its fields (the contract's order, as in the JSON text).

use std::fmt;
use std::sync::Arc;

use pyo3::exceptions::{PyAttributeError, PyKeyError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyType};
use serde::ser::{self, Serialize, Serializer};

/// A call's result kept for a [`Document`]: any of the core's results
/// (`startgate::json::CallResult`), type-erased.
pub trait Source: Send + Sync {
    /// What is at `path` below this value (see [`seek`]).
    fn seek<'py>(&self, py: Python<'py>, path: Path<'_>, leaf: Leaf) -> PyResult<Found<'py>>;
}

impl<T: Serialize + Send + Sync> Source for T {
    fn seek<'py>(&self, py: Python<'py>, path: Path<'_>, leaf: Leaf) -> PyResult<Found<'py>> {
        seek(self, py, path, leaf)
    }
}

/// Field names from a result down to a value: a `Document`'s own path, and
/// the field being read below it, if any (a read makes no new path unless
/// it finds an object).
#[derive(Clone, Copy, Default)]
pub struct Path<'a> {
    parents: &'a [Box<str>],
    last: Option<&'a str>,
}

impl<'a> Path<'a> {
    fn of(parents: &'a [Box<str>], last: Option<&'a str>) -> Path<'a> {
        Path { parents, last }
    }

    /// The first name and the path after it; `None` at the value itself.
    fn split_first(self) -> Option<(&'a str, Path<'a>)> {
        match self.parents.split_first() {
            Some((first, parents)) => Some((first, Path { parents, ..self })),
            None => self.last.map(|last| (last, Path::default())),
        }
    }
}

/// What [`seek`] makes of the value it finds.
#[derive(Clone, Copy)]
pub enum Leaf {
    /// An object stays where it is ([`Found::Object`]); anything else
    /// becomes Python values.
    Item,
    /// The whole value as Python values, objects as dicts.
    Whole,
    /// The whole value as JSON text.
    Json,
}

/// The value at a path.
#[derive(Default)]
pub enum Found<'py> {
    /// A Python value.
    Value(Bound<'py, PyAny>),
    /// An object, left unconverted (`Leaf::Item`).
    Object,
    /// JSON text (`Leaf::Json`).
    Json(String),
    /// Nothing at that path.
    #[default]
    Missing,
}

/// An object in a result, read one field at a time (see the module).
#[pyclass(module = "startgate._native", frozen)]
pub struct Document {
    root: Arc<dyn Source>,
    /// The field names from `root` down to this object.
    path: Box<[Box<str>]>,
}

impl Document {
    /// What is at `parents` and then `last` below `root`: a `Document` for
    /// an object, Python values for anything else, `None` for nothing.
    fn at<'py>(
        py: Python<'py>,
        root: &Arc<dyn Source>,
        parents: &[Box<str>],
        last: Option<&str>,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        match root.seek(py, Path::of(parents, last), Leaf::Item)? {
            Found::Value(value) => Ok(Some(value)),
            Found::Object => {
                let path = parents.iter().cloned().chain(last.map(Box::from));
                let document = Document {
                    root: Arc::clone(root),
                    path: path.collect(),
                };
                Ok(Some(Bound::new(py, document)?.into_any()))
            }
            Found::Json(_) | Found::Missing => Ok(None),
        }
    }

    /// A call's result for Python: a `Document` if it is an object, else
    /// its Python values.
    pub fn of_result(py: Python<'_>, root: Arc<dyn Source>) -> PyResult<Bound<'_, PyAny>> {
        Document::at(py, &root, &[], None)?
            .ok_or_else(|| PyValueError::new_err("cannot read a result"))
    }

    /// The value of field `key`: a `Document` for an object, Python values
    /// for anything else.
    pub fn item<'py>(&self, py: Python<'py>, key: &str) -> PyResult<Bound<'py, PyAny>> {
        Document::at(py, &self.root, &self.path, Some(key))?
            .ok_or_else(|| PyKeyError::new_err(key.to_string()))
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
        match self
            .root
            .seek(py, Path::of(&self.path, None), Leaf::Whole)?
        {
            Found::Value(value) => Ok(value),
            _ => Err(PyValueError::new_err("cannot read a result")),
        }
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        match self.root.seek(py, Path::of(&self.path, None), Leaf::Json)? {
            Found::Json(text) => Ok(format!("Document({text})")),
            _ => Err(PyValueError::new_err("cannot read a result")),
        }
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
        let state = instance_dict(instance)?;
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
        let state = instance_dict(&instance)?;
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

/// An instance's `__dict__` (made if it has none yet), read as
/// `object.__dict__` reads it rather than looked up as an attribute: each
/// field read and each result made takes it.
fn instance_dict<'py>(instance: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyDict>> {
    // SAFETY: `instance` is a live object and the GIL is held (its `py`);
    // the function returns a new reference, or NULL with an exception set
    // (an object without a `__dict__`), which `from_owned_ptr_or_err` takes.
    let dict = unsafe {
        Bound::from_owned_ptr_or_err(
            instance.py(),
            pyo3::ffi::PyObject_GenericGetDict(instance.as_ptr(), std::ptr::null_mut()),
        )?
    };
    Ok(dict.cast_into::<PyDict>()?)
}

/// What is at `path` below `value`, made as `leaf` says. Serializing
/// `value` walks it: at each object on the way, the field named next is
/// followed and every other field is passed over unconverted.
pub fn seek<'py, V: Serialize + ?Sized>(
    value: &V,
    py: Python<'py>,
    path: Path<'_>,
    leaf: Leaf,
) -> PyResult<Found<'py>> {
    let Some((key, rest)) = path.split_first() else {
        return Ok(match leaf {
            Leaf::Item if value.serialize(IsObject).unwrap_or(false) => Found::Object,
            Leaf::Item | Leaf::Whole => Found::Value(python_from(py, value)?),
            Leaf::Json => Found::Json(
                serde_json::to_string(value)
                    .map_err(|err| PyValueError::new_err(format!("cannot read a result: {err}")))?,
            ),
        });
    };
    let mut found = None;
    let walked = value.serialize(Descend {
        py,
        key,
        rest,
        leaf,
        found: &mut found,
    });
    match walked {
        Ok(nothing) => Ok(nothing),
        Err(Failed::Found) => Ok(found.unwrap_or_default()),
        Err(Failed::Raised(err)) => Err(err),
    }
}

/// A value as Python values, objects as dicts in the order serde writes
/// their fields.
pub fn python_from<'py, V: Serialize + ?Sized>(
    py: Python<'py>,
    value: &V,
) -> PyResult<Bound<'py, PyAny>> {
    pythonize::pythonize(py, value)
        .map_err(|err| PyValueError::new_err(format!("cannot convert a result: {err}")))
}

/// Why a walk stopped before its end.
#[derive(Debug)]
enum Failed {
    /// The field was found (and is in `Descend::found`): the fields after
    /// it need not be passed over.
    Found,
    /// The Python exception to raise.
    Raised(PyErr),
}

impl fmt::Display for Failed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failed::Found => f.write_str("found"),
            Failed::Raised(err) => err.fmt(f),
        }
    }
}

impl std::error::Error for Failed {}

impl ser::Error for Failed {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Failed::Raised(PyValueError::new_err(format!(
            "cannot read a result: {msg}"
        )))
    }
}

/// Follows field `key` of an object (then `rest` below it); anything that
/// is not an object has no fields.
struct Descend<'py, 'p> {
    py: Python<'py>,
    key: &'p str,
    rest: Path<'p>,
    leaf: Leaf,
    /// What was found at `key`, set as the walk stops with `Failed::Found`.
    found: &'p mut Option<Found<'py>>,
}

/// The fields of an object being passed over, until `key`'s is found.
struct Fields<'py, 'p> {
    to: Descend<'py, 'p>,
    /// Whether the map key just written is `key` (for maps).
    next_is_key: bool,
}

impl<'py> Fields<'py, '_> {
    /// `key`'s value: what is below it is sought, and the walk stops.
    fn field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Failed> {
        let found = seek(value, self.to.py, self.to.rest, self.to.leaf).map_err(Failed::Raised)?;
        *self.to.found = Some(found);
        Err(Failed::Found)
    }

    fn end(self) -> Result<Found<'py>, Failed> {
        Ok(Found::Missing)
    }
}

impl<'py> ser::SerializeStruct for Fields<'py, '_> {
    type Ok = Found<'py>;
    type Error = Failed;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        name: &'static str,
        value: &T,
    ) -> Result<(), Failed> {
        if name == self.to.key {
            self.field(value)?;
        }
        Ok(())
    }
    fn end(self) -> Result<Found<'py>, Failed> {
        Fields::end(self)
    }
}

impl<'py> ser::SerializeMap for Fields<'py, '_> {
    type Ok = Found<'py>;
    type Error = Failed;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Failed> {
        self.next_is_key = key.serialize(KeyIs(self.to.key)).unwrap_or(false);
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Failed> {
        if std::mem::take(&mut self.next_is_key) {
            self.field(value)?;
        }
        Ok(())
    }
    fn end(self) -> Result<Found<'py>, Failed> {
        Fields::end(self)
    }
}

/// The methods of a serializer for everything that is not an object: no
/// fields to follow, the serializer's `Ok::default()` (`Missing`, `false`),
/// except that `Some` and a newtype are looked through.
macro_rules! not_an_object {
    () => {
        not_an_object! {
            scalars { serialize_bool(bool); serialize_i8(i8); serialize_i16(i16);
            serialize_i32(i32); serialize_i64(i64); serialize_u8(u8); serialize_u16(u16);
            serialize_u32(u32); serialize_u64(u64); serialize_f32(f32); serialize_f64(f64);
            serialize_char(char); serialize_bytes(&[u8]); serialize_none(); serialize_unit();
            serialize_unit_struct(&'static str);
            serialize_unit_variant(&'static str, u32, &'static str); }
            compounds { serialize_seq(Option<usize>) -> SerializeSeq;
            serialize_tuple(usize) -> SerializeTuple;
            serialize_tuple_struct(&'static str, usize) -> SerializeTupleStruct;
            serialize_tuple_variant(&'static str, u32, &'static str, usize) -> SerializeTupleVariant;
            serialize_struct_variant(&'static str, u32, &'static str, usize) -> SerializeStructVariant; }
        }
        fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<Self::Ok, Self::Error> {
            value.serialize(self)
        }
        fn serialize_newtype_struct<T: Serialize + ?Sized>(
            self,
            _: &'static str,
            value: &T,
        ) -> Result<Self::Ok, Self::Error> {
            value.serialize(self)
        }
        fn serialize_newtype_variant<T: Serialize + ?Sized>(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: &T,
        ) -> Result<Self::Ok, Self::Error> {
            Ok(Self::Ok::default())
        }
    };
    (scalars { $($scalar:ident($($arg:ty),*);)* } compounds { $($compound:ident($($c:ty),*) -> $kind:ident;)* }) => {
        $(fn $scalar(self, $(_: $arg),*) -> Result<Self::Ok, Self::Error> {
            Ok(Self::Ok::default())
        })*
        $(fn $compound(self, $(_: $c),*) -> Result<Self::$kind, Self::Error> {
            Ok(Skip(Self::Ok::default()))
        })*
    };
}

impl<'py, 'p> Serializer for Descend<'py, 'p> {
    type Ok = Found<'py>;
    type Error = Failed;
    type SerializeSeq = Skip<Found<'py>>;
    type SerializeTuple = Skip<Found<'py>>;
    type SerializeTupleStruct = Skip<Found<'py>>;
    type SerializeTupleVariant = Skip<Found<'py>>;
    type SerializeMap = Fields<'py, 'p>;
    type SerializeStruct = Fields<'py, 'p>;
    type SerializeStructVariant = Skip<Found<'py>>;

    not_an_object!();

    fn serialize_str(self, _: &str) -> Result<Found<'py>, Failed> {
        Ok(Found::Missing)
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Fields<'py, 'p>, Failed> {
        Ok(Fields {
            to: self,
            next_is_key: false,
        })
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Fields<'py, 'p>, Failed> {
        self.serialize_map(None)
    }
}

/// The associated types and the non-object methods of a serializer that
/// answers a yes or no (`IsObject`, `KeyIs`), passing over every item.
macro_rules! answers_whether {
    () => {
        type Ok = bool;
        type Error = Failed;
        type SerializeSeq = Skip<bool>;
        type SerializeTuple = Skip<bool>;
        type SerializeTupleStruct = Skip<bool>;
        type SerializeTupleVariant = Skip<bool>;
        type SerializeMap = Skip<bool>;
        type SerializeStruct = Skip<bool>;
        type SerializeStructVariant = Skip<bool>;

        not_an_object!();
    };
}

/// Whether a value is an object (a struct or a map, looking through `Some`
/// and newtypes), without converting anything.
struct IsObject;

impl Serializer for IsObject {
    answers_whether!();

    fn serialize_str(self, _: &str) -> Result<bool, Failed> {
        Ok(false)
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Skip<bool>, Failed> {
        Ok(Skip(true))
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Skip<bool>, Failed> {
        Ok(Skip(true))
    }
}

/// Whether a map key is the string `.0` (the contract's maps have string
/// keys; no other key is a field name).
struct KeyIs<'k>(&'k str);

impl Serializer for KeyIs<'_> {
    answers_whether!();

    fn serialize_str(self, key: &str) -> Result<bool, Failed> {
        Ok(key == self.0)
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Skip<bool>, Failed> {
        Ok(Skip(false))
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Skip<bool>, Failed> {
        Ok(Skip(false))
    }
}

/// A compound whose items are passed over; it answers `.0`.
struct Skip<O>(O);

macro_rules! skip {
    ($($trait:ident: $method:ident($($name:ty),*);)*) => {
        $(impl<O> ser::$trait for Skip<O> {
            type Ok = O;
            type Error = Failed;
            fn $method<T: Serialize + ?Sized>(&mut self, $(_: $name,)* _: &T) -> Result<(), Failed> {
                Ok(())
            }
            fn end(self) -> Result<O, Failed> {
                Ok(self.0)
            }
        })*
    };
}

skip! {
    SerializeSeq: serialize_element();
    SerializeTuple: serialize_element();
    SerializeTupleStruct: serialize_field();
    SerializeTupleVariant: serialize_field();
    SerializeStruct: serialize_field(&'static str);
    SerializeStructVariant: serialize_field(&'static str);
}

impl<O> ser::SerializeMap for Skip<O> {
    type Ok = O;
    type Error = Failed;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, _: &T) -> Result<(), Failed> {
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, _: &T) -> Result<(), Failed> {
        Ok(())
    }
    fn end(self) -> Result<O, Failed> {
        Ok(self.0)
    }
}
