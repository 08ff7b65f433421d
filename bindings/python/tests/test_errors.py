"""Each stable code arrives as its own exception class with ``.code``, the
message names the field, the driver's error is kept as ``__cause__``, and bad
input writes nothing."""

from __future__ import annotations

import pathlib
import subprocess
import time

import pytest

import startgate
from startgate import Gate

from conftest import ALICE, REGISTRY, ROOT, create_database, drop_database, ready

BASE = {"operation": "inventory.sync", "tenant_id": "contoso", "actor": ALICE}


def test_invalid_input_names_the_field_and_writes_nothing(sqlite_url: str) -> None:
    gate = Gate.open(sqlite_url, REGISTRY)
    gate.migrate()
    cases = [
        ({"tenant_id": "contoso", "actor": ALICE}, "operation"),
        ({**BASE, "tenant_id": ""}, "tenant_id"),
        ({**BASE, "actor": {"id": "a", "is_member": "yes"}}, "actor.is_member"),
        ({**BASE, "colour": "blue"}, "colour"),
        ({**BASE, "params": [1, 2]}, "params"),
        ({**BASE, "subject": "x" * (10 * 1024 * 1024)}, "limit"),
        ({**BASE, "initiator": "cron"}, "initiator"),
    ]
    for request, field in cases:
        with pytest.raises(startgate.InvalidRequest) as caught:
            gate.start(request)
        assert caught.value.code == "invalid_request" and field in str(caught.value)
        assert isinstance(caught.value, startgate.Error)
    with pytest.raises(startgate.InvalidRequest, match="secret"):
        gate.upsert_connection({"tenant_id": "c", "id": "x", "provider": "p", "secret": "s"})
    with pytest.raises(startgate.InvalidRequest, match="clock"):
        gate.advance_clock(1)
    assert gate.list_runs() == []


def test_each_code_has_its_exception(sqlite_url: str) -> None:
    with pytest.raises(startgate.RegistryInvalid, match=r"operations\.x\.label"):
        Gate.open(sqlite_url, registry_toml="[operations.x]\nlabel = 1\n")
    gate = Gate.open(sqlite_url, REGISTRY)
    gate.migrate()
    with pytest.raises(startgate.UnknownOperation, match="inventory.synk"):
        gate.start({**BASE, "operation": "inventory.synk"})
    with pytest.raises(startgate.RunNotFound, match="424242"):
        gate.get_run(424242)
    gate.upsert_connection(ready())
    run = gate.start(BASE).run
    assert run is not None
    with pytest.raises(startgate.InvalidTransition, match="fencing token 99"):
        gate.mark_running(run.id, 99)
    with pytest.raises(startgate.StoreUnavailable) as caught:
        Gate.open("postgres://postgres@127.0.0.1:1/none", REGISTRY, connect_timeout_ms=500, acquire_timeout_ms=500)
    assert caught.value.code == "store_unavailable"
    assert isinstance(caught.value.__cause__, startgate.DriverError), "the driver's error is kept"
    assert {cls.code for cls in startgate.Error.__subclasses__()} == {
        "invalid_request", "unknown_operation", "registry_invalid", "run_not_found", "invalid_transition",
        "store_unavailable", "store_timeout", "migration_failed", "internal",
    }


def test_migrate_through_a_transaction_pooler_is_migration_failed() -> None:
    url = create_database("pooled")
    try:
        subprocess.run([str(ROOT / "scripts" / "pgbouncer-up")], check=True)
        pooled = f"postgres://postgres@127.0.0.1:6433/{url.rsplit('/', 1)[1]}?pool_mode=transaction"
        with pytest.raises(startgate.MigrationFailed, match="directly"):
            Gate.open(pooled, REGISTRY).migrate()
    finally:
        drop_database(url)


def test_a_held_lock_is_store_timeout_within_the_bound(postgres_url: str) -> None:
    gate = Gate.open(postgres_url, REGISTRY, statement_timeout_ms=500, acquire_timeout_ms=500)
    gate.migrate()
    gate.upsert_connection(ready())
    locker = subprocess.Popen(["psql", "-q", postgres_url, "-c",
                               "BEGIN; LOCK TABLE startgate.operation_runs IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(3); COMMIT;"],
                              stdout=subprocess.DEVNULL)
    time.sleep(0.5)
    began = time.monotonic()
    with pytest.raises(startgate.StoreTimeout):
        gate.start(BASE)
    assert time.monotonic() - began < 2.5
    locker.wait()
    assert gate.start(BASE).outcome == "accepted"


def test_no_python_exception_type_reaches_the_caller(sqlite_url: str, tmp_path: "pathlib.Path") -> None:
    """RecursionError, ValueError, TypeError, UnicodeDecodeError: each case is
    an InvalidRequest (or RegistryInvalid) naming the field instead."""
    import datetime

    gate = Gate.open(sqlite_url, REGISTRY)
    gate.migrate()
    gate.upsert_connection(ready())
    run = gate.start(BASE).run
    assert run is not None and run.fencing_token is not None
    deep: object = []
    for _ in range(10_000):
        deep = [deep]
    cases = [
        ("request", lambda: gate.start({**BASE, "params": {"deep": deep}})),
        ("params.when", lambda: gate.start({**BASE, "params": {"when": datetime.datetime.now()}})),
        ("params", lambda: gate.start({**BASE, "params": {1: "one"}})),
        ("params.tags", lambda: gate.start({**BASE, "params": {"tags": {"a", "b"}}})),
        ("params.n", lambda: gate.start({**BASE, "params": {"n": float("nan")}})),
        ("params.n", lambda: gate.start({**BASE, "params": {"n": 2**70}})),
        ("tenant_id", lambda: gate.start({**BASE, "tenant_id": "\udfff"})),
        ("request", lambda: gate.start(5)),  # type: ignore[arg-type]
        ("requests", lambda: gate.check(5)),  # type: ignore[arg-type]
        ("run_id", lambda: gate.mark_running(True, run.fencing_token)),  # type: ignore[arg-type]
        ("run_id", lambda: gate.mark_running(float(run.id), run.fencing_token)),  # type: ignore[arg-type]
        ("run_id", lambda: gate.mark_running(2**63, run.fencing_token)),
        ("tenant_id", lambda: gate.get_connection(b"contoso", "graph")),  # type: ignore[arg-type]
        ("seconds", lambda: gate.advance_clock("soon")),  # type: ignore[arg-type]
        ("manual_clock", lambda: Gate.open(sqlite_url, REGISTRY, manual_clock=datetime.datetime(2026, 1, 1))),
        ("url", lambda: Gate.open(b"sqlite::memory:", REGISTRY)),  # type: ignore[arg-type]
        ("registry", lambda: Gate.open("sqlite::memory:", b"registry.toml")),  # type: ignore[arg-type]
    ]
    for field, call in cases:
        with pytest.raises(startgate.InvalidRequest) as caught:
            call()
        assert caught.value.field == field, caught.value
        assert f": {field}: " in str(caught.value)
    latin1 = tmp_path / "latin1.toml"
    latin1.write_bytes(b'[operations.a]\nlabel = "caf\xe9"\n')
    with pytest.raises(startgate.RegistryInvalid, match="not UTF-8"):
        Gate.open("sqlite::memory:", latin1)
    with pytest.raises(startgate.RegistryInvalid, match="it does not exist"):
        Gate.open("sqlite::memory:", tmp_path / "missing.toml")
    assert gate.get_run(run.id).status.value == "queued"
