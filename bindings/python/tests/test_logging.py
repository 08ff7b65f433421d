"""The library's records in Python's ``logging`` (logger ``startgate``): the
tracing fields as record attributes, on the calling thread, before the call
returns; nothing the logger's level lets not through; never params."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import threading
from typing import List

import pytest

import startgate
from startgate import AsyncGate, Gate, Outcome

from conftest import ALICE, REGISTRY, ready

SECRET = "param-secret-py-2f8d"


def starts(records: List[logging.LogRecord], outcome: str) -> List[logging.LogRecord]:
    return [r for r in records if getattr(r, "call", None) == "start" and getattr(r, "outcome", None) == outcome]


def no_secret(records: List[logging.LogRecord]) -> None:
    for record in records:
        assert SECRET not in record.getMessage() and SECRET not in repr(record.__dict__), record.__dict__


def test_a_start_is_logged_with_its_fields(url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="startgate")
    with Gate.open(url, REGISTRY) as gate:
        gate.migrate()
        gate.upsert_connection(ready())
        result = gate.start(operation="inventory.sync", tenant_id="contoso", actor=ALICE, params={"note": SECRET})
        assert result.run is not None
        # Delivered before start() returned, on this thread.
        [accepted] = starts(caplog.records, "accepted")
        assert accepted.name == "startgate" and accepted.levelno == logging.INFO
        assert accepted.getMessage() == "start inventory.sync: accepted"
        assert (accepted.operation, accepted.tenant_id, accepted.run_id) == ("inventory.sync", "contoso", result.run.id)
        assert accepted.round_trips >= 1 and accepted.retries == 0 and accepted.duration_us >= 0
        assert accepted.thread == threading.get_ident()
        assert accepted.startgate_fields["outcome"] == "accepted"
        assert not hasattr(accepted, "reason_code")

        deduped = gate.start(operation="inventory.sync", tenant_id="contoso", actor=ALICE, params={"note": SECRET + "x"})
        assert deduped.outcome is Outcome.DEDUPED
        [record] = starts(caplog.records, "deduped")
        assert record.params_differ is True and record.run_id == result.run.id

        with pytest.raises(startgate.InvalidRequest):
            gate.start(operation="inventory.sync", tenant_id="", actor=ALICE, params={"note": SECRET})
        [failed] = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert (failed.error, failed.field) == ("invalid_request", "tenant_id")
        # Reads are debug records: not collected at INFO.
        assert not [r for r in caplog.records if getattr(r, "call", None) == "upsert_connection"]
        no_secret(caplog.records)


def test_the_loggers_level_decides_what_is_collected(sqlite_url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="startgate")
    with Gate.open(sqlite_url, REGISTRY) as gate:
        gate.migrate()
        gate.upsert_connection(ready())
        gate.start(operation="inventory.sync", tenant_id="contoso", actor=ALICE)
        assert not [r for r in caplog.records if r.name == "startgate"]
        caplog.set_level(logging.DEBUG, logger="startgate")
        gate.list_runs()
        assert [r.call for r in caplog.records if r.name == "startgate"] == ["list_runs"]
        logging.getLogger("startgate").disabled = True
        try:
            gate.list_runs()
        finally:
            logging.getLogger("startgate").disabled = False
        assert len([r for r in caplog.records if r.name == "startgate"]) == 1


def test_a_loggers_unset_level_is_its_parents(sqlite_url: str, caplog: pytest.LogCaptureFixture) -> None:
    """The ``startgate`` logger with no level of its own collects at the
    root logger's level, whatever it is at each call."""
    assert logging.getLogger("startgate").level == logging.NOTSET
    caplog.set_level(logging.DEBUG)
    with Gate.open(sqlite_url, REGISTRY) as gate:
        gate.migrate()
        gate.list_runs()
        assert [r.call for r in caplog.records if r.name == "startgate"] == ["list_runs"]
        caplog.clear()
        logging.getLogger().setLevel(logging.WARNING)
        gate.list_runs()
        assert not [r for r in caplog.records if r.name == "startgate"]
        logging.getLogger().setLevel(logging.DEBUG)
        gate.list_runs()
        assert [r.call for r in caplog.records if r.name == "startgate"] == ["list_runs"]


def test_asyncio_records_arrive_in_the_loops_thread(url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="startgate")

    async def main() -> None:
        async with await AsyncGate.open(url, REGISTRY) as gate:
            await gate.migrate()
            await gate.upsert_connection(ready())
            results = await asyncio.gather(
                *(gate.start(operation="inventory.sync", tenant_id="contoso", actor=ALICE, params={"n": SECRET}) for _ in range(20))
            )
            accepted = [r for r in results if r.outcome is Outcome.ACCEPTED]
            assert len(accepted) == 1
            records = [r for r in caplog.records if getattr(r, "call", None) == "start"]
            assert len(records) == 20
            assert {r.thread for r in records} == {threading.get_ident()}
            assert [r.run_id for r in starts(records, "accepted")] == [accepted[0].run.id]
            no_secret(records)

    asyncio.run(main())


def test_startgate_log_writes_to_stderr(tmp_path) -> None:
    script = (
        "import startgate, sys\n"
        f"gate = startgate.Gate.open({str(tmp_path / 'x.db')!r}, {str(REGISTRY)!r})\n"
        "gate.migrate()\n"
        "gate.upsert_connection(dict(tenant_id='contoso', id='graph', provider='microsoft_graph', is_default=True,"
        " consent='granted', credential='present', health='ok'))\n"
        "gate.start(operation='inventory.sync', tenant_id='contoso', actor=dict(id='a', is_member=True,"
        " capabilities=['inventory.sync']))\n"
    )
    env = dict(os.environ, STARTGATE_LOG="info")
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    lines = [line for line in out.stderr.splitlines() if "startgate: start inventory.sync: accepted" in line]
    assert len(lines) == 1, out.stderr
    assert " INFO " in lines[0] and "tenant_id='contoso'" in lines[0] and "round_trips=" in lines[0], lines[0]
    env.pop("STARTGATE_LOG")
    quiet = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    assert quiet.stderr == ""
