"""Decoded results are whole dataclasses: every field readable, and equal to
the same values passed through the dataclass's own constructor (the decoder
sets fields without it, and results decode each field when it is first read,
for speed)."""

from __future__ import annotations

import copy
import dataclasses
import pickle
from typing import Any

import pytest

from startgate import Gate

from conftest import ALICE, REGISTRY, ready


def assert_whole(value: Any, seen: int = 0) -> int:
    if isinstance(value, (list, tuple)):
        for item in value:
            seen = assert_whole(item, seen)
        return seen
    if not dataclasses.is_dataclass(value) or isinstance(value, type):
        return seen
    names = {f.name for f in dataclasses.fields(value)}
    for name in names:
        getattr(value, name)
    assert set(vars(value)) == names, (type(value).__name__, set(vars(value)) ^ names)
    rebuilt = type(value)(**{name: getattr(value, name) for name in names})
    assert rebuilt == value
    if _hashable(value):
        assert hash(rebuilt) == hash(value)
    for name in names:
        seen = assert_whole(getattr(value, name), seen)
    return seen + 1


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def test_every_result_shape_is_whole(sqlite_url: str) -> None:
    with Gate.open(sqlite_url, REGISTRY, manual_clock="2026-01-01T09:00:00Z") as gate:
        gate.migrate()
        connection = gate.upsert_connection(ready())
        gate.upsert_connection(ready("fabrikam", consent="missing"))
        accepted = gate.start(operation="inventory.sync", tenant_id="contoso", actor=ALICE, params={"n": 1})
        blocked = gate.start(operation="inventory.sync", tenant_id="fabrikam", actor=ALICE)
        assert blocked.reasons and blocked.reasons[0].next_steps
        assert accepted.run is not None
        run = gate.mark_running(accepted.run.id, 1)
        done = gate.complete(run_id=run.id, fencing_token=1, outcome="succeeded")
        sequence = gate.start_sequence(sequence="onboarding.bootstrap", tenant_id="contoso", actor=ALICE)
        gate.advance_clock(7 * 24 * 3600)
        reaped = gate.reap_stale()
        values = [
            connection, accepted, blocked, run, done, sequence, reaped,
            gate.present(accepted), gate.present(blocked), gate.present_run(run),
            gate.list_runs(), gate.attempts_for_run(run.id),
        ]
        assert assert_whole(values) >= 20


def test_results_decode_a_field_when_it_is_first_read(sqlite_url: str) -> None:
    with Gate.open(sqlite_url, REGISTRY, manual_clock="2026-01-01T09:00:00Z") as gate:
        gate.migrate()
        gate.upsert_connection(ready())
        result = gate.start(operation="inventory.sync", tenant_id="contoso", actor=ALICE, params={"n": 1})
        assert set(vars(result)) == {"raw"}
        assert result.run is not None and set(vars(result)) == {"raw", "run"}
        assert result.run.id >= 1 and set(vars(result.run)) == {"raw", "id"}
        assert result.run is result.run, "a decoded field is kept"
        with pytest.raises(AttributeError, match="no attribute 'no_such_field'"):
            getattr(result, "no_such_field")
        # Copies and pickles are whole, whether or not a field was read.
        for fresh in (gate.start(operation="inventory.sync", tenant_id="contoso", actor=ALICE), result):
            for twin in (copy.copy(fresh), copy.deepcopy(fresh), pickle.loads(pickle.dumps(fresh))):
                assert twin == fresh and twin.to_dict() == fresh.to_dict()
                assert assert_whole(twin) >= 2
