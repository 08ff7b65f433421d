//! `startgate`: the operator command line.

mod demo;
mod output;

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use serde_json::json;
use startgate::{Gate, Registry, RunFilter, RunStatus};

use crate::output::{Style, Table};

const EXIT_CODES: &str = "\
EXIT CODES:
    0  done
    1  refused or failed (the error's stable code says which: store_unavailable,
       run_not_found, registry_invalid, …)
    2  usage: an unknown command, a missing, extra or malformed argument

With --json every command prints one JSON document on stdout, and an error is
one JSON object on stderr: {\"code\": \"…\", \"message\": \"…\", \"field\": …}.";

/// The one start path for provider-backed operations: inspect and maintain a
/// gate's database.
#[derive(Parser)]
#[command(name = "startgate", version, after_help = EXIT_CODES)]
struct Cli {
    /// The database: a SQLite file (PATH, sqlite:PATH or sqlite://PATH), or a
    /// PostgreSQL URL postgres://USER@HOST:PORT/DB, with ?sslmode=require,
    /// verify-ca or verify-full (and &sslrootcert=CA_FILE) for TLS, and
    /// ?pool_mode=transaction behind pgbouncer
    #[arg(
        long,
        global = true,
        env = "STARTGATE_DATABASE",
        default_value = "startgate.db",
        value_name = "URL"
    )]
    database: String,
    /// PostgreSQL: the schema that holds the gate's tables and migrations
    #[arg(long, global = true, env = "STARTGATE_SCHEMA", default_value = startgate::DEFAULT_SCHEMA, value_name = "NAME")]
    schema: String,
    /// The registry TOML file (labels and reason texts; `reap` needs it)
    #[arg(long, global = true, env = "STARTGATE_REGISTRY", value_name = "FILE")]
    registry: Option<String>,
    /// Machine-readable output: one JSON document on stdout, errors as one
    /// JSON object on stderr
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Play a scripted operator session on a fresh embedded database
    Demo {
        /// Keep the demo database and print where it is
        #[arg(long)]
        keep: bool,
    },
    /// Create or update the schema (SQLite: the file is created)
    Migrate,
    /// Validate a registry file and list what it declares
    CheckRegistry {
        /// The registry TOML file
        file: String,
    },
    /// List runs, newest first (never creates a database)
    Runs(RunsArgs),
    /// Show a run: what the operator sees, its reasons and its start attempts
    /// (never creates a database)
    Explain {
        /// The run's id
        #[arg(value_parser = clap::value_parser!(i64).range(1..))]
        run_id: i64,
    },
    /// End stale runs and admit pending sequence runs (needs --registry)
    Reap,
    /// Counts from the database, over every process that shares it: starts by
    /// operation and outcome, blocked starts by reason, takeovers, reaped runs
    /// and runs by status (never creates a database)
    Stats {
        /// Print the Prometheus text exposition format instead
        #[arg(long)]
        prometheus: bool,
    },
}

#[derive(Args)]
struct RunsArgs {
    /// Only this tenant's runs
    #[arg(long, value_name = "TENANT")]
    tenant: Option<String>,
    /// Only this operation type
    #[arg(long, value_name = "OPERATION")]
    operation: Option<String>,
    /// Only runs in this status
    #[arg(long, value_parser = parse_status, value_name = "STATUS")]
    status: Option<RunStatus>,
    /// Only active (queued or running) runs
    #[arg(long)]
    active: bool,
    /// At most this many runs, 1 to 10000
    #[arg(long, default_value_t = 50, allow_negative_numbers = true,
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    limit: u32,
}

fn parse_status(text: &str) -> Result<RunStatus, String> {
    RunStatus::parse(text).ok_or_else(|| {
        let known: Vec<&str> = RunStatus::ALL.iter().map(|s| s.as_str()).collect();
        format!("not a run status (one of {})", known.join(", "))
    })
}

/// A failure with its stable code, and the exit code it ends the process with.
#[derive(Debug)]
pub struct CliError {
    code: String,
    message: String,
    field: Option<String>,
    exit: u8,
}

impl CliError {
    /// Refused input: `invalid_request`, naming the field.
    fn invalid(field: &str, message: impl Into<String>) -> Self {
        CliError {
            code: "invalid_request".into(),
            message: message.into(),
            field: Some(field.into()),
            exit: 1,
        }
    }

    /// Wrong use of the command line (exit code 2).
    fn usage(message: impl Into<String>) -> Self {
        CliError {
            code: "invalid_request".into(),
            message: message.into(),
            field: None,
            exit: 2,
        }
    }

    /// Something that must not happen did.
    pub fn internal(message: impl Into<String>) -> Self {
        CliError {
            code: "internal".into(),
            message: message.into(),
            field: None,
            exit: 1,
        }
    }

    fn report(&self, as_json: bool) {
        if as_json {
            eprintln!(
                "{}",
                json!({ "code": self.code, "message": self.message, "field": self.field })
            );
        } else {
            eprintln!("error: {}: {}", self.code, self.message);
        }
    }
}

/// A broken expectation of the demo's own script.
impl From<String> for CliError {
    fn from(message: String) -> Self {
        CliError::internal(message)
    }
}

impl From<startgate::Error> for CliError {
    fn from(err: startgate::Error) -> Self {
        CliError {
            code: err.code().to_string(),
            field: match &err {
                startgate::Error::InvalidRequest { field, .. } => Some(field.clone()),
                _ => None,
            },
            message: err.to_string(),
            exit: 1,
        }
    }
}

pub type CliResult = Result<(), CliError>;

fn main() -> ExitCode {
    // STARTGATE_LOG=info (or error, warn, debug, trace) logs each call to stderr.
    startgate::log::install();
    // Known before parsing, so a usage error is JSON too when it was asked for.
    let as_json = std::env::args().skip(1).any(|a| a == "--json");
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            use clap::error::ErrorKind;
            if matches!(
                err.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                let _ = err.print();
                return ExitCode::from(
                    if err.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                        2
                    } else {
                        0
                    },
                );
            }
            if as_json {
                // clap's text without its usage and help hints: the error
                // and what it names (a missing argument is on the next line).
                let text = err.render().to_string();
                let message: Vec<&str> = text
                    .lines()
                    .take_while(|line| !line.starts_with("Usage:"))
                    .map(str::trim)
                    .filter(|line| !line.is_empty())
                    .collect();
                let message = message.join(" ");
                CliError::usage(message.trim_start_matches("error: ")).report(true);
            } else {
                let _ = err.print();
            }
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            CliError::internal(format!("cannot start the async runtime: {err}")).report(as_json);
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(&cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            err.report(cli.json);
            ExitCode::from(err.exit)
        }
    }
}

async fn run(cli: &Cli) -> CliResult {
    match &cli.command {
        Command::Demo { keep } => demo::run(*keep, cli.registry.as_deref(), cli.json).await,
        Command::CheckRegistry { file } => check_registry(file, cli.json),
        Command::Migrate => {
            let gate = open(cli, Access::Create).await?;
            let result = gate.migrate().await;
            // Closing checkpoints SQLite: the .db file alone holds the schema.
            gate.close().await;
            result?;
            if cli.json {
                println!(
                    "{}",
                    json!({ "migrated": true, "database": startgate::redact_url(&cli.database) })
                );
            } else {
                println!(
                    "schema is up to date in {}",
                    startgate::redact_url(&cli.database)
                );
            }
            Ok(())
        }
        Command::Runs(args) => runs(cli, args).await,
        Command::Explain { run_id } => explain(cli, *run_id).await,
        Command::Reap => reap(cli).await,
        Command::Stats { prometheus } => stats(cli, *prometheus).await,
    }
}

async fn stats(cli: &Cli, prometheus: bool) -> CliResult {
    if prometheus && cli.json {
        return Err(CliError::usage(
            "--prometheus and --json are two output formats: give one",
        ));
    }
    let gate = open(cli, Access::Existing).await?;
    let stats = with_gate(gate, async |gate| Ok(gate.stats().await?)).await?;
    if prometheus {
        print!("{}", stats.to_prometheus());
        return Ok(());
    }
    if cli.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&stats).map_err(internal)?
        );
        return Ok(());
    }
    let style = Style::detect();
    let count = |n: &u64| n.to_string();
    println!("{}", style.bold("Starts"));
    if stats.counts.starts.is_empty() {
        println!("  none yet");
    } else {
        let mut table = Table::new(["OPERATION", "OUTCOME", "STARTS"]);
        for (operation, outcomes) in &stats.counts.starts {
            for (outcome, n) in outcomes {
                table.row([operation.clone(), outcome.clone(), count(n)]);
            }
        }
        print!("{}", table.render());
    }
    if !stats.counts.blocked.is_empty() {
        println!("\n{}", style.bold("Blocked, by primary reason"));
        let mut table = Table::new(["REASON", "STARTS"]);
        for (reason, n) in &stats.counts.blocked {
            table.row([reason.clone(), count(n)]);
        }
        print!("{}", table.render());
    }
    println!("\n{}", style.bold("Runs"));
    let mut table = Table::new(["STATUS", "RUNS"]);
    for (status, n) in &stats.runs {
        table.row([status.clone(), count(n)]);
    }
    print!("{}", table.render());
    println!(
        "\ntakeovers of stale runs: {}\nruns reaped: {}",
        stats.counts.takeovers, stats.counts.reaped_runs
    );
    Ok(())
}

/// Whether a command may create the database.
#[derive(PartialEq)]
enum Access {
    Create,
    Existing,
}

async fn open(cli: &Cli, access: Access) -> Result<Gate, CliError> {
    if access == Access::Existing {
        if let Some(path) = startgate::sqlite_file(&cli.database)? {
            if !path.exists() {
                let path = path.display();
                return Err(CliError::invalid(
                    "database",
                    format!(
                        "the database file \"{path}\" does not exist (this command only reads; \
                         create it with `startgate --database {path} migrate`)"
                    ),
                ));
            }
        }
    }
    let registry = match &cli.registry {
        Some(file) => Registry::from_toml_file(file)?,
        None => Registry::builder().build()?,
    };
    let options = startgate::GateOptions {
        schema: cli.schema.clone(),
        ..startgate::GateOptions::default()
    };
    Ok(Gate::open_with(&cli.database, registry, options).await?)
}

/// Runs `body` on an open gate and closes it, whatever the outcome.
async fn with_gate<F, T>(gate: Gate, body: F) -> Result<T, CliError>
where
    F: AsyncFnOnce(&Gate) -> Result<T, CliError>,
{
    let result = body(&gate).await;
    gate.close().await;
    result
}

fn check_registry(file: &str, as_json: bool) -> CliResult {
    match Registry::from_toml_file(file) {
        Ok(registry) => {
            let warnings = registry_warnings(&registry);
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
                    json!({ "valid": true, "operations": ops, "sequences": seqs, "warnings": warnings })
                );
            } else {
                let style = Style::detect();
                println!("{} {file} is valid\n", style.good("✔"));
                for warning in &warnings {
                    println!("{} warning: {warning}", style.bad("!"));
                }
                if !warnings.is_empty() {
                    println!();
                }
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
            Err(CliError {
                code: "registry_invalid".into(),
                message: format!("{file} has {} problem(s)", problems.0.len()),
                field: None,
                exit: 1,
            })
        }
        Err(other) => Err(other.into()),
    }
}

/// What a valid registry probably did not mean.
fn registry_warnings(registry: &Registry) -> Vec<String> {
    let mut warnings = Vec::new();
    if registry.operations().next().is_none() {
        warnings.push(
            "the registry declares no operations: every start will be refused as unknown_operation"
                .to_string(),
        );
    }
    for op in registry.operations() {
        if op.effective_checks().is_empty() {
            warnings.push(format!(
                "operation {:?} requires no readiness checks: it starts even without a connection that works",
                op.name
            ));
        }
    }
    warnings
}

async fn runs(cli: &Cli, args: &RunsArgs) -> CliResult {
    let filter = RunFilter {
        tenant_id: args.tenant.clone(),
        operation: args.operation.clone(),
        status: args.status,
        active: args.active,
        limit: Some(args.limit),
    };
    let gate = open(cli, Access::Existing).await?;
    let runs = with_gate(gate, async |gate| Ok(gate.list_runs(&filter).await?)).await?;
    if cli.json {
        println!("{}", serde_json::to_string_pretty(&runs).map_err(internal)?);
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

fn internal(err: impl std::fmt::Display) -> CliError {
    CliError::internal(err.to_string())
}

async fn explain(cli: &Cli, run_id: i64) -> CliResult {
    let gate = open(cli, Access::Existing).await?;
    let (run, attempts, shown, label) = with_gate(gate, async |gate| {
        let run = gate.get_run(run_id).await?;
        let attempts = gate.attempts_for_run(run_id).await?;
        let shown = gate.present_run(&run);
        let label = gate.registry().label_of(&run.operation).to_string();
        Ok((run, attempts, shown, label))
    })
    .await?;
    if cli.json {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &json!({ "run": run, "presentation": shown, "attempts": attempts })
            )
            .map_err(internal)?
        );
        return Ok(());
    }
    let style = Style::detect();
    println!(
        "{}",
        style.bold(&format!("Run {} · {label} ({})", run.id, run.operation))
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

async fn reap(cli: &Cli) -> CliResult {
    if cli.registry.is_none() {
        return Err(CliError::usage(
            "reap needs the registry (--registry FILE or $STARTGATE_REGISTRY): pending runs are \
             preflighted with it",
        ));
    }
    let gate = open(cli, Access::Existing).await?;
    let result = with_gate(gate, async |gate| Ok(gate.reap_stale().await?)).await?;
    if cli.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&result).map_err(internal)?
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
