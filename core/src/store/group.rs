//! SQLite write transactions committed in groups.
//!
//! SQLite admits one writer at a time, and most of a small write's cost is
//! its commit: every page the transaction changed is written to the WAL
//! again, with its checksum (a start changes eight pages, one per table and
//! index it touches). When other writers of this process are already waiting,
//! a finished write transaction is not committed: it is handed, still open,
//! to the next writer, which does its work in it under a savepoint, and so on
//! for up to [`MAX_MEMBERS`] writers; the last one commits for all. Writers
//! touching the same tables share their pages, so a group of eight starts
//! writes a fraction of eight starts' pages and runs one COMMIT.
//!
//! No caller learns its outcome before the commit that makes it durable:
//! every member waits for the group's commit before its call returns. A
//! member whose own work fails is rolled back to its savepoint and the group
//! goes on without it. When the group cannot commit (its connection failed,
//! or a member's future was dropped while it held the transaction), nothing
//! in it was written, and every other member's transaction is run again, as a
//! transaction that lost a race is. A lone writer (nobody waiting) commits at
//! once, exactly as before.
//!
//! Across processes nothing changes: the group is one `BEGIN IMMEDIATE`
//! transaction holding SQLite's write lock, and the unique indexes decide.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use super::db::{Tx, WriterTurn};
use super::lite::LiteConnection;
use super::pool::{lock, Pool};
use super::{SResult, StoreError};
use crate::error::Error;

/// The most writers one group commits together: a bound on the first
/// member's wait and on the transaction's size.
const MAX_MEMBERS: u32 = 16;

/// Why a member's transaction is run again: the group it joined was undone.
const GROUP_UNDONE: &str = "a write transaction grouped with this one was undone";

/// This process's SQLite writers: whose turn it is, who is waiting to write
/// in a group, and the group left open for the next writer.
pub(crate) struct Writers {
    turn: Arc<tokio::sync::Mutex<()>>,
    /// Write transactions waiting for their turn (they may join a group).
    joining: AtomicUsize,
    /// The group handed on and not yet taken, with its open transaction
    /// (always with room for another member: a full group is committed).
    open: Mutex<Option<Open>>,
    /// Groups committed (with a lone writer's transaction, a group of one).
    commits: AtomicU64,
}

struct Open {
    tx: Tx,
    group: Arc<Group>,
    members: u32,
}

/// One group's outcome, for the members waiting for it.
#[derive(Default)]
struct Group {
    outcome: Mutex<Option<Settled>>,
    settled: Notify,
}

/// How a group ended.
enum Settled {
    Committed,
    /// Rolled back or lost before its commit: nothing of it was written.
    Undone,
    /// Its COMMIT failed.
    Failed(Error),
}

impl Group {
    fn settle(&self, outcome: Settled) {
        *lock(&self.outcome) = Some(outcome);
        self.settled.notify_waiters();
    }

    /// The outcome as one member's: an undone group is a lost race (its
    /// members run again), a failed commit is each member's failure.
    fn outcome(&self) -> Option<SResult<()>> {
        lock(&self.outcome).as_ref().map(|outcome| match outcome {
            Settled::Committed => Ok(()),
            Settled::Undone => Err(StoreError::Retry(GROUP_UNDONE)),
            Settled::Failed(err) => Err(StoreError::Gate(err.shared_copy())),
        })
    }
}

/// A write transaction's place in its group, from its turn to the commit.
pub(crate) struct Member {
    group: Arc<Group>,
    /// Members so far, this one included.
    members: u32,
    /// Whether it joined an open group (and so works under a savepoint).
    joined: bool,
    turn: WriterTurn,
}

/// Counts a writer as waiting to join while it waits for its turn.
struct Joining<'a>(&'a AtomicUsize);

impl<'a> Joining<'a> {
    fn new(count: &'a AtomicUsize) -> Joining<'a> {
        count.fetch_add(1, Ordering::AcqRel);
        Joining(count)
    }
}

impl Drop for Joining<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

async fn statement(tx: &mut Tx, sql: &str) -> Result<(), sqlx::Error> {
    crate::metrics::round_trip();
    tx.control(sql).await
}

/// Commits `open` and tells its members; the outcome, as theirs.
async fn commit(open: Open, commits: &AtomicU64) -> SResult<()> {
    commits.fetch_add(1, Ordering::Relaxed);
    let (outcome, mine) = match open.tx.commit().await {
        Ok(()) => (Settled::Committed, Ok(())),
        // The COMMIT was sent: a failure other than SQLite's own refusal
        // leaves its fate unknown, as for any write.
        Err(err) => {
            let err = Error::from(StoreError::from(err).after_write_sent());
            let mine = Err(StoreError::Gate(err.shared_copy()));
            (Settled::Failed(err), mine)
        }
    };
    open.group.settle(outcome);
    mine
}

/// Undoes `tx`, whose group then cannot commit: its members run again.
async fn undo(tx: Tx, group: &Group, healthy: bool) {
    tx.roll_back(healthy).await;
    group.settle(Settled::Undone);
}

impl Writers {
    pub(crate) fn new() -> Writers {
        Writers {
            turn: Arc::new(tokio::sync::Mutex::new(())),
            joining: AtomicUsize::new(0),
            open: Mutex::new(None),
            commits: AtomicU64::new(0),
        }
    }

    fn take_open(&self) -> Option<Open> {
        lock(&self.open).take()
    }

    /// The writer turn for anything but a grouped write transaction (single
    /// statements, migrations): a group left open is committed first.
    pub(crate) async fn exclusive_turn(&self) -> WriterTurn {
        let turn = Arc::clone(&self.turn).lock_owned().await;
        if let Some(open) = self.take_open() {
            // Its members hear the outcome; this caller's own work is next.
            let _ = commit(open, &self.commits).await;
        }
        turn
    }

    /// Begins a write transaction: in the group the previous writer left
    /// open (under a savepoint), or in a new one (`BEGIN IMMEDIATE`).
    pub(crate) async fn begin(&self, pool: &Pool<LiteConnection>) -> SResult<(Tx, Member)> {
        let turn = {
            let _waiting = Joining::new(&self.joining);
            Arc::clone(&self.turn).lock_owned().await
        };
        if let Some(mut open) = self.take_open() {
            return match statement(&mut open.tx, "SAVEPOINT member").await {
                Ok(()) => {
                    let member = Member {
                        group: open.group,
                        members: open.members + 1,
                        joined: true,
                        turn,
                    };
                    Ok((open.tx, member))
                }
                Err(err) => {
                    undo(open.tx, &open.group, false).await;
                    Err(err.into())
                }
            };
        }
        let tx = Tx::begin_sqlite(pool.acquire().await?, "BEGIN IMMEDIATE", None).await?;
        let member = Member {
            group: Arc::default(),
            members: 1,
            joined: false,
            turn,
        };
        Ok((tx, member))
    }

    /// Ends a member's work (`value`, its result so far): commits the group,
    /// or hands it on to a waiting writer and waits for its commit.
    pub(crate) async fn end<T>(&self, mut tx: Tx, member: Member, value: SResult<T>) -> SResult<T> {
        let Member {
            group,
            members,
            joined,
            turn,
        } = member;
        let value = match value {
            Ok(value) if !joined => Ok(value),
            Ok(value) => match statement(&mut tx, "RELEASE member").await {
                Ok(()) => Ok(value),
                Err(err) => {
                    undo(tx, &group, false).await;
                    return Err(StoreError::from(err));
                }
            },
            // Only its own work is undone; the group goes on.
            Err(err) if joined && err.leaves_connection_healthy() => {
                let undone = match statement(&mut tx, "ROLLBACK TO member").await {
                    Ok(()) => statement(&mut tx, "RELEASE member").await,
                    Err(err) => Err(err),
                };
                if undone.is_err() {
                    undo(tx, &group, false).await;
                    return Err(err);
                }
                Err(err)
            }
            Err(err) => {
                undo(tx, &group, err.leaves_connection_healthy()).await;
                return Err(err);
            }
        };
        let open = Open {
            tx,
            group: Arc::clone(&group),
            members,
        };
        let outcome = if members < MAX_MEMBERS && self.joining.load(Ordering::Acquire) > 0 {
            *lock(&self.open) = Some(open);
            drop(turn);
            self.outcome(group).await
        } else {
            let outcome = commit(open, &self.commits).await;
            drop(turn);
            outcome
        };
        value.and_then(|value| outcome.map(|()| value))
    }

    /// Waits for `group`'s outcome. Whenever the turn comes back to this
    /// member, nobody else holds the group: it is still open (nobody joined
    /// it in the meantime, so this member commits it), or it was lost with a
    /// member dropped mid-transaction.
    async fn outcome(&self, group: Arc<Group>) -> SResult<()> {
        let waiting = Waiting {
            writers: self,
            group,
        };
        loop {
            let settled = waiting.group.settled.notified();
            let mut settled = std::pin::pin!(settled);
            settled.as_mut().enable();
            if let Some(outcome) = waiting.group.outcome() {
                return outcome;
            }
            tokio::select! {
                biased;
                () = &mut settled => {}
                turn = Arc::clone(&self.turn).lock_owned() => {
                    match waiting.take_own_open() {
                        // Its outcome is read at the top of the loop.
                        Some(open) => {
                            let _ = commit(open, &self.commits).await;
                        }
                        None if waiting.group.outcome().is_none() => {
                            waiting.group.settle(Settled::Undone);
                        }
                        None => {}
                    }
                    drop(turn);
                }
            }
        }
    }
}

/// A member waiting for its group. Dropped by the last member still
/// waiting while the group sits open (every member's call was abandoned),
/// it commits the group itself, so SQLite's write lock is not held until
/// this process's next write.
struct Waiting<'a> {
    writers: &'a Writers,
    group: Arc<Group>,
}

impl Waiting<'_> {
    /// The open group, if it is this member's.
    fn take_own_open(&self) -> Option<Open> {
        let mut open = lock(&self.writers.open);
        match open.as_ref() {
            Some(o) if Arc::ptr_eq(&o.group, &self.group) => open.take(),
            _ => None,
        }
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        let mut open = lock(&self.writers.open);
        let abandoned = match open.as_ref() {
            // Its one other holder is the open slot: no member is left.
            Some(o) => Arc::ptr_eq(&o.group, &self.group) && Arc::strong_count(&self.group) == 2,
            None => false,
        };
        if abandoned {
            if let Some(o) = open.take() {
                self.writers.commits.fetch_add(1, Ordering::Relaxed);
                o.tx.commit_now();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rusqlite::Connection;
    use startgate_testkit::TempDb;

    use super::super::lite::{LiteFile, LiteOptions};
    use super::super::pool::Settings;
    use super::*;

    struct Fixture {
        db: TempDb,
        writers: Arc<Writers>,
        pool: Arc<Pool<LiteConnection>>,
    }

    fn fixture(tag: &str) -> Fixture {
        let db = TempDb::new(tag);
        Connection::open(&db.path)
            .unwrap()
            .execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (x INTEGER PRIMARY KEY);")
            .unwrap();
        let options = LiteOptions {
            file: Some(LiteFile {
                path: db.path.clone(),
                query: String::new(),
            }),
            busy_timeout: Duration::from_secs(5),
        };
        let settings = Settings {
            max_connections: 8,
            acquire_timeout: Duration::from_secs(5),
            ping_after_idle: None,
            idle_timeout: None,
            keep_abandoned: true,
        };
        Fixture {
            db,
            writers: Arc::new(Writers::new()),
            pool: Arc::new(Pool::new(options, settings)),
        }
    }

    /// What another connection sees committed.
    fn committed(db: &TempDb) -> Vec<i64> {
        let conn = Connection::open(&db.path).unwrap();
        let mut statement = conn.prepare("SELECT x FROM t ORDER BY x").unwrap();
        let rows = statement.query_map([], |row| row.get(0)).unwrap();
        rows.collect::<rusqlite::Result<_>>().unwrap()
    }

    fn insert(x: i64) -> String {
        format!("INSERT INTO t (x) VALUES ({x})")
    }

    /// One grouped write of `x`; inside its transaction it lets the other
    /// tasks run (so they queue for the turn), and it fails when told to.
    async fn write(
        writers: &Writers,
        pool: &Pool<LiteConnection>,
        x: i64,
        fail: bool,
    ) -> SResult<()> {
        let (mut tx, member) = writers.begin(pool).await?;
        let value = async {
            tx.control(&insert(x)).await?;
            tokio::task::yield_now().await;
            if fail {
                return Err(StoreError::Gate(Error::internal(format!("refused {x}"))));
            }
            Ok(())
        }
        .await;
        writers.end(tx, member, value).await
    }

    /// Eight writers, every fifth write failing: each call's answer comes
    /// after its row is committed (another connection sees it), a failed
    /// write leaves nothing while its group commits the others, and the
    /// writers that queued meanwhile committed together.
    #[tokio::test]
    async fn waiting_writers_commit_together_and_answer_after_the_commit() {
        let f = fixture("groups");
        let tasks: Vec<_> = (0..8)
            .map(|task| {
                let (writers, pool, path) = (f.writers.clone(), f.pool.clone(), f.db.path.clone());
                tokio::spawn(async move {
                    let reader = Connection::open(path).unwrap();
                    for i in 0..25 {
                        let x = task * 100 + i;
                        let fail = x % 5 == 0;
                        let result = write(&writers, &pool, x, fail).await;
                        let seen: i64 = reader
                            .query_row("SELECT count(*) FROM t WHERE x = ?1", [x], |r| r.get(0))
                            .unwrap();
                        match result {
                            Ok(()) => {
                                assert!(!fail && seen == 1, "{x}: answered before its commit")
                            }
                            Err(StoreError::Gate(err)) => {
                                assert!(fail, "{x}: {err}");
                                assert_eq!(err.to_string(), format!("internal error: refused {x}"));
                                assert_eq!(seen, 0, "{x}: a failed write left its row");
                            }
                            Err(other) => panic!("{x}: {other:?}"),
                        }
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        let expected: Vec<i64> = (0..8)
            .flat_map(|task| (0..25).map(move |i| task * 100 + i))
            .filter(|x| x % 5 != 0)
            .collect();
        assert_eq!(committed(&f.db), expected);
        let commits = f.writers.commits.load(Ordering::Relaxed);
        assert!(
            commits <= 200 / 4,
            "{commits} commits for 200 writes: the waiting writers did not share them"
        );
    }

    /// Holds the turn from the test until released: queued behind the
    /// current holder, it takes the turn when that one hands it on.
    async fn take_turn_next(writers: &Arc<Writers>) -> WriterTurn {
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let turn = Arc::clone(&writers.turn);
        tokio::spawn(async move {
            let _ = sender.send(turn.lock_owned().await);
        });
        tokio::task::yield_now().await;
        receiver.await.unwrap()
    }

    /// A writer that has begun a group and written 1 in it, and waits for
    /// the returned signal to end its part.
    async fn first_member(f: &Fixture) -> (tokio::task::JoinHandle<SResult<()>>, Arc<Notify>) {
        let (in_tx, in_tx_seen) = tokio::sync::oneshot::channel();
        let go = Arc::new(Notify::new());
        let member = {
            let (writers, pool, go) = (f.writers.clone(), f.pool.clone(), go.clone());
            tokio::spawn(async move {
                let (mut tx, member) = writers.begin(&pool).await?;
                tx.control(&insert(1)).await?;
                let _ = in_tx.send(());
                go.notified().await;
                writers.end(tx, member, Ok(())).await
            })
        };
        in_tx_seen.await.unwrap();
        (member, go)
    }

    /// A member dropped while it holds the group's transaction: nothing of
    /// the group is written, and the member that handed it on is told to
    /// run again (a lost race), not that it committed.
    #[tokio::test]
    async fn a_member_dropped_mid_transaction_sends_the_group_round_again() {
        let f = fixture("group-dropped");
        let (first, go) = first_member(&f).await;
        let (joined, joined_seen) = tokio::sync::oneshot::channel();
        let second = {
            let (writers, pool) = (f.writers.clone(), f.pool.clone());
            tokio::spawn(async move {
                let (mut tx, _member) = writers.begin(&pool).await.unwrap();
                tx.control(&insert(2)).await.unwrap();
                let _ = joined.send(());
                std::future::pending::<()>().await;
            })
        };
        while f.writers.joining.load(Ordering::Acquire) == 0 {
            tokio::task::yield_now().await;
        }
        go.notify_one();
        joined_seen.await.unwrap();
        second.abort();
        assert!(second.await.unwrap_err().is_cancelled());
        match first.await.unwrap() {
            Err(StoreError::Retry(why)) => assert_eq!(why, GROUP_UNDONE),
            other => panic!("the first member was told {other:?}"),
        }
        assert_eq!(committed(&f.db), Vec::<i64>::new());
        // The abandoned connection is rolled back before its next use.
        write(&f.writers, &f.pool, 3, false).await.unwrap();
        assert_eq!(committed(&f.db), vec![3]);
        assert_eq!(f.writers.commits.load(Ordering::Relaxed), 1);
    }

    /// Every member of an open group abandoned while it waits (say, each
    /// caller's deadline passed): the last one dropped commits the group, so
    /// its rows are kept and SQLite's write lock is free for other processes
    /// without waiting for this one's next write.
    #[tokio::test]
    async fn the_last_member_abandoned_commits_the_open_group() {
        let f = fixture("group-abandoned");
        let (member, go) = first_member(&f).await;
        // A writer about to join (so the group is handed on), and the turn
        // taken by the test before the member can take it back.
        let joiner = Joining::new(&f.writers.joining);
        let turn = {
            let next = take_turn_next(&f.writers);
            let mut next = std::pin::pin!(next);
            tokio::select! {
                biased;
                turn = &mut next => turn,
                () = async { go.notify_one(); std::future::pending().await } => unreachable!(),
            }
        };
        assert!(
            lock(&f.writers.open).is_some(),
            "the group was not handed on"
        );
        member.abort();
        assert!(member.await.unwrap_err().is_cancelled());
        drop((joiner, turn));
        assert!(lock(&f.writers.open).is_none());
        assert_eq!(committed(&f.db), vec![1]);
        let other_process = Connection::open(&f.db.path).unwrap();
        other_process
            .execute_batch(&format!("BEGIN IMMEDIATE; {}; COMMIT;", insert(2)))
            .unwrap();
        assert_eq!(committed(&f.db), vec![1, 2]);
        assert_eq!(f.writers.commits.load(Ordering::Relaxed), 1);
    }
}
