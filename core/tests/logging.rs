//! The gate's events as a host logger receives them (`startgate::log`): every
//! call's fields — operation, tenant, outcome, reason code, run id, duration,
//! round trips, retries — and never params or credentials. On PostgreSQL the
//! round trips equal the wire counts of BENCHMARKS.md table 6.
//!
//! One test function: the routing subscriber is process-wide.

mod support;

use serde_json::{json, Value};
use startgate::log::{self, LogLevel, LogRecord};
use startgate::{
    Actor, Completion, CompletionOutcome, Consent, Gate, ProviderConnection, Registry, StartRequest,
};
use support::{PgTestDb, TempDb};

const REGISTRY: &str = r#"
[operations."inventory.sync"]
label = "Inventory sync"
capability = "inventory.sync"
requires = ["connection_enabled", "consent"]
"#;

/// What params carry and a log must never show.
const SECRET_PARAM: &str = "param-secret-7d1f";
/// A password in the database URL.
const SECRET_PASSWORD: &str = "url-secret-93ac";

fn records() -> Vec<LogRecord> {
    // Nothing else logs while a test collects: `waiting` is exact here.
    let waiting = log::waiting();
    let mut out = Vec::new();
    log::deliver(|record| out.push(record));
    assert_eq!(
        waiting,
        !out.is_empty(),
        "waiting() tells whether records wait"
    );
    assert!(!log::waiting(), "delivered records wait no more");
    out
}

fn field<'a>(record: &'a LogRecord, name: &str) -> &'a Value {
    record
        .fields
        .get(name)
        .unwrap_or_else(|| panic!("no {name} in {record:?}"))
}

fn the_one<'a>(records: &'a [LogRecord], call: &str) -> &'a LogRecord {
    let matching: Vec<&LogRecord> = records
        .iter()
        .filter(|r| r.fields.get("call") == Some(&json!(call)))
        .collect();
    assert_eq!(matching.len(), 1, "one {call} record in {records:#?}");
    matching[0]
}

fn assert_nothing_secret(records: &[LogRecord]) {
    for record in records {
        let text = format!("{} {}", record.message, record.to_line());
        for secret in [SECRET_PARAM, SECRET_PASSWORD] {
            assert!(!text.contains(secret), "{secret} leaked: {record:?}");
        }
    }
}

/// The worker's side: takes the run and ends it as succeeded.
async fn succeed(gate: &Gate, run_id: i64, token: i64) {
    gate.mark_running(run_id, token).await.expect("mark");
    let done = Completion::new(run_id, token, CompletionOutcome::Succeeded);
    gate.complete(&done).await.expect("complete");
}

/// Runs accepted, deduped (different params), blocked, an invalid start,
/// mark_running and complete; returns the records and the round trips per
/// call.
async fn exercise(gate: &Gate) -> Vec<LogRecord> {
    gate.migrate().await.expect("migrate");
    gate.upsert_connection(&ProviderConnection::ready("t1", "graph", "microsoft_graph"))
        .await
        .expect("upsert");
    let mut revoked = ProviderConnection::ready("t2", "graph", "microsoft_graph");
    revoked.consent = Consent::Revoked;
    gate.upsert_connection(&revoked).await.expect("upsert");
    // Warm up: every statement prepared once, as in table 6's steady state.
    let actor = Actor::member("alice", ["inventory.sync"]);
    let warm = StartRequest::new("inventory.sync", "t1", actor.clone());
    let warm = gate.start(&warm).await.expect("warm start");
    let run = warm.run.expect("run");
    let token = run.fencing_token.expect("token");
    succeed(gate, run.id, token).await;
    gate.start(&StartRequest::new("inventory.sync", "t2", actor.clone()))
        .await
        .expect("warm blocked");
    records();

    log::set_host_level(Some(LogLevel::Debug));
    let mut request = StartRequest::new("inventory.sync", "t1", actor.clone());
    request.params = json!({"note": SECRET_PARAM}).as_object().cloned();
    let accepted = gate.start(&request).await.expect("start");
    let run = accepted.run.clone().expect("run");
    let token = run.fencing_token.expect("token");
    let mut again = request.clone();
    again.params = json!({"note": format!("{SECRET_PARAM}-other")})
        .as_object()
        .cloned();
    let deduped = gate.start(&again).await.expect("dedupe");
    assert_eq!(deduped.params_differ, Some(true));
    gate.start(&StartRequest::new("inventory.sync", "t2", actor.clone()))
        .await
        .expect("blocked");
    let mut invalid = StartRequest::new("inventory.sync", SECRET_PARAM, actor.clone());
    invalid.tenant_id = format!("{SECRET_PARAM}\u{0}");
    assert!(gate.start(&invalid).await.is_err());
    succeed(gate, run.id, token).await;
    let got = records();
    log::set_host_level(None);
    got
}

fn check_fields(records: &[LogRecord]) {
    assert_nothing_secret(records);
    let starts: Vec<&LogRecord> = records
        .iter()
        .filter(|r| r.fields.get("call") == Some(&json!("start")))
        .collect();
    assert_eq!(starts.len(), 4, "{records:#?}");
    let (accepted, deduped, blocked, failed) = (starts[0], starts[1], starts[2], starts[3]);
    assert_eq!(accepted.level, LogLevel::Info);
    assert_eq!(accepted.target, "startgate");
    assert_eq!(field(accepted, "operation"), &json!("inventory.sync"));
    assert_eq!(field(accepted, "tenant_id"), &json!("t1"));
    assert_eq!(field(accepted, "outcome"), &json!("accepted"));
    assert!(field(accepted, "run_id").as_i64().unwrap() > 0);
    assert!(field(accepted, "duration_us").as_u64().is_some());
    assert_eq!(field(accepted, "retries"), &json!(0));
    assert!(!accepted.fields.contains_key("reason_code"), "{accepted:?}");
    assert_eq!(field(deduped, "outcome"), &json!("deduped"));
    assert_eq!(field(deduped, "params_differ"), &json!(true));
    assert_eq!(field(deduped, "run_id"), field(accepted, "run_id"));
    assert_eq!(field(blocked, "outcome"), &json!("blocked"));
    assert_eq!(
        field(blocked, "reason_code"),
        &json!("provider_consent_revoked")
    );
    assert_eq!(failed.level, LogLevel::Warn);
    assert_eq!(field(failed, "error"), &json!("invalid_request"));
    assert_eq!(field(failed, "field"), &json!("tenant_id"));
    let complete = the_one(records, "complete");
    assert_eq!(complete.level, LogLevel::Info);
    assert_eq!(field(complete, "run_id"), field(accepted, "run_id"));
    assert_eq!(the_one(records, "mark_running").level, LogLevel::Info);
}

fn round_trips(record: &LogRecord) -> u64 {
    field(record, "round_trips").as_u64().expect("round_trips")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_loggers_receive_every_calls_fields_and_no_secrets() {
    assert!(
        log::install(),
        "the routing subscriber is the process default"
    );

    // With no host logger attached nothing is collected.
    let db = TempDb::new("logging");
    let registry = Registry::from_toml_str(REGISTRY).expect("registry");
    let gate = Gate::open(&db.url(), registry.clone()).await.expect("open");
    let sqlite = exercise(&gate).await;
    gate.close().await;
    check_fields(&sqlite);
    // SQLite: BEGIN IMMEDIATE, the four statements of table 6's note, COMMIT.
    assert_eq!(round_trips(&sqlite[0]), 6, "{:?}", sqlite[0]);

    let pg = PgTestDb::create("logging").await;
    let url = pg.url().replacen(
        "postgres://postgres@",
        &format!("postgres://postgres:{SECRET_PASSWORD}@"),
        1,
    );
    assert!(url.contains(SECRET_PASSWORD), "{url}");
    let gate = Gate::open(&url, registry).await.expect("open pg");
    let postgres = exercise(&gate).await;
    gate.close().await;
    pg.drop_now().await;
    check_fields(&postgres);
    // BENCHMARKS.md table 6, PostgreSQL direct: accepted, deduped 1 round
    // trip; blocked 2; mark_running 1; complete (no pending run) 5.
    let trips: Vec<(String, u64)> = postgres
        .iter()
        .filter(|r| r.fields.contains_key("round_trips"))
        .map(|r| (r.message.clone(), round_trips(r)))
        .collect();
    let starts: Vec<u64> = postgres
        .iter()
        .filter(|r| r.fields.get("call") == Some(&json!("start")))
        .map(round_trips)
        .collect();
    assert_eq!(starts[..3], [1, 1, 2], "{trips:?}");
    assert_eq!(
        round_trips(the_one(&postgres, "mark_running")),
        1,
        "{trips:?}"
    );
    assert_eq!(round_trips(the_one(&postgres, "complete")), 5, "{trips:?}");

    // Detached: nothing waits for a host any more.
    let db = TempDb::new("logging-off");
    let gate = Gate::open(&db.url(), Registry::from_toml_str(REGISTRY).unwrap())
        .await
        .expect("open");
    gate.migrate().await.expect("migrate");
    assert!(records().is_empty());
    gate.close().await;
}
