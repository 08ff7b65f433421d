//! The reason catalogue: built-in reason codes and their English defaults.
//!
//! Blocked starts and ended runs are described from this one catalogue, so a
//! blocked start and a failed scheduled run with the same cause read the same.
//! Hosts override texts and add their own codes under `[reasons]`.

use std::collections::BTreeMap;

/// Text and next steps for one reason code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReasonText {
    /// Operator-ready message (a template).
    pub message: String,
    /// Next steps, each a label and a URL template.
    pub next_steps: Vec<(String, String)>,
}

impl ReasonText {
    /// A reason text without next steps.
    pub fn new(message: impl Into<String>) -> Self {
        ReasonText {
            message: message.into(),
            next_steps: Vec::new(),
        }
    }

    /// Adds a next step.
    pub fn next_step(mut self, label: impl Into<String>, url: impl Into<String>) -> Self {
        self.next_steps.push((label.into(), url.into()));
        self
    }
}

/// The request said the tenant is not active.
pub const TENANT_INACTIVE: &str = "tenant_inactive";
/// No connection was resolved: none given and no default, or the given one is not the tenant's.
pub const PROVIDER_CONNECTION_MISSING: &str = "provider_connection_missing";
/// The connection is disabled.
pub const PROVIDER_CONNECTION_DISABLED: &str = "provider_connection_disabled";
/// Admin consent was never granted.
pub const PROVIDER_CONSENT_MISSING: &str = "provider_consent_missing";
/// Admin consent was revoked.
pub const PROVIDER_CONSENT_REVOKED: &str = "provider_consent_revoked";
/// No credential is stored.
pub const PROVIDER_CREDENTIAL_MISSING: &str = "provider_credential_missing";
/// The credential expired (state `expired`, or `credential_expires_at` has passed).
pub const PROVIDER_CREDENTIAL_EXPIRED: &str = "provider_credential_expired";
/// The provider rejected the credential (state `invalid`). An addition to the
/// contract's list, so an invalid credential is not reported as missing.
pub const PROVIDER_CREDENTIAL_INVALID: &str = "provider_credential_invalid";
/// The last health check failed.
pub const PROVIDER_CONNECTION_UNHEALTHY: &str = "provider_connection_unhealthy";
/// A stale run was ended: not started within its dispatch timeout, or its lease expired.
pub const RUN_LEASE_EXPIRED: &str = "run_lease_expired";
/// Not a stored code: the wording of `run_lease_expired` for a run that no
/// worker ever marked running (it was still queued at its dispatch timeout).
/// Hosts may override its text under `[reasons.run_not_picked_up]`.
pub const RUN_NOT_PICKED_UP: &str = "run_not_picked_up";
/// A pending step's operation is no longer in the registry.
pub const OPERATION_UNREGISTERED: &str = "operation_unregistered";

/// The preflight reason codes, in the order of docs/DESIGN.md §2.
pub const PREFLIGHT_CODES: [&str; 9] = [
    TENANT_INACTIVE,
    PROVIDER_CONNECTION_MISSING,
    PROVIDER_CONNECTION_DISABLED,
    PROVIDER_CONSENT_MISSING,
    PROVIDER_CONSENT_REVOKED,
    PROVIDER_CREDENTIAL_MISSING,
    PROVIDER_CREDENTIAL_EXPIRED,
    PROVIDER_CREDENTIAL_INVALID,
    PROVIDER_CONNECTION_UNHEALTHY,
];

pub(crate) fn default_texts() -> BTreeMap<String, ReasonText> {
    let entries = [
        (
            TENANT_INACTIVE,
            ReasonText::new("The tenant is not active, so no provider work can start for it.")
                .next_step("Review the tenant", "{tenant_url}"),
        ),
        (
            PROVIDER_CONNECTION_MISSING,
            ReasonText::new("The tenant has no provider connection to run this on.")
                .next_step("Add a provider connection", "{tenant_url}/provider-connections/new"),
        ),
        (
            PROVIDER_CONNECTION_DISABLED,
            ReasonText::new("The provider connection is disabled.")
                .next_step("Enable the connection", "{connection_url}"),
        ),
        (
            PROVIDER_CONSENT_MISSING,
            ReasonText::new("Admin consent has not been granted for the provider connection.")
                .next_step("Grant admin consent", "{connection_url}/consent"),
        ),
        (
            PROVIDER_CONSENT_REVOKED,
            ReasonText::new("Admin consent for the provider connection was revoked.")
                .next_step("Grant admin consent again", "{connection_url}/consent"),
        ),
        (
            PROVIDER_CREDENTIAL_MISSING,
            ReasonText::new("The provider connection has no credential.")
                .next_step("Add a credential", "{connection_url}/credentials"),
        ),
        (
            PROVIDER_CREDENTIAL_EXPIRED,
            ReasonText::new("The provider connection's credential has expired.")
                .next_step("Renew the credential", "{connection_url}/credentials"),
        ),
        (
            PROVIDER_CREDENTIAL_INVALID,
            ReasonText::new("The provider rejected the connection's credential.")
                .next_step("Replace the credential", "{connection_url}/credentials"),
        ),
        (
            PROVIDER_CONNECTION_UNHEALTHY,
            ReasonText::new("The provider connection failed its last health check.")
                .next_step("Check the connection", "{connection_url}/health"),
        ),
        (
            RUN_LEASE_EXPIRED,
            ReasonText::new(
                "The run stopped reporting progress before its lease expired, so it was ended and its scope freed.",
            ),
        ),
        (
            RUN_NOT_PICKED_UP,
            ReasonText::new(
                "No worker picked the run up before its dispatch timeout, so it was ended and its scope freed.",
            ),
        ),
        (
            OPERATION_UNREGISTERED,
            ReasonText::new("This operation type is no longer registered, so it cannot start."),
        ),
    ];
    entries
        .into_iter()
        .map(|(code, text)| (code.to_string(), text))
        .collect()
}
