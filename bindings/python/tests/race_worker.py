"""One racing Python process: random starts on hot scopes, runs driven to an end
or abandoned (they go stale and are taken over), occasional reaps. Prints one
JSON line per accepted result, in the event format of `startgate-stress check`.
Usage: race_worker.py URL WORKER ITERATIONS. It makes at least ITERATIONS calls
and goes on for at least RACE_SECONDS, so that abandoned runs go stale and are
taken over however fast the calls are."""

from __future__ import annotations

import json
import pathlib
import random
import sys
import time

import startgate
from startgate import Gate

REGISTRY = pathlib.Path(__file__).resolve().parents[3] / "tests" / "race_registry.toml"
RACE_SECONDS = 2.0


def main() -> None:
    url, worker, iterations = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    rng = random.Random(worker)
    gate = Gate.open(url, REGISTRY, statement_timeout_ms=20000, acquire_timeout_ms=20000)
    actor = {"id": f"py-{worker}", "is_member": True, "capabilities": ["sync"]}
    owned: dict = {}
    until = time.monotonic() + RACE_SECONDS
    calls = 0
    while calls < iterations or time.monotonic() < until:
        calls += 1
        roll = rng.randrange(100)
        current = None
        try:
            if not owned or roll < 40:
                op = rng.choice(["inventory.sync", "compliance.snapshot"])
                result = gate.start(operation=op, tenant_id=f"tenant-{rng.randrange(3)}", actor=actor)
                if result.outcome == "accepted" and result.run is not None:
                    run = result.run
                    print(json.dumps({"event": "accepted", "run_id": run.id, "fencing_token": run.fencing_token,
                                      "tenant_id": run.tenant_id, "replaced_run_id": result.replaced_run_id}), flush=True)
                    owned[run.id] = [run.fencing_token, False]
            elif roll < 92:
                run_id = current = rng.choice(list(owned))
                token, running = owned[run_id]
                if not running:
                    gate.mark_running(run_id, token)
                    owned[run_id][1] = True
                else:
                    del owned[run_id]
                    gate.complete(run_id=run_id, fencing_token=token, outcome="succeeded")
            elif roll < 97:
                del owned[rng.choice(list(owned))]
            else:
                gate.reap_stale()
        except startgate.InvalidTransition:
            # Taken over or reaped: this worker must stop working on it.
            owned.pop(current, None)
    print(json.dumps({"event": "summary", "calls": calls, "counts": {}}), flush=True)


if __name__ == "__main__":
    main()
