//! Handles. A `startgate_gate *` is only ever used as a key into a registry of
//! live handles, never dereferenced, so a freed, closed or foreign pointer gets
//! a clear error instead of undefined behaviour. Each handle holds a
//! [`ProcessGate`], which makes it safe to use after `fork()`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use serde_json::{Map, Value};
use startgate_core::json::{load_registry, OpenOptions};
use startgate_core::{input, Error, Gate};
use startgate_host::ProcessGate;

use super::{invalid, startgate_gate, startgate_result_format};

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
    /// How results leave this handle: a `startgate_result_format` value.
    format: AtomicU32,
}

fn handles() -> &'static Mutex<HashMap<usize, Arc<Handle>>> {
    static HANDLES: OnceLock<Mutex<HashMap<usize, Arc<Handle>>>> = OnceLock::new();
    HANDLES.get_or_init(|| Mutex::new(HashMap::new()))
}

fn shared_gates() -> &'static Mutex<HashMap<String, Arc<ProcessGate>>> {
    static SHARED: OnceLock<Mutex<HashMap<String, Arc<ProcessGate>>>> = OnceLock::new();
    SHARED.get_or_init(|| Mutex::new(HashMap::new()))
}

/// What opening a handle needs, however the caller gave it.
pub(crate) struct OpenSpec {
    pub url: String,
    /// The path of a registry file.
    pub registry: Option<String>,
    /// The registry as TOML text.
    pub registry_toml: Option<String>,
    /// The options object, without `share`.
    pub options: Map<String, Value>,
    pub share: bool,
}

impl OpenSpec {
    /// From the separate arguments of `startgate_open` / `startgate_open_file`.
    pub(crate) fn from_parts(
        url: &str,
        registry: Option<&str>,
        registry_toml: Option<&str>,
        options_json: &str,
    ) -> Result<OpenSpec, Error> {
        let trimmed = options_json.trim();
        let options = if trimmed.is_empty() || trimmed == "null" {
            Map::new()
        } else {
            match input::parse_value("options", trimmed)? {
                Value::Object(map) => map,
                other => {
                    return Err(invalid(
                        "options",
                        &format!("expected an object, found {}", input::describe(&other)),
                    ))
                }
            }
        };
        let mut spec = OpenSpec {
            url: url.to_string(),
            registry: registry.map(str::to_string),
            registry_toml: registry_toml.map(str::to_string),
            options,
            share: false,
        };
        spec.share = take_share(&mut spec.options)?;
        Ok(spec)
    }

    /// From one `startgate_open_json` document: `url`, `registry` or
    /// `registry_toml`, `share`, and the options.
    pub(crate) fn from_json(open_json: &str) -> Result<OpenSpec, Error> {
        let mut map = match input::parse_value("open", open_json)? {
            Value::Object(map) => map,
            other => {
                return Err(invalid(
                    "open",
                    &format!("expected an object, found {}", input::describe(&other)),
                ))
            }
        };
        let mut text = |key: &str| -> Result<Option<String>, Error> {
            match map.remove(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s)),
                Some(other) => Err(invalid(
                    key,
                    &format!("expected a string, found {}", input::describe(&other)),
                )),
            }
        };
        let url = text("url")?.ok_or_else(|| invalid("url", "missing"))?;
        let registry = text("registry")?;
        let registry_toml = text("registry_toml")?;
        let share = take_share(&mut map)?;
        Ok(OpenSpec {
            url,
            registry,
            registry_toml,
            options: map,
            share,
        })
    }
}

/// Takes the C ABI's own `share` flag out of an options object.
fn take_share(options: &mut Map<String, Value>) -> Result<bool, Error> {
    match options.remove("share") {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(b),
        Some(other) => Err(invalid(
            "share",
            &format!("expected true or false, found {}", input::describe(&other)),
        )),
    }
}

impl Handle {
    /// Opens (or, with `"share": true`, reuses) a gate and registers a handle.
    pub(crate) fn open(spec: OpenSpec) -> Result<*mut startgate_gate, Error> {
        let url = spec.url.as_str();
        input::text("url", url)?;
        let rest = Value::Object(spec.options).to_string();
        let open = OpenOptions::from_json(&rest)?;
        let options = open.to_gate_options()?;
        let registry = load_registry(spec.registry.as_deref(), spec.registry_toml.as_deref())?;
        // A manual clock is per gate: never shared.
        let share = spec.share && open.manual_clock.is_none();
        let shared = if share {
            let source = match (&spec.registry, &spec.registry_toml) {
                (Some(path), _) => format!("file:{path}"),
                (None, Some(text)) => format!("toml:{text}"),
                (None, None) => String::new(),
            };
            let key = format!("{url}\u{0}{source}\u{0}{rest}");
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
            format: AtomicU32::new(startgate_result_format::STARTGATE_RESULT_JSON as u32),
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
        Ok(self.live()?.gate)
    }

    /// The gate to call, with the runtime to call it on.
    pub(crate) fn live(&self) -> Result<startgate_host::Live, Error> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(startgate_host::closed_error());
        }
        self.shared.live()
    }

    /// How this handle writes result documents.
    pub(crate) fn result_format(&self) -> startgate_result_format {
        // Only set_result_format stores here, always a valid value.
        startgate_result_format::from_u32(self.format.load(Ordering::Relaxed))
            .unwrap_or(startgate_result_format::STARTGATE_RESULT_JSON)
    }

    /// Sets how this handle writes result documents from its next call on.
    pub(crate) fn set_result_format(&self, format: startgate_result_format) {
        self.format.store(format as u32, Ordering::Relaxed);
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
