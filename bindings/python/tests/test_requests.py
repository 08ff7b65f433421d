"""A plain request document (dicts, lists, tuples, str, int, float, bool,
None) is read straight from its Python values into the core's type
(`bindings/python/src/decode.rs`); anything else takes the checked path,
which converts it to JSON data first. Both must decode the same document to
the same values, and only the checked path may refuse."""

from __future__ import annotations

import collections
import math
import random
from datetime import datetime, timezone
from typing import Any, Dict, List, Tuple

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


def test_a_struct_written_as_a_list_must_have_no_items_left_over(sqlite_url: str) -> None:
    """JSON data may give a struct as the list of its fields in order; a list
    with more items than the struct has fields is refused, whichever path
    reads it, and one with exactly as many is read."""
    with Gate.open(sqlite_url, REGISTRY) as gate:
        gate.migrate()
        gate.upsert_connection(ready())
        with pytest.raises(InvalidRequest) as refused:
            gate.start({"operation": "inventory.sync", "tenant_id": "contoso",
                        "actor": ["alice", True, ["inventory.sync"], "extra"]})
        assert refused.value.field == "actor"
        assert "invalid length 4" in str(refused.value)
        assert gate.list_runs() == []
        result = gate.start({"operation": "inventory.sync", "tenant_id": "contoso", "actor": ("alice", True, ["inventory.sync"])})
        assert result.outcome == "accepted" and result.run is not None and result.run.actor_id == "alice"


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


# Per field: values a request may hold, then values it may not.
_CHOICES: Dict[str, Tuple[List[Any], List[Any]]] = {
    "operation": (["inventory.sync", "restore.execute"], ["no.such.operation", 5, None, ["inventory.sync"]]),
    "tenant_id": (["contoso", "fabrikam"], ["", 7, ["contoso"], None]),
    "actor": (
        [
            ALICE,
            {"id": "bob", "is_member": False, "capabilities": []},
            ["alice", True, ["inventory.sync"]],
            ("alice", True, ("inventory.sync", "restore.execute")),
        ],
        [
            ("alice", True),
            ["alice", True, ["inventory.sync"], "extra"],
            {"id": "alice", "is_member": True},
            {"id": "alice", "is_member": 1, "capabilities": ["inventory.sync"]},
            {"id": "alice", "is_member": True, "capabilities": ("inventory.sync", 3)},
            {"id": "alice", "is_member": True, "capabilities": [], "role": "admin"},
            "alice",
        ],
    ),
    "provider_connection_id": (["graph", "missing", None], [3]),
    "subject": (["policy 7", None, ""], [1.5]),
    "initiator": (["user", "system", "schedule"], ["bogus", 1, None]),
    "tenant_active": ([True, False], [0, "yes", None]),
}


def _random_request(rng: random.Random) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """A request document, twice: once plain, once with a datetime where the
    plain one has its text, which makes the plain path decline it."""
    doc: Dict[str, Any] = {}
    for name, (valid, invalid) in _CHOICES.items():
        roll = rng.random()
        if roll < 0.06:
            continue  # missing
        doc[name] = rng.choice(invalid if roll < 0.12 else valid)
    if rng.random() < 0.05:
        doc["bogus"] = 1
    when = datetime(2026, 1, 1, 9, tzinfo=timezone.utc)
    inner = {"n": rng.choice([1, -1, 2**63, 0.5, "x", None, [1, 2], {"k": "v"}])}
    if rng.random() < 0.5:
        plain, checked = dict(inner, t="2026-01-01T09:00:00Z"), dict(inner, t=when)
    else:
        plain, checked = [inner, "2026-01-01T09:00:00Z"], [inner, when]
    return dict(doc, params=plain), dict(doc, params=checked)


def _answer(gate: Gate, doc: Dict[str, Any]) -> Any:
    try:
        return gate.start(doc).to_dict()
    except Exception as error:  # every refusal is the contract's exception; its words are compared
        return type(error).__name__, getattr(error, "field", None), str(error)


def test_random_documents_get_the_same_answer_by_either_path(tmp_path: Any) -> None:
    """Two gates with the same history: one is given plain documents (read
    straight into the core's type where the plain path can), the other the
    same documents with a datetime in `params` (which only the checked path
    reads, as the same text). Every answer, accepted or refused, is the same."""
    rng = random.Random(15)
    gates = [Gate.open(f"sqlite://{tmp_path}/{name}.db", REGISTRY, manual_clock="2026-01-01T09:00:00Z")
             for name in ("plain", "checked")]
    try:
        for gate in gates:
            gate.migrate()
            for tenant in ("contoso", "fabrikam"):
                gate.upsert_connection(ready(tenant))
        kinds = collections.Counter()
        for _ in range(600):
            plain, checked = _random_request(rng)
            answer = _answer(gates[0], plain)
            assert answer == _answer(gates[1], checked), plain
            kinds[answer[0] if isinstance(answer, tuple) else answer["outcome"]] += 1
        # The documents reach every kind of answer, not only refusals.
        assert kinds["InvalidRequest"] > 50 and kinds["accepted"] >= 2 and len(kinds) >= 4, kinds
    finally:
        for gate in gates:
            gate.close()
