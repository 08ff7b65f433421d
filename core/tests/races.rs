//! Races the contract settles in the database: many starts on one stale scope
//! (one takeover wins, everyone else sees the winner), reap against start, and
//! two completions of one run. Each racer has its own gate (its own pool and
//! database connection), all released at once by a barrier.

use std::sync::Arc;
use std::time::Duration;

use startgate::{
    Actor, Clock, Completion, CompletionOutcome, Gate, GateOptions, Outcome, ProviderConnection,
    Registry, StartRequest, Timestamp,
};
use startgate_testkit::{PgTestDb, TempDb};
use tokio::sync::Barrier;

const RACERS: usize = 8;

const REGISTRY: &str = r#"
[operations."inventory.sync"]
label = "Inventory sync"
capability = "sync"
[operations."compliance.snapshot"]
label = "Compliance snapshot"
capability = "sync"
"#;

async fn gates(url: &str, clock: &Clock) -> Vec<Gate> {
    let mut gates = Vec::new();
    for _ in 0..RACERS {
        let options = GateOptions {
            clock: clock.clone(),
            max_connections: 1,
            ..GateOptions::default()
        };
        let registry = Registry::from_toml_str(REGISTRY).expect("registry");
        gates.push(Gate::open_with(url, registry, options).await.expect("open"));
    }
    gates[0].migrate().await.expect("migrate");
    gates
}

fn request(i: usize) -> StartRequest {
    let op = if i.is_multiple_of(2) {
        "inventory.sync"
    } else {
        "compliance.snapshot"
    };
    StartRequest::new(op, "contoso", Actor::member(format!("racer-{i}"), ["sync"]))
}

async fn race(url: &str) {
    let clock = Clock::manual(Timestamp::parse_rfc3339("2026-01-01T09:00:00Z").expect("time"));
    let gates = gates(url, &clock).await;
    gates[0]
        .upsert_connection(&ProviderConnection::ready(
            "contoso",
            "graph",
            "microsoft_graph",
        ))
        .await
        .expect("connection");

    for round in 0..10 {
        // A run that nobody picks up goes stale…
        let stale = gates[0].start(&request(0)).await.expect("start");
        let stale_run = match stale.outcome {
            Outcome::Accepted => stale.run.expect("run"),
            // The previous round's winner still holds the scope: end it first.
            _ => panic!("round {round}: scope not free: {stale:?}"),
        };
        clock.advance(Duration::from_secs(601));

        // …and everyone starts at once: exactly one takes it over.
        let barrier = Arc::new(Barrier::new(RACERS));
        let tasks: Vec<_> = gates
            .iter()
            .cloned()
            .enumerate()
            .map(|(i, gate)| {
                let barrier = barrier.clone();
                tokio::spawn(async move {
                    barrier.wait().await;
                    gate.start(&request(i)).await
                })
            })
            .collect();
        let mut results = Vec::new();
        for task in tasks {
            results.push(task.await.expect("task").expect("start"));
        }
        let winners: Vec<_> = results
            .iter()
            .filter(|r| r.outcome == Outcome::Accepted)
            .collect();
        assert_eq!(
            winners.len(),
            1,
            "round {round}: {} accepted: {results:#?}",
            winners.len()
        );
        let winner = winners[0].run.clone().expect("winner run");
        assert_eq!(
            winners[0].replaced_run_id,
            Some(stale_run.id),
            "round {round}"
        );
        for other in results.iter().filter(|r| r.outcome != Outcome::Accepted) {
            assert!(
                matches!(other.outcome, Outcome::Deduped | Outcome::ScopeBusy),
                "{other:?}"
            );
            assert_eq!(
                other.holder.as_ref().map(|h| h.id),
                Some(winner.id),
                "losers see the winner"
            );
        }
        let ended = gates[1].get_run(stale_run.id).await.expect("stale run");
        assert_eq!(ended.reason_code.as_deref(), Some("run_lease_expired"));
        let attempts = gates[1]
            .attempts_for_run(winner.id)
            .await
            .expect("attempts");
        assert_eq!(
            attempts.len(),
            RACERS,
            "every racer left one audit row: {attempts:#?}"
        );

        // Two completions of one run: one wins, the other is refused.
        let token = winner.fencing_token.expect("token");
        gates[2]
            .mark_running(winner.id, token)
            .await
            .expect("running");
        let succeed = Completion::new(winner.id, token, CompletionOutcome::Succeeded);
        let fail = Completion::new(winner.id, token, CompletionOutcome::Failed);
        let (a, b) = tokio::join!(gates[3].complete(&succeed), gates[4].complete(&fail));
        assert!(
            a.is_ok() != b.is_ok(),
            "round {round}: exactly one completion wins: {a:?} / {b:?}"
        );
        let loser = if a.is_err() { a } else { b };
        assert_eq!(
            loser.expect_err("loser").code().as_str(),
            "invalid_transition"
        );
    }

    // Reap against a takeover: the stale run ends once, and exactly one new run holds the scope.
    for _ in 0..10 {
        let run = gates[0]
            .start(&request(0))
            .await
            .expect("start")
            .run
            .expect("run");
        clock.advance(Duration::from_secs(601));
        let other = request(1);
        let (reaped, started) = tokio::join!(gates[5].reap_stale(), gates[6].start(&other));
        let reaped = reaped.expect("reap");
        let started = started.expect("start");
        assert_eq!(started.outcome, Outcome::Accepted, "{started:?}");
        let by_reap = reaped.reaped.iter().any(|r| r.id == run.id);
        let by_takeover = started.replaced_run_id == Some(run.id);
        assert!(
            by_reap != by_takeover,
            "the stale run ended exactly once (reap {by_reap}, takeover {by_takeover})"
        );
        let new = started.run.expect("run");
        gates[7]
            .complete(&Completion::new(
                new.id,
                new.fencing_token.expect("token"),
                CompletionOutcome::Cancelled,
            ))
            .await
            .expect("cancel");
    }
    for gate in gates {
        gate.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn races_are_settled_by_sqlite() {
    let db = TempDb::new("races");
    race(&db.url()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn races_are_settled_by_postgres() {
    let db = PgTestDb::create("races").await;
    race(&db.url()).await;
    db.drop_now().await;
}
