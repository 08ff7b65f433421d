//! Storage. Both backends run the same SQL operations (`ops`) over one
//! connection type (`db::Conn`); the scope lock is a partial unique index that
//! the database enforces for every process and host. PostgreSQL adds
//! single-statement fast paths (`fast`) so the accepted path is one round trip.

use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;
use std::time::Duration;

use serde_json::{Map, Value};
use sqlx::postgres::PgConnectOptions;
use sqlx::postgres::PgConnection;
use sqlx::ConnectOptions;

use crate::error::{Error, Result};
use crate::model::{
    Completion, Initiator, Outcome, ProviderConnection, Run, RunFilter, StartAttempt,
};
use crate::options::GateOptions;
use crate::registry::{OperationType, Registry};
use crate::time::{Clock, Timestamp};
use db::WriterTurn;

pub(crate) mod db;
pub(crate) mod lite;
pub(crate) mod ops;
mod rows;
pub(crate) mod sql;

use db::{Conn, Db, Tx};
pub(crate) use ops::Ended;
pub(crate) use rows::{
    attempt_columns, connection_columns, reasons_json, run_columns, AttemptRow, AttemptValues,
    ConnectionRow, CountRow, RunRow,
};
use sql::{Dialect, SqlText};

/// How often a transaction that lost a race is tried again before giving up.
const MAX_ATTEMPTS: u32 = 16;

/// Where a start attempt came from (the audit row's `source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    Start,
    Sequence,
    Advance,
}

impl Source {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Source::Start => "start",
            Source::Sequence => "sequence",
            Source::Advance => "advance",
        }
    }
}

/// One validated, authorized start, ready for resolution and admission.
#[derive(Debug, Clone)]
pub(crate) struct Plan<'a> {
    pub op: &'a OperationType,
    pub tenant_id: &'a str,
    pub requested_connection: Option<&'a str>,
    pub subject: Option<&'a str>,
    pub params: Option<&'a Map<String, Value>>,
    pub initiator: Initiator,
    pub actor_id: &'a str,
    pub tenant_active: bool,
    pub source: Source,
}

impl Plan<'_> {
    /// Params as canonical JSON text, so equal params are equal as stored text.
    pub(crate) fn params_json(&self) -> Option<String> {
        self.params
            .map(|p| ops::canonical_json(&Value::Object(p.clone())))
    }

    pub(crate) fn lease_us(&self) -> i64 {
        i64::try_from(self.op.lease.as_micros()).unwrap_or(i64::MAX)
    }
}

/// What the store decided, before the presenter renders reasons.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Admission {
    pub outcome: Outcome,
    pub run: Option<Run>,
    pub holder: Option<Run>,
    pub reasons: Vec<String>,
    pub connection_id: Option<String>,
    pub replaced_run_id: Option<i64>,
    pub params_differ: Option<bool>,
}

impl Admission {
    pub(crate) fn blocked(
        run: Option<Run>,
        reasons: Vec<String>,
        connection_id: Option<String>,
    ) -> Self {
        Admission {
            outcome: Outcome::Blocked,
            run,
            holder: None,
            reasons,
            connection_id,
            replaced_run_id: None,
            params_differ: None,
        }
    }

    /// An accepted start; `replaced` is the stale run it ended (as ended), which
    /// the result carries as its holder so the operator is told about it.
    pub(crate) fn accepted(run: Run, connection_id: String, replaced: Option<Run>) -> Self {
        Admission {
            outcome: Outcome::Accepted,
            run: Some(run),
            replaced_run_id: replaced.as_ref().map(|r| r.id),
            holder: replaced,
            reasons: Vec::new(),
            connection_id: Some(connection_id),
            params_differ: None,
        }
    }

    /// What `check` answers when a start would be accepted (nothing created).
    pub(crate) fn would_accept(connection_id: String, replaced: Option<i64>) -> Self {
        Admission {
            outcome: Outcome::Accepted,
            run: None,
            holder: None,
            reasons: Vec::new(),
            connection_id: Some(connection_id),
            replaced_run_id: replaced,
            params_differ: None,
        }
    }

    /// Deduped or scope busy, from the holder and the verdict on it.
    pub(crate) fn refused(verdict: Verdict, holder: Run, connection_id: String) -> Self {
        let (outcome, run, params_differ) = match verdict {
            Verdict::Dedupe { params_differ } => {
                (Outcome::Deduped, Some(holder.clone()), Some(params_differ))
            }
            Verdict::Busy | Verdict::TakeOver => (Outcome::ScopeBusy, None, None),
        };
        Admission {
            outcome,
            run,
            holder: Some(holder),
            reasons: Vec::new(),
            connection_id: Some(connection_id),
            replaced_run_id: None,
            params_differ,
        }
    }
}

/// How an incoming start relates to the active run holding its scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The holder is stale: end it and take the scope in the same step.
    TakeOver,
    /// Same operation and subject: return the holder.
    Dedupe { params_differ: bool },
    /// Something else holds the scope.
    Busy,
}

pub(crate) fn judge_holder(plan: &Plan<'_>, holder: &Run, now: Timestamp) -> Verdict {
    if holder.stale_at.is_some_and(|at| at <= now) {
        return Verdict::TakeOver;
    }
    if holder.operation == plan.op.name && holder.subject.as_deref() == plan.subject {
        // Absent params and `{}` mean the same thing.
        let empty = Map::new();
        let mine = plan.params.unwrap_or(&empty);
        let theirs = holder.params.as_ref().unwrap_or(&empty);
        return Verdict::Dedupe {
            params_differ: mine != theirs,
        };
    }
    Verdict::Busy
}

/// A failure inside the store: a driver error (possibly a lost race worth
/// retrying), a contract error, or an explicit request to retry.
#[derive(Debug)]
pub(crate) enum StoreError {
    Db(sqlx::Error),
    Gate(Error),
    Retry(&'static str),
    /// The connection failed after a write (or its COMMIT) was sent and
    /// before the answer came: the write may or may not have been committed.
    AfterWriteSent(sqlx::Error),
}

pub(crate) type SResult<T> = std::result::Result<T, StoreError>;

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        StoreError::Db(err)
    }
}

impl From<Error> for StoreError {
    fn from(err: Error) -> Self {
        StoreError::Gate(err)
    }
}

impl From<StoreError> for Error {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Db(err) => err.into(),
            StoreError::AfterWriteSent(err) => Error::from(err).after_write_sent(),
            StoreError::Gate(err) => err,
            StoreError::Retry(why) => Error::internal(format!(
                "gave up after {MAX_ATTEMPTS} attempts under contention: {why}"
            )),
        }
    }
}

impl StoreError {
    /// Whether the connection is still fit for reuse after this error: the
    /// server answered (a refusal, a constraint, a timeout it enforced), so no
    /// reply is pending. Anything else (I/O, protocol, decoding) closes it.
    fn leaves_connection_healthy(&self) -> bool {
        matches!(
            self,
            StoreError::Gate(_) | StoreError::Retry(_) | StoreError::Db(sqlx::Error::Database(_))
        )
    }

    /// Marks a failure of a sent write: a server-reported error means the
    /// statement failed and its transaction rolled back, anything else
    /// (I/O, protocol) leaves its fate unknown.
    fn after_write_sent(self) -> StoreError {
        match self {
            StoreError::Db(err) if !matches!(err, sqlx::Error::Database(_)) => {
                StoreError::AfterWriteSent(err)
            }
            other => other,
        }
    }

    /// A lost race under READ COMMITTED: a unique violation from a concurrent
    /// admission, a serialization failure or a deadlock. The transaction rolled
    /// back; running it again sees the winner.
    fn is_transient(&self) -> bool {
        match self {
            StoreError::Retry(_) => true,
            StoreError::Db(sqlx::Error::Database(db)) => {
                db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
                    .is_some()
                    && matches!(db.code().as_deref(), Some("23505" | "40001" | "40P01"))
            }
            _ => false,
        }
    }
}

struct PgBackend {
    pool: pool::Pool<PgConnection>,
    /// Behind a transaction pooler: every statement inside an explicit
    /// transaction, no named prepared statements.
    pooled: bool,
    begin_write: Begin,
    begin_read: Begin,
    connect: PgConnectOptions,
    fast: fast::Statements,
}

/// How a PostgreSQL transaction begins: without and with reading the
/// server's clock in the same round trip.
struct Begin {
    plain: String,
    reading_clock: String,
}

impl Begin {
    fn new(plain: String) -> Begin {
        Begin {
            reading_clock: db::begin_reading_clock(&plain),
            plain,
        }
    }
}

impl PgBackend {
    async fn begin_read(&self) -> SResult<Tx> {
        self.begin(&self.begin_read, None).await.map(|(tx, _)| tx)
    }

    async fn begin_write(&self) -> SResult<Tx> {
        self.begin(&self.begin_write, None).await.map(|(tx, _)| tx)
    }

    /// Begins a transaction and settles its "now": a manual clock's instant,
    /// else the server's clock, read in the BEGIN round trip.
    async fn begin(&self, begin: &Begin, clock: Option<&Clock>) -> SResult<(Tx, Timestamp)> {
        let fixed = clock.and_then(Clock::fixed);
        let read_clock = clock.is_some() && fixed.is_none();
        let text = if read_clock {
            &begin.reading_clock
        } else {
            &begin.plain
        };
        let lease = self.pool.acquire().await?;
        let (tx, server) = Tx::begin_pg(lease, text, !self.pooled, read_clock).await?;
        // Without a clock the caller needs no instant; the epoch stands in.
        let now = fixed
            .or(server)
            .unwrap_or_else(|| Timestamp::from_micros(0));
        Ok((tx, now))
    }
}

/// SQLite: a pool, and a queue for this process's writers. SQLite admits one
/// writer at a time and makes the others poll with growing sleeps (its busy
/// handler); queueing them here hands the write lock over without sleeping,
/// and lets waiting write transactions commit as one group (see `group`).
/// Correctness never rests on the queue: `BEGIN IMMEDIATE` and the unique
/// index decide, across processes too.
struct SqliteBackend {
    pool: pool::Pool<lite::LiteConnection>,
    writers: group::Writers,
}

enum Backend {
    Sqlite(SqliteBackend),
    Postgres(Box<PgBackend>),
}

/// What a call needs from its connection (several reads that must see one
/// snapshot use [`Store::begin_snapshot`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// Single-statement reads.
    Read,
    /// One self-contained write statement (atomic on its own).
    Write,
}

/// A connection for one call: a pooled connection, or a transaction where one
/// is needed (snapshots; anything behind a transaction pooler).
pub(crate) enum Lease {
    Sqlite(pool::Pooled<lite::LiteConnection>, Option<WriterTurn>),
    Pg(pool::Pooled<PgConnection>),
    Tx(Tx),
}

impl Lease {
    fn conn<'a>(&'a mut self, sql: &'a SqlText) -> std::result::Result<Conn<'a>, sqlx::Error> {
        let db = match self {
            Lease::Sqlite(c, _) => Db::Sqlite(c.conn()?),
            Lease::Pg(c) => Db::Pg(c.conn()?, true),
            Lease::Tx(tx) => return tx.conn(sql),
        };
        Ok(Conn { db, sql })
    }

    async fn finish(self) -> SResult<()> {
        match self {
            Lease::Tx(tx) => tx.commit().await?,
            Lease::Pg(c) => c.release(),
            // The connection goes back to its pool, then the next writer's turn.
            Lease::Sqlite(conn, turn) => {
                conn.release();
                drop(turn);
            }
        }
        Ok(())
    }

    /// Ends the lease after the call failed; `healthy` says whether the
    /// failure left the connection fit for reuse.
    async fn abandon(self, healthy: bool) {
        match self {
            Lease::Tx(tx) => tx.roll_back(healthy).await,
            Lease::Pg(c) if healthy => c.release(),
            Lease::Sqlite(c, _turn) if healthy => c.release(),
            // Dropped: the pool closes or rolls back the connection.
            Lease::Pg(_) | Lease::Sqlite(..) => {}
        }
    }
}

/// The storage behind a gate.
pub(crate) struct Store {
    backend: Backend,
    /// The statement texts, rendered for this backend.
    sql: SqlText,
    /// The client-side bound on one call: acquire plus statement timeout.
    call_bound: Duration,
    connect_timeout: Duration,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.backend {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(pg) if pg.pooled => "postgres (transaction pooler)",
            Backend::Postgres(_) => "postgres",
        };
        f.debug_struct("Store").field("backend", &kind).finish()
    }
}

/// Runs `$body` (an expression of type `Result<T, E: Into<StoreError>>`) in
/// a write transaction (SQLite: `BEGIN IMMEDIATE`; PostgreSQL: `BEGIN` with a
/// server-side statement timeout), with `$now` the transaction's instant (see
/// [`Store::begin_write`]). A transaction that lost a race is run again.
macro_rules! write_tx {
    ($store:expr, $clock:expr, |$conn:ident, $now:ident| $body:expr) => {{
        let store: &Store = $store;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let outcome: SResult<_> = async {
                let (mut tx, $now, member) = store.begin_write($clock).await?;
                let value: SResult<_> = async {
                    let mut conn = tx.conn(&store.sql)?;
                    let $conn = &mut conn;
                    $body.map_err(StoreError::from)
                }
                .await;
                store.end_write(tx, member, value).await
            }
            .await;
            match outcome {
                Err(err) if err.is_transient() && attempt < MAX_ATTEMPTS => {
                    crate::metrics::retry();
                    continue;
                }
                other => break other,
            }
        }
    }};
}

/// Runs `$body` (a `Result`, as for `write_tx!`) on a connection leased for `$access` (no retry: reads and
/// single statements do not lose races that a retry would fix).
macro_rules! leased {
    ($store:expr, $access:expr, |$conn:ident| $body:expr) => {{
        let store: &Store = $store;
        let outcome: SResult<_> = async {
            let mut lease = store.lease($access).await?;
            let value: SResult<_> = {
                let mut conn = lease.conn(&store.sql)?;
                let $conn = &mut conn;
                $body.map_err(StoreError::from)
            };
            // A single write statement runs in autocommit (or, behind a
            // pooler, in a transaction `finish` commits): once sent, a broken
            // connection leaves its fate unknown, as a lost COMMIT answer does.
            let writes = $access == Access::Write;
            let sent = |err: StoreError| if writes { err.after_write_sent() } else { err };
            match value.map_err(sent) {
                Ok(value) => {
                    lease.finish().await.map_err(sent)?;
                    Ok(value)
                }
                Err(err) => {
                    let healthy = err.leaves_connection_healthy();
                    lease.abandon(healthy).await;
                    Err(err)
                }
            }
        }
        .await;
        outcome
    }};
}

// After the macros, which it uses.
mod fast;
mod group;
mod pool;
mod wal;

impl Store {
    pub(crate) async fn open(
        url: &str,
        registry: &Registry,
        options: &GateOptions,
    ) -> Result<Store> {
        let call_bound = options.acquire_timeout + options.statement_timeout;
        let (backend, sql) = match Target::of(url)? {
            Target::Postgres => {
                sql::check_schema(&options.schema)?;
                let sql = SqlText::new(Dialect::Postgres {
                    schema: options.schema.clone(),
                });
                let pg = open_postgres(url, registry, options, &sql).await?;
                (Backend::Postgres(Box::new(pg)), sql)
            }
            Target::Sqlite { file } => {
                let lite = SqliteBackend {
                    pool: open_sqlite(file, options).await?,
                    writers: group::Writers::new(),
                };
                (Backend::Sqlite(lite), SqlText::new(Dialect::Sqlite))
            }
        };
        Ok(Store {
            backend,
            sql,
            call_bound,
            connect_timeout: options.connect_timeout,
        })
    }

    pub(crate) async fn migrate(&self) -> Result<()> {
        match &self.backend {
            Backend::Sqlite(lite) => {
                // With this process's writers held back, so none of them is
                // refused for the lock a migration holds.
                let _turn = lite.writers.exclusive_turn().await;
                let mut lease = lite.pool.acquire().await?;
                lite::migrate(lease.conn()?).await?;
                // The schema in the .db file itself, not only in its log.
                lease.conn()?.checkpoint();
                lease.release();
            }
            Backend::Postgres(pg) if pg.pooled => {
                return Err(Error::MigrationFailed {
                    message: "migrations take a session-level lock and prepared statements, which a \
                              transaction pooler cannot keep: run migrate against PostgreSQL directly"
                        .into(),
                    source: None,
                })
            }
            Backend::Postgres(pg) => {
                // On a connection of its own, closed afterwards rather than
                // reused: migrating takes a session-level lock, and the
                // migrations (and sqlx's bookkeeping table) are written
                // unqualified, so this session alone sees only the gate's
                // schema. Nothing outside the schema is created or changed.
                let mut lease = pg.pool.acquire().await?;
                let conn = lease.conn()?;
                let schema = self.sql.schema().unwrap_or_default();
                let prepare = format!(
                    "CREATE SCHEMA IF NOT EXISTS {schema}; SET search_path TO {schema}"
                );
                sqlx::Executor::execute(&mut *conn, prepare.as_str())
                    .await
                    .map_err(|err| Error::MigrationFailed {
                        message: format!("cannot create or use the schema {schema}: {err}"),
                        source: None,
                    })?;
                sqlx::migrate!("../migrations/postgres")
                    .run_direct(conn)
                    .await?;
            }
        }
        Ok(())
    }

    pub(crate) async fn close(&self) {
        match &self.backend {
            Backend::Sqlite(lite) => lite.pool.close().await,
            Backend::Postgres(pg) => pg.pool.close().await,
        }
    }

    /// Opens a write transaction and settles its instant. SQLite reads the
    /// process clock once it holds the write lock, so instants follow commit
    /// order; PostgreSQL takes the server's clock (the transaction's start)
    /// in the BEGIN round trip, so every host agrees. A manual clock wins on both.
    /// On SQLite the transaction may be a group's (see `group`): `end_write`
    /// ends it.
    async fn begin_write(&self, clock: &Clock) -> SResult<(Tx, Timestamp, Option<group::Member>)> {
        Ok(match &self.backend {
            Backend::Sqlite(lite) => {
                let (tx, member) = lite.writers.begin(&lite.pool).await?;
                (tx, clock.now(), Some(member))
            }
            Backend::Postgres(pg) => {
                let (tx, now) = pg.begin(&pg.begin_write, Some(clock)).await?;
                (tx, now, None)
            }
        })
    }

    /// Ends a transaction of [`Store::begin_write`] whose work gave `value`:
    /// commits it (on SQLite, with its group), or rolls it back when the
    /// work failed.
    async fn end_write<T>(
        &self,
        tx: Tx,
        member: Option<group::Member>,
        value: SResult<T>,
    ) -> SResult<T> {
        if let (Backend::Sqlite(lite), Some(member)) = (&self.backend, member) {
            return lite.writers.end(tx, member, value).await;
        }
        match value {
            Ok(value) => {
                tx.commit()
                    .await
                    .map_err(|e| StoreError::from(e).after_write_sent())?;
                Ok(value)
            }
            Err(err) => {
                let healthy = err.leaves_connection_healthy();
                tx.roll_back(healthy).await;
                Err(err)
            }
        }
    }

    /// A read-only transaction that sees one snapshot, with its instant
    /// settled as for [`Store::begin_write`].
    async fn begin_snapshot(&self, clock: &Clock) -> SResult<(Lease, Timestamp)> {
        Ok(match &self.backend {
            Backend::Sqlite(lite) => {
                let tx = Tx::begin_sqlite(lite.pool.acquire().await?, "BEGIN", None).await?;
                (tx.into(), clock.now())
            }
            Backend::Postgres(pg) => {
                let (tx, now) = pg.begin(&pg.begin_read, Some(clock)).await?;
                (tx.into(), now)
            }
        })
    }

    /// The instant to bind for a statement that runs on its own: SQLite's
    /// process clock; on PostgreSQL `None` (the server's clock, read in the
    /// statement) unless a manual clock is set.
    fn statement_now(&self, clock: &Clock) -> Option<Timestamp> {
        match &self.backend {
            Backend::Sqlite(_) => Some(clock.now()),
            Backend::Postgres(_) => clock.fixed(),
        }
    }

    async fn lease(&self, access: Access) -> SResult<Lease> {
        Ok(match (&self.backend, access) {
            (Backend::Sqlite(lite), Access::Read) => {
                Lease::Sqlite(lite.pool.acquire().await?, None)
            }
            (Backend::Sqlite(lite), Access::Write) => {
                let turn = lite.writers.exclusive_turn().await;
                Lease::Sqlite(lite.pool.acquire().await?, Some(turn))
            }
            (Backend::Postgres(pg), Access::Write) if pg.pooled => pg.begin_write().await?.into(),
            (Backend::Postgres(pg), Access::Read) if pg.pooled => pg.begin_read().await?.into(),
            (Backend::Postgres(pg), _) => Lease::Pg(pg.pool.acquire().await?),
        })
    }

    /// Bounds a call on the client side, and tells an unreachable PostgreSQL
    /// (`store_unavailable`) apart from a pool that stayed busy (`store_timeout`).
    ///
    /// A plain function that boxes `call` at once: an `async fn` keeps its
    /// argument beside every future it hands it to, so each wrapper level
    /// would copy and hold the whole call again (a start's state grew to
    /// 13 KB this way, moved by `memcpy` at every level).
    fn bounded<'a, T: 'a>(
        &'a self,
        call: impl Future<Output = SResult<T>> + 'a,
    ) -> impl Future<Output = Result<T>> + 'a {
        self.bounded_call(Box::pin(call), true)
    }

    /// `bounded` for calls that write nothing.
    fn bounded_read<'a, T: 'a>(
        &'a self,
        call: impl Future<Output = SResult<T>> + 'a,
    ) -> impl Future<Output = Result<T>> + 'a {
        self.bounded_call(Box::pin(call), false)
    }

    async fn bounded_call<T>(
        &self,
        call: Pin<Box<impl Future<Output = SResult<T>>>>,
        writes: bool,
    ) -> Result<T> {
        let result = match pool::within(self.call_bound, call).await {
            Some(result) => result.map_err(Error::from),
            // Cut off mid-call, a write may already be on its way to commit.
            None => Err(Error::StoreTimeout {
                outcome_unknown: writes,
                message: format!("no answer within {:?}", self.call_bound),
                source: None,
            }),
        };
        match result {
            Err(Error::StoreTimeout {
                source: Some(sqlx::Error::PoolTimedOut),
                ..
            }) => Err(Box::pin(self.diagnose_pool_timeout()).await),
            other => other,
        }
    }

    async fn diagnose_pool_timeout(&self) -> Error {
        let busy = Error::timeout(
            "every pooled connection stayed busy past acquire_timeout",
            Some(sqlx::Error::PoolTimedOut),
        );
        let Backend::Postgres(pg) = &self.backend else {
            return busy;
        };
        match tokio::time::timeout(self.connect_timeout, pg.connect.connect()).await {
            Ok(Ok(conn)) => {
                let _ = sqlx::Connection::close(conn).await;
                busy
            }
            Ok(Err(err)) => {
                let text = crate::error::with_tls(&err);
                Error::unavailable(format!("cannot reach PostgreSQL ({text})"), Some(err))
            }
            Err(_) => Error::unavailable(
                format!(
                    "PostgreSQL did not accept a connection within {:?}",
                    self.connect_timeout
                ),
                None,
            ),
        }
    }

    pub(crate) async fn admit(&self, plan: &Plan<'_>, clock: &Clock) -> Result<Admission> {
        self.bounded(async {
            if let Backend::Postgres(pg) = &self.backend {
                return Box::pin(fast::admit(self, pg, plan, clock)).await;
            }
            self.admit_in_transaction(plan, clock).await
        })
        .await
    }

    /// The general admission: one transaction for resolution, preflight,
    /// admission (or takeover) and the audit row.
    async fn admit_in_transaction(&self, plan: &Plan<'_>, clock: &Clock) -> SResult<Admission> {
        write_tx!(self, clock, |conn, now| {
            ops::admit_and_audit(conn, plan, now).await
        })
    }

    pub(crate) async fn record_denied(
        &self,
        plan: &Plan<'_>,
        status: u16,
        clock: &Clock,
    ) -> Result<()> {
        self.bounded(async {
            let admission = Admission {
                outcome: Outcome::Denied,
                ..Admission::blocked(None, Vec::new(), None)
            };
            let mut values = AttemptValues::for_plan(plan, &admission);
            values.status = Some(status);
            let now = self.statement_now(clock);
            leased!(self, Access::Write, |conn| ops::insert_attempt(
                conn, &values, now
            )
            .await)
        })
        .await
    }

    pub(crate) async fn check(&self, plans: &[Plan<'_>], clock: &Clock) -> Result<Vec<Admission>> {
        self.bounded_read(async {
            let (mut lease, now) = self.begin_snapshot(clock).await?;
            let decided = match lease.conn(&self.sql) {
                Ok(mut conn) => ops::check_all(&mut conn, plans, now).await,
                Err(err) => Err(err.into()),
            };
            match decided {
                Ok(decided) => {
                    lease.finish().await?;
                    Ok(decided)
                }
                Err(err) => {
                    lease.abandon(err.leaves_connection_healthy()).await;
                    Err(err)
                }
            }
        })
        .await
    }

    pub(crate) async fn start_sequence(
        &self,
        first: &Plan<'_>,
        rest: &[Plan<'_>],
        clock: &Clock,
    ) -> Result<(Admission, Vec<Run>)> {
        self.bounded(async {
            write_tx!(self, clock, |conn, now| ops::start_sequence_in(
                conn, first, rest, now
            )
            .await)
        })
        .await
    }

    pub(crate) async fn mark_running(&self, run_id: i64, token: i64, clock: &Clock) -> Result<Run> {
        self.bounded(async {
            if self.single_statements() {
                let now = self.statement_now(clock);
                return leased!(self, Access::Write, |conn| ops::mark_running_in(
                    conn, run_id, token, now
                )
                .await);
            }
            write_tx!(self, clock, |conn, now| ops::mark_running_in(
                conn,
                run_id,
                token,
                Some(now)
            )
            .await)
        })
        .await
    }

    pub(crate) async fn heartbeat(&self, run_id: i64, token: i64, clock: &Clock) -> Result<Run> {
        self.bounded(async {
            if self.single_statements() {
                let now = self.statement_now(clock);
                return leased!(self, Access::Write, |conn| ops::heartbeat_in(
                    conn, run_id, token, now
                )
                .await);
            }
            write_tx!(self, clock, |conn, now| ops::heartbeat_in(
                conn,
                run_id,
                token,
                Some(now)
            )
            .await)
        })
        .await
    }

    /// PostgreSQL runs a lone UPDATE atomically without an explicit transaction
    /// (one round trip); SQLite takes its write lock first so timestamps follow
    /// commit order.
    fn single_statements(&self) -> bool {
        matches!(&self.backend, Backend::Postgres(pg) if !pg.pooled)
    }

    pub(crate) async fn complete(
        &self,
        registry: &Registry,
        completion: &Completion,
        summary: Option<String>,
        clock: &Clock,
    ) -> Result<Ended> {
        self.bounded(async {
            write_tx!(self, clock, |conn, now| {
                ops::complete_in(conn, registry, completion, summary.as_deref(), now).await
            })
        })
        .await
    }

    pub(crate) async fn cancel(
        &self,
        registry: &Registry,
        run_id: i64,
        reason_code: Option<&str>,
        clock: &Clock,
    ) -> Result<Ended> {
        self.bounded(async {
            write_tx!(self, clock, |conn, now| ops::cancel_in(
                conn,
                registry,
                run_id,
                reason_code,
                now
            )
            .await)
        })
        .await
    }

    pub(crate) async fn reap(
        &self,
        registry: &Registry,
        clock: &Clock,
    ) -> Result<(Vec<Run>, Vec<Admission>)> {
        self.bounded(async {
            write_tx!(self, clock, |conn, now| ops::reap_in(conn, registry, now)
                .await)
        })
        .await
    }

    pub(crate) async fn upsert_connection(
        &self,
        connection: &ProviderConnection,
        clock: &Clock,
    ) -> Result<ProviderConnection> {
        let facts = self.sql.relation("provider_connections");
        self.bounded(async {
            write_tx!(self, clock, |conn, now| async {
                if fast::is_view(conn, &facts).await? {
                    return Err(Error::invalid(
                        "connection",
                        format!(
                            "the gate reads connection facts from {facts}, a view over the host's own \
                             tables: change them there (upsert_connection writes only the gate's own \
                             table; docs/DESIGN.md §6)"
                        ),
                    )
                    .into());
                }
                ops::upsert_connection_in(conn, connection, now).await
            }
            .await)
        })
        .await
    }

    pub(crate) async fn get_connection(
        &self,
        tenant_id: &str,
        id: &str,
    ) -> Result<Option<ProviderConnection>> {
        self.bounded_read(async {
            leased!(self, Access::Read, |conn| ops::resolve(
                conn,
                tenant_id,
                Some(id)
            )
            .await)
        })
        .await
    }

    pub(crate) async fn default_connection(
        &self,
        tenant_id: &str,
    ) -> Result<Option<ProviderConnection>> {
        self.bounded_read(async {
            leased!(self, Access::Read, |conn| ops::resolve(
                conn, tenant_id, None
            )
            .await)
        })
        .await
    }

    pub(crate) async fn list_connections(
        &self,
        tenant_id: &str,
    ) -> Result<Vec<ProviderConnection>> {
        self.bounded_read(async {
            leased!(self, Access::Read, |conn| ops::list_connections_in(
                conn, tenant_id
            )
            .await)
        })
        .await
    }

    pub(crate) async fn get_run(&self, run_id: i64) -> Result<Run> {
        self.bounded_read(async {
            leased!(self, Access::Read, |conn| ops::fetch_existing_run(
                conn, run_id
            )
            .await)
        })
        .await
    }

    pub(crate) async fn stats(&self) -> Result<crate::metrics::DatabaseStats> {
        self.bounded_read(async { leased!(self, Access::Read, |conn| ops::stats_in(conn).await) })
            .await
    }

    pub(crate) async fn list_runs(&self, filter: &RunFilter) -> Result<Vec<Run>> {
        self.bounded_read(async {
            leased!(self, Access::Read, |conn| ops::list_runs_in(conn, filter)
                .await)
        })
        .await
    }

    pub(crate) async fn attempts_for_run(&self, run_id: i64) -> Result<Vec<StartAttempt>> {
        self.bounded_read(async {
            leased!(self, Access::Read, |conn| ops::attempts_in(
                conn,
                Some(run_id),
                None,
                0
            )
            .await)
        })
        .await
    }

    pub(crate) async fn list_attempts(
        &self,
        tenant_id: Option<&str>,
        limit: u32,
    ) -> Result<Vec<StartAttempt>> {
        self.bounded_read(async {
            leased!(self, Access::Read, |conn| ops::attempts_in(
                conn, None, tenant_id, limit
            )
            .await)
        })
        .await
    }
}

impl From<Tx> for Lease {
    fn from(tx: Tx) -> Self {
        Lease::Tx(tx)
    }
}

/// What a database URL names (docs/DESIGN.md §6).
#[derive(Debug, PartialEq, Eq)]
enum Target {
    Postgres,
    /// The file, `None` for in-memory.
    Sqlite {
        file: Option<lite::LiteFile>,
    },
}

const URL_FORMS: &str =
    "give a file path, sqlite://PATH, sqlite::memory: or postgres://USER@HOST/DATABASE";

impl Target {
    fn of(url: &str) -> Result<Target> {
        crate::input::text("url", url)?;
        if url.trim().is_empty() {
            return Err(Error::invalid(
                "url",
                format!("must not be empty: {URL_FORMS}"),
            ));
        }
        if url == ":memory:" || url == "sqlite::memory:" {
            return Ok(Target::Sqlite { file: None });
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Target::Postgres);
        }
        let scheme_end = url.find(':').filter(|&end| {
            let scheme = &url[..end];
            scheme.len() > 1
                && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        });
        let rest = match scheme_end {
            Some(end) if url[..end].eq_ignore_ascii_case("sqlite") => {
                let rest = &url[end + 1..];
                rest.strip_prefix("//").unwrap_or(rest)
            }
            Some(end) => {
                return Err(Error::invalid(
                    "url",
                    format!(
                        "unknown scheme \"{}:\" in {}: {URL_FORMS}",
                        &url[..end],
                        redact(url)
                    ),
                ))
            }
            None => url,
        };
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        if path.contains(":memory:") || query.split('&').any(|p| p == "mode=memory") {
            return Err(Error::invalid(
                "url",
                format!(
                    "{}: only exactly sqlite::memory: (or :memory:) names an in-memory database",
                    redact(url)
                ),
            ));
        }
        if path.is_empty() {
            return Err(Error::invalid(
                "url",
                format!("{}: names no database file: {URL_FORMS}", redact(url)),
            ));
        }
        Ok(Target::Sqlite {
            file: Some(lite::LiteFile {
                path: path.into(),
                query: query.to_string(),
            }),
        })
    }
}

/// The SQLite file a gate opened on `url` would use: `None` for PostgreSQL
/// and for the in-memory database, and the error opening would give for a
/// URL no store takes. Lets a tool see whether a database exists before
/// opening it (opening creates a SQLite file).
pub fn sqlite_file(url: &str) -> Result<Option<std::path::PathBuf>> {
    Ok(match Target::of(url)? {
        Target::Sqlite { file } => file.map(|f| f.path),
        Target::Postgres => None,
    })
}

/// A database URL fit for messages: any password replaced by `***`.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((user_info, host)) => {
            let user = user_info.split(':').next().unwrap_or_default();
            let hidden = if user_info.contains(':') { ":***" } else { "" };
            format!("{scheme}://{user}{hidden}@{host}{tail}")
        }
        None => url.to_string(),
    }
}

async fn open_sqlite(
    file: Option<lite::LiteFile>,
    options: &GateOptions,
) -> Result<pool::Pool<lite::LiteConnection>> {
    let what = file
        .as_ref()
        .map_or("the in-memory database".to_string(), |f| {
            format!("{:?}", f.path.display().to_string())
        });
    // An in-memory database exists once per connection: keep exactly one, forever.
    let in_memory = file.is_none();
    let connect = lite::LiteOptions {
        file,
        busy_timeout: options.statement_timeout,
    };
    let pool = pool::Pool::new(
        connect,
        pool::Settings {
            max_connections: if in_memory {
                1
            } else {
                options.max_connections
            },
            acquire_timeout: options.acquire_timeout,
            ping_after_idle: None,
            idle_timeout: if in_memory { None } else { Some(IDLE_TIMEOUT) },
            keep_abandoned: true,
        },
    );
    if !in_memory {
        lite::checkpoint_at_exit(&pool);
    }
    // Open one now, so a bad path fails at open (and an in-memory database
    // exists from the start).
    match pool.acquire().await {
        Ok(lease) => lease.release(),
        Err(err) => {
            return Err(Error::unavailable(
                format!("cannot open the SQLite database {what}: {err}"),
                Some(err),
            ));
        }
    }
    Ok(pool)
}

/// Reused within this long after its last call, a PostgreSQL connection is
/// trusted as is; after longer it is pinged first.
const PING_AFTER_IDLE: Duration = Duration::from_secs(2);
/// Idle this long, a connection is closed rather than kept.
const IDLE_TIMEOUT: Duration = Duration::from_secs(300);

/// The startgate-specific URL parameter that says a transaction pooler
/// (pgbouncer `pool_mode = transaction`) sits in front of PostgreSQL.
const POOL_MODE_PARAM: &str = "pool_mode";

async fn open_postgres(
    url: &str,
    registry: &Registry,
    options: &GateOptions,
    sql: &SqlText,
) -> Result<PgBackend> {
    let (url, pooled) = strip_pool_mode(url)?;
    let timeout_ms = options.statement_timeout.as_millis().max(1);
    let mut connect = PgConnectOptions::from_str(&url)
        .map_err(|err| {
            Error::invalid(
                "url",
                format!("not a valid PostgreSQL URL ({}): {err}", redact(&url)),
            )
        })?
        // Poolers accept only a few startup parameters; send none we can avoid.
        .extra_float_digits(None);
    // Operators find the gate's sessions in pg_stat_activity by this name; a
    // host that runs several kinds of process names each in its URL.
    if connect.get_application_name().is_none() {
        connect = connect.application_name("startgate");
    }
    if !pooled {
        // Directly connected, the server cancels any statement that runs too
        // long. Behind a pooler it cannot be a startup parameter; every
        // statement runs in a transaction that sets it (`begin_write`).
        connect = connect.options([("statement_timeout", timeout_ms.to_string())]);
    }
    let pool = pool::Pool::new(
        connect.clone(),
        pool::Settings {
            max_connections: options.max_connections,
            acquire_timeout: options.acquire_timeout,
            ping_after_idle: Some(PING_AFTER_IDLE),
            idle_timeout: Some(IDLE_TIMEOUT),
            keep_abandoned: false,
        },
    );
    // Fail at open, clearly, when the server cannot be reached at all.
    match tokio::time::timeout(options.connect_timeout, pool.acquire()).await {
        Ok(Ok(lease)) => lease.release(),
        Ok(Err(err)) => {
            return Err(Error::unavailable(
                format!(
                    "cannot connect to PostgreSQL ({})",
                    crate::error::with_tls(&err)
                ),
                Some(err),
            ))
        }
        Err(_) => {
            return Err(Error::unavailable(
                format!(
                    "PostgreSQL did not accept a connection within {:?}",
                    options.connect_timeout
                ),
                None,
            ))
        }
    }
    Ok(PgBackend {
        pool,
        pooled,
        begin_write: Begin::new(format!(
            "BEGIN; SET LOCAL statement_timeout = {timeout_ms}"
        )),
        begin_read: Begin::new(format!(
            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET LOCAL statement_timeout = {timeout_ms}"
        )),
        connect,
        fast: fast::Statements::new(registry, sql),
    })
}

/// Removes `pool_mode=transaction|session` from the URL's query; sqlx would
/// only warn about an unknown parameter and ignore it.
fn strip_pool_mode(url: &str) -> Result<(String, bool)> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_string(), false));
    };
    let mut pooled = false;
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some((POOL_MODE_PARAM, "transaction")) => pooled = true,
            Some((POOL_MODE_PARAM, "session")) => pooled = false,
            Some((POOL_MODE_PARAM, other)) => {
                return Err(Error::invalid(
                    "url",
                    format!("{POOL_MODE_PARAM}={other}: expected `transaction` or `session`"),
                ))
            }
            _ => kept.push(pair),
        }
    }
    let url = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((url, pooled))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_exactly_one_store() {
        let lite = |file: Option<(&str, &str)>| Target::Sqlite {
            file: file.map(|(path, query)| lite::LiteFile {
                path: path.into(),
                query: query.into(),
            }),
        };
        assert_eq!(Target::of(":memory:").unwrap(), lite(None));
        assert_eq!(Target::of("sqlite::memory:").unwrap(), lite(None));
        assert_eq!(Target::of("x.db").unwrap(), lite(Some(("x.db", ""))));
        assert_eq!(
            Target::of("sqlite:///tmp/a.db?mode=rwc").unwrap(),
            lite(Some(("/tmp/a.db", "mode=rwc")))
        );
        assert_eq!(Target::of("sqlite:a.db").unwrap(), lite(Some(("a.db", ""))));
        assert_eq!(Target::of("postgres://u@h/db").unwrap(), Target::Postgres);
        for (bad, says) in [
            ("", "must not be empty"),
            ("  ", "must not be empty"),
            ("sqlite::memory:xyz", "only exactly sqlite::memory:"),
            (":memory:xyz", "only exactly sqlite::memory:"),
            ("sqlite://x.db?mode=memory", "only exactly sqlite::memory:"),
            ("sqlite://", "names no database file"),
            ("http://example.com/x.db", "unknown scheme \"http:\""),
            ("mysql://root:hunter2@db/app", "mysql://root:***@db/app"),
            ("a\0b.db", "must not contain NUL characters"),
        ] {
            match Target::of(bad) {
                Err(Error::InvalidRequest { field, message }) => {
                    assert_eq!(field, "url");
                    assert!(message.contains(says), "{bad:?}: {message}");
                    assert!(!message.contains("hunter2"), "{message}");
                }
                other => panic!("{bad:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn pool_mode_is_taken_out_of_the_url() {
        let (url, pooled) =
            strip_pool_mode("postgres://h:6432/db?sslmode=disable&pool_mode=transaction").unwrap();
        assert_eq!(
            (url.as_str(), pooled),
            ("postgres://h:6432/db?sslmode=disable", true)
        );
        let (url, pooled) = strip_pool_mode("postgres://h/db").unwrap();
        assert_eq!((url.as_str(), pooled), ("postgres://h/db", false));
        assert!(strip_pool_mode("postgres://h/db?pool_mode=statement").is_err());
    }
}
