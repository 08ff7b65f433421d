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
//!
//! Two ways in, one answer. An object or array of plain JSON data (plain
//! objects and arrays, well-formed strings, numbers the walk would make the
//! same JSON number of, booleans, null) is written as JSON text by one
//! JavaScript function compiled once per thread (`helper_script`): one
//! N-API call where the walk below makes several per key and per value, and
//! the core decodes the text straight into its type. Anything else makes
//! that function answer `null` and the argument is walked value by value
//! here, which refuses what only JavaScript can hold (every other refusal
//! is the core's, the same either way); such an argument is read twice, so
//! an accessor property on it runs twice.

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

/// The script that makes this env's helpers: `[encode, JSON.parse,
/// Array.isArray]`. `encode(value, opaque)` writes plain JSON data as JSON
/// text with the contract's key names, in one call where the walk below
/// costs several N-API calls per key and per value. It answers `null` for
/// anything else (a lone surrogate, a number the walk would treat apart,
/// a BigInt, a Date, binary data, a function, a symbol, an object that is
/// not a plain object or array, deep nesting), and the walk then converts
/// the argument again, value by value, and decides: the function never
/// refuses, so the two cannot word a refusal differently. Its depth limit is
/// one below the walk's, as serde_json's parser nests one level less.
fn helper_script() -> String {
    format!(
        r#"(() => {{
  'use strict'
  const {{ keys, getPrototypeOf }} = Object
  const {{ isArray }} = Array
  const {{ isInteger, isFinite }} = Number
  const objectPrototype = Object.prototype
  const arrayPrototype = Array.prototype
  const quote = JSON.stringify
  const limit = {limit}
  // What a key is written as (`"tenant_id":`), by its JavaScript name: the
  // contract's keys come back call after call. Only well-formed keys enter.
  const heads = new Map()
  const opaqueHeads = {opaque}.map((key) => quote(key) + ':')
  // A surrogate without its pair (`isWellFormed` needs Node 20; this works on 18).
  const lone = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/
  const head = (key) => {{
    let text = heads.get(key)
    if (text === undefined) {{
      if (lone.test(key)) return null
      text = quote(key.replace(/[A-Z]/g, (c) => '_' + c.toLowerCase())) + ':'
      if (heads.size < 1024) heads.set(key, text)
    }}
    return text
  }}
  // Text with nothing to escape and no surrogate at all is quoted as it is.
  const special = /[\u0000-\u001f"\\\ud800-\udfff]/
  const string = (text) => special.test(text) ? (lone.test(text) ? null : quote(text)) : '"' + text + '"'
  const encode = (value, depth, opaque) => {{
    switch (typeof value) {{
      case 'string': return string(value)
      case 'number':
        if (isInteger(value)) return value <= 9007199254740992 && value >= -9007199254740992 ? '' + value : null
        return isFinite(value) ? '' + value : null
      case 'boolean': return value ? 'true' : 'false'
      case 'undefined': return undefined
      case 'object': break
      default: return null
    }}
    if (value === null) return 'null'
    if (depth >= limit) return null
    const prototype = getPrototypeOf(value)
    if (prototype === arrayPrototype && isArray(value)) {{
      const length = value.length
      let text = '['
      for (let i = 0; i < length; i++) {{
        const item = encode(value[i], depth + 1, opaque)
        if (item === null) return null
        text += (i === 0 ? '' : ',') + (item === undefined ? 'null' : item)
      }}
      return text + ']'
    }}
    if (prototype !== objectPrototype && prototype !== null) return null
    let text = '{{'
    const names = keys(value)
    for (let i = 0; i < names.length; i++) {{
      const key = names[i]
      const name = opaque ? string(key) : head(key)
      if (name === null) return null
      const inner = opaque || opaqueHeads.includes(name)
      const item = encode(value[key], depth + 1, inner)
      if (item === null) return null
      if (item !== undefined) text += (text.length === 1 ? '' : ',') + (opaque ? name + ':' : name) + item
    }}
    return text + '}}'
  }}
  return [(value, opaque) => encode(value, 0, opaque), JSON.parse, isArray]
}})()"#,
        opaque = serde_json::json!(OPAQUE),
        limit = input::MAX_DEPTH - 1,
    )
}

/// This thread's helpers, made in `env` (see `helper_script`).
struct Helpers {
    env: sys::napi_env,
    encode: sys::napi_ref,
    parse: sys::napi_ref,
    is_array: sys::napi_ref,
}

thread_local! {
    // One env per JS thread (the main thread, or a worker's own); the env's
    // cleanup hook empties the slot before its references go.
    static HELPERS: std::cell::Cell<Option<Helpers>> = const { std::cell::Cell::new(None) };
}

unsafe extern "C" fn forget_helpers(_: *mut std::ffi::c_void) {
    HELPERS.with(|slot| slot.set(None));
}

/// Which of this env's helpers to fetch.
#[derive(Clone, Copy)]
enum Helper {
    Encode,
    Parse,
    IsArray,
}

/// One of this env's helpers, made on first use.
unsafe fn helper(env: sys::napi_env, which: Helper) -> Result<sys::napi_value, Error> {
    let pick = |helpers: &Helpers| match which {
        Helper::Encode => helpers.encode,
        Helper::Parse => helpers.parse,
        Helper::IsArray => helpers.is_array,
    };
    let cached = HELPERS.with(|slot| {
        let helpers = slot.take();
        let reference = helpers.as_ref().filter(|h| h.env == env).map(pick);
        slot.set(helpers);
        reference
    });
    let reference = match cached {
        Some(reference) => reference,
        None => {
            // SAFETY: `env` is live (the caller's promise).
            let helpers = unsafe { make_helpers(env) }?;
            let reference = pick(&helpers);
            HELPERS.with(|slot| slot.set(Some(helpers)));
            reference
        }
    };
    let mut value = ptr::null_mut();
    // SAFETY: the reference was made in this env and lives as long as it.
    ok(
        unsafe { sys::napi_get_reference_value(env, reference, &mut value) },
        "read a helper",
    )?;
    Ok(value)
}

unsafe fn make_helpers(env: sys::napi_env) -> Result<Helpers, Error> {
    let script = helper_script();
    let mut made = ptr::null_mut();
    let mut refs = [ptr::null_mut(); 3];
    // SAFETY: `env` is live; every out-pointer is a local; the script is
    // this crate's own constant text.
    unsafe {
        let source = js_string(env, &script)?;
        ok(
            sys::napi_run_script(env, source, &mut made),
            "compile the argument encoder",
        )?;
        for (i, slot) in refs.iter_mut().enumerate() {
            let mut function = ptr::null_mut();
            ok(
                sys::napi_get_element(env, made, i as u32, &mut function),
                "read a helper",
            )?;
            ok(
                sys::napi_create_reference(env, function, 1, slot),
                "keep a helper",
            )?;
        }
        ok(
            sys::napi_add_env_cleanup_hook(env, Some(forget_helpers), ptr::null_mut()),
            "register a cleanup hook",
        )?;
    }
    Ok(Helpers {
        env,
        encode: refs[0],
        parse: refs[1],
        is_array: refs[2],
    })
}

/// `JSON.parse(text)` in `env`: one call builds the whole object graph,
/// where building it from Rust costs N-API calls per key and per value.
///
/// # Safety
/// `env` must be the live env of the current call.
pub unsafe fn parse_json(env: sys::napi_env, text: &str) -> Result<sys::napi_value, Error> {
    // SAFETY: `env` is live (the caller's promise).
    unsafe {
        let string = js_string(env, text)?;
        call_helper(env, Helper::Parse, &[string], "parse a result")
    }
}

/// `text` as a JS string.
unsafe fn js_string(env: sys::napi_env, text: &str) -> Result<sys::napi_value, Error> {
    let mut string = ptr::null_mut();
    // SAFETY: `env` is live (the caller's promise); the text's length is
    // given, so it need not end in NUL.
    ok(
        unsafe {
            sys::napi_create_string_utf8(
                env,
                text.as_ptr().cast(),
                text.len() as isize,
                &mut string,
            )
        },
        "create a string",
    )?;
    Ok(string)
}

/// Calls one of this env's helpers with `args`.
unsafe fn call_helper(
    env: sys::napi_env,
    which: Helper,
    args: &[sys::napi_value],
    what: &str,
) -> Result<sys::napi_value, Error> {
    let mut undefined = ptr::null_mut();
    let mut result = ptr::null_mut();
    // SAFETY: `env` is live and `args` are values of this call's scope (the
    // caller's promise); the out-pointers are locals.
    unsafe {
        let function = helper(env, which)?;
        ok(
            sys::napi_get_undefined(env, &mut undefined),
            "read undefined",
        )?;
        ok(
            sys::napi_call_function(
                env,
                undefined,
                function,
                args.len(),
                args.as_ptr(),
                &mut result,
            ),
            what,
        )?;
    }
    Ok(result)
}

/// `encode(value, opaque)` (see `helper_script`): the argument as JSON
/// text, `None` when the walk must convert it instead.
unsafe fn encode_plain(
    env: sys::napi_env,
    value: sys::napi_value,
    opaque: bool,
) -> Result<Option<String>, Error> {
    let mut flag = ptr::null_mut();
    // SAFETY: as for `parse_json`; `value` belongs to this call's scope.
    unsafe {
        ok(
            sys::napi_get_boolean(env, opaque, &mut flag),
            "make a boolean",
        )?;
        let text = call_helper(env, Helper::Encode, &[value, flag], "encode an argument")?;
        match type_of(env, text)? {
            sys::ValueType::napi_string => read_encoded(env, text).map(Some),
            _ => Ok(None),
        }
    }
}

/// The encoder's text as UTF-8: exact, as every string in it was checked
/// to be well-formed.
unsafe fn read_encoded(env: sys::napi_env, text: sys::napi_value) -> Result<String, Error> {
    // A start request's text fits this buffer: one N-API call.
    const SHORT: usize = 1024;
    let mut short = [0u8; SHORT];
    let mut written = 0usize;
    // SAFETY: the buffer holds SHORT bytes; N-API writes at most SHORT - 1
    // and a terminator.
    ok(
        unsafe {
            sys::napi_get_value_string_utf8(
                env,
                text,
                short.as_mut_ptr().cast(),
                SHORT,
                &mut written,
            )
        },
        "read a string",
    )?;
    // A cut never splits a character, so a cut text fills at least
    // SHORT - 4 bytes (a character is at most 4).
    let bytes = if written < SHORT - 4 {
        short[..written].to_vec()
    } else {
        let mut len = 0usize;
        // SAFETY: a NULL buffer asks for the length only.
        ok(
            unsafe { sys::napi_get_value_string_utf8(env, text, ptr::null_mut(), 0, &mut len) },
            "read a string's length",
        )?;
        let mut bytes = vec![0u8; len + 1];
        // SAFETY: the buffer holds len + 1 bytes (room for the terminator).
        ok(
            unsafe {
                sys::napi_get_value_string_utf8(
                    env,
                    text,
                    bytes.as_mut_ptr().cast(),
                    len + 1,
                    &mut written,
                )
            },
            "read a string",
        )?;
        bytes.truncate(written);
        bytes
    };
    String::from_utf8(bytes).map_err(|_| engine("read the argument encoder's text"))
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
            let plain_array = is(env, value, sys::napi_is_array)?;
            let mut array = plain_array;
            if !plain_array {
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
                // A Proxy of an array is an array to `Array.isArray` (and to
                // the encoder) but not to N-API.
                array = is_array(env, value)?;
            }
            if depth >= input::MAX_DEPTH {
                return Err(input::too_deep(self.root));
            }
            if array {
                let len = if plain_array {
                    let mut len = 0u32;
                    ok(
                        sys::napi_get_array_length(env, value, &mut len),
                        "read an array's length",
                    )?;
                    len
                } else {
                    proxy_length(env, value)?
                };
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

/// `Array.isArray(value)`.
unsafe fn is_array(env: sys::napi_env, value: sys::napi_value) -> Result<bool, Error> {
    let mut result = false;
    // SAFETY: as for `type_of`.
    unsafe {
        let answer = call_helper(env, Helper::IsArray, &[value], "ask Array.isArray")?;
        ok(
            sys::napi_get_value_bool(env, answer, &mut result),
            "read a boolean",
        )?;
    }
    Ok(result)
}

/// The `length` of a Proxy of an array, read through its traps.
unsafe fn proxy_length(env: sys::napi_env, value: sys::napi_value) -> Result<u32, Error> {
    let mut length = ptr::null_mut();
    let mut len = 0u32;
    // SAFETY: as for `type_of`.
    unsafe {
        ok(
            sys::napi_get_named_property(env, value, c"length".as_ptr(), &mut length),
            "read an array's length",
        )?;
        ok(
            sys::napi_get_value_uint32(env, length, &mut len),
            "read an array's length",
        )?;
    }
    Ok(len)
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

/// The JS argument `value` as JSON text with the contract's key names, when
/// it is an object or array of plain JSON data (see `helper_script`); `None`
/// for anything else, which [`argument`] then converts.
pub fn plain_text(
    env: &napi::Env,
    root: &str,
    value: &napi::bindgen_prelude::Unknown<'_>,
) -> Result<Option<String>, Error> {
    let env = env.raw();
    let value = napi::JsValue::raw(value);
    // SAFETY: `value` is a live value of this call's scope.
    unsafe {
        if type_of(env, value)? != sys::ValueType::napi_object {
            return Ok(None);
        }
        encode_plain(env, value, OPAQUE.contains(&root))
    }
}
