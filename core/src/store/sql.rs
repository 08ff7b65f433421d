//! Statement text per store. Both backends share one set of SQL templates;
//! the store renders each template once for its backend and caches the text.
//!
//! Placeholders:
//! - `{runs}`, `{attempts}`, `{connections}`: the gate's relations, named as
//!   the backend needs them;
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
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
        out
    }

    fn placeholder(&self, key: &str) -> Option<String> {
        match key {
            "runs" => Some("operation_runs".into()),
            "attempts" => Some("start_attempts".into()),
            "connections" => Some("provider_connections".into()),
            "greatest" => Some(
                match self.dialect {
                    Dialect::Sqlite => "MAX",
                    Dialect::Postgres => "GREATEST",
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
                    Dialect::Postgres => format!("COALESCE(${n}::bigint, {PG_NOW_US})"),
                })
            }
        }
    }
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
            "UPDATE operation_runs SET at = $3, x = MAX($1, $2), p = '{}' WHERE {unknown}"
        );
        let pg = SqlText::new(Dialect::Postgres);
        assert_eq!(
            &*pg.get(T),
            format!(
                "UPDATE operation_runs SET at = COALESCE($3::bigint, {PG_NOW_US}), \
                 x = GREATEST($1, $2), p = '{{}}' WHERE {{unknown}}"
            )
        );
        // Cached: the same text object comes back.
        assert!(Arc::ptr_eq(&pg.get(T), &pg.get(T)));
    }
}
