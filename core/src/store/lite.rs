//! SQLite, driven in the calling thread.
//!
//! A SQLite call is a few microseconds of work on a local file. sqlx runs
//! each SQLite connection on a worker thread of its own, so every statement
//! (and BEGIN and COMMIT) was a hand-off to that thread and a wake-up back:
//! most of a start's time. Here the gate owns its connections (rusqlite over
//! the same bundled SQLite) and runs every statement where the call runs;
//! the store's operations are shared async code, and on this connection each
//! of their awaits is ready at once, so a whole start completes in one poll.
//!
//! The one wait is for another process's write lock: SQLite's own busy
//! handler would sleep in the calling thread (an async runtime's worker), so
//! the connection's busy timeout is zero and a locked database is retried
//! with async sleeps instead, up to the statement timeout. Within a process
//! the store's writer queue hands the lock over without either.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags, Statement};
use sha2::{Digest, Sha384};

use super::db::Param;
use super::pool::{BoxFuture, TxControl};
use crate::error::{Error, Result, SqliteFailure};

/// Where a connection opens, and how long a locked database is waited for.
#[derive(Debug, Clone)]
pub(crate) struct LiteOptions {
    /// The file (with any SQLite URI query), or `None` for in-memory.
    pub file: Option<LiteFile>,
    pub busy_timeout: Duration,
}

/// A database file, and the query of the URL that named it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LiteFile {
    pub path: PathBuf,
    pub query: String,
}

/// One SQLite connection of the gate's.
pub(crate) struct LiteConnection {
    conn: Connection,
    busy_timeout: Duration,
}

impl std::fmt::Debug for LiteConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiteConnection").finish_non_exhaustive()
    }
}

/// The store speaks sqlx's error type; SQLite's errors travel inside it.
fn to_sqlx(err: rusqlite::Error) -> sqlx::Error {
    match err {
        rusqlite::Error::SqliteFailure(failure, message) => {
            sqlx::Error::Database(Box::new(SqliteFailure {
                code: failure.extended_code,
                message: message.unwrap_or_else(|| failure.to_string()),
            }))
        }
        other => sqlx::Error::Decode(Box::new(other)),
    }
}

fn is_busy(err: &rusqlite::Error) -> bool {
    matches!(
        err,
        rusqlite::Error::SqliteFailure(failure, _)
            if matches!(failure.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

/// A row the store reads, decoded by position in the order its query names
/// the columns.
pub(crate) trait LiteRow: Sized {
    fn from_lite(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self>;
}

impl LiteRow for (String, String) {
    fn from_lite(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok((row.get(0)?, row.get(1)?))
    }
}

fn bind(statement: &mut Statement<'_>, params: &[Param<'_>]) -> rusqlite::Result<()> {
    // Templates number their parameters (`?N` here): parameter N is params[N-1].
    for (index, param) in params.iter().enumerate().take(statement.parameter_count()) {
        let at = index + 1;
        match param {
            Param::Int(v) => statement.raw_bind_parameter(at, v)?,
            Param::Small(v) => statement.raw_bind_parameter(at, v)?,
            Param::Bool(v) => statement.raw_bind_parameter(at, v)?,
            Param::Text(v) => statement.raw_bind_parameter(at, v)?,
            Param::Owned(v) => statement.raw_bind_parameter(at, v.as_deref())?,
        }
    }
    Ok(())
}

impl LiteConnection {
    /// Opens (creating the file when missing) with the gate's settings: WAL,
    /// synchronous=NORMAL, foreign keys, no busy handler (see the module docs).
    /// Setting them reads the file, which another process may have locked
    /// (switching it to WAL, or recovering its log after a crash): that is
    /// waited for like any statement's lock, up to the busy timeout.
    pub(crate) async fn open(options: &LiteOptions) -> std::result::Result<Self, sqlx::Error> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        // SQLite's own VFS, with a commit's WAL frames written in one call
        // (see `wal`); SQLite's default if it could not be registered. A
        // URL's `vfs=…` still chooses its own.
        let vfs = super::wal::register()
            .ok()
            .and_then(|()| super::wal::NAME.to_str().ok());
        fn open(
            path: impl AsRef<std::path::Path>,
            flags: OpenFlags,
            vfs: Option<&str>,
        ) -> rusqlite::Result<Connection> {
            match vfs {
                Some(vfs) => Connection::open_with_flags_and_vfs(path, flags, vfs),
                None => Connection::open_with_flags(path, flags),
            }
        }
        let conn = match &options.file {
            None => Connection::open_in_memory_with_flags(flags),
            Some(file) if file.query.is_empty() => open(&file.path, flags, vfs),
            // The URL's query goes to SQLite as a URI's (mode=…, cache=…, vfs=…).
            Some(file) => open(
                format!("file:{}?{}", file.path.display(), file.query),
                flags | OpenFlags::SQLITE_OPEN_URI,
                vfs,
            ),
        }
        .map_err(to_sqlx)?;
        let mut lite = LiteConnection {
            conn,
            busy_timeout: options.busy_timeout,
        };
        lite.conn.busy_timeout(Duration::ZERO).map_err(to_sqlx)?;
        lite.conn.set_prepared_statement_cache_capacity(64);
        let journal = if options.file.is_some() {
            "PRAGMA journal_mode = WAL; "
        } else {
            ""
        };
        // Each setting is idempotent, so a batch refused halfway is run again whole.
        let settings = format!("{journal}PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;");
        lite.patiently(|conn| conn.execute_batch(&settings)).await?;
        Ok(lite)
    }

    /// Runs `attempt` until it is not refused for a lock another process
    /// holds, waiting without blocking the thread, up to the busy timeout.
    async fn patiently<T>(
        &mut self,
        mut attempt: impl FnMut(&mut Connection) -> rusqlite::Result<T>,
    ) -> std::result::Result<T, sqlx::Error> {
        let deadline = Instant::now() + self.busy_timeout;
        let mut waits = 0u32;
        loop {
            match attempt(&mut self.conn) {
                Err(err) if is_busy(&err) && Instant::now() < deadline => {
                    waits += 1;
                    // A few turns of the runtime first (the holder is usually
                    // a sibling process mid-commit), then sleeps that grow to 10 ms.
                    if waits <= 3 {
                        tokio::task::yield_now().await;
                    } else {
                        let ms = u64::from((waits - 3).min(10));
                        tokio::time::sleep(Duration::from_millis(ms)).await;
                    }
                }
                other => return other.map_err(to_sqlx),
            }
        }
    }

    /// Runs `sql` at once, without waiting out another process's lock.
    pub(crate) fn execute_now(&mut self, sql: &str) -> std::result::Result<(), sqlx::Error> {
        self.conn.execute_batch(sql).map_err(to_sqlx)
    }

    /// The rowid of the last row this connection inserted.
    pub(crate) fn last_insert_rowid(&self) -> i64 {
        self.conn.last_insert_rowid()
    }

    /// The rows of `sql` with `params`.
    pub(crate) async fn rows<R: LiteRow>(
        &mut self,
        sql: &str,
        params: &[Param<'_>],
    ) -> std::result::Result<Vec<R>, sqlx::Error> {
        self.patiently(|conn| {
            let mut statement = conn.prepare_cached(sql)?;
            bind(&mut statement, params)?;
            let mut rows = statement.raw_query();
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                out.push(R::from_lite(row)?);
            }
            Ok(out)
        })
        .await
    }

    /// Runs `sql` with `params`; the number of rows it changed.
    pub(crate) async fn execute(
        &mut self,
        sql: &str,
        params: &[Param<'_>],
    ) -> std::result::Result<u64, sqlx::Error> {
        self.patiently(|conn| {
            let mut statement = conn.prepare_cached(sql)?;
            bind(&mut statement, params)?;
            statement.raw_execute().map(|n| n as u64)
        })
        .await
    }

    /// Copies the write-ahead log into the database file and empties it, so
    /// the `.db` file alone holds the schema and every row (a copy of it is
    /// complete). A reader elsewhere may hold part of the log back; the last
    /// connection to close copies the rest, as SQLite does on close.
    pub(crate) fn checkpoint(&mut self) {
        // Best effort by design: a busy database is checkpointed later by
        // SQLite itself, and a failure here must not fail a close.
        let _ = self
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
    }

    /// Whether a transaction is open (an abandoned call may have left one).
    pub(crate) fn in_transaction(&self) -> bool {
        !self.conn.is_autocommit()
    }
}

impl TxControl for LiteConnection {
    type Options = LiteOptions;

    fn open(options: &LiteOptions) -> BoxFuture<'_, std::result::Result<Self, sqlx::Error>> {
        Box::pin(LiteConnection::open(options))
    }

    fn ping(&mut self) -> BoxFuture<'_, std::result::Result<(), sqlx::Error>> {
        // A local file does not go away the way a socket does.
        Box::pin(async { Ok(()) })
    }

    fn close(self) -> BoxFuture<'static, std::result::Result<(), sqlx::Error>> {
        Box::pin(async move {
            let mut this = self;
            this.checkpoint();
            this.conn.close().map_err(|(_, err)| to_sqlx(err))
        })
    }

    fn control<'a>(
        &'a mut self,
        sql: &'a str,
    ) -> BoxFuture<'a, std::result::Result<(), sqlx::Error>> {
        Box::pin(async move {
            if sql == "ROLLBACK" && !self.in_transaction() {
                return Ok(());
            }
            // A prepared statement runs only the first of several (rusqlite
            // checks for a tail only with its `extra_check` feature): text
            // of several statements, which the store itself never passes,
            // is run whole rather than cut short.
            if sql.contains(';') {
                return self.patiently(|conn| conn.execute_batch(sql)).await;
            }
            // One statement (BEGIN IMMEDIATE, COMMIT, a savepoint: several on
            // every write) is prepared once and kept, not parsed on each call.
            self.patiently(|conn| conn.prepare_cached(sql)?.raw_execute().map(drop))
                .await
        })
    }
}

/// One migration of `migrations/sqlite`, embedded at build time.
struct Migration {
    version: i64,
    description: &'static str,
    sql: &'static str,
}

/// The SQLite migrations, in order. The bookkeeping is sqlx's
/// (`_sqlx_migrations`, SHA-384 checksums), so a database migrated by an
/// earlier startgate is recognised and one migrated here reads the same.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        description: "initial",
        sql: include_str!("../../../migrations/sqlite/0001_initial.sql"),
    },
    Migration {
        version: 2,
        description: "index what is read",
        sql: include_str!("../../../migrations/sqlite/0002_index_what_is_read.sql"),
    },
    Migration {
        version: 3,
        description: "checks without temporary tables",
        sql: include_str!("../../../migrations/sqlite/0003_checks_without_temporary_tables.sql"),
    },
    Migration {
        version: 4,
        description: "stale runs through the scope lock",
        sql: include_str!("../../../migrations/sqlite/0004_stale_runs_through_the_scope_lock.sql"),
    },
];

fn migration_failed(message: String) -> Error {
    Error::MigrationFailed {
        message,
        source: None,
    }
}

/// Applies the migrations not yet applied, each in its own transaction;
/// refuses a database whose applied migrations differ from these.
pub(crate) async fn migrate(conn: &mut LiteConnection) -> Result<()> {
    migrate_with(conn, MIGRATIONS).await
}

async fn migrate_with(conn: &mut LiteConnection, migrations: &[Migration]) -> Result<()> {
    conn.control(
        "CREATE TABLE IF NOT EXISTS _sqlx_migrations (\
            version BIGINT PRIMARY KEY, description TEXT NOT NULL, \
            installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, success BOOLEAN NOT NULL, \
            checksum BLOB NOT NULL, execution_time BIGINT NOT NULL)",
    )
    .await?;
    for migration in migrations {
        let checksum = Sha384::digest(migration.sql.as_bytes()).to_vec();
        conn.control("BEGIN IMMEDIATE").await?;
        let applied: std::result::Result<Option<(Vec<u8>, bool)>, sqlx::Error> = conn
            .patiently(|c| {
                let mut statement = c.prepare_cached(
                    "SELECT checksum, success FROM _sqlx_migrations WHERE version = ?1",
                )?;
                let mut rows = statement.query([migration.version])?;
                rows.next()?
                    .map(|row| Ok((row.get(0)?, row.get(1)?)))
                    .transpose()
            })
            .await;
        let outcome = match applied {
            Err(err) => Err(Error::from(err)),
            Ok(Some((_, false))) => Err(migration_failed(format!(
                "migration {} ({}) was left half-applied; restore the database from a backup",
                migration.version, migration.description
            ))),
            Ok(Some((recorded, true))) if recorded != checksum => Err(migration_failed(format!(
                "migration {} ({}) was applied from different SQL than this version's",
                migration.version, migration.description
            ))),
            Ok(Some(_)) => Ok(()),
            Ok(None) => apply(conn, migration, &checksum).await,
        };
        match outcome {
            Ok(()) => conn.control("COMMIT").await?,
            Err(err) => {
                let _ = conn.control("ROLLBACK").await;
                return Err(err);
            }
        }
    }
    Ok(())
}

async fn apply(conn: &mut LiteConnection, migration: &Migration, checksum: &[u8]) -> Result<()> {
    let began = Instant::now();
    conn.execute_now(migration.sql).map_err(|err| {
        migration_failed(format!(
            "migration {} ({}) failed: {err}",
            migration.version, migration.description
        ))
    })?;
    let elapsed = i64::try_from(began.elapsed().as_nanos()).unwrap_or(i64::MAX);
    conn.patiently(|c| {
        c.execute(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (?1, ?2, TRUE, ?3, ?4)",
            rusqlite::params![migration.version, migration.description, checksum, elapsed],
        )
    })
    .await?;
    Ok(())
}

/// The SQLite pools of this process, checkpointed when it exits normally
/// (`exit()`, or returning from `main`), so a host that never closes its
/// gate — PHP's shared per-process handles, a script that just ends — still
/// leaves a complete `.db` file.
static AT_EXIT: std::sync::Mutex<Vec<(u32, super::pool::WeakPool<LiteConnection>)>> =
    std::sync::Mutex::new(Vec::new());

/// Registers `pool` (a file database) to be checkpointed at process exit.
pub(crate) fn checkpoint_at_exit(pool: &super::pool::Pool<LiteConnection>) {
    static REGISTERED: std::sync::Once = std::sync::Once::new();
    REGISTERED.call_once(|| {
        extern "C" {
            fn atexit(callback: extern "C" fn()) -> std::ffi::c_int;
        }
        // SAFETY: `atexit` is the C library's; the callback is a plain
        // `extern "C"` function that lives as long as the program and does
        // not unwind (it catches panics).
        unsafe {
            atexit(checkpoint_all);
        }
    });
    let mut pools = AT_EXIT.lock().unwrap_or_else(|p| p.into_inner());
    // Forget pools that are gone, so a process opening many gates does not grow this.
    pools.retain(|(_, weak)| weak.is_alive());
    pools.push((std::process::id(), pool.downgrade()));
}

extern "C" fn checkpoint_all() {
    let _ = std::panic::catch_unwind(|| {
        let pid = std::process::id();
        let pools = AT_EXIT.lock().unwrap_or_else(|p| p.into_inner());
        // A forked child leaves its parent's connections alone.
        for (_, weak) in pools.iter().filter(|(owner, _)| *owner == pid) {
            weak.with_idle(LiteConnection::checkpoint);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(conn: &LiteConnection, sql: &str) -> Vec<Vec<String>> {
        let mut statement = conn.conn.prepare(sql).unwrap();
        let columns = statement.column_count();
        let rows = statement
            .query_map([], |row| {
                (0..columns)
                    .map(|i| {
                        let value: rusqlite::types::Value = row.get(i)?;
                        Ok(format!("{value:?}"))
                    })
                    .collect()
            })
            .unwrap();
        rows.collect::<rusqlite::Result<_>>().unwrap()
    }

    /// Opening reads the file; while another process holds it locked (here
    /// an exclusive lock on a file not yet in WAL mode, as while another
    /// process switches it or recovers its log) the open waits for the lock
    /// instead of failing, and fails only after the busy timeout.
    #[tokio::test]
    async fn opening_a_locked_file_waits_for_the_lock() {
        let db = startgate_testkit::TempDb::new("open-locked");
        let holder = Connection::open(&db.path).unwrap();
        holder
            .execute_batch("CREATE TABLE t (x); BEGIN EXCLUSIVE; INSERT INTO t VALUES (1);")
            .unwrap();
        let options = |busy_timeout| LiteOptions {
            file: Some(LiteFile {
                path: db.path.clone(),
                query: String::new(),
            }),
            busy_timeout,
        };
        let refused = LiteConnection::open(&options(Duration::from_millis(50)))
            .await
            .unwrap_err();
        assert!(refused.to_string().contains("locked"), "{refused}");

        let release = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            holder.execute_batch("COMMIT").unwrap();
            holder
        });
        let mut opened = LiteConnection::open(&options(Duration::from_secs(5)))
            .await
            .unwrap();
        drop(release.join().unwrap());
        assert_eq!(query(&opened, "PRAGMA journal_mode"), [["Text(\"wal\")"]]);
        assert_eq!(query(&opened, "SELECT x FROM t"), [["Integer(1)"]]);
        opened.checkpoint();
    }

    /// The opcodes SQLite compiles `sql` to (its parameters left unbound).
    fn opcodes(conn: &LiteConnection, sql: &str) -> Vec<String> {
        let mut statement = conn.conn.prepare(&format!("EXPLAIN {sql}")).unwrap();
        let mut rows = statement.raw_query();
        let mut out = Vec::new();
        while let Some(row) = rows.next().unwrap() {
            out.push(row.get::<_, String>(1).unwrap());
        }
        out
    }

    /// A file's connections open through the `wal` VFS: each commit's
    /// frames reach the WAL in one collected write.
    #[tokio::test]
    async fn a_file_connection_writes_each_commit_in_one_call() {
        let db = startgate_testkit::TempDb::new("wal-vfs-open");
        let options = LiteOptions {
            file: Some(LiteFile {
                path: db.path.clone(),
                query: String::new(),
            }),
            busy_timeout: Duration::from_secs(1),
        };
        let conn = LiteConnection::open(&options).await.unwrap();
        conn.conn
            .execute_batch("CREATE TABLE t (v INTEGER NOT NULL); CREATE INDEX t_v ON t (v);")
            .unwrap();
        let before = super::super::wal::tests::collected_writes();
        for v in 0..10 {
            conn.conn
                .execute("INSERT INTO t (v) VALUES (?1)", [v])
                .unwrap();
        }
        assert_eq!(super::super::wal::tests::collected_writes() - before, 10);
    }

    /// How many temporary b-trees (`OpenEphemeral`) `sql` opens each time it runs.
    fn ephemeral_tables(conn: &LiteConnection, sql: &str) -> usize {
        opcodes(conn, sql)
            .iter()
            .filter(|op| *op == "OpenEphemeral")
            .count()
    }

    /// A migrated in-memory database.
    async fn migrated_in_memory() -> LiteConnection {
        let options = LiteOptions {
            file: None,
            busy_timeout: Duration::from_secs(1),
        };
        let mut conn = LiteConnection::open(&options).await.unwrap();
        migrate(&mut conn).await.unwrap();
        conn
    }

    /// SQLite's statements of an accepted start fill no temporary b-tree
    /// (`OpenEphemeral`): each would be opened, filled and closed per start.
    #[tokio::test]
    async fn the_accepted_path_builds_no_temporary_b_tree() {
        use crate::store::ops::{SQLITE_INSERT_QUEUED, SQLITE_LATEST_ADMITTED};
        use crate::store::sql::{Dialect, SqlText};
        let conn = migrated_in_memory().await;
        let sql = SqlText::new(Dialect::Sqlite);
        for template in [SQLITE_LATEST_ADMITTED, SQLITE_INSERT_QUEUED] {
            let text = sql.render(template);
            let opcodes = opcodes(&conn, &text);
            assert!(
                opcodes
                    .iter()
                    .any(|op| op == "OpenRead" || op == "OpenWrite"),
                "{text}"
            );
            assert_eq!(ephemeral_tables(&conn, &text), 0, "{text}");
        }
        // The one statement PostgreSQL runs would have built three: the
        // subquery's row, the selected row, RETURNING's.
        let fused = sql.render(
            "INSERT INTO {runs} (operation, tenant_id, provider_connection_id, status, initiator, \
             actor_id, fencing_token, lease_us, tenant_active, created_at, status_changed_at) \
             SELECT 'o', 't', 'c', 'queued', 'user', 'a', COALESCE(l.token, 0) + 1, 1, 1, 1, 1 \
             FROM (SELECT 1 AS one) one LEFT JOIN (SELECT fencing_token AS token FROM {runs} \
             WHERE tenant_id = 't' AND provider_connection_id = 'c' AND fencing_token IS NOT NULL \
             ORDER BY fencing_token DESC LIMIT 1) l ON TRUE \
             ON CONFLICT DO NOTHING RETURNING id",
        );
        assert_eq!(ephemeral_tables(&conn, &fused), 3, "{fused}");
    }

    /// `reap_stale` finds stale runs through the scope lock, the index of
    /// exactly the active runs, whatever the history holds: stale runs have
    /// no index of their own (migration 4) and the table is never scanned.
    #[tokio::test]
    async fn stale_runs_are_found_through_the_scope_lock() {
        use crate::store::ops::REAP_STALE;
        use crate::store::sql::{Dialect, SqlText};
        let conn = migrated_in_memory().await;
        let indexes = query(
            &conn,
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'operation_runs' \
             AND name NOT LIKE 'sqlite_%' ORDER BY name",
        );
        assert_eq!(
            indexes,
            [
                ["Text(\"operation_runs_by_tenant\")"],
                ["Text(\"operation_runs_fencing\")"],
                ["Text(\"operation_runs_one_active_per_scope\")"],
                ["Text(\"operation_runs_pending\")"],
            ]
        );
        // A history of terminal runs, and the planner's statistics of it.
        conn.conn
            .execute_batch(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000) \
                 INSERT INTO operation_runs (operation, tenant_id, provider_connection_id, status, \
                 initiator, actor_id, lease_us, tenant_active, created_at, status_changed_at, \
                 fencing_token) SELECT 'inventory.sync', 't', 'c' || i, 'succeeded', 'user', 'a', \
                 1, 1, 1, 1, 1 FROM n; ANALYZE;",
            )
            .unwrap();
        let sql = SqlText::new(Dialect::Sqlite).render(REAP_STALE);
        // The plan's steps (its parameters left unbound).
        let mut statement = conn
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap();
        let mut rows = statement.raw_query();
        let mut details = Vec::new();
        while let Some(row) = rows.next().unwrap() {
            details.push(row.get::<_, String>(3).unwrap());
        }
        assert!(
            details.iter().any(|d| d
                == "SCAN operation_runs USING INDEX operation_runs_one_active_per_scope"),
            "{details:?}"
        );
        assert!(
            !details.iter().any(|d| d == "SCAN operation_runs"),
            "{details:?}"
        );
    }

    const RUN: &str = "INSERT INTO operation_runs (operation, tenant_id, provider_connection_id, \
        status, initiator, actor_id, lease_us, tenant_active, created_at, status_changed_at, \
        fencing_token) VALUES ('inventory.sync', 't', ?1, ?2, 'user', 'a', 1, 1, 1, 1, 1)";

    /// Migration 3 rebuilds both tables of a database that already holds
    /// runs: every row, id and index survives, ids continue above the old
    /// high-water mark, the checks still refuse, and an insert no longer
    /// builds a temporary b-tree per check.
    #[tokio::test]
    async fn migration_3_keeps_every_row_and_id_and_drops_the_temporary_tables() {
        let options = LiteOptions {
            file: None,
            busy_timeout: Duration::from_secs(1),
        };
        let mut conn = LiteConnection::open(&options).await.unwrap();
        migrate_with(&mut conn, &MIGRATIONS[..2]).await.unwrap();
        for (connection, status) in [("c1", "succeeded"), ("c2", "queued"), ("c3", "blocked")] {
            conn.conn.execute(RUN, [connection, status]).unwrap();
            conn.conn
                .execute(
                    "INSERT INTO start_attempts (attempted_at, source, operation, tenant_id, \
                     actor_id, initiator, outcome, run_id) \
                     VALUES (1, 'start', 'inventory.sync', 't', 'a', 'user', 'accepted', \
                     last_insert_rowid())",
                    [],
                )
                .unwrap();
        }
        // The newest run is gone (as if pruned): its id must still not come back.
        conn.conn
            .execute("DELETE FROM operation_runs WHERE id = 3", [])
            .unwrap();
        let tables = "SELECT * FROM operation_runs ORDER BY id";
        let audit = "SELECT * FROM start_attempts ORDER BY id";
        let sequence = "SELECT name, seq FROM sqlite_sequence ORDER BY name";
        let indexes = "SELECT name, tbl_name, replace(replace(sql, char(10), ''), ' ', '') \
                       FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL ORDER BY name";
        let before: Vec<_> = [tables, audit, sequence, indexes]
            .iter()
            .map(|sql| query(&conn, sql))
            .collect();
        assert_eq!(before[0].len(), 2);
        assert_eq!(before[2][0], ["Text(\"operation_runs\")", "Integer(3)"]);

        migrate_with(&mut conn, &MIGRATIONS[..3]).await.unwrap();

        let after: Vec<_> = [tables, audit, sequence, indexes]
            .iter()
            .map(|sql| query(&conn, sql))
            .collect();
        assert_eq!(before, after);
        assert_eq!(
            query(
                &conn,
                "SELECT version FROM _sqlx_migrations ORDER BY version"
            ),
            [["Integer(1)"], ["Integer(2)"], ["Integer(3)"]]
        );
        conn.conn.execute(RUN, ["c4", "queued"]).unwrap();
        assert_eq!(
            query(&conn, "SELECT max(id) FROM operation_runs"),
            [["Integer(4)"]]
        );
        let refused = conn.conn.execute(RUN, ["c5", "finished"]).unwrap_err();
        assert!(
            refused.to_string().contains("CHECK constraint failed"),
            "{refused}"
        );
        // The scope lock is still there.
        assert!(conn.conn.execute(RUN, ["c4", "running"]).is_err());
        let ephemeral = |sql: &str| ephemeral_tables(&conn, sql);
        assert_eq!(
            ephemeral(&RUN.replace("?1", "'c6'").replace("?2", "'queued'")),
            0
        );
        assert_eq!(
            ephemeral(
                "INSERT INTO start_attempts (attempted_at, source, operation, tenant_id, \
                 actor_id, initiator, outcome) \
                 VALUES (1, 'start', 'inventory.sync', 't', 'a', 'user', 'accepted')"
            ),
            0
        );
        assert_eq!(query(&conn, "PRAGMA integrity_check"), [["Text(\"ok\")"]]);
    }

    /// The build in `.cargo/config.toml` holds: without
    /// `SQLITE_ENABLE_MEMORY_MANAGEMENT` each connection's page cache is its
    /// own, with no process-wide mutex taken per page.
    #[test]
    fn bundled_sqlite_is_built_without_memory_management() {
        let conn = Connection::open_in_memory().unwrap();
        let mut statement = conn.prepare("PRAGMA compile_options").unwrap();
        let options: Vec<String> = statement
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        // An option libsqlite3-sys sets (not SQLite's default) is there, so
        // the list is the bundled build's.
        assert!(options.iter().any(|o| o == "ENABLE_STAT4"), "{options:?}");
        assert!(
            !options.iter().any(|o| o == "ENABLE_MEMORY_MANAGEMENT"),
            "{options:?}"
        );
    }
}
