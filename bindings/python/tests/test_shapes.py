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

from startgate import Gate, StartResult
from startgate._native import Document

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
        # A fresh result holds only the native module's Document of it.
        assert set(vars(result)) == {"_document"}
        assert result.run is not None and set(vars(result)) == {"_document", "run"}
        assert result.run.id >= 1 and set(vars(result.run)) == {"_document", "id"}
        assert result.run is result.run, "a decoded field is kept"
        # The host's own document is plain data, never a Document.
        assert type(result.run.params) is dict and result.run.params == {"n": 1}
        # raw is the whole document as a dict; the Document is let go.
        assert type(result.raw) is dict and set(vars(result)) == {"raw", "run"}
        assert result.raw["run"]["params"] == {"n": 1} and result.raw["outcome"] == "accepted"
        with pytest.raises(AttributeError, match="no attribute 'no_such_field'"):
            getattr(result, "no_such_field")
        # An instance with no document has no fields to decode; on the class, a
        # field is its (native) descriptor.
        empty = StartResult.__new__(StartResult)
        with pytest.raises(AttributeError, match="'StartResult' object has no attribute 'outcome'"):
            getattr(empty, "outcome")
        empty.__dict__.update(raw=None, _document=None)
        with pytest.raises(AttributeError, match="'StartResult' object has no attribute 'outcome'"):
            getattr(empty, "outcome")
        assert StartResult.outcome.name == "outcome" and StartResult.outcome.decode is not None
        # Copies and pickles are whole, whether or not a field was read.
        for fresh in (gate.start(operation="inventory.sync", tenant_id="contoso", actor=ALICE), result):
            for twin in (copy.copy(fresh), copy.deepcopy(fresh), pickle.loads(pickle.dumps(fresh))):
                assert twin == fresh and twin.to_dict() == fresh.to_dict()
                assert assert_whole(twin) >= 2


def test_document_results_keep_field_order_and_exact_fractions(sqlite_url: str) -> None:
    """A result read through a Document (start, get_run) has the document
    order and the exact values of one converted whole (list_runs)."""
    fractions = {
        "sum": 0.1 + 0.2, "tiny": 5e-324, "huge": 1.7976931348623157e308, "third": 1 / 3,
        # Read back one unit in the last place off without serde_json's float_roundtrip.
        "a": 1.0715660391465826e-75, "b": -1.81996730402717e-179,
    }
    with Gate.open(sqlite_url, REGISTRY, manual_clock="2026-01-01T09:00:00Z") as gate:
        gate.migrate()
        gate.upsert_connection(ready())
        result = gate.start(operation="inventory.sync", tenant_id="contoso", actor=ALICE, params=fractions)
        assert result.run is not None
        assert result.run.params == fractions
        for key, value in fractions.items():
            assert result.run.params[key].hex() == value.hex(), key
        (listed,) = gate.list_runs()
        fetched = gate.get_run(result.run.id)
        assert list(fetched.to_dict()) == list(listed.to_dict())
        assert fetched.to_dict() == listed.to_dict()
        assert list(result.to_dict()["run"]) == list(listed.to_dict())


def test_document_fields_after_tricky_text_read_right(sqlite_url: str) -> None:
    """Reading a field passes over the values before it unconverted: strings
    holding quotes, backslashes, brackets and non-ASCII text, and nested
    objects and lists, do not disturb the fields after them."""
    tricky = {
        'q"}': 'x}],\\"{',
        "nested": {"k": "{[", "list": [{"a": "]"}, [], {}], "e": ""},
        "ünï": "\u2028 \U0001F600",
        "\\": [1, -2, 3.5, None, True, False],
    }
    with Gate.open(sqlite_url, REGISTRY, manual_clock="2026-01-01T09:00:00Z") as gate:
        gate.migrate()
        gate.upsert_connection(ready())
        result = gate.start(operation="inventory.sync", tenant_id="contoso", actor=ALICE, params=tricky)
        assert result.run is not None
        # Fields after params in the document, read before params itself.
        assert result.run.fencing_token == 1 and result.run.reasons == ()
        assert result.run.summary is None and result.run.sequence_id is None
        assert result.run.params == tricky
        assert result.pending == () and result.provider_connection_id == "graph"
        assert result.to_dict()["run"]["params"] == tricky


def _document_matches(document: Any, whole: Any, path: str) -> int:
    """Every field of `document` read by name equals `whole` (its `to_dict`),
    an object field being a Document one level down; returns the fields read."""
    assert type(document) is Document and document.to_dict() == whole, path
    assert list(document.to_dict()) == list(whole), path
    with pytest.raises(KeyError):
        document["no_such_field"]
    read = 0
    for key, value in whole.items():
        item = document[key]
        if isinstance(value, dict):
            read += _document_matches(item, value, f"{path}.{key}")
        else:
            assert type(item) is not Document and item == value, f"{path}.{key}"
            read += 1
    return read


def test_a_document_reads_each_field_as_the_whole_conversion_has_it(sqlite_url: str) -> None:
    """A result's Document, read field by field down every object, gives what
    converting it whole gives, for each kind of result read through one."""
    with Gate.open(sqlite_url, REGISTRY, manual_clock="2026-01-01T09:00:00Z") as gate:
        gate.migrate()
        gate.upsert_connection(ready())
        params = {"n": 1, "nested": {"list": [{"a": 1}, []], "none": None}, "f": 0.1}
        documents = []

        def kept(result: Any) -> Any:
            # Taken before anything reads the whole result (which lets it go).
            documents.append((type(result).__name__, vars(result)["_document"]))
            return result

        accepted = kept(gate.start(operation="inventory.sync", tenant_id="contoso", actor=ALICE, params=params))
        deduped = kept(gate.start(operation="inventory.sync", tenant_id="contoso", actor=ALICE, params=params))
        kept(gate.start(operation="inventory.sync", tenant_id="nobody", actor=ALICE))
        assert accepted.run is not None and deduped.outcome == "deduped"
        kept(gate.get_run(accepted.run.id))
        kept(gate.present_run(accepted.run))
        kept(gate.present(accepted))
        read = 0
        for name, document in documents:
            read += _document_matches(document, document.to_dict(), name)
        assert read >= 100
        assert repr(documents[1][1]).startswith('Document({"outcome":"deduped","operation":"inventory.sync"')
