//! The one input discipline (docs/DESIGN.md §10). Every argument that
//! crosses into the library, on every surface, passes through here:
//!
//! - text is valid Unicode and holds no NUL character, at any depth of a
//!   document (object keys included);
//! - a document is exactly one JSON value, at most [`MAX_JSON_BYTES`] long
//!   and at most [`MAX_DEPTH`] levels deep;
//! - run ids and fencing tokens are exact integers in the 64-bit range;
//! - nothing is coerced: a fraction is not an id, a NUL does not end a
//!   string, an invalid character is not replaced.
//!
//! Refusals are `invalid_request` with the field named by the contract's
//! (snake_case) path, the same words on every surface: the bindings that
//! convert their own values (Python, Node) call the constructors below for
//! what only they can see (a lone surrogate, a NaN, a function).

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{Error, Result};

/// Largest JSON document accepted, in bytes.
pub const MAX_JSON_BYTES: usize = 4 * 1024 * 1024;

/// Deepest nesting of objects and lists accepted in a document.
pub const MAX_DEPTH: usize = 128;

/// Where a value sits inside the argument a binding is converting: a chain
/// of borrowed steps, spelled out only when a refusal names it, so a
/// document that passes builds no path strings.
#[derive(Debug, Clone, Copy)]
pub enum Place<'a> {
    /// The argument itself.
    Root,
    /// An object's value under a key (the contract's snake_case key).
    Key(&'a Place<'a>, &'a str),
    /// A list's item.
    Index(&'a Place<'a>, usize),
}

impl Place<'_> {
    /// The path inside the argument as every surface spells it
    /// (`actor.capabilities[1]`); empty for the argument itself.
    pub fn path(&self) -> String {
        match self {
            Place::Root => String::new(),
            Place::Key(parent, key) => join(&parent.path(), key),
            Place::Index(parent, index) => format!("{}[{index}]", parent.path()),
        }
    }

    /// The field a refusal names: the path, or `root` (the argument's name)
    /// where the path is empty, as the core's own walk names it.
    pub fn field(&self, root: &str) -> String {
        field_at(root, self.path())
    }
}

/// `invalid_request` for `field`.
pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Error {
    Error::InvalidRequest {
        field: field.into(),
        message: message.into(),
    }
}

/// Text that is not valid Unicode: a lone UTF-16 surrogate, bytes that are
/// not UTF-8.
pub fn not_unicode(field: impl Into<String>) -> Error {
    invalid(field, "must be valid Unicode text")
}

/// Text holding a NUL character.
pub fn holds_nul(field: impl Into<String>) -> Error {
    invalid(field, "must not contain NUL characters")
}

/// A number that JSON cannot carry (NaN, an infinity).
pub fn not_finite(field: impl Into<String>) -> Error {
    invalid(field, "must be a finite number")
}

/// A document larger than [`MAX_JSON_BYTES`] (as JSON text).
pub fn too_large(field: impl Into<String>) -> Error {
    invalid(
        field,
        format!("is larger than the limit of {MAX_JSON_BYTES} bytes of JSON"),
    )
}

/// A document nested deeper than [`MAX_DEPTH`].
pub fn too_deep(field: impl Into<String>) -> Error {
    invalid(field, format!("is nested deeper than {MAX_DEPTH} levels"))
}

/// A value that is not JSON data (a function, a date object, …); `found`
/// says what it is, in the host language's words.
pub fn not_json(field: impl Into<String>, found: &str) -> Error {
    invalid(field, format!("expected JSON data, found {found}"))
}

/// An object key that is not text.
pub fn key_not_text(field: impl Into<String>, found: &str) -> Error {
    invalid(field, format!("object keys must be strings, found {found}"))
}

/// An integer outside the 64-bit range the store keeps ids in.
pub fn out_of_range(field: impl Into<String>, found: &str) -> Error {
    invalid(
        field,
        format!(
            "expected an integer from {} to {}, found {found}",
            i64::MIN,
            i64::MAX
        ),
    )
}

/// Plain text: no NUL character.
pub fn text(field: &str, value: &str) -> Result<()> {
    if value.contains('\0') {
        return Err(holds_nul(field));
    }
    Ok(())
}

/// An exact 64-bit integer (a run id, a fencing token): never a fraction, a
/// string, a boolean or anything out of range.
pub fn integer(field: &str, value: &Value) -> Result<i64> {
    match value {
        Value::Number(n) => n.as_i64().ok_or_else(|| {
            if n.is_f64() {
                invalid(field, format!("expected an integer, found {n}"))
            } else {
                out_of_range(field, &n.to_string())
            }
        }),
        other => Err(invalid(
            field,
            format!("expected an integer, found {}", describe(other)),
        )),
    }
}

/// A short description of a JSON value for messages.
pub fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) if s.chars().count() <= 40 => format!("the string {s:?}"),
        Value::String(_) => "a string".into(),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "an object".into(),
    }
}

/// The field a refusal at `path` names: `root` for the document itself.
fn field_at(root: &str, path: String) -> String {
    if path.is_empty() {
        root.to_string()
    } else {
        path
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Walks a document: no NUL in any string or key, no deeper than
/// [`MAX_DEPTH`]. `root` names the document itself; paths inside it are
/// relative (`actor.capabilities[2]`), as serde reports them.
pub fn check_value(root: &str, value: &Value) -> Result<()> {
    if passes(value) {
        return Ok(());
    }
    walk(root, String::new(), value)
}

/// [`check_value`] for a field inside a document (`params`): paths inside
/// it start with the field's own path (`params.deep[0]`).
pub fn check_field(path: &str, value: &Value) -> Result<()> {
    if passes(value) {
        return Ok(());
    }
    walk(path, path.to_string(), value)
}

/// Whether `value` passes [`walk`], found without building a single path:
/// the common case costs no allocation beyond the stack. Only a document
/// that fails is walked again, to name where.
fn passes(value: &Value) -> bool {
    let mut stack: Vec<(&Value, usize)> = vec![(value, 0)];
    let mut text_bytes = 0usize;
    while let Some((value, depth)) = stack.pop() {
        match value {
            Value::String(s) => {
                if s.contains('\0') {
                    return false;
                }
                text_bytes += s.len();
            }
            Value::Array(items) => {
                if depth >= MAX_DEPTH {
                    return false;
                }
                stack.extend(items.iter().map(|item| (item, depth + 1)));
            }
            Value::Object(map) => {
                if depth >= MAX_DEPTH {
                    return false;
                }
                for (key, item) in map {
                    if key.contains('\0') {
                        return false;
                    }
                    text_bytes += key.len();
                    stack.push((item, depth + 1));
                }
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }
    // Large documents are measured exactly by `walk`.
    text_bytes <= MAX_JSON_BYTES / 2
}

fn walk(root: &str, start: String, value: &Value) -> Result<()> {
    // An explicit stack: documents built in code were not depth-limited yet.
    let mut stack: Vec<(String, &Value, usize)> = vec![(start, value, 0)];
    // Text bytes seen; past half the limit the exact JSON size is measured.
    let mut text_bytes = 0usize;
    while let Some((path, value, depth)) = stack.pop() {
        let at = |path: &str| field_at(root, path.to_string());
        match value {
            Value::String(s) => {
                text(&at(&path), s)?;
                text_bytes += s.len();
            }
            Value::Array(items) => {
                if depth >= MAX_DEPTH {
                    return Err(too_deep(root));
                }
                for (i, item) in items.iter().enumerate() {
                    stack.push((format!("{path}[{i}]"), item, depth + 1));
                }
            }
            Value::Object(map) => {
                if depth >= MAX_DEPTH {
                    return Err(too_deep(root));
                }
                for (key, item) in map {
                    let inner = join(&path, key);
                    if key.contains('\0') {
                        return Err(holds_nul(inner));
                    }
                    text_bytes += key.len();
                    stack.push((inner, item, depth + 1));
                }
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }
    if text_bytes > MAX_JSON_BYTES / 2 {
        let size = serde_json::to_vec(value).map_or(usize::MAX, |v| v.len());
        if size > MAX_JSON_BYTES {
            return Err(too_large(root));
        }
    }
    Ok(())
}

/// Parses JSON text: exactly one value, within the size and depth limits,
/// then [`check_value`]. `root` names the document in errors.
pub fn parse_value(root: &str, json: &str) -> Result<Value> {
    parse_value_bytes(root, json.as_bytes())
}

/// [`parse_value`] for bytes that may not be UTF-8 (what a C caller hands
/// over). Text inside the document that is not valid Unicode — bytes that
/// are not UTF-8, or an escaped lone surrogate such as `"\ud800"` — is
/// refused naming the field it is in, as the bindings name it.
pub fn parse_value_bytes(root: &str, json: &[u8]) -> Result<Value> {
    let value = parse_json_bytes(root, json, |path| {
        if path.is_empty() {
            (root.to_string(), root.to_string())
        } else {
            (root.to_string(), path.to_string())
        }
    })?;
    check_value(root, &value)?;
    Ok(value)
}

/// An object of named arguments (a C host's `startgate_call`), parsed
/// without [`check_value`]: each argument is checked under its own name by
/// the caller. A failure inside one is named as for that argument alone:
/// `request.tenant_id` is reported as `tenant_id`, `run_id` as `run_id`.
pub fn parse_arguments(json: &[u8]) -> Result<Value> {
    parse_json_bytes("args", json, |path| match path.find(['.', '[']) {
        None if path.is_empty() => ("args".into(), "args".into()),
        None => (path.to_string(), path.to_string()),
        Some(end) => {
            let rest = path[end..].trim_start_matches('.');
            (path[..end].to_string(), rest.to_string())
        }
    })
}

/// Parses exactly one JSON value; `name(path)` gives, for the path where
/// parsing failed, the document to blame for its size or depth and the field
/// to blame for its text.
fn parse_json_bytes(
    root: &str,
    json: &[u8],
    name: impl Fn(&str) -> (String, String),
) -> Result<Value> {
    if json.len() > MAX_JSON_BYTES {
        return Err(too_large(root));
    }
    // The common case: well-formed JSON, parsed without tracking paths. Only
    // a document that fails is parsed again, to name where.
    if let Ok(value) = serde_json::from_slice::<Value>(json) {
        return Ok(value);
    }
    let mut de = serde_json::Deserializer::from_slice(json);
    let value: Value = serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let path = err.path().to_string();
        let (document, field) = name(if path == "." { "" } else { &path });
        let err = err.into_inner();
        let text = err.to_string();
        if text.starts_with("recursion limit exceeded") {
            // serde_json's own limit is the same depth; say it the same way.
            too_deep(document)
        } else if UNICODE_ERRORS.iter().any(|e| text.starts_with(e)) {
            not_unicode(field)
        } else {
            invalid(root, format!("not one JSON value: {err}"))
        }
    })?;
    de.end()
        .map_err(|err| invalid(root, format!("not one JSON value: {err}")))?;
    Ok(value)
}

/// serde_json's words for text that is not Unicode.
const UNICODE_ERRORS: [&str; 3] = [
    "invalid unicode code point",
    "lone leading surrogate",
    "unexpected end of hex escape",
];

/// A checked document as `T`; a mismatch names the field (`root` for the
/// document itself, else the path inside it).
pub fn from_value<T: DeserializeOwned>(root: &str, value: Value) -> Result<T> {
    // The common case, decoded without tracking paths; a mismatch is decoded
    // again to name its field.
    if let Ok(decoded) = T::deserialize(&value) {
        return Ok(decoded);
    }
    serde_path_to_error::deserialize(value).map_err(|err| {
        let path = err.path().to_string();
        let message = err.into_inner().to_string();
        // serde names a missing field in the message of the object around
        // it; name the field itself, as every other refusal does.
        if let Some(name) = message
            .strip_prefix("missing field `")
            .and_then(|rest| rest.strip_suffix('`'))
        {
            let field = if path == "." {
                name.to_string()
            } else {
                format!("{path}.{name}")
            };
            return invalid(field, "missing");
        }
        let field = if path == "." { root.to_string() } else { path };
        invalid(field, message)
    })
}

/// JSON text as `T`: [`parse_value`], then [`from_value`].
pub fn parse<T: DeserializeOwned>(root: &str, json: &str) -> Result<T> {
    parse_bytes(root, json.as_bytes())
}

/// JSON bytes as `T`, with the answer of [`parse_value_bytes`] then
/// [`from_value`] (what a C caller hands over). The common case — a
/// document of at most half the size limit, nested at most half the depth
/// limit, with no `\u` escape of a NUL or a surrogate, that decodes as `T`
/// — is decoded straight from the text, without a value tree in between;
/// anything else takes the checked path, which refuses it naming the field.
pub fn parse_bytes<T: DeserializeOwned>(root: &str, json: &[u8]) -> Result<T> {
    if let Some(text) = plain(json) {
        // Already checked as UTF-8: read as text, not checked again.
        if let Ok(decoded) = serde_json::from_str::<T>(text) {
            return Ok(decoded);
        }
    }
    from_value(root, parse_value_bytes(root, json)?)
}

/// Nesting within which [`plain`] lets a document skip the value tree.
const PLAIN_DEPTH: usize = MAX_DEPTH / 2;

/// The text of JSON bytes that, if they decode as a type, would also pass the checked
/// path unchanged: at most half [`MAX_JSON_BYTES`] (so its text cannot
/// exceed the limit), UTF-8, no `\u` escape that could be a NUL or half of
/// a surrogate pair, and nested at most [`PLAIN_DEPTH`] deep. The last two
/// matter because serde skips a field the type ignores without checking
/// its text or counting its depth. A false alarm (`"\\u0000"` is a
/// backslash and text) only costs the checked path.
fn plain(json: &[u8]) -> Option<&str> {
    if json.len() > MAX_JSON_BYTES / 2 {
        return None;
    }
    let text = std::str::from_utf8(json).ok()?;
    // Backslashes are rare in a request: look at each one rather than build
    // a substring searcher per call (that cost more than the whole scan).
    let suspect = |at: usize| {
        json.get(at + 1) == Some(&b'u')
            && matches!(json.get(at + 2..at + 6), Some(b"0000" | [b'd' | b'D', ..]))
    };
    if memchr::memchr_iter(b'\\', json).any(suspect) {
        return None;
    }
    // Fewer brackets than the limit, counted even inside text, cannot nest
    // deeper than it; only a document with more is read with its strings.
    let brackets = memchr::memchr2_iter(b'[', b'{', json).count();
    (brackets <= PLAIN_DEPTH || nested_within(json, PLAIN_DEPTH)).then_some(text)
}

/// Whether the lists and objects of JSON text nest at most `limit` deep
/// (brackets inside strings do not count).
fn nested_within(json: &[u8], limit: usize) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &byte in json {
        match (in_string, byte) {
            (true, _) if escaped => escaped = false,
            (true, b'\\') => escaped = true,
            (_, b'"') => in_string = !in_string,
            (false, b'[' | b'{') => {
                depth += 1;
                if depth > limit {
                    return false;
                }
            }
            (false, b']' | b'}') => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_place_is_spelled_as_the_checked_walk_names_fields() {
        let root = Place::Root;
        let actor = Place::Key(&root, "actor");
        let capabilities = Place::Key(&actor, "capabilities");
        let second = Place::Index(&capabilities, 1);
        let item = Place::Index(&root, 0);
        let inside = Place::Key(&item, "id");
        assert_eq!(root.field("request"), "request");
        assert_eq!(root.path(), "");
        assert_eq!(actor.field("request"), "actor");
        assert_eq!(second.field("request"), "actor.capabilities[1]");
        assert_eq!(inside.field("requests"), "[0].id");
        // An empty key at the top spells an empty path: the argument is named.
        assert_eq!(Place::Key(&root, "").field("request"), "request");
        // The same document refused by the core's own walk names the same field.
        let doc = json!({"actor": {"capabilities": ["a", "b\u{0}"]}});
        assert_eq!(
            field(check_value("request", &doc).unwrap_err()).0,
            second.field("request")
        );
        let list = json!([{"id": "x\u{0}"}]);
        assert_eq!(
            field(check_value("requests", &list).unwrap_err()).0,
            inside.field("requests")
        );
    }

    fn field(err: Error) -> (String, String) {
        match err {
            Error::InvalidRequest { field, message } => (field, message),
            other => panic!("not invalid_request: {other}"),
        }
    }

    /// Ignores fields it does not know, as the result and run documents do.
    #[derive(Debug, PartialEq, serde::Deserialize)]
    struct Loose {
        id: i64,
        #[serde(default)]
        name: Option<String>,
        #[serde(default)]
        params: Option<Value>,
    }

    fn checked(json: &[u8]) -> Result<Loose> {
        from_value("doc", parse_value_bytes("doc", json)?)
    }

    #[test]
    fn decoding_straight_from_text_answers_as_the_checked_path() {
        let deep = format!(
            "{{\"id\": 1, \"x\": {}{}}}",
            "[".repeat(200),
            "]".repeat(200)
        );
        let cases: Vec<&[u8]> = vec![
            br#"{"id": 1, "name": "a", "params": {"a": [1, {"b": null}], "c": 2.5}}"#,
            br#"{"id": 1, "name": "q\"[[{ \\"}"#,
            // What serde would skip unread in a field the type ignores.
            br#"{"id": 1, "x": "\u0000"}"#,
            br#"{"id": 1, "x": {"k\u0000": 1}}"#,
            br#"{"id": 1, "x": "\ud800"}"#,
            br#"{"id": 1, "x": "\uDC00"}"#,
            b"{\"id\": 1, \"x\": \"\xff\"}",
            deep.as_bytes(),
            // Read fields.
            br#"{"id": 1, "name": "a\u0000"}"#,
            br#"{"id": 1, "name": "\ud83d\ude00"}"#,
            br#"{"id": 1.5}"#,
            br#"{"id": "1"}"#,
            br#"{"id": 1, "id": 2}"#,
            br#"{"name": "a"}"#,
            br#"{"id": 1} x"#,
            br#"{"id": 1, "name": "a\\u0000"}"#,
        ];
        for text in cases {
            let shown = String::from_utf8_lossy(text);
            let fast = parse_bytes::<Loose>("doc", text).map_err(field);
            let slow = checked(text).map_err(field);
            assert_eq!(fast, slow, "{shown}");
        }
        // Those a skipped field could hide are the ones kept off the fast path.
        assert!(parse_bytes::<Loose>("doc", deep.as_bytes()).is_err());
        assert!(parse_bytes::<Loose>("doc", br#"{"id": 1, "x": "\ud800"}"#).is_err());
        let quoted = br#"{"id": 1, "name": "q\"[[{ \\"}"#;
        assert_eq!(plain(quoted).map(str::as_bytes), Some(&quoted[..]));
        assert!(plain(br#"{"x": "\u0000"}"#).is_none());
        assert!(plain(br#"{"x": "\uD800"}"#).is_none());
        assert!(plain(b"{\"x\": \"\xff\"}").is_none());
        assert!(plain(deep.as_bytes()).is_none());
        // Many brackets, inside text or side by side, are not depth.
        let text = format!("{{\"id\": 1, \"name\": \"{}\"}}", "[\\\"{".repeat(100));
        let flat = format!("{{\"id\": 1, \"x\": [{}[]]}}", "[], {}, ".repeat(100));
        assert!(plain(text.as_bytes()).is_some() && plain(flat.as_bytes()).is_some());
        assert_eq!(
            parse_bytes::<Loose>("doc", text.as_bytes()).map_err(field),
            checked(text.as_bytes()).map_err(field)
        );
    }

    #[test]
    fn one_json_value_exactly() {
        for text in ["{} trailing words", "{}}}}", "{} {}", "", "[1,"] {
            let (f, m) = field(parse_value("request", text).expect_err(text));
            assert_eq!(f, "request", "{text}");
            assert!(m.starts_with("not one JSON value"), "{text}: {m}");
        }
        assert_eq!(
            parse_value("request", " {\"a\": 1}\n").unwrap(),
            json!({"a": 1})
        );
    }

    #[test]
    fn text_that_is_not_unicode_names_its_field() {
        for bytes in [
            &b"{\"tenant_id\": \"con\\ud800toso\"}"[..],
            b"{\"tenant_id\": \"\\udfff\"}",
            b"{\"tenant_id\": \"con\xfftoso\"}",
            b"{\"tenant_id\": \"\xed\xa0\x80\"}",
        ] {
            assert_eq!(
                field(parse_value_bytes("request", bytes).unwrap_err()),
                ("tenant_id".into(), "must be valid Unicode text".into()),
                "{}",
                String::from_utf8_lossy(bytes)
            );
        }
        let nested = b"{\"actor\": {\"capabilities\": [\"ok\", \"\\ud800\"]}}";
        assert_eq!(
            field(parse_value_bytes("request", nested).unwrap_err()).0,
            "actor.capabilities[1]"
        );
        // A pair of surrogates is one character, and fine.
        let pair = parse_value_bytes("request", b"\"\\ud83d\\ude00\"").unwrap();
        assert_eq!(pair, json!("\u{1F600}"));
    }

    #[test]
    fn nul_anywhere_is_refused_with_its_path() {
        let doc = json!({"params": {"deep": [{"x\u{0}y": 1}]}, "tenant_id": "a"});
        assert_eq!(
            field(check_value("request", &doc).unwrap_err()),
            (
                "params.deep[0].x\u{0}y".into(),
                "must not contain NUL characters".into()
            )
        );
        let doc = json!({"params": {"deep": ["a\u{0}"]}});
        assert_eq!(
            field(check_value("request", &doc).unwrap_err()).0,
            "params.deep[0]"
        );
        assert_eq!(
            field(check_value("request", &json!("\u{0}")).unwrap_err()).0,
            "request"
        );
    }

    #[test]
    fn the_allocation_free_check_agrees_with_the_walk() {
        let mut deep = json!("leaf");
        for _ in 0..MAX_DEPTH {
            deep = json!([deep]);
        }
        let mut just_deep_enough = json!("leaf");
        for _ in 0..MAX_DEPTH - 1 {
            just_deep_enough = json!({ "k": just_deep_enough });
        }
        let large = json!({ "text": "x".repeat(MAX_JSON_BYTES / 2 + 1) });
        for value in [
            json!({"actor": {"id": "a", "capabilities": ["x", "y"]}, "params": {"n": [1, 2.5, null]}}),
            json!({"a": ["fine", "nul\u{0}inside"]}),
            json!({"key\u{0}": 1}),
            json!("plain"),
            deep,
            just_deep_enough,
            large,
        ] {
            let walked = walk("doc", String::new(), &value);
            let shown = serde_json::to_string(&value).unwrap();
            let shown: String = shown.chars().take(80).collect();
            // Passing the quick check means the walk passes too (a large
            // document is left to the walk, which measures it exactly)...
            assert!(!passes(&value) || walked.is_ok(), "{shown}");
            // ...so checking answers exactly what the walk answers.
            assert_eq!(
                check_value("doc", &value).map_err(|e| e.to_string()),
                walked.map_err(|e| e.to_string()),
                "{shown}"
            );
        }
    }

    #[test]
    fn depth_is_limited_the_same_way_for_text_and_values() {
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 5), "]".repeat(MAX_DEPTH + 5));
        let from_text = field(parse_value("request", &deep).unwrap_err());
        let mut value = json!(1);
        for _ in 0..MAX_DEPTH + 5 {
            value = json!([value]);
        }
        let from_value = field(check_value("request", &value).unwrap_err());
        assert_eq!(from_text, from_value);
        assert_eq!(from_text.1, "is nested deeper than 128 levels");
        let mut ok = json!(1);
        for _ in 0..MAX_DEPTH {
            ok = json!([ok]);
        }
        assert!(check_value("request", &ok).is_ok());
    }

    #[test]
    fn size_is_limited_the_same_way_for_text_and_values() {
        let big = json!({"subject": "x".repeat(MAX_JSON_BYTES + 1)});
        let from_value = field(check_value("request", &big).unwrap_err());
        let from_text = field(parse_value("request", &big.to_string()).unwrap_err());
        assert_eq!(from_value, from_text);
        assert_eq!(from_value.0, "request");
        let fits = json!({"subject": "x".repeat(MAX_JSON_BYTES - 100)});
        assert!(check_value("request", &fits).is_ok());
    }

    #[test]
    fn integers_are_exact() {
        assert_eq!(integer("run_id", &json!(7)).unwrap(), 7);
        for (value, message) in [
            (json!(1.5), "expected an integer, found 1.5"),
            (json!(1.0), "expected an integer, found 1.0"),
            (json!("1"), "expected an integer, found the string \"1\""),
            (json!(true), "expected an integer, found true"),
            (json!(null), "expected an integer, found null"),
            (
                json!(9_223_372_036_854_775_808u64),
                "expected an integer from -9223372036854775808 to 9223372036854775807, found 9223372036854775808",
            ),
        ] {
            assert_eq!(
                field(integer("run_id", &value).unwrap_err()),
                ("run_id".into(), message.into())
            );
        }
    }
}
