"""Surface-overhead driver for Python: python bench.py URL REGISTRY N [--async]

Results decode each field when it is first read, so the timed region reads
what every caller of the call reads (a start's outcome and run id, a
presentation's title): the cost of those reads is the call's."""

import asyncio
import json
import sys
import time

from startgate import AsyncGate, Gate

ACTOR = {"id": "bench", "is_member": True, "capabilities": ["inventory.sync", "compliance.read"]}


def request(scope: int) -> dict:
    return {"operation": "inventory.sync", "tenant_id": "bench", "provider_connection_id": f"c-{scope}", "actor": ACTOR}


def report(present: list, start: list) -> None:
    present.sort()
    start.sort()
    print(json.dumps({"present_ns": present[len(present) // 2], "start_ns": start[len(start) // 2]}))


def sync(url: str, registry: str, n: int) -> None:
    gate = Gate.open(url, registry)
    for i in range(50):
        gate.start(request(n + i))
    result = gate.start(request(n + 50))
    present, start = [], []
    for _ in range(n):
        t = time.perf_counter_ns()
        title = gate.present(result).title
        present.append(time.perf_counter_ns() - t)
        assert title
    for i in range(n):
        req = request(i)
        t = time.perf_counter_ns()
        r = gate.start(req)
        outcome, run_id = r.outcome, r.run.id
        start.append(time.perf_counter_ns() - t)
        assert outcome == "accepted" and run_id > 0
    report(present, start)


async def asynchronous(url: str, registry: str, n: int) -> None:
    gate = await AsyncGate.open(url, registry)
    for i in range(50):
        await gate.start(request(n + i))
    result = await gate.start(request(n + 50))
    present, start = [], []
    for _ in range(n):
        t = time.perf_counter_ns()
        title = gate.present(result).title  # a plain call: no database
        present.append(time.perf_counter_ns() - t)
        assert title
    for i in range(n):
        req = request(i)
        t = time.perf_counter_ns()
        r = await gate.start(req)
        outcome, run_id = r.outcome, r.run.id
        start.append(time.perf_counter_ns() - t)
        assert outcome == "accepted" and run_id > 0
    report(present, start)


if __name__ == "__main__":
    positional = [a for a in sys.argv[1:] if a != "--async"]
    url, registry, n = positional[0], positional[1], int(positional[2])
    if "--async" in sys.argv:
        asyncio.run(asynchronous(url, registry, n))
    else:
        sync(url, registry, n)
