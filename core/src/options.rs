//! How a gate connects and how long it waits: what the store needs to open,
//! kept apart from the gate so the layers read top-down (the store does not
//! depend on the gate that uses it).

use std::time::Duration;

use crate::time::Clock;

/// How a gate connects and how long it waits.
#[derive(Debug, Clone)]
pub struct GateOptions {
    /// Bound on establishing a database connection.
    pub connect_timeout: Duration,
    /// Bound on waiting for a free pooled connection.
    pub acquire_timeout: Duration,
    /// Bound on one statement (SQLite: how long to wait for the write lock).
    pub statement_timeout: Duration,
    /// Pool size.
    pub max_connections: u32,
    /// Where "now" comes from.
    pub clock: Clock,
    /// PostgreSQL: the schema that holds all of the gate's relations and its
    /// migration bookkeeping (docs/DESIGN.md §6). Every statement names it;
    /// `migrate` creates it. Two gates with different schemas in one
    /// database are independent. SQLite: the file is the gate's own; the
    /// option does not apply there.
    pub schema: String,
}

/// The schema a gate uses on PostgreSQL unless told otherwise.
pub const DEFAULT_SCHEMA: &str = "startgate";

impl Default for GateOptions {
    fn default() -> Self {
        GateOptions {
            connect_timeout: Duration::from_secs(5),
            acquire_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(5),
            max_connections: 8,
            clock: Clock::System,
            schema: DEFAULT_SCHEMA.to_string(),
        }
    }
}
