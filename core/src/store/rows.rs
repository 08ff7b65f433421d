//! Row shapes shared by both backends, and their conversion to the contract's types.

use serde_json::Value;

use crate::error::{Error, Result};
use crate::model::{
    Consent, Credential, Health, Initiator, Outcome, ProviderConnection, Run, RunStatus,
    StartAttempt,
};
use crate::store::{Admission, Plan, Source};
use crate::time::Timestamp;

/// The columns of `operation_runs`, in [`RunRow`] order.
macro_rules! run_columns {
    () => {
        "id, operation, tenant_id, provider_connection_id, subject, status, initiator, actor_id, \
         params, fencing_token, tenant_active, reason_code, reasons, summary, \
         sequence_id, sequence_position, replaced_run_id, created_at, status_changed_at, \
         queued_at, started_at, finished_at, stale_at"
    };
}
pub(crate) use run_columns;

/// The columns of `provider_connections`, in [`ConnectionRow`] order.
macro_rules! connection_columns {
    () => {
        "tenant_id, id, provider, display_name, is_default, enabled, consent, credential, \
         credential_expires_at, health"
    };
}
pub(crate) use connection_columns;

/// Decodes a row type on SQLite by position: its fields in the order of the
/// columns its queries select (the `*_columns!` macros).
macro_rules! lite_row {
    ($ty:ident { $($field:ident),+ $(,)? }) => {
        impl crate::store::lite::LiteRow for $ty {
            fn from_lite(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
                let mut column = 0usize;
                let mut next = || {
                    column += 1;
                    column - 1
                };
                // Struct fields are initialised in the order written.
                Ok($ty { $($field: row.get(next())?),+ })
            }
        }
    };
}

/// A row of `operation_runs`.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct RunRow {
    pub id: i64,
    pub operation: String,
    pub tenant_id: String,
    pub provider_connection_id: Option<String>,
    pub subject: Option<String>,
    pub status: String,
    pub initiator: String,
    pub actor_id: String,
    pub params: Option<String>,
    pub fencing_token: Option<i64>,
    pub tenant_active: bool,
    pub reason_code: Option<String>,
    pub reasons: Option<String>,
    pub summary: Option<String>,
    pub sequence_id: Option<i64>,
    pub sequence_position: Option<i64>,
    pub replaced_run_id: Option<i64>,
    pub created_at: i64,
    pub status_changed_at: i64,
    pub queued_at: Option<i64>,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub stale_at: Option<i64>,
}

/// The scope's latest admitted run as SQLite's admission reads it
/// (`latest_admitted_row`): its fencing token, status and end.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct LatestRow {
    pub token: i64,
    pub state: String,
    pub ended_at: Option<i64>,
}

lite_row!(LatestRow {
    token,
    state,
    ended_at
});

fn parse_enum<T>(what: &str, text: &str, parse: fn(&str) -> Option<T>) -> Result<T> {
    parse(text).ok_or_else(|| Error::internal(format!("unknown {what} \"{text}\" in the database")))
}

fn parse_json_text(what: &str, text: Option<&str>) -> Result<Option<Value>> {
    text.map(|t| {
        serde_json::from_str(t)
            .map_err(|e| Error::internal(format!("stored {what} is not JSON: {e}")))
    })
    .transpose()
}

fn ts(micros: Option<i64>) -> Option<Timestamp> {
    micros.map(Timestamp::from_micros)
}

lite_row!(RunRow {
    id,
    operation,
    tenant_id,
    provider_connection_id,
    subject,
    status,
    initiator,
    actor_id,
    params,
    fencing_token,
    tenant_active,
    reason_code,
    reasons,
    summary,
    sequence_id,
    sequence_position,
    replaced_run_id,
    created_at,
    status_changed_at,
    queued_at,
    started_at,
    finished_at,
    stale_at,
});

impl RunRow {
    /// The run as the contract shows it. The fencing token is included only
    /// for callers that own the run (`with_token`).
    pub(crate) fn into_run(self, with_token: bool) -> Result<Run> {
        let params = match parse_json_text("params", self.params.as_deref())? {
            Some(Value::Object(map)) => Some(map),
            Some(_) => return Err(Error::internal("stored params are not an object")),
            None => None,
        };
        let reasons = match parse_json_text("reasons", self.reasons.as_deref())? {
            Some(value) => serde_json::from_value(value)
                .map_err(|e| Error::internal(format!("stored reasons are not a list: {e}")))?,
            None => Vec::new(),
        };
        Ok(Run {
            id: self.id,
            status: parse_enum("run status", &self.status, RunStatus::parse)?,
            initiator: parse_enum("initiator", &self.initiator, Initiator::parse)?,
            operation: self.operation,
            tenant_id: self.tenant_id,
            provider_connection_id: self.provider_connection_id,
            subject: self.subject,
            actor_id: self.actor_id,
            params,
            created_at: Timestamp::from_micros(self.created_at),
            since: Timestamp::from_micros(self.status_changed_at),
            queued_at: ts(self.queued_at),
            started_at: ts(self.started_at),
            finished_at: ts(self.finished_at),
            stale_at: ts(self.stale_at),
            fencing_token: if with_token { self.fencing_token } else { None },
            reason_code: self.reason_code,
            reasons,
            summary: parse_json_text("summary", self.summary.as_deref())?,
            sequence_id: self.sequence_id,
            sequence_position: self.sequence_position,
            replaced_run_id: self.replaced_run_id,
        })
    }
}

/// A row of `provider_connections`.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct ConnectionRow {
    pub tenant_id: String,
    pub id: String,
    pub provider: String,
    pub display_name: String,
    pub is_default: bool,
    pub enabled: bool,
    pub consent: String,
    pub credential: String,
    pub credential_expires_at: Option<i64>,
    pub health: String,
}

lite_row!(ConnectionRow {
    tenant_id,
    id,
    provider,
    display_name,
    is_default,
    enabled,
    consent,
    credential,
    credential_expires_at,
    health,
});

impl ConnectionRow {
    pub(crate) fn into_connection(self) -> Result<ProviderConnection> {
        Ok(ProviderConnection {
            consent: parse_enum("consent", &self.consent, Consent::parse)?,
            credential: parse_enum("credential", &self.credential, Credential::parse)?,
            health: parse_enum("health", &self.health, Health::parse)?,
            id: self.id,
            tenant_id: self.tenant_id,
            provider: self.provider,
            display_name: self.display_name,
            is_default: self.is_default,
            enabled: self.enabled,
            credential_expires_at: ts(self.credential_expires_at),
        })
    }
}

/// The columns of `start_attempts` (without `id`), for inserts.
macro_rules! attempt_columns {
    () => {
        "attempted_at, source, operation, tenant_id, provider_connection_id, subject, actor_id, \
         initiator, outcome, status, run_id, holder_run_id, reason_code, reasons, \
         replaced_run_id, params_differ"
    };
}
pub(crate) use attempt_columns;

/// A row of `start_attempts`.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct AttemptRow {
    pub id: i64,
    pub attempted_at: i64,
    pub source: String,
    pub operation: String,
    pub tenant_id: String,
    pub provider_connection_id: Option<String>,
    pub subject: Option<String>,
    pub actor_id: String,
    pub initiator: String,
    pub outcome: String,
    pub status: Option<i32>,
    pub run_id: Option<i64>,
    pub holder_run_id: Option<i64>,
    pub reason_code: Option<String>,
    pub reasons: Option<String>,
    pub replaced_run_id: Option<i64>,
    pub params_differ: Option<bool>,
}

lite_row!(AttemptRow {
    id,
    attempted_at,
    source,
    operation,
    tenant_id,
    provider_connection_id,
    subject,
    actor_id,
    initiator,
    outcome,
    status,
    run_id,
    holder_run_id,
    reason_code,
    reasons,
    replaced_run_id,
    params_differ,
});

impl AttemptRow {
    pub(crate) fn into_attempt(self) -> Result<StartAttempt> {
        let reasons = match parse_json_text("reasons", self.reasons.as_deref())? {
            Some(value) => serde_json::from_value(value)
                .map_err(|e| Error::internal(format!("stored reasons are not a list: {e}")))?,
            None => Vec::new(),
        };
        Ok(StartAttempt {
            id: self.id,
            attempted_at: Timestamp::from_micros(self.attempted_at),
            source: self.source,
            operation: self.operation,
            tenant_id: self.tenant_id,
            provider_connection_id: self.provider_connection_id,
            subject: self.subject,
            actor_id: self.actor_id,
            initiator: parse_enum("initiator", &self.initiator, Initiator::parse)?,
            outcome: parse_enum("outcome", &self.outcome, Outcome::parse)?,
            status: self.status.and_then(|s| u16::try_from(s).ok()),
            run_id: self.run_id,
            holder_run_id: self.holder_run_id,
            reason_code: self.reason_code,
            reasons,
            replaced_run_id: self.replaced_run_id,
            params_differ: self.params_differ,
        })
    }
}

/// The values of one audit row, built from a plan and what was decided.
pub(crate) struct AttemptValues<'a> {
    pub source: Source,
    pub operation: &'a str,
    pub tenant_id: &'a str,
    pub connection_id: Option<&'a str>,
    pub subject: Option<&'a str>,
    pub actor_id: &'a str,
    pub initiator: Initiator,
    pub outcome: Outcome,
    pub status: Option<u16>,
    pub run_id: Option<i64>,
    pub holder_run_id: Option<i64>,
    pub reasons: &'a [String],
    pub replaced_run_id: Option<i64>,
    pub params_differ: Option<bool>,
}

impl<'a> AttemptValues<'a> {
    pub(crate) fn for_plan(plan: &Plan<'a>, admission: &'a Admission) -> Self {
        AttemptValues {
            source: plan.source,
            operation: &plan.op.name,
            tenant_id: plan.tenant_id,
            connection_id: admission
                .connection_id
                .as_deref()
                .or(plan.requested_connection),
            subject: plan.subject,
            actor_id: plan.actor_id,
            initiator: plan.initiator,
            outcome: admission.outcome,
            status: None,
            run_id: admission.run.as_ref().map(|r| r.id),
            // An accepted takeover carries the run it ended as its holder;
            // the audit row names that one as `replaced_run_id` only.
            holder_run_id: admission
                .holder
                .as_ref()
                .filter(|_| admission.outcome != Outcome::Accepted)
                .map(|r| r.id),
            reasons: &admission.reasons,
            replaced_run_id: admission.replaced_run_id,
            params_differ: admission.params_differ,
        }
    }

    pub(crate) fn reasons_json(&self) -> Option<String> {
        (!self.reasons.is_empty()).then(|| Value::from(self.reasons.to_vec()).to_string())
    }
}

pub(crate) fn reasons_json(reasons: &[String]) -> Option<String> {
    (!reasons.is_empty()).then(|| Value::from(reasons.to_vec()).to_string())
}

/// One count of [`crate::store::ops::stats_in`]'s query: which count, its
/// key and sub-key, and the number.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct CountRow {
    pub kind: String,
    pub key: String,
    pub sub: Option<String>,
    pub n: i64,
}

lite_row!(CountRow { kind, key, sub, n });
