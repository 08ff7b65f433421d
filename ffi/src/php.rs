//! Result documents in PHP's `serialize()` format, for a handle set to
//! `STARTGATE_RESULT_PHP_SERIALIZE` (what the PHP package asks for):
//! `unserialize()` reads a start's result in less than half the
//! instructions `json_decode()` takes for the same document as JSON.
//!
//! The value written is the one `json_decode($json, true)` gives for the
//! JSON text the same result would have been: an object or a list is an
//! array (a list keyed 0, 1, …), an integer beyond PHP's range a float, a
//! number that is not finite null. A string with a NUL byte, which the
//! returned C string cannot hold, is written in the escaped `S:` form.

use std::fmt::{self, Display};
use std::io::Write as _;

use serde::ser::{self, Serialize};

use startgate_core::{json, Error};

/// `value` as PHP `serialize()` text.
pub(crate) fn to_serialized<T: Serialize + ?Sized>(value: &T) -> Result<String, Error> {
    // About twice the JSON text (each key and list index is spelled with
    // its type and length): an accepted start's result is 1,530 bytes.
    let mut writer = Writer {
        out: Vec::with_capacity(2048),
    };
    value.serialize(&mut writer).map_err(json::encode_failed)?;
    String::from_utf8(writer.out).map_err(json::encode_failed)
}

/// Why a value has no PHP form (only a map key that is not text or an
/// integer: the contract's documents have none).
#[derive(Debug)]
pub(crate) struct EncodeError(String);

impl Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for EncodeError {}

impl ser::Error for EncodeError {
    fn custom<T: Display>(msg: T) -> Self {
        EncodeError(msg.to_string())
    }
}

/// The decimal digits of `n`, at the end of `buf`: `core::fmt` costs more
/// than the rest of writing a number (a start's result writes about 60).
fn digits(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut at = buf.len();
    loop {
        at -= 1;
        // n % 10 < 10: the cast keeps every bit.
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[at..];
        }
    }
}

struct Writer {
    out: Vec<u8>,
}

impl Writer {
    fn unsigned(&mut self, n: u64) {
        let mut buf = [0; 20];
        self.out.extend_from_slice(digits(n, &mut buf));
    }

    fn string(&mut self, text: &str) {
        let bytes = text.as_bytes();
        if bytes.contains(&0) {
            // `S:` counts the unescaped bytes; each `\xx` is one byte.
            self.out.extend_from_slice(b"S:");
            self.unsigned(bytes.len() as u64);
            self.out.extend_from_slice(b":\"");
            for &byte in bytes {
                match byte {
                    0 => self.out.extend_from_slice(b"\\00"),
                    b'\\' => self.out.extend_from_slice(b"\\5c"),
                    byte => self.out.push(byte),
                }
            }
        } else {
            self.out.extend_from_slice(b"s:");
            self.unsigned(bytes.len() as u64);
            self.out.extend_from_slice(b":\"");
            self.out.extend_from_slice(bytes);
        }
        self.out.extend_from_slice(b"\";");
    }

    fn integer(&mut self, value: i64) {
        self.out.extend_from_slice(b"i:");
        if value < 0 {
            self.out.push(b'-');
        }
        self.unsigned(value.unsigned_abs());
        self.out.push(b';');
    }

    /// An integer PHP may not hold as one: beyond PHP's range `json_decode`
    /// makes it a float, and so does `d:`.
    fn wide_integer<T: Display + Copy + TryInto<i64>>(&mut self, value: T) {
        match value.try_into() {
            Ok(small) => self.integer(small),
            Err(_) => {
                let _ = write!(self.out, "d:{value};");
            }
        }
    }

    fn float(&mut self, value: f64, text: impl fmt::Debug) {
        if value.is_finite() {
            // Debug is the shortest text that reads back as the same number,
            // with an exponent where one is shorter: both forms `d:` reads.
            let _ = write!(self.out, "d:{text:?};");
        } else {
            // serde_json writes a NaN or an infinity as null.
            self.out.extend_from_slice(b"N;");
        }
    }

    /// Starts an array whose length is known only at its end.
    fn open(&mut self, variant: Option<&'static str>) -> Array<'_> {
        if let Some(name) = variant {
            // An enum variant with data is {"Variant": data}, as serde_json writes it.
            self.out.extend_from_slice(b"a:1:{");
            self.string(name);
        }
        let header_at = self.out.len();
        Array {
            writer: self,
            header_at,
            count: 0,
            in_variant: variant.is_some(),
        }
    }
}

/// An array being written: its `a:N:{` goes in at `header_at` when it ends.
struct Array<'a> {
    writer: &'a mut Writer,
    header_at: usize,
    count: u64,
    in_variant: bool,
}

impl Array<'_> {
    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), EncodeError> {
        self.writer.out.extend_from_slice(b"i:");
        self.writer.unsigned(self.count);
        self.writer.out.push(b';');
        self.count += 1;
        value.serialize(&mut *self.writer)
    }

    fn key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), EncodeError> {
        self.count += 1;
        key.serialize(KeyWriter(self.writer))
    }

    fn field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), EncodeError> {
        self.count += 1;
        self.writer.string(key);
        value.serialize(&mut *self.writer)
    }

    fn close(self) -> Result<(), EncodeError> {
        let mut buf = [0; 20];
        let count = digits(self.count, &mut buf);
        let header_len = count.len() + 4;
        // Open a gap for `a:N:{` before the elements and write it there.
        let out = &mut self.writer.out;
        let end = out.len();
        out.resize(end + header_len, 0);
        out.copy_within(self.header_at..end, self.header_at + header_len);
        let header = &mut out[self.header_at..self.header_at + header_len];
        header[..2].copy_from_slice(b"a:");
        header[2..2 + count.len()].copy_from_slice(count);
        header[2 + count.len()..].copy_from_slice(b":{");
        out.push(b'}');
        if self.in_variant {
            out.push(b'}');
        }
        Ok(())
    }
}

/// The ten integer methods of a `Serializer`, each binding `self` to `$this`
/// and the value to `$v` for `$body`.
macro_rules! integers {
    ($this:ident, $v:ident => $body:expr) => {
        integers!(@each $this, $v, $body, serialize_i8(i8), serialize_i16(i16),
            serialize_i32(i32), serialize_i64(i64), serialize_i128(i128), serialize_u8(u8),
            serialize_u16(u16), serialize_u32(u32), serialize_u64(u64), serialize_u128(u128));
    };
    (@each $this:ident, $v:ident, $body:expr, $($method:ident($ty:ty)),*) => {$(
        fn $method(self, $v: $ty) -> Result<(), EncodeError> {
            let $this = self;
            $body
        }
    )*};
}

impl<'a> ser::Serializer for &'a mut Writer {
    type Ok = ();
    type Error = EncodeError;
    type SerializeSeq = Array<'a>;
    type SerializeTuple = Array<'a>;
    type SerializeTupleStruct = Array<'a>;
    type SerializeTupleVariant = Array<'a>;
    type SerializeMap = Array<'a>;
    type SerializeStruct = Array<'a>;
    type SerializeStructVariant = Array<'a>;

    integers!(writer, v => {
        writer.wide_integer(v);
        Ok(())
    });
    fn serialize_bool(self, v: bool) -> Result<(), EncodeError> {
        self.out
            .extend_from_slice(if v { b"b:1;" } else { b"b:0;" });
        Ok(())
    }
    fn serialize_f32(self, v: f32) -> Result<(), EncodeError> {
        // f32's own shortest text (0.1, not 0.10000000149011612), as serde_json writes it.
        self.float(f64::from(v), v);
        Ok(())
    }
    fn serialize_f64(self, v: f64) -> Result<(), EncodeError> {
        self.float(v, v);
        Ok(())
    }
    fn serialize_char(self, v: char) -> Result<(), EncodeError> {
        self.string(v.encode_utf8(&mut [0; 4]));
        Ok(())
    }
    fn serialize_str(self, v: &str) -> Result<(), EncodeError> {
        self.string(v);
        Ok(())
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), EncodeError> {
        // serde_json writes bytes as a list of numbers.
        let mut array = self.open(None);
        for byte in v {
            array.element(byte)?;
        }
        array.close()
    }
    fn serialize_none(self) -> Result<(), EncodeError> {
        self.out.extend_from_slice(b"N;");
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), EncodeError> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), EncodeError> {
        self.serialize_none()
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), EncodeError> {
        self.serialize_none()
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), EncodeError> {
        self.string(variant);
        Ok(())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), EncodeError> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), EncodeError> {
        self.out.extend_from_slice(b"a:1:{");
        self.string(variant);
        value.serialize(&mut *self)?;
        self.out.push(b'}');
        Ok(())
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Array<'a>, EncodeError> {
        Ok(self.open(None))
    }
    fn serialize_tuple(self, _len: usize) -> Result<Array<'a>, EncodeError> {
        Ok(self.open(None))
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Array<'a>, EncodeError> {
        Ok(self.open(None))
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Array<'a>, EncodeError> {
        Ok(self.open(Some(variant)))
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Array<'a>, EncodeError> {
        Ok(self.open(None))
    }
    fn serialize_struct(self, _name: &'static str, _len: usize) -> Result<Array<'a>, EncodeError> {
        // Not `len`: a skipped field would make it one too many.
        Ok(self.open(None))
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Array<'a>, EncodeError> {
        Ok(self.open(Some(variant)))
    }
}

/// The element-list traits (a list, a tuple, a tuple struct or variant):
/// each element is keyed by its index.
macro_rules! elements {
    ($($trait:ident :: $method:ident),*) => {$(
        impl ser::$trait for Array<'_> {
            type Ok = ();
            type Error = EncodeError;
            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), EncodeError> {
                self.element(value)
            }
            fn end(self) -> Result<(), EncodeError> {
                self.close()
            }
        }
    )*};
}

elements!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field
);

/// The named-field traits (a struct or a struct variant).
macro_rules! fields {
    ($($trait:ident),*) => {$(
        impl ser::$trait for Array<'_> {
            type Ok = ();
            type Error = EncodeError;
            fn serialize_field<T: Serialize + ?Sized>(
                &mut self,
                key: &'static str,
                value: &T,
            ) -> Result<(), EncodeError> {
                self.field(key, value)
            }
            fn end(self) -> Result<(), EncodeError> {
                self.close()
            }
        }
    )*};
}

fields!(SerializeStruct, SerializeStructVariant);

impl ser::SerializeMap for Array<'_> {
    type Ok = ();
    type Error = EncodeError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), EncodeError> {
        self.key(key)
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), EncodeError> {
        value.serialize(&mut *self.writer)
    }
    fn end(self) -> Result<(), EncodeError> {
        self.close()
    }
}

/// Writes a map key. JSON keys are text and `json_decode` turns one that
/// reads as an integer into an integer key; `unserialize` does the same with
/// a text key, so a key is written as the text JSON would carry.
struct KeyWriter<'a>(&'a mut Writer);

impl KeyWriter<'_> {
    fn text(self, key: impl Display) -> Result<(), EncodeError> {
        self.0.string(&key.to_string());
        Ok(())
    }
}

fn key_refused<T>() -> Result<T, EncodeError> {
    Err(EncodeError("a map key must be text or an integer".into()))
}

impl ser::Serializer for KeyWriter<'_> {
    type Ok = ();
    type Error = EncodeError;
    type SerializeSeq = ser::Impossible<(), EncodeError>;
    type SerializeTuple = ser::Impossible<(), EncodeError>;
    type SerializeTupleStruct = ser::Impossible<(), EncodeError>;
    type SerializeTupleVariant = ser::Impossible<(), EncodeError>;
    type SerializeMap = ser::Impossible<(), EncodeError>;
    type SerializeStruct = ser::Impossible<(), EncodeError>;
    type SerializeStructVariant = ser::Impossible<(), EncodeError>;

    integers!(key, v => key.text(v));
    fn serialize_str(self, v: &str) -> Result<(), EncodeError> {
        self.0.string(v);
        Ok(())
    }
    fn serialize_char(self, v: char) -> Result<(), EncodeError> {
        self.text(v)
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), EncodeError> {
        self.serialize_str(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), EncodeError> {
        value.serialize(self)
    }
    fn serialize_bool(self, _v: bool) -> Result<(), EncodeError> {
        key_refused()
    }
    fn serialize_f32(self, _v: f32) -> Result<(), EncodeError> {
        key_refused()
    }
    fn serialize_f64(self, _v: f64) -> Result<(), EncodeError> {
        key_refused()
    }
    fn serialize_bytes(self, _v: &[u8]) -> Result<(), EncodeError> {
        key_refused()
    }
    fn serialize_none(self) -> Result<(), EncodeError> {
        key_refused()
    }
    fn serialize_some<T: Serialize + ?Sized>(self, _value: &T) -> Result<(), EncodeError> {
        key_refused()
    }
    fn serialize_unit(self) -> Result<(), EncodeError> {
        key_refused()
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), EncodeError> {
        key_refused()
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _value: &T,
    ) -> Result<(), EncodeError> {
        key_refused()
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Self::SerializeSeq, EncodeError> {
        key_refused()
    }
    fn serialize_tuple(self, _len: usize) -> Result<Self::SerializeTuple, EncodeError> {
        key_refused()
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleStruct, EncodeError> {
        key_refused()
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, EncodeError> {
        key_refused()
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap, EncodeError> {
        key_refused()
    }
    fn serialize_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStruct, EncodeError> {
        key_refused()
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, EncodeError> {
        key_refused()
    }
}

#[cfg(test)]
mod tests {
    use super::to_serialized;
    use serde_json::json;

    #[test]
    fn writes_what_php_serialize_writes_for_the_decoded_json() {
        // PHP 8.2's unserialize() reads each expected text as the value
        // json_decode($json, true) gives (checked with php -r; serialize()
        // itself would write 1.0E+300 where this writes 1e300).
        let cases = [
            (json!(null), "N;"),
            (json!(true), "b:1;"),
            (json!(-7), "i:-7;"),
            (json!(u64::MAX), "d:18446744073709551615;"),
            (json!(0.5), "d:0.5;"),
            (json!(1e300), "d:1e300;"),
            (json!("héllo"), "s:6:\"héllo\";"),
            (json!("a\0b\\"), "S:4:\"a\\00b\\5c\";"),
            (json!([]), "a:0:{}"),
            (json!({}), "a:0:{}"),
            (
                json!({"a": [1, "x"], "b": {"7": null}}),
                "a:2:{s:1:\"a\";a:2:{i:0;i:1;i:1;s:1:\"x\";}s:1:\"b\";a:1:{s:1:\"7\";N;}}",
            ),
        ];
        for (value, expected) in cases {
            assert_eq!(
                to_serialized(&value).ok().as_deref(),
                Some(expected),
                "{value}"
            );
        }
    }

    #[test]
    fn skipped_fields_and_enum_variants_are_written_as_serde_json_writes_them() {
        #[derive(serde::Serialize)]
        enum Shape {
            Unit,
            Tuple(u8, u8),
            Named { side: u8 },
        }
        #[derive(serde::Serialize)]
        struct Doc {
            #[serde(skip_serializing_if = "Option::is_none")]
            absent: Option<u8>,
            shapes: Vec<Shape>,
        }
        let doc = Doc {
            absent: None,
            shapes: vec![Shape::Unit, Shape::Tuple(1, 2), Shape::Named { side: 3 }],
        };
        assert_eq!(
            serde_json::to_string(&doc).ok().as_deref(),
            Some(r#"{"shapes":["Unit",{"Tuple":[1,2]},{"Named":{"side":3}}]}"#)
        );
        assert_eq!(
            to_serialized(&doc).ok().as_deref(),
            Some(
                "a:1:{s:6:\"shapes\";a:3:{i:0;s:4:\"Unit\";i:1;a:1:{s:5:\"Tuple\";a:2:{i:0;i:1;i:1;i:2;}}\
                 i:2;a:1:{s:5:\"Named\";a:1:{s:4:\"side\";i:3;}}}}"
            )
        );
    }
}
