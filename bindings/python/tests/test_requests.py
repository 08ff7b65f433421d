"""A plain request document (dicts, lists, tuples, str, int, float, bool,
None) is read straight from its Python values into the core's type
(`bindings/python/src/decode.rs`); anything else takes the checked path,
which converts it to JSON data first. Both must decode the same document to
the same values, and only the checked path may refuse."""

from __future__ import annotations

import collections
import math
from typing import Any, Dict

import pytest

from startgate import Actor, Gate, Initiator, InvalidRequest

from conftest import ALICE, REGISTRY, ready

# An `Actor` is one of the contract's objects: the fast path declines a
# request that holds one, so the same request takes the checked path.
ALICE_OBJECT = Actor(id=ALICE["id"], is_member=ALICE["is_member"], capabilities=tuple(ALICE["capabilities"]))

PARAMS: Dict[str, Any] = {
    "ints": [0, -1, 2**63 - 1, -(2**63), 2**63, 2**64 - 1],
    "fractions": [0.1 + 0.2, 5e-324, -1.7976931348623157e308, 1 / 3],
    "nested": {"list": [{"a": [[], {}]}, (1, "two", None)], "flags": [True, False]},
    "text": "ünï \u2028 \U0001F600 \"quoted\" \\ back",
    "": "",
}


def _without_identity(row: Any) -> Dict[str, Any]:
    doc = dict(row.to_dict())
    for key in ("id", "tenant_id", "provider_connection_id", "run_id"):
        doc.pop(key, None)
    return doc


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"params": PARAMS},
        {"params": collections.OrderedDict(PARAMS), "subject": "policy 7"},
        {"params": [], "initiator": Initiator.SYSTEM},
        {"initiator": "schedule", "tenant_active": True, "subject": None},
    ],
    ids=["bare", "params", "ordered-dict", "empty-list-params", "initiator-text"],
)
def test_a_plain_request_decodes_as_the_checked_path_does(sqlite_url: str, fields: Dict[str, Any]) -> None:
    with Gate.open(sqlite_url, REGISTRY, manual_clock="2026-01-01T09:00:00Z") as gate:
        gate.migrate()
        gate.upsert_connection(ready("plain"))
        gate.upsert_connection(ready("checked"))
        plain = gate.start({"operation": "inventory.sync", "tenant_id": "plain", "actor": ALICE, **fields})
        checked = gate.start({"operation": "inventory.sync", "tenant_id": "checked", "actor": ALICE_OBJECT, **fields})
        assert plain.outcome == checked.outcome == "accepted"
        assert plain.run is not None and checked.run is not None
        assert _without_identity(plain.run) == _without_identity(checked.run)
        if "params" in fields:
            expected = dict(fields["params"]) if fields["params"] else {}
            assert plain.run.params == _as_json(expected)
        for attempt_plain, attempt_checked in zip(
            gate.attempts_for_run(plain.run.id), gate.attempts_for_run(checked.run.id), strict=True
        ):
            assert attempt_plain.actor_id == "alice"
            assert _without_identity(attempt_plain) == _without_identity(attempt_checked)


def _as_json(value: Any) -> Any:
    """What JSON data makes of a Python value: tuples become lists."""
    if isinstance(value, dict):
        return {k: _as_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_as_json(v) for v in value]
    return value


def test_every_document_method_decodes_a_plain_document_as_the_checked_path(sqlite_url: str) -> None:
    """start_sequence, complete, upsert_connection, present and present_run
    take a document too; a plain one gives the answer the checked path gives."""
    with Gate.open(sqlite_url, REGISTRY, manual_clock="2026-01-01T09:00:00Z") as gate:
        gate.migrate()
        connection = gate.upsert_connection(ready("plain"))
        assert connection.to_dict() == gate.upsert_connection(connection).to_dict()
        gate.upsert_connection(ready("checked"))
        answers = {}
        for tenant, actor in (("plain", ALICE), ("checked", ALICE_OBJECT)):
            sequence = gate.start_sequence(
                {"sequence": "onboarding.bootstrap", "tenant_id": tenant, "actor": actor, "params": PARAMS}
            )
            assert sequence.run is not None
            run = gate.mark_running(sequence.run.id, sequence.run.fencing_token or 0)
            completion = gate.complete(
                {"run_id": run.id, "fencing_token": run.fencing_token, "outcome": "succeeded", "summary": PARAMS}
            )
            answers[tenant] = (sequence, completion)
        (plain_sequence, plain_completion), (checked_sequence, checked_completion) = answers["plain"], answers["checked"]
        assert [r.operation for r in plain_sequence.pending] == [r.operation for r in checked_sequence.pending]
        assert plain_completion.run.summary == checked_completion.run.summary == _as_json(PARAMS)
        # A plain dict result, and the StartResult object (the checked path).
        for result in (plain_sequence, checked_sequence):
            assert gate.present(result.to_dict()) == gate.present(result)
            assert gate.present_run(result.run.to_dict()) == gate.present_run(result.run)


@pytest.mark.parametrize(
    ("params", "field", "words"),
    [
        ({"x": math.nan}, "params.x", "must be a finite number"),
        ({"x": [math.inf]}, "params.x[0]", "must be a finite number"),
        ({"x": 2**64}, "params.x", "expected an integer from"),
        ({"x": {1: "one"}}, "params.x", "key"),
        ({"x\u0000y": 1}, "params.x\u0000y", "NUL"),
        ({"x": "a\ud800"}, "params.x", "valid Unicode"),
        ({"x": {"\udfff": 1}}, "params.x", "valid Unicode"),
        ({"x": object()}, "params.x", "object"),
    ],
    ids=["nan", "infinity", "past-u64", "int-key", "nul-in-key", "surrogate", "surrogate-key", "object"],
)
def test_what_the_plain_path_cannot_vouch_for_is_refused_by_the_checked_path(
    sqlite_url: str, params: Dict[str, Any], field: str, words: str
) -> None:
    with Gate.open(sqlite_url, REGISTRY) as gate:
        gate.migrate()
        gate.upsert_connection(ready())
        with pytest.raises(InvalidRequest) as refused:
            gate.start({"operation": "inventory.sync", "tenant_id": "contoso", "actor": ALICE, "params": params})
        assert refused.value.field == field
        assert words in str(refused.value)
        assert gate.list_runs() == [] and gate.attempts_for_run(1) == []


def test_a_document_nested_past_the_limit_is_refused(sqlite_url: str) -> None:
    deep: Any = []
    for _ in range(200):
        deep = [deep]
    with Gate.open(sqlite_url, REGISTRY) as gate:
        gate.migrate()
        gate.upsert_connection(ready())
        with pytest.raises(InvalidRequest) as refused:
            gate.start({"operation": "inventory.sync", "tenant_id": "contoso", "actor": ALICE, "params": {"d": deep}})
        assert refused.value.field == "request"
        assert "nested deeper" in str(refused.value)
        assert gate.list_runs() == []
