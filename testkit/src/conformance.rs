//! What every conformance runner shares (tests/conformance/README.md): the
//! scenario files, saved variables, the matching rules, the error checks,
//! and the tags that stand for values a JSON file cannot hold.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::Value;

use crate::repo_root;

/// The keys of a call that are expectations, not arguments.
pub const EXPECTATION_KEYS: [&str; 7] = [
    "expect",
    "expect_error",
    "expect_message",
    "expect_field",
    "present",
    "present_run",
    "save",
];

/// The folder of the vectors.
pub fn vectors_dir() -> PathBuf {
    repo_root().join("tests/conformance")
}

/// Every scenario file, in name order.
pub fn scenario_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(vectors_dir())
        .expect("tests/conformance exists")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
}

/// A call's arguments: the call without its expectations and its name.
pub fn arguments(call: &Value) -> Value {
    let mut args = call.clone();
    if let Value::Object(map) = &mut args {
        for key in EXPECTATION_KEYS {
            map.remove(key);
        }
        map.remove("call");
    }
    args
}

/// Replaces every string that is exactly `$name` with the saved value, and
/// every `${name}` inside a longer string with the value's text.
pub fn substitute(value: &Value, vars: &BTreeMap<String, Value>) -> Result<Value, String> {
    Ok(match value {
        Value::String(s) if s.starts_with('$') && !s.starts_with("${") && s.len() > 1 => vars
            .get(&s[1..])
            .cloned()
            .ok_or_else(|| format!("variable {s} was never saved"))?,
        Value::String(s) if s.contains("${") => {
            let mut out = String::new();
            let mut rest = s.as_str();
            while let Some(start) = rest.find("${") {
                out.push_str(&rest[..start]);
                let end = rest[start..]
                    .find('}')
                    .ok_or_else(|| format!("unclosed ${{ in {s:?}"))?;
                let name = &rest[start + 2..start + end];
                match vars.get(name) {
                    Some(Value::String(text)) => out.push_str(text),
                    Some(other) => out.push_str(&other.to_string()),
                    None => return Err(format!("variable ${name} was never saved")),
                }
                rest = &rest[start + end + 1..];
            }
            out.push_str(rest);
            Value::String(out)
        }
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| substitute(v, vars))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), substitute(v, vars)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => other.clone(),
    })
}

/// The value at a dot-separated path of keys and list indexes.
pub fn lookup<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.')
        .try_fold(value, |v, key| match key.parse::<usize>() {
            Ok(index) => v.get(index),
            Err(_) => v.get(key),
        })
}

/// The matching rules of tests/conformance/README.md.
pub fn matches(expected: &Value, actual: &Value, path: &str) -> Result<(), String> {
    match expected {
        Value::String(s) if s == "<any>" => {
            if actual.is_null() {
                Err(format!("{path}: expected a value, found null"))
            } else {
                Ok(())
            }
        }
        Value::Object(fields) => {
            for (key, want) in fields {
                let got = actual.get(key).unwrap_or(&Value::Null);
                matches(want, got, &format!("{path}.{key}"))?;
            }
            if actual.is_object() || fields.is_empty() {
                Ok(())
            } else {
                Err(format!("{path}: expected an object, found {actual}"))
            }
        }
        Value::Array(items) => {
            let got = actual
                .as_array()
                .ok_or_else(|| format!("{path}: expected a list, found {actual}"))?;
            if got.len() != items.len() {
                return Err(format!(
                    "{path}: expected {} item(s), found {}: {actual}",
                    items.len(),
                    got.len()
                ));
            }
            for (i, (want, have)) in items.iter().zip(got).enumerate() {
                matches(want, have, &format!("{path}[{i}]"))?;
            }
            Ok(())
        }
        want => {
            if want == actual {
                Ok(())
            } else {
                Err(format!("{path}: expected {want}, found {actual}"))
            }
        }
    }
}

/// Checks an error (`{"code", "message", "field"?}`) against a call's
/// `expect_error`, `expect_message` and `expect_field`: the code, the
/// message's words, and the field, both as the error's `field` and as it is
/// named in the message (`…: tenant_id: …`).
pub fn check_error(call: &Value, error: &Value) -> Result<(), String> {
    let want = call
        .get("expect_error")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("unexpected error {error}"))?;
    let code = error.get("code").and_then(Value::as_str).unwrap_or("");
    if code != want {
        return Err(format!("expected error {want}, got {error}"));
    }
    let message = error.get("message").and_then(Value::as_str).unwrap_or("");
    if let Some(part) = call.get("expect_message").and_then(Value::as_str) {
        if !message.contains(part) {
            return Err(format!("error message {message:?} lacks {part:?}"));
        }
    }
    if let Some(field) = call.get("expect_field").and_then(Value::as_str) {
        if !message.contains(&format!(": {field}: ")) {
            return Err(format!("error message {message:?} does not name {field:?}"));
        }
        if code == "invalid_request" && error.get("field").and_then(Value::as_str) != Some(field) {
            return Err(format!(
                "error field is {:?}, not {field:?}",
                error.get("field")
            ));
        }
    }
    Ok(())
}

/// What follows a call that succeeded: its `save`s (into `vars`), and its
/// `expect`, `present` and `present_run` checks. `present(function, doc)`
/// asks the surface for the presentation of a start result (`"present"`) or
/// a run (`"present_run"`).
pub fn after_success(
    raw: &Value,
    result: &Value,
    vars: &mut BTreeMap<String, Value>,
    present: impl Fn(&str, &Value) -> Result<Value, String>,
) -> Result<(), String> {
    if let Some(code) = raw.get("expect_error") {
        return Err(format!("expected error {code}, got success {result}"));
    }
    if let Some(Value::Object(saves)) = raw.get("save") {
        for (var, path) in saves {
            let path = path.as_str().ok_or("save paths are strings")?;
            let value = lookup(result, path)
                .ok_or_else(|| format!("nothing at {path} to save as {var}"))?;
            vars.insert(var.clone(), value.clone());
        }
    }
    if let Some(expected) = raw.get("expect") {
        matches(&substitute(expected, vars)?, result, "result")?;
    }
    if let Some(expected) = raw.get("present") {
        let shown = present("present", result)?;
        matches(&substitute(expected, vars)?, &shown, "presentation")?;
    }
    if let Some(expected) = raw.get("present_run") {
        let run = match raw.get("call").and_then(Value::as_str) {
            Some("complete" | "cancel") => result.get("run").unwrap_or(&Value::Null),
            _ => result,
        };
        let shown = present("present_run", run)?;
        matches(&substitute(expected, vars)?, &shown, "presentation")?;
    }
    Ok(())
}

/// Whether `value` holds a tag at all.
pub fn has_tags(value: &Value) -> bool {
    match value {
        Value::Object(map) => tag(map).is_some() || map.values().any(has_tags),
        Value::Array(items) => items.iter().any(has_tags),
        _ => false,
    }
}

/// Whether `value` holds a `$number` tag (NaN, an infinity), which JSON
/// text cannot express: a surface that speaks only JSON text skips the call.
pub fn has_number_tag(value: &Value) -> bool {
    match value {
        Value::Object(map) => {
            matches!(tag(map), Some(("$number", _))) || map.values().any(has_number_tag)
        }
        Value::Array(items) => items.iter().any(has_number_tag),
        _ => false,
    }
}

fn tag(map: &serde_json::Map<String, Value>) -> Option<(&str, &Value)> {
    if map.len() != 1 {
        return None;
    }
    let (key, value) = map.iter().next()?;
    matches!(key.as_str(), "$text" | "$number" | "$nest" | "$repeat")
        .then_some((key.as_str(), value))
}

/// JSON text of `value`, tags expanded the way a JSON-text surface (Rust's
/// `from_json`, the C ABI) receives them: `$text` as a string with `\uXXXX`
/// escapes (so a lone surrogate is in the text), `$nest` as nested lists,
/// `$repeat` as a long string. `$number` cannot be written: check
/// [`has_number_tag`] first.
pub fn json_text(value: &Value) -> String {
    let mut out = String::new();
    write_json(value, &mut out);
    out
}

fn write_json(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => match tag(map) {
            Some(("$text", Value::Array(parts))) => {
                out.push('"');
                for part in parts {
                    match part {
                        Value::String(s) => {
                            let quoted = Value::String(s.clone()).to_string();
                            out.push_str(&quoted[1..quoted.len() - 1]);
                        }
                        Value::Number(n) => {
                            out.push_str(&format!("\\u{:04x}", n.as_u64().unwrap_or(0)))
                        }
                        _ => {}
                    }
                }
                out.push('"');
            }
            Some(("$nest", depth)) => {
                let depth = depth.as_u64().unwrap_or(0) as usize;
                out.push_str(&"[".repeat(depth));
                out.push_str(&"]".repeat(depth));
            }
            Some(("$repeat", Value::Array(spec))) => {
                let text = spec.first().and_then(Value::as_str).unwrap_or("");
                let times = spec.get(1).and_then(Value::as_u64).unwrap_or(0) as usize;
                out.push_str(&Value::String(text.repeat(times)).to_string());
            }
            _ => {
                out.push('{');
                for (i, (key, item)) in map.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&Value::String(key.clone()).to_string());
                    out.push(':');
                    write_json(item, out);
                }
                out.push('}');
            }
        },
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tags_expand_to_json_text() {
        let args = json!({"a": {"$text": ["x\"", 55296, "y"]}, "b": {"$nest": 3}, "c": {"$repeat": ["ab", 2]}, "d": [1]});
        assert_eq!(
            json_text(&args),
            r#"{"a":"x\"\ud800y","b":[[[]]],"c":"abab","d":[1]}"#
        );
        assert!(has_tags(&args) && !has_number_tag(&args));
        assert!(has_number_tag(&json!({"run_id": {"$number": "NaN"}})));
    }
}
