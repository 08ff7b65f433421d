//! # startgate
//!
//! The one start path for provider-backed operations. A host calls
//! [`Gate::start`] when an operator clicks "start"; in one database-only call the
//! gate validates and authorizes the request, resolves and pins the provider
//! connection, runs readiness preflight, and admits the work atomically against
//! its protected scope `(tenant, provider connection)`. The answer is one of
//! accepted / deduped / scope busy / blocked (or denied), and
//! [`Gate::present`] turns it into operator-ready feedback.
//!
//! ```no_run
//! # async fn demo() -> startgate::Result<()> {
//! use startgate::{Actor, Gate, ProviderConnection, Registry, StartRequest};
//!
//! let registry = Registry::from_toml_file("examples/registry.toml")?;
//! let gate = Gate::open("startgate.db", registry).await?;
//! gate.migrate().await?;
//! gate.upsert_connection(&ProviderConnection::ready("contoso", "graph-main", "microsoft_graph")).await?;
//!
//! let actor = Actor::member("alice", ["inventory.sync"]);
//! let result = gate.start(&StartRequest::new("inventory.sync", "contoso", actor)).await?;
//! let feedback = gate.present(&result);
//! println!("{}: {}", feedback.title, feedback.body);
//! # Ok(()) }
//! ```
//!
//! At most one run is active per protected scope across every process sharing
//! the database: the database enforces it with a partial unique index.

#![warn(missing_docs)]

mod error;
mod gate;
pub mod input;
pub mod json;
pub mod log;
mod metrics;
mod model;
mod options;
mod preflight;
mod presenter;
pub mod reason;
mod registry;
mod store;
mod template;
mod time;

pub use error::{Error, ErrorCode, RegistryProblem, RegistryProblems, Result};
pub use gate::Gate;
pub use metrics::{DatabaseStats, Latency, MetricsSnapshot, StartCounts, LATENCY_WINDOW};
pub use model::{
    Action, Actor, Completion, CompletionOutcome, CompletionResult, Consent, Credential, Health,
    Initiator, Outcome, Presentation, ProviderConnection, ReapResult, Reason, Run, RunFilter,
    RunStatus, SequenceRequest, StartAttempt, StartRequest, StartResult, Tone, MAX_CAPABILITIES,
    MAX_CHECK_REQUESTS, MAX_DOCUMENT_BYTES, MAX_ID_BYTES, MAX_SEQUENCE_STEPS,
};
pub use options::{GateOptions, DEFAULT_SCHEMA};
pub use reason::ReasonText;
pub use registry::{
    Check, OperationType, Registry, RegistryBuilder, Sequence, Text, TextKey, UrlKey,
    DEFAULT_DISPATCH_TIMEOUT, DEFAULT_LEASE,
};
pub use store::{redact as redact_url, sqlite_file};
pub use time::{Clock, Timestamp};

/// The library version (`Cargo.toml`'s).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
