//! A call's future stays small. An `async fn` keeps its arguments beside
//! every future it passes them to, so wrappers that take a call by value
//! (timing, tracing, the client-side bound) multiplied a start's state to
//! 16 KB and a JSON call's to 25 KB, copied by `memcpy` at every level and
//! once more by each host binding. The wrappers box the call when it is made.

use startgate::{json, Actor, Completion, Gate, GateOptions, Registry, RunFilter, StartRequest};

const LIMIT: usize = 4096;

#[tokio::test]
async fn the_futures_of_the_calls_stay_small() {
    let registry =
        Registry::from_toml_str(include_str!("../../examples/registry.toml")).expect("registry");
    let gate = Gate::open_with("sqlite::memory:", registry, GateOptions::default())
        .await
        .expect("open");
    let request = StartRequest::new(
        "inventory.sync",
        "t",
        Actor::member("a", ["inventory.sync"]),
    );
    let completion: Completion =
        serde_json::from_str(r#"{"run_id": 1, "fencing_token": 1, "outcome": "succeeded"}"#)
            .expect("completion");
    let filter = RunFilter::default();
    let sizes = [
        ("start", std::mem::size_of_val(&gate.start(&request))),
        (
            "complete",
            std::mem::size_of_val(&gate.complete(&completion)),
        ),
        ("list_runs", std::mem::size_of_val(&gate.list_runs(&filter))),
        ("reap_stale", std::mem::size_of_val(&gate.reap_stale())),
        (
            "json::call_text",
            std::mem::size_of_val(&json::call_text(&gate, "start", Default::default())),
        ),
    ];
    for (call, size) in sizes {
        assert!(
            size <= LIMIT,
            "{call}'s future is {size} bytes (limit {LIMIT})"
        );
    }
}
