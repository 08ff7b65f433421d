"""Every operation of Gate (blocking) on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import re
from datetime import datetime, timezone

import pytest

import startgate
from startgate import Actor, CompletionOutcome, Gate, Outcome, ProviderConnection, RunStatus, Tone

from conftest import ALICE, REGISTRY, ROOT, ready


def test_every_operation(url: str) -> None:
    with Gate.open(url, REGISTRY, manual_clock="2026-01-01T09:00:00Z") as gate:
        gate.migrate()
        gate.migrate()  # idempotent
        cargo = (ROOT / "Cargo.toml").read_text()
        assert startgate.__version__ == re.search(r'^version = "([^"]+)"', cargo, re.M).group(1)

        stored = gate.upsert_connection(ready())
        assert stored.is_default and stored.consent is startgate.Consent.GRANTED
        typed = ProviderConnection(id="graph-eu", tenant_id="contoso", provider="microsoft_graph")
        assert gate.upsert_connection(dataclasses.replace(typed, health=startgate.Health.OK)).health is startgate.Health.OK
        assert gate.get_connection("contoso", "graph") == stored
        assert gate.get_connection("contoso", "nope") is None
        assert [c.id for c in gate.list_connections("contoso")] == ["graph", "graph-eu"]

        accepted = gate.start(operation="inventory.sync", tenant_id="contoso", actor=Actor("alice", True, ("inventory.sync",)))
        assert accepted.outcome is Outcome.ACCEPTED and accepted.accepted
        assert accepted.provider_connection_id == "graph"
        run = accepted.run
        assert run is not None and run.fencing_token == 1 and run.status is RunStatus.QUEUED
        assert run.created_at == datetime(2026, 1, 1, 9, tzinfo=timezone.utc)
        shown = gate.present(accepted)
        assert (shown.status_label, shown.tone, shown.title) == ("queued", Tone.SUCCESS, "Inventory sync queued")

        deduped = gate.start({"operation": "inventory.sync", "tenant_id": "contoso", "actor": ALICE}, params={"x": 1})
        assert deduped.outcome is Outcome.DEDUPED and deduped.params_differ is True
        assert deduped.run is not None and deduped.run.fencing_token is None

        answers = gate.check([
            {"operation": "restore.execute", "subject": "17", "tenant_id": "contoso", "actor": ALICE},
            {"operation": "inventory.sync", "tenant_id": "fabrikam", "actor": ALICE},
            {"operation": "nope", "tenant_id": "contoso", "actor": ALICE},
        ])
        assert isinstance(answers[0], startgate.StartResult) and answers[0].outcome is Outcome.SCOPE_BUSY
        assert isinstance(answers[1], startgate.StartResult) and answers[1].reasons[0].code == "provider_connection_missing"
        assert isinstance(answers[2], startgate.UnknownOperation)

        # The process's own view of what this gate did (no database).
        metrics = gate.metrics()
        assert metrics["starts"] == {"inventory.sync": {"accepted": 1, "deduped": 1}}
        assert (metrics["latency"]["start"]["calls"], metrics["latency"]["check"]["calls"]) == (2, 1)
        assert metrics["takeovers"] == 0 and metrics["errors"] == {}

        with pytest.raises(startgate.InvalidTransition, match="mark_running first"):
            gate.heartbeat(run.id, 1)
        assert gate.mark_running(run.id, 1).status is RunStatus.RUNNING
        gate.advance_clock(30)
        assert gate.heartbeat(run.id, 1).stale_at == datetime(2026, 1, 1, 9, 5, 30, tzinfo=timezone.utc)
        assert gate.get_run(run.id).is_active
        assert gate.present_run(gate.get_run(run.id)).title == "Inventory sync running"
        assert [r.id for r in gate.list_runs(active=True)] == [run.id]
        assert [a.outcome for a in gate.attempts_for_run(run.id)] == [Outcome.ACCEPTED, Outcome.DEDUPED]

        done = gate.complete(run_id=run.id, fencing_token=1, outcome=CompletionOutcome.SUCCEEDED, summary={"items": 3})
        assert done.notify_initiator and done.next is None and done.run.summary == {"items": 3}

        sequence = gate.start_sequence(sequence="onboarding.bootstrap", tenant_id="contoso", actor=ALICE)
        assert sequence.outcome is Outcome.ACCEPTED and len(sequence.pending) == 2
        assert sequence.run is not None
        cancelled = gate.cancel(sequence.run.id, "operator_stop")
        assert cancelled.run.status is RunStatus.CANCELLED and cancelled.run.reason_code == "operator_stop"
        assert cancelled.next is not None and cancelled.next.run is not None
        assert cancelled.next.run.operation == "provider.connection.check"
        gate.advance_clock(3600)
        reaped = gate.reap_stale()
        assert [r.id for r in reaped.reaped] == [cancelled.next.run.id]
        assert reaped.next[0].run is not None and reaped.next[0].run.operation == "inventory.sync"

    with pytest.raises(startgate.StoreUnavailable, match="closed"):
        gate.get_run(run.id)


def test_results_are_frozen_and_comparable(sqlite_url: str) -> None:
    gate = Gate.open(sqlite_url, REGISTRY)
    gate.migrate()
    gate.upsert_connection(ready())
    result = gate.start(operation="inventory.sync", tenant_id="contoso", actor=ALICE)
    assert result.run is not None
    again = gate.get_run(result.run.id)
    assert again == dataclasses.replace(result.run, fencing_token=None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.outcome = Outcome.BLOCKED  # type: ignore[misc]
    assert "Outcome.ACCEPTED" in repr(result) and "raw" not in repr(result)
    assert result.outcome == "accepted"  # string enums compare with their text


def test_contract_objects_inside_a_request_dict(url: str) -> None:
    # The native module reads a request dict as it is and converts the
    # contract's own objects it finds in it: a dataclass, enums, an aware datetime.
    with Gate.open(url, REGISTRY) as gate:
        gate.migrate()
        gate.upsert_connection(ready())
        when = datetime(2026, 3, 1, 12, 30, 5, 250000, tzinfo=timezone.utc)
        result = gate.start({
            "operation": "inventory.sync",
            "tenant_id": "contoso",
            "actor": Actor("alice", True, ("inventory.sync",)),
            "initiator": startgate.Initiator.SCHEDULE,
            "params": {"at": when, "tone": Tone.WARNING, "steps": (1, 2)},
        })
        assert result.outcome is Outcome.ACCEPTED and result.run is not None
        assert result.run.initiator is startgate.Initiator.SCHEDULE and result.run.actor_id == "alice"
        assert result.run.params == {"at": "2026-03-01T12:30:05.250000Z", "tone": "warning", "steps": [1, 2]}
        # Deeper than the contract's objects sit, only JSON data is read: nothing written.
        with pytest.raises(startgate.InvalidRequest) as caught:
            gate.start({"operation": "inventory.sync", "tenant_id": "other", "actor": ALICE,
                        "params": {"a": {"b": {"c": when}}}})
        assert caught.value.field == "params.a.b.c"
        assert gate.list_runs(tenant_id="other") == []
