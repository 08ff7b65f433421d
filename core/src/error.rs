//! Errors with stable codes.
//!
//! Every failure the gate reports maps to exactly one stable code string of the
//! design contract (`invalid_request`, `unknown_operation`, …). Hosts branch on
//! [`Error::code`]; the `Display` text is for people and may change.

use std::borrow::Cow;
use std::fmt;

/// The result type of every fallible startgate call.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// One problem found while loading a registry, with the path where it was found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RegistryProblem {
    /// Where the problem is, e.g. `operations."inventory.sync".requires[1]`.
    pub path: String,
    /// What is wrong there.
    pub message: String,
}

impl fmt::Display for RegistryProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Every problem of a rejected registry, in document order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryProblems(pub Vec<RegistryProblem>);

impl fmt::Display for RegistryProblems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

/// The stable error codes of the contract, one per [`Error`] variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The request is malformed (a field is missing, too long or of the wrong type).
    InvalidRequest,
    /// The operation type is not in the registry.
    UnknownOperation,
    /// The registry document is invalid.
    RegistryInvalid,
    /// No run has the given id.
    RunNotFound,
    /// The run is not in a state that allows the requested transition.
    InvalidTransition,
    /// The database cannot be reached or refused the connection.
    StoreUnavailable,
    /// The database did not answer within the configured bound.
    StoreTimeout,
    /// Applying the schema migrations failed.
    MigrationFailed,
    /// A bug or an unexpected state inside startgate.
    Internal,
}

impl ErrorCode {
    /// Every code, in the order of the contract.
    pub const ALL: [ErrorCode; 9] = [
        ErrorCode::InvalidRequest,
        ErrorCode::UnknownOperation,
        ErrorCode::RegistryInvalid,
        ErrorCode::RunNotFound,
        ErrorCode::InvalidTransition,
        ErrorCode::StoreUnavailable,
        ErrorCode::StoreTimeout,
        ErrorCode::MigrationFailed,
        ErrorCode::Internal,
    ];

    /// The stable code string, identical on every surface.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::UnknownOperation => "unknown_operation",
            ErrorCode::RegistryInvalid => "registry_invalid",
            ErrorCode::RunNotFound => "run_not_found",
            ErrorCode::InvalidTransition => "invalid_transition",
            ErrorCode::StoreUnavailable => "store_unavailable",
            ErrorCode::StoreTimeout => "store_timeout",
            ErrorCode::MigrationFailed => "migration_failed",
            ErrorCode::Internal => "internal",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A startgate failure. Each variant maps one-to-one to an [`ErrorCode`].
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is malformed; `field` names the offending field (JSON path).
    #[error("invalid request: {field}: {message}")]
    InvalidRequest {
        /// The offending field, e.g. `actor.id` or `params`.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// The operation type is not registered.
    #[error("unknown operation \"{operation}\": it is not in the registry")]
    UnknownOperation {
        /// The operation name the caller asked for.
        operation: String,
    },
    /// The registry document was rejected; every problem is listed.
    #[error("registry invalid: {0}")]
    RegistryInvalid(RegistryProblems),
    /// No run has this id.
    #[error("run {run_id} not found")]
    RunNotFound {
        /// The id that was looked up.
        run_id: i64,
    },
    /// The run cannot make the requested transition (it ended, was reaped or
    /// cancelled, or the fencing token is not the current one).
    #[error("invalid transition for run {run_id}: {message}")]
    InvalidTransition {
        /// The run concerned.
        run_id: i64,
        /// Why the transition was refused.
        message: String,
    },
    /// The database is unreachable, closed or refused the work.
    #[error("store unavailable: {message}{}", unknown_note(*outcome_unknown))]
    StoreUnavailable {
        /// What failed, in words.
        message: String,
        /// The failure came after a write was sent and before its answer: the
        /// write may or may not have been committed (see [`Error::outcome_unknown`]).
        outcome_unknown: bool,
        /// The driver error, when there is one.
        #[source]
        source: Option<sqlx::Error>,
    },
    /// The database did not answer within the configured bound.
    #[error("store timeout: {message}{}", unknown_note(*outcome_unknown))]
    StoreTimeout {
        /// Which bound was hit.
        message: String,
        /// As for `StoreUnavailable`: the write may or may not have been committed.
        outcome_unknown: bool,
        /// The driver error, when there is one.
        #[source]
        source: Option<sqlx::Error>,
    },
    /// Applying migrations failed.
    #[error("migration failed: {message}")]
    MigrationFailed {
        /// What failed.
        message: String,
        /// The migrator's error.
        #[source]
        source: Option<sqlx::migrate::MigrateError>,
    },
    /// An unexpected state; please report it.
    #[error("internal error: {message}")]
    Internal {
        /// What went wrong.
        message: String,
    },
}

/// Appended to store errors whose write may have been committed, so every
/// surface (which carries the message) says so.
fn unknown_note(outcome_unknown: bool) -> &'static str {
    if outcome_unknown {
        " (outcome unknown: the write may have been committed; look before retrying, \
         a repeated start is safe because it dedupes)"
    } else {
        ""
    }
}

impl Error {
    /// Whether a write may have been committed although the call failed: the
    /// connection broke or the client-side bound ran out after the write was
    /// sent. `false` for every other error, which guarantees nothing was
    /// written. A repeated `start` is always safe (it dedupes against the run
    /// the lost answer would have named).
    pub fn outcome_unknown(&self) -> bool {
        match self {
            Error::StoreUnavailable {
                outcome_unknown, ..
            }
            | Error::StoreTimeout {
                outcome_unknown, ..
            } => *outcome_unknown,
            _ => false,
        }
    }

    /// The same error, marked as having happened after a write was sent.
    pub(crate) fn after_write_sent(self) -> Self {
        match self {
            Error::StoreUnavailable {
                message, source, ..
            } => Error::StoreUnavailable {
                message,
                source,
                outcome_unknown: true,
            },
            Error::StoreTimeout {
                message, source, ..
            } => Error::StoreTimeout {
                message,
                source,
                outcome_unknown: true,
            },
            other => other,
        }
    }

    /// The stable code of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::InvalidRequest { .. } => ErrorCode::InvalidRequest,
            Error::UnknownOperation { .. } => ErrorCode::UnknownOperation,
            Error::RegistryInvalid(_) => ErrorCode::RegistryInvalid,
            Error::RunNotFound { .. } => ErrorCode::RunNotFound,
            Error::InvalidTransition { .. } => ErrorCode::InvalidTransition,
            Error::StoreUnavailable { .. } => ErrorCode::StoreUnavailable,
            Error::StoreTimeout { .. } => ErrorCode::StoreTimeout,
            Error::MigrationFailed { .. } => ErrorCode::MigrationFailed,
            Error::Internal { .. } => ErrorCode::Internal,
        }
    }

    pub(crate) fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::InvalidRequest {
            field: field.into(),
            message: message.into(),
        }
    }

    /// `store_unavailable` for a failure that wrote nothing.
    pub(crate) fn unavailable(message: impl Into<String>, source: Option<sqlx::Error>) -> Self {
        Error::StoreUnavailable {
            message: message.into(),
            outcome_unknown: false,
            source,
        }
    }

    /// `store_timeout` for a failure that wrote nothing.
    pub(crate) fn timeout(message: impl Into<String>, source: Option<sqlx::Error>) -> Self {
        Error::StoreTimeout {
            message: message.into(),
            outcome_unknown: false,
            source,
        }
    }

    pub(crate) fn internal(message: impl Into<String>) -> Self {
        Error::Internal {
            message: message.into(),
        }
    }

    /// The same store failure for each caller that shared it (the members of
    /// a SQLite commit group): the same code, message and outcome, without
    /// the driver's error, which cannot be copied. Only store failures are
    /// shared this way; anything else is copied as `internal` with its text.
    pub(crate) fn shared_copy(&self) -> Self {
        match self {
            Error::StoreUnavailable {
                message,
                outcome_unknown,
                ..
            } => Error::StoreUnavailable {
                message: message.clone(),
                outcome_unknown: *outcome_unknown,
                source: None,
            },
            Error::StoreTimeout {
                message,
                outcome_unknown,
                ..
            } => Error::StoreTimeout {
                message: message.clone(),
                outcome_unknown: *outcome_unknown,
                source: None,
            },
            Error::Internal { message } => Error::internal(message.clone()),
            other => Error::internal(other.to_string()),
        }
    }

    pub(crate) fn transition(run_id: i64, message: impl Into<String>) -> Self {
        Error::InvalidTransition {
            run_id,
            message: message.into(),
        }
    }
}

/// Maps a driver error to the contract's codes. Timeouts and lock waits become
/// `store_timeout`; anything about reaching the server becomes `store_unavailable`.
/// A SQLite error, carried as a database error of the driver-neutral kind
/// the store's error handling reads (`code` is SQLite's extended code).
#[derive(Debug)]
pub(crate) struct SqliteFailure {
    pub(crate) code: i32,
    pub(crate) message: String,
}

impl std::fmt::Display for SqliteFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (SQLite code {})", self.message, self.code)
    }
}

impl std::error::Error for SqliteFailure {}

impl SqliteFailure {
    /// SQLite's primary result code (the low byte of the extended one).
    pub(crate) fn primary(&self) -> i32 {
        self.code & 0xff
    }
}

impl sqlx::error::DatabaseError for SqliteFailure {
    fn message(&self) -> &str {
        &self.message
    }

    fn code(&self) -> Option<Cow<'_, str>> {
        Some(Cow::Owned(self.code.to_string()))
    }

    fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        self
    }

    fn kind(&self) -> sqlx::error::ErrorKind {
        use rusqlite::ffi;
        match self.code {
            ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY => {
                sqlx::error::ErrorKind::UniqueViolation
            }
            ffi::SQLITE_CONSTRAINT_FOREIGNKEY => sqlx::error::ErrorKind::ForeignKeyViolation,
            ffi::SQLITE_CONSTRAINT_NOTNULL => sqlx::error::ErrorKind::NotNullViolation,
            ffi::SQLITE_CONSTRAINT_CHECK => sqlx::error::ErrorKind::CheckViolation,
            _ => sqlx::error::ErrorKind::Other,
        }
    }
}

impl From<sqlx::Error> for Error {
    fn from(err: sqlx::Error) -> Self {
        use sqlx::Error as E;
        let timeout = |message: &str, err| Error::timeout(message, Some(err));
        let unavailable = |message: String, err| Error::unavailable(message, Some(err));
        match err {
            E::PoolTimedOut => timeout("no database connection became free in time", err),
            E::PoolClosed => unavailable("the gate is closed".into(), err),
            E::Io(_) | E::Tls(_) | E::Protocol(_) | E::WorkerCrashed => unavailable(
                format!("cannot talk to the database ({})", with_tls(&err)),
                err,
            ),
            E::Database(ref db) => {
                let message = db.message().to_string();
                if let Some(lite) = db.try_downcast_ref::<SqliteFailure>() {
                    return match lite.primary() {
                        5 | 6 => timeout("the database stayed locked past busy_timeout", err),
                        3 | 8 | 10 | 11 | 13 | 14 | 26 => {
                            unavailable(format!("cannot use the database file ({message})"), err)
                        }
                        _ if message.contains("no such table") => unavailable(
                            format!("the schema is missing ({message}); run migrate first"),
                            err,
                        ),
                        _ => Error::Internal {
                            message: format!("unexpected database error: {err}"),
                        },
                    };
                }
                let code = db.code().map(|c| c.to_string()).unwrap_or_default();
                match code.as_str() {
                    // PostgreSQL: statement timeout / lock timeout.
                    "57014" | "55P03" => timeout("the statement hit its timeout", err),
                    c if c.starts_with("08") || c.starts_with("57P") || c == "53300" => {
                        unavailable(format!("the database refused the work ({message})"), err)
                    }
                    "42P01" => unavailable(
                        format!("the schema is missing ({message}); run migrate first"),
                        err,
                    ),
                    _ => Error::Internal {
                        message: format!("unexpected database error: {err}"),
                    },
                }
            }
            E::Configuration(_) => unavailable(format!("bad database configuration ({err})"), err),
            other => Error::Internal {
                message: format!("unexpected database error: {other}"),
            },
        }
    }
}

/// A driver error's text, saying "TLS" when TLS is what failed: sqlx
/// reports a refused certificate as an I/O error ("invalid peer
/// certificate: UnknownIssuer"), which should not read like a network fault.
pub(crate) fn with_tls(err: &sqlx::Error) -> String {
    let text = err.to_string();
    let lower = text.to_lowercase();
    let tls = matches!(err, sqlx::Error::Tls(_))
        || ["certificate", "tls", "handshake", "ssl"]
            .iter()
            .any(|word| lower.contains(word));
    if tls && !text.contains("TLS") {
        format!("TLS: {text}")
    } else {
        text
    }
}

impl From<sqlx::migrate::MigrateError> for Error {
    fn from(err: sqlx::migrate::MigrateError) -> Self {
        Error::MigrationFailed {
            message: err.to_string(),
            source: Some(err),
        }
    }
}
