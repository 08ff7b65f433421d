//! The gate moves into an existing application database: its relations and
//! its migration bookkeeping live in a schema of its own, every statement
//! names that schema (nothing depends on `search_path`, so it works through
//! pgbouncer in transaction mode), and the host's own tables — here the
//! Laravel-shaped `operation_runs`, `provider_connections` and `migrations`
//! of the app the gate is built for — are left byte for byte as they were.
//! Connection facts may come from the host's table through a view.

mod support;

use std::process::Command;

use sqlx::{Connection, Executor, PgConnection};
use startgate::{
    Actor, Completion, CompletionOutcome, Gate, GateOptions, Outcome, ProviderConnection, Registry,
    StartRequest,
};
use support::PgTestDb;

const REGISTRY: &str = r#"
[operations."inventory.sync"]
label = "Inventory sync"
capability = "inventory.sync"
requires = ["tenant_active", "connection_enabled", "consent", "credential", "health"]

[operations."restore.execute"]
label = "Restore"
capability = "inventory.sync"
requires = ["connection_enabled", "consent", "credential"]
"#;

/// The app's own tables, as a Laravel app has them, with rows.
const LARAVEL: &str = r#"
CREATE TABLE public.migrations (id serial PRIMARY KEY, migration varchar(255) NOT NULL, batch integer NOT NULL);
INSERT INTO public.migrations (migration, batch) VALUES
  ('2014_10_12_000000_create_users_table', 1),
  ('2024_03_01_000000_create_provider_connections_table', 1),
  ('2024_03_02_000000_create_operation_runs_table', 2);
CREATE TABLE public.provider_connections (
  id bigserial PRIMARY KEY,
  tenant_id bigint NOT NULL,
  provider varchar(255) NOT NULL,
  name varchar(255) NOT NULL,
  is_default boolean NOT NULL DEFAULT false,
  status varchar(32) NOT NULL DEFAULT 'enabled',
  consent_status varchar(32) NOT NULL DEFAULT 'pending',
  client_secret text,
  credential_expires_at timestamp(0) without time zone,
  last_health_status varchar(32) NOT NULL DEFAULT 'unknown',
  created_at timestamp(0) without time zone,
  updated_at timestamp(0) without time zone
);
INSERT INTO public.provider_connections (tenant_id, provider, name, is_default, status, consent_status,
  client_secret, credential_expires_at, last_health_status, created_at, updated_at) VALUES
  (7, 'microsoft_graph', 'Contoso Graph', true, 'enabled', 'granted', 'eyJpdiI6ImNpcGhlcnRleHQifQ==',
   '2099-01-01 00:00:00', 'healthy', '2024-03-01 10:00:00', '2024-03-01 10:00:00'),
  (8, 'microsoft_graph', 'Fabrikam Graph', true, 'enabled', 'pending', NULL, NULL, 'unknown',
   '2024-03-02 10:00:00', '2024-03-02 10:00:00');
CREATE TABLE public.operation_runs (
  id bigserial PRIMARY KEY,
  tenant_id bigint NOT NULL,
  type varchar(255) NOT NULL,
  status varchar(32) NOT NULL,
  context json,
  created_at timestamp(0) without time zone,
  updated_at timestamp(0) without time zone
);
INSERT INTO public.operation_runs (tenant_id, type, status, context, created_at, updated_at) VALUES
  (7, 'inventory_sync', 'completed', '{"devices": 1200}', '2024-03-03 09:00:00', '2024-03-03 09:05:00'),
  (8, 'restore', 'queued', NULL, '2024-03-04 09:00:00', '2024-03-04 09:00:00');
"#;

/// The view a host declares over its Laravel table (the example of the
/// README and docs/DESIGN.md §6).
const HOST_VIEW: &str = r#"
DROP TABLE startgate.provider_connections;
CREATE VIEW startgate.provider_connections AS
SELECT c.tenant_id::text AS tenant_id,
       c.id::text AS id,
       c.provider,
       c.name AS display_name,
       c.is_default,
       c.status = 'enabled' AS enabled,
       CASE c.consent_status WHEN 'granted' THEN 'granted' WHEN 'revoked' THEN 'revoked'
            ELSE 'missing' END AS consent,
       CASE WHEN c.client_secret IS NULL THEN 'missing' ELSE 'present' END AS credential,
       (EXTRACT(EPOCH FROM c.credential_expires_at AT TIME ZONE 'UTC') * 1000000)::bigint
           AS credential_expires_at,
       CASE c.last_health_status WHEN 'healthy' THEN 'ok' WHEN 'degraded' THEN 'unhealthy'
            ELSE 'unknown' END AS health
FROM public.provider_connections c;
"#;

async fn sql(url: &str, text: &str) {
    let mut conn = PgConnection::connect(url).await.expect("connect");
    sqlx::raw_sql(text).execute(&mut conn).await.expect(text);
    conn.close().await.ok();
}

/// The app's tables, schema and data, as `pg_dump` prints them.
fn dump(db: &PgTestDb) -> String {
    let output = Command::new("pg_dump")
        // A fixed \restrict key: pg_dump otherwise writes a random one each time.
        .args(["--no-owner", "--no-privileges", "--restrict-key=startgate"])
        .args([
            "-t",
            "public.migrations",
            "-t",
            "public.provider_connections",
        ])
        .args([
            "-t",
            "public.operation_runs",
            "-t",
            "public.migrations_id_seq",
        ])
        .args([
            "-t",
            "public.provider_connections_id_seq",
            "-t",
            "public.operation_runs_id_seq",
        ])
        .arg(db.url())
        .output()
        .expect("pg_dump");
    assert!(
        output.status.success(),
        "pg_dump: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8")
}

async fn relations(url: &str, schema: &str) -> Vec<String> {
    let mut conn = PgConnection::connect(url).await.expect("connect");
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text || ':' || c.relkind::text FROM pg_class c \
         JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 ORDER BY 1",
    )
    .bind(schema)
    .fetch_all(&mut conn)
    .await
    .expect("relations");
    conn.close().await.ok();
    names
}

fn options(schema: &str) -> GateOptions {
    GateOptions {
        schema: schema.into(),
        ..GateOptions::default()
    }
}

async fn open(url: &str, schema: &str) -> Gate {
    Gate::open_with(
        url,
        Registry::from_toml_str(REGISTRY).expect("registry"),
        options(schema),
    )
    .await
    .expect("open")
}

/// Migrates the gate's schema and saves one ready connection for `contoso`.
async fn migrate_with_contoso(gate: &Gate) {
    gate.migrate().await.expect("migrate");
    gate.upsert_connection(&ProviderConnection::ready(
        "contoso",
        "graph",
        "microsoft_graph",
    ))
    .await
    .expect("connection");
}

fn alice() -> Actor {
    Actor::member("alice", ["inventory.sync"])
}

/// Starts, completes and refuses on `tenants` scopes: every write path.
async fn storm(gate: &Gate, tenants: &[&str], rounds: usize) -> usize {
    let mut accepted = 0;
    for round in 0..rounds {
        for tenant in tenants {
            let sync = gate
                .start(&StartRequest::new("inventory.sync", *tenant, alice()))
                .await
                .expect("start");
            let busy = gate
                .start(&StartRequest::new("restore.execute", *tenant, alice()))
                .await
                .expect("start");
            assert_eq!(busy.outcome, Outcome::ScopeBusy, "{busy:?}");
            if let Some(run) = sync.accepted_run() {
                accepted += 1;
                let token = run.fencing_token.expect("token");
                gate.mark_running(run.id, token).await.expect("running");
                let outcome = if round % 2 == 0 {
                    CompletionOutcome::Succeeded
                } else {
                    CompletionOutcome::Failed
                };
                gate.complete(&Completion::new(run.id, token, outcome))
                    .await
                    .expect("complete");
            }
        }
    }
    gate.reap_stale().await.expect("reap");
    accepted
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_existing_laravel_database_is_left_byte_identical() {
    let db = PgTestDb::create("laravel").await;
    sql(&db.url(), LARAVEL).await;
    let before = dump(&db);
    let public_before = relations(&db.url(), "public").await;

    // Directly, with the database's search_path pointing somewhere useless:
    // a statement that relied on it would fail or land in the app's tables.
    sql(
        &db.url(),
        &format!(
            "ALTER DATABASE {} SET search_path TO no_such_schema",
            db.name
        ),
    )
    .await;
    let gate = open(&db.url(), "startgate").await;
    gate.migrate().await.expect("migrate");
    gate.migrate().await.expect("migrate is idempotent");
    let tenants = ["contoso", "fabrikam", "7", "8"];
    for tenant in tenants {
        gate.upsert_connection(&ProviderConnection::ready(
            tenant,
            "graph",
            "microsoft_graph",
        ))
        .await
        .expect("connection");
    }
    let direct = storm(&gate, &tenants, 25).await;
    gate.close().await;

    // Through pgbouncer in transaction mode.
    let pooled = open(&db.pooled_url(), "startgate").await;
    let through_pooler = storm(&pooled, &tenants, 25).await;
    pooled.close().await;
    assert_eq!((direct, through_pooler), (100, 100));

    let after = dump(&db);
    if after != before {
        let changed: Vec<String> = before
            .lines()
            .zip(after.lines())
            .filter(|(a, b)| a != b)
            .map(|(a, b)| format!("- {a}\n+ {b}"))
            .collect();
        panic!("the app's tables changed:\n{}", changed.join("\n"));
    }
    assert_eq!(relations(&db.url(), "public").await, public_before);
    let gate_relations = relations(&db.url(), "startgate").await;
    for name in [
        "_sqlx_migrations:r",
        "operation_runs:r",
        "provider_connections:r",
        "start_attempts:r",
        "operation_runs_one_active_per_scope:i",
    ] {
        assert!(
            gate_relations.contains(&name.to_string()),
            "{name} not in {gate_relations:?}"
        );
    }
    db.drop_now().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_schemas_side_by_side_are_independent() {
    let db = PgTestDb::create("two_schemas").await;
    let (a, b) = (
        open(&db.url(), "gate_a").await,
        open(&db.url(), "gate_b").await,
    );
    for gate in [&a, &b] {
        migrate_with_contoso(gate).await;
    }
    let request = StartRequest::new("inventory.sync", "contoso", alice());
    let in_a = a.start(&request).await.expect("start in a");
    let in_b = b.start(&request).await.expect("start in b");
    assert_eq!(
        (in_a.outcome, in_b.outcome),
        (Outcome::Accepted, Outcome::Accepted)
    );
    // The same scope in each schema holds its own run: no dedupe across them.
    assert_eq!(
        a.start(&request).await.expect("again").outcome,
        Outcome::Deduped
    );
    a.cancel(in_a.run.as_ref().expect("run").id, None)
        .await
        .expect("cancel");
    assert_eq!(
        b.start(&request).await.expect("b still held").outcome,
        Outcome::Deduped
    );
    assert_eq!(
        a.list_runs(&Default::default()).await.expect("runs").len(),
        1
    );
    assert_eq!(
        b.list_runs(&Default::default()).await.expect("runs").len(),
        1
    );
    assert!(
        relations(&db.url(), "public").await.is_empty(),
        "nothing in public"
    );
    for schema in ["gate_a", "gate_b"] {
        assert!(relations(&db.url(), schema)
            .await
            .contains(&"_sqlx_migrations:r".to_string()));
    }
    let bad = Gate::open_with(
        &db.url(),
        Registry::from_toml_str(REGISTRY).expect("registry"),
        options("Robert'); DROP TABLE students;--"),
    )
    .await
    .expect_err("a schema that is not a plain name");
    assert_eq!(bad.code().as_str(), "invalid_request");
    assert!(bad.to_string().contains("schema"), "{bad}");
    a.close().await;
    b.close().await;
    db.drop_now().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn facts_read_from_the_hosts_own_table_decide_the_next_start() {
    let db = PgTestDb::create("host_view").await;
    sql(&db.url(), LARAVEL).await;
    let gate = open(&db.url(), "startgate").await;
    gate.migrate().await.expect("migrate");
    sql(&db.url(), HOST_VIEW).await;
    gate.migrate().await.expect("migrate leaves the view alone");
    assert!(relations(&db.url(), "startgate")
        .await
        .contains(&"provider_connections:v".to_string()));

    let start = || StartRequest::new("inventory.sync", "7", alice());
    let outcome = |result: &startgate::StartResult| {
        let reasons: Vec<&str> = result.reasons.iter().map(|r| r.code.as_str()).collect();
        (result.outcome, reasons.join(","))
    };
    let accepted = gate.start(&start()).await.expect("start");
    assert_eq!(outcome(&accepted), (Outcome::Accepted, String::new()));
    assert_eq!(accepted.provider_connection_id.as_deref(), Some("1"));
    gate.cancel(accepted.run.expect("run").id, None)
        .await
        .expect("cancel");

    // Each change is the host's own UPDATE; the gate is not called.
    let host = |change: &'static str| {
        let url = db.url();
        async move { sql(&url, change).await }
    };
    let cases: [(&str, &str, &str); 4] = [
        (
            "UPDATE public.provider_connections SET consent_status = 'revoked' WHERE id = 1",
            "UPDATE public.provider_connections SET consent_status = 'granted' WHERE id = 1",
            "provider_consent_revoked",
        ),
        (
            "UPDATE public.provider_connections SET credential_expires_at = '2020-01-01' WHERE id = 1",
            "UPDATE public.provider_connections SET credential_expires_at = '2099-01-01' WHERE id = 1",
            "provider_credential_expired",
        ),
        (
            "UPDATE public.provider_connections SET last_health_status = 'degraded' WHERE id = 1",
            "UPDATE public.provider_connections SET last_health_status = 'healthy' WHERE id = 1",
            "provider_connection_unhealthy",
        ),
        (
            "UPDATE public.provider_connections SET status = 'disabled', consent_status = 'revoked' WHERE id = 1",
            "UPDATE public.provider_connections SET status = 'enabled', consent_status = 'granted' WHERE id = 1",
            "provider_connection_disabled,provider_consent_revoked",
        ),
    ];
    for (change, undo, reasons) in cases {
        host(change).await;
        let blocked = gate.start(&start()).await.expect("start");
        assert_eq!(
            outcome(&blocked),
            (Outcome::Blocked, reasons.to_string()),
            "{change}"
        );
        host(undo).await;
        let again = gate.start(&start()).await.expect("start");
        assert_eq!(again.outcome, Outcome::Accepted, "{undo}");
        gate.cancel(again.run.expect("run").id, None)
            .await
            .expect("cancel");
    }

    // The same through pgbouncer in transaction mode.
    let pooled = open(&db.pooled_url(), "startgate").await;
    host("UPDATE public.provider_connections SET consent_status = 'revoked' WHERE id = 1").await;
    let blocked = pooled.start(&start()).await.expect("start");
    assert_eq!(outcome(&blocked).1, "provider_consent_revoked");
    pooled.close().await;

    let refused = gate
        .upsert_connection(&ProviderConnection::ready("7", "1", "microsoft_graph"))
        .await
        .expect_err("upsert on a view");
    assert_eq!(refused.code().as_str(), "invalid_request");
    assert!(
        refused
            .to_string()
            .contains("a view over the host's own tables"),
        "{refused}"
    );
    let connection = gate
        .get_connection("8", "2")
        .await
        .expect("read")
        .expect("connection 2");
    assert_eq!(
        (
            connection.display_name.as_str(),
            connection.consent.as_str()
        ),
        ("Fabrikam Graph", "missing")
    );
    gate.close().await;
    db.drop_now().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_statement_names_the_schema() {
    // A second gate schema shaped exactly like the first: a statement that
    // did not name its schema would find these tables first on search_path.
    let db = PgTestDb::create("qualified").await;
    let decoy = open(&db.url(), "decoy").await;
    decoy.migrate().await.expect("migrate decoy");
    decoy.close().await;
    sql(
        &db.url(),
        &format!("ALTER DATABASE {} SET search_path TO decoy", db.name),
    )
    .await;
    let gate = open(&db.url(), "startgate").await;
    migrate_with_contoso(&gate).await;
    assert_eq!(storm(&gate, &["contoso"], 5).await, 5);
    gate.close().await;
    let mut conn = PgConnection::connect(&db.url()).await.expect("connect");
    for table in ["operation_runs", "start_attempts", "provider_connections"] {
        let rows: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM decoy.{table}"))
            .fetch_one(&mut conn)
            .await
            .expect("count");
        assert_eq!(rows, 0, "a statement reached decoy.{table}");
    }
    conn.execute("SELECT 1").await.expect("alive");
    conn.close().await.ok();
    db.drop_now().await;
}
