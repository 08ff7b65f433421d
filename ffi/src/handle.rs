//! Handles, the process's runtime, and fork safety.
//!
//! A `startgate_gate *` is only ever used as a key into a registry of live
//! handles, never dereferenced, so a freed, closed or foreign pointer gets a
//! clear error instead of undefined behaviour.
//!
//! After `fork()` the child must not touch the parent's runtime or pool (their
//! threads do not exist in the child; PostgreSQL connections would be shared
//! with the parent). Every call compares the process id with the one the gate
//! was opened in; in a new process it leaks the parent's runtime and gate
//! (dropping them could join threads that are gone) and opens fresh ones.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use startgate_core::json::OpenOptions;
use startgate_core::{Error, Gate, GateOptions, Registry};
use tokio::runtime::Runtime;

use crate::{invalid, startgate_gate};

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these locks leaves consistent data behind
    // (plain inserts and removes), so a poisoned lock is still usable.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// What a forked child inherited from its parent and must never drop: the
/// parent's runtimes and gates (dropping them would join threads or close
/// connections that belong to the parent). Kept here, reachable, on purpose.
enum Inherited {
    Runtime(#[allow(dead_code)] &'static Runtime),
    Gate(#[allow(dead_code)] Gate),
}

fn keep_inherited(item: Inherited) {
    static INHERITED: Mutex<Vec<Inherited>> = Mutex::new(Vec::new());
    lock(&INHERITED).push(item);
}

/// The runtime of the current process, created on first use and again in a
/// forked child. Never dropped.
pub(crate) fn runtime() -> Result<&'static Runtime, Error> {
    static RUNTIME: Mutex<Option<(u32, &'static Runtime)>> = Mutex::new(None);
    let mut slot = lock(&RUNTIME);
    let pid = std::process::id();
    if let Some((owner, runtime)) = *slot {
        if owner == pid {
            return Ok(runtime);
        }
        keep_inherited(Inherited::Runtime(runtime));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("startgate")
        .enable_all()
        .build()
        .map_err(|e| Error::Internal {
            message: format!("cannot start the async runtime: {e}"),
        })?;
    let runtime: &'static Runtime = Box::leak(Box::new(runtime));
    *slot = Some((pid, runtime));
    Ok(runtime)
}

/// What an open gate is made of, re-openable in a forked child.
struct Shared {
    url: String,
    registry: Registry,
    options: GateOptions,
    state: Mutex<State>,
}

struct State {
    pid: u32,
    gate: Option<Gate>,
    closed: bool,
}

fn closed_error() -> Error {
    Error::StoreUnavailable {
        message: "the gate was closed".into(),
        source: None,
    }
}

impl Shared {
    fn gate(&self) -> Result<Gate, Error> {
        let mut state = lock(&self.state);
        if state.closed {
            return Err(closed_error());
        }
        let pid = std::process::id();
        if state.pid != pid {
            // Forked: the parent's pool belongs to the parent. Leave it alone.
            if let Some(inherited) = state.gate.take() {
                keep_inherited(Inherited::Gate(inherited));
            }
            state.pid = pid;
        }
        if let Some(gate) = &state.gate {
            return Ok(gate.clone());
        }
        let gate = runtime()?.block_on(Gate::open_with(
            &self.url,
            self.registry.clone(),
            self.options.clone(),
        ))?;
        state.gate = Some(gate.clone());
        Ok(gate)
    }

    fn close(&self) -> Result<(), Error> {
        let mut state = lock(&self.state);
        state.closed = true;
        if let Some(gate) = state.gate.take() {
            if state.pid == std::process::id() {
                runtime()?.block_on(gate.close());
            } else {
                keep_inherited(Inherited::Gate(gate));
            }
        }
        Ok(())
    }
}

/// A live handle, found by the address of its `startgate_gate`.
pub(crate) struct Handle {
    shared: Arc<Shared>,
    is_shared: bool,
    closed: AtomicBool,
}

fn handles() -> &'static Mutex<HashMap<usize, Arc<Handle>>> {
    static HANDLES: OnceLock<Mutex<HashMap<usize, Arc<Handle>>>> = OnceLock::new();
    HANDLES.get_or_init(|| Mutex::new(HashMap::new()))
}

fn shared_gates() -> &'static Mutex<HashMap<String, Arc<Shared>>> {
    static SHARED: OnceLock<Mutex<HashMap<String, Arc<Shared>>>> = OnceLock::new();
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
        let fresh = || {
            Arc::new(Shared {
                url: url.to_string(),
                registry: registry.clone(),
                options: options.clone(),
                state: Mutex::new(State {
                    pid: std::process::id(),
                    gate: None,
                    closed: false,
                }),
            })
        };
        // A manual clock is per gate: never shared.
        let share = share && open.manual_clock.is_none();
        let shared = if share {
            let key = format!("{url}\u{0}{registry_toml}\u{0}{rest}");
            let mut cache = lock(shared_gates());
            cache.entry(key).or_insert_with(fresh).clone()
        } else {
            fresh()
        };
        // Open now, so a bad URL or an unreachable database fails here.
        shared.gate()?;
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
            return Err(closed_error());
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
