//! The SQL operations both backends share, written once over [`Conn`]. Each
//! runs inside a transaction the caller opened; none commits.

use serde_json::Value;

use crate::error::Error;
use crate::metrics::DatabaseStats;
use crate::model::{
    Completion, Outcome, ProviderConnection, Run, RunFilter, RunStatus, StartAttempt,
};
use crate::preflight::preflight;
use crate::reason;
use crate::registry::Registry;
use crate::store::db::{args, Conn, Db, Param};
use crate::store::rows::LatestRow;
use crate::store::{
    attempt_columns, connection_columns, judge_holder, reasons_json, run_columns, Admission,
    AttemptRow, AttemptValues, ConnectionRow, CountRow, Plan, RunRow, SResult, Source, StoreError,
    Verdict,
};
use crate::time::Timestamp;

/// Sets `scope_token_at_end` as a run ends: the scope's highest token right now.
macro_rules! scope_token_at_end {
    () => {
        "scope_token_at_end = CASE WHEN fencing_token IS NULL THEN NULL ELSE \
         (SELECT MAX(r.fencing_token) FROM {runs} r WHERE r.tenant_id = {runs}.tenant_id \
         AND r.provider_connection_id = {runs}.provider_connection_id) END"
    };
}

/// What ended and what that set in motion on its scope.
pub(crate) struct Ended {
    pub run: Run,
    pub next: Option<Admission>,
    pub next_blocked: Vec<Admission>,
}

pub(crate) async fn fetch_run(conn: &mut Conn<'_>, run_id: i64) -> SResult<Option<Run>> {
    let row: Option<RunRow> = conn
        .fetch_optional(
            concat!("SELECT ", run_columns!(), " FROM {runs} WHERE id = $1"),
            args![run_id],
        )
        .await?;
    Ok(row.map(|r| r.into_run(false)).transpose()?)
}

/// The run, or `run_not_found`.
pub(crate) async fn fetch_existing_run(conn: &mut Conn<'_>, run_id: i64) -> SResult<Run> {
    Ok(fetch_run(conn, run_id)
        .await?
        .ok_or(Error::RunNotFound { run_id })?)
}

/// Explains why a worker call on `run_id` was refused.
async fn refusal(conn: &mut Conn<'_>, run_id: i64, token: i64, action: &str) -> StoreError {
    let row: Result<Option<RunRow>, sqlx::Error> = conn
        .fetch_optional(
            concat!("SELECT ", run_columns!(), " FROM {runs} WHERE id = $1"),
            args![run_id],
        )
        .await;
    let row = match row {
        Err(err) => return err.into(),
        Ok(None) => return Error::RunNotFound { run_id }.into(),
        Ok(Some(row)) => row,
    };
    let current = row.fencing_token;
    match row.into_run(false) {
        Err(err) => err.into(),
        Ok(run) => Error::transition(run_id, refusal_message(&run, current, token, action)).into(),
    }
}

fn refusal_message(run: &Run, current_token: Option<i64>, token: i64, action: &str) -> String {
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

pub(crate) async fn resolve(
    conn: &mut Conn<'_>,
    tenant_id: &str,
    requested: Option<&str>,
) -> SResult<Option<ProviderConnection>> {
    let row: Option<ConnectionRow> = match requested {
        Some(id) => {
            conn.fetch_optional(
                concat!(
                    "SELECT ",
                    connection_columns!(),
                    " FROM {connections} WHERE tenant_id = $1 AND id = $2"
                ),
                args![tenant_id, id],
            )
            .await?
        }
        None => {
            conn.fetch_optional(
                concat!(
                    "SELECT ",
                    connection_columns!(),
                    // A host's view might offer several defaults: take one, always the same.
                    " FROM {connections} WHERE tenant_id = $1 AND is_default ORDER BY id LIMIT 1"
                ),
                args![tenant_id],
            )
            .await?
        }
    };
    Ok(row.map(ConnectionRow::into_connection).transpose()?)
}

pub(crate) async fn active_holder(
    conn: &mut Conn<'_>,
    tenant_id: &str,
    connection_id: &str,
) -> SResult<Option<Run>> {
    let row: Option<RunRow> = conn
        .fetch_optional(
            concat!(
                "SELECT ", run_columns!(), " FROM {runs} ",
                "WHERE tenant_id = $1 AND provider_connection_id = $2 AND status IN ('queued', 'running')"
            ),
            args![tenant_id, connection_id],
        )
        .await?;
    Ok(row.map(|r| r.into_run(false)).transpose()?)
}

/// Resolution, preflight and admission of one plan inside a write transaction.
pub(crate) async fn admit_in(
    conn: &mut Conn<'_>,
    plan: &Plan<'_>,
    now: Timestamp,
) -> SResult<Admission> {
    let connection = resolve(conn, plan.tenant_id, plan.requested_connection).await?;
    let reasons = preflight(plan.op, plan.tenant_active, connection.as_ref(), now);
    let connection_id = connection
        .map(|c| c.id)
        .or_else(|| plan.requested_connection.map(str::to_string));
    if !reasons.is_empty() {
        let run = insert_blocked(conn, plan, connection_id.as_deref(), &reasons, now).await?;
        return Ok(Admission::blocked(Some(run), reasons, connection_id));
    }
    let connection_id =
        connection_id.ok_or_else(|| Error::internal("preflight passed without a connection"))?;
    if let Some(run) = insert_queued(conn, plan, &connection_id, None, now).await? {
        return Ok(Admission::accepted(run, connection_id, None));
    }
    // The scope is held: by whom? (None: it ended meanwhile; the caller retries.)
    let holder = active_holder(conn, plan.tenant_id, &connection_id)
        .await?
        .ok_or(StoreError::Retry(
            "the scope's holder ended during admission",
        ))?;
    Ok(match judge_holder(plan, &holder, now) {
        Verdict::TakeOver => {
            if !end_stale(conn, holder.id, now).await? {
                return Err(StoreError::Retry(
                    "the stale holder changed during takeover",
                ));
            }
            let run = insert_queued(conn, plan, &connection_id, Some(holder.id), now)
                .await?
                .ok_or(StoreError::Retry(
                    "another start took the scope during takeover",
                ))?;
            Admission::accepted(run, connection_id, Some(ended_stale(holder, now)))
        }
        verdict => Admission::refused(verdict, holder, connection_id),
    })
}

/// The general admission and its audit row, on an open write transaction.
pub(crate) async fn admit_and_audit(
    conn: &mut Conn<'_>,
    plan: &Plan<'_>,
    now: Timestamp,
) -> SResult<Admission> {
    let admission = admit_in(conn, plan, now).await?;
    insert_attempt(conn, &AttemptValues::for_plan(plan, &admission), Some(now)).await?;
    Ok(admission)
}

/// `check` for every plan, on one snapshot.
pub(crate) async fn check_all(
    conn: &mut Conn<'_>,
    plans: &[Plan<'_>],
    now: Timestamp,
) -> SResult<Vec<Admission>> {
    let mut out = Vec::with_capacity(plans.len());
    for plan in plans {
        out.push(check_in(conn, plan, now).await?);
    }
    Ok(out)
}

/// The same decision as [`admit_in`], without writing anything.
pub(crate) async fn check_in(
    conn: &mut Conn<'_>,
    plan: &Plan<'_>,
    now: Timestamp,
) -> SResult<Admission> {
    let connection = resolve(conn, plan.tenant_id, plan.requested_connection).await?;
    let reasons = preflight(plan.op, plan.tenant_active, connection.as_ref(), now);
    let connection_id = connection
        .map(|c| c.id)
        .or_else(|| plan.requested_connection.map(str::to_string));
    if !reasons.is_empty() {
        return Ok(Admission::blocked(None, reasons, connection_id));
    }
    let connection_id =
        connection_id.ok_or_else(|| Error::internal("preflight passed without a connection"))?;
    Ok(
        match active_holder(conn, plan.tenant_id, &connection_id).await? {
            None => Admission::would_accept(connection_id, None),
            Some(holder) => match judge_holder(plan, &holder, now) {
                Verdict::TakeOver => Admission::would_accept(connection_id, Some(holder.id)),
                verdict => Admission::refused(verdict, holder, connection_id),
            },
        },
    )
}

/// The scope's latest admitted run (highest fencing token): `token`,
/// `state`, `ended_at`, or no row when the scope never admitted a run.
/// The active run of a scope always holds its highest token, so it is the
/// holder when there is one, and otherwise the run that ended last.
macro_rules! latest_admitted_row {
    ($tenant:literal, $connection:literal) => {
        concat!(
            "SELECT fencing_token AS token, status AS state, finished_at AS ended_at FROM {runs} ",
            "WHERE tenant_id = ",
            $tenant,
            " AND provider_connection_id = ",
            $connection,
            " AND fencing_token IS NOT NULL ORDER BY fencing_token DESC LIMIT 1"
        )
    };
}

/// [`latest_admitted_row`] as a one-row relation `l` (all NULL when the
/// scope never admitted a run), for `FROM (SELECT 1) one LEFT JOIN … l ON TRUE`.
macro_rules! latest_admitted {
    ($tenant:literal, $connection:literal) => {
        concat!("(", latest_admitted_row!($tenant, $connection), ")")
    };
}

/// When a run joining `l` (see [`latest_admitted`]) is admitted: `$now`, or
/// the end of the scope's previous run if that is later.
macro_rules! admitted_at {
    ($now:literal) => {
        concat!("{greatest}(", $now, ", COALESCE(l.ended_at, ", $now, "))")
    };
}

/// Inserts a queued run unless the scope is held; `None` means it was held
/// (by the run this statement's snapshot shows, or one a unique index saw).
/// The fencing token is the scope's highest token plus one.
///
/// The run is admitted at `now`, or when the scope's previous run ended if
/// that is later: on PostgreSQL an end committed by another transaction
/// after this one read its clock may carry a later instant, and recorded
/// history must never show two runs of one scope active at once.
pub(crate) async fn insert_queued(
    conn: &mut Conn<'_>,
    plan: &Plan<'_>,
    connection_id: &str,
    replaced: Option<i64>,
    now: Timestamp,
) -> SResult<Option<Run>> {
    if matches!(conn.db, Db::Sqlite(_)) {
        return insert_queued_sqlite(conn, plan, connection_id, replaced, now).await;
    }
    let params_text = plan.params_json();
    let params = queued_params(
        plan,
        connection_id,
        params_text.as_deref(),
        replaced,
        [
            now.as_micros().into(),
            dispatch_us(plan.op.dispatch_timeout).into(),
        ],
    );
    let row: Option<RunRow> = conn
        .fetch_optional(
            concat!(
                "INSERT INTO {runs} (operation, tenant_id, provider_connection_id, subject, status, ",
                "initiator, actor_id, params, fencing_token, lease_us, tenant_active, replaced_run_id, ",
                "created_at, status_changed_at, queued_at, stale_at) ",
                "SELECT $1, $2, $3, $4, 'queued', $5, $6, $7, COALESCE(l.token, 0) + 1, $8, $9, $10, ",
                admitted_at!("$11"), ", ", admitted_at!("$11"), ", ", admitted_at!("$11"), ", ",
                admitted_at!("$11"), " + $12 ",
                "FROM (SELECT 1 AS one) one LEFT JOIN ", latest_admitted!("$2", "$3"), " l ON TRUE ",
                "WHERE l.state IS NULL OR l.state NOT IN ('queued', 'running') ",
                // No conflict target: any unique index may refuse, the scope lock foremost.
                "ON CONFLICT DO NOTHING ",
                "RETURNING ", run_columns!()
            ),
            &params,
        )
        .await?;
    Ok(row.map(|r| r.into_run(true)).transpose()?)
}

/// The scope's latest admitted run, as SQLite's admission reads it first.
pub(crate) const SQLITE_LATEST_ADMITTED: &str = latest_admitted_row!("$1", "$2");

/// A queued run with its token and instants computed from the latest run.
pub(crate) const SQLITE_INSERT_QUEUED: &str = concat!(
    "INSERT INTO {runs} (operation, tenant_id, provider_connection_id, subject, status, ",
    "initiator, actor_id, params, fencing_token, lease_us, tenant_active, replaced_run_id, ",
    "created_at, status_changed_at, queued_at, stale_at) ",
    "VALUES ($1, $2, $3, $4, 'queued', $5, $6, $7, $13, $8, $9, $10, $11, $11, $11, $12) ",
    // No conflict target: any unique index may refuse, the scope lock foremost.
    "ON CONFLICT DO NOTHING"
);

/// [`insert_queued`] on SQLite: read the scope's latest admitted run, then
/// insert with `VALUES`. The one statement PostgreSQL runs would make SQLite
/// fill temporary b-trees, opened and closed per start: for the subquery's
/// row, for the selected row (an `INSERT … SELECT` that reads the table it
/// writes is buffered whole) and for `RETURNING`. The transaction holds the
/// database's write lock (`BEGIN IMMEDIATE`), so nothing changes between the
/// statements. The run answered is the row inserted, converted as a read
/// converts it: every column is a value bound here or a constant, and the id
/// is the connection's last rowid (reading the row back cost a tenth of a
/// start).
async fn insert_queued_sqlite(
    conn: &mut Conn<'_>,
    plan: &Plan<'_>,
    connection_id: &str,
    replaced: Option<i64>,
    now: Timestamp,
) -> SResult<Option<Run>> {
    let latest: Option<LatestRow> = conn
        .fetch_optional(SQLITE_LATEST_ADMITTED, args![plan.tenant_id, connection_id])
        .await?;
    let (token, admitted_at) = match &latest {
        Some(l) if l.state == "queued" || l.state == "running" => return Ok(None),
        // Admitted at `now`, or when the scope's previous run ended if that is later.
        Some(l) => (
            l.token.saturating_add(1),
            now.as_micros().max(l.ended_at.unwrap_or(i64::MIN)),
        ),
        None => (1, now.as_micros()),
    };
    let stale_at = admitted_at.saturating_add(dispatch_us(plan.op.dispatch_timeout));
    let params_text = plan.params_json();
    let params = queued_params(
        plan,
        connection_id,
        params_text.as_deref(),
        replaced,
        [admitted_at.into(), stale_at.into(), token.into()],
    );
    let inserted = conn.execute(SQLITE_INSERT_QUEUED, &params).await?;
    if inserted == 0 {
        return Ok(None);
    }
    let id = conn
        .last_insert_rowid()
        .ok_or_else(|| Error::internal("a SQLite insert without a rowid"))?;
    let row = RunRow {
        id,
        operation: plan.op.name.clone(),
        tenant_id: plan.tenant_id.to_owned(),
        provider_connection_id: Some(connection_id.to_owned()),
        subject: plan.subject.map(str::to_owned),
        status: RunStatus::Queued.as_str().to_owned(),
        initiator: plan.initiator.as_str().to_owned(),
        actor_id: plan.actor_id.to_owned(),
        params: params_text,
        fencing_token: Some(token),
        tenant_active: plan.tenant_active,
        reason_code: None,
        reasons: None,
        summary: None,
        sequence_id: None,
        sequence_position: None,
        replaced_run_id: replaced,
        created_at: admitted_at,
        status_changed_at: admitted_at,
        queued_at: Some(admitted_at),
        started_at: None,
        finished_at: None,
        stale_at: Some(stale_at),
    };
    Ok(Some(row.into_run(true)?))
}

/// The parameters of both queued-run inserts: the ten they share (what,
/// where, who, the lease, the run it replaces), then each one's `rest`.
fn queued_params<'a, const N: usize>(
    plan: &'a Plan<'_>,
    connection_id: &'a str,
    params_text: Option<&'a str>,
    replaced: Option<i64>,
    rest: [Param<'a>; N],
) -> Vec<Param<'a>> {
    let mut params = Vec::with_capacity(10 + N);
    params.extend([
        plan.op.name.as_str().into(),
        plan.tenant_id.into(),
        connection_id.into(),
        plan.subject.into(),
        plan.initiator.as_str().into(),
        plan.actor_id.into(),
        params_text.into(),
        plan.lease_us().into(),
        plan.tenant_active.into(),
        replaced.into(),
    ]);
    params.extend(rest);
    params
}

fn dispatch_us(timeout: std::time::Duration) -> i64 {
    i64::try_from(timeout.as_micros()).unwrap_or(i64::MAX)
}

pub(crate) async fn insert_blocked(
    conn: &mut Conn<'_>,
    plan: &Plan<'_>,
    connection_id: Option<&str>,
    reasons: &[String],
    now: Timestamp,
) -> SResult<Run> {
    let row: RunRow = conn
        .fetch_one(
            concat!(
                "INSERT INTO {runs} (operation, tenant_id, provider_connection_id, subject, status, ",
                "initiator, actor_id, params, lease_us, tenant_active, reason_code, reasons, ",
                "created_at, status_changed_at, finished_at) ",
                "VALUES ($1, $2, $3, $4, 'blocked', $5, $6, $7, $8, $9, $10, $11, $12, $12, $12) ",
                "RETURNING ", run_columns!()
            ),
            args![
                plan.op.name.as_str(),
                plan.tenant_id,
                connection_id,
                plan.subject,
                plan.initiator.as_str(),
                plan.actor_id,
                plan.params_json(),
                plan.lease_us(),
                plan.tenant_active,
                reasons.first().map(String::as_str),
                reasons_json(reasons),
                now.as_micros()
            ],
        )
        .await?;
    Ok(row.into_run(false)?)
}

async fn insert_pending(
    conn: &mut Conn<'_>,
    plan: &Plan<'_>,
    connection_id: &str,
    sequence_id: i64,
    position: i64,
    now: Timestamp,
) -> SResult<Run> {
    let row: RunRow = conn
        .fetch_one(
            concat!(
                "INSERT INTO {runs} (operation, tenant_id, provider_connection_id, subject, status, ",
                "initiator, actor_id, params, lease_us, tenant_active, sequence_id, sequence_position, ",
                "created_at, status_changed_at) ",
                "VALUES ($1, $2, $3, $4, 'pending', $5, $6, $7, $8, $9, $10, $11, $12, $12) ",
                "RETURNING ", run_columns!()
            ),
            args![
                plan.op.name.as_str(),
                plan.tenant_id,
                connection_id,
                plan.subject,
                plan.initiator.as_str(),
                plan.actor_id,
                plan.params_json(),
                plan.lease_us(),
                plan.tenant_active,
                sequence_id,
                position,
                now.as_micros()
            ],
        )
        .await?;
    Ok(row.into_run(false)?)
}

/// The run `end_stale` ended, as it now reads.
fn ended_stale(mut run: Run, now: Timestamp) -> Run {
    run.status = RunStatus::Failed;
    run.reason_code = Some(reason::RUN_LEASE_EXPIRED.to_string());
    run.since = now;
    run.finished_at = Some(now);
    run.stale_at = None;
    run
}

/// Ends a stale active run; false when it is no longer active or no longer stale.
pub(crate) async fn end_stale(conn: &mut Conn<'_>, run_id: i64, now: Timestamp) -> SResult<bool> {
    let touched = conn
        .execute(
            concat!(
                "UPDATE {runs} SET status = 'failed', reason_code = $2, finished_at = $3, ",
                "status_changed_at = $3, stale_at = NULL, ",
                scope_token_at_end!(),
                " WHERE id = $1 AND status IN ('queued', 'running') AND stale_at <= $3"
            ),
            args![run_id, reason::RUN_LEASE_EXPIRED, now.as_micros()],
        )
        .await?;
    Ok(touched == 1)
}

/// After a run on a scope ended: the oldest pending run there is preflighted
/// again and admitted, or blocked (then the next pending one is tried).
pub(crate) async fn advance(
    conn: &mut Conn<'_>,
    registry: &Registry,
    tenant_id: &str,
    connection_id: &str,
    now: Timestamp,
) -> SResult<(Option<Admission>, Vec<Admission>)> {
    let mut blocked = Vec::new();
    loop {
        // A scope still held (e.g. a pending run was cancelled) advances later,
        // when its holder ends.
        if active_holder(conn, tenant_id, connection_id)
            .await?
            .is_some()
        {
            return Ok((None, blocked));
        }
        let row: Option<RunRow> = conn
            .fetch_optional(
                concat!(
                    "SELECT ",
                    run_columns!(),
                    " FROM {runs} ",
                    "WHERE tenant_id = $1 AND provider_connection_id = $2 AND status = 'pending' ",
                    "ORDER BY id LIMIT 1"
                ),
                args![tenant_id, connection_id],
            )
            .await?;
        let Some(row) = row else {
            return Ok((None, blocked));
        };
        // The tenant fact recorded when the sequence started; hosts pass no new one here.
        let tenant_active = row.tenant_active;
        let pending = row.into_run(false)?;
        let op = registry.operation(&pending.operation);
        let reasons = match op {
            None => vec![reason::OPERATION_UNREGISTERED.to_string()],
            Some(op) => {
                let connection = resolve(conn, tenant_id, Some(connection_id)).await?;
                preflight(op, tenant_active, connection.as_ref(), now)
            }
        };
        let admission = match (op, reasons.is_empty()) {
            (Some(op), true) => {
                let row: Option<RunRow> = conn
                    .fetch_optional(
                        concat!(
                            "UPDATE {runs} SET status = 'queued', fencing_token = COALESCE(l.token, 0) + 1, ",
                            "queued_at = ", admitted_at!("$2"), ", status_changed_at = ", admitted_at!("$2"),
                            ", stale_at = ", admitted_at!("$2"), " + $3 ",
                            "FROM (SELECT 1 AS one) one LEFT JOIN ", latest_admitted!("$4", "$5"), " l ON TRUE ",
                            "WHERE {runs}.id = $1 AND {runs}.status = 'pending' RETURNING ", run_columns!()
                        ),
                        args![
                            pending.id,
                            now.as_micros(),
                            dispatch_us(op.dispatch_timeout),
                            tenant_id,
                            connection_id
                        ],
                    )
                    .await?;
                let row = row.ok_or(StoreError::Retry("a pending run changed while advancing"))?;
                Admission::accepted(row.into_run(true)?, connection_id.to_string(), None)
            }
            _ => {
                let row: Option<RunRow> = conn
                    .fetch_optional(
                        concat!(
                            "UPDATE {runs} SET status = 'blocked', reason_code = $2, reasons = $3, ",
                            "finished_at = $4, status_changed_at = $4 WHERE id = $1 AND status = 'pending' ",
                            "RETURNING ", run_columns!()
                        ),
                        args![
                            pending.id,
                            reasons.first().map(String::as_str),
                            reasons_json(&reasons),
                            now.as_micros()
                        ],
                    )
                    .await?;
                let row = row.ok_or(StoreError::Retry("a pending run changed while advancing"))?;
                Admission::blocked(
                    Some(row.into_run(false)?),
                    reasons,
                    Some(connection_id.to_string()),
                )
            }
        };
        let values = AttemptValues {
            source: Source::Advance,
            operation: &pending.operation,
            tenant_id,
            connection_id: Some(connection_id),
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
        insert_attempt(conn, &values, Some(now)).await?;
        if admission.outcome == Outcome::Accepted {
            return Ok((Some(admission), blocked));
        }
        blocked.push(admission);
    }
}

/// Writes an audit row. `now` is `None` only for a statement of its own on
/// PostgreSQL, where the server's clock stamps it.
pub(crate) async fn insert_attempt(
    conn: &mut Conn<'_>,
    values: &AttemptValues<'_>,
    now: Option<Timestamp>,
) -> SResult<()> {
    conn.execute(
        concat!(
            "INSERT INTO {attempts} (",
            attempt_columns!(),
            ") ",
            "VALUES ({now:1}, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
        ),
        args![
            now.map(Timestamp::as_micros),
            values.source.as_str(),
            values.operation,
            values.tenant_id,
            values.connection_id,
            values.subject,
            values.actor_id,
            values.initiator.as_str(),
            values.outcome.as_str(),
            values.status.map(i32::from),
            values.run_id,
            values.holder_run_id,
            values.reasons.first().map(String::as_str),
            values.reasons_json(),
            values.replaced_run_id,
            values.params_differ
        ],
    )
    .await?;
    Ok(())
}

pub(crate) async fn start_sequence_in(
    conn: &mut Conn<'_>,
    first: &Plan<'_>,
    rest: &[Plan<'_>],
    now: Timestamp,
) -> SResult<(Admission, Vec<Run>)> {
    let mut admission = admit_in(conn, first, now).await?;
    insert_attempt(conn, &AttemptValues::for_plan(first, &admission), Some(now)).await?;
    let mut pending = Vec::new();
    if admission.outcome != Outcome::Accepted {
        return Ok((admission, pending));
    }
    let connection = admission.connection_id.clone().unwrap_or_default();
    if let Some(run) = &mut admission.run {
        conn.execute(
            "UPDATE {runs} SET sequence_id = id, sequence_position = 0 WHERE id = $1",
            args![run.id],
        )
        .await?;
        run.sequence_id = Some(run.id);
        run.sequence_position = Some(0);
        for (i, plan) in rest.iter().enumerate() {
            let position = i64::try_from(i + 1).unwrap_or(i64::MAX);
            pending.push(insert_pending(conn, plan, &connection, run.id, position, now).await?);
        }
    }
    Ok((admission, pending))
}

/// `now` is `None` only for a statement of its own on PostgreSQL, where the
/// server's clock decides (as for [`insert_attempt`]).
pub(crate) async fn mark_running_in(
    conn: &mut Conn<'_>,
    run_id: i64,
    token: i64,
    now: Option<Timestamp>,
) -> SResult<Run> {
    let row: Option<RunRow> = conn
        .fetch_optional(
            concat!(
                "UPDATE {runs} SET status = 'running', ",
                "started_at = COALESCE(started_at, {now:3}), ",
                "status_changed_at = CASE WHEN status = 'running' THEN status_changed_at ELSE {now:3} END, ",
                "stale_at = {now:3} + lease_us ",
                "WHERE id = $1 AND fencing_token = $2 AND status IN ('queued', 'running') ",
                "RETURNING ", run_columns!()
            ),
            args![run_id, token, now.map(Timestamp::as_micros)],
        )
        .await?;
    match row {
        Some(row) => Ok(row.into_run(true)?),
        None => Err(refusal(conn, run_id, token, "mark it running").await),
    }
}

/// `now` as for [`mark_running_in`].
pub(crate) async fn heartbeat_in(
    conn: &mut Conn<'_>,
    run_id: i64,
    token: i64,
    now: Option<Timestamp>,
) -> SResult<Run> {
    let row: Option<RunRow> = conn
        .fetch_optional(
            concat!(
                "UPDATE {runs} SET stale_at = {now:3} + lease_us ",
                "WHERE id = $1 AND fencing_token = $2 AND status = 'running' ",
                "RETURNING ",
                run_columns!()
            ),
            args![run_id, token, now.map(Timestamp::as_micros)],
        )
        .await?;
    match row {
        Some(row) => Ok(row.into_run(true)?),
        None => Err(refusal(conn, run_id, token, "heartbeat it").await),
    }
}

pub(crate) async fn complete_in(
    conn: &mut Conn<'_>,
    registry: &Registry,
    completion: &Completion,
    summary: Option<&str>,
    now: Timestamp,
) -> SResult<Ended> {
    let outcome = completion.outcome;
    // Succeeding needs a worker that started; failing or cancelling may
    // happen straight from the queue.
    let row: Option<RunRow> = conn
        .fetch_optional(
            concat!(
                "UPDATE {runs} SET status = $3, reason_code = $4, summary = $5, ",
                "finished_at = $6, status_changed_at = $6, stale_at = NULL, ", scope_token_at_end!(),
                " WHERE id = $1 AND fencing_token = $2 ",
                "AND (status = 'running' OR (status = 'queued' AND $3 IN ('failed', 'cancelled'))) ",
                "RETURNING ", run_columns!()
            ),
            args![
                completion.run_id,
                completion.fencing_token,
                outcome.status().as_str(),
                completion.reason_code.as_deref(),
                summary,
                now.as_micros()
            ],
        )
        .await?;
    let Some(row) = row else {
        let action = format!("complete it as {outcome}");
        return Err(refusal(conn, completion.run_id, completion.fencing_token, &action).await);
    };
    let run = row.into_run(true)?;
    ended(conn, registry, run, now).await
}

async fn ended(
    conn: &mut Conn<'_>,
    registry: &Registry,
    run: Run,
    now: Timestamp,
) -> SResult<Ended> {
    let (next, next_blocked) = match run.provider_connection_id.as_deref() {
        Some(connection) => advance(conn, registry, &run.tenant_id, connection, now).await?,
        None => (None, Vec::new()),
    };
    Ok(Ended {
        run,
        next,
        next_blocked,
    })
}

pub(crate) async fn cancel_in(
    conn: &mut Conn<'_>,
    registry: &Registry,
    run_id: i64,
    reason_code: Option<&str>,
    now: Timestamp,
) -> SResult<Ended> {
    let row: Option<RunRow> = conn
        .fetch_optional(
            concat!(
                "UPDATE {runs} SET status = 'cancelled', reason_code = $2, ",
                "finished_at = $3, status_changed_at = $3, stale_at = NULL, ",
                scope_token_at_end!(),
                " WHERE id = $1 AND status IN ('pending', 'queued', 'running') ",
                "RETURNING ",
                run_columns!()
            ),
            args![run_id, reason_code, now.as_micros()],
        )
        .await?;
    let Some(row) = row else {
        return Err(match fetch_run(conn, run_id).await? {
            Some(run) => Error::transition(
                run_id,
                format!("the run is {} and can no longer be cancelled", run.status),
            )
            .into(),
            None => Error::RunNotFound { run_id }.into(),
        });
    };
    let run = row.into_run(false)?;
    ended(conn, registry, run, now).await
}

/// Ends every active run stale at `$1` as failed with reason `$2`. The runs
/// are found through the scope lock, the index of exactly the active runs
/// (stale runs have no index of their own: migration 4).
pub(crate) const REAP_STALE: &str = concat!(
    "UPDATE {runs} SET status = 'failed', reason_code = $2, ",
    "finished_at = $1, status_changed_at = $1, stale_at = NULL, ",
    scope_token_at_end!(),
    " WHERE status IN ('queued', 'running') AND stale_at <= $1 ",
    "RETURNING ",
    run_columns!()
);

/// Ends every stale active run and gives freed scopes to their pending runs.
pub(crate) async fn reap_in(
    conn: &mut Conn<'_>,
    registry: &Registry,
    now: Timestamp,
) -> SResult<(Vec<Run>, Vec<Admission>)> {
    let rows: Vec<RunRow> = conn
        .fetch_all(
            REAP_STALE,
            args![now.as_micros(), reason::RUN_LEASE_EXPIRED],
        )
        .await?;
    let mut reaped = rows
        .into_iter()
        .map(|r| r.into_run(false))
        .collect::<crate::error::Result<Vec<Run>>>()?;
    reaped.sort_by_key(|r| r.id);
    // Every free scope with pending runs gets its turn: the ones just reaped,
    // and any whose predecessor ended without advancing them.
    let scopes: Vec<(String, String)> = conn
        .fetch_all(
            concat!(
                "SELECT DISTINCT p.tenant_id, p.provider_connection_id FROM {runs} p ",
                "WHERE p.status = 'pending' AND p.provider_connection_id IS NOT NULL ",
                "AND NOT EXISTS (SELECT 1 FROM {runs} a WHERE a.tenant_id = p.tenant_id ",
                "AND a.provider_connection_id = p.provider_connection_id AND a.status IN ('queued', 'running')) ",
                "ORDER BY p.tenant_id, p.provider_connection_id"
            ),
            args![],
        )
        .await?;
    let mut next = Vec::new();
    for (tenant_id, connection_id) in scopes {
        let (admitted, blocked) = advance(conn, registry, &tenant_id, &connection_id, now).await?;
        next.extend(blocked);
        next.extend(admitted);
    }
    Ok((reaped, next))
}

pub(crate) async fn upsert_connection_in(
    conn: &mut Conn<'_>,
    connection: &ProviderConnection,
    now: Timestamp,
) -> SResult<ProviderConnection> {
    if connection.is_default {
        conn.execute(
            "UPDATE {connections} SET is_default = FALSE WHERE tenant_id = $1 AND id <> $2 AND is_default",
            args![connection.tenant_id.as_str(), connection.id.as_str()],
        )
        .await?;
    }
    let display_name = if connection.display_name.is_empty() {
        connection.id.as_str()
    } else {
        connection.display_name.as_str()
    };
    let row: ConnectionRow = conn
        .fetch_one(
            concat!(
                "INSERT INTO {connections} (", connection_columns!(), ", updated_at) ",
                "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ",
                "ON CONFLICT (tenant_id, id) DO UPDATE SET provider = excluded.provider, ",
                "display_name = excluded.display_name, is_default = excluded.is_default, ",
                "enabled = excluded.enabled, consent = excluded.consent, credential = excluded.credential, ",
                "credential_expires_at = excluded.credential_expires_at, health = excluded.health, ",
                "updated_at = excluded.updated_at ",
                "RETURNING ", connection_columns!()
            ),
            args![
                connection.tenant_id.as_str(),
                connection.id.as_str(),
                connection.provider.as_str(),
                display_name,
                connection.is_default,
                connection.enabled,
                connection.consent.as_str(),
                connection.credential.as_str(),
                connection.credential_expires_at.map(Timestamp::as_micros),
                connection.health.as_str(),
                now.as_micros()
            ],
        )
        .await?;
    Ok(row.into_connection()?)
}

pub(crate) async fn list_connections_in(
    conn: &mut Conn<'_>,
    tenant_id: &str,
) -> SResult<Vec<ProviderConnection>> {
    let rows: Vec<ConnectionRow> = conn
        .fetch_all(
            concat!(
                "SELECT ",
                connection_columns!(),
                " FROM {connections} WHERE tenant_id = $1 ORDER BY id"
            ),
            args![tenant_id],
        )
        .await?;
    Ok(rows
        .into_iter()
        .map(ConnectionRow::into_connection)
        .collect::<crate::error::Result<_>>()?)
}

/// Text of a listing query whose tenant filter is optional. A given tenant is
/// written into the SQL as `tenant_id = $1` rather than `($1 IS NULL OR …)`,
/// because PostgreSQL's cached generic plan cannot use the per-tenant index
/// through an OR with a parameter test.
macro_rules! per_tenant {
    ($tenant:expr, $head:expr, $tail:expr) => {
        match $tenant {
            Some(_) => concat!($head, "WHERE tenant_id = $1 AND ", $tail),
            None => concat!($head, "WHERE CAST($1 AS TEXT) IS NULL AND ", $tail),
        }
    };
}

pub(crate) async fn list_runs_in(conn: &mut Conn<'_>, filter: &RunFilter) -> SResult<Vec<Run>> {
    let sql = per_tenant!(
        filter.tenant_id,
        concat!("SELECT ", run_columns!(), " FROM {runs} "),
        concat!(
            "($2 IS NULL OR operation = $2) AND ($3 IS NULL OR status = $3) ",
            "AND (NOT $4 OR status IN ('queued', 'running')) ORDER BY id DESC LIMIT $5"
        )
    );
    let rows: Vec<RunRow> = conn
        .fetch_all(
            sql,
            args![
                filter.tenant_id.as_deref(),
                filter.operation.as_deref(),
                filter.status.map(RunStatus::as_str),
                filter.active,
                i64::from(filter.limit.unwrap_or(100).min(10_000))
            ],
        )
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| r.into_run(false))
        .collect::<crate::error::Result<_>>()?)
}

pub(crate) async fn attempts_in(
    conn: &mut Conn<'_>,
    run_id: Option<i64>,
    tenant_id: Option<&str>,
    limit: u32,
) -> SResult<Vec<StartAttempt>> {
    let rows: Vec<AttemptRow> =
        match run_id {
            Some(run_id) => {
                conn.fetch_all(
                    concat!(
                    "SELECT id, ", attempt_columns!(), " FROM {attempts} ",
                    "WHERE run_id = $1 OR holder_run_id = $1 OR replaced_run_id = $1 ORDER BY id"
                ),
                    args![run_id],
                )
                .await?
            }
            None => {
                conn.fetch_all(
                    per_tenant!(
                        tenant_id,
                        concat!("SELECT id, ", attempt_columns!(), " FROM {attempts} "),
                        "TRUE ORDER BY id DESC LIMIT $2"
                    ),
                    args![tenant_id, i64::from(limit)],
                )
                .await?
            }
        };
    Ok(rows
        .into_iter()
        .map(AttemptRow::into_attempt)
        .collect::<crate::error::Result<_>>()?)
}

/// A JSON document with its object keys sorted at every level, so equal
/// documents are equal as text (dedupe compares stored params as text).
pub(crate) fn canonical_json(value: &Value) -> String {
    fn write(value: &Value, out: &mut String) {
        match value {
            Value::Object(map) => {
                out.push('{');
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                for (i, key) in keys.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&Value::String((*key).clone()).to_string());
                    out.push(':');
                    if let Some(v) = map.get(*key) {
                        write(v, out);
                    }
                }
                out.push('}');
            }
            Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(item, out);
                }
                out.push(']');
            }
            scalar => out.push_str(&scalar.to_string()),
        }
    }
    let mut out = String::new();
    write(value, &mut out);
    out
}

/// What the database records of every gate sharing it, in one statement (see
/// [`DatabaseStats`]): starts and refusals from the audit table, takeovers,
/// reaped runs (ended as lease-expired and not replaced by a start), and runs
/// by status.
pub(crate) async fn stats_in(conn: &mut Conn<'_>) -> SResult<DatabaseStats> {
    let rows: Vec<CountRow> = conn
        .fetch_all(
            concat!(
                "SELECT 'start' AS kind, operation AS key, outcome AS sub, COUNT(*) AS n ",
                "FROM {attempts} WHERE source IN ('start', 'sequence') GROUP BY operation, outcome ",
                "UNION ALL SELECT 'blocked', COALESCE(reason_code, ''), NULL, COUNT(*) ",
                "FROM {attempts} WHERE source IN ('start', 'sequence') AND outcome = 'blocked' ",
                "GROUP BY reason_code ",
                "UNION ALL SELECT 'takeovers', '', NULL, COUNT(*) FROM {attempts} ",
                "WHERE source IN ('start', 'sequence') AND outcome = 'accepted' ",
                "AND replaced_run_id IS NOT NULL ",
                "UNION ALL SELECT 'reaped', '', NULL, COUNT(*) FROM {runs} r ",
                "WHERE r.status = 'failed' AND r.reason_code = $1 ",
                "AND NOT EXISTS (SELECT 1 FROM {attempts} a WHERE a.replaced_run_id = r.id) ",
                "UNION ALL SELECT 'runs', status, NULL, COUNT(*) FROM {runs} GROUP BY status"
            ),
            args![reason::RUN_LEASE_EXPIRED],
        )
        .await?;
    let mut stats = DatabaseStats::default();
    let counts = &mut stats.counts;
    for row in rows {
        let n = u64::try_from(row.n).unwrap_or(0);
        match row.kind.as_str() {
            "start" => {
                let outcome = row.sub.unwrap_or_default();
                *counts
                    .starts
                    .entry(row.key)
                    .or_default()
                    .entry(outcome)
                    .or_default() += n;
            }
            "blocked" => *counts.blocked.entry(row.key).or_default() += n,
            "takeovers" => counts.takeovers += n,
            "reaped" => counts.reaped_runs += n,
            _ => *stats.runs.entry(row.key).or_default() += n,
        }
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::REAP_STALE;
    use crate::store::sql::{Dialect, SqlText};
    use sqlx::{Connection, Executor};

    /// On PostgreSQL too, `reap_stale` finds stale runs through the scope
    /// lock in a history of terminal runs: it never scans the table.
    #[tokio::test]
    async fn postgres_finds_stale_runs_through_the_scope_lock() {
        let db = startgate_testkit::PgTestDb::create("reap_plan").await;
        let registry = crate::Registry::from_toml_str("").expect("registry");
        let gate = crate::Gate::open(&db.url(), registry).await.expect("open");
        gate.migrate().await.expect("migrate");
        gate.close().await;
        let mut conn = sqlx::PgConnection::connect(&db.url())
            .await
            .expect("connect");
        let indexes: Vec<String> = sqlx::query_scalar(
            "SELECT indexname::text FROM pg_indexes WHERE schemaname = 'startgate' \
             AND tablename = 'operation_runs' AND indexname <> 'operation_runs_pkey' \
             ORDER BY indexname",
        )
        .fetch_all(&mut conn)
        .await
        .expect("indexes");
        assert_eq!(
            indexes,
            [
                "operation_runs_by_tenant",
                "operation_runs_fencing",
                "operation_runs_one_active_per_scope",
                "operation_runs_pending",
            ]
        );
        conn.execute(
            "INSERT INTO startgate.operation_runs (operation, tenant_id, provider_connection_id, \
             status, initiator, actor_id, lease_us, tenant_active, created_at, status_changed_at, \
             fencing_token) SELECT 'inventory.sync', 't', 'c' || i, 'succeeded', 'user', 'a', 1, \
             TRUE, 1, 1, 1 FROM generate_series(1, 20000) i; \
             ANALYZE startgate.operation_runs",
        )
        .await
        .expect("history");
        let sql = SqlText::new(Dialect::Postgres {
            schema: "startgate".into(),
        })
        .render(REAP_STALE);
        let plan: Vec<String> = sqlx::query_scalar(&format!("EXPLAIN {sql}"))
            .bind(1_i64)
            .bind("run_lease_expired")
            .fetch_all(&mut conn)
            .await
            .expect("explain");
        let plan = plan.join("\n");
        assert!(
            plan.contains("Index Scan using operation_runs_one_active_per_scope"),
            "{plan}"
        );
        assert!(!plan.contains("Seq Scan"), "{plan}");
        conn.close().await.expect("close");
        db.drop_now().await;
    }
}
