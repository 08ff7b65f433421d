//! Ids never repeat (docs/DESIGN.md, Storage): after the newest run and its
//! audit rows are deleted, as a host's retention job might, the next start's
//! run and audit row get ids above the deleted ones, on both stores. A job
//! still holding a deleted run's id must never reach a newer run through it.

use startgate::{
    Actor, Completion, CompletionOutcome, Gate, Outcome, ProviderConnection, Registry, Run,
    StartRequest,
};
use startgate_testkit::{PgTestDb, TempDb};

/// The example registry a new user starts from.
const REGISTRY: &str = include_str!("../../examples/registry.toml");

/// The newest run and every audit row naming it, deleted outside the gate.
const DELETE_NEWEST: [&str; 2] = [
    "DELETE FROM {schema}start_attempts WHERE run_id = {id} OR holder_run_id = {id}",
    "DELETE FROM {schema}operation_runs WHERE id = {id}",
];

fn request() -> StartRequest {
    StartRequest::new(
        "inventory.sync",
        "contoso",
        Actor::member("alice", ["inventory.sync"]),
    )
    .with_connection("graph-1")
}

/// Starts, runs and completes a run.
async fn start_and_complete(gate: &Gate) -> Run {
    let result = gate.start(&request()).await.expect("start");
    assert_eq!(result.outcome, Outcome::Accepted, "{result:?}");
    let run = result.run.expect("run");
    let token = run.fencing_token.expect("token");
    gate.mark_running(run.id, token).await.expect("running");
    gate.complete(&Completion::new(
        run.id,
        token,
        CompletionOutcome::Succeeded,
    ))
    .await
    .expect("complete");
    run
}

async fn newest_attempt_id(gate: &Gate) -> i64 {
    let attempts = gate.list_attempts(None, 1).await.expect("attempts");
    attempts.first().expect("an attempt").id
}

/// Runs the case on the gate at `url`, whose tables are named with
/// `schema` in front; `delete` runs the given statements outside the gate.
async fn deleted_ids_never_come_back<F, Fut>(url: &str, schema: &str, delete: F)
where
    F: FnOnce(Vec<String>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let registry = Registry::from_toml_str(REGISTRY).expect("registry");
    let gate = Gate::open(url, registry).await.expect("open");
    gate.migrate().await.expect("migrate");
    gate.upsert_connection(&ProviderConnection::ready("contoso", "graph-1", "graph"))
        .await
        .expect("connection");
    let first = start_and_complete(&gate).await;
    let newest = start_and_complete(&gate).await;
    let newest_attempt = newest_attempt_id(&gate).await;
    assert!(newest.id > first.id);
    assert_eq!(
        gate.attempts_for_run(newest.id)
            .await
            .expect("attempts")
            .len(),
        1
    );

    delete(
        DELETE_NEWEST
            .iter()
            .map(|sql| {
                sql.replace("{schema}", schema)
                    .replace("{id}", &newest.id.to_string())
            })
            .collect(),
    )
    .await;
    assert!(gate.get_run(newest.id).await.is_err(), "the run is deleted");
    assert!(newest_attempt_id(&gate).await < newest_attempt);

    let next = start_and_complete(&gate).await;
    assert!(
        next.id > newest.id,
        "run id {} came back after it was deleted (new run {})",
        newest.id,
        next.id
    );
    assert!(
        newest_attempt_id(&gate).await > newest_attempt,
        "audit row id {newest_attempt} came back after it was deleted"
    );
    gate.close().await;
}

#[tokio::test]
async fn sqlite_ids_never_repeat_after_the_newest_rows_are_deleted() {
    let db = TempDb::new("ids");
    let path = db.path.clone();
    deleted_ids_never_come_back(&db.url(), "", |statements| async move {
        let conn = rusqlite::Connection::open(&path).expect("open the file");
        for sql in statements {
            let deleted = conn.execute(&sql, []).expect("delete");
            assert!(deleted >= 1, "{sql}");
        }
    })
    .await;
}

#[tokio::test]
async fn postgres_ids_never_repeat_after_the_newest_rows_are_deleted() {
    let db = PgTestDb::create("ids").await;
    let url = db.url();
    deleted_ids_never_come_back(&url, "startgate.", |statements| async {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&url).await.expect("connect");
        for sql in statements {
            let deleted = sqlx::query(&sql).execute(&mut conn).await.expect("delete");
            assert!(deleted.rows_affected() >= 1, "{sql}");
        }
    })
    .await;
    db.drop_now().await;
}
