"""Resource bounds through the Python binding (same protocol as resources.c):
python resources.py URL REGISTRY_FILE HANDLES CALLS"""

import json
import os
import sys

from startgate import Gate

REQUEST = {"operation": "inventory.sync", "tenant_id": "contoso",
           "actor": {"id": "ops", "is_member": True, "capabilities": ["inventory.sync"]}}
CONNECTION = {"tenant_id": "contoso", "id": "graph", "provider": "microsoft_graph", "is_default": True,
              "consent": "granted", "credential": "present", "health": "ok"}


def rss_kb() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGESIZE") // 1024


def cycle_handles(url: str, registry: str, n: int) -> None:
    for _ in range(n):
        gate = Gate.open(url, registry, max_connections=2)
        gate.list_connections("contoso")
        gate.close()


def calls(gate: Gate, result, n: int) -> None:
    for i in range(n):
        if i % 100 == 0:
            gate.check([REQUEST])
        else:
            gate.present(result)


def main() -> None:
    url, registry, handles, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    gate = Gate.open(url, registry, max_connections=2)
    gate.migrate()
    gate.upsert_connection(CONNECTION)
    result = gate.start(REQUEST)
    cycle_handles(url, registry, max(handles // 10, 1000))
    calls(gate, result, n // 10 + 1)
    before = rss_kb()
    cycle_handles(url, registry, handles)
    after_handles = rss_kb()
    calls(gate, result, n)
    after = rss_kb()
    print(json.dumps({"surface": "python", "handles": handles, "calls": n, "rss_before_kb": before,
                      "rss_after_handles_kb": after_handles, "rss_after_kb": after}), flush=True)
    sys.stdin.readline()
    gate.close()


if __name__ == "__main__":
    main()
