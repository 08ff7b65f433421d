//! Test helpers shared by the workspace's tests: throw-away SQLite files and
//! PostgreSQL databases. The PostgreSQL server (and pgbouncer) are started by
//! `scripts/postgres-up` / `scripts/pgbouncer-up` when they are not running,
//! so tests never skip for want of a server.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::{Connection, PgConnection};

pub mod conformance;
pub mod tls;

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs `scripts/NAME` and panics when it fails.
pub fn run_script(name: &str) {
    let status = Command::new(repo_root().join("scripts").join(name))
        .status()
        .unwrap_or_else(|e| panic!("cannot run scripts/{name}: {e}"));
    assert!(status.success(), "scripts/{name} failed");
}

/// Runs `pg_ctlcluster ACTION` (`stop`, `start`, `restart`; fast mode) on the
/// local cluster of the newest PostgreSQL version, and panics when it fails.
/// The fault tests use it; it needs the rights of root or postgres.
pub fn pg_ctlcluster(action: &str) {
    let version = std::fs::read_dir("/etc/postgresql")
        .expect("/etc/postgresql")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .max_by(|a, b| version_key(a).total_cmp(&version_key(b)))
        .expect("a PostgreSQL cluster");
    let status = Command::new("pg_ctlcluster")
        .args(["--skip-systemctl-redirect", &version, "main", action])
        .args(["-m", "fast"])
        .status()
        .expect("pg_ctlcluster");
    assert!(status.success(), "pg_ctlcluster {action} failed");
}

fn version_key(version: &str) -> f64 {
    version.parse().unwrap_or(0.0)
}

fn unique(tag: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "{tag}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    )
}

/// A fresh SQLite database file, removed (with its WAL files) on drop.
pub struct TempDb {
    /// The file.
    pub path: PathBuf,
}

impl TempDb {
    /// A new, not yet existing file under the temp directory.
    pub fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join("startgate-tests");
        std::fs::create_dir_all(&dir).expect("temp dir");
        let db = TempDb {
            path: dir.join(format!("{}.db", unique(tag))),
        };
        db.remove();
        db
    }

    /// Its `sqlite://` URL.
    pub fn url(&self) -> String {
        format!("sqlite://{}", self.path.display())
    }

    fn remove(&self) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.path.display()));
        }
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        self.remove();
    }
}

/// The PostgreSQL server the tests use; override with `STARTGATE_TEST_POSTGRES`.
pub fn admin_url() -> String {
    std::env::var("STARTGATE_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// The port of pgbouncer (transaction mode) in front of that server.
pub fn pgbouncer_port() -> u16 {
    std::env::var("PGBOUNCER_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(6433)
}

/// A connection to the server's maintenance database, starting the server if needed.
pub async fn admin() -> PgConnection {
    match PgConnection::connect(&admin_url()).await {
        Ok(conn) => conn,
        Err(_) => {
            run_script("postgres-up");
            PgConnection::connect(&admin_url())
                .await
                .unwrap_or_else(|e| panic!("PostgreSQL at {} is unreachable: {e}", admin_url()))
        }
    }
}

/// The schema of the gate's relations on PostgreSQL (the default of
/// `GateOptions::schema`); tests that read the tables with plain SQL name it.
pub const PG_SCHEMA: &str = "startgate";

/// A PostgreSQL database created for one test; drop it with [`PgTestDb::drop_now`].
pub struct PgTestDb {
    /// The database name.
    pub name: String,
    /// The server's URL without a database (`postgres://user@host:port`).
    base: String,
    /// Query parameters every URL of this database carries (`?sslmode=…`).
    params: String,
}

impl PgTestDb {
    /// Creates an empty database on the tests' server.
    pub async fn create(tag: &str) -> PgTestDb {
        let mut conn = admin().await;
        let admin = admin_url();
        let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
        PgTestDb::create_with(&mut conn, base, "", tag).await
    }

    /// Creates an empty database through `admin` on the server at `base`;
    /// its URLs carry `params` (e.g. `?sslmode=require`).
    pub async fn create_with(
        admin: &mut PgConnection,
        base: &str,
        params: &str,
        tag: &str,
    ) -> PgTestDb {
        let name = format!("startgate_test_{}", unique(tag));
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut *admin)
            .await
            .expect("create test database");
        PgTestDb {
            name,
            base: base.to_string(),
            params: params.to_string(),
        }
    }

    /// A direct URL to this database.
    pub fn url(&self) -> String {
        format!("{}/{}{}", self.base, self.name, self.params)
    }

    /// A URL through pgbouncer in transaction mode (started when needed).
    pub fn pooled_url(&self) -> String {
        run_script("pgbouncer-up");
        format!(
            "postgres://postgres@127.0.0.1:{}/{}?pool_mode=transaction",
            pgbouncer_port(),
            self.name
        )
    }

    /// Empties every startgate table and restarts the id sequences; where
    /// the connection facts come from a host table through a view
    /// (tests/conformance/host_view.sql), that table is emptied instead.
    pub async fn reset(&self) {
        let mut conn = PgConnection::connect(&self.url()).await.expect("connect");
        sqlx::raw_sql(
            "TRUNCATE startgate.operation_runs, startgate.start_attempts RESTART IDENTITY; \
             DO $$ BEGIN \
               IF (SELECT relkind FROM pg_class \
                   WHERE oid = to_regclass('startgate.provider_connections')) = 'r' THEN \
                 TRUNCATE startgate.provider_connections; \
               END IF; \
               IF to_regclass('public.host_tenant_connections') IS NOT NULL THEN \
                 TRUNCATE public.host_tenant_connections; \
               END IF; \
             END $$",
        )
        .execute(&mut conn)
        .await
        .expect("truncate");
        conn.close().await.ok();
    }

    /// The host application writing its own connection table
    /// (tests/conformance/host_view.sql) from a contract connection document.
    pub async fn host_save_connection(&self, doc: &serde_json::Value) -> Result<(), String> {
        let mut conn = PgConnection::connect(&self.url())
            .await
            .map_err(|e| e.to_string())?;
        sqlx::query("SELECT public.host_save_connection($1::jsonb)")
            .bind(doc.to_string())
            .execute(&mut conn)
            .await
            .map_err(|e| format!("host_save_connection: {e}"))?;
        conn.close().await.ok();
        Ok(())
    }

    /// Replaces the gate's connection table with a view over a host table
    /// (tests/conformance/host_view.sql). The database must be migrated.
    pub async fn use_host_view(&self) {
        let sql = std::fs::read_to_string(repo_root().join("tests/conformance/host_view.sql"))
            .expect("tests/conformance/host_view.sql");
        let mut conn = PgConnection::connect(&self.url()).await.expect("connect");
        sqlx::raw_sql(&sql)
            .execute(&mut conn)
            .await
            .expect("host view");
        conn.close().await.ok();
    }

    /// Drops the database, closing whatever still uses it (pgbouncer's pool).
    pub async fn drop_now(self) {
        let mut conn = PgConnection::connect(&format!("{}/postgres{}", self.base, self.params))
            .await
            .expect("connect to drop");
        sqlx::query(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ))
        .execute(&mut conn)
        .await
        .expect("drop test database");
        conn.close().await.ok();
    }
}
