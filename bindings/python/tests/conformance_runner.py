"""The Python runner of the conformance vectors (tests/conformance/README.md).
Every call goes through Gate's own methods."""

from __future__ import annotations

import json
import pathlib
import re
import subprocess
from typing import Any, Callable, Dict, List

from startgate import Error, Gate

from conftest import ROOT

EXPECTATION_KEYS = {"expect", "expect_error", "expect_message", "expect_field", "present", "present_run", "save"}


def scenario_files() -> List[pathlib.Path]:
    return sorted((ROOT / "tests" / "conformance").glob("*.json"))


def native(value: Any) -> Any:
    """Tags (values a JSON file cannot hold) as Python values: ``$text``
    with UTF-16 units (a lone surrogate is a lone surrogate in a Python
    str), ``$number`` NaN or infinities, ``$nest`` nested lists, ``$repeat``
    a long string."""
    if isinstance(value, dict):
        if len(value) == 1:
            (tag, spec), = value.items()
            if tag == "$text":
                return "".join(p if isinstance(p, str) else chr(p) for p in spec)
            if tag == "$number":
                return float({"NaN": "nan", "Infinity": "inf", "-Infinity": "-inf"}[spec])
            if tag == "$nest":
                nested: Any = []
                for _ in range(spec - 1):
                    nested = [nested]
                return nested
            if tag == "$repeat":
                return spec[0] * spec[1]
        return {k: native(v) for k, v in value.items()}
    if isinstance(value, list):
        return [native(v) for v in value]
    return value


def open_gate(a: Dict[str, Any]) -> None:
    registry = ROOT / "tests" / "conformance" / a["registry"] if "registry" in a else None
    Gate.open(a["url"], registry, registry_toml=a.get("registry_toml")).close()


def document(value: Any) -> Any:
    """A result as its JSON document (errors in place as {"error": ...})."""
    if isinstance(value, Error):
        return {"error": {"code": value.code, "message": str(value), "field": value.field}}
    if isinstance(value, list):
        return [document(v) for v in value]
    if hasattr(value, "to_dict"):
        return value.to_dict()
    return value


def invoke(gate: Gate, name: str, a: Dict[str, Any]) -> Any:
    calls: Dict[str, Callable[[], Any]] = {
        "start": lambda: gate.start(a["request"]),
        "check": lambda: gate.check(a["requests"]),
        "start_sequence": lambda: gate.start_sequence(a["request"]),
        "mark_running": lambda: gate.mark_running(a["run_id"], a["fencing_token"]),
        "heartbeat": lambda: gate.heartbeat(a["run_id"], a["fencing_token"]),
        "complete": lambda: gate.complete(a["completion"]),
        "cancel": lambda: gate.cancel(a["run_id"], a.get("reason_code")),
        "reap_stale": gate.reap_stale,
        "get_run": lambda: gate.get_run(a["run_id"]),
        "list_runs": lambda: gate.list_runs(**a.get("filter", {})),
        "attempts_for_run": lambda: gate.attempts_for_run(a["run_id"]),
        "upsert_connection": lambda: gate.upsert_connection(a["connection"]),
        "get_connection": lambda: gate.get_connection(a["tenant_id"], a["id"]),
        "list_connections": lambda: gate.list_connections(a["tenant_id"]),
        "advance_clock": lambda: gate.advance_clock(a["seconds"]),
        "open": lambda: open_gate(a),
    }
    return calls[name]()


def substitute(value: Any, saved: Dict[str, Any]) -> Any:
    if isinstance(value, str) and value.startswith("$") and not value.startswith("${") and len(value) > 1:
        return saved[value[1:]]
    if isinstance(value, str) and "${" in value:
        return re.sub(r"\$\{(\w+)\}", lambda m: str(saved[m.group(1)]), value)
    if isinstance(value, dict):
        return {k: substitute(v, saved) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, saved) for v in value]
    return value


def lookup(value: Any, path: str) -> Any:
    for key in path.split("."):
        value = value[int(key)] if isinstance(value, list) else (value or {}).get(key)
    return value


def matches(expected: Any, actual: Any, path: str) -> None:
    if expected == "<any>":
        assert actual is not None, f"{path}: expected a value, found null"
    elif isinstance(expected, dict):
        assert isinstance(actual, dict), f"{path}: expected an object, found {actual!r}"
        for key, want in expected.items():
            matches(want, actual.get(key), f"{path}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), f"{path}: expected {len(expected)} item(s), found {actual!r}"
        for i, (want, have) in enumerate(zip(expected, actual)):
            matches(want, have, f"{path}[{i}]")
    else:
        assert expected == actual and type(expected) is type(actual) or (
            isinstance(expected, (int, float)) and not isinstance(expected, bool) and expected == actual
        ), f"{path}: expected {expected!r}, found {actual!r}"


def host_save_connection(url: str, doc: Any) -> None:
    """The host application writing its own table (tests/conformance/host_view.sql)."""
    subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", "-v", f"doc={json.dumps(doc)}", url],
                   input="SELECT public.host_save_connection(:'doc'::jsonb);", text=True,
                   check=True, capture_output=True)


def run_scenario(file: pathlib.Path, url: str, migrate: bool = True, host_view: bool = False) -> None:
    """``host_view``: the connection facts are the host's own table's, read
    through a view; connections are written the host's way."""
    scenario = json.loads(file.read_text())
    clock = scenario.get("clock", "2026-01-01T09:00:00Z")
    if "registry" in scenario:
        gate = Gate.open(url, file.parent / scenario["registry"], manual_clock=clock)
    else:
        gate = Gate.open(url, registry_toml=scenario["registry_toml"], manual_clock=clock)
    if migrate:
        gate.migrate()
    for connection in scenario.get("connections", []):
        if host_view:
            host_save_connection(url, connection)
        else:
            gate.upsert_connection(connection)
    saved: Dict[str, Any] = {}
    for i, call in enumerate(scenario["calls"]):
        name = call["call"]
        where = f"{file.name} calls[{i}] ({name})"
        args = native(substitute({k: v for k, v in call.items() if k not in EXPECTATION_KEYS}, saved))
        if host_view and name == "upsert_connection":
            if "expect_error" in call:
                continue  # the gate's own table's validation: not this setup's subject
            host_save_connection(url, args["connection"])
            args = {"tenant_id": args["connection"]["tenant_id"], "id": args["connection"]["id"]}
            name = "get_connection"
        try:
            result = invoke(gate, name, args)
        except Error as error:
            assert "expect_error" in call, f"{where}: unexpected {error.code}: {error}"
            assert error.code == call["expect_error"], f"{where}: expected {call['expect_error']}, got {error.code}: {error}"
            assert call.get("expect_message", "") in str(error), f"{where}: {error} lacks {call.get('expect_message')}"
            if "expect_field" in call:
                assert f": {call['expect_field']}: " in str(error), f"{where}: {error} does not name {call['expect_field']}"
                if error.code == "invalid_request":
                    assert error.field == call["expect_field"], f"{where}: field {error.field!r}"
            continue
        assert "expect_error" not in call, f"{where}: expected error {call['expect_error']}, got success"
        doc = document(result)
        for var, path in call.get("save", {}).items():
            saved[var] = lookup(doc, path)
            assert saved[var] is not None, f"{where}: nothing at {path}"
        if "expect" in call:
            matches(substitute(call["expect"], saved), doc, f"{where}: result")
        if "present" in call:
            matches(substitute(call["present"], saved), gate.present(result).to_dict(), f"{where}: presentation")
        if "present_run" in call:
            run = result.run if name in ("complete", "cancel") else result
            matches(substitute(call["present_run"], saved), gate.present_run(run).to_dict(), f"{where}: presentation")
    gate.close()
