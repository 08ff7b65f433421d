//! Isolation, as a randomized property test over many tenants, actors and
//! connections (seeded; `STARTGATE_ISOLATION_SEED` replays a run,
//! `STARTGATE_ISOLATION_STEPS` makes it longer):
//!
//! - a start for tenant A never dedupes against, reports, pins or blocks on a
//!   run or connection of tenant B;
//! - a `denied` 404 reveals no run id, connection name or reason, in the
//!   result or its presentation;
//! - presentations and errors carry no credential material and no SQL text;
//! - SQL injection attempts in every string field are stored as plain data.

mod support;

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};
use startgate::{
    Actor, Completion, CompletionOutcome, Consent, Credential, Gate, GateOptions, Health, Outcome,
    ProviderConnection, Registry, RunFilter, StartRequest, StartResult,
};
use support::{PgTestDb, TempDb};

const REGISTRY: &str = r#"
[urls]
run = "/runs/{run_id}"
tenant = "/tenants/{tenant_id}"
connection = "{tenant_url}/connections/{provider_connection_id}"

[operations."inventory.sync"]
label = "Inventory sync"
capability = "inventory.sync"
requires = ["tenant_active", "connection_enabled", "consent", "credential", "health"]

[operations."directory.groups.sync"]
label = "Directory groups sync"
capability = "inventory.sync"
requires = ["connection_enabled", "consent"]
"#;

const OPERATIONS: [&str; 2] = ["inventory.sync", "directory.groups.sync"];
const TENANTS: usize = 6;
const CONNECTIONS_PER_TENANT: usize = 3;

/// Strings no presentation or error may ever contain.
const CREDENTIAL: &str = "hunter2-db-password";
const SQL_WORDS: [&str; 6] = [
    "SELECT ",
    "INSERT ",
    "UPDATE ",
    "DELETE ",
    "ON CONFLICT",
    "RETURNING",
];

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

fn tenant(i: usize) -> String {
    format!("tenant{i:02}")
}

/// Connection ids are unique across tenants, so a leak is visible as text.
fn connection(t: usize, c: usize) -> String {
    format!("conn-t{t:02}-c{c}")
}

fn random_connection(rng: &mut Rng, t: usize, c: usize) -> ProviderConnection {
    let mut conn = ProviderConnection::ready(tenant(t), connection(t, c), "microsoft_graph");
    conn.is_default = c == 0;
    conn.enabled = rng.below(6) != 0;
    conn.consent = [
        Consent::Granted,
        Consent::Granted,
        Consent::Missing,
        Consent::Revoked,
    ][rng.below(4)];
    conn.credential = [
        Credential::Present,
        Credential::Present,
        Credential::Missing,
        Credential::Expired,
    ][rng.below(4)];
    conn.health = [Health::Ok, Health::Ok, Health::Unknown, Health::Unhealthy][rng.below(4)];
    conn
}

fn tenant_of_connection(id: &str) -> Option<String> {
    id.strip_prefix("conn-t")
        .and_then(|rest| rest.get(..2))
        .map(|n| format!("tenant{n}"))
}

/// Every tenant name and connection id mentioned in `text` belongs to `own`.
fn mentions_only(text: &str, own: &str) -> Result<(), String> {
    for t in 0..TENANTS {
        let other = tenant(t);
        if other != own && text.contains(&other) {
            return Err(format!("mentions {other}: {text}"));
        }
        for c in 0..CONNECTIONS_PER_TENANT {
            let id = connection(t, c);
            if other != own && text.contains(&id) {
                return Err(format!("mentions {id}: {text}"));
            }
        }
    }
    Ok(())
}

fn no_secrets(text: &str) {
    assert!(
        !text.contains(CREDENTIAL),
        "credential material leaked: {text}"
    );
    for word in SQL_WORDS {
        assert!(!text.contains(word), "SQL text leaked ({word}): {text}");
    }
}

fn check_result(gate: &Gate, request: &StartRequest, result: &StartResult) {
    let own = &request.tenant_id;
    let presented = serde_json::to_string(&gate.present(result)).expect("presentation");
    no_secrets(&presented);
    if result.outcome == Outcome::Denied && result.status == Some(404) {
        assert!(
            result.run.is_none() && result.holder.is_none(),
            "{result:?}"
        );
        assert!(
            result.reasons.is_empty() && result.provider_connection_id.is_none(),
            "{result:?}"
        );
        assert!(
            result.replaced_run_id.is_none() && result.pending.is_empty(),
            "{result:?}"
        );
        assert!(
            !presented.contains("conn-"),
            "404 names a connection: {presented}"
        );
        assert!(
            !presented.contains("/runs/"),
            "404 links a run: {presented}"
        );
        for reason in ["consent", "credential", "health", "disabled"] {
            assert!(
                !presented.to_lowercase().contains(reason),
                "404 reveals a reason ({reason}): {presented}"
            );
        }
        return;
    }
    assert_eq!(&result.tenant_id, own);
    // A caller may name another tenant's connection: it must be as if it
    // did not exist (blocked, connection missing), never its state. Only the
    // caller's own input may be echoed back.
    let requested = request.provider_connection_id.as_deref();
    let foreign = requested.filter(|id| tenant_of_connection(id).as_ref() != Some(own));
    // (Authorization comes first: a 403 is not about the connection.)
    if foreign.is_some() && result.outcome != Outcome::Denied {
        assert_eq!(result.outcome, Outcome::Blocked, "{result:?}");
        let codes: Vec<&str> = result.reasons.iter().map(|r| r.code.as_str()).collect();
        assert!(
            codes
                .iter()
                .all(|c| *c == "provider_connection_missing" || *c == "tenant_inactive"),
            "blocked on another tenant's connection state: {codes:?}"
        );
    }
    let own_connection =
        |id: &str| Some(id) == foreign || tenant_of_connection(id).as_ref() == Some(own);
    for run in result
        .run
        .iter()
        .chain(&result.holder)
        .chain(&result.pending)
    {
        assert_eq!(
            &run.tenant_id, own,
            "a run of another tenant surfaced: {result:?}"
        );
        if let Some(id) = &run.provider_connection_id {
            assert!(own_connection(id), "{result:?}");
        }
    }
    if let Some(id) = &result.provider_connection_id {
        assert!(own_connection(id), "pinned elsewhere: {result:?}");
    }
    let scrub = |text: &str| foreign.map_or(text.to_string(), |id| text.replace(id, "<requested>"));
    let whole = serde_json::to_string(result).expect("result json");
    if let Err(leak) = mentions_only(&scrub(&whole), own) {
        panic!("result for {own} {leak}");
    }
    if let Err(leak) = mentions_only(&scrub(&presented), own) {
        panic!("presentation for {own} {leak}");
    }
}

async fn property(url: &str, seed: u64, steps: usize) -> BTreeMap<&'static str, usize> {
    let registry = Registry::from_toml_str(REGISTRY).expect("registry");
    let gate = Gate::open(url, registry).await.expect("open");
    gate.migrate().await.expect("migrate");
    let mut rng = Rng(seed.max(1));
    for t in 0..TENANTS {
        for c in 0..CONNECTIONS_PER_TENANT {
            gate.upsert_connection(&random_connection(&mut rng, t, c))
                .await
                .expect("connection");
        }
    }
    let mut counts: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut owned: Vec<(i64, i64, String)> = Vec::new();
    for _ in 0..steps {
        let t = rng.below(TENANTS);
        match rng.below(10) {
            // Connections change under the starts.
            0 => {
                let c = rng.below(CONNECTIONS_PER_TENANT);
                gate.upsert_connection(&random_connection(&mut rng, t, c))
                    .await
                    .expect("connection");
            }
            // Runs end, freeing scopes.
            1 | 2 if !owned.is_empty() => {
                let (run_id, token, run_tenant) = owned.swap_remove(rng.below(owned.len()));
                gate.mark_running(run_id, token)
                    .await
                    .expect("mark running");
                let done = gate
                    .complete(&Completion::new(
                        run_id,
                        token,
                        CompletionOutcome::Succeeded,
                    ))
                    .await
                    .expect("complete");
                assert_eq!(done.run.tenant_id, run_tenant);
                counts
                    .entry("completed")
                    .and_modify(|n| *n += 1)
                    .or_insert(1);
            }
            _ => {
                // Actors: members of this tenant, members without the
                // capability, and outsiders (members elsewhere: not here).
                let actor = match rng.below(5) {
                    0 => Actor::non_member(format!("outsider-of-{}", tenant(t))),
                    1 => Actor::member(format!("viewer{}", rng.below(3)), ["inventory.read"]),
                    _ => Actor::member(format!("operator{}", rng.below(3)), ["inventory.sync"]),
                };
                let mut request = StartRequest::new(OPERATIONS[rng.below(2)], tenant(t), actor);
                if rng.below(3) == 0 {
                    // Sometimes an explicit connection, sometimes another tenant's.
                    let ct = if rng.below(4) == 0 {
                        rng.below(TENANTS)
                    } else {
                        t
                    };
                    request =
                        request.with_connection(connection(ct, rng.below(CONNECTIONS_PER_TENANT)));
                }
                if rng.below(3) == 0 {
                    request = request.with_subject(format!("subject-{}", rng.below(2)));
                }
                let result = gate.start(&request).await.expect("start");
                check_result(&gate, &request, &result);
                *counts.entry(result.outcome.as_str()).or_default() += 1;
                if let Some(run) = result.accepted_run() {
                    if let Some(token) = run.fencing_token {
                        owned.push((run.id, token, run.tenant_id.clone()));
                    }
                }
            }
        }
    }
    // Every run and audit row stayed with its tenant.
    for t in 0..TENANTS {
        let filter = RunFilter {
            tenant_id: Some(tenant(t)),
            ..RunFilter::default()
        };
        for run in gate.list_runs(&filter).await.expect("runs") {
            assert_eq!(run.tenant_id, tenant(t));
            // Admitted runs are pinned to one of the tenant's own connections
            // (a blocked run may echo a connection id the caller asked for).
            if let (Some(id), Some(_)) = (&run.provider_connection_id, run.fencing_token) {
                assert_eq!(tenant_of_connection(id), Some(tenant(t)), "{run:?}");
            }
        }
        for attempt in gate
            .list_attempts(Some(&tenant(t)), 10_000)
            .await
            .expect("attempts")
        {
            assert_eq!(attempt.tenant_id, tenant(t), "{attempt:?}");
        }
    }
    gate.close().await;
    counts
}

fn seed() -> u64 {
    std::env::var("STARTGATE_ISOLATION_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(7, |d| d.as_nanos() as u64)
        })
}

fn steps() -> usize {
    std::env::var("STARTGATE_ISOLATION_STEPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1500)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn assert_every_outcome(counts: &BTreeMap<&str, usize>, seed: u64) {
    println!(
        "RELIABILITY isolation: seed {seed}, {} steps: {counts:?}",
        steps()
    );
    for outcome in [
        "accepted",
        "deduped",
        "scope_busy",
        "blocked",
        "denied",
        "completed",
    ] {
        assert!(
            counts.get(outcome).copied().unwrap_or(0) > 0,
            "seed {seed}: no {outcome}: {counts:?}"
        );
    }
}

#[test]
fn tenants_never_see_each_other_on_sqlite() {
    let db = TempDb::new("isolation");
    let seed = seed();
    let counts = runtime().block_on(property(&db.url(), seed, steps()));
    assert_every_outcome(&counts, seed);
}

#[test]
fn tenants_never_see_each_other_on_postgres() {
    let db = runtime().block_on(PgTestDb::create("isolation"));
    let seed = seed();
    let counts = runtime().block_on(property(&db.url(), seed, steps()));
    assert_every_outcome(&counts, seed);
    runtime().block_on(db.drop_now());
}

/// Strings that would break a query built by concatenation.
const INJECTIONS: [&str; 4] = [
    "x'); DROP TABLE operation_runs; --",
    "' OR '1'='1",
    "\"; DELETE FROM start_attempts WHERE ''='",
    "$1::text; SELECT pg_sleep(5) --",
];

async fn injection_is_plain_data(url: &str) {
    let registry = Registry::from_toml_str(REGISTRY).expect("registry");
    let gate = Gate::open(url, registry).await.expect("open");
    gate.migrate().await.expect("migrate");
    for (i, evil) in INJECTIONS.iter().enumerate() {
        let tenant_id = format!("{evil}{i}");
        let mut conn = ProviderConnection::ready(tenant_id.as_str(), *evil, *evil);
        conn.display_name = evil.to_string();
        conn.is_default = true;
        gate.upsert_connection(&conn).await.expect("connection");
        let mut params = Map::new();
        params.insert(evil.to_string(), Value::String(evil.to_string()));
        let request = StartRequest::new(
            "inventory.sync",
            tenant_id.as_str(),
            Actor::member(*evil, ["inventory.sync"]),
        )
        .with_connection(*evil)
        .with_subject(*evil)
        .with_params(params.clone());
        let result = gate.start(&request).await.expect("start");
        assert_eq!(result.outcome, Outcome::Accepted, "{result:?}");
        let run = gate
            .get_run(result.run.as_ref().expect("run").id)
            .await
            .expect("run");
        assert_eq!(run.tenant_id, tenant_id);
        assert_eq!(run.actor_id, *evil);
        assert_eq!(run.subject.as_deref(), Some(*evil));
        assert_eq!(run.provider_connection_id.as_deref(), Some(*evil));
        assert_eq!(run.params.as_ref(), Some(&params));
        let stored = gate
            .get_connection(&tenant_id, evil)
            .await
            .expect("get connection")
            .expect("stored");
        assert_eq!(stored, conn);
        // Unknown operation names and filters are data too.
        let unknown = StartRequest::new(*evil, tenant_id.as_str(), Actor::member("a", ["x"]));
        let err = gate.start(&unknown).await.expect_err("unknown operation");
        assert!(err.to_string().contains(evil));
        let filter = RunFilter {
            tenant_id: Some(tenant_id.clone()),
            operation: Some(evil.to_string()),
            ..RunFilter::default()
        };
        assert!(gate.list_runs(&filter).await.expect("filter").is_empty());
    }
    // Every table is still there and holds exactly what was written.
    let all = gate.list_runs(&RunFilter::default()).await.expect("runs");
    assert_eq!(all.len(), INJECTIONS.len());
    assert_eq!(
        gate.list_attempts(None, 100).await.expect("attempts").len(),
        INJECTIONS.len()
    );
    gate.close().await;
}

#[test]
fn sql_injection_is_stored_as_plain_data_on_sqlite() {
    let db = TempDb::new("injection");
    runtime().block_on(injection_is_plain_data(&db.url()));
}

#[test]
fn sql_injection_is_stored_as_plain_data_on_postgres() {
    let db = runtime().block_on(PgTestDb::create("injection"));
    runtime().block_on(injection_is_plain_data(&db.url()));
    runtime().block_on(db.drop_now());
}

/// Errors carry no credential material (the database password) and no SQL.
#[test]
fn errors_carry_no_credentials_or_sql() {
    let rt = runtime();
    let registry = || Registry::from_toml_str(REGISTRY).expect("registry");
    let options = GateOptions {
        connect_timeout: std::time::Duration::from_millis(500),
        acquire_timeout: std::time::Duration::from_millis(500),
        ..GateOptions::default()
    };
    let mut messages = Vec::new();
    for url in [
        format!("postgres://startgate:{CREDENTIAL}@127.0.0.1:1/nowhere"),
        format!("postgres://postgres:{CREDENTIAL}@127.0.0.1:5432/no_such_database_here"),
        format!("postgres://startgate:{CREDENTIAL}@127.0.0.1:5432/x?sslmode=bogus"),
    ] {
        let err = rt
            .block_on(Gate::open_with(&url, registry(), options.clone()))
            .expect_err("cannot open");
        messages.push(format!("{err} / {err:?}"));
    }
    // A schema that is missing and a statement the server refuses.
    let db = TempDb::new("nosql");
    let gate = rt
        .block_on(Gate::open(&db.url(), registry()))
        .expect("open");
    let request = StartRequest::new(
        "inventory.sync",
        "t",
        Actor::member("a", ["inventory.sync"]),
    );
    let err = rt.block_on(gate.start(&request)).expect_err("no schema");
    messages.push(err.to_string());
    let json_err =
        StartRequest::from_json(&json!({"operation": 1}).to_string()).expect_err("bad json");
    messages.push(json_err.to_string());
    for message in &messages {
        no_secrets(message);
    }
}
