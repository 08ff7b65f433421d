//! JavaScript values in, JSON data out, with the checks only this side can
//! make (see `startgate::input`): strings are read as UTF-16 and a lone
//! surrogate is refused (napi's UTF-8 conversion would replace it with
//! U+FFFD, making two different tenants one); numbers are finite, and an
//! integral one up to 2^53 becomes an integer (anything else stays a
//! fraction, which the core refuses where it wants an id); a BigInt must fit
//! 64 bits; functions, symbols, dates and binary data are not JSON data;
//! nesting is limited. Keys are renamed from camelCase to the contract's
//! snake_case, except inside the host's own documents (`params`, `summary`).
//! Every refusal names the field by its contract path.

use std::ptr;

use napi::sys;
use serde_json::{Map, Number, Value};
use startgate::input::{self, Place};
use startgate::Error;

/// Keys whose values belong to the host and are never renamed.
pub const OPAQUE: [&str; 2] = ["params", "summary"];

/// `tenantId` → `tenant_id`.
pub fn snake(key: &str) -> String {
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

/// A failed N-API call while reading a value: the engine refused, not the caller.
fn engine(what: &str) -> Error {
    Error::Internal {
        message: format!("Node-API could not {what}"),
    }
}

fn ok(status: sys::napi_status, what: &str) -> Result<(), Error> {
    if status == sys::Status::napi_ok {
        Ok(())
    } else {
        Err(engine(what))
    }
}

/// `JSON.parse(text)` in `env`: one call builds the whole object graph,
/// where building it from Rust costs N-API calls per key and per value.
///
/// # Safety
/// `env` must be the live env of the current call.
pub unsafe fn parse_json(env: sys::napi_env, text: &str) -> Result<sys::napi_value, Error> {
    let mut global = ptr::null_mut();
    let mut json = ptr::null_mut();
    let mut parse = ptr::null_mut();
    let mut string = ptr::null_mut();
    let mut parsed = ptr::null_mut();
    // SAFETY: `env` is live (the caller's promise); every out-pointer is a
    // local; the text's length is given, so it need not end in NUL.
    unsafe {
        ok(
            sys::napi_get_global(env, &mut global),
            "read the global object",
        )?;
        ok(
            sys::napi_get_named_property(env, global, c"JSON".as_ptr(), &mut json),
            "read JSON",
        )?;
        ok(
            sys::napi_get_named_property(env, json, c"parse".as_ptr(), &mut parse),
            "read JSON.parse",
        )?;
        ok(
            sys::napi_create_string_utf8(
                env,
                text.as_ptr().cast(),
                text.len() as isize,
                &mut string,
            ),
            "create a string",
        )?;
        ok(
            sys::napi_call_function(env, json, parse, 1, &string, &mut parsed),
            "parse a result",
        )?;
    }
    Ok(parsed)
}

/// Reads a JS string exactly: UTF-16 code units, refused unless they are
/// valid Unicode. `None` when the text holds a lone surrogate.
unsafe fn read_string(env: sys::napi_env, value: sys::napi_value) -> Result<Option<String>, Error> {
    // Most strings of a call (keys, ids, names) fit this buffer: one N-API
    // call and no allocation besides the String itself.
    const SHORT: usize = 128;
    let mut short = [0u16; SHORT];
    let mut written = 0usize;
    // SAFETY: the buffer holds SHORT units; N-API writes at most SHORT - 1
    // and a terminator.
    ok(
        unsafe {
            sys::napi_get_value_string_utf16(env, value, short.as_mut_ptr(), SHORT, &mut written)
        },
        "read a string",
    )?;
    if written < SHORT - 1 {
        return Ok(String::from_utf16(&short[..written]).ok());
    }
    // It may have been cut at SHORT - 1 units: read its length, then all of it.
    let mut len = 0usize;
    // SAFETY: a NULL buffer asks for the length only.
    ok(
        unsafe { sys::napi_get_value_string_utf16(env, value, ptr::null_mut(), 0, &mut len) },
        "read a string's length",
    )?;
    let mut units = vec![0u16; len + 1];
    // SAFETY: the buffer holds len + 1 units (room for the terminator).
    ok(
        unsafe {
            sys::napi_get_value_string_utf16(env, value, units.as_mut_ptr(), len + 1, &mut written)
        },
        "read a string",
    )?;
    units.truncate(written);
    Ok(String::from_utf16(&units).ok())
}

unsafe fn type_of(
    env: sys::napi_env,
    value: sys::napi_value,
) -> Result<sys::napi_valuetype, Error> {
    let mut kind = 0;
    // SAFETY: env and value come from the engine for this call.
    ok(
        unsafe { sys::napi_typeof(env, value, &mut kind) },
        "read a value's type",
    )?;
    Ok(kind)
}

unsafe fn is(
    env: sys::napi_env,
    value: sys::napi_value,
    check: unsafe extern "C" fn(sys::napi_env, sys::napi_value, *mut bool) -> sys::napi_status,
) -> Result<bool, Error> {
    let mut answer = false;
    // SAFETY: as for `type_of`.
    ok(
        unsafe { check(env, value, &mut answer) },
        "inspect an object",
    )?;
    Ok(answer)
}

/// What a conversion is inside: the argument it belongs to, and whether keys
/// are the host's own (not renamed).
struct Walk<'a> {
    env: sys::napi_env,
    root: &'a str,
}

impl Walk<'_> {
    fn at(&self, place: &Place<'_>) -> String {
        place.field(self.root)
    }

    /// `None` for `undefined` (an absent property).
    unsafe fn value(
        &self,
        value: sys::napi_value,
        place: &Place<'_>,
        depth: usize,
        opaque: bool,
    ) -> Result<Option<Value>, Error> {
        let env = self.env;
        // SAFETY: every napi_value here came from the engine for this call.
        unsafe {
            Ok(Some(match type_of(env, value)? {
                sys::ValueType::napi_undefined => return Ok(None),
                sys::ValueType::napi_null => Value::Null,
                sys::ValueType::napi_boolean => {
                    let mut b = false;
                    ok(
                        sys::napi_get_value_bool(env, value, &mut b),
                        "read a boolean",
                    )?;
                    Value::Bool(b)
                }
                sys::ValueType::napi_number => {
                    let mut n = 0f64;
                    ok(
                        sys::napi_get_value_double(env, value, &mut n),
                        "read a number",
                    )?;
                    number(n).ok_or_else(|| input::not_finite(self.at(place)))?
                }
                sys::ValueType::napi_string => Value::String(
                    read_string(env, value)?.ok_or_else(|| input::not_unicode(self.at(place)))?,
                ),
                sys::ValueType::napi_bigint => {
                    let (mut n, mut lossless) = (0i64, false);
                    ok(
                        sys::napi_get_value_bigint_int64(env, value, &mut n, &mut lossless),
                        "read a BigInt",
                    )?;
                    if !lossless {
                        let mut text = ptr::null_mut();
                        ok(
                            sys::napi_coerce_to_string(env, value, &mut text),
                            "print a BigInt",
                        )?;
                        let digits = read_string(env, text)?.unwrap_or_default();
                        return Err(input::out_of_range(self.at(place), &format!("{digits}n")));
                    }
                    Value::from(n)
                }
                sys::ValueType::napi_object => self.object(value, place, depth, opaque)?,
                sys::ValueType::napi_function => {
                    return Err(input::not_json(self.at(place), "a function"))
                }
                sys::ValueType::napi_symbol => {
                    return Err(input::not_json(self.at(place), "a symbol"))
                }
                _ => return Err(input::not_json(self.at(place), "a native object")),
            }))
        }
    }

    unsafe fn object(
        &self,
        value: sys::napi_value,
        place: &Place<'_>,
        depth: usize,
        opaque: bool,
    ) -> Result<Value, Error> {
        let env = self.env;
        // SAFETY: as for `value`.
        unsafe {
            // Arrays are never a Date or binary data: asked first, they skip
            // those four checks.
            let array = is(env, value, sys::napi_is_array)?;
            if !array {
                if is(env, value, sys::napi_is_date)? {
                    return Err(input::not_json(
                        self.at(place),
                        "a Date (pass an RFC 3339 string)",
                    ));
                }
                if is(env, value, sys::napi_is_typedarray)?
                    || is(env, value, sys::napi_is_arraybuffer)?
                    || is(env, value, sys::napi_is_buffer)?
                {
                    return Err(input::not_json(self.at(place), "binary data"));
                }
            }
            if depth >= input::MAX_DEPTH {
                return Err(input::too_deep(self.root));
            }
            if array {
                let mut len = 0u32;
                ok(
                    sys::napi_get_array_length(env, value, &mut len),
                    "read an array's length",
                )?;
                let mut items = Vec::with_capacity(len as usize);
                for i in 0..len {
                    let mut item = ptr::null_mut();
                    ok(
                        sys::napi_get_element(env, value, i, &mut item),
                        "read an array element",
                    )?;
                    let inner = Place::Index(place, i as usize);
                    items.push(
                        self.value(item, &inner, depth + 1, opaque)?
                            .unwrap_or(Value::Null),
                    );
                }
                return Ok(Value::Array(items));
            }
            let mut names = ptr::null_mut();
            ok(
                sys::napi_get_all_property_names(
                    env,
                    value,
                    sys::KeyCollectionMode::own_only,
                    sys::KeyFilter::enumerable | sys::KeyFilter::skip_symbols,
                    sys::KeyConversion::numbers_to_strings,
                    &mut names,
                ),
                "list an object's keys",
            )?;
            let mut count = 0u32;
            ok(
                sys::napi_get_array_length(env, names, &mut count),
                "count an object's keys",
            )?;
            let mut map = Map::new();
            for i in 0..count {
                let mut name = ptr::null_mut();
                ok(
                    sys::napi_get_element(env, names, i, &mut name),
                    "read a key",
                )?;
                let key =
                    read_string(env, name)?.ok_or_else(|| input::not_unicode(self.at(place)))?;
                let key = if opaque { key } else { snake(&key) };
                let mut item = ptr::null_mut();
                ok(
                    sys::napi_get_property(env, value, name, &mut item),
                    "read a property",
                )?;
                let inside = opaque || OPAQUE.contains(&key.as_str());
                let inner = Place::Key(place, &key);
                if let Some(converted) = self.value(item, &inner, depth + 1, inside)? {
                    map.insert(key, converted);
                }
            }
            Ok(Value::Object(map))
        }
    }
}

/// A JS number as JSON: integral values up to 2^53 in magnitude are exact
/// integers; anything else stays a fraction. `None` for NaN and infinities.
fn number(n: f64) -> Option<Value> {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    if !n.is_finite() {
        return None;
    }
    if n.fract() == 0.0 && n.abs() <= EXACT {
        // Exact: |n| ≤ 2^53 fits i64 and `n` has no fraction.
        #[allow(clippy::cast_possible_truncation)]
        return Some(Value::from(n as i64));
    }
    Number::from_f64(n).map(Value::Number)
}

/// Converts the JS argument `value`, named `root` in errors; `undefined` is `null`.
pub fn argument(
    env: &napi::Env,
    root: &str,
    value: napi::bindgen_prelude::Unknown<'_>,
) -> Result<Value, Error> {
    let walk = Walk {
        env: env.raw(),
        root,
    };
    let opaque = OPAQUE.contains(&root);
    // SAFETY: `value` is a live value of this call's scope.
    let converted = unsafe { walk.value(napi::JsValue::raw(&value), &Place::Root, 0, opaque) }?;
    Ok(converted.unwrap_or(Value::Null))
}
