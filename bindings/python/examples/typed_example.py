"""A small typed host; `mypy --strict` passes on it (tests/test_typing.py)."""

from __future__ import annotations

from typing import List, Optional

import startgate
from startgate import Actor, Gate, Outcome, Presentation, StartResult


def start_for_tenants(gate: Gate, tenants: List[str], actor: Actor) -> List[StartResult]:
    return [gate.start(operation="inventory.sync", tenant_id=tenant, actor=actor) for tenant in tenants]


def notification(gate: Gate, result: StartResult) -> Optional[Presentation]:
    if result.outcome is Outcome.DENIED:
        return None
    return gate.present(result)


def run_job(gate: Gate, result: StartResult) -> Optional[int]:
    run = result.run
    if not result.accepted or run is None or run.fencing_token is None:
        return None
    try:
        gate.mark_running(run.id, run.fencing_token)
        done = gate.complete(run_id=run.id, fencing_token=run.fencing_token, outcome=startgate.CompletionOutcome.SUCCEEDED)
    except startgate.InvalidTransition as error:
        print("stopping:", error.code)
        return None
    return done.next.run.id if done.next is not None and done.next.run is not None else None


def main(url: str, registry: str) -> None:
    gate = Gate.open(url, registry, statement_timeout_ms=2000)
    gate.migrate()
    actor = Actor("alice", True, ("inventory.sync",))
    for result in start_for_tenants(gate, ["contoso", "fabrikam"], actor):
        shown = notification(gate, result)
        if shown is not None:
            print(shown.tone.value, shown.title)
        run_job(gate, result)
