//! PostgreSQL's single-statement admission. Accepted, deduped and scope busy
//! are one round trip: resolve the connection, check readiness, insert the run
//! (the partial unique index refuses a second active run), or else read the
//! holder, and write the audit row, all in one statement. Blocked costs one more
//! statement (the blocked run and its audit row); a stale takeover runs the
//! general transaction. When the holder committed after the statement's
//! snapshot was taken (the insert saw it, the read could not), a second
//! statement reads it.

use std::collections::HashMap;

use sqlx::postgres::{PgConnection, PgRow};
use sqlx::{FromRow, Row};

use crate::error::Error;
use crate::preflight::{preflight, sql_ready_condition};
use crate::registry::Registry;
use crate::store::db::Conn;
use crate::store::{
    judge_holder, reasons_json, run_columns, Access, Admission, ConnectionRow, PgBackend, Plan,
    RunRow, SResult, Store, StoreError, Verdict, MAX_ATTEMPTS,
};
use crate::time::{Clock, Timestamp};

/// The accepted-path statements of each operation type (its readiness checks
/// are part of the SQL), built once when the gate opens: one for a named
/// connection, one for the tenant's default.
pub(super) struct Statements {
    accept: HashMap<String, Accept>,
}

struct Accept {
    named: String,
    default: String,
}

impl Statements {
    pub(super) fn new(registry: &Registry) -> Self {
        let accept = registry
            .operations()
            .map(|op| {
                let ready = sql_ready_condition(op);
                let accept = Accept {
                    named: accept_statement(&ready, "id = $3"),
                    default: accept_statement(&ready, "is_default AND $3::text IS NULL"),
                };
                (op.name.clone(), accept)
            })
            .collect();
        Statements { accept }
    }
}

/// `which` picks the connection. Two statements rather than one with
/// `CASE WHEN $3 IS NULL …`: PostgreSQL caches a generic plan for a prepared
/// statement, and a generic plan cannot use an index through that CASE, so it
/// read every connection of the tenant on every start.
fn accept_statement(ready: &str, which: &str) -> String {
    format!(
        "WITH c AS (\
           SELECT tenant_id, id, provider, display_name, is_default, enabled, consent, credential, \
                  credential_expires_at, health \
           FROM provider_connections \
           WHERE tenant_id = $2 AND {which}), \
         ins AS (\
           INSERT INTO operation_runs (operation, tenant_id, provider_connection_id, subject, status, \
             initiator, actor_id, params, fencing_token, lease_us, tenant_active, created_at, \
             status_changed_at, queued_at, stale_at) \
           SELECT $1, $2, c.id, $4, 'queued', $5, $6, $7, \
             COALESCE((SELECT MAX(r.fencing_token) FROM operation_runs r \
                       WHERE r.tenant_id = $2 AND r.provider_connection_id = c.id), 0) + 1, \
             $8, $9, $10, $10, $10, $11 \
           FROM c WHERE {ready} \
           ON CONFLICT DO NOTHING \
           RETURNING {columns}), \
         h AS (\
           SELECT {columns} FROM operation_runs \
           WHERE tenant_id = $2 AND provider_connection_id IN (SELECT c.id FROM c WHERE {ready}) \
             AND status IN ('queued', 'running') AND NOT EXISTS (SELECT 1 FROM ins)), \
         audit AS (\
           INSERT INTO start_attempts (attempted_at, source, operation, tenant_id, provider_connection_id, \
             subject, actor_id, initiator, outcome, run_id, holder_run_id, params_differ) \
           SELECT $10, $12, $1, $2, ins.provider_connection_id, $4, $6, $5, 'accepted', ins.id, NULL, NULL \
           FROM ins \
           UNION ALL \
           SELECT $10, $12, $1, $2, h.provider_connection_id, $4, $6, $5, \
             CASE WHEN s.same THEN 'deduped' ELSE 'scope_busy' END, CASE WHEN s.same THEN h.id END, h.id, \
             CASE WHEN s.same THEN COALESCE(h.params, '{{}}') <> COALESCE($7, '{{}}') END \
           FROM h CROSS JOIN LATERAL \
             (SELECT h.operation = $1 AND h.subject IS NOT DISTINCT FROM $4 AS same) s \
           WHERE h.stale_at > $10), \
         r AS (SELECT TRUE AS r_accepted, ins.* FROM ins UNION ALL SELECT FALSE, h.* FROM h) \
         SELECT c.tenant_id AS c_tenant_id, c.id AS c_id, c.provider AS c_provider, \
           c.display_name AS c_display_name, c.is_default AS c_is_default, c.enabled AS c_enabled, \
           c.consent AS c_consent, c.credential AS c_credential, \
           c.credential_expires_at AS c_credential_expires_at, c.health AS c_health, \
           ({ready}) AS c_ready, r.* \
         FROM c LEFT JOIN r ON TRUE",
        columns = run_columns!()
    )
}

/// The holder of a scope and, unless it is stale, the audit row of the
/// deduped / scope_busy attempt, in one statement. Stored params are canonical
/// JSON, so comparing them as text is comparing them as documents.
const HOLDER: &str = concat!(
    "WITH h AS (SELECT ", run_columns!(), " FROM operation_runs ",
    "WHERE tenant_id = $1 AND provider_connection_id = $2 AND status IN ('queued', 'running')), ",
    "same AS (SELECT h.id, (h.operation = $5 AND h.subject IS NOT DISTINCT FROM $6) AS same FROM h), ",
    "audit AS (INSERT INTO start_attempts (attempted_at, source, operation, tenant_id, ",
    "provider_connection_id, subject, actor_id, initiator, outcome, run_id, holder_run_id, params_differ) ",
    "SELECT $3, $4, $5, $1, $2, $6, $7, $8, ",
    "CASE WHEN same.same THEN 'deduped' ELSE 'scope_busy' END, ",
    "CASE WHEN same.same THEN h.id END, h.id, ",
    "CASE WHEN same.same THEN COALESCE(h.params, '{}') <> COALESCE($9, '{}') END ",
    "FROM h JOIN same ON same.id = h.id WHERE h.stale_at > $3) ",
    "SELECT ", run_columns!(), " FROM h"
);

/// A blocked run and its audit row, in one statement.
const BLOCKED: &str = concat!(
    "WITH ins AS (INSERT INTO operation_runs (operation, tenant_id, provider_connection_id, subject, ",
    "status, initiator, actor_id, params, lease_us, tenant_active, reason_code, reasons, ",
    "created_at, status_changed_at, finished_at) ",
    "VALUES ($1, $2, $3, $4, 'blocked', $5, $6, $7, $8, $9, $10, $11, $12, $12, $12) ",
    "RETURNING ", run_columns!(), "), ",
    "audit AS (INSERT INTO start_attempts (attempted_at, source, operation, tenant_id, ",
    "provider_connection_id, subject, actor_id, initiator, outcome, run_id, reason_code, reasons) ",
    "SELECT $12, $13, $1, $2, $3, $4, $6, $5, 'blocked', ins.id, $10, $11 FROM ins) ",
    "SELECT ", run_columns!(), " FROM ins"
);

/// The connection columns of the accepted-path statement (prefixed `c_`).
#[derive(FromRow)]
struct ResolvedConnection {
    c_tenant_id: String,
    c_id: String,
    c_provider: String,
    c_display_name: String,
    c_is_default: bool,
    c_enabled: bool,
    c_consent: String,
    c_credential: String,
    c_credential_expires_at: Option<i64>,
    c_health: String,
    c_ready: bool,
}

enum Attempt {
    Accepted(Box<Admission>),
    /// The connection (if any) failed a readiness check.
    NotReady(Option<crate::model::ProviderConnection>),
    /// Ready, but the scope is held by this run (connection id alongside).
    HeldBy(Box<crate::model::Run>, String),
    /// Ready, but a unique index refused the run and its holder committed too
    /// late for this statement to see it.
    Held(String),
}

fn pg<'a>(conn: &'a mut Conn<'_>) -> SResult<(&'a mut PgConnection, bool)> {
    match conn {
        Conn::Pg(c, persistent) => Ok((&mut **c, *persistent)),
        Conn::Sqlite(_) => Err(Error::internal("the PostgreSQL fast path ran on SQLite").into()),
    }
}

pub(super) async fn admit(
    store: &Store,
    backend: &PgBackend,
    plan: &Plan<'_>,
    clock: &Clock,
) -> SResult<Admission> {
    let Some(accept) = backend.fast.accept.get(&plan.op.name) else {
        return store.admit_in_transaction(plan, clock).await;
    };
    let accept = match plan.requested_connection {
        Some(_) => &accept.named,
        None => &accept.default,
    };
    for _ in 0..MAX_ATTEMPTS {
        let now = clock.now();
        let attempt = leased!(store, Access::Write, |conn| try_accept(
            conn, accept, plan, now
        )
        .await)?;
        let (holder, connection_id) = match attempt {
            Attempt::Accepted(admission) => return Ok(*admission),
            Attempt::NotReady(connection) => {
                let reasons = preflight(plan.op, plan.tenant_active, connection.as_ref(), now);
                if reasons.is_empty() {
                    return Err(Error::internal(format!(
                        "readiness SQL and preflight disagree for operation {}",
                        plan.op.name
                    ))
                    .into());
                }
                let connection_id = connection
                    .map(|c| c.id)
                    .or_else(|| plan.requested_connection.map(str::to_string));
                let run = leased!(store, Access::Write, |conn| {
                    record_blocked(conn, plan, connection_id.as_deref(), &reasons, now).await
                })?;
                return Ok(Admission::blocked(Some(run), reasons, connection_id));
            }
            Attempt::HeldBy(holder, connection_id) => (*holder, connection_id),
            Attempt::Held(connection_id) => {
                let holder = leased!(store, Access::Write, |conn| holder_with_audit(
                    conn,
                    plan,
                    &connection_id,
                    now
                )
                .await)?;
                match holder {
                    Some(holder) => (holder, connection_id),
                    // The holder ended between the two statements: try again.
                    None => continue,
                }
            }
        };
        return match judge_holder(plan, &holder, now) {
            Verdict::TakeOver => store.admit_in_transaction(plan, clock).await,
            verdict => Ok(Admission::refused(verdict, holder, connection_id)),
        };
    }
    Err(StoreError::Retry("the scope kept changing hands"))
}

async fn try_accept(
    conn: &mut Conn<'_>,
    sql: &str,
    plan: &Plan<'_>,
    now: Timestamp,
) -> SResult<Attempt> {
    let (conn, persistent) = pg(conn)?;
    let row: Option<PgRow> = sqlx::query(sql)
        .bind(&plan.op.name)
        .bind(plan.tenant_id)
        .bind(plan.requested_connection)
        .bind(plan.subject)
        .bind(plan.initiator.as_str())
        .bind(plan.actor_id)
        .bind(plan.params_json())
        .bind(plan.lease_us())
        .bind(plan.tenant_active)
        .bind(now.as_micros())
        .bind((now + plan.op.dispatch_timeout).as_micros())
        .bind(plan.source.as_str())
        .persistent(persistent)
        .fetch_optional(conn)
        .await?;
    let Some(row) = row else {
        return Ok(Attempt::NotReady(None));
    };
    let c = ResolvedConnection::from_row(&row)?;
    match row.try_get::<Option<bool>, _>("r_accepted")? {
        Some(true) => {
            let run = RunRow::from_row(&row)?.into_run(true)?;
            return Ok(Attempt::Accepted(Box::new(Admission::accepted(
                run, c.c_id, None,
            ))));
        }
        Some(false) => {
            let holder = RunRow::from_row(&row)?.into_run(false)?;
            return Ok(Attempt::HeldBy(Box::new(holder), c.c_id));
        }
        None => {}
    }
    if !c.c_ready {
        let connection = ConnectionRow {
            tenant_id: c.c_tenant_id,
            id: c.c_id,
            provider: c.c_provider,
            display_name: c.c_display_name,
            is_default: c.c_is_default,
            enabled: c.c_enabled,
            consent: c.c_consent,
            credential: c.c_credential,
            credential_expires_at: c.c_credential_expires_at,
            health: c.c_health,
        }
        .into_connection()?;
        return Ok(Attempt::NotReady(Some(connection)));
    }
    Ok(Attempt::Held(c.c_id))
}

async fn holder_with_audit(
    conn: &mut Conn<'_>,
    plan: &Plan<'_>,
    connection_id: &str,
    now: Timestamp,
) -> SResult<Option<crate::model::Run>> {
    let (conn, persistent) = pg(conn)?;
    let row: Option<RunRow> = sqlx::query_as(HOLDER)
        .bind(plan.tenant_id)
        .bind(connection_id)
        .bind(now.as_micros())
        .bind(plan.source.as_str())
        .bind(&plan.op.name)
        .bind(plan.subject)
        .bind(plan.actor_id)
        .bind(plan.initiator.as_str())
        .bind(plan.params_json())
        .persistent(persistent)
        .fetch_optional(conn)
        .await?;
    Ok(row.map(|r| r.into_run(false)).transpose()?)
}

async fn record_blocked(
    conn: &mut Conn<'_>,
    plan: &Plan<'_>,
    connection_id: Option<&str>,
    reasons: &[String],
    now: Timestamp,
) -> SResult<crate::model::Run> {
    let (conn, persistent) = pg(conn)?;
    let row: RunRow = sqlx::query_as(BLOCKED)
        .bind(&plan.op.name)
        .bind(plan.tenant_id)
        .bind(connection_id)
        .bind(plan.subject)
        .bind(plan.initiator.as_str())
        .bind(plan.actor_id)
        .bind(plan.params_json())
        .bind(plan.lease_us())
        .bind(plan.tenant_active)
        .bind(reasons.first())
        .bind(reasons_json(reasons))
        .bind(now.as_micros())
        .bind(plan.source.as_str())
        .persistent(persistent)
        .fetch_one(conn)
        .await?;
    Ok(row.into_run(false)?)
}
