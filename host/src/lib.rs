//! What every foreign surface (C ABI, Python) needs around a [`Gate`]: one
//! tokio runtime per process, blocking calls from any host thread, and a gate
//! that survives `fork()`.
//!
//! After `fork()` the child must not touch the parent's runtime or pool: their
//! threads do not exist in the child, and PostgreSQL connections would be shared
//! with the parent. [`ProcessGate::live`] compares the process id with the one
//! the gate was opened in; in a new process it sets the parent's gate aside and
//! opens a fresh one on a fresh runtime. What the child inherited is kept,
//! reachable, and never dropped: dropping it would join threads that are gone.
//! Reading the process id is a system call, so a call reads it once and gets
//! the gate and the runtime together ([`Live`]).

use std::sync::{Mutex, MutexGuard};

use startgate::{Error, Gate, GateOptions, Registry};
use tokio::runtime::Runtime;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The data behind these locks stays consistent if a holder panicked
    // (plain assignments), so a poisoned lock is still usable.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// What a forked child inherited from its parent and must never drop.
enum Inherited {
    Runtime(#[allow(dead_code)] &'static Runtime),
    Gate(#[allow(dead_code)] Gate),
}

fn keep_inherited(item: Inherited) {
    static INHERITED: Mutex<Vec<Inherited>> = Mutex::new(Vec::new());
    lock(&INHERITED).push(item);
}

/// The runtime of the current process: created on first use, and again in a
/// forked child. Never dropped. Multi-threaded, so calls blocking on it from
/// many host threads at once make progress together.
pub fn runtime() -> Result<&'static Runtime, Error> {
    runtime_of(std::process::id())
}

/// [`runtime`] for a caller that has read the process id already: each read
/// is a system call (about 0.15 µs here), and a gate's call needs it once.
fn runtime_of(pid: u32) -> Result<&'static Runtime, Error> {
    static RUNTIME: Mutex<Option<(u32, &'static Runtime)>> = Mutex::new(None);
    let mut slot = lock(&RUNTIME);
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

/// What [`poll_once`] found: the answer, or the call still waiting.
pub enum Polled<F: std::future::Future> {
    /// It finished in its first poll.
    Ready(F::Output),
    /// It waits (on the network, a lock, a free connection): spawn it.
    Pending(std::pin::Pin<Box<F>>),
}

/// Polls `future` once on the calling thread, inside the runtime's context.
/// A call that needs no wait — SQLite on a free connection, a pure call —
/// finishes there, without a hop to the runtime's threads and a wake-up
/// back, which is most of what an asynchronous call costs a host. A call
/// that does wait comes back to be spawned: its next poll, on the runtime,
/// registers the task's waker in place of the no-op one used here.
pub fn poll_once<F: std::future::Future>(future: F) -> Result<Polled<F>, Error> {
    Ok(poll_once_in(runtime()?, future))
}

/// [`poll_once`] on a given runtime (a [`Live`] gate's).
pub fn poll_once_in<F: std::future::Future>(runtime: &Runtime, future: F) -> Polled<F> {
    let _context = runtime.enter();
    let mut future = Box::pin(future);
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    match future.as_mut().poll(&mut context) {
        std::task::Poll::Ready(output) => Polled::Ready(output),
        std::task::Poll::Pending => Polled::Pending(future),
    }
}

/// Runs `future` to completion on the process's runtime, from a host thread
/// (in that thread: the runtime's threads only drive the I/O it waits on).
pub fn block_on<F: std::future::Future>(future: F) -> Result<F::Output, Error> {
    Ok(block_on_in(runtime()?, future))
}

/// [`block_on`] on a given runtime (a [`Live`] gate's).
pub fn block_on_in<F: std::future::Future>(runtime: &Runtime, future: F) -> F::Output {
    match poll_once_in(runtime, future) {
        Polled::Ready(output) => output,
        Polled::Pending(future) => runtime.block_on(future),
    }
}

/// A gate of the current process and the runtime that drives its calls,
/// found with one read of the process id.
pub struct Live {
    /// The gate to call.
    pub gate: Gate,
    /// This process's runtime, for [`block_on_in`] and [`poll_once_in`].
    pub runtime: &'static Runtime,
}

struct State {
    pid: u32,
    gate: Option<Gate>,
    closed: bool,
}

/// A gate that is reopened, lazily, in every process that uses it.
pub struct ProcessGate {
    url: String,
    registry: Registry,
    options: GateOptions,
    state: Mutex<State>,
}

/// What a call on a closed gate handle fails with (`store_unavailable`).
pub fn closed_error() -> Error {
    Error::StoreUnavailable {
        outcome_unknown: false,
        message: "the gate was closed".into(),
        source: None,
    }
}

impl ProcessGate {
    /// Opens a gate now (so a bad URL or an unreachable database fails here).
    pub fn open(url: &str, registry: Registry, options: GateOptions) -> Result<ProcessGate, Error> {
        let gate = ProcessGate {
            url: url.to_string(),
            registry,
            options,
            state: Mutex::new(State {
                pid: std::process::id(),
                gate: None,
                closed: false,
            }),
        };
        gate.gate()?;
        Ok(gate)
    }

    /// The gate to call in this process.
    pub fn gate(&self) -> Result<Gate, Error> {
        Ok(self.live()?.gate)
    }

    /// The gate to call in this process, with the runtime to call it on.
    pub fn live(&self) -> Result<Live, Error> {
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
        let runtime = runtime_of(pid)?;
        if let Some(gate) = &state.gate {
            return Ok(Live {
                gate: gate.clone(),
                runtime,
            });
        }
        let open = Gate::open_with(&self.url, self.registry.clone(), self.options.clone());
        let gate = block_on_in(runtime, open)?;
        state.gate = Some(gate.clone());
        Ok(Live { gate, runtime })
    }

    /// Closes the pool (in the process that opened it); later calls fail with
    /// `store_unavailable`. Closing twice is fine.
    pub fn close(&self) -> Result<(), Error> {
        let mut state = lock(&self.state);
        state.closed = true;
        if let Some(gate) = state.gate.take() {
            if state.pid == std::process::id() {
                block_on(gate.close())?;
            } else {
                keep_inherited(Inherited::Gate(gate));
            }
        }
        Ok(())
    }
}
