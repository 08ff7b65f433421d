"""A gate used before os.fork() keeps working in the children (each gets its
own runtime and connections) and in the parent."""

from __future__ import annotations

import os

from startgate import Gate

from conftest import ALICE, REGISTRY, ready


def lifecycle(gate: Gate, tenant: str) -> None:
    result = gate.start(operation="inventory.sync", tenant_id=tenant, actor=ALICE)
    assert result.outcome == "accepted", result
    assert result.run is not None and result.run.fencing_token is not None
    gate.mark_running(result.run.id, result.run.fencing_token)
    gate.complete(run_id=result.run.id, fencing_token=result.run.fencing_token, outcome="succeeded")


def test_fork_after_use(url: str) -> None:
    gate = Gate.open(url, REGISTRY)
    gate.migrate()
    for t in range(4):
        gate.upsert_connection(ready(f"tenant-{t}"))
    lifecycle(gate, "tenant-0")
    children = []
    for i in range(1, 4):
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                lifecycle(gate, f"tenant-{i}")
                lifecycle(gate, f"tenant-{i}")
                code = 0
            finally:
                os._exit(code)
        children.append(pid)
    for pid in children:
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    lifecycle(gate, "tenant-0")
    assert len(gate.list_runs(status="succeeded")) == 8
