//! The registry: operation types, sequences, reason texts, operator texts and
//! URL templates (docs/DESIGN.md §5).
//!
//! Load it from TOML with [`Registry::from_toml_str`] or build it in code with
//! [`Registry::builder`]. Either way it is validated as a whole and every problem
//! is reported with its path, e.g.
//! `operations."inventory.sync".requires[1]: unknown check "consnt"`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use toml::{Table, Value};

use crate::error::{Error, RegistryProblem, RegistryProblems, Result};
use crate::model::{is_name, RunStatus};
use crate::reason::{self, ReasonText};
use crate::template::Template;
use crate::time::{format_duration, parse_duration};

/// A readiness check an operation type can require. Checks read only facts
/// stored in the database (and the request's `tenant_active`); none calls a provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Check {
    /// `tenant_active`: the request says the tenant is active → else `tenant_inactive`.
    TenantActive,
    /// `connection`: a connection was resolved → else `provider_connection_missing`.
    /// Always evaluated: a start needs a connection for its scope.
    Connection,
    /// `connection_enabled` → else `provider_connection_disabled`.
    ConnectionEnabled,
    /// `consent` → else `provider_consent_missing` / `provider_consent_revoked`.
    Consent,
    /// `credential`: present and not past `credential_expires_at` → else
    /// `provider_credential_missing` / `_expired` / `_invalid`.
    Credential,
    /// `health`: the last health check did not fail → else `provider_connection_unhealthy`.
    Health,
}

impl Check {
    /// Every check, in its natural order.
    pub const ALL: [Check; 6] = [
        Check::TenantActive,
        Check::Connection,
        Check::ConnectionEnabled,
        Check::Consent,
        Check::Credential,
        Check::Health,
    ];

    /// The name used in the registry's `requires`.
    pub fn as_str(self) -> &'static str {
        match self {
            Check::TenantActive => "tenant_active",
            Check::Connection => "connection",
            Check::ConnectionEnabled => "connection_enabled",
            Check::Consent => "consent",
            Check::Credential => "credential",
            Check::Health => "health",
        }
    }

    /// Parses a check name.
    pub fn parse(name: &str) -> Option<Check> {
        Check::ALL.into_iter().find(|c| c.as_str() == name)
    }

    /// Whether evaluating this check needs a resolved connection.
    pub fn needs_connection(self) -> bool {
        !matches!(self, Check::TenantActive | Check::Connection)
    }
}

/// A registered kind of work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperationType {
    /// The operation name, e.g. `inventory.sync`.
    pub name: String,
    /// Domain wording, e.g. "Inventory sync".
    pub label: String,
    /// The capability an actor needs to start it.
    pub capability: String,
    /// Readiness checks in the order they are evaluated (`connection` is
    /// inserted before the first connection check when not listed).
    pub requires: Vec<Check>,
    /// How long a queued run may wait for a worker before it is stale.
    pub dispatch_timeout: Duration,
    /// How long a running run's lease lasts without a heartbeat.
    pub lease: Duration,
}

impl OperationType {
    /// An operation type with the default timeouts and no readiness checks
    /// beyond the connection itself.
    pub fn new(
        name: impl Into<String>,
        label: impl Into<String>,
        capability: impl Into<String>,
    ) -> Self {
        OperationType {
            name: name.into(),
            label: label.into(),
            capability: capability.into(),
            requires: Vec::new(),
            dispatch_timeout: DEFAULT_DISPATCH_TIMEOUT,
            lease: DEFAULT_LEASE,
        }
    }

    /// Sets the readiness checks, in order.
    pub fn requires(mut self, checks: impl IntoIterator<Item = Check>) -> Self {
        self.requires = checks.into_iter().collect();
        self
    }

    /// Sets the dispatch timeout.
    pub fn dispatch_timeout(mut self, timeout: Duration) -> Self {
        self.dispatch_timeout = timeout;
        self
    }

    /// Sets the lease.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// The checks actually evaluated: `requires` with `connection` placed before
    /// the first check that needs it (or last), so the scope always has a connection.
    pub fn effective_checks(&self) -> Vec<Check> {
        if self.requires.contains(&Check::Connection) {
            return self.requires.clone();
        }
        let at = self
            .requires
            .iter()
            .position(|c| c.needs_connection())
            .unwrap_or(self.requires.len());
        let mut checks = self.requires.clone();
        checks.insert(at, Check::Connection);
        checks
    }
}

/// A named, ordered list of operations started together on one scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sequence {
    /// The sequence name, e.g. `onboarding.bootstrap`.
    pub name: String,
    /// Domain wording, e.g. "Onboarding bootstrap".
    pub label: String,
    /// The operations, in order.
    pub operations: Vec<String>,
}

impl Sequence {
    /// A sequence of registered operations.
    pub fn new<I, S>(name: impl Into<String>, label: impl Into<String>, operations: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Sequence {
            name: name.into(),
            label: label.into(),
            operations: operations.into_iter().map(Into::into).collect(),
        }
    }
}

/// The wording of one outcome or run status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text {
    /// Public wording, e.g. "already running".
    pub status_label: String,
    /// Title template.
    pub title: String,
    /// Body template.
    pub body: String,
}

/// Which presentation a [`Text`] is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TextKey {
    /// Start accepted.
    Accepted,
    /// Start accepted after ending a stale run (the result's `holder`).
    AcceptedAfterTakeover,
    /// Start deduped.
    Deduped,
    /// Start deduped, and the running run's params differ from the request's.
    DedupedParamsDiffer,
    /// Scope busy.
    ScopeBusy,
    /// Start blocked.
    Blocked,
    /// Denied, 404.
    DeniedNotFound,
    /// Denied, 403.
    DeniedForbidden,
    /// A run in this status (`present_run`).
    Run(RunStatus),
}

impl TextKey {
    /// Every key.
    pub fn all() -> Vec<TextKey> {
        let mut keys = vec![
            TextKey::Accepted,
            TextKey::AcceptedAfterTakeover,
            TextKey::Deduped,
            TextKey::DedupedParamsDiffer,
            TextKey::ScopeBusy,
            TextKey::Blocked,
            TextKey::DeniedNotFound,
            TextKey::DeniedForbidden,
        ];
        keys.extend(RunStatus::ALL.iter().map(|s| TextKey::Run(*s)));
        keys
    }

    /// The key used under `[texts]` in TOML, e.g. `scope_busy`, `run_failed`.
    pub fn name(self) -> String {
        match self {
            TextKey::Accepted => "accepted".into(),
            TextKey::AcceptedAfterTakeover => "accepted_after_takeover".into(),
            TextKey::Deduped => "deduped".into(),
            TextKey::DedupedParamsDiffer => "deduped_params_differ".into(),
            TextKey::ScopeBusy => "scope_busy".into(),
            TextKey::Blocked => "blocked".into(),
            TextKey::DeniedNotFound => "denied_not_found".into(),
            TextKey::DeniedForbidden => "denied_forbidden".into(),
            TextKey::Run(status) => format!("run_{status}"),
        }
    }
}

/// Which URL template.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum UrlKey {
    /// A run's page (`run_url`), e.g. `/admin/operations/{run_id}`.
    Run,
    /// A tenant's page (`{tenant_url}` in next steps).
    Tenant,
    /// A connection's page (`{connection_url}` in next steps).
    Connection,
}

impl UrlKey {
    /// Every key.
    pub const ALL: [UrlKey; 3] = [UrlKey::Run, UrlKey::Tenant, UrlKey::Connection];

    /// The key used under `[urls]` in TOML.
    pub fn name(self) -> &'static str {
        match self {
            UrlKey::Run => "run",
            UrlKey::Tenant => "tenant",
            UrlKey::Connection => "connection",
        }
    }
}

/// The default dispatch timeout when neither the operation nor `[defaults]` sets one.
pub const DEFAULT_DISPATCH_TIMEOUT: Duration = Duration::from_secs(600);
/// The default lease when neither the operation nor `[defaults]` sets one.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(300);

/// A validated registry. Cheap to share (wrap it in an `Arc`); immutable once built.
#[derive(Debug, Clone, PartialEq)]
pub struct Registry {
    operations: BTreeMap<String, OperationType>,
    sequences: BTreeMap<String, Sequence>,
    reasons: BTreeMap<String, ReasonText>,
    texts: BTreeMap<TextKey, Text>,
    urls: BTreeMap<UrlKey, String>,
    view_run_label: String,
    compiled: BTreeMap<String, Template>,
}

/// Builds a [`Registry`] in code; [`RegistryBuilder::build`] validates it.
#[derive(Debug, Clone, Default)]
pub struct RegistryBuilder {
    operations: Vec<OperationType>,
    sequences: Vec<Sequence>,
    reasons: Vec<(String, ReasonText)>,
    texts: Vec<(TextKey, Text)>,
    urls: Vec<(UrlKey, String)>,
    view_run_label: Option<String>,
    problems: Vec<RegistryProblem>,
}

impl RegistryBuilder {
    /// Registers an operation type.
    pub fn operation(mut self, operation: OperationType) -> Self {
        self.operations.push(operation);
        self
    }

    /// Declares a sequence.
    pub fn sequence(mut self, sequence: Sequence) -> Self {
        self.sequences.push(sequence);
        self
    }

    /// Adds or overrides a reason text (built-in codes have English defaults).
    pub fn reason(mut self, code: impl Into<String>, text: ReasonText) -> Self {
        self.reasons.push((code.into(), text));
        self
    }

    /// Overrides the wording of one outcome or run status.
    pub fn text(mut self, key: TextKey, text: Text) -> Self {
        self.texts.push((key, text));
        self
    }

    /// Overrides a URL template.
    pub fn url(mut self, key: UrlKey, template: impl Into<String>) -> Self {
        self.urls.push((key, template.into()));
        self
    }

    /// Overrides the "View run" action label.
    pub fn view_run_label(mut self, label: impl Into<String>) -> Self {
        self.view_run_label = Some(label.into());
        self
    }

    /// Validates everything and returns the registry, or every problem found.
    pub fn build(self) -> Result<Registry> {
        let mut problems = self.problems;
        let mut operations = BTreeMap::new();
        for op in self.operations {
            let path = format!("operations.{}", key_path(&op.name));
            check_operation(&path, &op, &mut problems);
            if operations.contains_key(&op.name) {
                problems.push(problem(&path, "declared twice"));
            }
            operations.insert(op.name.clone(), op);
        }
        let mut sequences = BTreeMap::new();
        for seq in self.sequences {
            let path = format!("sequences.{}", key_path(&seq.name));
            if !is_name(&seq.name) {
                problems.push(problem(
                    &path,
                    "a sequence name may contain only a-z, 0-9, '.', '_' and '-'",
                ));
            }
            if seq.label.trim().is_empty() {
                problems.push(problem(&format!("{path}.label"), "must not be empty"));
            }
            if seq.operations.is_empty() {
                problems.push(problem(
                    &format!("{path}.operations"),
                    "needs at least one operation",
                ));
            }
            for (i, op) in seq.operations.iter().enumerate() {
                if !operations.contains_key(op) {
                    problems.push(problem(
                        &format!("{path}.operations[{i}]"),
                        &format!("unknown operation \"{op}\""),
                    ));
                }
            }
            if sequences.contains_key(&seq.name) {
                problems.push(problem(&path, "declared twice"));
            }
            sequences.insert(seq.name.clone(), seq);
        }

        let mut reasons = reason::default_texts();
        for (code, text) in self.reasons {
            if !is_name(&code) {
                problems.push(problem(
                    &format!("reasons.{}", key_path(&code)),
                    "a reason code may contain only a-z, 0-9, '.', '_' and '-'",
                ));
            }
            reasons.insert(code, text);
        }
        let mut texts = default_texts();
        texts.extend(self.texts);
        let mut urls = default_urls();
        urls.extend(self.urls);
        let view_run_label = self.view_run_label.unwrap_or_else(|| "View run".into());

        // Compile every template once: this validates placeholders with a path
        // and makes presenting a lookup-and-substitute, no parsing per call.
        let mut compiled = BTreeMap::new();
        let mut compile = |path: String, source: &str, problems: &mut Vec<RegistryProblem>| {
            match Template::parse(source) {
                Ok(template) => {
                    compiled.insert(path, template);
                }
                Err(message) => problems.push(problem(&path, &message)),
            }
        };
        for (code, text) in &reasons {
            let base = format!("reasons.{}", key_path(code));
            compile(format!("{base}.message"), &text.message, &mut problems);
            for (i, (label, url)) in text.next_steps.iter().enumerate() {
                compile(
                    format!("{base}.next_steps[{i}].label"),
                    label,
                    &mut problems,
                );
                compile(format!("{base}.next_steps[{i}].url"), url, &mut problems);
            }
        }
        for (key, text) in &texts {
            let base = format!("texts.{}", key.name());
            compile(
                format!("{base}.status_label"),
                &text.status_label,
                &mut problems,
            );
            compile(format!("{base}.title"), &text.title, &mut problems);
            compile(format!("{base}.body"), &text.body, &mut problems);
        }
        for (key, url) in &urls {
            compile(format!("urls.{}", key.name()), url, &mut problems);
        }
        for (key, url) in &urls {
            // A URL template may not refer to its own URL (it would never resolve).
            let own = format!("{}_url", key.name());
            if url.contains(&format!("{{{own}}}")) {
                problems.push(problem(
                    &format!("urls.{}", key.name()),
                    &format!("may not use {{{own}}}"),
                ));
            }
        }

        if !problems.is_empty() {
            return Err(Error::RegistryInvalid(RegistryProblems(problems)));
        }
        Ok(Registry {
            operations,
            sequences,
            reasons,
            texts,
            urls,
            view_run_label,
            compiled,
        })
    }
}

fn check_operation(path: &str, op: &OperationType, problems: &mut Vec<RegistryProblem>) {
    if !is_name(&op.name) {
        problems.push(problem(
            path,
            "an operation name may contain only a-z, 0-9, '.', '_' and '-'",
        ));
    }
    if op.label.trim().is_empty() {
        problems.push(problem(&format!("{path}.label"), "must not be empty"));
    }
    if op.capability.trim().is_empty() {
        problems.push(problem(&format!("{path}.capability"), "must not be empty"));
    }
    let mut seen = BTreeSet::new();
    for (i, check) in op.requires.iter().enumerate() {
        if !seen.insert(*check) {
            problems.push(problem(
                &format!("{path}.requires[{i}]"),
                &format!("check \"{}\" listed twice", check.as_str()),
            ));
        }
    }
    if op.dispatch_timeout.is_zero() {
        problems.push(problem(
            &format!("{path}.dispatch_timeout"),
            "must be longer than zero",
        ));
    }
    if op.lease.is_zero() {
        problems.push(problem(
            &format!("{path}.lease"),
            "must be longer than zero",
        ));
    }
}

/// A TOML syntax error with where it is: the line and column, and, as the
/// problem's path, the key being defined on that line under the nearest
/// table header (the parser itself names neither).
fn syntax_problem(text: &str, err: &toml::de::Error) -> RegistryProblem {
    let offset = err.span().map_or(0, |span| span.start).min(text.len());
    let before = text.get(..offset).unwrap_or_default();
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    let mut table = String::new();
    for header in text.lines().take(line.saturating_sub(1)) {
        let header = header.trim();
        if header.starts_with('[') && header.ends_with(']') {
            table = header
                .trim_matches(|c| c == '[' || c == ']')
                .trim()
                .to_string();
        }
    }
    let current = text.lines().nth(line - 1).unwrap_or_default().trim();
    let key = current
        .split_once('=')
        .map(|(key, _)| key.trim())
        .filter(|key| !key.is_empty() && !key.starts_with('['));
    let path = match key {
        Some(key) if table.is_empty() => key.to_string(),
        Some(key) => format!("{table}.{key}"),
        None => table,
    };
    problem(
        &path,
        &format!(
            "not valid TOML at line {line}, column {column}: {}",
            err.message().trim_end()
        ),
    )
}

fn problem(path: &str, message: &str) -> RegistryProblem {
    RegistryProblem {
        path: path.to_string(),
        message: message.to_string(),
    }
}

/// A TOML key as it appears in a path: bare when it can be, quoted otherwise.
fn key_path(key: &str) -> String {
    if !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        key.to_string()
    } else {
        format!("{key:?}")
    }
}

fn text(status_label: &str, title: &str, body: &str) -> Text {
    Text {
        status_label: status_label.into(),
        title: title.into(),
        body: body.into(),
    }
}

fn default_texts() -> BTreeMap<TextKey, Text> {
    use RunStatus as S;
    BTreeMap::from([
        (
            TextKey::Accepted,
            text("queued", "{label} queued", "{label} is queued and will start shortly."),
        ),
        (
            TextKey::AcceptedAfterTakeover,
            text(
                "queued",
                "{label} queued",
                "{label} is queued and will start shortly. It replaced {holder_label} (run #{holder_run_id}), which was ended as failed: {holder_reason}",
            ),
        ),
        (
            TextKey::Deduped,
            text(
                "already running",
                "{label} already running",
                "{label} is already {holder_status} on this connection (since {holder_since}). No second run was started.",
            ),
        ),
        (
            TextKey::DedupedParamsDiffer,
            text(
                "already running",
                "{label} already running with other parameters",
                "{label} is already {holder_status} on this connection (since {holder_since}) with different parameters. Your parameters were not applied; start again when it has finished to run with them.",
            ),
        ),
        (
            TextKey::ScopeBusy,
            text(
                "scope busy",
                "{label} cannot start yet",
                "{holder_label} is {holder_status} on this connection (since {holder_since}, started by {holder_actor}). Try again when it has finished.",
            ),
        ),
        (TextKey::Blocked, text("blocked", "{label} blocked", "{reason}")),
        (
            TextKey::DeniedNotFound,
            text("not found", "Not found", "The tenant does not exist or you have no access to it."),
        ),
        (
            TextKey::DeniedForbidden,
            text("not allowed", "{label} not allowed", "You do not have permission to start {label}."),
        ),
        (
            TextKey::Run(S::Pending),
            text("pending", "{label} pending", "{label} waits for the run ahead of it on this connection."),
        ),
        (TextKey::Run(S::Queued), text("queued", "{label} queued", "{label} is queued (since {since}).")),
        (TextKey::Run(S::Running), text("running", "{label} running", "{label} is running (since {since}).")),
        (
            TextKey::Run(S::Succeeded),
            text("succeeded", "{label} succeeded", "{label} finished successfully."),
        ),
        (
            TextKey::Run(S::PartiallySucceeded),
            text("partially succeeded", "{label} partially succeeded", "{label} finished, but part of the work did not complete."),
        ),
        (TextKey::Run(S::Failed), text("failed", "{label} failed", "{label} did not finish.")),
        (TextKey::Run(S::Cancelled), text("cancelled", "{label} cancelled", "{label} was cancelled.")),
        (TextKey::Run(S::Blocked), text("blocked", "{label} blocked", "{label} was not started.")),
    ])
}

fn default_urls() -> BTreeMap<UrlKey, String> {
    BTreeMap::from([
        (UrlKey::Run, "/admin/operations/{run_id}".to_string()),
        (UrlKey::Tenant, "/admin/tenants/{tenant_id}".to_string()),
        (
            UrlKey::Connection,
            "{tenant_url}/provider-connections/{provider_connection_id}".to_string(),
        ),
    ])
}

impl Registry {
    /// Starts building a registry in code.
    pub fn builder() -> RegistryBuilder {
        RegistryBuilder::default()
    }

    /// Parses and validates a TOML registry document.
    pub fn from_toml_str(text: &str) -> Result<Registry> {
        let table: Table = match text.parse() {
            Ok(table) => table,
            Err(err) => {
                let err: toml::de::Error = err;
                return Err(Error::RegistryInvalid(RegistryProblems(vec![
                    syntax_problem(text, &err),
                ])));
            }
        };
        TomlReader::default().read(&table)
    }

    /// Reads, parses and validates a TOML registry file. A file that does
    /// not exist, cannot be read or is not UTF-8 is `registry_invalid` with
    /// a message that says which and names the path.
    pub fn from_toml_file(path: impl AsRef<Path>) -> Result<Registry> {
        let path = path.as_ref();
        let unreadable = |why: String| {
            Error::RegistryInvalid(RegistryProblems(vec![problem(
                "",
                &format!(
                    "cannot read the registry file {:?}: {why}",
                    path.display().to_string()
                ),
            )]))
        };
        let bytes = std::fs::read(path).map_err(|err| {
            unreadable(match err.kind() {
                std::io::ErrorKind::NotFound => {
                    let hint = if path.to_string_lossy().contains(['\n', '=', '[']) {
                        " (to pass TOML text, give it as registry_toml)"
                    } else {
                        ""
                    };
                    format!("it does not exist{hint}")
                }
                std::io::ErrorKind::IsADirectory => "it is a directory".into(),
                _ => err.to_string(),
            })
        })?;
        let text = String::from_utf8(bytes).map_err(|err| {
            unreadable(format!(
                "it is not UTF-8 text (invalid byte at offset {})",
                err.utf8_error().valid_up_to()
            ))
        })?;
        Registry::from_toml_str(&text)
    }

    /// The operation type called `name`.
    pub fn operation(&self, name: &str) -> Option<&OperationType> {
        self.operations.get(name)
    }

    /// Every operation type, by name.
    pub fn operations(&self) -> impl Iterator<Item = &OperationType> {
        self.operations.values()
    }

    /// The sequence called `name`.
    pub fn sequence(&self, name: &str) -> Option<&Sequence> {
        self.sequences.get(name)
    }

    /// Every sequence, by name.
    pub fn sequences(&self) -> impl Iterator<Item = &Sequence> {
        self.sequences.values()
    }

    /// The text for a reason code, if it is in the catalogue.
    pub fn reason(&self, code: &str) -> Option<&ReasonText> {
        self.reasons.get(code)
    }

    /// The wording of an outcome or run status.
    pub fn text(&self, key: TextKey) -> Option<&Text> {
        self.texts.get(&key)
    }

    /// A URL template.
    pub fn url(&self, key: UrlKey) -> Option<&str> {
        self.urls.get(&key).map(String::as_str)
    }

    /// The "View run" action label.
    pub fn view_run_label(&self) -> &str {
        &self.view_run_label
    }

    /// The display label of an operation, or its name when it is not registered.
    pub fn label_of<'a>(&'a self, operation: &'a str) -> &'a str {
        self.operations
            .get(operation)
            .map_or(operation, |op| op.label.as_str())
    }

    pub(crate) fn template(&self, path: &str) -> Option<&Template> {
        self.compiled.get(path)
    }

    /// A summary of the registry as TOML-like text (used by `check-registry`).
    pub fn describe(&self) -> String {
        let mut out = String::new();
        for op in self.operations.values() {
            let checks: Vec<&str> = op.effective_checks().iter().map(|c| c.as_str()).collect();
            out.push_str(&format!(
                "{:<28} {:<28} capability={} dispatch_timeout={} lease={} checks=[{}]\n",
                op.name,
                op.label,
                op.capability,
                format_duration(op.dispatch_timeout),
                format_duration(op.lease),
                checks.join(", ")
            ));
        }
        for seq in self.sequences.values() {
            out.push_str(&format!(
                "{:<28} {:<28} sequence: {}\n",
                seq.name,
                seq.label,
                seq.operations.join(" → ")
            ));
        }
        out
    }
}

/// Walks the TOML document, collecting every structural problem with its path
/// before the builder checks the meaning.
#[derive(Default)]
struct TomlReader {
    problems: Vec<RegistryProblem>,
}

impl TomlReader {
    fn read(mut self, root: &Table) -> Result<Registry> {
        let mut builder = Registry::builder();
        self.only_keys(
            "",
            root,
            &[
                "operations",
                "sequences",
                "reasons",
                "texts",
                "urls",
                "defaults",
            ],
        );

        let mut dispatch_default = DEFAULT_DISPATCH_TIMEOUT;
        let mut lease_default = DEFAULT_LEASE;
        if let Some(defaults) = self.table("defaults", root.get("defaults")) {
            self.only_keys("defaults", defaults, &["dispatch_timeout", "lease"]);
            if let Some(d) = self.duration(
                "defaults.dispatch_timeout",
                defaults.get("dispatch_timeout"),
            ) {
                dispatch_default = d;
            }
            if let Some(d) = self.duration("defaults.lease", defaults.get("lease")) {
                lease_default = d;
            }
        }

        if let Some(ops) = self.table("operations", root.get("operations")) {
            for (name, value) in ops {
                let path = format!("operations.{}", key_path(name));
                let Some(op) = self.table(&path, Some(value)) else {
                    continue;
                };
                self.only_keys(
                    &path,
                    op,
                    &[
                        "label",
                        "capability",
                        "requires",
                        "dispatch_timeout",
                        "lease",
                    ],
                );
                let label = self.required_string(&path, op, "label");
                let capability = self.required_string(&path, op, "capability");
                let mut requires = Vec::new();
                if let Some(list) = self.array(&format!("{path}.requires"), op.get("requires")) {
                    for (i, item) in list.iter().enumerate() {
                        let item_path = format!("{path}.requires[{i}]");
                        match item.as_str() {
                            Some(check_name) => match Check::parse(check_name) {
                                Some(check) => requires.push(check),
                                None => self.problem(
                                    &item_path,
                                    format!(
                                        "unknown check \"{check_name}\" (known: {})",
                                        Check::ALL.map(Check::as_str).join(", ")
                                    ),
                                ),
                            },
                            None => self.problem(
                                &item_path,
                                format!("expected a check name, found {}", kind(item)),
                            ),
                        }
                    }
                }
                let dispatch_timeout = self
                    .duration(
                        &format!("{path}.dispatch_timeout"),
                        op.get("dispatch_timeout"),
                    )
                    .unwrap_or(dispatch_default);
                let lease = self
                    .duration(&format!("{path}.lease"), op.get("lease"))
                    .unwrap_or(lease_default);
                builder = builder.operation(OperationType {
                    name: name.clone(),
                    label: label.unwrap_or_else(|| name.clone()),
                    capability: capability.unwrap_or_else(|| "-".into()),
                    requires,
                    dispatch_timeout,
                    lease,
                });
            }
        }

        if let Some(seqs) = self.table("sequences", root.get("sequences")) {
            for (name, value) in seqs {
                let path = format!("sequences.{}", key_path(name));
                let Some(seq) = self.table(&path, Some(value)) else {
                    continue;
                };
                self.only_keys(&path, seq, &["label", "operations"]);
                let label = self.required_string(&path, seq, "label");
                let mut operations = Vec::new();
                match self.array(&format!("{path}.operations"), seq.get("operations")) {
                    Some(list) => {
                        for (i, item) in list.iter().enumerate() {
                            match item.as_str() {
                                Some(op) => operations.push(op.to_string()),
                                None => self.problem(
                                    &format!("{path}.operations[{i}]"),
                                    format!("expected an operation name, found {}", kind(item)),
                                ),
                            }
                        }
                    }
                    None => self.problem(
                        &format!("{path}.operations"),
                        "missing (the operations to run, in order)".into(),
                    ),
                }
                builder = builder.sequence(Sequence {
                    name: name.clone(),
                    label: label.unwrap_or_else(|| name.clone()),
                    operations,
                });
            }
        }

        if let Some(reasons) = self.table("reasons", root.get("reasons")) {
            for (code, value) in reasons {
                let path = format!("reasons.{}", key_path(code));
                let Some(entry) = self.table(&path, Some(value)) else {
                    continue;
                };
                self.only_keys(&path, entry, &["message", "next_steps"]);
                let default = reason::default_texts().remove(code.as_str());
                let message = match (
                    self.string(&format!("{path}.message"), entry.get("message")),
                    &default,
                ) {
                    (Some(m), _) => m,
                    (None, Some(d)) => d.message.clone(),
                    (None, None) => {
                        self.problem(
                            &format!("{path}.message"),
                            "missing (a custom reason needs a message)".into(),
                        );
                        String::new()
                    }
                };
                let mut next_steps = default.map(|d| d.next_steps).unwrap_or_default();
                if let Some(list) =
                    self.array(&format!("{path}.next_steps"), entry.get("next_steps"))
                {
                    next_steps.clear();
                    for (i, item) in list.iter().enumerate() {
                        let item_path = format!("{path}.next_steps[{i}]");
                        let Some(step) = self.table(&item_path, Some(item)) else {
                            continue;
                        };
                        self.only_keys(&item_path, step, &["label", "url"]);
                        let label = self.required_string(&item_path, step, "label");
                        let url = self.required_string(&item_path, step, "url");
                        if let (Some(label), Some(url)) = (label, url) {
                            next_steps.push((label, url));
                        }
                    }
                }
                builder = builder.reason(
                    code.clone(),
                    ReasonText {
                        message,
                        next_steps,
                    },
                );
            }
        }

        if let Some(texts) = self.table("texts", root.get("texts")) {
            let keys = TextKey::all();
            for (name, value) in texts {
                let path = format!("texts.{}", key_path(name));
                if name == "view_run_label" {
                    if let Some(label) = self.string(&path, Some(value)) {
                        builder = builder.view_run_label(label);
                    }
                    continue;
                }
                let Some(key) = keys.iter().copied().find(|k| k.name() == *name) else {
                    let known: Vec<String> = keys.iter().map(|k| k.name()).collect();
                    self.problem(
                        &path,
                        format!(
                            "unknown text \"{name}\" (known: view_run_label, {})",
                            known.join(", ")
                        ),
                    );
                    continue;
                };
                let Some(entry) = self.table(&path, Some(value)) else {
                    continue;
                };
                self.only_keys(&path, entry, &["status_label", "title", "body"]);
                let mut text = default_texts()
                    .remove(&key)
                    .unwrap_or_else(|| self::text("", "", ""));
                if let Some(s) =
                    self.string(&format!("{path}.status_label"), entry.get("status_label"))
                {
                    text.status_label = s;
                }
                if let Some(s) = self.string(&format!("{path}.title"), entry.get("title")) {
                    text.title = s;
                }
                if let Some(s) = self.string(&format!("{path}.body"), entry.get("body")) {
                    text.body = s;
                }
                builder = builder.text(key, text);
            }
        }

        if let Some(urls) = self.table("urls", root.get("urls")) {
            for (name, value) in urls {
                let path = format!("urls.{}", key_path(name));
                match UrlKey::ALL.into_iter().find(|k| k.name() == name) {
                    Some(key) => {
                        if let Some(url) = self.string(&path, Some(value)) {
                            builder = builder.url(key, url);
                        }
                    }
                    None => self.problem(
                        &path,
                        format!("unknown URL template \"{name}\" (known: run, tenant, connection)"),
                    ),
                }
            }
        }

        builder.problems = self.problems;
        builder.build()
    }

    fn problem(&mut self, path: &str, message: String) {
        self.problems.push(RegistryProblem {
            path: path.to_string(),
            message,
        });
    }

    fn only_keys(&mut self, path: &str, table: &Table, allowed: &[&str]) {
        for key in table.keys() {
            if !allowed.contains(&key.as_str()) {
                let at = if path.is_empty() {
                    key_path(key)
                } else {
                    format!("{path}.{}", key_path(key))
                };
                self.problem(
                    &at,
                    format!("unknown key (expected one of: {})", allowed.join(", ")),
                );
            }
        }
    }

    fn table<'t>(&mut self, path: &str, value: Option<&'t Value>) -> Option<&'t Table> {
        match value? {
            Value::Table(t) => Some(t),
            other => {
                self.problem(path, format!("expected a table, found {}", kind(other)));
                None
            }
        }
    }

    fn array<'t>(&mut self, path: &str, value: Option<&'t Value>) -> Option<&'t Vec<Value>> {
        match value? {
            Value::Array(a) => Some(a),
            other => {
                self.problem(path, format!("expected an array, found {}", kind(other)));
                None
            }
        }
    }

    fn string(&mut self, path: &str, value: Option<&Value>) -> Option<String> {
        match value? {
            Value::String(s) => Some(s.clone()),
            other => {
                self.problem(path, format!("expected a string, found {}", kind(other)));
                None
            }
        }
    }

    fn required_string(&mut self, path: &str, table: &Table, key: &str) -> Option<String> {
        let at = format!("{path}.{key}");
        if table.get(key).is_none() {
            self.problem(&at, "missing".into());
            return None;
        }
        self.string(&at, table.get(key))
    }

    fn duration(&mut self, path: &str, value: Option<&Value>) -> Option<Duration> {
        match value? {
            Value::Integer(secs) if *secs > 0 => Some(Duration::from_secs(secs.unsigned_abs())),
            Value::Integer(_) => {
                self.problem(path, "must be longer than zero".into());
                None
            }
            Value::String(text) => match parse_duration(text) {
                Ok(d) if d.is_zero() => {
                    self.problem(path, "must be longer than zero".into());
                    None
                }
                Ok(d) => Some(d),
                Err(message) => {
                    self.problem(path, message);
                    None
                }
            },
            other => {
                self.problem(
                    path,
                    format!(
                        "expected a duration such as \"10m\" or seconds, found {}",
                        kind(other)
                    ),
                );
                None
            }
        }
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::String(_) => "a string",
        Value::Integer(_) => "an integer",
        Value::Float(_) => "a float",
        Value::Boolean(_) => "a boolean",
        Value::Datetime(_) => "a datetime",
        Value::Array(_) => "an array",
        Value::Table(_) => "a table",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str) -> Vec<String> {
        match Registry::from_toml_str(text) {
            Err(Error::RegistryInvalid(p)) => p.0.iter().map(ToString::to_string).collect(),
            Err(other) => panic!("unexpected error {other}"),
            Ok(_) => panic!("registry accepted"),
        }
    }

    #[test]
    fn every_problem_is_reported_with_its_path() {
        let found = problems(
            r#"
            [operations."inventory.sync"]
            label = "Inventory sync"
            capability = "inventory.sync"
            requires = ["tenant_active", "consnt", 3]
            lease = "soon"
            colour = "blue"

            [operations.BadName]
            label = ""
            capability = "x"

            [sequences.onboarding]
            label = "Onboarding"
            operations = ["inventory.sync", "tenant.verify"]

            [texts.accepted]
            title = "{label} queued for {nobody}"
            "#,
        );
        let expected = [
            r#"operations."inventory.sync".requires[1]: unknown check "consnt""#,
            r#"operations."inventory.sync".requires[2]: expected a check name, found an integer"#,
            r#"operations."inventory.sync".lease: "soon" is not a duration"#,
            r#"operations."inventory.sync".colour: unknown key"#,
            "operations.BadName: an operation name may contain only",
            "operations.BadName.label: must not be empty",
            r#"sequences.onboarding.operations[1]: unknown operation "tenant.verify""#,
            "texts.accepted.title: unknown placeholder {nobody}",
        ];
        for want in expected {
            assert!(
                found.iter().any(|p| p.starts_with(want)),
                "missing {want:?} in {found:#?}"
            );
        }
        assert_eq!(found.len(), expected.len(), "{found:#?}");
    }

    #[test]
    fn toml_syntax_errors_are_registry_invalid() {
        let found = problems("[operations\n");
        assert!(
            found[0].starts_with("not valid TOML at line 1"),
            "{found:?}"
        );
        let found = problems(
            "[operations.\"inventory.sync\"]\nlabel = \"Inventory sync\"\ncapability = \"x\"\nrequires = [\"consent\",\n",
        );
        assert!(
            found[0]
                .starts_with("operations.\"inventory.sync\".requires: not valid TOML at line 4"),
            "{found:?}"
        );
    }

    #[test]
    fn unreadable_registry_files_say_why() {
        let missing = std::env::temp_dir().join("startgate-no-such-registry.toml");
        let err = Registry::from_toml_file(&missing).expect_err("missing file");
        assert_eq!(err.code().as_str(), "registry_invalid");
        assert!(err.to_string().contains("it does not exist"), "{err}");
        assert!(
            err.to_string().contains("startgate-no-such-registry.toml"),
            "{err}"
        );
        let dir = std::env::temp_dir().join(format!("startgate-registry-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let latin1 = dir.join("latin1.toml");
        std::fs::write(&latin1, b"[operations.a]\nlabel = \"caf\xe9\"\n").expect("write");
        let err = Registry::from_toml_file(&latin1).expect_err("not UTF-8");
        assert!(
            err.to_string()
                .contains("not UTF-8 text (invalid byte at offset 27)"),
            "{err}"
        );
        let err = Registry::from_toml_file(&dir).expect_err("a directory");
        assert!(err.to_string().contains("it is a directory"), "{err}");
        std::fs::remove_dir_all(&dir).expect("clean up");
    }

    #[test]
    fn defaults_and_overrides_apply() {
        let registry = Registry::from_toml_str(
            r#"
            [defaults]
            dispatch_timeout = "2m"
            [operations.a]
            label = "A"
            capability = "a"
            requires = ["consent", "tenant_active"]
            [operations.b]
            label = "B"
            capability = "b"
            lease = 30
            [reasons.provider_consent_missing]
            message = "Ask the admin."
            "#,
        )
        .unwrap();
        let a = registry.operation("a").unwrap();
        assert_eq!(a.dispatch_timeout, Duration::from_secs(120));
        assert_eq!(a.lease, DEFAULT_LEASE);
        assert_eq!(
            a.effective_checks(),
            vec![Check::Connection, Check::Consent, Check::TenantActive]
        );
        assert_eq!(
            registry.operation("b").unwrap().lease,
            Duration::from_secs(30)
        );
        let consent = registry.reason("provider_consent_missing").unwrap();
        assert_eq!(consent.message, "Ask the admin.");
        assert_eq!(
            consent.next_steps[0].0, "Grant admin consent",
            "default next step kept"
        );
    }

    #[test]
    fn builder_validates_like_toml() {
        let err = Registry::builder()
            .operation(OperationType::new("a", "A", "").dispatch_timeout(Duration::ZERO))
            .sequence(Sequence::new("s", "S", ["missing"]))
            .build()
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("operations.a.capability: must not be empty"),
            "{text}"
        );
        assert!(
            text.contains("operations.a.dispatch_timeout: must be longer than zero"),
            "{text}"
        );
        assert!(
            text.contains(r#"sequences.s.operations[0]: unknown operation "missing""#),
            "{text}"
        );
    }
}
