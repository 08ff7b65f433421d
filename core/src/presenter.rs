//! The presenter: one operator vocabulary for every host (docs/DESIGN.md §4).
//!
//! Pure functions of a result (or run) and the registry: no database, no clock.

use crate::model::{Action, Outcome, Presentation, Reason, Run, RunStatus, StartResult, Tone};
use crate::reason;
use crate::registry::{Registry, TextKey, UrlKey};
use crate::template::{Template, Var};
use crate::time::Timestamp;

/// What the templates of one presentation can refer to.
#[derive(Default)]
struct Context<'a> {
    label: Option<&'a str>,
    operation: Option<&'a str>,
    tenant_id: Option<&'a str>,
    connection_id: Option<&'a str>,
    subject: Option<&'a str>,
    run_id: Option<i64>,
    status: Option<RunStatus>,
    since: Option<Timestamp>,
    reason: Option<String>,
    holder: Option<&'a Run>,
    holder_label: Option<&'a str>,
    holder_reason: Option<String>,
    urls: Urls,
}

#[derive(Default)]
struct Urls {
    tenant: Option<String>,
    connection: Option<String>,
    run: Option<String>,
}

impl<'a> Context<'a> {
    fn value(&self, var: Var) -> Option<String> {
        let holder = self.holder;
        match var {
            Var::Label => self.label.map(str::to_string),
            Var::Operation => self.operation.map(str::to_string),
            Var::TenantId => self.tenant_id.map(str::to_string),
            Var::ProviderConnectionId => self.connection_id.map(str::to_string),
            Var::Subject => self.subject.map(str::to_string),
            Var::RunId => self.run_id.map(|id| id.to_string()),
            Var::Status => self.status.map(status_words),
            Var::Since => self.since.map(human_time),
            Var::Reason => self.reason.clone(),
            Var::HolderLabel => self.holder_label.map(str::to_string),
            Var::HolderStatus => holder.map(|h| status_words(h.status)),
            Var::HolderSince => holder.map(|h| human_time(h.since)),
            Var::HolderActor => holder.map(|h| h.actor_id.clone()),
            Var::HolderInitiator => holder.map(|h| h.initiator.to_string()),
            Var::HolderRunId => holder.map(|h| h.id.to_string()),
            Var::HolderReason => self.holder_reason.clone(),
            Var::TenantUrl => self.urls.tenant.clone(),
            Var::ConnectionUrl => self.urls.connection.clone(),
            Var::RunUrl => self.urls.run.clone(),
        }
    }

    /// Resolves the URL templates in a fixed order (tenant, connection, run) so
    /// each may build on the ones before it.
    fn with_urls(mut self, registry: &Registry, run_id: Option<i64>) -> Self {
        self.urls.tenant = self
            .tenant_id
            .and_then(|_| self.url(registry, UrlKey::Tenant));
        self.urls.connection = self
            .connection_id
            .and_then(|_| self.url(registry, UrlKey::Connection));
        let saved = self.run_id;
        self.run_id = run_id;
        self.urls.run = run_id.and_then(|_| self.url(registry, UrlKey::Run));
        self.run_id = saved;
        self
    }

    fn url(&self, registry: &Registry, key: UrlKey) -> Option<String> {
        let template = registry.template(&format!("urls.{}", key.name()))?;
        Some(template.render_url(&|v| self.value(v)))
    }

    fn text(&self, template: Option<&Template>) -> String {
        template
            .map(|t| t.render(&|v| self.value(v)))
            .unwrap_or_default()
    }
}

fn status_words(status: RunStatus) -> String {
    status.as_str().replace('_', " ")
}

/// "2026-03-01 12:05 UTC": what an operator reads in a sentence.
fn human_time(at: Timestamp) -> String {
    let text = at.to_string();
    format!("{} {} UTC", &text[..10], &text[11..16])
}

/// Renders reason codes with the catalogue: message and next steps, primary first.
pub(crate) fn render_reasons(
    registry: &Registry,
    codes: &[String],
    operation: &str,
    tenant_id: &str,
    connection_id: Option<&str>,
    run_id: Option<i64>,
) -> Vec<Reason> {
    // Most results (every accepted start) carry no reason: build no URLs for them.
    if codes.is_empty() {
        return Vec::new();
    }
    let ctx = Context {
        label: Some(registry.label_of(operation)),
        operation: Some(operation),
        tenant_id: Some(tenant_id),
        connection_id,
        run_id,
        ..Context::default()
    }
    .with_urls(registry, run_id);
    codes
        .iter()
        .map(|code| render_reason(registry, &ctx, code))
        .collect()
}

fn render_reason(registry: &Registry, ctx: &Context<'_>, code: &str) -> Reason {
    let base = format!("reasons.{}", quoted(code));
    let Some(text) = registry.reason(code) else {
        // A host code without catalogue text: the code is the best we have.
        return Reason {
            code: code.to_string(),
            message: code.replace('_', " "),
            next_steps: Vec::new(),
        };
    };
    let next_steps = (0..text.next_steps.len())
        .map(|i| Action {
            label: ctx.text(registry.template(&format!("{base}.next_steps[{i}].label"))),
            url: registry
                .template(&format!("{base}.next_steps[{i}].url"))
                .map(|t| t.render_url(&|v| ctx.value(v)))
                .unwrap_or_default(),
        })
        .collect();
    Reason {
        code: code.to_string(),
        message: ctx.text(registry.template(&format!("{base}.message"))),
        next_steps,
    }
}

fn quoted(key: &str) -> String {
    if key
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        key.to_string()
    } else {
        format!("{key:?}")
    }
}

/// "Primary message. Also: second message third message" — every reason, primary first.
fn reasons_body(reasons: &[Reason]) -> Option<String> {
    let (primary, rest) = reasons.split_first()?;
    let mut body = primary.message.clone();
    if !rest.is_empty() {
        body.push_str(" Also: ");
        let others: Vec<&str> = rest.iter().map(|r| r.message.as_str()).collect();
        body.push_str(&others.join(" "));
    }
    Some(body)
}

/// Next steps of every reason (primary first, each URL once), then "View run".
fn actions(registry: &Registry, reasons: &[Reason], run_url: Option<&String>) -> Vec<Action> {
    let mut actions: Vec<Action> = Vec::new();
    for step in reasons.iter().flat_map(|r| &r.next_steps) {
        if !actions.iter().any(|a| a.url == step.url) {
            actions.push(step.clone());
        }
    }
    if let Some(url) = run_url {
        actions.push(Action {
            label: registry.view_run_label().to_string(),
            url: url.clone(),
        });
    }
    actions
}

fn tone_of(outcome: Outcome) -> Tone {
    match outcome {
        Outcome::Accepted => Tone::Success,
        Outcome::Deduped => Tone::Info,
        Outcome::ScopeBusy => Tone::Warning,
        Outcome::Blocked | Outcome::Denied => Tone::Danger,
    }
}

fn run_tone(status: RunStatus) -> Tone {
    match status {
        RunStatus::Succeeded => Tone::Success,
        RunStatus::Pending | RunStatus::Queued | RunStatus::Running => Tone::Info,
        RunStatus::PartiallySucceeded | RunStatus::Cancelled => Tone::Warning,
        RunStatus::Failed | RunStatus::Blocked => Tone::Danger,
    }
}

/// Operator feedback for a start (or check) result.
pub(crate) fn present(registry: &Registry, result: &StartResult) -> Presentation {
    let key = match (result.outcome, result.status) {
        (Outcome::Accepted, _) if result.holder.is_some() => TextKey::AcceptedAfterTakeover,
        (Outcome::Accepted, _) => TextKey::Accepted,
        (Outcome::Deduped, _) if result.params_differ == Some(true) => TextKey::DedupedParamsDiffer,
        (Outcome::Deduped, _) => TextKey::Deduped,
        (Outcome::ScopeBusy, _) => TextKey::ScopeBusy,
        (Outcome::Blocked, _) => TextKey::Blocked,
        (Outcome::Denied, Some(403)) => TextKey::DeniedForbidden,
        (Outcome::Denied, _) => TextKey::DeniedNotFound,
    };
    let base = format!("texts.{}", key.name());
    if key == TextKey::DeniedNotFound {
        // A non-member learns nothing: no label, tenant, run or connection.
        let ctx = Context::default();
        return Presentation {
            outcome: result.outcome.to_string(),
            status_label: ctx.text(registry.template(&format!("{base}.status_label"))),
            tone: Tone::Danger,
            title: ctx.text(registry.template(&format!("{base}.title"))),
            body: ctx.text(registry.template(&format!("{base}.body"))),
            run_url: None,
            actions: Vec::new(),
        };
    }
    // Deduped and scope_busy point at the run in the way; the others at their own run.
    let shown_run = match result.outcome {
        Outcome::Deduped | Outcome::ScopeBusy => result.holder.as_ref(),
        _ => result.run.as_ref(),
    };
    let holder = result.holder.as_ref();
    let ctx = Context {
        label: Some(registry.label_of(&result.operation)),
        operation: Some(&result.operation),
        tenant_id: Some(&result.tenant_id),
        connection_id: result.provider_connection_id.as_deref(),
        subject: result.run.as_ref().and_then(|r| r.subject.as_deref()),
        run_id: result.run.as_ref().map(|r| r.id),
        status: result.run.as_ref().map(|r| r.status),
        since: result.run.as_ref().map(|r| r.since),
        reason: reasons_body(&result.reasons),
        holder,
        holder_label: holder.map(|h| registry.label_of(&h.operation)),
        // The stale run a start replaced: why it was ended.
        holder_reason: holder
            .filter(|_| result.outcome == Outcome::Accepted)
            .and_then(|h| {
                let reasons = render_reasons(
                    registry,
                    &run_reason_codes(h),
                    &h.operation,
                    &h.tenant_id,
                    h.provider_connection_id.as_deref(),
                    Some(h.id),
                );
                reasons_body(&reasons)
            }),
        urls: Urls::default(),
    }
    .with_urls(registry, shown_run.map(|r| r.id));
    let run_url = ctx.urls.run.clone();
    Presentation {
        outcome: result.outcome.to_string(),
        status_label: ctx.text(registry.template(&format!("{base}.status_label"))),
        tone: tone_of(result.outcome),
        title: ctx.text(registry.template(&format!("{base}.title"))),
        body: ctx.text(registry.template(&format!("{base}.body"))),
        actions: actions(registry, &result.reasons, run_url.as_ref()),
        run_url,
    }
}

/// The catalogue codes that describe how a run ended. A stale run that no
/// worker ever started reads as "never picked up", not as a lease that ran
/// out: both are stored as `run_lease_expired`.
fn run_reason_codes(run: &Run) -> Vec<String> {
    let codes: Vec<String> = if !run.reasons.is_empty() {
        run.reasons.clone()
    } else {
        run.reason_code.iter().cloned().collect()
    };
    codes
        .into_iter()
        .map(|code| {
            if code == reason::RUN_LEASE_EXPIRED && run.started_at.is_none() {
                reason::RUN_NOT_PICKED_UP.to_string()
            } else {
                code
            }
        })
        .collect()
}

/// Run-detail and monitoring wording, from the same reason catalogue as `present`.
pub(crate) fn present_run(registry: &Registry, run: &Run) -> Presentation {
    let codes = run_reason_codes(run);
    let reasons = render_reasons(
        registry,
        &codes,
        &run.operation,
        &run.tenant_id,
        run.provider_connection_id.as_deref(),
        Some(run.id),
    );
    let key = TextKey::Run(run.status);
    let base = format!("texts.{}", key.name());
    let ctx = Context {
        label: Some(registry.label_of(&run.operation)),
        operation: Some(&run.operation),
        tenant_id: Some(&run.tenant_id),
        connection_id: run.provider_connection_id.as_deref(),
        subject: run.subject.as_deref(),
        run_id: Some(run.id),
        status: Some(run.status),
        since: Some(run.since),
        reason: reasons_body(&reasons),
        ..Context::default()
    }
    .with_urls(registry, Some(run.id));
    // A reason from the catalogue is the body, so a blocked start and a failed
    // run with the same cause read the same; otherwise the status text.
    let catalogued = reasons.iter().any(|r| registry.reason(&r.code).is_some());
    let body = match reasons_body(&reasons) {
        Some(body) if catalogued => body,
        _ => ctx.text(registry.template(&format!("{base}.body"))),
    };
    let run_url = ctx.urls.run.clone();
    Presentation {
        outcome: run.status.to_string(),
        status_label: ctx.text(registry.template(&format!("{base}.status_label"))),
        tone: run_tone(run.status),
        title: ctx.text(registry.template(&format!("{base}.title"))),
        body,
        actions: actions(registry, &reasons, run_url.as_ref()),
        run_url,
    }
}
