//! Runs every conformance vector of `tests/conformance/` against the Rust API.

mod support;

use support::conformance::{run_all, Store};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_vectors_pass_on_sqlite() {
    let report = run_all(Store::Sqlite).await;
    assert!(report.passed >= 25, "only {} scenarios ran", report.passed);
}
