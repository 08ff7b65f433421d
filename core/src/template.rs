//! Text and URL templates with `{placeholder}`s, parsed once when the registry
//! is built. `{{` and `}}` stand for literal braces.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// A value a template can refer to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Var {
    Label,
    Operation,
    TenantId,
    ProviderConnectionId,
    Subject,
    RunId,
    Status,
    Since,
    Reason,
    HolderLabel,
    HolderStatus,
    HolderSince,
    HolderActor,
    HolderInitiator,
    HolderRunId,
    HolderReason,
    TenantUrl,
    ConnectionUrl,
    RunUrl,
}

const VARS: [(&str, Var); 19] = [
    ("label", Var::Label),
    ("operation", Var::Operation),
    ("tenant_id", Var::TenantId),
    ("provider_connection_id", Var::ProviderConnectionId),
    ("subject", Var::Subject),
    ("run_id", Var::RunId),
    ("status", Var::Status),
    ("since", Var::Since),
    ("reason", Var::Reason),
    ("holder_label", Var::HolderLabel),
    ("holder_status", Var::HolderStatus),
    ("holder_since", Var::HolderSince),
    ("holder_actor", Var::HolderActor),
    ("holder_initiator", Var::HolderInitiator),
    ("holder_run_id", Var::HolderRunId),
    ("holder_reason", Var::HolderReason),
    ("tenant_url", Var::TenantUrl),
    ("connection_url", Var::ConnectionUrl),
    ("run_url", Var::RunUrl),
];

impl Var {
    /// Values that are themselves URLs are inserted into URLs unencoded.
    fn is_url(self) -> bool {
        matches!(self, Var::TenantUrl | Var::ConnectionUrl | Var::RunUrl)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Var(Var),
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Template {
    parts: Vec<Part>,
}

impl Template {
    pub(crate) fn parse(source: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut chars = source.char_indices().peekable();
        while let Some((at, c)) = chars.next() {
            match c {
                '{' if chars.peek().map(|p| p.1) == Some('{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.peek().map(|p| p.1) == Some('}') => {
                    chars.next();
                    literal.push('}');
                }
                '{' => {
                    let rest = &source[at + 1..];
                    let Some(end) = rest.find('}') else {
                        return Err(format!("unclosed '{{' at byte {at}"));
                    };
                    let name = &rest[..end];
                    let Some((_, var)) = VARS.iter().find(|(n, _)| *n == name) else {
                        let known: Vec<&str> = VARS.iter().map(|(n, _)| *n).collect();
                        return Err(format!(
                            "unknown placeholder {{{name}}} (known: {})",
                            known.join(", ")
                        ));
                    };
                    if !literal.is_empty() {
                        parts.push(Part::Literal(std::mem::take(&mut literal)));
                    }
                    parts.push(Part::Var(*var));
                    for _ in 0..=name.chars().count() {
                        chars.next();
                    }
                }
                '}' => {
                    return Err(format!(
                        "unmatched '}}' at byte {at} (write '}}}}' for a brace)"
                    ))
                }
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            parts.push(Part::Literal(literal));
        }
        Ok(Template { parts })
    }

    /// Renders as text; a missing value renders as nothing.
    pub(crate) fn render(&self, value: &dyn Fn(Var) -> Option<String>) -> String {
        self.render_with(value, false)
    }

    /// Renders as a URL: values are percent-encoded, except values that are URLs.
    pub(crate) fn render_url(&self, value: &dyn Fn(Var) -> Option<String>) -> String {
        self.render_with(value, true)
    }

    fn render_with(&self, value: &dyn Fn(Var) -> Option<String>, url: bool) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Var(var) => {
                    let text = value(*var).unwrap_or_default();
                    if url && !var.is_url() {
                        percent_encode(&text, &mut out);
                    } else {
                        out.push_str(&text);
                    }
                }
            }
        }
        out
    }
}

/// Everything but RFC 3986 unreserved characters is encoded, so an id with
/// `/`, `?` or spaces cannot change a URL's shape.
const NOT_UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn percent_encode(text: &str, out: &mut String) {
    out.extend(utf8_percent_encode(text, NOT_UNRESERVED));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_placeholders_and_escapes() {
        let t = Template::parse("{label} {{queued}} for {tenant_id}").unwrap();
        let out = t.render(&|v| match v {
            Var::Label => Some("Sync".into()),
            Var::TenantId => Some("t/1".into()),
            _ => None,
        });
        assert_eq!(out, "Sync {queued} for t/1");
    }

    #[test]
    fn urls_encode_ids_but_not_urls() {
        let t = Template::parse("{tenant_url}/x/{provider_connection_id}").unwrap();
        let out = t.render_url(&|v| match v {
            Var::TenantUrl => Some("/admin/tenants/a".into()),
            Var::ProviderConnectionId => Some("c 1/../x?y".into()),
            _ => None,
        });
        assert_eq!(out, "/admin/tenants/a/x/c%201%2F..%2Fx%3Fy");
        let accented = t.render_url(&|v| match v {
            Var::ProviderConnectionId => Some("é~".into()),
            _ => None,
        });
        assert_eq!(accented, "/x/%C3%A9~");
    }

    #[test]
    fn rejects_unknown_and_unbalanced() {
        assert!(Template::parse("{nope}")
            .unwrap_err()
            .contains("unknown placeholder {nope}"));
        assert!(Template::parse("{label").is_err());
        assert!(Template::parse("label}").is_err());
    }
}
