//! A plain request read straight from Python values into the core's type.
//!
//! The checked path (`to_value` in `lib.rs`) builds a JSON value of the whole
//! document, then the core checks it and decodes the type from it. For the
//! common document — dicts with str keys, lists, tuples, str, int, float,
//! bool and None, within the limits — this module walks the Python values
//! once, as a serde `Deserializer`, with the same checks and the same
//! values the type would get from the JSON value. Anything else (one of the
//! contract's objects, a refusal of any kind) makes it decline, and the call
//! takes the checked path, which converts it or refuses it in the words
//! every surface uses. So this path never decides a refusal, and never
//! accepts what that path would refuse.

use std::cell::Cell;

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use serde::de::value::{Error, StrDeserializer};
use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};
use startgate::input::{MAX_DEPTH, MAX_JSON_BYTES};
use startgate::json::DocumentDecoder;

/// Decodes one document argument from its Python value.
pub(crate) struct PyDecoder<'a, 'py>(pub(crate) &'a Bound<'py, PyAny>);

impl DocumentDecoder for PyDecoder<'_, '_> {
    fn decode<T: serde::de::DeserializeOwned>(self) -> Option<T> {
        let text = Cell::new(0);
        let root = Level {
            depth: 0,
            text: &text,
        };
        let decoded = T::deserialize(root.walk(self.0.clone())).ok()?;
        // The checked path measures a larger document exactly; leave it that.
        (text.get() <= MAX_JSON_BYTES / 2).then_some(decoded)
    }
}

/// Why this path declined; never shown (the checked path words the answer).
fn decline() -> Error {
    de::Error::custom("declined: the checked path decides")
}

/// Text as the checked path would take it: valid Unicode (a lone surrogate
/// is refused there), no NUL, counted against the size limit.
fn text<'a>(s: &'a Bound<'_, PyString>, total: &Cell<usize>) -> Result<&'a str, Error> {
    let s = s.to_str().map_err(|_| decline())?;
    if s.as_bytes().contains(&0) {
        return Err(decline());
    }
    total.set(total.get() + s.len());
    Ok(s)
}

/// Where a value sits: its depth (the document itself is 0), and the text
/// counted so far in the whole document.
#[derive(Clone, Copy)]
struct Level<'a> {
    depth: usize,
    text: &'a Cell<usize>,
}

impl<'a> Level<'a> {
    /// `value`, read at this level.
    fn walk<'py>(self, value: Bound<'py, PyAny>) -> Walk<'a, 'py> {
        Walk { value, level: self }
    }

    /// The level of the items of a dict or list at this one.
    fn below(self) -> Level<'a> {
        Level {
            depth: self.depth + 1,
            ..self
        }
    }
}

/// One Python value, at its level.
struct Walk<'a, 'py> {
    value: Bound<'py, PyAny>,
    level: Level<'a>,
}

impl<'de> de::Deserializer<'de> for Walk<'_, '_> {
    type Error = Error;

    // The order of `to_value`'s checks: a bool is an int in Python, and a
    // str subclass (a str enum) is its text.
    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let value = &self.value;
        if value.is_none() {
            return visitor.visit_unit();
        }
        if let Ok(b) = value.cast::<PyBool>() {
            return visitor.visit_bool(b.is_true());
        }
        if let Ok(s) = value.cast::<PyString>() {
            return visitor.visit_str(text(s, self.level.text)?);
        }
        if let Ok(i) = value.cast::<PyInt>() {
            if let Ok(n) = i.extract::<i64>() {
                return visitor.visit_i64(n);
            }
            let n = i.extract::<u64>().map_err(|_| decline())?;
            return visitor.visit_u64(n);
        }
        if let Ok(f) = value.cast::<PyFloat>() {
            let f = f.value();
            return if f.is_finite() {
                visitor.visit_f64(f)
            } else {
                Err(decline())
            };
        }
        let nested = value.is_instance_of::<PyDict>()
            || value.is_instance_of::<PyList>()
            || value.is_instance_of::<PyTuple>();
        if !nested || self.level.depth >= MAX_DEPTH {
            // One of the contract's objects, something JSON cannot hold, or
            // too deep: the checked path converts or refuses it.
            return Err(decline());
        }
        let level = self.level.below();
        // A visitor may stop before the end (a struct read from a list takes
        // as many items as it has fields): what is left over is refused by
        // the checked path ("invalid length"), so it declines here.
        if let Ok(dict) = value.cast::<PyDict>() {
            let mut entries = Entries {
                items: dict.iter(),
                value: None,
                level,
            };
            let visited = visitor.visit_map(&mut entries)?;
            return match entries.items.next() {
                None => Ok(visited),
                Some(_) => Err(decline()),
            };
        }
        let items: Vec<Bound<'_, PyAny>> = match value.cast::<PyList>() {
            Ok(list) => list.iter().collect(),
            Err(_) => value
                .cast::<PyTuple>()
                .map_err(|_| decline())?
                .iter()
                .collect(),
        };
        let mut items = Items {
            items: items.into_iter(),
            level,
        };
        let visited = visitor.visit_seq(&mut items)?;
        match items.items.len() {
            0 => Ok(visited),
            _ => Err(decline()),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        if self.value.is_none() {
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    // The contract's enums in a request are unit variants, written as their
    // name; any other form takes the checked path.
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let s = self.value.cast::<PyString>().map_err(|_| decline())?;
        let name: StrDeserializer<'_, Error> = text(s, self.level.text)?.into_deserializer();
        visitor.visit_enum(name)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map struct
        identifier ignored_any
    }
}

/// A dict's entries; keys must be str, as for the checked path.
struct Entries<'a, 'py> {
    items: pyo3::types::iter::BoundDictIterator<'py>,
    value: Option<Bound<'py, PyAny>>,
    /// The level of the values.
    level: Level<'a>,
}

impl<'de> de::MapAccess<'de> for Entries<'_, '_> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        let Some((key, value)) = self.items.next() else {
            return Ok(None);
        };
        let key = key.cast_into::<PyString>().map_err(|_| decline())?;
        self.value = Some(value);
        let key: StrDeserializer<'_, Error> = text(&key, self.level.text)?.into_deserializer();
        seed.deserialize(key).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let value = self.value.take().ok_or_else(decline)?;
        seed.deserialize(self.level.walk(value))
    }
}

/// A list's or tuple's items.
struct Items<'a, 'py> {
    items: std::vec::IntoIter<Bound<'py, PyAny>>,
    /// The level of the items.
    level: Level<'a>,
}

impl<'de> de::SeqAccess<'de> for Items<'_, '_> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        let Some(value) = self.items.next() else {
            return Ok(None);
        };
        seed.deserialize(self.level.walk(value)).map(Some)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}
