//! An accepted start answers with the run it stored: on SQLite the run is
//! built from the values the insert bound (no read-back), so every kind of
//! accepted start is compared, field by field, with the stored row as
//! `get_run` reads it: params of every JSON kind, a subject, each initiator,
//! a token after a completed run, a stale takeover, and a sequence's first
//! run. PostgreSQL returns the row it inserted; it runs the same cases.

use std::time::Duration;

use serde_json::{json, Map, Value};
use startgate::{
    Actor, Clock, Completion, CompletionOutcome, Gate, GateOptions, Initiator, Outcome,
    ProviderConnection, Registry, SequenceRequest, StartRequest, StartResult, Timestamp,
};
use startgate_testkit::{PgTestDb, TempDb};

/// The example registry a new user starts from.
const REGISTRY: &str = include_str!("../../examples/registry.toml");

fn alice() -> Actor {
    Actor::member(
        "alice",
        [
            "tenant.manage",
            "provider.manage",
            "inventory.sync",
            "compliance.read",
        ],
    )
}

fn request(operation: &str, connection: &str) -> StartRequest {
    StartRequest::new(operation, "contoso", alice()).with_connection(connection)
}

fn params(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

/// The accepted result's run, checked against the stored row.
async fn accepted_as_stored(gate: &Gate, result: StartResult, what: &str) -> startgate::Run {
    assert_eq!(result.outcome, Outcome::Accepted, "{what}: {result:?}");
    let run = result.run.unwrap_or_else(|| panic!("{what}: no run"));
    assert!(run.fencing_token.is_some(), "{what}: no token");
    let stored = gate.get_run(run.id).await.expect("get_run");
    // `get_run` leaves the token to the starter; the token each start
    // answers is checked below (it completes, it follows the last one).
    let answered = startgate::Run {
        fencing_token: None,
        ..run.clone()
    };
    assert_eq!(answered, stored, "{what}: the answer is not the stored row");
    // And as every surface sees it: the same JSON document.
    assert_eq!(
        serde_json::to_value(&answered).expect("encode"),
        serde_json::to_value(&stored).expect("encode"),
        "{what}"
    );
    run
}

async fn every_accepted_start_answers_the_stored_row(url: &str) {
    let clock = Clock::manual(Timestamp::parse_rfc3339("2026-01-01T09:00:00Z").expect("time"));
    let options = GateOptions {
        clock: clock.clone(),
        ..GateOptions::default()
    };
    let registry = Registry::from_toml_str(REGISTRY).expect("registry");
    let gate = Gate::open_with(url, registry, options).await.expect("open");
    gate.migrate().await.expect("migrate");
    for id in ["a", "b", "c", "d", "e"] {
        gate.upsert_connection(&ProviderConnection::ready("contoso", id, "graph"))
            .await
            .expect("connection");
    }

    let plain = gate
        .start(&request("inventory.sync", "a"))
        .await
        .expect("start");
    let first = accepted_as_stored(&gate, plain, "plain").await;
    assert_eq!(first.fencing_token, Some(1));

    let rich = request("inventory.sync", "b")
        .with_subject("mailbox/ü\"\\")
        .with_initiator(Initiator::Schedule)
        .with_params(params(json!({
            "z": null,
            "a": [1, -2, 2.5, -0.0, 1e300, 9007199254740993_i64, "s\tt\u{1f600}", true],
            "é": {"nested": {"deeper": [{}], "empty": []}},
        })));
    let rich = gate.start(&rich).await.expect("start");
    let rich = accepted_as_stored(&gate, rich, "params, subject, schedule").await;
    assert!(rich.params.is_some() && rich.subject.is_some());

    let system = request("inventory.sync", "c").with_initiator(Initiator::System);
    let system = gate.start(&system).await.expect("start");
    accepted_as_stored(&gate, system, "system").await;

    // A completed run's scope: the next run's token follows it. Marking it
    // running and completing it take the token the start answered.
    let token = first.fencing_token.expect("token");
    gate.mark_running(first.id, token).await.expect("running");
    let done = gate
        .complete(&Completion::new(
            first.id,
            token,
            CompletionOutcome::Succeeded,
        ))
        .await
        .expect("complete");
    assert!(done.run.finished_at.is_some());
    clock.advance(Duration::from_secs(1));
    let again = gate
        .start(&request("compliance.snapshot", "a"))
        .await
        .expect("start");
    let again = accepted_as_stored(&gate, again, "after a completed run").await;
    assert_eq!(again.fencing_token, Some(2));

    // A stale run taken over: the new run names the one it replaced.
    clock.advance(Duration::from_secs(601));
    let takeover = gate
        .start(&request("inventory.sync", "a"))
        .await
        .expect("start");
    assert_eq!(takeover.replaced_run_id, Some(again.id));
    let taken = accepted_as_stored(&gate, takeover, "stale takeover").await;
    assert_eq!(taken.replaced_run_id, Some(again.id));
    assert_eq!(taken.fencing_token, Some(3));

    // A sequence's first run is admitted as a start is.
    let mut sequence = SequenceRequest::named("onboarding.bootstrap", "contoso", alice());
    sequence.provider_connection_id = Some("d".into());
    let sequence = gate.start_sequence(&sequence).await.expect("sequence");
    accepted_as_stored(&gate, sequence, "a sequence's first run").await;
    gate.close().await;
}

#[tokio::test]
async fn sqlite_accepted_runs_are_the_stored_rows() {
    let db = TempDb::new("accepted-run");
    every_accepted_start_answers_the_stored_row(&db.url()).await;
}

#[tokio::test]
async fn postgres_accepted_runs_are_the_stored_rows() {
    let db = PgTestDb::create("accepted_run").await;
    every_accepted_start_answers_the_stored_row(&db.url()).await;
    db.drop_now().await;
}
