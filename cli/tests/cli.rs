//! The operator command line, run as a real process.

use std::process::{Command, Output};

fn startgate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_startgate"))
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("STARTGATE_DATABASE")
        .env_remove("STARTGATE_REGISTRY")
        .output()
        .expect("run startgate")
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

#[test]
fn unknown_commands_and_bad_arguments_fail_clearly() {
    let out = startgate(&["frobnicate"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("unknown command"));
    let out = startgate(&["--database", "/nonexistent-dir/x/startgate.db", "runs"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("store_unavailable"),
        "{}",
        text(&out.stderr)
    );
    let out = startgate(&["explain", "abc"]);
    assert!(text(&out.stderr).contains("RUN_ID must be a number"));
}
