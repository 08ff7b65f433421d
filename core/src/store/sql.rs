//! Statement text per store. Both backends share one set of SQL templates;
//! the store renders each template once for its backend and caches the text.
//!
//! Placeholders:
//! - `{runs}`, `{attempts}`, `{connections}`: the gate's relations, named as
//!   the backend needs them (on PostgreSQL always with their schema, so no
//!   statement depends on `search_path`);
//! - `{now:N}`: "now" for a statement that may run on its own. `$N` carries a
//!   fixed instant (SQLite's process clock, a manual clock, or the instant a
//!   PostgreSQL transaction read at `BEGIN`); on PostgreSQL a NULL `$N` means
//!   the server's clock, read inside the statement;
//! - `{greatest}`: the two-argument maximum (`GREATEST` / SQLite's `MAX`).
//!
//! Anything else in braces (JSON such as `'{}'`) is left as it is.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// The server's "now" on PostgreSQL in microseconds since the epoch: the
/// start of the current transaction (of the statement, outside one).
pub(crate) const PG_NOW_US: &str = "(EXTRACT(EPOCH FROM now()) * 1000000)::bigint";

/// Which SQL dialect a store speaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    /// With the schema that holds the gate's relations, quoted for SQL.
    Postgres {
        schema: String,
    },
}

/// A schema name the gate accepts: a plain lowercase SQL identifier, so it
/// reads the same quoted or not (`startgate`, `app_gate`).
pub(crate) fn check_schema(schema: &str) -> crate::error::Result<()> {
    let plain = schema.len() <= 63
        && schema.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && schema
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if plain && !schema.starts_with("pg_") {
        Ok(())
    } else {
        Err(crate::input::invalid(
            "schema",
            format!(
                "{schema:?} is not a schema name the gate uses: lowercase letters, digits and \
                 '_', starting with a letter or '_', at most 63 bytes, not pg_*"
            ),
        ))
    }
}

/// Renders and caches the statement texts of one store.
pub(crate) struct SqlText {
    dialect: Dialect,
    /// Keyed by the template's address: templates are `'static` constants.
    cache: Mutex<HashMap<usize, Arc<str>>>,
}

impl std::fmt::Debug for SqlText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlText")
            .field("dialect", &self.dialect)
            .finish()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Inserts only: a poisoned cache still holds consistent entries.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl SqlText {
    pub(crate) fn new(dialect: Dialect) -> Self {
        SqlText {
            dialect,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The text of a `'static` template, rendered once per store.
    pub(crate) fn get(&self, template: &'static str) -> Arc<str> {
        let key = template.as_ptr() as usize;
        if let Some(text) = lock(&self.cache).get(&key) {
            return Arc::clone(text);
        }
        let text: Arc<str> = Arc::from(self.render(template));
        lock(&self.cache).insert(key, Arc::clone(&text));
        text
    }

    /// Renders any template (also ones built at run time).
    pub(crate) fn render(&self, template: &str) -> String {
        let mut out = String::with_capacity(template.len() + 32);
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            let replaced = after.find('}').and_then(|close| {
                let key = &after[..close];
                self.placeholder(key).map(|text| (text, close))
            });
            match replaced {
                Some((text, close)) => {
                    out.push_str(&text);
                    rest = &after[close + 1..];
                }
                None => {
                    out.push('{');
                    rest = after;
                }
            }
        }
        out.push_str(rest);
        match self.dialect {
            // SQLite numbers parameters `?N`; `$N` would be a *named* one,
            // numbered in order of appearance.
            Dialect::Sqlite => numbered_for_sqlite(&out),
            Dialect::Postgres { .. } => out,
        }
    }

    /// The quoted schema on PostgreSQL.
    pub(crate) fn schema(&self) -> Option<String> {
        match &self.dialect {
            Dialect::Sqlite => None,
            Dialect::Postgres { schema } => Some(format!("\"{schema}\"")),
        }
    }

    /// A relation of the gate's, named for this backend.
    pub(crate) fn relation(&self, name: &str) -> String {
        match &self.dialect {
            Dialect::Sqlite => name.to_string(),
            Dialect::Postgres { schema } => format!("\"{schema}\".{name}"),
        }
    }

    fn placeholder(&self, key: &str) -> Option<String> {
        match key {
            "runs" => Some(self.relation("operation_runs")),
            "attempts" => Some(self.relation("start_attempts")),
            "connections" => Some(self.relation("provider_connections")),
            "greatest" => Some(
                match self.dialect {
                    Dialect::Sqlite => "MAX",
                    Dialect::Postgres { .. } => "GREATEST",
                }
                .into(),
            ),
            _ => {
                let n = key.strip_prefix("now:")?;
                if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                Some(match self.dialect {
                    Dialect::Sqlite => format!("${n}"),
                    Dialect::Postgres { .. } => format!("COALESCE(${n}::bigint, {PG_NOW_US})"),
                })
            }
        }
    }
}

/// `$N` as `?N`, outside quoted text.
fn numbered_for_sqlite(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut quoted = false;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => quoted = !quoted,
            '$' if !quoted && chars.peek().is_some_and(char::is_ascii_digit) => {
                out.push('?');
                continue;
            }
            _ => {}
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_render_per_dialect_and_json_is_left_alone() {
        const T: &str =
            "UPDATE {runs} SET at = {now:3}, x = {greatest}($1, $2), p = '{}' WHERE {unknown}";
        let lite = SqlText::new(Dialect::Sqlite);
        assert_eq!(
            &*lite.get(T),
            "UPDATE operation_runs SET at = ?3, x = MAX(?1, ?2), p = '{}' WHERE {unknown}"
        );
        let pg = SqlText::new(Dialect::Postgres {
            schema: "gate_a".into(),
        });
        assert_eq!(
            &*pg.get(T),
            format!(
                "UPDATE \"gate_a\".operation_runs SET at = COALESCE($3::bigint, {PG_NOW_US}), \
                 x = GREATEST($1, $2), p = '{{}}' WHERE {{unknown}}"
            )
        );
        // Cached: the same text object comes back.
        assert!(Arc::ptr_eq(&pg.get(T), &pg.get(T)));
    }

    #[test]
    fn schema_names_are_plain_identifiers() {
        for good in ["startgate", "app_gate", "_x", "g2"] {
            assert!(check_schema(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "Gate",
            "a-b",
            "a\"b",
            "1x",
            "pg_catalog",
            &"x".repeat(64),
            "a.b",
        ] {
            assert!(check_schema(bad).is_err(), "{bad}");
        }
    }
}
