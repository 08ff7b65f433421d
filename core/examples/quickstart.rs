// The README's Rust quickstart; `core/tests/readme.rs` runs it and checks
// that the README shows exactly this file.

use startgate::{
    Actor, Completion, CompletionOutcome, Gate, ProviderConnection, Registry, StartRequest,
};

#[tokio::main]
async fn main() -> startgate::Result<()> {
    let registry = Registry::from_toml_str(
        r#"
        [operations."inventory.sync"]
        label = "Inventory sync"
        capability = "inventory.sync"
        requires = ["tenant_active", "connection_enabled", "consent", "credential", "health"]
        "#,
    )?;
    // A file path (or "sqlite://startgate.db") keeps the data; ":memory:" is for trying it out.
    let gate = Gate::open("sqlite::memory:", registry).await?;
    gate.migrate().await?;
    gate.upsert_connection(&ProviderConnection::ready(
        "contoso",
        "graph-main",
        "microsoft_graph",
    ))
    .await?;

    // The operator clicks "Inventory sync".
    let alice = Actor::member("alice", ["inventory.sync"]);
    let result = gate
        .start(&StartRequest::new("inventory.sync", "contoso", alice))
        .await?;
    let feedback = gate.present(&result);
    println!("{} — {}", feedback.title, feedback.body); // Inventory sync queued — …

    // Accepted: dispatch the job with the run id, pinned connection and fencing token.
    if let Some(run) = result.accepted_run() {
        let token = run.fencing_token.unwrap_or_default();
        // … in the worker:
        gate.mark_running(run.id, token).await?;
        let done = gate
            .complete(&Completion::new(
                run.id,
                token,
                CompletionOutcome::Succeeded,
            ))
            .await?;
        println!("{}", gate.present_run(&done.run).title); // Inventory sync succeeded
        assert!(done.notify_initiator);
    }
    Ok(())
}
