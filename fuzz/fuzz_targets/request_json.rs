//! Request JSON, as every binding passes it: each document shape the
//! contract parses, then (when it parses) a full `check` — validation,
//! authorization, connection resolution, preflight — on an in-memory gate,
//! and `present` of whatever came back. Any panic or hang is a finding;
//! errors are expected and must carry a stable code.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use startgate_core::{
    json, Completion, Gate, ProviderConnection, Registry, SequenceRequest, StartRequest,
};

const REGISTRY: &str = include_str!("../../examples/registry.toml");

fn gate() -> &'static Gate {
    static GATE: OnceLock<Gate> = OnceLock::new();
    GATE.get_or_init(|| {
        let registry = Registry::from_toml_str(REGISTRY).expect("example registry");
        startgate_host::block_on(async {
            let gate = Gate::open("sqlite::memory:", registry).await.expect("open");
            gate.migrate().await.expect("migrate");
            let ready = ProviderConnection::ready("contoso", "graph", "microsoft_graph");
            gate.upsert_connection(&ready).await.expect("connection");
            gate
        })
        .expect("runtime")
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let gate = gate();
    let _ = SequenceRequest::from_json(text);
    let _ = Completion::from_json(text);
    let _ = ProviderConnection::from_json(text);
    let _ = json::present(gate, text);
    let _ = json::present_run(gate, text);
    if let Ok(request) = StartRequest::from_json(text) {
        let checked =
            startgate_host::block_on(gate.check(std::slice::from_ref(&request))).expect("runtime");
        if let Ok(results) = checked {
            for result in results.into_iter().flatten() {
                let _ = gate.present(&result);
            }
        }
    }
    // The JSON dispatcher the bindings use, with read-only methods.
    for method in ["check", "list_runs", "get_connection", "present"] {
        let _ = startgate_host::block_on(json::call(gate, method, text));
    }
});
