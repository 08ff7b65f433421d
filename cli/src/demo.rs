//! `startgate demo`: a scripted operator session on a fresh embedded database.
//! Every line it prints comes from a real call into the core; the demo clock is
//! a manual clock so a stale takeover can be shown without waiting.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use startgate::{
    Actor, Clock, Completion, CompletionOutcome, Consent, Gate, GateOptions, Presentation,
    ProviderConnection, Registry, Run, SequenceRequest, StartRequest, StartResult, Timestamp,
};

use crate::output::{print_presentation, symbol, Style};
use crate::{CliError, CliResult};

const EXAMPLE_REGISTRY: &str = include_str!("../../examples/registry.toml");

/// Set with --json: the narrative is not printed, only the JSON summary.
static QUIET: AtomicBool = AtomicBool::new(false);

macro_rules! say {
    ($($arg:tt)*) => {
        if !QUIET.load(Ordering::Relaxed) {
            println!($($arg)*);
        }
    };
}

struct Demo {
    gate: Gate,
    style: Style,
    seen: BTreeSet<String>,
    shown: Vec<Presentation>,
}

impl Demo {
    fn time(&self) -> String {
        let now = self.gate.clock().now().to_string();
        now[11..16].to_string()
    }

    fn scene(&self, text: &str) {
        say!("\n{}  {text}", self.style.bold(&self.time()));
    }

    fn note(&self, text: &str) {
        say!("       {}", self.style.dim(text));
    }

    fn show(&mut self, result: &StartResult) {
        let shown = self.gate.present(result);
        self.seen.insert(shown.status_label.clone());
        if !QUIET.load(Ordering::Relaxed) {
            print_presentation(&self.style, &shown, "       ");
        }
        self.shown.push(shown);
    }

    fn show_run(&mut self, run: &Run) {
        let shown = self.gate.present_run(run);
        if !QUIET.load(Ordering::Relaxed) {
            print_presentation(&self.style, &shown, "       ");
        }
        self.shown.push(shown);
    }

    fn later(&self, minutes: u64) -> CliResult {
        self.gate.advance_clock(Duration::from_secs(minutes * 60))?;
        Ok(())
    }
}

fn actor(id: &str, capabilities: &[&str]) -> Actor {
    Actor::member(id, capabilities.iter().copied())
}

/// Today at 09:00 UTC: a demo reads better at the start of a working day.
fn nine_o_clock() -> Timestamp {
    let now = Clock::System.now().as_micros();
    let day = 86_400 * 1_000_000;
    Timestamp::from_micros(now - now.rem_euclid(day) + 9 * 3_600 * 1_000_000)
}

/// Plays the demo. With `json`, the narrative is not printed: one JSON
/// document says what the operators saw (every presentation) and where the
/// kept database is.
pub async fn run(keep: bool, registry_file: Option<&str>, json: bool) -> CliResult {
    QUIET.store(json, Ordering::Relaxed);
    let registry = match registry_file {
        Some(file) => Registry::from_toml_file(file)?,
        None => Registry::from_toml_str(EXAMPLE_REGISTRY)?,
    };
    for needed in ["inventory.sync", "restore.execute", "compliance.snapshot"] {
        if registry.operation(needed).is_none() {
            return Err(CliError::internal(format!(
                "the demo needs operation {needed} in the registry"
            )));
        }
    }
    if registry.sequence("onboarding.bootstrap").is_none() {
        return Err(CliError::internal(
            "the demo needs sequence onboarding.bootstrap in the registry",
        ));
    }
    let path: PathBuf =
        std::env::temp_dir().join(format!("startgate-demo-{}.db", std::process::id()));
    remove_db(&path);
    let options = GateOptions {
        clock: Clock::manual(nine_o_clock()),
        ..GateOptions::default()
    };
    let gate = Gate::open_with(&path.display().to_string(), registry, options).await?;
    gate.migrate().await?;
    let mut demo = Demo {
        gate,
        style: Style::detect(),
        seen: BTreeSet::new(),
        shown: Vec::new(),
    };
    let result = play(&mut demo).await;
    demo.gate.close().await;
    if keep {
        say!(
            "\nThe demo database is kept at {}. Explore it:",
            path.display()
        );
        say!("  startgate --database {} runs", path.display());
        say!("  startgate --database {} explain 1", path.display());
    } else {
        remove_db(&path);
    }
    if json && result.is_ok() {
        println!(
            "{}",
            serde_json::json!({
                "database": keep.then(|| path.display().to_string()),
                "presentations": demo.shown,
            })
        );
    }
    result
}

fn remove_db(path: &std::path::Path) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

async fn play(d: &mut Demo) -> CliResult {
    let s = d.style;
    say!(
        "{}",
        s.bold("startgate demo — a morning at the Contoso MSP admin console")
    );
    say!(
        "{}",
        s.dim("Every result below is a real call into the gate on a fresh SQLite database (WAL). The clock is a demo clock.")
    );

    let graph = ProviderConnection {
        display_name: "Microsoft Graph (contoso)".into(),
        ..ProviderConnection::ready("contoso", "graph-main", "microsoft_graph")
    };
    let fabrikam = ProviderConnection {
        display_name: "Microsoft Graph (fabrikam)".into(),
        consent: Consent::Missing,
        ..ProviderConnection::ready("fabrikam", "graph-fab", "microsoft_graph")
    };
    d.gate.upsert_connection(&graph).await?;
    d.gate.upsert_connection(&fabrikam).await?;
    say!(
        "\n{}",
        s.bold("Provider connections (readiness facts only, no secrets)")
    );
    for c in d
        .gate
        .list_connections("contoso")
        .await?
        .into_iter()
        .chain(d.gate.list_connections("fabrikam").await?)
    {
        say!(
            "       {:<9} {:<11} consent {:<8} credential {:<8} health {}",
            c.tenant_id,
            c.id,
            c.consent,
            c.credential,
            c.health
        );
    }

    let alice = actor(
        "alice",
        &[
            "inventory.sync",
            "compliance.read",
            "restore.execute",
            "tenant.manage",
            "provider.manage",
        ],
    );
    d.scene("alice clicks “Inventory sync” on contoso");
    let first = d
        .gate
        .start(&StartRequest::new(
            "inventory.sync",
            "contoso",
            alice.clone(),
        ))
        .await?;
    d.show(&first);
    let run1 = first
        .run
        .clone()
        .ok_or("an accepted start returns its run".to_string())?;
    let token1 = run1
        .fencing_token
        .ok_or("an accepted run carries its fencing token".to_string())?;
    d.note(&format!(
        "host: dispatch SyncInventoryJob(run_id={}, provider_connection_id={}, fencing_token={token1})",
        run1.id,
        first.provider_connection_id.as_deref().unwrap_or("?")
    ));

    d.later(1)?;
    d.scene("bob, in another browser tab, clicks “Inventory sync” on contoso too");
    let bob = actor("bob", &["inventory.sync"]);
    let again = d
        .gate
        .start(&StartRequest::new("inventory.sync", "contoso", bob))
        .await?;
    d.show(&again);
    d.note("nothing was inserted: bob is pointed at alice's run");

    d.scene("carol starts “Restore” of restore point 17 on the same connection");
    let carol = actor("carol", &["restore.execute"]);
    let busy = d
        .gate
        .start(&StartRequest::new("restore.execute", "contoso", carol).with_subject("17"))
        .await?;
    d.show(&busy);

    d.later(1)?;
    d.scene("alice clicks “Inventory sync” on fabrikam, whose admin never granted consent");
    let blocked = d
        .gate
        .start(&StartRequest::new(
            "inventory.sync",
            "fabrikam",
            alice.clone(),
        ))
        .await?;
    d.show(&blocked);
    d.note(
        "a blocked run is recorded for the audit trail; it holds nothing and is never dispatched",
    );

    d.scene("mallory, who is not a member of contoso, tries “Inventory sync” there");
    let outsider = d
        .gate
        .start(&StartRequest::new(
            "inventory.sync",
            "contoso",
            Actor::non_member("mallory"),
        ))
        .await?;
    d.show(&outsider);
    d.note("404 and nothing else: no run id, no connection name, no reason");

    d.scene("dave, a read-only member, tries “Restore” on contoso");
    let dave = actor("dave", &["compliance.read"]);
    let forbidden = d
        .gate
        .start(&StartRequest::new("restore.execute", "contoso", dave).with_subject("17"))
        .await?;
    d.show(&forbidden);

    d.later(1)?;
    d.scene(&format!("a worker picks up run {}", run1.id));
    let running = d.gate.mark_running(run1.id, token1).await?;
    d.note(&format!(
        "mark_running → {} (lease until {})",
        running.status,
        running
            .stale_at
            .map(|t| t.to_string()[11..16].to_string())
            .unwrap_or_default()
    ));
    d.note("…then the worker's VM disappears: no heartbeat, no completion");

    d.later(12)?;
    d.scene("erin clicks “Compliance snapshot” on contoso");
    let erin = actor("erin", &["compliance.read"]);
    let takeover = d
        .gate
        .start(&StartRequest::new("compliance.snapshot", "contoso", erin))
        .await?;
    d.show(&takeover);
    if let Some(old) = takeover.replaced_run_id {
        let old_run = d.gate.get_run(old).await?;
        d.note(&format!(
            "the stale run {old} was ended in the same atomic step as this admission:"
        ));
        d.show_run(&old_run);
    }
    d.scene(&format!(
        "the lost worker comes back and tries to complete run {}",
        run1.id
    ));
    match d
        .gate
        .complete(&Completion::new(
            run1.id,
            token1,
            CompletionOutcome::Succeeded,
        ))
        .await
    {
        Ok(_) => {
            return Err(CliError::internal(
                "a fenced worker was allowed to complete",
            ))
        }
        Err(err) => d.note(&format!("refused: {}: {err}", err.code())),
    }
    let snapshot = takeover
        .run
        .clone()
        .ok_or("an accepted start returns its run".to_string())?;
    let snapshot_token = snapshot.fencing_token.ok_or("missing token".to_string())?;
    d.gate.mark_running(snapshot.id, snapshot_token).await?;
    d.later(2)?;
    let done = d
        .gate
        .complete(&Completion::new(
            snapshot.id,
            snapshot_token,
            CompletionOutcome::Succeeded,
        ))
        .await?;
    d.scene(&format!("the snapshot worker finishes run {}", snapshot.id));
    d.show_run(&done.run);
    d.note(&format!(
        "notify erin: {}",
        if done.notify_initiator {
            "yes (she started it)"
        } else {
            "no"
        }
    ));

    d.later(5)?;
    d.scene("fabrikam's admin grants consent; alice starts “Onboarding bootstrap” on fabrikam");
    d.gate
        .upsert_connection(&ProviderConnection {
            consent: Consent::Granted,
            ..fabrikam
        })
        .await?;
    let onboarding = d
        .gate
        .start_sequence(&SequenceRequest::named(
            "onboarding.bootstrap",
            "fabrikam",
            alice.clone(),
        ))
        .await?;
    d.show(&onboarding);
    for pending in &onboarding.pending {
        d.note(&format!(
            "pending: run {} {}",
            pending.id,
            d.gate.registry().label_of(&pending.operation)
        ));
    }
    let mut current = onboarding
        .run
        .clone()
        .filter(|_| onboarding.accepted_run().is_some());
    while let Some(run) = current {
        let token = run.fencing_token.ok_or("missing token".to_string())?;
        d.later(1)?;
        d.gate.mark_running(run.id, token).await?;
        d.later(2)?;
        let ended = d
            .gate
            .complete(&Completion::new(
                run.id,
                token,
                CompletionOutcome::Succeeded,
            ))
            .await?;
        d.scene(&format!(
            "{} (run {}) succeeded",
            d.gate.registry().label_of(&run.operation),
            run.id
        ));
        match &ended.next {
            Some(next) => {
                d.note("complete() admitted the next pending step; the host dispatches it:");
                d.show(next);
            }
            None => d.note("no pending step left: onboarding is done"),
        }
        current = ended.next.and_then(|n| n.run);
    }

    d.scene(&format!(
        "carol asks: “why was my restore refused?” → startgate explain {}",
        run1.id
    ));
    for attempt in d.gate.attempts_for_run(run1.id).await? {
        let what = if attempt.holder_run_id == Some(run1.id) {
            format!("{} · this run held the scope", attempt.outcome)
        } else if attempt.replaced_run_id == Some(run1.id) {
            format!("{} · took this stale run over", attempt.outcome)
        } else {
            format!("{} · admitted this run", attempt.outcome)
        };
        d.note(&format!(
            "{}  {:<6} {:<20} {what}",
            &attempt.attempted_at.to_string()[11..16],
            attempt.actor_id,
            attempt.operation
        ));
    }

    say!("\n{}", s.bold("What the operators saw"));
    for (label, tone) in [
        ("queued", startgate::Tone::Success),
        ("already running", startgate::Tone::Info),
        ("scope busy", startgate::Tone::Warning),
        ("blocked", startgate::Tone::Danger),
        ("not found", startgate::Tone::Danger),
        ("not allowed", startgate::Tone::Danger),
    ] {
        let mark = if d.seen.contains(label) {
            s.tone(tone, symbol(tone))
        } else {
            s.bad("missing")
        };
        say!("       {mark} {label}");
    }
    let missing: Vec<&str> = [
        "queued",
        "already running",
        "scope busy",
        "blocked",
        "not found",
        "not allowed",
    ]
    .into_iter()
    .filter(|l| !d.seen.contains(*l))
    .collect();
    if !missing.is_empty() {
        return Err(CliError::internal(format!(
            "the demo did not show: {}",
            missing.join(", ")
        )));
    }
    Ok(())
}
