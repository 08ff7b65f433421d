//! Handles. A `startgate_gate *` is only ever used as a key into a registry of
//! live handles, never dereferenced, so a freed, closed or foreign pointer gets
//! a clear error instead of undefined behaviour. Each handle holds a
//! [`ProcessGate`], which makes it safe to use after `fork()`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use startgate_core::json::OpenOptions;
use startgate_core::{Error, Gate, Registry};
use startgate_host::ProcessGate;

use super::{invalid, startgate_gate};

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Plain inserts and removes: a poisoned lock still holds consistent data.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A live handle, found by the address of its `startgate_gate`.
pub(crate) struct Handle {
    shared: Arc<ProcessGate>,
    is_shared: bool,
    closed: AtomicBool,
}

fn handles() -> &'static Mutex<HashMap<usize, Arc<Handle>>> {
    static HANDLES: OnceLock<Mutex<HashMap<usize, Arc<Handle>>>> = OnceLock::new();
    HANDLES.get_or_init(|| Mutex::new(HashMap::new()))
}

fn shared_gates() -> &'static Mutex<HashMap<String, Arc<ProcessGate>>> {
    static SHARED: OnceLock<Mutex<HashMap<String, Arc<ProcessGate>>>> = OnceLock::new();
    SHARED.get_or_init(|| Mutex::new(HashMap::new()))
}

impl Handle {
    /// Opens (or, with `"share": true`, reuses) a gate and registers a handle.
    pub(crate) fn open(
        url: &str,
        registry_toml: &str,
        options_json: &str,
    ) -> Result<*mut startgate_gate, Error> {
        let (share, rest) = split_share(options_json)?;
        let open = OpenOptions::from_json(&rest)?;
        let options = open.to_gate_options()?;
        let registry = Registry::from_toml_str(registry_toml)?;
        // A manual clock is per gate: never shared.
        let share = share && open.manual_clock.is_none();
        let shared = if share {
            let key = format!("{url}\u{0}{registry_toml}\u{0}{rest}");
            let mut cache = lock(shared_gates());
            match cache.get(&key) {
                Some(existing) => existing.clone(),
                None => {
                    let opened = Arc::new(ProcessGate::open(url, registry, options)?);
                    cache.insert(key, opened.clone());
                    opened
                }
            }
        } else {
            Arc::new(ProcessGate::open(url, registry, options)?)
        };
        let pointer = Box::into_raw(Box::new(startgate_gate { _private: 0 }));
        let handle = Arc::new(Handle {
            shared,
            is_shared: share,
            closed: AtomicBool::new(false),
        });
        lock(handles()).insert(pointer as usize, handle);
        Ok(pointer)
    }

    /// The live handle behind `pointer`.
    pub(crate) fn lookup(pointer: *const startgate_gate) -> Result<Arc<Handle>, Error> {
        if pointer.is_null() {
            return Err(invalid("gate", "must not be NULL"));
        }
        lock(handles())
            .get(&(pointer as usize))
            .cloned()
            .ok_or_else(|| {
                invalid(
                    "gate",
                    "is not a live startgate_gate (freed, or not from startgate_open)",
                )
            })
    }

    /// The gate to call, reopened in a forked child.
    pub(crate) fn gate(&self) -> Result<Gate, Error> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(startgate_host::closed_error());
        }
        self.shared.gate()
    }

    /// Closes this handle (and its pool, unless shared).
    pub(crate) fn close(&self) -> Result<(), Error> {
        if self.closed.swap(true, Ordering::SeqCst) || self.is_shared {
            return Ok(());
        }
        self.shared.close()
    }

    /// Unregisters and frees a handle; unknown pointers are ignored.
    pub(crate) fn release(pointer: *mut startgate_gate) {
        if pointer.is_null() {
            return;
        }
        let removed = lock(handles()).remove(&(pointer as usize));
        if let Some(handle) = removed {
            let _ = handle.close();
            // SAFETY: the pointer was registered by `open`, which made it with
            // `Box::into_raw`, and it was still registered: freed exactly once.
            drop(unsafe { Box::from_raw(pointer) });
        }
    }
}

/// Takes the FFI-only `share` flag out of the options object.
fn split_share(options_json: &str) -> Result<(bool, String), Error> {
    let trimmed = options_json.trim();
    if trimmed.is_empty() || trimmed == "null" {
        return Ok((false, String::new()));
    }
    let mut value: serde_json::Value = serde_json::from_str(trimmed)
        .map_err(|e| invalid("options_json", &format!("is not JSON: {e}")))?;
    let Some(map) = value.as_object_mut() else {
        return Err(invalid("options_json", "must be a JSON object"));
    };
    let share = match map.remove("share") {
        None | Some(serde_json::Value::Null) => false,
        Some(serde_json::Value::Bool(b)) => b,
        Some(other) => {
            return Err(invalid(
                "share",
                &format!("expected true or false, found {other}"),
            ))
        }
    };
    Ok((share, value.to_string()))
}
