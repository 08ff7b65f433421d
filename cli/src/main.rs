//! `startgate`: the operator command line.

mod demo;
mod output;

use std::process::ExitCode;

use serde_json::json;
use startgate::{Gate, Registry, RunFilter, RunStatus};

use crate::output::{Style, Table};

const USAGE: &str = "\
startgate — the one start path for provider-backed operations

USAGE:
    startgate [--database URL] [--schema NAME] [--registry FILE] [--json] <COMMAND>

COMMANDS:
    demo                  play a scripted operator session on a fresh embedded database
    migrate               create or update the schema
    check-registry FILE   validate a registry and list what it declares
    runs                  list runs   [--tenant T] [--operation OP] [--status S] [--active] [--limit N]
    explain RUN_ID        a run, what the operator sees, its reasons and its start attempts
    reap                  end stale runs and admit pending sequence runs (needs --registry)

OPTIONS:
    --database URL   a SQLite path or sqlite: URL, or a postgres:// URL (default: startgate.db,
                     or $STARTGATE_DATABASE); postgres://…?sslmode=require for TLS
    --schema NAME    PostgreSQL: the schema of the gate's tables (default: startgate,
                     or $STARTGATE_SCHEMA)
    --registry FILE  the registry TOML (default: $STARTGATE_REGISTRY; labels fall back to operation names)
    --json           machine-readable output
    -h, --help       this text
    -V, --version    the version
";

struct Options {
    database: String,
    schema: String,
    registry: Option<String>,
    json: bool,
    command: Vec<String>,
}

fn parse(args: Vec<String>) -> Result<Options, String> {
    let mut options = Options {
        database: std::env::var("STARTGATE_DATABASE").unwrap_or_else(|_| "startgate.db".into()),
        schema: std::env::var("STARTGATE_SCHEMA")
            .unwrap_or_else(|_| startgate::DEFAULT_SCHEMA.into()),
        registry: std::env::var("STARTGATE_REGISTRY").ok(),
        json: false,
        command: Vec::new(),
    };
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--database" => options.database = args.next().ok_or("--database needs a URL")?,
            "--schema" => options.schema = args.next().ok_or("--schema needs a name")?,
            "--registry" => options.registry = Some(args.next().ok_or("--registry needs a file")?),
            "--json" => options.json = true,
            _ => options.command.push(arg),
        }
    }
    Ok(options)
}

#[derive(Debug)]
struct CliError(String);

impl From<startgate::Error> for CliError {
    fn from(err: startgate::Error) -> Self {
        CliError(format!("{}: {err}", err.code()))
    }
}

impl From<String> for CliError {
    fn from(message: String) -> Self {
        CliError(message)
    }
}

type CliResult = Result<(), CliError>;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") || args.is_empty() {
        print!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    if args.iter().any(|a| a == "-V" || a == "--version") {
        println!("startgate {}", startgate::VERSION);
        return ExitCode::SUCCESS;
    }
    let options = match parse(args) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("error: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(CliError(message)) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(options: Options) -> CliResult {
    let command: Vec<&str> = options.command.iter().map(String::as_str).collect();
    match command.as_slice() {
        ["demo", rest @ ..] => demo::run(rest, options.registry.as_deref()).await,
        ["check-registry", file] => check_registry(file, options.json),
        ["migrate"] => {
            let gate = open(&options, false).await?;
            gate.migrate().await?;
            if options.json {
                println!(
                    "{}",
                    json!({ "migrated": true, "database": options.database })
                );
            } else {
                println!("schema is up to date in {}", options.database);
            }
            Ok(())
        }
        ["runs", rest @ ..] => runs(&options, rest).await,
        ["explain", run_id] => explain(&options, run_id).await,
        ["reap"] => reap(&options).await,
        _ => Err(CliError(format!(
            "unknown command {:?}\n\n{USAGE}",
            options.command.join(" ")
        ))),
    }
}

async fn open(options: &Options, need_registry: bool) -> Result<Gate, CliError> {
    let registry = match &options.registry {
        Some(file) => Registry::from_toml_file(file)?,
        None if need_registry => {
            return Err(CliError(
                "this command needs the registry (--registry FILE or $STARTGATE_REGISTRY): \
                 pending runs are preflighted with it"
                    .into(),
            ))
        }
        None => Registry::builder().build()?,
    };
    let gate_options = startgate::GateOptions {
        schema: options.schema.clone(),
        ..startgate::GateOptions::default()
    };
    Ok(Gate::open_with(&options.database, registry, gate_options).await?)
}

fn check_registry(file: &str, as_json: bool) -> CliResult {
    match Registry::from_toml_file(file) {
        Ok(registry) => {
            if as_json {
                let ops: Vec<_> = registry
                    .operations()
                    .map(|op| {
                        json!({
                            "name": op.name, "label": op.label, "capability": op.capability,
                            "checks": op.effective_checks().iter().map(|c| c.as_str()).collect::<Vec<_>>(),
                            "dispatch_timeout_seconds": op.dispatch_timeout.as_secs_f64(),
                            "lease_seconds": op.lease.as_secs_f64(),
                        })
                    })
                    .collect();
                let seqs: Vec<_> = registry
                    .sequences()
                    .map(
                        |s| json!({ "name": s.name, "label": s.label, "operations": s.operations }),
                    )
                    .collect();
                println!(
                    "{}",
                    json!({ "valid": true, "operations": ops, "sequences": seqs })
                );
            } else {
                let style = Style::detect();
                println!("{} {file} is valid\n", style.good("✔"));
                print!("{}", registry.describe());
            }
            Ok(())
        }
        Err(startgate::Error::RegistryInvalid(problems)) => {
            if as_json {
                println!("{}", json!({ "valid": false, "problems": problems.0 }));
            } else {
                let style = Style::detect();
                eprintln!(
                    "{} {file} has {} problem(s):",
                    style.bad("✖"),
                    problems.0.len()
                );
                for problem in &problems.0 {
                    eprintln!("  {problem}");
                }
            }
            Err(CliError("registry_invalid".into()))
        }
        Err(other) => Err(other.into()),
    }
}

async fn runs(options: &Options, args: &[&str]) -> CliResult {
    let mut filter = RunFilter {
        limit: Some(50),
        ..RunFilter::default()
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .copied()
                .ok_or(CliError(format!("{arg} needs a value")))
        };
        match *arg {
            "--tenant" => filter.tenant_id = Some(value()?.to_string()),
            "--operation" => filter.operation = Some(value()?.to_string()),
            "--status" => {
                let text = value()?;
                filter.status =
                    Some(RunStatus::parse(text).ok_or(CliError(format!("unknown status {text}")))?);
            }
            "--active" => filter.active = true,
            "--limit" => {
                let text = value()?;
                filter.limit = Some(
                    text.parse()
                        .map_err(|_| CliError(format!("--limit: not a number: {text}")))?,
                );
            }
            other => return Err(CliError(format!("runs: unknown option {other}"))),
        }
    }
    let gate = open(options, false).await?;
    let runs = gate.list_runs(&filter).await?;
    if options.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&runs).map_err(|e| e.to_string())?
        );
        return Ok(());
    }
    if runs.is_empty() {
        println!("no runs match");
        return Ok(());
    }
    let style = Style::detect();
    let mut table = Table::new([
        "ID",
        "OPERATION",
        "TENANT",
        "CONNECTION",
        "STATUS",
        "SINCE",
        "BY",
        "REASON",
    ]);
    for run in &runs {
        table.row([
            run.id.to_string(),
            run.operation.clone(),
            run.tenant_id.clone(),
            run.provider_connection_id
                .clone()
                .unwrap_or_else(|| "—".into()),
            style.status(run.status),
            run.since.to_string(),
            format!("{} ({})", run.actor_id, run.initiator),
            run.reason_code.clone().unwrap_or_default(),
        ]);
    }
    print!("{}", table.render());
    Ok(())
}

async fn explain(options: &Options, run_id: &str) -> CliResult {
    let run_id: i64 = run_id
        .parse()
        .map_err(|_| CliError(format!("explain: RUN_ID must be a number, not {run_id:?}")))?;
    let gate = open(options, false).await?;
    let run = gate.get_run(run_id).await?;
    let attempts = gate.attempts_for_run(run_id).await?;
    let shown = gate.present_run(&run);
    if options.json {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &json!({ "run": run, "presentation": shown, "attempts": attempts })
            )
            .map_err(|e| e.to_string())?
        );
        return Ok(());
    }
    let style = Style::detect();
    println!(
        "{}",
        style.bold(&format!(
            "Run {} · {} ({})",
            run.id,
            gate.registry().label_of(&run.operation),
            run.operation
        ))
    );
    let field = |name: &str, value: String| println!("  {:<12} {value}", style.dim(name));
    field("tenant", run.tenant_id.clone());
    field(
        "connection",
        run.provider_connection_id
            .clone()
            .unwrap_or_else(|| "— (none resolved)".into()),
    );
    if let Some(subject) = &run.subject {
        field("subject", subject.clone());
    }
    field(
        "status",
        format!("{} since {}", style.status(run.status), run.since),
    );
    field(
        "started by",
        format!("{} ({})", run.actor_id, run.initiator),
    );
    field("created", run.created_at.to_string());
    if let Some(at) = run.stale_at {
        field("stale at", at.to_string());
    }
    if let (Some(seq), Some(pos)) = (run.sequence_id, run.sequence_position) {
        field(
            "sequence",
            format!("step {} of the sequence started by run {seq}", pos + 1),
        );
    }
    if let Some(replaced) = run.replaced_run_id {
        field("replaced", format!("run {replaced} (stale)"));
    }
    println!("\n{}", style.bold("What the operator sees"));
    output::print_presentation(&style, &shown, "  ");
    if !run.reasons.is_empty() {
        println!("\n{}", style.bold("Reasons (primary first)"));
        for code in &run.reasons {
            println!("  {code}");
        }
    }
    println!(
        "\n{}",
        style.bold(&format!("Start attempts ({})", attempts.len()))
    );
    if attempts.is_empty() {
        println!("  none recorded");
    }
    let mut table = Table::new(["AT", "SOURCE", "ACTOR", "OPERATION", "OUTCOME", "RELATION"]);
    for a in &attempts {
        let relation = if a.run_id == Some(run_id) && a.outcome == startgate::Outcome::Accepted {
            match a.replaced_run_id {
                Some(old) => format!("admitted this run, taking over stale run {old}"),
                None => "admitted this run".into(),
            }
        } else if a.run_id == Some(run_id) && a.outcome == startgate::Outcome::Blocked {
            format!(
                "recorded this blocked run ({})",
                a.reason_code.clone().unwrap_or_default()
            )
        } else if a.holder_run_id == Some(run_id) {
            format!("refused: this run held the scope ({})", a.outcome)
        } else if a.replaced_run_id == Some(run_id) {
            format!(
                "took this run's scope over (run {})",
                a.run_id.unwrap_or_default()
            )
        } else {
            a.outcome.to_string()
        };
        table.row([
            a.attempted_at.to_string(),
            a.source.clone(),
            a.actor_id.clone(),
            a.operation.clone(),
            a.outcome.to_string(),
            relation,
        ]);
    }
    if !attempts.is_empty() {
        print!("{}", indent(&table.render(), "  "));
    }
    Ok(())
}

fn indent(text: &str, prefix: &str) -> String {
    text.lines().map(|l| format!("{prefix}{l}\n")).collect()
}

async fn reap(options: &Options) -> CliResult {
    let gate = open(options, true).await?;
    let result = gate.reap_stale().await?;
    if options.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&result).map_err(|e| e.to_string())?
        );
        return Ok(());
    }
    println!("reaped {} stale run(s)", result.reaped.len());
    for run in &result.reaped {
        println!(
            "  run {} {} on ({}, {}) → failed (run_lease_expired)",
            run.id,
            run.operation,
            run.tenant_id,
            run.provider_connection_id.clone().unwrap_or_default()
        );
    }
    for next in &result.next {
        if let Some(run) = &next.run {
            println!(
                "  pending run {} {} → {} (dispatch it if accepted)",
                run.id, run.operation, next.outcome
            );
        }
    }
    Ok(())
}
