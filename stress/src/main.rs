//! `startgate-stress worker`: one OS process hammering hot scopes with random
//! starts, sequences, heartbeats, completions, abandoned runs (which go stale and
//! get taken over) and reaps. It prints one JSON line per accepted result it
//! received and a summary line; the tests check the database against them.
//!
//! `startgate-stress check --database URL`: reads such event lines (from any
//! surface's workers) on stdin, checks the database's history against them and
//! prints the verdict as JSON; exits 1 when there is any violation.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use startgate::{
    Actor, Completion, CompletionOutcome, ErrorCode, Gate, GateOptions, Outcome, Registry,
    SequenceRequest, StartRequest, StartResult,
};
use startgate_stress::{now_ms, tenants, Event, Rng, REGISTRY, SKEW_REGISTRY};

struct Args {
    database: String,
    worker: u64,
    iterations: u64,
    tenants: usize,
    seed: u64,
    /// Run for this long instead of a number of iterations.
    duration_ms: Option<u64>,
    /// With `--iterations`: keep going until this long has passed too.
    /// Admissions on a hot scope are paced by the leases of abandoned runs,
    /// that is by wall time, so a proof that wants a number of them needs a
    /// run that lasts, however fast each call is.
    at_least_ms: u64,
    /// Connect, acquire and statement timeouts (fault mode keeps them short).
    timeout_ms: u64,
    /// Store errors are expected (faults are being injected): report each one
    /// as a `failure` event instead of complaining.
    faults: bool,
    /// `lease-holder`: how long to keep heartbeating.
    alive_ms: u64,
    /// `probe`: give up after this long.
    stop_after_ms: u64,
    /// `worker`: concurrent tasks sharing the process's gate, each a worker
    /// of its own (more than one runs them on two runtime threads, so their
    /// writes overlap as a server's requests do).
    tasks: u64,
}

const USAGE: &str = "usage: startgate-stress worker --database URL [--worker N] [--iterations N] [--tenants N] [--seed N]\n\
                     \x20                              [--duration-ms N | --at-least-ms N] [--timeout-ms N] [--faults 1] [--tasks N]\n\
                     \x20      startgate-stress hold --database URL [--tenants N]   (start, mark running, print, sleep)\n\
                     \x20      startgate-stress lease-holder --database URL --alive-ms N   (hold a run, heartbeat, then vanish)\n\
                     \x20      startgate-stress probe --database URL --stop-after-ms N   (start until accepted or time is up)\n\
                     \x20      startgate-stress check --database URL < events.jsonl";

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut parsed = Args {
        database: String::new(),
        worker: 0,
        iterations: 300,
        tenants: 3,
        seed: 1,
        duration_ms: None,
        at_least_ms: 0,
        timeout_ms: 20_000,
        faults: false,
        alive_ms: 3_000,
        stop_after_ms: 20_000,
        tasks: 1,
    };
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        let number = || {
            value
                .parse::<u64>()
                .map_err(|_| format!("{flag}: not a number: {value}"))
        };
        match flag.as_str() {
            "--database" => parsed.database = value.clone(),
            "--worker" => parsed.worker = number()?,
            "--iterations" => parsed.iterations = number()?,
            "--tenants" => {
                parsed.tenants = usize::try_from(number()?).map_err(|e| e.to_string())?
            }
            "--seed" => parsed.seed = number()?,
            "--duration-ms" => parsed.duration_ms = Some(number()?),
            "--at-least-ms" => parsed.at_least_ms = number()?,
            "--timeout-ms" => parsed.timeout_ms = number()?,
            "--faults" => parsed.faults = number()? != 0,
            "--alive-ms" => parsed.alive_ms = number()?,
            "--stop-after-ms" => parsed.stop_after_ms = number()?,
            "--tasks" => parsed.tasks = number()?.max(1),
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if parsed.database.is_empty() {
        return Err("--database is required".into());
    }
    Ok(parsed)
}

struct Owned {
    run_id: i64,
    token: i64,
    running: bool,
    tenant_id: String,
}

struct Worker {
    gate: Gate,
    rng: Rng,
    owned: Vec<Owned>,
    counts: BTreeMap<String, u64>,
    calls: u64,
    /// Each line is written whole (tasks share it).
    out: std::io::Stdout,
    faults: bool,
    max_call: Duration,
    last_ok_at_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Start,
    Sequence,
    /// Move an owned run forward: mark running, heartbeat or complete.
    Drive,
    /// Forget an owned run, as a crashed worker would.
    Abandon,
    Reap,
    Pause,
}

impl Worker {
    /// Owners mostly drive their runs forward, so scopes change hands often;
    /// idle workers mostly try to start something.
    fn choose(&mut self) -> Action {
        use Action::*;
        let weights: &[(Action, u64)] = if self.owned.is_empty() {
            &[(Start, 85), (Sequence, 10), (Reap, 2), (Pause, 3)]
        } else {
            &[
                (Start, 25),
                (Sequence, 3),
                (Drive, 62),
                (Abandon, 5),
                (Reap, 2),
                (Pause, 3),
            ]
        };
        let mut roll = self.rng.below(weights.iter().map(|w| w.1).sum());
        for (action, weight) in weights {
            if roll < *weight {
                return *action;
            }
            roll -= weight;
        }
        Pause
    }

    fn count(&mut self, what: &str) {
        *self.counts.entry(what.to_string()).or_default() += 1;
    }

    fn emit(&mut self, event: &Event) {
        // A worker that cannot report is useless to the checker: fail loudly.
        let line = serde_json::to_string(event).unwrap_or_else(|e| panic!("event encodes: {e}"));
        writeln!(self.out, "{line}").unwrap_or_else(|e| panic!("stdout: {e}"));
    }

    fn own(&mut self, result: &StartResult) {
        let Some(run) = result.accepted_run() else {
            return;
        };
        let Some(token) = run.fencing_token else {
            return;
        };
        self.emit(&Event::Accepted {
            run_id: run.id,
            fencing_token: token,
            tenant_id: run.tenant_id.clone(),
            replaced_run_id: result.replaced_run_id,
        });
        self.owned.push(Owned {
            run_id: run.id,
            token,
            running: false,
            tenant_id: run.tenant_id.clone(),
        });
    }

    fn record_error(&mut self, err: &startgate::Error) {
        let code = err.code();
        self.count(&format!("error:{code}"));
        let expected = match code {
            ErrorCode::InvalidTransition | ErrorCode::StoreTimeout => true,
            ErrorCode::StoreUnavailable => self.faults,
            _ => false,
        };
        if !expected {
            eprintln!("unexpected error: {err}");
        }
    }

    /// Fault mode: reports a store error with its timing.
    fn record_failure(
        &mut self,
        call: &str,
        err: &startgate::Error,
        elapsed: Duration,
        tenant: Option<&str>,
    ) {
        if !self.faults
            || !matches!(
                err.code(),
                ErrorCode::StoreTimeout | ErrorCode::StoreUnavailable
            )
        {
            return;
        }
        let at_ms = now_ms();
        if err.outcome_unknown() {
            self.count("outcome_unknown");
        }
        self.emit(&Event::Failure {
            call: call.to_string(),
            code: err.code().to_string(),
            at_ms,
            elapsed_ms: elapsed.as_millis() as u64,
            outcome_unknown: err.outcome_unknown(),
            tenant_id: tenant.map(str::to_string),
        });
    }

    async fn step(&mut self, tenant_names: &[String], actor: &Actor) {
        self.calls += 1;
        let action = self.choose();
        let tenant = &tenant_names[self.rng.below(tenant_names.len() as u64) as usize];
        let began = std::time::Instant::now();
        let failure = self.act(action, tenant, actor).await;
        let elapsed = began.elapsed();
        if action != Action::Pause {
            self.max_call = self.max_call.max(elapsed);
        }
        match failure {
            Some((call, err, tenant)) => {
                self.record_error(&err);
                self.record_failure(call, &err, elapsed, tenant.as_deref());
            }
            None if action != Action::Pause => self.last_ok_at_ms = now_ms(),
            None => {}
        }
    }

    /// Performs one action; returns the store error it ended with, if any
    /// (with what was called and for which tenant).
    async fn act(
        &mut self,
        action: Action,
        tenant: &str,
        actor: &Actor,
    ) -> Option<(&'static str, startgate::Error, Option<String>)> {
        let for_tenant = Some(tenant.to_string());
        if action == Action::Start {
            let op = if self.rng.below(2) == 0 {
                "inventory.sync"
            } else {
                "compliance.snapshot"
            };
            let request = StartRequest::new(op, tenant, actor.clone());
            match self.gate.start(&request).await {
                Ok(result) => {
                    self.count(result.outcome.as_str());
                    if result.replaced_run_id.is_some() {
                        self.count("takeover");
                    }
                    self.own(&result);
                }
                Err(err) => return Some(("start", err, for_tenant)),
            }
        } else if action == Action::Sequence {
            let request = SequenceRequest::named("pair", tenant, actor.clone());
            match self.gate.start_sequence(&request).await {
                Ok(result) => {
                    self.count(&format!("sequence_{}", result.outcome));
                    self.own(&result);
                }
                Err(err) => return Some(("start_sequence", err, for_tenant)),
            }
        } else if action == Action::Drive {
            let index = self.rng.below(self.owned.len() as u64) as usize;
            let (run_id, token, running) = {
                let o = &self.owned[index];
                (o.run_id, o.token, o.running)
            };
            let for_tenant = Some(self.owned[index].tenant_id.clone());
            if !running {
                match self.gate.mark_running(run_id, token).await {
                    Ok(_) => self.owned[index].running = true,
                    Err(err) => {
                        self.owned.swap_remove(index);
                        return Some(("mark_running", err, for_tenant));
                    }
                }
            } else if self.rng.below(5) == 0 {
                if let Err(err) = self.gate.heartbeat(run_id, token).await {
                    self.owned.swap_remove(index);
                    return Some(("heartbeat", err, for_tenant));
                }
            } else {
                let outcome = if self.rng.below(4) == 0 {
                    CompletionOutcome::Failed
                } else {
                    CompletionOutcome::Succeeded
                };
                self.owned.swap_remove(index);
                match self
                    .gate
                    .complete(&Completion::new(run_id, token, outcome))
                    .await
                {
                    Ok(done) => {
                        self.count("completed");
                        if let Some(next) = &done.next {
                            self.count("advanced");
                            self.own(next);
                        }
                    }
                    // Completing can admit the scope's next pending run.
                    Err(err) => return Some(("complete", err, for_tenant)),
                }
            }
        } else if action == Action::Abandon {
            // A worker that dies: the run goes stale and must be taken over.
            let index = self.rng.below(self.owned.len() as u64) as usize;
            self.owned.swap_remove(index);
            self.count("abandoned");
        } else if action == Action::Reap {
            match self.gate.reap_stale().await {
                Ok(reaped) => {
                    self.count("reap");
                    for next in &reaped.next {
                        if next.outcome == Outcome::Accepted {
                            self.own(next);
                        }
                    }
                }
                Err(err) => return Some(("reap_stale", err, None)),
            }
        } else {
            tokio::time::sleep(Duration::from_millis(1 + self.rng.below(3))).await;
        }
        None
    }
}

async fn run(args: Args) -> Result<(), String> {
    let registry = Registry::from_toml_str(REGISTRY).map_err(|e| e.to_string())?;
    let timeout = Duration::from_millis(args.timeout_ms);
    let options = GateOptions {
        statement_timeout: timeout,
        acquire_timeout: timeout,
        connect_timeout: timeout,
        max_connections: 2,
        ..GateOptions::default()
    };
    let gate = Gate::open_with(&args.database, registry, options)
        .await
        .map_err(|e| e.to_string())?;
    // A duration alone is no iterations, then on until it has passed.
    let (iterations, at_least_ms) = match args.duration_ms {
        Some(ms) => (0, ms),
        None => (args.iterations, args.at_least_ms),
    };
    let until = std::time::Instant::now() + Duration::from_millis(at_least_ms);
    let tasks: Vec<_> = (0..args.tasks)
        .map(|task| {
            let tenant_names = tenants(args.tenants);
            let actor = Actor::member(format!("worker-{}", args.worker), ["inventory.sync"]);
            let seed = args
                .seed
                .wrapping_mul(1_000_003)
                .wrapping_add(args.worker)
                .wrapping_add(task.wrapping_mul(7_919_000_003));
            let mut worker = Worker {
                gate: gate.clone(),
                rng: Rng::new(seed),
                owned: Vec::new(),
                counts: BTreeMap::new(),
                calls: 0,
                out: std::io::stdout(),
                faults: args.faults,
                max_call: Duration::ZERO,
                last_ok_at_ms: 0,
            };
            tokio::spawn(async move {
                for _ in 0..iterations {
                    worker.step(&tenant_names, &actor).await;
                }
                while std::time::Instant::now() < until {
                    worker.step(&tenant_names, &actor).await;
                }
                let summary = Event::Summary {
                    calls: worker.calls,
                    counts: worker.counts.clone(),
                    max_call_ms: worker.max_call.as_millis() as u64,
                    last_ok_at_ms: worker.last_ok_at_ms,
                };
                worker.emit(&summary);
            })
        })
        .collect();
    for task in tasks {
        task.await
            .map_err(|e| format!("a worker task failed: {e}"))?;
    }
    gate.close().await;
    Ok(())
}

/// Plays a worker that dies holding a scope: starts `inventory.sync` on the
/// first tenant, marks it running, prints the `accepted` event line, then
/// sleeps until it is killed.
async fn hold(args: Args) -> Result<(), String> {
    let registry = Registry::from_toml_str(REGISTRY).map_err(|e| e.to_string())?;
    let gate = Gate::open(&args.database, registry)
        .await
        .map_err(|e| e.to_string())?;
    let tenant = tenants(1).remove(0);
    let actor = Actor::member("doomed-worker", ["inventory.sync"]);
    let result = gate
        .start(&StartRequest::new("inventory.sync", tenant.as_str(), actor))
        .await
        .map_err(|e| e.to_string())?;
    let run = result
        .accepted_run()
        .ok_or(format!("not accepted: {}", result.outcome))?;
    let token = run.fencing_token.ok_or("accepted run without a token")?;
    gate.mark_running(run.id, token)
        .await
        .map_err(|e| e.to_string())?;
    let line = serde_json::to_string(&Event::Accepted {
        run_id: run.id,
        fencing_token: token,
        tenant_id: tenant,
        replaced_run_id: result.replaced_run_id,
    })
    .map_err(|e| e.to_string())?;
    println!("{line}");
    std::io::stdout().flush().map_err(|e| e.to_string())?;
    tokio::time::sleep(Duration::from_secs(3600)).await;
    Ok(())
}

fn print_line(value: serde_json::Value) -> Result<(), String> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{value}").map_err(|e| e.to_string())?;
    out.flush().map_err(|e| e.to_string())
}

async fn skew_gate(database: &str) -> Result<Gate, String> {
    let registry = Registry::from_toml_str(SKEW_REGISTRY).map_err(|e| e.to_string())?;
    Gate::open(database, registry)
        .await
        .map_err(|e| e.to_string())
}

/// The clock-skew test's holder: takes the first tenant's scope with
/// `skew.hold`, marks the run running, heartbeats every 250 ms for
/// `--alive-ms`, printing each lease deadline the store granted, then exits
/// without completing (its run goes stale one lease after the last heartbeat).
async fn lease_holder(args: Args) -> Result<(), String> {
    let gate = skew_gate(&args.database).await?;
    let tenant = tenants(1).remove(0);
    let actor = Actor::member("holder", ["inventory.sync"]);
    let give_up = std::time::Instant::now() + Duration::from_secs(20);
    let (run_id, token) = loop {
        let result = gate
            .start(&StartRequest::new(
                "skew.hold",
                tenant.as_str(),
                actor.clone(),
            ))
            .await
            .map_err(|e| e.to_string())?;
        if let Some(run) = result.accepted_run() {
            break (
                run.id,
                run.fencing_token.ok_or("accepted run without a token")?,
            );
        }
        if std::time::Instant::now() > give_up {
            return Err(format!("the scope stayed {}", result.outcome));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let run = gate
        .mark_running(run_id, token)
        .await
        .map_err(|e| e.to_string())?;
    let stale_at = run.stale_at.map(|t| t.as_micros());
    print_line(serde_json::json!({
        "event": "held", "run_id": run_id, "stale_at_us": stale_at, "local_ms": now_ms(),
    }))?;
    let until = std::time::Instant::now() + Duration::from_millis(args.alive_ms);
    while std::time::Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(250)).await;
        match gate.heartbeat(run_id, token).await {
            Ok(run) => print_line(serde_json::json!({
                "event": "heartbeat", "stale_at_us": run.stale_at.map(|t| t.as_micros()),
            }))?,
            Err(err) => {
                print_line(serde_json::json!({
                    "event": "lost", "code": err.code().as_str(), "message": err.to_string(),
                }))?;
                return Err(format!("heartbeat refused: {err}"));
            }
        }
    }
    print_line(serde_json::json!({"event": "stopped"}))
}

/// The clock-skew test's contender: starts `skew.hold` and `skew.other` in
/// turn on the first tenant every 50 ms, printing each outcome, until one is
/// accepted (it then runs and completes it, freeing the scope) or
/// `--stop-after-ms` passes.
async fn probe(args: Args) -> Result<(), String> {
    let gate = skew_gate(&args.database).await?;
    let tenant = tenants(1).remove(0);
    let actor = Actor::member(format!("probe-{}", args.worker), ["inventory.sync"]);
    let until = std::time::Instant::now() + Duration::from_millis(args.stop_after_ms);
    let mut turn = 0u64;
    while std::time::Instant::now() < until {
        let operation = if turn.is_multiple_of(2) {
            "skew.hold"
        } else {
            "skew.other"
        };
        turn += 1;
        let result = gate
            .start(&StartRequest::new(
                operation,
                tenant.as_str(),
                actor.clone(),
            ))
            .await
            .map_err(|e| e.to_string())?;
        print_line(serde_json::json!({
            "event": "probe",
            "operation": operation,
            "outcome": result.outcome.as_str(),
            "run_id": result.run.as_ref().map(|r| r.id),
            "holder_run_id": result.holder.as_ref().map(|r| r.id),
            "replaced_run_id": result.replaced_run_id,
            "local_ms": now_ms(),
        }))?;
        if let Some(run) = result.accepted_run() {
            let token = run.fencing_token.ok_or("accepted run without a token")?;
            gate.mark_running(run.id, token)
                .await
                .map_err(|e| e.to_string())?;
            gate.complete(&Completion::new(
                run.id,
                token,
                CompletionOutcome::Succeeded,
            ))
            .await
            .map_err(|e| e.to_string())?;
            return print_line(serde_json::json!({"event": "completed", "run_id": run.id}));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    print_line(serde_json::json!({"event": "gave_up"}))
}

/// Checks the history of `database` against the event lines on stdin.
async fn check_history(database: &str) -> Result<bool, String> {
    let mut events = Vec::new();
    for line in std::io::stdin().lines() {
        let line = line.map_err(|e| e.to_string())?;
        if !line.trim().is_empty() {
            let event = serde_json::from_str::<Event>(&line)
                .map_err(|e| format!("bad event line {line:?}: {e}"))?;
            events.push(event);
        }
    }
    let (runs, attempts) = startgate_stress::load_history(database)
        .await
        .map_err(|e| e.to_string())?;
    let verdict = startgate_stress::check(&runs, &events, &attempts);
    let report = serde_json::json!({
        "admitted_runs": verdict.admitted_runs,
        "accepted_results": verdict.accepted_results,
        "accepted_attempts": verdict.accepted_attempts,
        "takeovers": verdict.takeovers,
        "violations": verdict.violations,
    });
    println!("{report}");
    Ok(verdict.violations.is_empty())
}

fn main() -> ExitCode {
    let mut argv = std::env::args().skip(1);
    let command = argv.next().unwrap_or_default();
    let args = match parse_args(argv) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let mut builder = if args.tasks > 1 {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(2);
        builder
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("cannot start a runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match command.as_str() {
        "check" => match runtime.block_on(check_history(&args.database)) {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::FAILURE,
            Err(message) => {
                eprintln!("check failed: {message}");
                ExitCode::from(2)
            }
        },
        "hold" => match runtime.block_on(hold(args)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(message) => {
                eprintln!("hold failed: {message}");
                ExitCode::FAILURE
            }
        },
        "lease-holder" => match runtime.block_on(lease_holder(args)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(message) => {
                eprintln!("lease-holder failed: {message}");
                ExitCode::FAILURE
            }
        },
        "probe" => match runtime.block_on(probe(args)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(message) => {
                eprintln!("probe failed: {message}");
                ExitCode::FAILURE
            }
        },
        "worker" => match runtime.block_on(run(args)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(message) => {
                eprintln!("worker failed: {message}");
                ExitCode::FAILURE
            }
        },
        other => {
            eprintln!("unknown command {other:?}\n{USAGE}");
            ExitCode::from(2)
        }
    }
}
