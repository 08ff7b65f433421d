//! The embedded SQLite store: one file, WAL, bundled SQLite.
//!
//! Every write runs in a `BEGIN IMMEDIATE` transaction, which takes SQLite's
//! single write lock up front, so read-then-write steps cannot interleave between
//! processes. The scope lock itself is the partial unique index
//! `operation_runs_one_active_per_scope`: admission inserts and lets the index
//! refuse a second active run.

use std::str::FromStr;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool, Transaction};

use crate::error::{Error, Result};
use crate::gate::GateOptions;
use crate::model::{
    Completion, Outcome, ProviderConnection, Run, RunFilter, RunStatus, StartAttempt,
};
use crate::preflight::preflight;
use crate::reason;
use crate::registry::Registry;
use crate::store::{
    attempt_columns, connection_columns, judge_holder, reasons_json, run_columns, Admission,
    AttemptRow, AttemptValues, ConnectionRow, Plan, RunRow, Source, Verdict,
};
use crate::time::{Clock, Timestamp};

type Tx = Transaction<'static, Sqlite>;

/// The SQLite backend.
#[derive(Debug, Clone)]
pub(crate) struct SqliteStore {
    pool: SqlitePool,
}

/// The end of one run and what it set in motion on its scope.
pub(crate) struct Ended {
    pub run: Run,
    pub next: Option<Admission>,
    pub next_blocked: Vec<Admission>,
}

impl SqliteStore {
    pub(crate) async fn open(url: &str, options: &GateOptions) -> Result<Self> {
        let url = if url.starts_with("sqlite:") {
            url.to_string()
        } else {
            format!("sqlite://{url}")
        };
        let connect = SqliteConnectOptions::from_str(&url)
            .map_err(|err| Error::StoreUnavailable {
                message: format!("bad SQLite URL \"{url}\": {err}"),
                source: Some(err),
            })?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(options.statement_timeout)
            .foreign_keys(true);
        // An in-memory database exists once per connection: keep exactly one.
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let max = if in_memory {
            1
        } else {
            options.max_connections.max(1)
        };
        let mut pool = SqlitePoolOptions::new()
            .max_connections(max)
            .acquire_timeout(options.acquire_timeout);
        if in_memory {
            // Closing the only connection would drop the database with it.
            pool = pool
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None);
        }
        let pool = pool.connect_with(connect).await?;
        Ok(SqliteStore { pool })
    }

    pub(crate) async fn migrate(&self) -> Result<()> {
        sqlx::migrate!("../migrations/sqlite")
            .run(&self.pool)
            .await?;
        Ok(())
    }

    pub(crate) async fn close(&self) {
        self.pool.close().await;
    }

    /// A write transaction holding SQLite's write lock from the first statement.
    async fn write(&self) -> Result<Tx> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    pub(crate) async fn admit(&self, plan: &Plan<'_>, clock: &Clock) -> Result<Admission> {
        let mut tx = self.write().await?;
        // "now" is read under the write lock, so timestamps follow commit order.
        let now = clock.now();
        let admission = admit_in(&mut tx, plan, now).await?;
        insert_attempt(&mut tx, &AttemptValues::for_plan(plan, &admission), now).await?;
        tx.commit().await?;
        Ok(admission)
    }

    pub(crate) async fn record_denied(
        &self,
        plan: &Plan<'_>,
        status: u16,
        clock: &Clock,
    ) -> Result<()> {
        let mut tx = self.write().await?;
        let now = clock.now();
        let admission = Admission {
            outcome: Outcome::Denied,
            run: None,
            holder: None,
            reasons: Vec::new(),
            connection_id: None,
            replaced_run_id: None,
            params_differ: None,
        };
        let mut values = AttemptValues::for_plan(plan, &admission);
        values.status = Some(status);
        insert_attempt(&mut tx, &values, now).await?;
        tx.commit().await?;
        Ok(())
    }

    pub(crate) async fn check(&self, plans: &[Plan<'_>], clock: &Clock) -> Result<Vec<Admission>> {
        // One read transaction: every answer comes from the same snapshot.
        let mut tx = self.pool.begin().await?;
        let now = clock.now();
        let mut out = Vec::with_capacity(plans.len());
        for plan in plans {
            out.push(check_in(&mut tx, plan, now).await?);
        }
        tx.commit().await?;
        Ok(out)
    }

    pub(crate) async fn start_sequence(
        &self,
        first: &Plan<'_>,
        rest: &[Plan<'_>],
        clock: &Clock,
    ) -> Result<(Admission, Vec<Run>)> {
        let mut tx = self.write().await?;
        let now = clock.now();
        let mut admission = admit_in(&mut tx, first, now).await?;
        insert_attempt(&mut tx, &AttemptValues::for_plan(first, &admission), now).await?;
        let mut pending = Vec::new();
        if admission.outcome == Outcome::Accepted {
            if let (Some(run), Some(connection)) =
                (&mut admission.run, admission.connection_id.clone())
            {
                sqlx::query("UPDATE operation_runs SET sequence_id = id, sequence_position = 0 WHERE id = $1")
                    .bind(run.id)
                    .execute(&mut *tx)
                    .await?;
                run.sequence_id = Some(run.id);
                run.sequence_position = Some(0);
                for (i, plan) in rest.iter().enumerate() {
                    let position = i64::try_from(i + 1).unwrap_or(i64::MAX);
                    let row =
                        insert_pending(&mut tx, plan, &connection, run.id, position, now).await?;
                    pending.push(row.into_run(false)?);
                }
            }
        }
        tx.commit().await?;
        Ok((admission, pending))
    }

    pub(crate) async fn mark_running(&self, run_id: i64, token: i64, clock: &Clock) -> Result<Run> {
        let mut tx = self.write().await?;
        let now = clock.now();
        let row: Option<RunRow> = sqlx::query_as(concat!(
            "UPDATE operation_runs SET status = 'running', ",
            "started_at = COALESCE(started_at, $3), ",
            "status_changed_at = CASE WHEN status = 'running' THEN status_changed_at ELSE $3 END, ",
            "stale_at = $3 + lease_us ",
            "WHERE id = $1 AND fencing_token = $2 AND status IN ('queued', 'running') ",
            "RETURNING ",
            run_columns!()
        ))
        .bind(run_id)
        .bind(token)
        .bind(now.as_micros())
        .fetch_optional(&mut *tx)
        .await?;
        let run = match row {
            Some(row) => row.into_run(true)?,
            None => return Err(refusal(&mut tx, run_id, token, "mark it running").await),
        };
        tx.commit().await?;
        Ok(run)
    }

    pub(crate) async fn heartbeat(&self, run_id: i64, token: i64, clock: &Clock) -> Result<Run> {
        let mut tx = self.write().await?;
        let now = clock.now();
        let row: Option<RunRow> = sqlx::query_as(concat!(
            "UPDATE operation_runs SET stale_at = $3 + lease_us ",
            "WHERE id = $1 AND fencing_token = $2 AND status = 'running' ",
            "RETURNING ",
            run_columns!()
        ))
        .bind(run_id)
        .bind(token)
        .bind(now.as_micros())
        .fetch_optional(&mut *tx)
        .await?;
        let run = match row {
            Some(row) => row.into_run(true)?,
            None => return Err(refusal(&mut tx, run_id, token, "heartbeat it").await),
        };
        tx.commit().await?;
        Ok(run)
    }

    pub(crate) async fn complete(
        &self,
        registry: &Registry,
        completion: &Completion,
        summary: Option<String>,
        clock: &Clock,
    ) -> Result<Ended> {
        let (run_id, token, outcome) = (
            completion.run_id,
            completion.fencing_token,
            completion.outcome,
        );
        let reason_code = completion.reason_code.as_deref();
        let mut tx = self.write().await?;
        let now = clock.now();
        // Succeeding needs a worker that started; failing or cancelling may
        // happen straight from the queue.
        let row: Option<RunRow> = sqlx::query_as(concat!(
            "UPDATE operation_runs SET status = $3, reason_code = $4, summary = $5, ",
            "finished_at = $6, status_changed_at = $6, stale_at = NULL ",
            "WHERE id = $1 AND fencing_token = $2 ",
            "AND (status = 'running' OR (status = 'queued' AND $3 IN ('failed', 'cancelled'))) ",
            "RETURNING ",
            run_columns!()
        ))
        .bind(run_id)
        .bind(token)
        .bind(outcome.status().as_str())
        .bind(reason_code)
        .bind(summary)
        .bind(now.as_micros())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            let action = format!("complete it as {outcome}");
            return Err(refusal(&mut tx, run_id, token, &action).await);
        };
        let run = row.into_run(true)?;
        let (next, next_blocked) = advance_scope(&mut tx, registry, &run, now).await?;
        tx.commit().await?;
        Ok(Ended {
            run,
            next,
            next_blocked,
        })
    }

    pub(crate) async fn cancel(
        &self,
        registry: &Registry,
        run_id: i64,
        reason_code: Option<&str>,
        clock: &Clock,
    ) -> Result<Ended> {
        let mut tx = self.write().await?;
        let now = clock.now();
        let row: Option<RunRow> = sqlx::query_as(concat!(
            "UPDATE operation_runs SET status = 'cancelled', reason_code = $2, ",
            "finished_at = $3, status_changed_at = $3, stale_at = NULL ",
            "WHERE id = $1 AND status IN ('pending', 'queued', 'running') ",
            "RETURNING ",
            run_columns!()
        ))
        .bind(run_id)
        .bind(reason_code)
        .bind(now.as_micros())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Err(match fetch_run(&mut tx, run_id).await {
                Ok(Some(run)) => Error::transition(
                    run_id,
                    format!("the run is {} and can no longer be cancelled", run.status),
                ),
                Ok(None) => Error::RunNotFound { run_id },
                Err(err) => err,
            });
        };
        let run = row.into_run(false)?;
        let (next, next_blocked) = advance_scope(&mut tx, registry, &run, now).await?;
        tx.commit().await?;
        Ok(Ended {
            run,
            next,
            next_blocked,
        })
    }

    /// Ends every stale active run and gives freed scopes to their pending runs.
    /// Returns the reaped runs and the pending runs admitted or blocked.
    pub(crate) async fn reap(
        &self,
        registry: &Registry,
        clock: &Clock,
    ) -> Result<(Vec<Run>, Vec<Admission>)> {
        let mut tx = self.write().await?;
        let now = clock.now();
        let rows: Vec<RunRow> = sqlx::query_as(concat!(
            "UPDATE operation_runs SET status = 'failed', reason_code = $2, ",
            "finished_at = $1, status_changed_at = $1, stale_at = NULL ",
            "WHERE status IN ('queued', 'running') AND stale_at <= $1 ",
            "RETURNING ",
            run_columns!()
        ))
        .bind(now.as_micros())
        .bind(reason::RUN_LEASE_EXPIRED)
        .fetch_all(&mut *tx)
        .await?;
        let reaped = rows
            .into_iter()
            .map(|r| r.into_run(false))
            .collect::<Result<Vec<Run>>>()?;
        // Every free scope that has pending runs gets its turn: the ones just
        // reaped, and any whose predecessor ended without advancing them.
        let scopes: Vec<(String, String)> = sqlx::query_as(concat!(
            "SELECT DISTINCT tenant_id, provider_connection_id FROM operation_runs p ",
            "WHERE status = 'pending' AND provider_connection_id IS NOT NULL ",
            "AND NOT EXISTS (SELECT 1 FROM operation_runs a WHERE a.tenant_id = p.tenant_id ",
            "AND a.provider_connection_id = p.provider_connection_id AND a.status IN ('queued', 'running'))"
        ))
        .fetch_all(&mut *tx)
        .await?;
        let mut next = Vec::new();
        for (tenant_id, connection_id) in scopes {
            let (admitted, blocked) =
                advance(&mut tx, registry, &tenant_id, &connection_id, now).await?;
            next.extend(blocked);
            next.extend(admitted);
        }
        tx.commit().await?;
        Ok((reaped, next))
    }

    pub(crate) async fn upsert_connection(
        &self,
        conn: &ProviderConnection,
        clock: &Clock,
    ) -> Result<ProviderConnection> {
        let mut tx = self.write().await?;
        let now = clock.now();
        if conn.is_default {
            sqlx::query(
                "UPDATE provider_connections SET is_default = 0 WHERE tenant_id = $1 AND id <> $2 AND is_default = 1",
            )
            .bind(&conn.tenant_id)
            .bind(&conn.id)
            .execute(&mut *tx)
            .await?;
        }
        let row: ConnectionRow = sqlx::query_as(concat!(
            "INSERT INTO provider_connections (", connection_columns!(), ", updated_at) ",
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ",
            "ON CONFLICT (tenant_id, id) DO UPDATE SET provider = excluded.provider, ",
            "display_name = excluded.display_name, is_default = excluded.is_default, ",
            "enabled = excluded.enabled, consent = excluded.consent, credential = excluded.credential, ",
            "credential_expires_at = excluded.credential_expires_at, health = excluded.health, ",
            "updated_at = excluded.updated_at ",
            "RETURNING ", connection_columns!()
        ))
        .bind(&conn.tenant_id)
        .bind(&conn.id)
        .bind(&conn.provider)
        .bind(if conn.display_name.is_empty() { &conn.id } else { &conn.display_name })
        .bind(conn.is_default)
        .bind(conn.enabled)
        .bind(conn.consent.as_str())
        .bind(conn.credential.as_str())
        .bind(conn.credential_expires_at.map(Timestamp::as_micros))
        .bind(conn.health.as_str())
        .bind(now.as_micros())
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        row.into_connection()
    }

    pub(crate) async fn get_connection(
        &self,
        tenant_id: &str,
        id: &str,
    ) -> Result<Option<ProviderConnection>> {
        let row: Option<ConnectionRow> = sqlx::query_as(concat!(
            "SELECT ",
            connection_columns!(),
            " FROM provider_connections WHERE tenant_id = $1 AND id = $2"
        ))
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(ConnectionRow::into_connection).transpose()
    }

    pub(crate) async fn default_connection(
        &self,
        tenant_id: &str,
    ) -> Result<Option<ProviderConnection>> {
        let row: Option<ConnectionRow> = sqlx::query_as(concat!(
            "SELECT ",
            connection_columns!(),
            " FROM provider_connections WHERE tenant_id = $1 AND is_default = 1"
        ))
        .bind(tenant_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(ConnectionRow::into_connection).transpose()
    }

    pub(crate) async fn list_connections(
        &self,
        tenant_id: &str,
    ) -> Result<Vec<ProviderConnection>> {
        let rows: Vec<ConnectionRow> = sqlx::query_as(concat!(
            "SELECT ",
            connection_columns!(),
            " FROM provider_connections WHERE tenant_id = $1 ORDER BY id"
        ))
        .bind(tenant_id)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(ConnectionRow::into_connection)
            .collect()
    }

    pub(crate) async fn get_run(&self, run_id: i64) -> Result<Run> {
        let mut conn = self.pool.acquire().await?;
        fetch_run(&mut conn, run_id)
            .await?
            .ok_or(Error::RunNotFound { run_id })
    }

    pub(crate) async fn list_runs(&self, filter: &RunFilter) -> Result<Vec<Run>> {
        let rows: Vec<RunRow> = sqlx::query_as(concat!(
            "SELECT ",
            run_columns!(),
            " FROM operation_runs ",
            "WHERE ($1 IS NULL OR tenant_id = $1) AND ($2 IS NULL OR operation = $2) ",
            "AND ($3 IS NULL OR status = $3) AND ($4 = 0 OR status IN ('queued', 'running')) ",
            "ORDER BY id DESC LIMIT $5"
        ))
        .bind(filter.tenant_id.as_deref())
        .bind(filter.operation.as_deref())
        .bind(filter.status.map(RunStatus::as_str))
        .bind(filter.active)
        .bind(i64::from(filter.limit.unwrap_or(100).min(10_000)))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(|r| r.into_run(false)).collect()
    }

    pub(crate) async fn attempts_for_run(&self, run_id: i64) -> Result<Vec<StartAttempt>> {
        let rows: Vec<AttemptRow> = sqlx::query_as(concat!(
            "SELECT id, ",
            attempt_columns!(),
            " FROM start_attempts ",
            "WHERE run_id = $1 OR holder_run_id = $1 OR replaced_run_id = $1 ORDER BY id"
        ))
        .bind(run_id)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(AttemptRow::into_attempt).collect()
    }

    pub(crate) async fn list_attempts(
        &self,
        tenant_id: Option<&str>,
        limit: u32,
    ) -> Result<Vec<StartAttempt>> {
        let rows: Vec<AttemptRow> = sqlx::query_as(concat!(
            "SELECT id, ",
            attempt_columns!(),
            " FROM start_attempts ",
            "WHERE ($1 IS NULL OR tenant_id = $1) ORDER BY id DESC LIMIT $2"
        ))
        .bind(tenant_id)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(AttemptRow::into_attempt).collect()
    }
}

async fn fetch_run(conn: &mut sqlx::SqliteConnection, run_id: i64) -> Result<Option<Run>> {
    let row: Option<RunRow> = sqlx::query_as(concat!(
        "SELECT ",
        run_columns!(),
        " FROM operation_runs WHERE id = $1"
    ))
    .bind(run_id)
    .fetch_optional(conn)
    .await?;
    row.map(|r| r.into_run(false)).transpose()
}

/// Explains why a worker call on `run_id` was refused.
async fn refusal(tx: &mut Tx, run_id: i64, token: i64, action: &str) -> Error {
    let row: std::result::Result<Option<RunRow>, sqlx::Error> = sqlx::query_as(concat!(
        "SELECT ",
        run_columns!(),
        " FROM operation_runs WHERE id = $1"
    ))
    .bind(run_id)
    .fetch_optional(&mut **tx)
    .await;
    match row {
        Err(err) => err.into(),
        Ok(None) => Error::RunNotFound { run_id },
        Ok(Some(row)) => {
            let current = row.fencing_token;
            match row.into_run(false) {
                Err(err) => err,
                Ok(run) => Error::transition(run_id, refusal_message(&run, current, token, action)),
            }
        }
    }
}

pub(crate) fn refusal_message(
    run: &Run,
    current_token: Option<i64>,
    token: i64,
    action: &str,
) -> String {
    if current_token != Some(token) {
        return format!(
            "fencing token {token} does not own this run; cannot {action} (the worker must stop)"
        );
    }
    match run.status {
        RunStatus::Queued => {
            format!("the run is queued, not running; cannot {action} (call mark_running first)")
        }
        status if status.is_terminal() => {
            let why = run
                .reason_code
                .as_deref()
                .map(|c| format!(" ({c})"))
                .unwrap_or_default();
            format!("the run is already {status}{why}; cannot {action} (the worker must stop)")
        }
        status => format!("the run is {status}; cannot {action}"),
    }
}

async fn resolve(
    tx: &mut Tx,
    tenant_id: &str,
    requested: Option<&str>,
) -> Result<Option<ProviderConnection>> {
    let row: Option<ConnectionRow> = match requested {
        Some(id) => {
            sqlx::query_as(concat!(
                "SELECT ",
                connection_columns!(),
                " FROM provider_connections WHERE tenant_id = $1 AND id = $2"
            ))
            .bind(tenant_id)
            .bind(id)
            .fetch_optional(&mut **tx)
            .await?
        }
        None => {
            sqlx::query_as(concat!(
                "SELECT ",
                connection_columns!(),
                " FROM provider_connections WHERE tenant_id = $1 AND is_default = 1"
            ))
            .bind(tenant_id)
            .fetch_optional(&mut **tx)
            .await?
        }
    };
    row.map(ConnectionRow::into_connection).transpose()
}

async fn active_holder(tx: &mut Tx, tenant_id: &str, connection_id: &str) -> Result<Option<Run>> {
    let row: Option<RunRow> =
        sqlx::query_as(concat!(
        "SELECT ", run_columns!(), " FROM operation_runs ",
        "WHERE tenant_id = $1 AND provider_connection_id = $2 AND status IN ('queued', 'running')"
    ))
        .bind(tenant_id)
        .bind(connection_id)
        .fetch_optional(&mut **tx)
        .await?;
    row.map(|r| r.into_run(false)).transpose()
}

/// Resolution, preflight and admission of one plan inside a write transaction.
async fn admit_in(tx: &mut Tx, plan: &Plan<'_>, now: Timestamp) -> Result<Admission> {
    let connection = resolve(tx, plan.tenant_id, plan.requested_connection).await?;
    let reasons = preflight(plan.op, plan.tenant_active, connection.as_ref(), now);
    let connection_id = connection
        .map(|c| c.id)
        .or_else(|| plan.requested_connection.map(str::to_string));
    if !reasons.is_empty() {
        let run = insert_blocked(tx, plan, connection_id.as_deref(), &reasons, now).await?;
        return Ok(Admission::blocked(Some(run), reasons, connection_id));
    }
    let connection_id =
        connection_id.ok_or_else(|| Error::internal("preflight passed without a connection"))?;
    if let Some(run) = insert_queued(tx, plan, &connection_id, None, now).await? {
        return Ok(accepted(run, connection_id, None));
    }
    let holder = active_holder(tx, plan.tenant_id, &connection_id)
        .await?
        .ok_or_else(|| Error::internal("admission conflicted but no active run holds the scope"))?;
    Ok(match judge_holder(plan, &holder, now) {
        Verdict::TakeOver => {
            end_stale(tx, holder.id, now).await?;
            let run = insert_queued(tx, plan, &connection_id, Some(holder.id), now)
                .await?
                .ok_or_else(|| {
                    Error::internal("the scope stayed held after its stale run ended")
                })?;
            accepted(run, connection_id, Some(holder.id))
        }
        Verdict::Dedupe { params_differ } => Admission {
            outcome: Outcome::Deduped,
            run: Some(holder.clone()),
            holder: Some(holder),
            reasons: Vec::new(),
            connection_id: Some(connection_id),
            replaced_run_id: None,
            params_differ: Some(params_differ),
        },
        Verdict::Busy => Admission {
            outcome: Outcome::ScopeBusy,
            run: None,
            holder: Some(holder),
            reasons: Vec::new(),
            connection_id: Some(connection_id),
            replaced_run_id: None,
            params_differ: None,
        },
    })
}

fn accepted(run: Run, connection_id: String, replaced: Option<i64>) -> Admission {
    Admission {
        outcome: Outcome::Accepted,
        run: Some(run),
        holder: None,
        reasons: Vec::new(),
        connection_id: Some(connection_id),
        replaced_run_id: replaced,
        params_differ: None,
    }
}

/// The same decision as [`admit_in`], without writing anything.
async fn check_in(tx: &mut Tx, plan: &Plan<'_>, now: Timestamp) -> Result<Admission> {
    let connection = resolve(tx, plan.tenant_id, plan.requested_connection).await?;
    let reasons = preflight(plan.op, plan.tenant_active, connection.as_ref(), now);
    let connection_id = connection
        .map(|c| c.id)
        .or_else(|| plan.requested_connection.map(str::to_string));
    if !reasons.is_empty() {
        return Ok(Admission::blocked(None, reasons, connection_id));
    }
    let connection_id =
        connection_id.ok_or_else(|| Error::internal("preflight passed without a connection"))?;
    let holder = active_holder(tx, plan.tenant_id, &connection_id).await?;
    let mut admission = Admission {
        outcome: Outcome::Accepted,
        run: None,
        holder: None,
        reasons: Vec::new(),
        connection_id: Some(connection_id),
        replaced_run_id: None,
        params_differ: None,
    };
    if let Some(holder) = holder {
        match judge_holder(plan, &holder, now) {
            Verdict::TakeOver => admission.replaced_run_id = Some(holder.id),
            Verdict::Dedupe { params_differ } => {
                admission.outcome = Outcome::Deduped;
                admission.run = Some(holder.clone());
                admission.holder = Some(holder);
                admission.params_differ = Some(params_differ);
            }
            Verdict::Busy => {
                admission.outcome = Outcome::ScopeBusy;
                admission.holder = Some(holder);
            }
        }
    }
    Ok(admission)
}

/// Inserts a queued run unless the scope is held; `None` means the unique
/// index refused it. The fencing token is the scope's highest token plus one.
async fn insert_queued(
    tx: &mut Tx,
    plan: &Plan<'_>,
    connection_id: &str,
    replaced: Option<i64>,
    now: Timestamp,
) -> Result<Option<Run>> {
    let stale_at = now + plan.op.dispatch_timeout;
    let row: Option<RunRow> = sqlx::query_as(concat!(
        "INSERT INTO operation_runs (operation, tenant_id, provider_connection_id, subject, status, ",
        "initiator, actor_id, params, fencing_token, lease_us, tenant_active, replaced_run_id, ",
        "created_at, status_changed_at, queued_at, stale_at) ",
        "SELECT $1, $2, $3, $4, 'queued', $5, $6, $7, ",
        "COALESCE((SELECT MAX(fencing_token) FROM operation_runs WHERE tenant_id = $2 AND provider_connection_id = $3), 0) + 1, ",
        "$8, $9, $10, $11, $11, $11, $12 WHERE true ",
        // No conflict target: any unique index may refuse, the scope lock foremost.
        "ON CONFLICT DO NOTHING ",
        "RETURNING ", run_columns!()
    ))
    .bind(&plan.op.name)
    .bind(plan.tenant_id)
    .bind(connection_id)
    .bind(plan.subject)
    .bind(plan.initiator.as_str())
    .bind(plan.actor_id)
    .bind(plan.params_json())
    .bind(plan.lease_us())
    .bind(plan.tenant_active)
    .bind(replaced)
    .bind(now.as_micros())
    .bind(stale_at.as_micros())
    .fetch_optional(&mut **tx)
    .await?;
    row.map(|r| r.into_run(true)).transpose()
}

async fn insert_blocked(
    tx: &mut Tx,
    plan: &Plan<'_>,
    connection_id: Option<&str>,
    reasons: &[String],
    now: Timestamp,
) -> Result<Run> {
    let row: RunRow = sqlx::query_as(concat!(
        "INSERT INTO operation_runs (operation, tenant_id, provider_connection_id, subject, status, ",
        "initiator, actor_id, params, lease_us, tenant_active, reason_code, reasons, ",
        "created_at, status_changed_at, finished_at) ",
        "VALUES ($1, $2, $3, $4, 'blocked', $5, $6, $7, $8, $9, $10, $11, $12, $12, $12) ",
        "RETURNING ", run_columns!()
    ))
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
    .fetch_one(&mut **tx)
    .await?;
    row.into_run(false)
}

async fn insert_pending(
    tx: &mut Tx,
    plan: &Plan<'_>,
    connection_id: &str,
    sequence_id: i64,
    position: i64,
    now: Timestamp,
) -> Result<RunRow> {
    Ok(sqlx::query_as(concat!(
        "INSERT INTO operation_runs (operation, tenant_id, provider_connection_id, subject, status, ",
        "initiator, actor_id, params, lease_us, tenant_active, sequence_id, sequence_position, ",
        "created_at, status_changed_at) ",
        "VALUES ($1, $2, $3, $4, 'pending', $5, $6, $7, $8, $9, $10, $11, $12, $12) ",
        "RETURNING ", run_columns!()
    ))
    .bind(&plan.op.name)
    .bind(plan.tenant_id)
    .bind(connection_id)
    .bind(plan.subject)
    .bind(plan.initiator.as_str())
    .bind(plan.actor_id)
    .bind(plan.params_json())
    .bind(plan.lease_us())
    .bind(plan.tenant_active)
    .bind(sequence_id)
    .bind(position)
    .bind(now.as_micros())
    .fetch_one(&mut **tx)
    .await?)
}

async fn end_stale(tx: &mut Tx, run_id: i64, now: Timestamp) -> Result<()> {
    sqlx::query(concat!(
        "UPDATE operation_runs SET status = 'failed', reason_code = $2, finished_at = $3, ",
        "status_changed_at = $3, stale_at = NULL WHERE id = $1 AND status IN ('queued', 'running')"
    ))
    .bind(run_id)
    .bind(reason::RUN_LEASE_EXPIRED)
    .bind(now.as_micros())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// After a run on a scope ended: the oldest pending run there is preflighted
/// again and admitted, or blocked (then the next pending one is tried).
async fn advance_scope(
    tx: &mut Tx,
    registry: &Registry,
    ended: &Run,
    now: Timestamp,
) -> Result<(Option<Admission>, Vec<Admission>)> {
    match ended.provider_connection_id.as_deref() {
        Some(connection_id) => advance(tx, registry, &ended.tenant_id, connection_id, now).await,
        None => Ok((None, Vec::new())),
    }
}

async fn advance(
    tx: &mut Tx,
    registry: &Registry,
    tenant_id: &str,
    connection_id: &str,
    now: Timestamp,
) -> Result<(Option<Admission>, Vec<Admission>)> {
    let mut blocked = Vec::new();
    // A scope still held (e.g. a pending run was cancelled) advances later,
    // when its holder ends.
    if active_holder(tx, tenant_id, connection_id).await?.is_some() {
        return Ok((None, blocked));
    }
    loop {
        let row: Option<RunRow> = sqlx::query_as(concat!(
            "SELECT ",
            run_columns!(),
            " FROM operation_runs ",
            "WHERE tenant_id = $1 AND provider_connection_id = $2 AND status = 'pending' ",
            "ORDER BY id LIMIT 1"
        ))
        .bind(tenant_id)
        .bind(connection_id)
        .fetch_optional(&mut **tx)
        .await?;
        let Some(row) = row else {
            return Ok((None, blocked));
        };
        // The tenant fact recorded when the sequence started; hosts pass no new one here.
        let tenant_active = row.tenant_active;
        let pending = row.into_run(false)?;
        let reasons = match registry.operation(&pending.operation) {
            None => vec![reason::OPERATION_UNREGISTERED.to_string()],
            Some(op) => {
                let connection = resolve(tx, &pending.tenant_id, Some(connection_id)).await?;
                preflight(op, tenant_active, connection.as_ref(), now)
            }
        };
        if !reasons.is_empty() {
            let row: RunRow = sqlx::query_as(concat!(
                "UPDATE operation_runs SET status = 'blocked', reason_code = $2, reasons = $3, ",
                "finished_at = $4, status_changed_at = $4 WHERE id = $1 RETURNING ",
                run_columns!()
            ))
            .bind(pending.id)
            .bind(reasons.first())
            .bind(reasons_json(&reasons))
            .bind(now.as_micros())
            .fetch_one(&mut **tx)
            .await?;
            let admission = Admission::blocked(
                Some(row.into_run(false)?),
                reasons,
                Some(connection_id.to_string()),
            );
            insert_advance_attempt(tx, &pending, &admission, now).await?;
            blocked.push(admission);
            continue;
        }
        let op = registry
            .operation(&pending.operation)
            .ok_or_else(|| Error::internal("pending operation vanished from the registry"))?;
        let row: RunRow = sqlx::query_as(concat!(
            "UPDATE operation_runs SET status = 'queued', queued_at = $2, status_changed_at = $2, ",
            "stale_at = $3, fencing_token = COALESCE((SELECT MAX(fencing_token) FROM operation_runs ",
            "WHERE tenant_id = $4 AND provider_connection_id = $5), 0) + 1 ",
            "WHERE id = $1 AND status = 'pending' RETURNING ", run_columns!()
        ))
        .bind(pending.id)
        .bind(now.as_micros())
        .bind((now + op.dispatch_timeout).as_micros())
        .bind(&pending.tenant_id)
        .bind(connection_id)
        .fetch_one(&mut **tx)
        .await?;
        let admission = accepted(row.into_run(true)?, connection_id.to_string(), None);
        insert_advance_attempt(tx, &pending, &admission, now).await?;
        return Ok((Some(admission), blocked));
    }
}

async fn insert_advance_attempt(
    tx: &mut Tx,
    pending: &Run,
    admission: &Admission,
    now: Timestamp,
) -> Result<()> {
    let values = AttemptValues {
        source: Source::Advance,
        operation: &pending.operation,
        tenant_id: &pending.tenant_id,
        connection_id: pending.provider_connection_id.as_deref(),
        subject: pending.subject.as_deref(),
        actor_id: &pending.actor_id,
        initiator: pending.initiator,
        outcome: admission.outcome,
        status: None,
        run_id: Some(pending.id),
        holder_run_id: None,
        reasons: &admission.reasons,
        replaced_run_id: None,
        params_differ: None,
    };
    insert_attempt(tx, &values, now).await
}

async fn insert_attempt(tx: &mut Tx, values: &AttemptValues<'_>, now: Timestamp) -> Result<()> {
    sqlx::query(concat!(
        "INSERT INTO start_attempts (",
        attempt_columns!(),
        ") ",
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
    ))
    .bind(now.as_micros())
    .bind(values.source.as_str())
    .bind(values.operation)
    .bind(values.tenant_id)
    .bind(values.connection_id)
    .bind(values.subject)
    .bind(values.actor_id)
    .bind(values.initiator.as_str())
    .bind(values.outcome.as_str())
    .bind(values.status.map(i32::from))
    .bind(values.run_id)
    .bind(values.holder_run_id)
    .bind(values.reasons.first())
    .bind(values.reasons_json())
    .bind(values.replaced_run_id)
    .bind(values.params_differ)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
