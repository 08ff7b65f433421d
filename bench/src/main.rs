//! `startgate-bench`: startgate against the database work it cannot avoid, on
//! every store and surface. Every figure is a ratio against a baseline
//! measured in the same run, interleaved round by round, reported as the
//! median of the rounds with the min–max range. No figure is asserted in tests.
//!
//! ```text
//! startgate-bench all [--out BENCHMARKS.md]   # every table (~15–20 min)
//! startgate-bench smoke                       # every table, tiny (CI, ~30 s)
//! startgate-bench latency|breakdown|throughput|hot|history|surfaces|roundtrips
//! ```
//! Options: `--postgres ADMIN_URL` (default postgres://postgres@127.0.0.1:5432/postgres),
//! `--rounds N`, `--no-pgbouncer`, `--store pg-on|pg-off|pg-tls|sqlite` (repeatable; default all). `scripts/bench` builds the surfaces' drivers
//! and runs `all`.

mod roundtrips;
mod sections;
mod setup;
mod stats;
mod surfaces;

use std::path::PathBuf;
use std::process::ExitCode;

use sections::Store;
use setup::BenchResult;

/// Every section, in report order.
const ALL_SECTIONS: [&str; 7] = [
    "latency",
    "breakdown",
    "throughput",
    "hot",
    "history",
    "surfaces",
    "roundtrips",
];

/// How much work each section does.
#[derive(Debug, Clone)]
pub struct Scale {
    pub rounds: usize,
    pub latency_ops: usize,
    pub throughput_scopes: usize,
    pub hot_decisions: usize,
    pub history_sizes: Vec<usize>,
    pub history_ops: usize,
    pub surface_ops: usize,
}

impl Scale {
    fn full() -> Scale {
        Scale {
            rounds: 7,
            latency_ops: 1000,
            throughput_scopes: 1000,
            hot_decisions: 4000,
            history_sizes: vec![1_000, 100_000, 1_000_000],
            history_ops: 500,
            surface_ops: 1000,
        }
    }

    fn smoke() -> Scale {
        Scale {
            rounds: 2,
            latency_ops: 100,
            throughput_scopes: 200,
            hot_decisions: 400,
            history_sizes: vec![1_000, 5_000, 20_000],
            history_ops: 50,
            surface_ops: 100,
        }
    }
}

/// A target of the benchmark issue and whether this run met it.
#[derive(Debug, Clone)]
pub struct Target {
    pub name: String,
    pub met: bool,
    pub measured: String,
}

impl Target {
    pub fn new(name: &str, met: bool, measured: String) -> Target {
        Target {
            name: name.to_string(),
            met,
            measured,
        }
    }
}

/// One table of the report.
#[derive(Debug, Clone)]
pub struct Section {
    pub title: String,
    pub markdown: String,
    pub targets: Vec<Target>,
}

impl Section {
    pub fn new(title: &str, markdown: String, targets: Vec<Target>) -> Section {
        Section {
            title: title.to_string(),
            markdown,
            targets,
        }
    }
}

struct Args {
    sections: Vec<String>,
    smoke: bool,
    out: Option<PathBuf>,
    postgres: String,
    rounds: Option<usize>,
    pgbouncer: bool,
    /// `pg-on`, `pg-off`, `sqlite`: the stores to measure (default: all).
    stores: Vec<String>,
}

fn parse() -> Result<Args, String> {
    let mut args = Args {
        sections: Vec::new(),
        smoke: false,
        out: None,
        postgres: "postgres://postgres@127.0.0.1:5432/postgres".into(),
        rounds: None,
        pgbouncer: true,
        stores: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--out" => args.out = Some(it.next().ok_or("--out needs a file")?.into()),
            "--postgres" => args.postgres = it.next().ok_or("--postgres needs a URL")?,
            "--rounds" => {
                args.rounds = Some(
                    it.next()
                        .ok_or("--rounds needs N")?
                        .parse()
                        .map_err(|_| "--rounds: not a number")?,
                )
            }
            "--no-pgbouncer" => args.pgbouncer = false,
            "--store" => match it.next().as_deref() {
                Some(store @ ("pg-on" | "pg-off" | "pg-tls" | "sqlite")) => {
                    args.stores.push(store.into())
                }
                _ => return Err("--store needs pg-on, pg-off, pg-tls or sqlite".into()),
            },
            "smoke" => args.smoke = true,
            "all" => args.sections.extend(ALL_SECTIONS.map(String::from)),
            "latency" | "breakdown" | "throughput" | "hot" | "history" | "surfaces"
            | "roundtrips" => args.sections.push(arg),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if args.smoke && args.sections.is_empty() {
        args.sections.extend(ALL_SECTIONS.map(String::from));
    }
    if args.sections.is_empty() {
        return Err("usage: startgate-bench all|smoke|latency|breakdown|throughput|hot|history|surfaces|roundtrips [--out FILE] [--postgres URL] [--rounds N] [--no-pgbouncer] [--store pg-on|pg-off|pg-tls|sqlite]…".into());
    }
    Ok(args)
}

fn command_output(program: &str, args: &[&str]) -> String {
    std::process::Command::new(program)
        .args(args)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

async fn machine(postgres: &str) -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines().next().map(|l| {
                l.split_whitespace()
                    .nth(1)
                    .unwrap_or("0")
                    .parse::<u64>()
                    .unwrap_or(0)
                    / 1024
                    / 1024
            })
        })
        .unwrap_or(0);
    let pg = match sqlx::PgPool::connect(postgres).await {
        Ok(pool) => {
            let v: Result<String, _> = sqlx::query_scalar("SHOW server_version")
                .fetch_one(&pool)
                .await;
            pool.close().await;
            v.unwrap_or_default()
        }
        Err(_) => "unreachable".into(),
    };
    let sqlite = match sqlx::SqlitePool::connect("sqlite::memory:").await {
        Ok(pool) => sqlx::query_scalar::<_, String>("SELECT sqlite_version()")
            .fetch_one(&pool)
            .await
            .unwrap_or_default(),
        Err(_) => String::new(),
    };
    format!(
        "{cpu}, {cores} cores, {memory} GiB; {}; PostgreSQL {pg} (local, default settings); SQLite {sqlite} (bundled, WAL, synchronous=NORMAL, tmpfs: {}); {}",
        command_output("uname", &["-sr"]),
        if command_output("stat", &["-f", "-c", "%T", &std::env::temp_dir().display().to_string()]).contains("tmpfs") { "yes" } else { "no" },
        command_output("rustc", &["--version"])
    )
}

async fn run(args: Args) -> BenchResult<bool> {
    let mut scale = if args.smoke {
        Scale::smoke()
    } else {
        Scale::full()
    };
    if let Some(rounds) = args.rounds {
        scale.rounds = rounds.max(1);
    }
    let work = std::env::temp_dir().join(format!("startgate-bench-{}", std::process::id()));
    std::fs::create_dir_all(&work).map_err(setup::err("work dir"))?;
    let sync_on = setup::fresh_pg_database(&args.postgres, "startgate_bench_sync_on", true).await?;
    let sync_off =
        setup::fresh_pg_database(&args.postgres, "startgate_bench_sync_off", false).await?;
    let tls = setup::fresh_pg_database(&args.postgres, "startgate_bench_tls", false).await?;
    // Plaintext unless the store is the TLS one: sqlx's default sslmode is
    // `prefer`, which would encrypt against a server with ssl = on.
    let stores: Vec<Store> = [
        (
            "pg-on",
            "PostgreSQL, synchronous_commit=on",
            format!("{sync_on}?sslmode=disable"),
            false,
        ),
        (
            "pg-off",
            "PostgreSQL, synchronous_commit=off",
            format!("{sync_off}?sslmode=disable"),
            false,
        ),
        (
            "pg-tls",
            "PostgreSQL over TLS (sslmode=require), synchronous_commit=off",
            format!("{tls}?sslmode=require"),
            true,
        ),
        (
            "sqlite",
            "SQLite (WAL)",
            format!("sqlite://{}", work.join("bench.db").display()),
            false,
        ),
    ]
    .into_iter()
    .filter(|(key, _, _, _)| args.stores.is_empty() || args.stores.iter().any(|s| s == key))
    .map(|(_, label, url, latency_only)| Store {
        label: label.into(),
        url,
        latency_only,
    })
    .collect();
    let mut sections = Vec::new();
    for name in &args.sections {
        eprintln!("[startgate-bench] {name} …");
        let started = std::time::Instant::now();
        let section = match name.as_str() {
            "latency" => sections::latency(&stores, &scale).await?,
            "breakdown" => sections::breakdown(&stores, &scale).await?,
            "throughput" => sections::throughput(&stores, &scale).await?,
            "hot" => sections::hot_scopes(&stores, &scale).await?,
            "history" => sections::history(&args.postgres, &scale).await?,
            "surfaces" => surfaces::surfaces(&scale, &work).await?,
            "roundtrips" => roundtrips::roundtrips(&args.postgres, args.pgbouncer).await?,
            _ => continue,
        };
        eprintln!("[startgate-bench] {name} done in {:.0?}", started.elapsed());
        sections.push(section);
    }
    for db in [
        "startgate_bench_sync_on",
        "startgate_bench_sync_off",
        "startgate_bench_tls",
    ] {
        setup::drop_pg_database(&args.postgres, db).await?;
    }
    let _ = std::fs::remove_dir_all(&work);

    let targets: Vec<&Target> = sections.iter().flat_map(|s| &s.targets).collect();
    let mut report = String::new();
    report.push_str(&format!(
        "Measured {} with `{}` on: {}.\n\n",
        command_output("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
        if args.smoke {
            "startgate-bench smoke"
        } else {
            "scripts/bench"
        },
        machine(&args.postgres).await
    ));
    report.push_str("### Targets\n\n| target | this run | met |\n|---|---|---|\n");
    for t in &targets {
        report.push_str(&format!(
            "| {} | {} | {} |\n",
            t.name,
            t.measured,
            if t.met { "yes" } else { "**no** (see notes)" }
        ));
    }
    for s in &sections {
        report.push_str(&format!("\n### {}\n\n{}\n", s.title, s.markdown));
    }
    println!("{report}");
    if let Some(out) = &args.out {
        let notes_path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("NOTES.md");
        let notes = std::fs::read_to_string(&notes_path).unwrap_or_default();
        let document = format!(
            "# Benchmarks\n\n<!-- generated by scripts/bench (startgate-bench all); notes from bench/NOTES.md -->\n\n{report}\n{notes}"
        );
        std::fs::write(out, document).map_err(setup::err("write report"))?;
        eprintln!("[startgate-bench] wrote {}", out.display());
    }
    Ok(targets.iter().all(|t| t.met))
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        // Missed targets are reported in the document; they are findings, not failures.
        Ok(_) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("startgate-bench failed: {message}");
            ExitCode::FAILURE
        }
    }
}
