//! The C ABI entry points with hostile arguments: bytes that are not UTF-8,
//! truncated or malformed JSON, NULLs in every pointer position, a closed
//! handle and a pointer that is no handle at all. Every call must return a
//! status with an error object (or succeed), never crash, hang or leak.
//! The ABI is compiled into this target from `ffi/src` so that libFuzzer
//! sees its coverage.
#![no_main]

#[allow(dead_code, clippy::all)]
#[path = "../../ffi/src/lib.rs"]
mod ffi;

use std::ffi::{c_char, CString};
use std::ptr;
use std::sync::OnceLock;

use ffi::*;
use libfuzzer_sys::fuzz_target;

const REGISTRY: &str = include_str!("../../examples/registry.toml");

struct Gates {
    live: usize,
    closed: usize,
}

fn gates() -> &'static Gates {
    static GATES: OnceLock<Gates> = OnceLock::new();
    GATES.get_or_init(|| {
        let open = || {
            let url = CString::new("sqlite::memory:").expect("url");
            let registry = CString::new(REGISTRY).expect("registry");
            let mut gate = ptr::null_mut();
            let mut error = ptr::null_mut();
            // SAFETY: valid strings and out-pointers.
            let status = unsafe {
                startgate_open(
                    url.as_ptr(),
                    registry.as_ptr(),
                    ptr::null(),
                    &mut gate,
                    &mut error,
                )
            };
            assert_eq!(status, startgate_status::STARTGATE_OK);
            // SAFETY: a live handle.
            let status = unsafe { startgate_migrate(gate, &mut error) };
            assert_eq!(status, startgate_status::STARTGATE_OK);
            gate
        };
        let live = open();
        let closed = open();
        // SAFETY: a live handle; closing keeps it registered but unusable.
        unsafe { startgate_close(closed, ptr::null_mut()) };
        Gates {
            live: live as usize,
            closed: closed as usize,
        }
    })
}

/// Up to the first NUL, as a C string would be read.
fn c_string(bytes: &[u8]) -> CString {
    let end = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
    CString::new(&bytes[..end]).unwrap_or_default()
}

/// Checks the status/error/output contract of one call and frees what it gave.
fn settle(
    status: startgate_status,
    out: *mut c_char,
    error: *mut startgate_error,
    error_wanted: bool,
) {
    if !error_wanted {
        assert!(error.is_null());
    } else if status == startgate_status::STARTGATE_OK {
        assert!(error.is_null(), "success with an error object");
    } else {
        assert!(out.is_null(), "failure wrote an output");
        assert!(!error.is_null(), "failure without an error object");
        // SAFETY: an error object from this library.
        unsafe {
            assert!(!startgate_error_code(error).is_null());
            assert!(!startgate_error_message(error).is_null());
        }
    }
    // SAFETY: outputs of this library, freed once; both accept NULL.
    unsafe {
        startgate_string_free(out);
        startgate_error_free(error);
    }
}

const METHODS: [&str; 8] = [
    "start",
    "check",
    "start_sequence",
    "complete",
    "upsert_connection",
    "list_runs",
    "present",
    "frobnicate",
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let gates = gates();
    let foreign = 0xdead_beef_u64;
    let gate: *const startgate_gate = match selector >> 6 {
        0 | 1 => gates.live as *const _,
        2 => gates.closed as *const _,
        _ if selector & 0x20 != 0 => ptr::null(),
        _ => &foreign as *const u64 as *const startgate_gate,
    };
    let json = c_string(rest);
    // Bit 4: the JSON argument is NULL.
    let json_ptr = if selector & 0x10 != 0 {
        ptr::null()
    } else {
        json.as_ptr()
    };
    let mut out: *mut c_char = ptr::null_mut();
    let mut error: *mut startgate_error = ptr::null_mut();
    // SAFETY: every pointer is NULL, a live/closed handle, a foreign pointer
    // the ABI must reject without dereferencing, or valid for the call.
    let status = unsafe {
        match selector & 0x0f {
            0 => startgate_start(gate, json_ptr, &mut out, &mut error),
            1 => startgate_check(gate, json_ptr, &mut out, &mut error),
            2 => startgate_start_sequence(gate, json_ptr, &mut out, &mut error),
            3 => startgate_complete(gate, json_ptr, &mut out, &mut error),
            4 => startgate_upsert_connection(gate, json_ptr, &mut out, &mut error),
            5 => startgate_list_runs(gate, json_ptr, &mut out, &mut error),
            6 => startgate_present(gate, json_ptr, &mut out, &mut error),
            7 => startgate_present_run(gate, json_ptr, &mut out, &mut error),
            8 => {
                let method = CString::new(METHODS[rest.len() % METHODS.len()]).expect("method");
                startgate_call(gate, method.as_ptr(), json_ptr, &mut out, &mut error)
            }
            9 => startgate_get_run(gate, i64::from_le_bytes(eight(rest)), &mut out, &mut error),
            10 => startgate_mark_running(
                gate,
                i64::from_le_bytes(eight(rest)),
                i64::from(selector),
                &mut out,
                &mut error,
            ),
            11 => {
                // Opening: the bytes split into URL and registry at the first 0xff.
                let split = rest.iter().position(|b| *b == 0xff).unwrap_or(rest.len());
                let url = c_string(&rest[..split]);
                let registry = c_string(rest.get(split + 1..).unwrap_or_default());
                // Only in-memory databases: the fuzzer must not litter files.
                let url = if url.to_bytes().starts_with(b"sqlite::memory:") {
                    url
                } else {
                    CString::new("sqlite::memory:").expect("url")
                };
                let mut opened = ptr::null_mut();
                let status = startgate_open(
                    url.as_ptr(),
                    registry.as_ptr(),
                    json_ptr,
                    &mut opened,
                    &mut error,
                );
                if status == startgate_status::STARTGATE_OK {
                    assert!(!opened.is_null());
                    startgate_free(opened);
                } else {
                    assert!(opened.is_null(), "failed open wrote a handle");
                }
                status
            }
            // Output pointers that are NULL.
            12 | 13 | 14 => startgate_start(gate, json_ptr, ptr::null_mut(), &mut error),
            _ => startgate_start(gate, json_ptr, &mut out, ptr::null_mut()),
        }
    };
    // Case 15 passed no error out-pointer: nothing to check there.
    settle(status, out, error, selector & 0x0f != 15);
});

fn eight(bytes: &[u8]) -> [u8; 8] {
    let mut buf = [0u8; 8];
    for (slot, byte) in buf.iter_mut().zip(bytes) {
        *slot = *byte;
    }
    buf
}
