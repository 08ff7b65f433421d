//! The shapes of the contract (docs/DESIGN.md §8): requests, results, runs,
//! provider connections, completions and presentations.
//!
//! Field names are the JSON names on every surface. Requests reject unknown
//! fields so a misspelt field is an `invalid_request`, not a silent default.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::time::Timestamp;

/// Longest accepted id or name, in bytes (tenant, connection, actor, subject, …).
pub const MAX_ID_BYTES: usize = 255;
/// Most capabilities an actor may carry in one request.
pub const MAX_CAPABILITIES: usize = 1_000;
/// Largest `params` (or completion `summary`) object, in bytes of compact JSON.
pub const MAX_DOCUMENT_BYTES: usize = 64 * 1024;
/// Most requests in one `check` call.
pub const MAX_CHECK_REQUESTS: usize = 1_000;
/// Most operations in one sequence.
pub const MAX_SEQUENCE_STEPS: usize = 32;

macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant,)+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stable string form used in JSON and in the database.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text,)+ }
            }

            /// Parses the stable string form.
            pub fn parse(text: &str) -> Option<Self> {
                match text { $($text => Some($name::$variant),)+ _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

string_enum! {
    /// Who asked for the start. Only user-initiated runs notify their initiator.
    Initiator {
        /// An operator clicked start (the default).
        User = "user",
        /// A schedule started it.
        Schedule = "schedule",
        /// The system itself started it.
        System = "system",
    }
}

// The enum comes from `string_enum!`, which cannot carry `#[default]`.
#[allow(clippy::derivable_impls)]
impl Default for Initiator {
    fn default() -> Self {
        Initiator::User
    }
}

string_enum! {
    /// The canonical outcome of a start (docs/DESIGN.md §4).
    Outcome {
        /// A `queued` run was inserted; the host dispatches its job. Public wording: "queued".
        Accepted = "accepted",
        /// The same operation and subject already runs on the scope. Public wording: "already running".
        Deduped = "deduped",
        /// Another operation holds the scope. Public wording: "scope busy".
        ScopeBusy = "scope_busy",
        /// Preflight failed; a `blocked` run records why. Public wording: "blocked".
        Blocked = "blocked",
        /// The actor may not start it (`status` 404 or 403).
        Denied = "denied",
    }
}

string_enum! {
    /// The status of a run (docs/DESIGN.md §3). Active = `queued` or `running`.
    RunStatus {
        /// Preflight failed; terminal, never active, never dispatched.
        Blocked = "blocked",
        /// Waiting in a sequence; holds nothing.
        Pending = "pending",
        /// Admitted, waiting for a worker; holds the scope.
        Queued = "queued",
        /// A worker runs it; holds the scope while its lease lasts.
        Running = "running",
        /// Ended well.
        Succeeded = "succeeded",
        /// Ended with part of the work done.
        PartiallySucceeded = "partially_succeeded",
        /// Ended in failure (including a lease that expired: `run_lease_expired`).
        Failed = "failed",
        /// Ended by cancellation.
        Cancelled = "cancelled",
    }
}

impl RunStatus {
    /// `queued` or `running`: the run holds its protected scope.
    pub fn is_active(self) -> bool {
        matches!(self, RunStatus::Queued | RunStatus::Running)
    }

    /// The run has ended and will not change again.
    pub fn is_terminal(self) -> bool {
        !matches!(
            self,
            RunStatus::Pending | RunStatus::Queued | RunStatus::Running
        )
    }
}

string_enum! {
    /// How a worker ends a run.
    CompletionOutcome {
        /// The work succeeded.
        Succeeded = "succeeded",
        /// Part of the work succeeded.
        PartiallySucceeded = "partially_succeeded",
        /// The work failed.
        Failed = "failed",
        /// The work was cancelled.
        Cancelled = "cancelled",
    }
}

impl CompletionOutcome {
    /// The run status this outcome ends in.
    pub fn status(self) -> RunStatus {
        match self {
            CompletionOutcome::Succeeded => RunStatus::Succeeded,
            CompletionOutcome::PartiallySucceeded => RunStatus::PartiallySucceeded,
            CompletionOutcome::Failed => RunStatus::Failed,
            CompletionOutcome::Cancelled => RunStatus::Cancelled,
        }
    }
}

string_enum! {
    /// Admin-consent state of a provider connection.
    Consent {
        /// Consent is granted.
        Granted = "granted",
        /// Consent was never granted.
        Missing = "missing",
        /// Consent was granted and later revoked.
        Revoked = "revoked",
    }
}

string_enum! {
    /// Credential state of a provider connection (facts only; never the secret).
    Credential {
        /// A credential is stored (see `credential_expires_at`).
        Present = "present",
        /// No credential is stored.
        Missing = "missing",
        /// The stored credential has expired.
        Expired = "expired",
        /// The stored credential was rejected by the provider.
        Invalid = "invalid",
    }
}

string_enum! {
    /// The last health-check result of a provider connection.
    Health {
        /// The last check passed.
        Ok = "ok",
        /// The last check failed.
        Unhealthy = "unhealthy",
        /// Never checked (does not block a start).
        Unknown = "unknown",
    }
}

string_enum! {
    /// The visual tone of a presentation.
    Tone {
        /// Green: it worked.
        Success = "success",
        /// Blue: for information.
        Info = "info",
        /// Amber: needs attention.
        Warning = "warning",
        /// Red: refused or failed.
        Danger = "danger",
    }
}

/// Who is asking, as facts the host has already established.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Actor {
    /// The host's id for the actor (user id, schedule name, …).
    pub id: String,
    /// Whether the actor is a member of the tenant. Non-members get a bare 404.
    pub is_member: bool,
    /// The actor's capabilities in this tenant.
    #[serde(default)]
    pub capabilities: Vec<String>,
}

impl Actor {
    /// A tenant member holding `capabilities`.
    pub fn member<I, S>(id: impl Into<String>, capabilities: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Actor {
            id: id.into(),
            is_member: true,
            capabilities: capabilities.into_iter().map(Into::into).collect(),
        }
    }

    /// Someone who is not a member of the tenant.
    pub fn non_member(id: impl Into<String>) -> Self {
        Actor {
            id: id.into(),
            is_member: false,
            capabilities: Vec::new(),
        }
    }
}

fn default_true() -> bool {
    true
}

/// An optional JSON object where an empty list is also accepted as `{}`:
/// PHP's `json_encode([])` writes `[]` for an empty associative array.
fn object_or_empty_list<'de, D>(
    deserializer: D,
) -> std::result::Result<Option<Map<String, Value>>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    match Option::<Value>::deserialize(deserializer)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(map)) => Ok(Some(map)),
        Some(Value::Array(items)) if items.is_empty() => Ok(Some(Map::new())),
        Some(other) => Err(serde::de::Error::custom(format!(
            "expected a JSON object, found {}",
            match other {
                Value::Bool(_) => "a boolean",
                Value::Number(_) => "a number",
                Value::String(_) => "a string",
                _ => "a list",
            }
        ))),
    }
}

fn is_true(value: &bool) -> bool {
    *value
}

/// A request to start one operation (docs/DESIGN.md §8 "Start request").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartRequest {
    /// The registered operation type, e.g. `inventory.sync`.
    pub operation: String,
    /// The tenant the work targets.
    pub tenant_id: String,
    /// Who asks.
    pub actor: Actor,
    /// An explicit connection; otherwise the tenant's default is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_connection_id: Option<String>,
    /// A target inside the operation (part of the dedupe identity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Parameters stored with the run.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "object_or_empty_list"
    )]
    pub params: Option<Map<String, Value>>,
    /// Who started it: `user` (default), `schedule` or `system`.
    #[serde(default)]
    pub initiator: Initiator,
    /// Whether the tenant is active (host fact; default true).
    #[serde(default = "default_true", skip_serializing_if = "is_true")]
    pub tenant_active: bool,
}

impl StartRequest {
    /// A request with only the required fields; chain the `with_*` methods for the rest.
    pub fn new(operation: impl Into<String>, tenant_id: impl Into<String>, actor: Actor) -> Self {
        StartRequest {
            operation: operation.into(),
            tenant_id: tenant_id.into(),
            actor,
            provider_connection_id: None,
            subject: None,
            params: None,
            initiator: Initiator::User,
            tenant_active: true,
        }
    }

    /// Targets an explicit provider connection.
    pub fn with_connection(mut self, provider_connection_id: impl Into<String>) -> Self {
        self.provider_connection_id = Some(provider_connection_id.into());
        self
    }

    /// Sets the subject inside the operation (e.g. a restore run id).
    pub fn with_subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }

    /// Sets the parameters stored with the run.
    pub fn with_params(mut self, params: Map<String, Value>) -> Self {
        self.params = Some(params);
        self
    }

    /// Sets who started it.
    pub fn with_initiator(mut self, initiator: Initiator) -> Self {
        self.initiator = initiator;
        self
    }

    /// Sets whether the tenant is active.
    pub fn with_tenant_active(mut self, active: bool) -> Self {
        self.tenant_active = active;
        self
    }

    /// Parses a start request from JSON; a mismatch names the field (the
    /// document as a whole is `request`).
    pub fn from_json(json: &str) -> Result<Self> {
        crate::input::parse("request", json)
    }

    pub(crate) fn validate(&self) -> Result<()> {
        validate_common(
            &self.tenant_id,
            &self.actor,
            self.provider_connection_id.as_deref(),
            self.subject.as_deref(),
            self.params.as_ref(),
        )?;
        validate_name("operation", &self.operation)
    }
}

/// A request to start an ordered list of operations on one scope
/// (`start_sequence`, docs/DESIGN.md §3 "Sequences").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SequenceRequest {
    /// The operations, in order. Give either this or `sequence`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operations: Option<Vec<String>>,
    /// The name of a sequence declared in the registry. Give either this or `operations`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence: Option<String>,
    /// The tenant the work targets.
    pub tenant_id: String,
    /// Who asks; needs the capability of every step.
    pub actor: Actor,
    /// An explicit connection; otherwise the tenant's default is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_connection_id: Option<String>,
    /// A subject applied to every step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Parameters stored with every step.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "object_or_empty_list"
    )]
    pub params: Option<Map<String, Value>>,
    /// Who started it.
    #[serde(default)]
    pub initiator: Initiator,
    /// Whether the tenant is active (host fact; default true). Pending steps
    /// are preflighted later with this same fact.
    #[serde(default = "default_true", skip_serializing_if = "is_true")]
    pub tenant_active: bool,
}

impl SequenceRequest {
    /// A sequence of explicit operations.
    pub fn new<I, S>(operations: I, tenant_id: impl Into<String>, actor: Actor) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        SequenceRequest {
            operations: Some(operations.into_iter().map(Into::into).collect()),
            sequence: None,
            tenant_id: tenant_id.into(),
            actor,
            provider_connection_id: None,
            subject: None,
            params: None,
            initiator: Initiator::User,
            tenant_active: true,
        }
    }

    /// A sequence declared in the registry under `name`.
    pub fn named(name: impl Into<String>, tenant_id: impl Into<String>, actor: Actor) -> Self {
        SequenceRequest {
            operations: None,
            sequence: Some(name.into()),
            ..SequenceRequest::new(Vec::<String>::new(), tenant_id, actor)
        }
    }

    /// Parses a sequence request from JSON; a mismatch names the field (the
    /// document as a whole is `request`).
    pub fn from_json(json: &str) -> Result<Self> {
        crate::input::parse("request", json)
    }

    pub(crate) fn validate(&self) -> Result<()> {
        validate_common(
            &self.tenant_id,
            &self.actor,
            self.provider_connection_id.as_deref(),
            self.subject.as_deref(),
            self.params.as_ref(),
        )?;
        match (&self.operations, &self.sequence) {
            (Some(_), Some(_)) => Err(Error::invalid(
                "operations",
                "give either `operations` or `sequence`, not both",
            )),
            (None, None) => Err(Error::invalid(
                "operations",
                "give the `operations` to run in order, or the name of a registry `sequence`",
            )),
            (None, Some(name)) => validate_name("sequence", name),
            (Some(ops), None) => {
                if ops.is_empty() {
                    return Err(Error::invalid("operations", "needs at least one operation"));
                }
                if ops.len() > MAX_SEQUENCE_STEPS {
                    return Err(Error::invalid(
                        "operations",
                        format!("at most {MAX_SEQUENCE_STEPS} operations per sequence"),
                    ));
                }
                for (i, op) in ops.iter().enumerate() {
                    validate_name(&format!("operations[{i}]"), op)?;
                }
                Ok(())
            }
        }
    }
}

fn validate_common(
    tenant_id: &str,
    actor: &Actor,
    connection: Option<&str>,
    subject: Option<&str>,
    params: Option<&Map<String, Value>>,
) -> Result<()> {
    validate_id("tenant_id", tenant_id)?;
    validate_id("actor.id", &actor.id)?;
    if actor.capabilities.len() > MAX_CAPABILITIES {
        return Err(Error::invalid(
            "actor.capabilities",
            format!("at most {MAX_CAPABILITIES} capabilities"),
        ));
    }
    for (i, capability) in actor.capabilities.iter().enumerate() {
        validate_id(&format!("actor.capabilities[{i}]"), capability)?;
    }
    if let Some(connection) = connection {
        validate_id("provider_connection_id", connection)?;
    }
    if let Some(subject) = subject {
        validate_id("subject", subject)?;
    }
    if let Some(params) = params {
        validate_document("params", params)?;
    }
    Ok(())
}

/// An opaque id: non-empty, at most [`MAX_ID_BYTES`], no control characters,
/// no surrounding whitespace (which would make two ids look equal but differ).
pub(crate) fn validate_id(field: &str, value: &str) -> Result<()> {
    if value.is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    if value.len() > MAX_ID_BYTES {
        return Err(Error::invalid(
            field,
            format!("is {} bytes long; the limit is {MAX_ID_BYTES}", value.len()),
        ));
    }
    if value.contains('\0') {
        return Err(crate::input::holds_nul(field));
    }
    if value.chars().any(char::is_control) {
        return Err(Error::invalid(field, "must not contain control characters"));
    }
    if value.trim() != value {
        return Err(Error::invalid(
            field,
            "must not start or end with whitespace",
        ));
    }
    Ok(())
}

/// A registry name (operation, sequence): an id restricted to `[a-z0-9._-]`.
pub(crate) fn validate_name(field: &str, value: &str) -> Result<()> {
    validate_id(field, value)?;
    if !is_name(value) {
        return Err(Error::invalid(
            field,
            format!("\"{value}\" may contain only a-z, 0-9, '.', '_' and '-'"),
        ));
    }
    Ok(())
}

pub(crate) fn is_name(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= MAX_ID_BYTES
        && value.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        })
}

pub(crate) fn validate_document(field: &str, doc: &Map<String, Value>) -> Result<()> {
    for (key, value) in doc {
        let path = format!("{field}.{key}");
        if key.contains('\0') {
            return Err(crate::input::holds_nul(path));
        }
        crate::input::check_field(&path, value)?;
    }
    let size = serde_json::to_vec(doc)
        .map(|v| v.len())
        .unwrap_or(usize::MAX);
    if size > MAX_DOCUMENT_BYTES {
        return Err(Error::invalid(
            field,
            format!("is {size} bytes of JSON; the limit is {MAX_DOCUMENT_BYTES}"),
        ));
    }
    Ok(())
}

/// A run: the record of one start (`operation_runs`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    /// The run id; hosts pass it to their job.
    pub id: i64,
    /// The operation type.
    pub operation: String,
    /// The tenant.
    pub tenant_id: String,
    /// The pinned provider connection (the requested one for a blocked run
    /// whose connection was missing).
    pub provider_connection_id: Option<String>,
    /// The subject inside the operation.
    pub subject: Option<String>,
    /// Current status.
    pub status: RunStatus,
    /// Who started it.
    pub initiator: Initiator,
    /// The actor who asked.
    pub actor_id: String,
    /// The parameters stored with the run.
    #[serde(default, deserialize_with = "object_or_empty_list")]
    pub params: Option<Map<String, Value>>,
    /// When the run was recorded.
    pub created_at: Timestamp,
    /// When the run entered its current status ("running since …").
    pub since: Timestamp,
    /// When it was admitted (took the scope).
    pub queued_at: Option<Timestamp>,
    /// When a worker marked it running.
    pub started_at: Option<Timestamp>,
    /// When it ended.
    pub finished_at: Option<Timestamp>,
    /// When an active run becomes stale if it is not started (queued) or its
    /// lease is not renewed (running).
    pub stale_at: Option<Timestamp>,
    /// The worker's proof of ownership. Present only where the caller owns the
    /// run: an accepted start, and the worker calls. Per scope it only grows.
    pub fencing_token: Option<i64>,
    /// The primary reason (blocked), or the completion's reason code.
    pub reason_code: Option<String>,
    /// Every failing readiness check of a blocked run, primary first.
    pub reasons: Vec<String>,
    /// The completion summary.
    pub summary: Option<Value>,
    /// The first run of the sequence this run belongs to.
    pub sequence_id: Option<i64>,
    /// The position in that sequence, from 0.
    pub sequence_position: Option<i64>,
    /// The stale run this run took the scope from.
    pub replaced_run_id: Option<i64>,
}

/// One failing readiness check, rendered for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reason {
    /// The stable reason code, e.g. `provider_consent_missing`.
    pub code: String,
    /// Operator-ready text.
    pub message: String,
    /// What the operator can do about it.
    pub next_steps: Vec<Action>,
}

/// A labelled link: a next step, or "View run".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Action {
    /// The button text.
    pub label: String,
    /// Where it leads.
    pub url: String,
}

/// The result of a start, a check, or a sequence advance (docs/DESIGN.md §8 "Start result").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StartResult {
    /// `accepted`, `deduped`, `scope_busy`, `blocked` or `denied`.
    pub outcome: Outcome,
    /// The operation asked for.
    pub operation: String,
    /// The tenant asked for.
    pub tenant_id: String,
    /// The run created (accepted, blocked) or found (deduped). `None` for a
    /// check, scope_busy and denied.
    pub run: Option<Run>,
    /// The active run in the way (deduped, scope_busy), or the stale run an
    /// accepted start ended and replaced (as ended: `failed`, `run_lease_expired`).
    pub holder: Option<Run>,
    /// Why it is blocked, primary first.
    pub reasons: Vec<Reason>,
    /// 404 (not a member: no other detail) or 403 (missing capability), for denied.
    pub status: Option<u16>,
    /// The resolved, pinned connection the job must use.
    pub provider_connection_id: Option<String>,
    /// The stale run this start took the scope from.
    pub replaced_run_id: Option<i64>,
    /// For deduped: whether this request's params differ from the active run's.
    pub params_differ: Option<bool>,
    /// For `start_sequence`: the later steps, recorded as `pending`.
    pub pending: Vec<Run>,
}

impl StartResult {
    /// The accepted run's id, if this start was accepted.
    pub fn accepted_run(&self) -> Option<&Run> {
        match self.outcome {
            Outcome::Accepted => self.run.as_ref(),
            _ => None,
        }
    }
}

/// A worker ending its run (docs/DESIGN.md §8 "Completion").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Completion {
    /// The run.
    pub run_id: i64,
    /// The token the run was accepted with.
    pub fencing_token: i64,
    /// How it ended.
    pub outcome: CompletionOutcome,
    /// Why (for failed runs: a code from the reason catalogue).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason_code: Option<String>,
    /// A summary object stored with the run.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "object_or_empty_list"
    )]
    pub summary: Option<Map<String, Value>>,
}

impl Completion {
    /// A completion without reason or summary.
    pub fn new(run_id: i64, fencing_token: i64, outcome: CompletionOutcome) -> Self {
        Completion {
            run_id,
            fencing_token,
            outcome,
            reason_code: None,
            summary: None,
        }
    }

    /// Parses a completion from JSON; a mismatch names the field (the
    /// document as a whole is `completion`).
    pub fn from_json(json: &str) -> Result<Self> {
        crate::input::parse("completion", json)
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if let Some(code) = &self.reason_code {
            validate_name("reason_code", code)?;
        }
        if let Some(summary) = &self.summary {
            validate_document("summary", summary)?;
        }
        Ok(())
    }
}

/// What ending a run produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompletionResult {
    /// The ended run.
    pub run: Run,
    /// Whether the host should notify the initiator (user-initiated runs only).
    pub notify_initiator: bool,
    /// The pending sequence run this end admitted; the caller dispatches it.
    pub next: Option<StartResult>,
    /// Pending runs that were preflighted on the way and blocked.
    pub next_blocked: Vec<StartResult>,
}

/// What `reap_stale` did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReapResult {
    /// Runs ended as failed with `run_lease_expired`.
    pub reaped: Vec<Run>,
    /// Pending runs admitted (to dispatch) or blocked as scopes were freed.
    pub next: Vec<StartResult>,
}

/// A tenant's link to an external provider: readiness facts only, never secrets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConnection {
    /// Connection id, unique within its tenant.
    pub id: String,
    /// The owning tenant.
    pub tenant_id: String,
    /// The provider, e.g. `microsoft_graph`.
    pub provider: String,
    /// A name people recognise (defaults to the id).
    #[serde(default)]
    pub display_name: String,
    /// Whether this is the tenant's default connection (at most one is).
    #[serde(default)]
    pub is_default: bool,
    /// Whether the connection is enabled.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Admin-consent state.
    #[serde(default = "default_consent")]
    pub consent: Consent,
    /// Credential state.
    #[serde(default = "default_credential")]
    pub credential: Credential,
    /// When the present credential expires.
    #[serde(default)]
    pub credential_expires_at: Option<Timestamp>,
    /// Last health-check result.
    #[serde(default = "default_health")]
    pub health: Health,
}

fn default_consent() -> Consent {
    Consent::Missing
}
fn default_credential() -> Credential {
    Credential::Missing
}
fn default_health() -> Health {
    Health::Unknown
}

impl ProviderConnection {
    /// A connection with consent and credential in place, healthy and enabled.
    pub fn ready(
        tenant_id: impl Into<String>,
        id: impl Into<String>,
        provider: impl Into<String>,
    ) -> Self {
        let id = id.into();
        ProviderConnection {
            display_name: id.clone(),
            id,
            tenant_id: tenant_id.into(),
            provider: provider.into(),
            is_default: true,
            enabled: true,
            consent: Consent::Granted,
            credential: Credential::Present,
            credential_expires_at: None,
            health: Health::Ok,
        }
    }

    /// Parses a connection from JSON; a mismatch names the field (the
    /// document as a whole is `connection`).
    pub fn from_json(json: &str) -> Result<Self> {
        crate::input::parse("connection", json)
    }

    pub(crate) fn validate(&self) -> Result<()> {
        validate_id("id", &self.id)?;
        validate_id("tenant_id", &self.tenant_id)?;
        validate_id("provider", &self.provider)?;
        if !self.display_name.is_empty() {
            validate_id("display_name", &self.display_name)?;
        }
        Ok(())
    }
}

/// Filters for listing runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunFilter {
    /// Only this tenant's runs.
    pub tenant_id: Option<String>,
    /// Only this operation type.
    pub operation: Option<String>,
    /// Only runs with this status.
    pub status: Option<RunStatus>,
    /// Only active (`queued`/`running`) runs.
    pub active: bool,
    /// At most this many, newest first (default 100, at most 10,000).
    pub limit: Option<u32>,
}

/// The audit row of one start attempt: the answer to "why was my start refused?".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StartAttempt {
    /// Attempt id.
    pub id: i64,
    /// When it was decided.
    pub attempted_at: Timestamp,
    /// `start`, `sequence` (first step of a sequence) or `advance` (a pending
    /// step decided when its scope freed).
    pub source: String,
    /// The operation asked for.
    pub operation: String,
    /// The tenant.
    pub tenant_id: String,
    /// The resolved connection (or the requested one).
    pub provider_connection_id: Option<String>,
    /// The subject.
    pub subject: Option<String>,
    /// Who asked.
    pub actor_id: String,
    /// Who started it.
    pub initiator: Initiator,
    /// The outcome.
    pub outcome: Outcome,
    /// 404/403 for denied.
    pub status: Option<u16>,
    /// The run created or found.
    pub run_id: Option<i64>,
    /// The active run in the way.
    pub holder_run_id: Option<i64>,
    /// The primary reason of a blocked attempt.
    pub reason_code: Option<String>,
    /// Every reason of a blocked attempt.
    pub reasons: Vec<String>,
    /// The stale run taken over.
    pub replaced_run_id: Option<i64>,
    /// For deduped: whether params differed.
    pub params_differ: Option<bool>,
}

/// Operator feedback for a start result or a run (docs/DESIGN.md §4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Presentation {
    /// The canonical outcome (for `present_run`: the run status).
    pub outcome: String,
    /// Public wording: "queued", "already running", "scope busy", "blocked", …
    pub status_label: String,
    /// success, info, warning or danger.
    pub tone: Tone,
    /// One line, e.g. "Inventory sync queued".
    pub title: String,
    /// A sentence or two of detail.
    pub body: String,
    /// The run page, when there is a run to show.
    pub run_url: Option<String>,
    /// "View run" and next steps.
    pub actions: Vec<Action>,
}
