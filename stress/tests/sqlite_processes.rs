//! The scope lock on SQLite, proven with 8 OS processes sharing one database file.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{hammer, hammer_at_least, hammer_tasks, prepare, report, runtime, totals};
use startgate_stress::{check, load_history, Verdict};
use startgate_testkit::TempDb;

#[test]
fn eight_processes_never_hold_one_scope_twice() {
    let db = TempDb::new("hammer");
    prepare(&db.url(), false);
    // Abandoned runs hold their scope for a 400 ms lease, so admissions come
    // at a pace set by the clock, not by how fast a start is: the workers go
    // on for at least 6 s (about 50 admissions a second on 3 hot tenants).
    let (events, verdict, seed) = hammer_at_least(&db.url(), 8, 5_000, Duration::from_secs(6));
    let totals = totals(&events);
    report("sqlite", 8, &verdict, &totals, seed);
    at_least_200_admissions_and_every_outcome(&verdict, &totals);
}

/// Writers of one process that wait for each other commit as one group (one
/// `BEGIN IMMEDIATE` transaction, each under a savepoint): four processes of
/// eight concurrent workers each, on two runtime threads, still admit nobody
/// twice, and every admission reported to a caller is in the database.
#[test]
fn four_processes_of_eight_concurrent_workers_never_hold_one_scope_twice() {
    let db = TempDb::new("hammer-tasks");
    prepare(&db.url(), false);
    let (events, verdict, seed) = hammer_tasks(&db.url(), 4, 8, 300, Duration::from_secs(6));
    let totals = totals(&events);
    report("sqlite, 8 tasks per process", 4, &verdict, &totals, seed);
    at_least_200_admissions_and_every_outcome(&verdict, &totals);
}

fn at_least_200_admissions_and_every_outcome(verdict: &Verdict, totals: &BTreeMap<String, u64>) {
    assert!(
        verdict.accepted_results >= 200,
        "too few admissions: {totals:?}"
    );
    for outcome in ["scope_busy", "deduped", "takeover", "completed", "advanced"] {
        assert!(
            totals.get(outcome).copied().unwrap_or(0) > 0,
            "no {outcome} happened: {totals:?}"
        );
    }
}

/// On SQLite the unique indexes are the second line: writers take the
/// database's write lock (`BEGIN IMMEDIATE`) and a start inserts only when the
/// scope's latest run is not active, so even without the indexes the hammer
/// admits nobody twice. A double admission forged with plain SQL afterwards
/// is reported: the checker is not vacuous on SQLite's data either.
#[test]
fn without_the_unique_indexes_the_write_lock_still_holds_and_a_forged_double_is_caught() {
    let db = TempDb::new("no-lock");
    prepare(&db.url(), true);
    let (events, verdict, seed) = hammer(&db.url(), 8, 150);
    report(
        "sqlite without unique indexes",
        8,
        &verdict,
        &totals(&events),
        seed,
    );
    let forged = runtime().block_on(async {
        let pool = sqlx::SqlitePool::connect(&db.url()).await.expect("pool");
        // A second run admitted into the scope of the latest admitted run,
        // with the same token and while it was still active.
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO operation_runs (operation, tenant_id, provider_connection_id, status, \
             initiator, actor_id, fencing_token, lease_us, tenant_active, created_at, \
             status_changed_at, queued_at, stale_at) \
             SELECT operation, tenant_id, provider_connection_id, 'queued', initiator, 'forger', \
             fencing_token, lease_us, tenant_active, queued_at, queued_at, queued_at, stale_at \
             FROM operation_runs WHERE fencing_token IS NOT NULL ORDER BY id DESC LIMIT 1 \
             RETURNING id",
        )
        .fetch_one(&pool)
        .await
        .expect("forge");
        pool.close().await;
        id
    });
    let (runs, attempts) = runtime()
        .block_on(load_history(&db.url()))
        .expect("history");
    let verdict = check(&runs, &[], &attempts);
    let text = verdict.violations.join("\n");
    assert!(
        text.contains("share fencing token")
            && text.contains(&format!("admitted run {forged} has no accepted audit row")),
        "the checker missed the forged run {forged}: {text}"
    );
}
