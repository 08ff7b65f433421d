//! Section 5, surface overhead: `present` (no database) and `start` (SQLite, accepted
//! path) called from Rust, C, PHP, Python (sync and asyncio) and Node, each as
//! a ratio to the Rust call measured in the same round.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use startgate::Gate;

use crate::sections::accepted_start;
use crate::setup::{self, err, BenchResult};
use crate::stats::{quantile, Rounds};
use crate::{Scale, Section, Target};

/// How to run one surface's driver: a program and its leading arguments.
#[derive(Debug, Clone)]
pub struct Driver {
    pub name: &'static str,
    pub program: PathBuf,
    pub args: Vec<String>,
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The drivers that can run here, from `STARTGATE_BENCH_*` paths (set by
/// scripts/bench and scripts/test): a missing one is reported, not faked.
pub fn drivers() -> (Vec<Driver>, Vec<String>) {
    let mut found = Vec::new();
    let mut missing = Vec::new();
    let drivers_dir = repo().join("bench/drivers");
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    match env("STARTGATE_BENCH_C") {
        Some(bin) => found.push(Driver {
            name: "C",
            program: bin.into(),
            args: vec![],
        }),
        None => {
            missing.push("C (set STARTGATE_BENCH_C to the compiled bench/drivers/bench.c)".into())
        }
    }
    match env("STARTGATE_BENCH_PHP") {
        Some(php) => found.push(Driver {
            name: "PHP",
            program: php.into(),
            args: vec![drivers_dir.join("bench.php").display().to_string()],
        }),
        None => missing.push("PHP (set STARTGATE_BENCH_PHP)".into()),
    }
    match env("STARTGATE_BENCH_PYTHON") {
        Some(python) => {
            let script = drivers_dir.join("bench.py").display().to_string();
            found.push(Driver {
                name: "Python",
                program: python.clone().into(),
                args: vec![script.clone()],
            });
            found.push(Driver {
                name: "Python asyncio",
                program: python.into(),
                args: vec![script, "--async".into()],
            });
        }
        None => missing.push(
            "Python (set STARTGATE_BENCH_PYTHON to a python with the wheel installed)".into(),
        ),
    }
    match env("STARTGATE_BENCH_NODE") {
        Some(node) => found.push(Driver {
            name: "Node",
            program: node.into(),
            args: vec![drivers_dir.join("bench.cjs").display().to_string()],
        }),
        None => missing.push("Node (set STARTGATE_BENCH_NODE)".into()),
    }
    (found, missing)
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    present_ns: f64,
    start_ns: f64,
}

/// What JSON text costs a call that takes and answers it, with no call in
/// between: serde decoding the document straight into the core's type and
/// encoding the answer, the least a JSON surface (the C ABI, PHP over it)
/// can pay. Medians over `n`, in ns, for `present` and for `start`.
fn json_floor(
    request: &str,
    result: &startgate::StartResult,
    gate: &Gate,
    n: usize,
) -> BenchResult<Sample> {
    let result_text = serde_json::to_string(result).map_err(err("encode"))?;
    let presentation = gate.present(result);
    let mut present = Vec::with_capacity(n);
    let mut start = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let decoded: startgate::StartResult =
            serde_json::from_str(&result_text).map_err(err("decode"))?;
        std::hint::black_box(&decoded);
        std::hint::black_box(serde_json::to_string(&presentation).map_err(err("encode"))?);
        present.push(t.elapsed().as_nanos() as f64);
        let t = Instant::now();
        let decoded: startgate::StartRequest =
            serde_json::from_str(request).map_err(err("decode"))?;
        std::hint::black_box(&decoded);
        std::hint::black_box(serde_json::to_string(result).map_err(err("encode"))?);
        start.push(t.elapsed().as_nanos() as f64);
    }
    Ok(Sample {
        present_ns: quantile(&mut present, 0.5),
        start_ns: quantile(&mut start, 0.5),
    })
}

/// A consistent copy of the template database, WAL included (`VACUUM INTO`
/// reads through SQLite, so nothing still in the template's WAL is missed).
async fn copy_db(template: &Path, to: &Path) -> BenchResult<()> {
    use sqlx::{ConnectOptions, Connection};
    let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(template)
        .connect()
        .await
        .map_err(err("open template"))?;
    sqlx::query("VACUUM INTO ?")
        .bind(to.display().to_string())
        .execute(&mut conn)
        .await
        .map_err(err("copy template"))?;
    conn.close().await.map_err(err("close template"))?;
    Ok(())
}

/// The Rust calls, and the JSON floor measured beside them ([`json_floor`]).
async fn rust_sample(url: &str, n: usize) -> BenchResult<(Sample, Sample)> {
    let gate = Gate::open_with(url, setup::registry()?, setup::options(4))
        .await
        .map_err(err("open"))?;
    for i in 0..50 {
        accepted_start(&gate, n + i).await?;
    }
    let result = gate
        .start(&request_for(n + 50))
        .await
        .map_err(err("start"))?;
    let mut present = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        std::hint::black_box(gate.present(&result));
        present.push(t.elapsed().as_nanos() as f64);
    }
    let mut start = Vec::with_capacity(n);
    for i in 0..n {
        let request = request_for(i);
        let t = Instant::now();
        let r = gate.start(&request).await.map_err(err("start"))?;
        start.push(t.elapsed().as_nanos() as f64);
        if r.outcome != startgate::Outcome::Accepted {
            return Err("rust surface: not accepted".into());
        }
    }
    let request = serde_json::to_string(&request_for(n)).map_err(err("encode"))?;
    let json = json_floor(&request, &result, &gate, n)?;
    gate.close().await;
    Ok((
        Sample {
            present_ns: quantile(&mut present, 0.5),
            start_ns: quantile(&mut start, 0.5),
        },
        json,
    ))
}

/// The accepted start on scope `c-{scope}` that every surface makes.
fn request_for(scope: usize) -> startgate::StartRequest {
    startgate::StartRequest::new(
        "inventory.sync",
        "bench",
        startgate::Actor::member("bench", ["inventory.sync", "compliance.read"]),
    )
    .with_connection(format!("c-{scope}"))
}

/// The Rust call the foreign surfaces make: JSON in, `block_on` on the
/// process runtime of `startgate-host` from a plain thread, JSON out. Its gap
/// to the async Rust call is what every binding pays before its own language.
fn host_sample(url: &str, n: usize) -> BenchResult<Sample> {
    let url = url.to_string();
    let thread = std::thread::spawn(move || -> BenchResult<Sample> {
        let options = startgate::GateOptions::default();
        let gate = startgate_host::ProcessGate::open(&url, setup::registry()?, options)
            .map_err(err("open"))?;
        let request = |scope: usize| {
            serde_json::json!({
                "operation": "inventory.sync", "tenant_id": "bench", "provider_connection_id": format!("c-{scope}"),
                "actor": {"id": "bench", "is_member": true, "capabilities": ["inventory.sync", "compliance.read"]}
            })
            .to_string()
        };
        let call = |method: &str, args: String| -> BenchResult<String> {
            let core = gate.gate().map_err(err("gate"))?;
            startgate_host::block_on(
                async move { startgate::json::call(&core, method, &args).await },
            )
            .map_err(err("runtime"))?
            .map_err(err(method))
        };
        for i in 0..50 {
            call("start", format!("{{\"request\":{}}}", request(n + i)))?;
        }
        let result = call("start", format!("{{\"request\":{}}}", request(n + 50)))?;
        let present_args = format!("{{\"result\":{result}}}");
        let mut present = Vec::with_capacity(n);
        for _ in 0..n {
            let args = present_args.clone();
            let t = Instant::now();
            std::hint::black_box(call("present", args)?);
            present.push(t.elapsed().as_nanos() as f64);
        }
        let mut start = Vec::with_capacity(n);
        for i in 0..n {
            let args = format!("{{\"request\":{}}}", request(i));
            let t = Instant::now();
            let answer = call("start", args)?;
            start.push(t.elapsed().as_nanos() as f64);
            if !answer.contains("\"outcome\":\"accepted\"") {
                return Err(format!("host surface: not accepted: {answer}"));
            }
        }
        gate.close().map_err(err("close"))?;
        Ok(Sample {
            present_ns: quantile(&mut present, 0.5),
            start_ns: quantile(&mut start, 0.5),
        })
    });
    thread
        .join()
        .map_err(|_| "host sample thread panicked".to_string())?
}

fn driver_sample(driver: &Driver, url: &str, registry: &Path, n: usize) -> BenchResult<Sample> {
    let output = Command::new(&driver.program)
        .args(&driver.args)
        .arg(url)
        .arg(registry)
        .arg(n.to_string())
        .output()
        .map_err(err(driver.name))?;
    if !output.status.success() {
        return Err(format!(
            "{} driver failed: {}",
            driver.name,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let line = String::from_utf8_lossy(&output.stdout);
    let doc: serde_json::Value = serde_json::from_str(line.trim()).map_err(err(driver.name))?;
    let get = |k: &str| {
        doc[k]
            .as_f64()
            .ok_or_else(|| format!("{}: no {k} in {line}", driver.name))
    };
    Ok(Sample {
        present_ns: get("present_ns")?,
        start_ns: get("start_ns")?,
    })
}

pub async fn surfaces(scale: &Scale, work: &Path) -> BenchResult<Section> {
    let (drivers, missing) = drivers();
    let n = scale.surface_ops;
    let template = work.join("surface-template.db");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", template.display()));
    }
    let template_url = format!("sqlite://{}", template.display());
    let gate = setup::prepared_gate(&template_url, n + 100, 1).await?;
    gate.close().await;
    let registry = work.join("bench-registry.toml");
    std::fs::write(&registry, setup::REGISTRY).map_err(err("registry file"))?;

    const HOST: &str = "Rust via startgate-host (JSON, block_on)";
    const JSON: &str = "Rust + JSON text in and out, no call (floor of a JSON surface)";
    let names: Vec<&str> = ["Rust", JSON, HOST]
        .into_iter()
        .chain(drivers.iter().map(|d| d.name))
        .collect();
    let mut present: Vec<Rounds> = vec![Rounds::default(); names.len()];
    let mut start: Vec<Rounds> = vec![Rounds::default(); names.len()];
    let mut present_ratio: Vec<Rounds> = vec![Rounds::default(); names.len()];
    let mut start_ratio: Vec<Rounds> = vec![Rounds::default(); names.len()];
    for round in 0..scale.rounds {
        let mut samples: Vec<Option<Sample>> = vec![None; names.len()];
        for k in 0..names.len() {
            let i = (k + round) % names.len(); // rotate who goes first
            if i == 1 {
                continue; // the floor row is measured with the Rust row, in its process
            }
            let db = work.join(format!("surface-{round}-{i}.db"));
            copy_db(&template, &db).await?;
            let url = format!("sqlite://{}", db.display());
            match i {
                0 => {
                    let (rust, json) = rust_sample(&url, n).await?;
                    samples[0] = Some(rust);
                    samples[1] = Some(Sample {
                        present_ns: rust.present_ns + json.present_ns,
                        start_ns: rust.start_ns + json.start_ns,
                    });
                }
                2 => samples[2] = Some(host_sample(&url, n)?),
                _ => samples[i] = Some(driver_sample(&drivers[i - 3], &url, &registry, n)?),
            }
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
            }
        }
        let rust = samples[0].ok_or("no Rust sample")?;
        for (i, sample) in samples.iter().enumerate() {
            let s = sample.ok_or("missing sample")?;
            present[i].push(s.present_ns / 1000.0);
            start[i].push(s.start_ns / 1000.0);
            present_ratio[i].push(s.present_ns / rust.present_ns);
            start_ratio[i].push(s.start_ns / rust.start_ns);
        }
    }
    let mut rows = Vec::new();
    let mut targets = Vec::new();
    for (i, name) in names.iter().enumerate() {
        rows.push(format!(
            "| {name} | {} | {} | {} | **{}** |",
            present[i].show(1),
            present_ratio[i].show(2),
            start[i].show(1),
            start_ratio[i].show(3)
        ));
        // The limits per surface, on the SQLite start (docs: BENCHMARKS.md notes).
        let limit = match *name {
            "C" => Some(1.05),
            "PHP" | "Python" => Some(1.15),
            "Python asyncio" | "Node" => Some(1.35),
            _ => None,
        };
        if let Some(limit) = limit {
            targets.push(Target::new(
                &format!("{name} start ≤ {limit}× the Rust start (SQLite)"),
                start_ratio[i].median() <= limit,
                format!("{:.2}×", start_ratio[i].median()),
            ));
        }
    }
    let mut markdown = format!(
        "| surface | present µs | present ratio | start µs (SQLite) | start ratio |\n|---|---|---|---|---|\n{}\n\n\
         Medians of {n} calls per surface per round (each surface in its own process on an identical copy of \
         one prepared SQLite file; `start` is the accepted path on a fresh scope), {} rounds with the order \
         rotated each round; ratios are to the Rust call of the same round. Only the call is timed: the \
         request is built before the clock starts, the conversion of the result to the surface's values \
         is inside it. The floor row adds to the Rust call what serde takes to decode the call's JSON \
         document straight into the core's type and to encode its answer as JSON text, timed in the \
         same process: the least a surface that passes JSON text (C, and PHP over it) can add.",
        rows.join("\n"),
        scale.rounds
    );
    if !missing.is_empty() {
        markdown.push_str(&format!(
            "\n\nNot measured in this run: {}.",
            missing.join("; ")
        ));
    }
    Ok(Section::new("5. Surface overhead", markdown, targets))
}
