//! The operator command line, run as a real process.

use std::process::{Command, Output};

fn command(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_startgate"));
    command
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("STARTGATE_DATABASE")
        .env_remove("STARTGATE_REGISTRY")
        .env_remove("STARTGATE_LOG");
    command
}

fn startgate(args: &[&str]) -> Output {
    command(args).output().expect("run startgate")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn repo(path: &str) -> String {
    format!("{}/../{path}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn demo_shows_every_outcome_from_real_calls() {
    let out = startgate(&["demo", "--keep"]);
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed: {}{stdout}",
        text(&out.stderr)
    );
    for needle in [
        "Inventory sync queued  [queued · success]",
        "Inventory sync already running  [already running · info]",
        "Restore cannot start yet  [scope busy · warning]",
        "Inventory sync blocked  [blocked · danger]",
        "→ Grant admin consent  /admin/tenants/fabrikam/provider-connections/graph-fab/consent",
        "Not found  [not found · danger]",
        "Restore not allowed  [not allowed · danger]",
        "the stale run 1 was ended in the same atomic step",
        "refused: invalid_transition",
        "complete() admitted the next pending step",
        "Provider connection check queued",
        "no pending step left: onboarding is done",
    ] {
        assert!(
            stdout.contains(needle),
            "demo output lacks {needle:?}:\n{stdout}"
        );
    }

    // The kept database holds what the demo showed; the other commands read it.
    let path = stdout
        .lines()
        .find_map(|l| l.strip_prefix("The demo database is kept at "))
        .and_then(|l| l.strip_suffix(". Explore it:"))
        .expect("kept database path")
        .to_string();
    let runs = startgate(&["--database", &path, "--json", "runs", "--tenant", "contoso"]);
    assert!(runs.status.success(), "{}", text(&runs.stderr));
    let runs: serde_json::Value = serde_json::from_slice(&runs.stdout).expect("runs JSON");
    let statuses: Vec<&str> = runs
        .as_array()
        .expect("list")
        .iter()
        .map(|r| r["status"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(statuses, ["succeeded", "failed"], "{runs}");

    let explain = startgate(&["--database", &path, "explain", "1"]);
    let shown = text(&explain.stdout);
    assert!(explain.status.success(), "{}", text(&explain.stderr));
    assert!(shown.contains("failed since"), "{shown}");
    assert!(
        shown.contains("refused: this run held the scope (scope_busy)"),
        "{shown}"
    );
    assert!(shown.contains("took this run's scope over"), "{shown}");

    let reap = startgate(&["--database", &path, "reap"]);
    assert!(
        !reap.status.success(),
        "reap without a registry must refuse"
    );
    assert!(text(&reap.stderr).contains("needs the registry"));
    let reap = startgate(&[
        "--database",
        &path,
        "--registry",
        &repo("examples/registry.toml"),
        "--json",
        "reap",
    ]);
    assert!(reap.status.success(), "{}", text(&reap.stderr));
    stats_agree_with_the_runs(&path);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{path}{suffix}"));
    }
}

#[test]
fn check_registry_reports_every_problem_with_its_path() {
    let good = startgate(&["check-registry", &repo("examples/registry.toml")]);
    assert!(good.status.success());
    assert!(text(&good.stdout).contains("onboarding.bootstrap"));

    let dir = std::env::temp_dir().join(format!("startgate-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let bad = dir.join("bad.toml");
    std::fs::write(
        &bad,
        "[operations.\"inventory.sync\"]\nlabel = \"Sync\"\ncapability = \"x\"\nrequires = [\"tenant_active\", \"consnt\"]\n[sequences.s]\nlabel = \"S\"\noperations = [\"nope\"]\n",
    )
    .expect("write");
    let out = startgate(&["check-registry", &bad.display().to_string()]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(r#"operations."inventory.sync".requires[1]: unknown check "consnt""#),
        "{stderr}"
    );
    assert!(
        stderr.contains(r#"sequences.s.operations[0]: unknown operation "nope""#),
        "{stderr}"
    );
    let json = startgate(&["--json", "check-registry", &bad.display().to_string()]);
    let doc: serde_json::Value = serde_json::from_slice(&json.stdout).expect("json");
    assert_eq!(doc["valid"], false);
    assert_eq!(doc["problems"].as_array().map(Vec::len), Some(2));
    let _ = std::fs::remove_dir_all(dir);
}

fn json(bytes: &[u8]) -> serde_json::Value {
    serde_json::from_slice(bytes).unwrap_or_else(|err| panic!("not JSON ({err}): {}", text(bytes)))
}

fn code(out: &Output) -> i32 {
    out.status.code().expect("exit code")
}

/// A temporary directory, removed on drop.
struct Dir(std::path::PathBuf);

impl Dir {
    fn new(tag: &str) -> Dir {
        let path = std::env::temp_dir().join(format!("startgate-cli-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("dir");
        Dir(path)
    }

    fn file(&self, name: &str) -> String {
        self.0.join(name).display().to_string()
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn usage_errors_name_the_argument_and_exit_2() {
    for (args, needle) in [
        (&["frobnicate"][..], "unrecognized subcommand 'frobnicate'"),
        (&["check-registry"][..], "<FILE>"),
        (&["explain"][..], "<RUN_ID>"),
        (&["explain", "1", "2"][..], "unexpected argument '2'"),
        (
            &["explain", "abc"][..],
            "invalid value 'abc' for '<RUN_ID>'",
        ),
        (&["explain", "0"][..], "invalid value '0' for '<RUN_ID>'"),
        (
            &["runs", "--limit", "-1"][..],
            "invalid value '-1' for '--limit <LIMIT>': -1 is not in 1..=10000",
        ),
        (&["runs", "--limit", "0"][..], "0 is not in 1..=10000"),
        (
            &["runs", "--status", "done"][..],
            "not a run status (one of blocked, pending, queued",
        ),
        (&["runs", "--frob"][..], "unexpected argument '--frob'"),
        (&["demo", "--fast"][..], "unexpected argument '--fast'"),
        (&["migrate", "now"][..], "unexpected argument 'now'"),
    ] {
        let out = startgate(args);
        assert_eq!(code(&out), 2, "{args:?}: {}", text(&out.stderr));
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains(needle),
            "{args:?}: {needle:?} not in {stderr}"
        );
        assert!(out.stdout.is_empty(), "{args:?} printed to stdout");

        // The same with --json: one JSON object on stderr, with the stable code.
        let mut with_json = vec!["--json"];
        with_json.extend_from_slice(args);
        let out = startgate(&with_json);
        assert_eq!(code(&out), 2, "{with_json:?}");
        let error = json(&out.stderr);
        assert_eq!(error["code"], "invalid_request", "{error}");
        let message = error["message"].as_str().expect("message");
        assert!(
            message.contains(needle.split(':').next().unwrap_or(needle)),
            "{message}"
        );
    }
    // reap without a registry is a usage error too.
    let dir = Dir::new("usage");
    let db = dir.file("x.db");
    let out = startgate(&["--database", &db, "--json", "reap"]);
    assert_eq!(code(&out), 2);
    assert!(json(&out.stderr)["message"]
        .as_str()
        .unwrap_or("")
        .contains("needs the registry"));
}

/// The sum of a JSON object of counts (`{"key": n, …}`).
fn sum_of_counts(counts: &serde_json::Value) -> u64 {
    counts
        .as_object()
        .expect("an object of counts")
        .values()
        .map(|n| n.as_u64().expect("count"))
        .sum()
}

/// `stats` on the demo's database: every outcome the demo showed is
/// counted, its runs by status add up to what `runs` lists, and the
/// Prometheus text carries the same numbers.
fn stats_agree_with_the_runs(path: &str) {
    let out = startgate(&["--database", path, "--json", "stats"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let stats = json(&out.stdout);
    let mut outcomes = std::collections::BTreeMap::<String, u64>::new();
    for by_outcome in stats["starts"].as_object().expect("starts").values() {
        for (outcome, n) in by_outcome.as_object().expect("outcomes") {
            *outcomes.entry(outcome.clone()).or_default() += n.as_u64().expect("count");
        }
    }
    for outcome in ["accepted", "deduped", "scope_busy", "blocked", "denied"] {
        assert!(
            outcomes.get(outcome).copied().unwrap_or(0) > 0,
            "{outcome}: {stats}"
        );
    }
    let blocked = sum_of_counts(&stats["blocked"]);
    assert_eq!(blocked, outcomes["blocked"], "{stats}");
    assert!(
        stats["takeovers"].as_u64().expect("takeovers") >= 1,
        "{stats}"
    );
    let runs = startgate(&["--database", path, "--json", "runs", "--limit", "10000"]);
    let listed = json(&runs.stdout).as_array().expect("runs").len() as u64;
    let counted = sum_of_counts(&stats["runs"]);
    assert_eq!(counted, listed, "{stats}");

    let out = startgate(&["--database", path, "stats", "--prometheus"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let prometheus = text(&out.stdout);
    let value = |line: &str| -> u64 { line.rsplit(' ').next().unwrap().parse().unwrap() };
    let total: u64 = prometheus
        .lines()
        .filter(|l| l.starts_with("startgate_starts_total{"))
        .map(value)
        .sum();
    assert_eq!(total, outcomes.values().sum::<u64>(), "{prometheus}");
    assert!(
        prometheus.contains("# TYPE startgate_starts_total counter")
            && prometheus.contains("outcome=\"denied\""),
        "{prometheus}"
    );

    let out = startgate(&["--database", path, "stats"]);
    assert_eq!(code(&out), 0);
    let shown = text(&out.stdout);
    assert!(
        shown.contains("takeovers of stale runs: ") && shown.contains("scope_busy"),
        "{shown}"
    );
    let out = startgate(&["--database", path, "--json", "stats", "--prometheus"]);
    assert_eq!(code(&out), 2, "--json and --prometheus are two formats");
}

#[test]
fn startgate_log_writes_each_call_to_stderr() {
    let dir = Dir::new("log");
    let db = dir.file("startgate.db");
    let out = command(&["--database", &db, "demo"])
        .env("STARTGATE_LOG", "info")
        .output()
        .expect("run");
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    let starts: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains(" INFO startgate: start "))
        .collect();
    assert!(starts.len() >= 5, "{stderr}");
    let accepted = starts
        .iter()
        .find(|l| l.contains("outcome=\"accepted\""))
        .expect("an accepted start");
    for field in [
        "operation=",
        "tenant_id=",
        "run_id=",
        "duration_us=",
        "round_trips=",
        "retries=",
    ] {
        assert!(accepted.contains(field), "{field}: {accepted}");
    }
    assert!(
        stderr
            .lines()
            .any(|l| l.contains("reason_code=\"provider_consent")),
        "a blocked start names its reason: {stderr}"
    );
    // Debug events (reads) stay out at info; nothing at all without the variable.
    assert!(!stderr.contains("DEBUG"), "{stderr}");
    let quiet = startgate(&["--database", &db, "demo"]);
    assert_eq!(code(&quiet), 0);
    assert!(text(&quiet.stderr).is_empty(), "{}", text(&quiet.stderr));
}

#[test]
fn every_command_has_its_own_help() {
    for (command, needle) in [
        ("demo", "--keep"),
        ("migrate", "Create or update the schema"),
        ("check-registry", "<FILE>"),
        ("runs", "--limit <LIMIT>"),
        ("explain", "<RUN_ID>"),
        ("reap", "needs --registry"),
        ("stats", "--prometheus"),
    ] {
        let out = startgate(&[command, "--help"]);
        assert_eq!(code(&out), 0, "{command} --help");
        let help = text(&out.stdout);
        assert!(
            help.contains(&format!("Usage: startgate {command}")),
            "{help}"
        );
        assert!(
            help.contains(needle),
            "{command} --help lacks {needle:?}: {help}"
        );
    }
    let out = startgate(&["help", "explain"]);
    assert_eq!(code(&out), 0);
    assert!(text(&out.stdout).contains("Usage: startgate explain"));
    let out = startgate(&["--help"]);
    let help = text(&out.stdout);
    for needle in [
        "postgres://",
        "sslmode=require",
        "--schema <NAME>",
        "EXIT CODES",
        "2  usage",
    ] {
        assert!(help.contains(needle), "--help lacks {needle:?}: {help}");
    }
    let out = startgate(&["--version"]);
    assert_eq!(
        text(&out.stdout).trim(),
        format!("startgate {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn read_only_commands_never_create_a_database() {
    let dir = Dir::new("readonly");
    let db = dir.file("missing.db");
    for args in [&["runs"][..], &["explain", "1"][..], &["stats"][..]] {
        let mut full = vec!["--database", db.as_str()];
        full.extend_from_slice(args);
        let out = startgate(&full);
        assert_eq!(code(&out), 1, "{args:?}");
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("invalid_request")
                && stderr.contains(&db)
                && stderr.contains("does not exist"),
            "{stderr}"
        );
        full.insert(0, "--json");
        let out = startgate(&full);
        let error = json(&out.stderr);
        assert_eq!(error["code"], "invalid_request");
        assert_eq!(error["field"], "database");
        assert!(!std::path::Path::new(&db).exists(), "{args:?} created {db}");
    }
    assert_eq!(
        std::fs::read_dir(&dir.0).expect("dir").count(),
        0,
        "nothing was created"
    );
}

#[test]
fn every_command_speaks_json_with_exit_codes() {
    let dir = Dir::new("json");
    let db = dir.file("startgate.db");
    let registry = repo("examples/registry.toml");
    let base = [
        "--json",
        "--database",
        db.as_str(),
        "--registry",
        registry.as_str(),
    ];
    let run = |args: &[&str]| {
        let mut full: Vec<&str> = base.to_vec();
        full.extend_from_slice(args);
        startgate(&full)
    };

    let out = run(&["migrate"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(json(&out.stdout)["migrated"], true);

    let out = run(&["runs"]);
    assert_eq!(code(&out), 0);
    assert_eq!(json(&out.stdout), serde_json::json!([]));

    let out = run(&["reap"]);
    assert_eq!(code(&out), 0);
    assert_eq!(json(&out.stdout)["reaped"], serde_json::json!([]));

    let out = run(&["stats"]);
    assert_eq!(code(&out), 0);
    assert_eq!(
        json(&out.stdout),
        serde_json::json!({"starts": {}, "blocked": {}, "takeovers": 0, "reaped_runs": 0, "runs": {}})
    );

    let out = run(&["explain", "42"]);
    assert_eq!(code(&out), 1, "a missing run is refused");
    assert!(out.stdout.is_empty());
    assert_eq!(json(&out.stderr)["code"], "run_not_found");

    let out = run(&["check-registry", &registry]);
    assert_eq!(code(&out), 0);
    assert_eq!(json(&out.stdout)["valid"], true);

    let out = run(&["demo"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let demo = json(&out.stdout);
    assert!(
        demo["presentations"].as_array().map_or(0, Vec::len) >= 6,
        "{demo}"
    );
    assert_eq!(demo["database"], serde_json::Value::Null);

    // A database that cannot be reached: store_unavailable, exit 1.
    let out = startgate(&[
        "--json",
        "--database",
        "/nonexistent-dir/x/startgate.db",
        "migrate",
    ]);
    assert_eq!(code(&out), 1);
    assert_eq!(json(&out.stderr)["code"], "store_unavailable");
}

#[test]
fn check_registry_warns_about_an_empty_registry() {
    let dir = Dir::new("empty");
    let empty = dir.file("empty.toml");
    std::fs::write(&empty, "# nothing yet\n").expect("write");
    let out = startgate(&["check-registry", &empty]);
    assert_eq!(code(&out), 0);
    assert!(
        text(&out.stdout).contains("warning: the registry declares no operations"),
        "{}",
        text(&out.stdout)
    );
    let out = startgate(&["--json", "check-registry", &empty]);
    let doc = json(&out.stdout);
    assert_eq!(doc["warnings"].as_array().map(Vec::len), Some(1), "{doc}");
    // A registry without problems has no warnings.
    let out = startgate(&["--json", "check-registry", &repo("examples/registry.toml")]);
    assert_eq!(json(&out.stdout)["warnings"], serde_json::json!([]));
}
