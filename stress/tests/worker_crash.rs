//! A worker holding a scope is killed with SIGKILL. After the lease the next
//! start takes the scope over, naming the dead worker's run as replaced, and
//! the dead worker's fencing token is refused if it comes back. On both stores.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{prepare, runtime};
use startgate::{
    Actor, Completion, CompletionOutcome, ErrorCode, Gate, Outcome, Registry, RunStatus,
    StartRequest,
};
use startgate_stress::{tenants, Event, REGISTRY};
use startgate_testkit::{PgTestDb, TempDb};

fn crash_and_take_over(url: &str) {
    prepare(url, false);
    let mut child = Command::new(env!("CARGO_BIN_EXE_startgate-stress"))
        .args(["hold", "--database", url])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn holder");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("holder reports its run");
    let Event::Accepted {
        run_id: dead_run,
        fencing_token: dead_token,
        ..
    } = serde_json::from_str::<Event>(&line).expect("accepted event")
    else {
        panic!("holder did not report an accepted run: {line}");
    };
    child.kill().expect("SIGKILL the holder");
    child.wait().expect("reap the holder");

    runtime().block_on(async {
        let registry = Registry::from_toml_str(REGISTRY).expect("registry");
        let gate = Gate::open(url, registry).await.expect("open");
        let tenant = tenants(1).remove(0);
        let request = StartRequest::new(
            "inventory.sync",
            tenant.as_str(),
            Actor::member("next-worker", ["inventory.sync"]),
        );
        // Within the lease the dead worker's run still holds the scope.
        let early = gate.start(&request).await.expect("start within lease");
        assert_eq!(early.outcome, Outcome::Deduped, "{early:?}");
        assert_eq!(early.holder.as_ref().map(|h| h.id), Some(dead_run));

        tokio::time::sleep(Duration::from_millis(600)).await;
        let result = gate.start(&request).await.expect("start after lease");
        assert_eq!(result.outcome, Outcome::Accepted, "{result:?}");
        assert_eq!(
            result.replaced_run_id,
            Some(dead_run),
            "explicit takeover signal"
        );
        let new_run = result.accepted_run().expect("accepted run");
        assert!(new_run.fencing_token > Some(dead_token));

        // The dead worker comes back with its old token: refused every way.
        let heartbeat = gate
            .heartbeat(dead_run, dead_token)
            .await
            .expect_err("fenced heartbeat");
        assert_eq!(heartbeat.code(), ErrorCode::InvalidTransition);
        let complete = gate
            .complete(&Completion::new(
                dead_run,
                dead_token,
                CompletionOutcome::Succeeded,
            ))
            .await
            .expect_err("fenced completion");
        assert_eq!(complete.code(), ErrorCode::InvalidTransition);
        let dead = gate.get_run(dead_run).await.expect("dead run");
        assert_ne!(dead.status, RunStatus::Succeeded, "{dead:?}");
        assert!(!dead.status.is_active(), "{dead:?}");
        // The new holder is untouched by the refused calls.
        let new = gate.get_run(new_run.id).await.expect("new run");
        assert!(new.status.is_active(), "{new:?}");
        gate.close().await;
    });
}

#[test]
fn a_killed_worker_is_taken_over_and_fenced_on_sqlite() {
    let db = TempDb::new("crash");
    crash_and_take_over(&db.url());
}

#[test]
fn a_killed_worker_is_taken_over_and_fenced_on_postgres() {
    let db = runtime().block_on(PgTestDb::create("crash"));
    crash_and_take_over(&db.url());
    runtime().block_on(db.drop_now());
}
