#!/usr/bin/env python3
"""Drives the Laravel test app the way production is driven (tests/laravel/run).

  storm.py storm --url URL --database DB --fpm-master PID --out DIR
      8 concurrent clients send 5,000 "start" requests over 20 tenant scopes
      through nginx -> PHP-FPM -> the gate; one FPM worker is killed with
      SIGKILL mid-run. Writes the accepted results as event lines for
      `startgate-stress check`, and prints the figures; exits 1 on a bad
      response, too many connections or memory that grew.

  storm.py crash --url URL --database DB --app DIR --restart-worker CMD
      kills a queue worker inside a job, takes the run over after its lease,
      and checks that Laravel's retry of the killed job does no provider work.
"""

import argparse
import http.client
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse

OUTCOME_STATUS = {"accepted": "success", "deduped": "info", "scope_busy": "warning", "blocked": "danger"}
ERROR_STATUSES = {500, 502, 503, 504}


def psql(database, sql):
    out = subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", database, "-AtXq", "-c", sql],
        check=True, capture_output=True, text=True)
    return out.stdout.strip()


class Client:
    """One keep-alive HTTP connection, reopened when the server closes it."""

    def __init__(self, url):
        parsed = urllib.parse.urlparse(url)
        self.host, self.port = parsed.hostname, parsed.port
        self.conn = None

    def post(self, path, body):
        data = json.dumps(body).encode()
        headers = {"Content-Type": "application/json", "Accept": "application/json", "X-Operator": "alice"}
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
            try:
                self.conn.request("POST", path, body=data, headers=headers)
                response = self.conn.getresponse()
                return response.status, response.read().decode("utf-8", "replace")
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # nginx closed an idle keep-alive connection: send again once.
                self.conn.close()
                self.conn = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


def check_response(status, body):
    """None when the response is an outcome's feedback or a clean error page; else why not."""
    if status == 200:
        try:
            doc = json.loads(body)
        except ValueError:
            return f"200 with a body that is not JSON: {body[:200]!r}"
        outcome = doc.get("outcome")
        if outcome not in OUTCOME_STATUS:
            return f"unexpected outcome {outcome!r}"
        if doc.get("status") != OUTCOME_STATUS[outcome] or not doc.get("title") or not doc.get("body"):
            return f"feedback does not match its outcome: {doc}"
        if (outcome == "accepted") != isinstance(doc.get("run_id"), int):
            return f"run_id present exactly when accepted: {doc}"
        return None
    if status in ERROR_STATUSES:
        lowered = body.lower()
        for leak in ("stack trace", "#0 /", "illuminate\\", "startgate\\", ".php"):
            if leak in lowered:
                return f"{status} error page leaks {leak!r}: {body[:300]!r}"
        return None
    return f"unexpected HTTP status {status}: {body[:300]!r}"


def fpm_workers(master):
    children = subprocess.run(["ps", "-o", "pid=", "--ppid", str(master)], capture_output=True, text=True).stdout
    return [int(p) for p in children.split()]


def storm(args):
    tenants = [f"t{i:02d}" for i in range(args.tenants)]
    total, clients = args.requests, args.clients
    lock = threading.Lock()
    results = []  # (index, status, seconds, doc or None)
    problems = []
    counter = iter(range(total))
    killed = {}
    samples = []
    sampling = threading.Event()

    def sample():
        sql = ("SELECT coalesce(application_name, ''), count(*) FROM pg_stat_activity "
               f"WHERE datname = '{args.database}' GROUP BY 1")
        while not sampling.is_set():
            rows = dict(line.split("|") for line in psql(args.database, sql).splitlines() if line)
            samples.append({k: int(v) for k, v in rows.items()})
            time.sleep(0.1)

    def client(seed):
        rng = random.Random(seed)
        http_client = Client(args.url)
        while True:
            with lock:
                i = next(counter, None)
                if i is None:
                    return
                if i == total // 2 and not killed:
                    victim = rng.choice(fpm_workers(args.fpm_master))
                    os.kill(victim, signal.SIGKILL)
                    killed.update(pid=victim, at_request=i)
            tenant = rng.choice(tenants)
            roll = rng.random()
            if roll < 0.7:
                path, body = f"/api/tenants/{tenant}/inventory-sync", {"params": {"pages": 1}}
            elif roll < 0.9:
                path, body = f"/api/tenants/{tenant}/restore", {"backup": f"b-{rng.randint(1, 3)}"}
            else:
                path, body = f"/api/tenants/{tenant}/onboarding", {}
            began = time.perf_counter()
            status, text = http_client.post(path, body)
            elapsed = time.perf_counter() - began
            problem = check_response(status, text)
            doc = json.loads(text) if status == 200 and problem is None else None
            with lock:
                results.append((i, status, elapsed, doc))
                if problem:
                    problems.append(problem)

    # The same Laravel request with and without the gate, one at a time, so
    # that the gate's share of a response is measured on this machine now: a
    # start on a blocked tenant (a decision and an audit row; no job to
    # dispatch) against a route that returns JSON without calling the gate.
    baseline_client, paired = Client(args.url), {"ping": [], "start": []}
    for _ in range(args.baseline):
        for name, path, body in (("ping", "/api/ping", {}), ("start", f"/api/tenants/{tenants[-1]}/inventory-sync", {})):
            began = time.perf_counter()
            status, text = baseline_client.post(path, body)
            paired[name].append(time.perf_counter() - began)
            if status != 200:
                raise SystemExit(f"baseline: {path} answered {status}: {text[:300]}")
    baseline = {name: round(statistics.median(v) * 1000, 2) for name, v in paired.items()}

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    began = time.time()
    threads = [threading.Thread(target=client, args=(seed,)) for seed in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.time() - began
    sampling.set()
    sampler.join()

    results.sort(key=lambda r: r[0])
    outcomes = {}
    for _, status, _, doc in results:
        key = doc["outcome"] if doc else f"http_{status}"
        outcomes[key] = outcomes.get(key, 0) + 1
    latencies = sorted(r[2] for r in results)
    web = max((s.get("startgate-web", 0) for s in samples), default=0)
    workers = max((s.get("startgate-worker", 0) for s in samples), default=0)
    everything = max((sum(s.values()) for s in samples), default=0)

    def rss_by_pid(window):
        by_pid = {}
        for _, _, _, doc in window:
            if doc and doc.get("worker_rss_kb"):
                by_pid.setdefault(doc["worker_pid"], []).append(doc["worker_rss_kb"])
        return {pid: statistics.median(v) for pid, v in by_pid.items()}

    first, last = rss_by_pid(results[:1000]), rss_by_pid(results[-1000:])
    both = sorted(set(first) & set(last))
    growth = {pid: last[pid] - first[pid] for pid in both}

    with open(os.path.join(args.out, "events.jsonl"), "w") as events:
        for _, _, _, doc in results:
            if doc and doc["outcome"] == "accepted":
                events.write(json.dumps({"event": "accepted", "run_id": doc["run_id"], "fencing_token": doc["fencing_token"],
                                         "tenant_id": doc["tenant_id"], "replaced_run_id": doc["replaced_run_id"]}) + "\n")

    report = {
        "requests": len(results), "clients": clients, "tenants": len(tenants), "seconds": round(wall, 1),
        "requests_per_second": round(len(results) / wall),
        "outcomes": outcomes,
        "p50_ms": round(latencies[len(latencies) // 2] * 1000, 1),
        "p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 1),
        "max_ms": round(latencies[-1] * 1000, 1),
        "one_at_a_time_median_ms": {"without the gate (ping)": baseline["ping"], "a start (blocked)": baseline["start"],
                                    "ratio": round(baseline["start"] / baseline["ping"], 2)},
        "killed_fpm_worker": killed,
        "max_gate_connections_web": web, "web_pool_limit": args.fpm_workers * args.pool_size,
        "max_gate_connections_queue_workers": workers,
        "max_connections_to_the_database": everything,
        "rss_kb_first_1000": first, "rss_kb_last_1000": last, "rss_growth_kb": growth,
        "problems": problems[:20],
    }
    print(json.dumps(report, indent=2))
    failures = []
    if len(results) != total:
        failures.append(f"{len(results)} responses for {total} requests")
    if problems:
        failures.append(f"{len(problems)} responses were neither feedback nor a clean error page")
    errors = sum(n for k, n in outcomes.items() if k.startswith("http_"))
    if errors > args.fpm_workers:
        failures.append(f"{errors} error pages for one killed worker")
    if not killed:
        failures.append("no FPM worker was killed")
    if web > args.fpm_workers * args.pool_size:
        failures.append(f"{web} gate connections from PHP-FPM, over {args.fpm_workers} workers x {args.pool_size}")
    if web == 0 or not samples:
        failures.append("the sampler saw no gate connections from PHP-FPM")
    if len(both) < 2:
        failures.append(f"only {len(both)} FPM workers served both the first and the last 1,000 requests")
    for pid, kb in growth.items():
        if kb > max(1024, first[pid] * 0.05):
            failures.append(f"FPM worker {pid} grew {kb} kB from the first 1,000 requests to the last")
    for key in ("accepted", "deduped", "scope_busy", "blocked"):
        if outcomes.get(key, 0) == 0:
            failures.append(f"no {key} outcome in the storm")
    for failure in failures:
        print("storm:", failure, file=sys.stderr)
    return 1 if failures else 0


def wait_for(what, predicate, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise SystemExit(f"crash: timed out waiting for {what}")


def crash(args):
    client = Client(args.url)
    db = args.database

    def start(params):
        status, text = client.post("/api/tenants/crash/inventory-sync", {"params": params})
        if status != 200:
            raise SystemExit(f"crash: start answered {status}: {text[:300]}")
        return json.loads(text)

    first = start({"pages": 1, "hang_ms": 600000})
    assert first["outcome"] == "accepted", first
    r1 = first["run_id"]
    job, uuid = psql(db, "SELECT id, payload::json->>'uuid' FROM jobs ORDER BY id DESC LIMIT 1").split("|")
    pid = int(wait_for("the job to call the provider",
                       lambda: psql(db, f"SELECT worker_pid FROM provider_calls WHERE run_id = {r1}"), 30))
    os.kill(pid, signal.SIGKILL)
    killed_at = time.time()
    print(f"crash: killed queue worker {pid} inside the job for run {r1}")
    # A supervisor restarts the worker, as in production.
    subprocess.Popen(args.restart_worker, shell=True, cwd=args.app)

    held = start({"pages": 1})
    if held["outcome"] != "deduped":
        raise SystemExit(f"crash: right after the kill the run should still hold its scope: {held}")
    takeover = wait_for("the next start to take the run over",
                        lambda: (lambda r: r if r["outcome"] == "accepted" else None)(start({"pages": 1})), 20)
    if takeover["replaced_run_id"] != r1:
        raise SystemExit(f"crash: the takeover replaced {takeover['replaced_run_id']}, not {r1}")
    took_over_after = time.time() - killed_at
    r2 = takeover["run_id"]
    wait_for(f"run {r2} to succeed", lambda: psql(db, f"SELECT status FROM startgate.operation_runs WHERE id = {r2}") == "succeeded", 30)
    # Laravel hands the killed job out again after retry_after; the middleware must refuse it.
    wait_for("Laravel's retry of the killed job",
             lambda: psql(db, f"SELECT count(*) FROM jobs WHERE id = {job}") == "0", 40)
    calls = psql(db, f"SELECT count(*) FROM provider_calls WHERE run_id = {r1}")
    failed = psql(db, f"SELECT count(*) FROM failed_jobs WHERE uuid = '{uuid}'")
    status = psql(db, f"SELECT status || ' ' || coalesce(reason_code, '') FROM startgate.operation_runs WHERE id = {r1}")
    log = open(os.path.join(args.app, "storage/logs/laravel.log")).read()
    refused = f"the job for run {r1} stops without working" in log
    print(json.dumps({"killed_worker": pid, "run": r1, "takeover_run": r2, "takeover_after_kill_s": round(took_over_after, 2),
                      "run_status": status, "provider_calls_for_the_run": int(calls), "retry_refused_in_log": refused,
                      "failed_jobs_for_the_run": int(failed)}))
    problems = []
    if calls != "1":
        problems.append(f"run {r1} made {calls} provider calls; only the one before the kill was allowed")
    if not refused:
        problems.append(f"no log line shows the retry of run {r1}'s job being refused")
    if failed != "0":
        problems.append(f"the retry of run {r1}'s job was failed rather than stopped")
    if not status.startswith("failed"):
        problems.append(f"run {r1} is {status!r} after the takeover")
    for p in problems:
        print("crash:", p, file=sys.stderr)
    return 1 if problems else 0


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("storm")
    s.add_argument("--url", required=True)
    s.add_argument("--database", required=True)
    s.add_argument("--fpm-master", type=int, required=True)
    s.add_argument("--fpm-workers", type=int, default=4)
    s.add_argument("--pool-size", type=int, default=2)
    s.add_argument("--requests", type=int, default=5000)
    s.add_argument("--clients", type=int, default=8)
    s.add_argument("--tenants", type=int, default=20)
    s.add_argument("--baseline", type=int, default=200)
    s.add_argument("--out", required=True)
    c = sub.add_parser("crash")
    c.add_argument("--url", required=True)
    c.add_argument("--database", required=True)
    c.add_argument("--app", required=True)
    c.add_argument("--restart-worker", required=True)
    args = parser.parse_args()
    return storm(args) if args.command == "storm" else crash(args)


if __name__ == "__main__":
    sys.exit(main())
