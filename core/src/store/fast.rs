//! PostgreSQL's single-statement admission. Accepted, deduped and scope busy
//! are one round trip: read the server's clock, resolve the connection, check
//! readiness, read the scope's latest admitted run, insert the new run when
//! that run is not active (the partial unique index still refuses a second
//! active run), or else report it as the holder, and write the audit row, all
//! in one statement. Blocked costs one more statement (the blocked run and its
//! audit row); a stale takeover runs the general transaction. When another
//! start committed after the statement's snapshot was taken (the insert saw
//! it, the read could not), a second statement reads the holder.
//!
//! Time is the server's: every instant is read inside the statement that uses
//! it (a manual clock, for tests, is bound instead), and it is returned so the
//! checks made here in Rust judge by the same instant.

use std::collections::HashMap;

use sqlx::postgres::{PgConnection, PgRow};
use sqlx::{FromRow, Row};

use crate::error::Error;
use crate::model::ProviderConnection;
use crate::preflight::{preflight, sql_ready_condition};
use crate::registry::Registry;
use crate::store::db::{Conn, Db};
use crate::store::sql::{SqlText, PG_NOW_US};
use crate::store::{
    judge_holder, reasons_json, run_columns, Access, Admission, ConnectionRow, PgBackend, Plan,
    RunRow, SResult, Store, StoreError, Verdict, MAX_ATTEMPTS,
};
use crate::time::{Clock, Timestamp};

/// The statements of the single-statement paths, rendered once when the
/// gate opens. Each operation type has its own accepted-path statements (its
/// readiness checks are part of the SQL): one for a named connection, one
/// for the tenant's default.
pub(super) struct Statements {
    accept: HashMap<String, Accept>,
    holder: String,
    blocked: String,
}

struct Accept {
    named: String,
    default: String,
}

impl Statements {
    pub(super) fn new(registry: &Registry, sql: &SqlText) -> Self {
        let accept = registry
            .operations()
            .map(|op| {
                let ready = sql_ready_condition(op);
                let accept = Accept {
                    named: sql.render(&accept_statement(&ready, "id = $3")),
                    default: sql
                        .render(&accept_statement(&ready, "is_default AND $3::text IS NULL")),
                };
                (op.name.clone(), accept)
            })
            .collect();
        Statements {
            accept,
            holder: sql.render(&holder_statement()),
            blocked: sql.render(&blocked_statement()),
        }
    }
}

/// Evaluated in a refusal's statement (deduped, scope busy, blocked): its
/// transaction commits without waiting for the WAL flush. A refusal writes
/// only its audit row (and a blocked run), and a server crash may lose the
/// last moments of that history; an admission is never written this way,
/// so it stays exactly as durable as the server's `synchronous_commit`.
/// (`set_config(…, true)` lasts until the end of the statement's own
/// implicit transaction, or of the pooler's explicit one.)
const ASYNC_COMMIT: &str = "set_config('synchronous_commit', 'off', true)";

/// `which` picks the connection. Two statements rather than one with
/// `CASE WHEN $3 IS NULL …`: PostgreSQL caches a generic plan for a prepared
/// statement, and a generic plan cannot use an index through that CASE, so it
/// read every connection of the tenant on every start.
///
/// The new run is inserted only when the scope's latest admitted run `l` is
/// not active *in this statement's snapshot*, and it is admitted no earlier
/// than `l` ended. A run that ends after the snapshot was taken is still
/// active here, so the start is refused by it (deduped / scope busy) instead
/// of waiting for that end and recording an admission before it; a run
/// admitted after the snapshot holds this start's fencing token, so the
/// unique index refuses this one. Recorded history therefore never shows
/// two runs of a scope active at once, whatever the hosts' clocks say.
fn accept_statement(ready: &str, which: &str) -> String {
    format!(
        "WITH t AS (SELECT COALESCE($10::bigint, {PG_NOW_US}) AS now), \
         c AS (\
           SELECT tenant_id, id, provider, display_name, is_default, enabled, consent, credential, \
                  credential_expires_at, health \
           FROM {{connections}} \
           WHERE tenant_id = $2 AND {which} ORDER BY id LIMIT 1), \
         l AS (\
           SELECT {columns} FROM {{runs}} \
           WHERE tenant_id = $2 AND provider_connection_id = (SELECT c.id FROM c) \
             AND fencing_token IS NOT NULL \
           ORDER BY fencing_token DESC LIMIT 1), \
         ins AS (\
           INSERT INTO {{runs}} (operation, tenant_id, provider_connection_id, subject, status, \
             initiator, actor_id, params, fencing_token, lease_us, tenant_active, created_at, \
             status_changed_at, queued_at, stale_at) \
           SELECT $1, $2, c.id, $4, 'queued', $5, $6, $7, \
             COALESCE((SELECT l.fencing_token FROM l), 0) + 1, $8, $9, a.at, a.at, a.at, a.at + $11 \
           FROM c CROSS JOIN t CROSS JOIN LATERAL \
             (SELECT GREATEST(t.now, COALESCE((SELECT l.finished_at FROM l), t.now)) AS at) a \
           WHERE {ready} AND NOT EXISTS (SELECT 1 FROM l WHERE l.status IN ('queued', 'running')) \
           ON CONFLICT DO NOTHING \
           RETURNING {columns}), \
         h AS (\
           SELECT l.* FROM l CROSS JOIN c CROSS JOIN t \
           WHERE {ready} AND l.status IN ('queued', 'running')), \
         audit AS (\
           INSERT INTO {{attempts}} (attempted_at, source, operation, tenant_id, provider_connection_id, \
             subject, actor_id, initiator, outcome, run_id, holder_run_id, params_differ) \
           SELECT ins.created_at, $12, $1, $2, ins.provider_connection_id, $4, $6, $5, 'accepted', \
             ins.id, NULL, NULL \
           FROM ins \
           UNION ALL \
           SELECT t.now, $12, $1, $2, h.provider_connection_id, $4, $6, $5, \
             CASE WHEN s.same THEN 'deduped' ELSE 'scope_busy' END, CASE WHEN s.same THEN h.id END, h.id, \
             CASE WHEN s.same THEN COALESCE(h.params, '{{}}') <> COALESCE($7, '{{}}') END \
           FROM h CROSS JOIN t CROSS JOIN LATERAL \
             (SELECT h.operation = $1 AND h.subject IS NOT DISTINCT FROM $4 AS same) s \
           WHERE h.stale_at > t.now), \
         r AS (SELECT TRUE AS r_accepted, ins.* FROM ins UNION ALL SELECT FALSE, h.* FROM h) \
         SELECT t.now AS now_us, c.tenant_id AS c_tenant_id, c.id AS c_id, c.provider AS c_provider, \
           c.display_name AS c_display_name, c.is_default AS c_is_default, c.enabled AS c_enabled, \
           c.consent AS c_consent, c.credential AS c_credential, \
           c.credential_expires_at AS c_credential_expires_at, c.health AS c_health, \
           ({ready}) AS c_ready, r.*, \
           CASE WHEN r.r_accepted IS FALSE AND r.stale_at > t.now THEN {ASYNC_COMMIT} END \
             AS refusal_commit \
         FROM t LEFT JOIN c ON TRUE LEFT JOIN r ON TRUE",
        columns = run_columns!()
    )
}

/// The holder of a scope and, unless it is stale, the audit row of the
/// deduped / scope_busy attempt, in one statement, with the instant it judged
/// by. Stored params are canonical JSON, so comparing them as text is
/// comparing them as documents.
fn holder_statement() -> String {
    format!(
        "WITH t AS (SELECT COALESCE($3::bigint, {PG_NOW_US}) AS now), \
         h AS (SELECT {columns} FROM {{runs}} \
           WHERE tenant_id = $1 AND provider_connection_id = $2 AND status IN ('queued', 'running')), \
         same AS (SELECT h.id, (h.operation = $5 AND h.subject IS NOT DISTINCT FROM $6) AS same FROM h), \
         audit AS (INSERT INTO {{attempts}} (attempted_at, source, operation, tenant_id, \
           provider_connection_id, subject, actor_id, initiator, outcome, run_id, holder_run_id, params_differ) \
           SELECT t.now, $4, $5, $1, $2, $6, $7, $8, \
             CASE WHEN same.same THEN 'deduped' ELSE 'scope_busy' END, \
             CASE WHEN same.same THEN h.id END, h.id, \
             CASE WHEN same.same THEN COALESCE(h.params, '{{}}') <> COALESCE($9, '{{}}') END \
           FROM h JOIN same ON same.id = h.id CROSS JOIN t WHERE h.stale_at > t.now) \
         SELECT h.*, t.now AS now_us, {ASYNC_COMMIT} AS refusal_commit FROM h CROSS JOIN t",
        columns = run_columns!()
    )
}

/// A blocked run and its audit row, in one statement.
fn blocked_statement() -> String {
    format!(
        "WITH t AS (SELECT COALESCE($12::bigint, {PG_NOW_US}) AS now), \
         ins AS (INSERT INTO {{runs}} (operation, tenant_id, provider_connection_id, subject, \
           status, initiator, actor_id, params, lease_us, tenant_active, reason_code, reasons, \
           created_at, status_changed_at, finished_at) \
           SELECT $1, $2, $3, $4, 'blocked', $5, $6, $7, $8, $9, $10, $11, t.now, t.now, t.now FROM t \
           RETURNING {columns}), \
         audit AS (INSERT INTO {{attempts}} (attempted_at, source, operation, tenant_id, \
           provider_connection_id, subject, actor_id, initiator, outcome, run_id, reason_code, reasons) \
           SELECT ins.created_at, $13, $1, $2, $3, $4, $6, $5, 'blocked', ins.id, $10, $11 FROM ins) \
         SELECT {columns}, {ASYNC_COMMIT} AS refusal_commit FROM ins",
        columns = run_columns!()
    )
}

/// The connection columns of the accepted-path statement (prefixed `c_`);
/// all NULL when the tenant has no such connection.
#[derive(FromRow)]
struct ResolvedConnection {
    c_tenant_id: Option<String>,
    c_id: Option<String>,
    c_provider: Option<String>,
    c_display_name: Option<String>,
    c_is_default: Option<bool>,
    c_enabled: Option<bool>,
    c_consent: Option<String>,
    c_credential: Option<String>,
    c_credential_expires_at: Option<i64>,
    c_health: Option<String>,
    c_ready: Option<bool>,
}

impl ResolvedConnection {
    fn into_connection(self) -> SResult<Option<ProviderConnection>> {
        let Some(id) = self.c_id else {
            return Ok(None);
        };
        let missing =
            || Error::internal("the accepted-path statement returned a partial connection");
        Ok(Some(
            ConnectionRow {
                tenant_id: self.c_tenant_id.ok_or_else(missing)?,
                id,
                provider: self.c_provider.ok_or_else(missing)?,
                display_name: self.c_display_name.ok_or_else(missing)?,
                is_default: self.c_is_default.ok_or_else(missing)?,
                enabled: self.c_enabled.ok_or_else(missing)?,
                consent: self.c_consent.ok_or_else(missing)?,
                credential: self.c_credential.ok_or_else(missing)?,
                credential_expires_at: self.c_credential_expires_at,
                health: self.c_health.ok_or_else(missing)?,
            }
            .into_connection()?,
        ))
    }
}

enum Attempt {
    Accepted(Box<Admission>),
    /// The connection (if any) failed a readiness check at this instant.
    NotReady(Option<ProviderConnection>, Timestamp),
    /// Ready, but the scope is held by this run (connection id and the
    /// instant of the statement alongside).
    HeldBy(Box<crate::model::Run>, String, Timestamp),
    /// Ready, but a unique index refused the run and its holder committed too
    /// late for this statement to see it.
    Held(String),
}

fn pg<'a>(conn: &'a mut Conn<'_>) -> SResult<(&'a mut PgConnection, bool)> {
    match &mut conn.db {
        Db::Pg(c, persistent) => Ok((&mut **c, *persistent)),
        Db::Sqlite(_) => Err(Error::internal("the PostgreSQL fast path ran on SQLite").into()),
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
    // `None`: the server's clock decides, inside each statement.
    let fixed = clock.fixed();
    for _ in 0..MAX_ATTEMPTS {
        let attempt = leased!(store, Access::Write, |conn| try_accept(
            conn, accept, plan, fixed
        )
        .await)?;
        let (holder, connection_id, now) = match attempt {
            Attempt::Accepted(admission) => return Ok(*admission),
            Attempt::NotReady(connection, now) => {
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
                let statement = &backend.fast.blocked;
                let run = leased!(store, Access::Write, |conn| {
                    record_blocked(
                        conn,
                        statement,
                        plan,
                        connection_id.as_deref(),
                        &reasons,
                        fixed,
                    )
                    .await
                })?;
                return Ok(Admission::blocked(Some(run), reasons, connection_id));
            }
            Attempt::HeldBy(holder, connection_id, now) => (*holder, connection_id, now),
            Attempt::Held(connection_id) => {
                let statement = &backend.fast.holder;
                let holder = leased!(store, Access::Write, |conn| holder_with_audit(
                    conn,
                    statement,
                    plan,
                    &connection_id,
                    fixed
                )
                .await)?;
                match holder {
                    Some((holder, now)) => (holder, connection_id, now),
                    // The holder ended between the two statements: try again.
                    None => {
                        crate::metrics::retry();
                        continue;
                    }
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
    fixed: Option<Timestamp>,
) -> SResult<Attempt> {
    let (conn, persistent) = pg(conn)?;
    crate::metrics::round_trip();
    let row: PgRow = sqlx::query(sql)
        .bind(&plan.op.name)
        .bind(plan.tenant_id)
        .bind(plan.requested_connection)
        .bind(plan.subject)
        .bind(plan.initiator.as_str())
        .bind(plan.actor_id)
        .bind(plan.params_json())
        .bind(plan.lease_us())
        .bind(plan.tenant_active)
        .bind(fixed.map(Timestamp::as_micros))
        .bind(i64::try_from(plan.op.dispatch_timeout.as_micros()).unwrap_or(i64::MAX))
        .bind(plan.source.as_str())
        .persistent(persistent)
        .fetch_one(conn)
        .await?;
    let now = Timestamp::from_micros(row.try_get::<i64, _>("now_us")?);
    let resolved = ResolvedConnection::from_row(&row)?;
    let ready = resolved.c_ready == Some(true);
    let accepted = row.try_get::<Option<bool>, _>("r_accepted")?;
    let Some(connection) = resolved.into_connection()? else {
        return Ok(Attempt::NotReady(None, now));
    };
    match accepted {
        Some(true) => {
            let run = RunRow::from_row(&row)?.into_run(true)?;
            Ok(Attempt::Accepted(Box::new(Admission::accepted(
                run,
                connection.id,
                None,
            ))))
        }
        Some(false) => {
            let holder = RunRow::from_row(&row)?.into_run(false)?;
            Ok(Attempt::HeldBy(Box::new(holder), connection.id, now))
        }
        None if !ready => Ok(Attempt::NotReady(Some(connection), now)),
        None => Ok(Attempt::Held(connection.id)),
    }
}

async fn holder_with_audit(
    conn: &mut Conn<'_>,
    sql: &str,
    plan: &Plan<'_>,
    connection_id: &str,
    fixed: Option<Timestamp>,
) -> SResult<Option<(crate::model::Run, Timestamp)>> {
    let (conn, persistent) = pg(conn)?;
    crate::metrics::round_trip();
    let row: Option<PgRow> = sqlx::query(sql)
        .bind(plan.tenant_id)
        .bind(connection_id)
        .bind(fixed.map(Timestamp::as_micros))
        .bind(plan.source.as_str())
        .bind(&plan.op.name)
        .bind(plan.subject)
        .bind(plan.actor_id)
        .bind(plan.initiator.as_str())
        .bind(plan.params_json())
        .persistent(persistent)
        .fetch_optional(conn)
        .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let now = Timestamp::from_micros(row.try_get::<i64, _>("now_us")?);
    Ok(Some((RunRow::from_row(&row)?.into_run(false)?, now)))
}

async fn record_blocked(
    conn: &mut Conn<'_>,
    sql: &str,
    plan: &Plan<'_>,
    connection_id: Option<&str>,
    reasons: &[String],
    fixed: Option<Timestamp>,
) -> SResult<crate::model::Run> {
    let (conn, persistent) = pg(conn)?;
    crate::metrics::round_trip();
    let row: RunRow = sqlx::query_as(sql)
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
        .bind(fixed.map(Timestamp::as_micros))
        .bind(plan.source.as_str())
        .persistent(persistent)
        .fetch_one(conn)
        .await?;
    Ok(row.into_run(false)?)
}

/// Whether `relation` is a view (or materialized view) rather than the
/// gate's own table: a host serving connection facts from its own tables.
/// Always false on SQLite.
pub(super) async fn is_view(conn: &mut Conn<'_>, relation: &str) -> SResult<bool> {
    let Db::Pg(conn, persistent) = &mut conn.db else {
        return Ok(false);
    };
    crate::metrics::round_trip();
    let kind: Option<String> =
        sqlx::query_scalar("SELECT relkind::text FROM pg_class WHERE oid = to_regclass($1)")
            .bind(relation)
            .persistent(*persistent)
            .fetch_optional(&mut **conn)
            .await?;
    Ok(matches!(kind.as_deref(), Some("v" | "m")))
}
