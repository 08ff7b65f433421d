//! Test helpers shared by the workspace's tests: throw-away SQLite files and
//! PostgreSQL databases. The PostgreSQL server (and pgbouncer) are started by
//! `scripts/postgres-up` / `scripts/pgbouncer-up` when they are not running,
//! so tests never skip for want of a server.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::{Connection, PgConnection};

pub mod conformance;

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

/// A PostgreSQL database created for one test; drop it with [`PgTestDb::drop_now`].
pub struct PgTestDb {
    /// The database name.
    pub name: String,
}

impl PgTestDb {
    /// Creates an empty database.
    pub async fn create(tag: &str) -> PgTestDb {
        let name = format!("startgate_test_{}", unique(tag));
        let mut conn = admin().await;
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .expect("create test database");
        conn.close().await.ok();
        PgTestDb { name }
    }

    /// A direct URL to this database.
    pub fn url(&self) -> String {
        let admin = admin_url();
        let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
        format!("{base}/{}", self.name)
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

    /// Empties every startgate table and restarts the id sequences.
    pub async fn reset(&self) {
        let mut conn = PgConnection::connect(&self.url()).await.expect("connect");
        sqlx::query(
            "TRUNCATE operation_runs, start_attempts, provider_connections RESTART IDENTITY",
        )
        .execute(&mut conn)
        .await
        .expect("truncate");
        conn.close().await.ok();
    }

    /// Drops the database, closing whatever still uses it (pgbouncer's pool).
    pub async fn drop_now(self) {
        let mut conn = admin().await;
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
