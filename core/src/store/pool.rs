//! A connection pool that costs no round trips of its own.
//!
//! sqlx's pool pings a connection when it hands it out and again, from a
//! spawned task, when it comes back: on a one-statement PostgreSQL start that
//! was three round trips for one statement, and on SQLite two extra trips to
//! the connection's worker thread plus a wake-up of a runtime thread per call.
//! Here a connection goes back to the pool through [`Pooled::release`], which
//! the store calls after a call ended cleanly (idle, outside any transaction).
//! A lease dropped any other way (an I/O error, a client-side timeout, a
//! cancelled future) may be mid-statement: a PostgreSQL connection is then
//! closed; a SQLite connection (a file, or an in-memory database that must not
//! be lost) is kept and rolled back before its next use.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use std::future::Future;
use std::pin::Pin;

use sqlx::{ConnectOptions, Executor};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// What the pool needs of a connection: opening one, checking it is alive,
/// closing it, and transaction control (`BEGIN …`, `COMMIT`, `ROLLBACK` as
/// one plain statement: how transactions are begun and ended on a leased
/// connection, and how the pool undoes what an abandoned call left open).
pub(crate) trait TxControl: Sized + Send + 'static {
    /// How to open one.
    type Options: Send + Sync + 'static;

    /// Opens a connection.
    fn open(options: &Self::Options) -> BoxFuture<'_, Result<Self, sqlx::Error>>;

    /// Checks that the connection still works.
    fn ping(&mut self) -> BoxFuture<'_, Result<(), sqlx::Error>>;

    /// Closes the connection.
    fn close(self) -> BoxFuture<'static, Result<(), sqlx::Error>>;

    /// Runs `sql`, one transaction-control statement.
    fn control<'a>(&'a mut self, sql: &'a str) -> BoxFuture<'a, Result<(), sqlx::Error>>;
}

/// A boxed `Send` future: the store's futures must be `Send`.
pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

impl TxControl for sqlx::PgConnection {
    type Options = sqlx::postgres::PgConnectOptions;

    fn open(options: &Self::Options) -> BoxFuture<'_, Result<Self, sqlx::Error>> {
        Box::pin(options.connect())
    }

    fn ping(&mut self) -> BoxFuture<'_, Result<(), sqlx::Error>> {
        Box::pin(sqlx::Connection::ping(self))
    }

    fn close(self) -> BoxFuture<'static, Result<(), sqlx::Error>> {
        Box::pin(sqlx::Connection::close(self))
    }

    fn control<'a>(&'a mut self, sql: &'a str) -> BoxFuture<'a, Result<(), sqlx::Error>> {
        Box::pin(async move { self.execute(sql).await.map(|_| ()) })
    }
}

/// `fut`, or `None` once `limit` has passed. The timer is armed only if
/// `fut` does not finish in its first poll: a SQLite call on a free
/// connection does, and arming a timer wakes the runtime's timer driver (a
/// thread wake-up per call, for a deadline that never fires).
pub(crate) async fn within<F: Future>(limit: Duration, fut: F) -> Option<F::Output> {
    let mut fut = std::pin::pin!(fut);
    let first = std::future::poll_fn(|cx| std::task::Poll::Ready(fut.as_mut().poll(cx))).await;
    match first {
        std::task::Poll::Ready(value) => Some(value),
        std::task::Poll::Pending => tokio::time::timeout(limit, fut).await.ok(),
    }
}

/// How a pool treats its connections.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settings {
    pub max_connections: u32,
    /// Bounds the wait for a slot plus any connect or ping.
    pub acquire_timeout: Duration,
    /// Reused after being idle this long, a connection is pinged first (so a
    /// restarted server is noticed without taxing the hot path).
    pub ping_after_idle: Option<Duration>,
    /// Idle this long, a connection is closed rather than reused.
    pub idle_timeout: Option<Duration>,
    /// Keep a connection whose lease was dropped mid-call, rolling it back
    /// before reuse (SQLite), instead of closing it (PostgreSQL).
    pub keep_abandoned: bool,
}

/// A pool of `C` connections.
pub(crate) struct Pool<C: TxControl> {
    inner: Arc<Inner<C>>,
}

struct Inner<C: TxControl> {
    connect: C::Options,
    settings: Settings,
    /// One permit per connection that may exist (idle or leased).
    permits: Arc<Semaphore>,
    /// Most recently used last: reuse takes from the back, ageing from the front.
    idle: Mutex<Vec<Idle<C>>>,
}

struct Idle<C> {
    conn: C,
    since: Instant,
    abandoned: bool,
}

/// Locks `mutex` whatever a panic elsewhere left: every critical section on
/// the store's mutexes leaves its value consistent.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A pool reference that does not keep the pool alive.
pub(crate) struct WeakPool<C: TxControl>(std::sync::Weak<Inner<C>>);

impl<C: TxControl> WeakPool<C> {
    /// Whether the pool still exists.
    pub(crate) fn is_alive(&self) -> bool {
        self.0.strong_count() > 0
    }

    /// Runs `f` on the first idle connection, if the pool still exists and
    /// one is idle: synchronous, for work at process exit, when no runtime
    /// may be driven any more.
    pub(crate) fn with_idle(&self, f: impl FnOnce(&mut C)) {
        if let Some(inner) = self.0.upgrade() {
            if let Some(idle) = lock(&inner.idle).last_mut() {
                f(&mut idle.conn);
            }
        }
    }
}

impl<C: TxControl> Pool<C> {
    /// A reference that does not keep the pool alive.
    pub(crate) fn downgrade(&self) -> WeakPool<C> {
        WeakPool(Arc::downgrade(&self.inner))
    }

    pub(crate) fn new(connect: C::Options, settings: Settings) -> Pool<C> {
        Pool {
            inner: Arc::new(Inner {
                connect,
                settings,
                permits: Arc::new(Semaphore::new(settings.max_connections.max(1) as usize)),
                idle: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Waits for a free slot, then reuses an idle connection or opens one;
    /// `PoolTimedOut` after the acquire timeout.
    pub(crate) async fn acquire(&self) -> Result<Pooled<C>, sqlx::Error> {
        within(
            self.inner.settings.acquire_timeout,
            self.acquire_unbounded(),
        )
        .await
        .unwrap_or(Err(sqlx::Error::PoolTimedOut))
    }

    async fn acquire_unbounded(&self) -> Result<Pooled<C>, sqlx::Error> {
        let permit = Arc::clone(&self.inner.permits)
            .acquire_owned()
            .await
            .map_err(|_| sqlx::Error::PoolClosed)?;
        let settings = self.inner.settings;
        loop {
            let (reusable, expired) = {
                let mut idle = lock(&self.inner.idle);
                let expired = match settings.idle_timeout {
                    Some(limit) => idle
                        .iter()
                        .take_while(|i| i.since.elapsed() >= limit)
                        .count(),
                    None => 0,
                };
                let expired: Vec<Idle<C>> = idle.drain(..expired).collect();
                (idle.pop(), expired)
            };
            // Closed outside the lock; dropping a connection closes it.
            drop(expired);
            let conn = match reusable {
                None => C::open(&self.inner.connect).await?,
                Some(Idle {
                    mut conn,
                    abandoned: true,
                    ..
                }) => {
                    // Whatever the abandoned call left open is undone first
                    // ("no transaction is active" is fine).
                    let _ = conn.control("ROLLBACK").await;
                    match conn.ping().await {
                        Ok(()) => conn,
                        Err(_) => continue,
                    }
                }
                Some(Idle {
                    mut conn, since, ..
                }) => match settings.ping_after_idle {
                    Some(after) if since.elapsed() >= after => match conn.ping().await {
                        Ok(()) => conn,
                        // Dead (say, the server restarted): try the next one.
                        Err(_) => continue,
                    },
                    _ => conn,
                },
            };
            return Ok(Pooled {
                conn: Some(conn),
                pool: Arc::clone(&self.inner),
                _permit: permit,
            });
        }
    }

    /// Refuses new leases and closes the idle connections; leased ones close
    /// when their lease ends.
    pub(crate) async fn close(&self) {
        self.inner.permits.close();
        let idle: Vec<Idle<C>> = lock(&self.inner.idle).drain(..).collect();
        for Idle { conn, .. } in idle {
            let _ = conn.close().await;
        }
    }
}

/// A connection leased for one call: [`Pooled::release`] returns it to the
/// pool; dropping it abandons it (see the module docs).
pub(crate) struct Pooled<C: TxControl> {
    /// `None` only after release.
    conn: Option<C>,
    pool: Arc<Inner<C>>,
    _permit: OwnedSemaphorePermit,
}

impl<C: TxControl> Pooled<C> {
    pub(crate) fn conn(&mut self) -> Result<&mut C, sqlx::Error> {
        self.conn.as_mut().ok_or(sqlx::Error::PoolClosed)
    }

    /// Returns the connection for reuse. Only for a connection that is idle
    /// outside a transaction, with no reply pending.
    pub(crate) fn release(mut self) {
        self.put_back(false);
    }

    fn put_back(&mut self, abandoned: bool) {
        let Some(conn) = self.conn.take() else {
            return;
        };
        if self.pool.permits.is_closed() || (abandoned && !self.pool.settings.keep_abandoned) {
            return;
        }
        lock(&self.pool.idle).push(Idle {
            conn,
            since: Instant::now(),
            abandoned,
        });
        // The permit drops after the push, so the next acquire finds it.
    }
}

impl<C: TxControl> Drop for Pooled<C> {
    fn drop(&mut self) {
        self.put_back(true);
    }
}
