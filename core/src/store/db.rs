//! One connection type for both backends. Shared SQL runs through [`Conn`],
//! which binds the same parameter list on SQLite or PostgreSQL, so each
//! operation is written once.

use sqlx::postgres::{PgConnection, PgRow};
use sqlx::{FromRow, Postgres};

use super::lite::{LiteConnection, LiteRow};
use super::pool::{Pooled, TxControl};
use super::sql::SqlText;
use crate::time::Timestamp;

/// A bound parameter.
#[derive(Debug, Clone)]
pub(crate) enum Param<'a> {
    Int(Option<i64>),
    Small(Option<i32>),
    Bool(Option<bool>),
    Text(Option<&'a str>),
    Owned(Option<String>),
}

macro_rules! param_from {
    ($($t:ty => $variant:ident $(($conv:expr))?),+ $(,)?) => {
        $(impl<'a> From<$t> for Param<'a> {
            fn from(value: $t) -> Self {
                Param::$variant(param_from!(@conv value $(, $conv)?))
            }
        })+
    };
    (@conv $v:ident) => { Some($v) };
    (@conv $v:ident, $conv:expr) => { $conv($v) };
}

param_from! {
    i64 => Int,
    Option<i64> => Int(|v| v),
    Option<i32> => Small(|v| v),
    bool => Bool,
    Option<bool> => Bool(|v| v),
    &'a str => Text,
    Option<&'a str> => Text(|v| v),
    String => Owned,
    Option<String> => Owned(|v| v),
}

/// `args![a, b, …]`: a parameter list for [`Conn`] queries (`$1`, `$2`, …).
macro_rules! args {
    ($($value:expr),* $(,)?) => {
        &[$($crate::store::db::Param::from($value)),*]
    };
}
pub(crate) use args;

/// A connection (or open transaction) on either backend, with the store's
/// statement texts. `persistent` is false behind a transaction pooler, where
/// named prepared statements cannot be kept.
pub(crate) struct Conn<'c> {
    pub(crate) db: Db<'c>,
    pub(crate) sql: &'c SqlText,
}

/// The backend connection of a [`Conn`].
pub(crate) enum Db<'c> {
    Sqlite(&'c mut LiteConnection),
    Pg(&'c mut PgConnection, bool),
}

macro_rules! bind_all {
    ($query:expr, $params:expr) => {{
        let mut query = $query;
        for param in $params {
            query = match param {
                Param::Int(v) => query.bind(*v),
                Param::Small(v) => query.bind(*v),
                Param::Bool(v) => query.bind(*v),
                Param::Text(v) => query.bind(*v),
                Param::Owned(v) => query.bind(v.clone()),
            };
        }
        query
    }};
}

/// A row type both backends can decode.
pub(crate) trait Row: LiteRow + for<'r> FromRow<'r, PgRow> + Send + Unpin {}
impl<T> Row for T where T: LiteRow + for<'r> FromRow<'r, PgRow> + Send + Unpin {}

impl Conn<'_> {
    pub(crate) async fn fetch_optional<R: Row>(
        &mut self,
        template: &'static str,
        params: &[Param<'_>],
    ) -> Result<Option<R>, sqlx::Error> {
        let text = self.sql.get(template);
        let sql: &str = &text;
        crate::metrics::round_trip();
        match &mut self.db {
            Db::Sqlite(c) => Ok(c.rows::<R>(sql, params).await?.into_iter().next()),
            Db::Pg(c, persistent) => {
                Box::pin(
                    bind_all!(sqlx::query_as::<Postgres, R>(sql), params)
                        .persistent(*persistent)
                        .fetch_optional(&mut **c),
                )
                .await
            }
        }
    }

    pub(crate) async fn fetch_one<R: Row>(
        &mut self,
        sql: &'static str,
        params: &[Param<'_>],
    ) -> Result<R, sqlx::Error> {
        self.fetch_optional(sql, params)
            .await?
            .ok_or(sqlx::Error::RowNotFound)
    }

    pub(crate) async fn fetch_all<R: Row>(
        &mut self,
        template: &'static str,
        params: &[Param<'_>],
    ) -> Result<Vec<R>, sqlx::Error> {
        let text = self.sql.get(template);
        let sql: &str = &text;
        crate::metrics::round_trip();
        match &mut self.db {
            Db::Sqlite(c) => c.rows::<R>(sql, params).await,
            Db::Pg(c, persistent) => {
                Box::pin(
                    bind_all!(sqlx::query_as::<Postgres, R>(sql), params)
                        .persistent(*persistent)
                        .fetch_all(&mut **c),
                )
                .await
            }
        }
    }

    /// The rowid of the last row a SQLite connection inserted; `None` on
    /// PostgreSQL, whose statements return what they insert.
    pub(crate) fn last_insert_rowid(&self) -> Option<i64> {
        match &self.db {
            Db::Sqlite(c) => Some(c.last_insert_rowid()),
            Db::Pg(..) => None,
        }
    }

    /// Runs a statement; returns the number of rows it touched.
    pub(crate) async fn execute(
        &mut self,
        template: &'static str,
        params: &[Param<'_>],
    ) -> Result<u64, sqlx::Error> {
        let text = self.sql.get(template);
        let sql: &str = &text;
        crate::metrics::round_trip();
        match &mut self.db {
            Db::Sqlite(c) => c.execute(sql, params).await,
            Db::Pg(c, persistent) => Ok(Box::pin(
                bind_all!(sqlx::query::<Postgres>(sql), params)
                    .persistent(*persistent)
                    .execute(&mut **c),
            )
            .await?
            .rows_affected()),
        }
    }
}

/// An open transaction on either backend, begun and ended with plain
/// statements on a leased connection, so ending it costs exactly the COMMIT or
/// ROLLBACK and nothing else.
pub(crate) enum Tx {
    /// With this process's writer turn, for write transactions.
    Sqlite(Pooled<LiteConnection>, Option<WriterTurn>),
    Pg(Pooled<PgConnection>, bool),
}

/// `begin` followed by a `SELECT` of the server's clock (microseconds since
/// the epoch, the transaction's start), for [`Tx::begin_pg`] with `read_clock`.
pub(crate) fn begin_reading_clock(begin: &str) -> String {
    format!("{begin}; SELECT {}", super::sql::PG_NOW_US)
}

/// A turn in the process's SQLite writer queue, held until the write ends.
pub(crate) type WriterTurn = tokio::sync::OwnedMutexGuard<()>;

impl Tx {
    /// Opens a SQLite transaction with `begin` (`BEGIN` or `BEGIN IMMEDIATE`).
    pub(crate) async fn begin_sqlite(
        mut lease: Pooled<LiteConnection>,
        begin: &str,
        turn: Option<WriterTurn>,
    ) -> Result<Tx, sqlx::Error> {
        crate::metrics::round_trip();
        lease.conn()?.control(begin).await?;
        Ok(Tx::Sqlite(lease, turn))
    }

    /// Opens a PostgreSQL transaction with `begin` (which may also set
    /// transaction-local settings). With `read_clock`, `begin` ends in a
    /// `SELECT` of the server's clock (see [`begin_reading_clock`]) and its
    /// answer comes back: the transaction's "now", in the same round trip.
    pub(crate) async fn begin_pg(
        mut lease: Pooled<PgConnection>,
        begin: &str,
        persistent: bool,
        read_clock: bool,
    ) -> Result<(Tx, Option<Timestamp>), sqlx::Error> {
        let conn = lease.conn()?;
        crate::metrics::round_trip();
        let now = if read_clock {
            // A plain string runs as one simple query: BEGIN, SET LOCAL and
            // the SELECT travel together.
            let rows = sqlx::Executor::fetch_all(&mut *conn, begin).await?;
            let micros: i64 = rows
                .first()
                .ok_or(sqlx::Error::RowNotFound)
                .and_then(|row| sqlx::Row::try_get(row, 0))?;
            Some(Timestamp::from_micros(micros))
        } else {
            conn.control(begin).await?;
            None
        };
        Ok((Tx::Pg(lease, persistent), now))
    }

    pub(crate) fn conn<'a>(&'a mut self, sql: &'a SqlText) -> Result<Conn<'a>, sqlx::Error> {
        let db = match self {
            Tx::Sqlite(lease, _) => Db::Sqlite(lease.conn()?),
            Tx::Pg(lease, persistent) => Db::Pg(lease.conn()?, *persistent),
        };
        Ok(Conn { db, sql })
    }

    /// Runs one transaction-control statement (`SAVEPOINT …`, `RELEASE …`).
    pub(crate) async fn control(&mut self, sql: &str) -> Result<(), sqlx::Error> {
        match self {
            Tx::Sqlite(lease, _) => lease.conn()?.control(sql).await,
            Tx::Pg(lease, _) => lease.conn()?.control(sql).await,
        }
    }

    /// Commits without waiting, for work that must end where nothing can be
    /// awaited (a drop): SQLite commits in the calling thread; a PostgreSQL
    /// transaction cannot, and is abandoned (rolled back) instead.
    pub(crate) fn commit_now(self) {
        if let Tx::Sqlite(mut lease, _turn) = self {
            if let Ok(conn) = lease.conn() {
                if conn.execute_now("COMMIT").is_ok() {
                    lease.release();
                }
            }
        }
    }

    /// Commits and returns the connection to its pool (a SQLite writer's turn
    /// passes on after that).
    pub(crate) async fn commit(self) -> Result<(), sqlx::Error> {
        match self {
            Tx::Sqlite(lease, _turn) => commit(lease).await,
            Tx::Pg(lease, _) => commit(lease).await,
        }
    }

    /// Ends the transaction after the call failed. The connection goes back to
    /// the pool only when the failure left it `healthy` and the rollback
    /// worked; otherwise its lease is dropped (see `pool`).
    pub(crate) async fn roll_back(self, healthy: bool) {
        match self {
            Tx::Sqlite(lease, _turn) => roll_back(lease, healthy).await,
            Tx::Pg(lease, _) => roll_back(lease, healthy).await,
        }
    }
}

async fn commit<C: TxControl>(mut lease: Pooled<C>) -> Result<(), sqlx::Error> {
    crate::metrics::round_trip();
    lease.conn()?.control("COMMIT").await?;
    lease.release();
    Ok(())
}

async fn roll_back<C: TxControl>(mut lease: Pooled<C>, healthy: bool) {
    crate::metrics::round_trip();
    let rolled_back = match lease.conn() {
        Ok(conn) => conn.control("ROLLBACK").await.is_ok(),
        Err(_) => false,
    };
    if rolled_back && healthy {
        lease.release();
    }
}
