//! The scope lock on SQLite, proven with 8 OS processes sharing one database file.

mod common;

use common::{hammer, prepare, report, totals, without_scope_index};
use startgate_testkit::TempDb;

#[test]
fn eight_processes_never_hold_one_scope_twice() {
    let db = TempDb::new("hammer");
    prepare(&db.url(), false);
    let (events, verdict, seed) = hammer(&db.url(), 8, 5_000);
    let totals = totals(&events);
    report("sqlite", 8, &verdict, &totals, seed);
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

#[test]
fn without_the_scope_index_the_checker_sees_double_admission() {
    let db = TempDb::new("no-lock");
    prepare(&db.url(), true);
    without_scope_index(&db.url(), 8, 150);
}
