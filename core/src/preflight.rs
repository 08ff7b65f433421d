//! Readiness preflight: ordered checks over stored facts, no remote call.

use crate::model::{Consent, Credential, Health, ProviderConnection};
use crate::reason::*;
use crate::registry::{Check, OperationType};
use crate::time::Timestamp;

/// Evaluates the operation's checks in order and returns every failing reason
/// code, primary first. Checks that need a connection are skipped when none was
/// resolved: `provider_connection_missing` already says why.
pub(crate) fn preflight(
    op: &OperationType,
    tenant_active: bool,
    connection: Option<&ProviderConnection>,
    now: Timestamp,
) -> Vec<String> {
    let mut reasons = Vec::new();
    for check in op.effective_checks() {
        if let Some(code) = failing_reason(check, tenant_active, connection, now) {
            reasons.push(code.to_string());
        }
    }
    reasons
}

fn failing_reason(
    check: Check,
    tenant_active: bool,
    connection: Option<&ProviderConnection>,
    now: Timestamp,
) -> Option<&'static str> {
    if check == Check::TenantActive {
        return (!tenant_active).then_some(TENANT_INACTIVE);
    }
    let Some(conn) = connection else {
        return (check == Check::Connection).then_some(PROVIDER_CONNECTION_MISSING);
    };
    match check {
        Check::TenantActive | Check::Connection => None,
        Check::ConnectionEnabled => (!conn.enabled).then_some(PROVIDER_CONNECTION_DISABLED),
        Check::Consent => match conn.consent {
            Consent::Granted => None,
            Consent::Missing => Some(PROVIDER_CONSENT_MISSING),
            Consent::Revoked => Some(PROVIDER_CONSENT_REVOKED),
        },
        Check::Credential => match conn.credential {
            Credential::Present => match conn.credential_expires_at {
                Some(expires) if expires <= now => Some(PROVIDER_CREDENTIAL_EXPIRED),
                _ => None,
            },
            Credential::Missing => Some(PROVIDER_CREDENTIAL_MISSING),
            Credential::Expired => Some(PROVIDER_CREDENTIAL_EXPIRED),
            Credential::Invalid => Some(PROVIDER_CREDENTIAL_INVALID),
        },
        Check::Health => {
            (conn.health == Health::Unhealthy).then_some(PROVIDER_CONNECTION_UNHEALTHY)
        }
    }
}

/// The same checks as [`preflight`], as one SQL condition over the connection
/// row `c` (PostgreSQL's single-statement admission): `$9` is the request's
/// `tenant_active`, `t.now` the statement's instant. Kept beside [`preflight`] so the two change
/// together; the fast path cross-checks them on every call that is not ready.
pub(crate) fn sql_ready_condition(op: &OperationType) -> String {
    let mut terms: Vec<&str> = op
        .effective_checks()
        .into_iter()
        .filter_map(|check| match check {
            Check::TenantActive => Some("$9"),
            Check::Connection => None,
            Check::ConnectionEnabled => Some("c.enabled"),
            Check::Consent => Some("c.consent = 'granted'"),
            Check::Credential => Some(
                "(c.credential = 'present' AND (c.credential_expires_at IS NULL OR c.credential_expires_at > t.now))",
            ),
            Check::Health => Some("c.health <> 'unhealthy'"),
        })
        .collect();
    if terms.is_empty() {
        terms.push("TRUE");
    }
    terms.join(" AND ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(checks: &[Check]) -> OperationType {
        OperationType::new("x", "X", "x").requires(checks.iter().copied())
    }

    #[test]
    fn lists_every_failure_in_registry_order() {
        let mut conn = ProviderConnection::ready("t", "c", "graph");
        conn.consent = Consent::Revoked;
        conn.health = Health::Unhealthy;
        conn.enabled = false;
        let all = op(&[
            Check::Health,
            Check::Consent,
            Check::ConnectionEnabled,
            Check::TenantActive,
        ]);
        let reasons = preflight(&all, false, Some(&conn), Timestamp::from_micros(0));
        assert_eq!(
            reasons,
            [
                PROVIDER_CONNECTION_UNHEALTHY,
                PROVIDER_CONSENT_REVOKED,
                PROVIDER_CONNECTION_DISABLED,
                TENANT_INACTIVE
            ]
        );
    }

    #[test]
    fn missing_connection_hides_connection_checks() {
        let all = op(&[Check::TenantActive, Check::Consent, Check::Health]);
        let reasons = preflight(&all, false, None, Timestamp::from_micros(0));
        assert_eq!(reasons, [TENANT_INACTIVE, PROVIDER_CONNECTION_MISSING]);
    }

    #[test]
    fn credential_expiry_is_judged_against_now() {
        let mut conn = ProviderConnection::ready("t", "c", "graph");
        conn.credential_expires_at = Some(Timestamp::from_micros(100));
        let cred = op(&[Check::Credential]);
        assert!(preflight(&cred, true, Some(&conn), Timestamp::from_micros(99)).is_empty());
        assert_eq!(
            preflight(&cred, true, Some(&conn), Timestamp::from_micros(100)),
            [PROVIDER_CREDENTIAL_EXPIRED]
        );
        conn.credential = Credential::Invalid;
        assert_eq!(
            preflight(&cred, true, Some(&conn), Timestamp::from_micros(0)),
            [PROVIDER_CREDENTIAL_INVALID]
        );
    }
}
