"""Four Python processes race on three hot PostgreSQL scopes; the history is
checked by the same checker as the Rust stress tests (startgate-stress check)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from startgate import Gate

from conftest import REGISTRY, ROOT, ready


def test_four_processes_never_double_admit(postgres_url: str) -> None:
    gate = Gate.open(postgres_url, REGISTRY)
    gate.migrate()
    for t in range(3):
        gate.upsert_connection(ready(f"tenant-{t}"))
    worker = os.path.join(os.path.dirname(__file__), "race_worker.py")
    processes = [
        subprocess.Popen([sys.executable, worker, postgres_url, str(w), "3000"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for w in range(4)
    ]
    events = ""
    for process in processes:
        out, err = process.communicate(timeout=600)
        assert process.returncode == 0, err
        events += out
    admissions = events.count('"event": "accepted"')
    assert admissions >= 30, f"only {admissions} admissions: the race did not happen"
    build = os.environ.get("STARTGATE_BUILD_DIR", str(ROOT / "target" / "debug"))
    checker = subprocess.run(
        [os.path.join(build, "startgate-stress"), "check", "--database", postgres_url],
        input=events, capture_output=True, text=True,
    )
    verdict = json.loads(checker.stdout)
    assert verdict["violations"] == [], verdict["violations"]
    assert verdict["accepted_results"] == verdict["accepted_attempts"]
    assert checker.returncode == 0, checker.stderr
    print(f"4 Python processes: {verdict['admitted_runs']} admitted runs, {verdict['takeovers']} takeovers, 0 violations")
