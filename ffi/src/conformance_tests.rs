//! The conformance vectors through the C ABI: every call goes through the
//! exported `extern "C"` functions with NUL-terminated byte strings, as a C
//! host makes it (documents through their own functions, everything else
//! through `startgate_call`), and errors are read back through the error
//! object's accessors. `$number` tags (NaN, infinities) cannot be written as
//! JSON text, so those calls are skipped here, as on every JSON-text surface.

use std::collections::BTreeMap;
use std::ffi::{c_char, CStr, CString};
use std::path::Path;
use std::ptr;

use serde_json::{json, Value};
use startgate_testkit::conformance::{
    after_success, arguments, check_error, has_number_tag, json_text, scenario_files, substitute,
    vectors_dir,
};
use startgate_testkit::{PgTestDb, TempDb};

use super::*;

fn c(text: &str) -> CString {
    // JSON text escapes NUL, so there is never one to refuse here.
    CString::new(text).expect("no NUL in JSON text")
}

/// Reads and frees an error object.
unsafe fn error_of(error: *mut startgate_error) -> Value {
    let text = |p: *const c_char| {
        (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
    };
    let value = unsafe {
        json!({
            "code": text(startgate_error_code(error)),
            "message": text(startgate_error_message(error)),
            "field": text(startgate_error_field(error)),
        })
    };
    unsafe { startgate_error_free(error) };
    value
}

/// Settles a JSON-returning call.
unsafe fn settle(
    call: impl FnOnce(*mut *mut c_char, *mut *mut startgate_error) -> startgate_status,
) -> Result<Value, Value> {
    let mut out: *mut c_char = ptr::null_mut();
    let mut error: *mut startgate_error = ptr::null_mut();
    let status = call(&mut out, &mut error);
    if status != startgate_status::STARTGATE_OK {
        return Err(unsafe { error_of(error) });
    }
    let text = unsafe { CStr::from_ptr(out) }
        .to_string_lossy()
        .into_owned();
    unsafe { startgate_string_free(out) };
    serde_json::from_str(&text).map_err(|e| json!({"code": "runner", "message": e.to_string()}))
}

unsafe fn open_json(document: &Value) -> Result<*mut startgate_gate, Value> {
    let text = c(&json_text(document));
    let mut gate = ptr::null_mut();
    let mut error = ptr::null_mut();
    let status = unsafe { startgate_open_json(text.as_ptr(), &mut gate, &mut error) };
    if status == startgate_status::STARTGATE_OK {
        Ok(gate)
    } else {
        Err(unsafe { error_of(error) })
    }
}

fn registry_path(name: &str) -> String {
    vectors_dir().join(name).to_string_lossy().into_owned()
}

unsafe fn invoke(gate: *mut startgate_gate, name: &str, call: &Value) -> Result<Value, Value> {
    let doc = |key: &str| c(&json_text(&call[key]));
    unsafe {
        match name {
            "start" => {
                let d = doc("request");
                settle(|o, e| startgate_start(gate, d.as_ptr(), o, e))
            }
            "check" => {
                let d = doc("requests");
                settle(|o, e| startgate_check(gate, d.as_ptr(), o, e))
            }
            "start_sequence" => {
                let d = doc("request");
                settle(|o, e| startgate_start_sequence(gate, d.as_ptr(), o, e))
            }
            "complete" => {
                let d = doc("completion");
                settle(|o, e| startgate_complete(gate, d.as_ptr(), o, e))
            }
            "upsert_connection" => {
                let d = doc("connection");
                settle(|o, e| startgate_upsert_connection(gate, d.as_ptr(), o, e))
            }
            "list_runs" => match call.get("filter") {
                Some(filter) => {
                    let d = c(&json_text(filter));
                    settle(|o, e| startgate_list_runs(gate, d.as_ptr(), o, e))
                }
                None => settle(|o, e| startgate_list_runs(gate, ptr::null(), o, e)),
            },
            "open" => {
                let mut document = json!({"url": call["url"], "share": false});
                if let Some(path) = call["registry"].as_str() {
                    document["registry"] = json!(registry_path(path));
                }
                if let Some(text) = call.get("registry_toml") {
                    document["registry_toml"] = text.clone();
                }
                let opened = open_json(&document)?;
                startgate_free(opened);
                Ok(Value::Null)
            }
            method => {
                let m = c(method);
                let args = c(&json_text(call));
                settle(|o, e| startgate_call(gate, m.as_ptr(), args.as_ptr(), o, e))
            }
        }
    }
}

unsafe fn present(gate: *mut startgate_gate, function: &str, doc: &Value) -> Result<Value, String> {
    let d = c(&doc.to_string());
    let answer = unsafe {
        if function == "present" {
            settle(|o, e| startgate_present(gate, d.as_ptr(), o, e))
        } else {
            settle(|o, e| startgate_present_run(gate, d.as_ptr(), o, e))
        }
    };
    answer.map_err(|e| e.to_string())
}

/// What a scenario runs against; `host` is a host-view database, where
/// connections are the host's to write (tests/conformance/host_view.sql).
struct Target<'a> {
    url: String,
    migrate: bool,
    host: Option<(&'a PgTestDb, &'a tokio::runtime::Runtime)>,
}

fn run_file(file: &Path, target: &Target<'_>) -> Result<(), String> {
    let url = target.url.as_str();
    let scenario: Value =
        serde_json::from_str(&std::fs::read_to_string(file).map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    let mut open = json!({
        "url": url,
        "share": false,
        "manual_clock": scenario.get("clock").cloned().unwrap_or(json!("2026-01-01T09:00:00Z")),
    });
    match (scenario.get("registry"), scenario.get("registry_toml")) {
        (Some(Value::String(name)), _) => open["registry"] = json!(registry_path(name)),
        (_, Some(text)) => open["registry_toml"] = text.clone(),
        _ => return Err("no registry".into()),
    }
    // SAFETY: every pointer handed over is valid for the call; the gate is
    // freed once, at the end.
    unsafe {
        let gate = open_json(&open).map_err(|e| format!("open: {e}"))?;
        let outcome = run_calls(gate, &scenario, target);
        startgate_free(gate);
        outcome
    }
}

unsafe fn run_calls(
    gate: *mut startgate_gate,
    scenario: &Value,
    target: &Target<'_>,
) -> Result<(), String> {
    unsafe {
        if target.migrate {
            let mut error = ptr::null_mut();
            if startgate_migrate(gate, &mut error) != startgate_status::STARTGATE_OK {
                return Err(format!("migrate: {}", error_of(error)));
            }
        }
        for connection in scenario["connections"].as_array().into_iter().flatten() {
            if let Some((db, runtime)) = target.host {
                runtime.block_on(db.host_save_connection(connection))?;
                continue;
            }
            let d = c(&connection.to_string());
            settle(|o, e| startgate_upsert_connection(gate, d.as_ptr(), o, e))
                .map_err(|e| format!("connection: {e}"))?;
        }
        let mut vars: BTreeMap<String, Value> = BTreeMap::new();
        for (i, raw) in scenario["calls"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            let name = raw["call"].as_str().unwrap_or("?");
            let context = |msg: String| format!("calls[{i}] ({name}): {msg}");
            let mut call = substitute(&arguments(raw), &vars).map_err(context)?;
            if has_number_tag(&call) {
                continue;
            }
            let mut name = name;
            if let (Some((db, runtime)), "upsert_connection") = (target.host, name) {
                if raw.get("expect_error").is_some() {
                    continue; // the gate's own table's validation: not this setup's subject
                }
                runtime
                    .block_on(db.host_save_connection(&call["connection"]))
                    .map_err(context)?;
                call = json!({"tenant_id": call["connection"]["tenant_id"], "id": call["connection"]["id"]});
                name = "get_connection";
            }
            let result = match invoke(gate, name, &call) {
                Err(err) => {
                    check_error(raw, &err).map_err(context)?;
                    continue;
                }
                Ok(value) => value,
            };
            let shown = |function: &str, doc: &Value| present(gate, function, doc);
            after_success(raw, &result, &mut vars, shown).map_err(context)?;
        }
    }
    Ok(())
}

fn run_all<'a>(target_for: impl Fn() -> Target<'a>, after_each: impl Fn()) -> usize {
    let mut failures = Vec::new();
    let files = scenario_files();
    for file in &files {
        if let Err(message) = run_file(file, &target_for()) {
            failures.push(format!("{}: {message}", file.display()));
        }
        after_each();
    }
    assert!(
        failures.is_empty(),
        "{} scenario(s) failed:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    files.len()
}

#[test]
fn conformance_vectors_pass_through_the_c_abi_on_sqlite() {
    // Each scenario's file is removed when the test ends.
    let files = std::cell::RefCell::new(Vec::new());
    let ran = run_all(
        || {
            let db = TempDb::new("c-conformance");
            let url = db.url();
            files.borrow_mut().push(db);
            Target {
                url,
                migrate: true,
                host: None,
            }
        },
        || {},
    );
    assert!(ran >= 30, "only {ran} scenarios");
}

#[test]
fn conformance_vectors_pass_through_the_c_abi_on_postgres() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let db = runtime.block_on(PgTestDb::create("c_conformance"));
    let url = db.url();
    let migrated = std::cell::Cell::new(false);
    let ran = run_all(
        || Target {
            url: url.clone(),
            migrate: !migrated.replace(true),
            host: None,
        },
        || runtime.block_on(db.reset()),
    );
    runtime.block_on(db.drop_now());
    assert!(ran >= 30, "only {ran} scenarios");
}

#[test]
fn conformance_vectors_pass_through_the_c_abi_with_facts_from_a_host_view() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let db = runtime.block_on(PgTestDb::create("c_host_view"));
    // SAFETY: valid documents and out-pointers; the gate is freed once.
    unsafe {
        let gate = open_json(&json!({"url": db.url(), "registry_toml": "", "share": false}))
            .expect("open");
        let mut error = ptr::null_mut();
        assert_eq!(
            startgate_migrate(gate, &mut error),
            startgate_status::STARTGATE_OK
        );
        startgate_free(gate);
    }
    runtime.block_on(db.use_host_view());
    let ran = run_all(
        || Target {
            url: db.url(),
            migrate: false,
            host: Some((&db, &runtime)),
        },
        || runtime.block_on(db.reset()),
    );
    runtime.block_on(db.drop_now());
    assert!(ran >= 30, "only {ran} scenarios");
}
