"""Fixtures: fresh SQLite files and PostgreSQL databases, the shared registry.

PostgreSQL is started by scripts/postgres-up when it is not running; the tests
never skip for want of a server."""

from __future__ import annotations

import os
import pathlib
import subprocess
import uuid
from typing import Iterator

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]
REGISTRY = ROOT / "tests" / "conformance" / "registry.toml"
ADMIN_URL = os.environ.get("STARTGATE_TEST_POSTGRES", "postgres://postgres@127.0.0.1:5432/postgres")
ALICE = {
    "id": "alice",
    "is_member": True,
    "capabilities": ["inventory.sync", "restore.execute", "tenant.manage", "provider.manage", "compliance.read"],
}


def ready(tenant: str = "contoso", id: str = "graph", **overrides: object) -> dict:
    connection = {
        "tenant_id": tenant,
        "id": id,
        "provider": "microsoft_graph",
        "display_name": "Microsoft Graph",
        "is_default": True,
        "consent": "granted",
        "credential": "present",
        "health": "ok",
    }
    connection.update(overrides)
    return connection


def psql(sql: str, url: str = ADMIN_URL) -> None:
    subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", url, "-c", sql], check=True, capture_output=True)


_started = False


def create_database(tag: str) -> str:
    global _started
    if not _started:
        subprocess.run([str(ROOT / "scripts" / "postgres-up")], check=True)
        _started = True
    name = f"startgate_test_py_{tag}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    psql(f"CREATE DATABASE {name}")
    return ADMIN_URL.rsplit("/", 1)[0] + "/" + name


def drop_database(url: str) -> None:
    psql(f"DROP DATABASE IF EXISTS {url.rsplit('/', 1)[1]} WITH (FORCE)")


@pytest.fixture
def sqlite_url(tmp_path: pathlib.Path) -> str:
    return f"sqlite://{tmp_path / 'startgate.db'}"


@pytest.fixture
def postgres_url(request: pytest.FixtureRequest) -> Iterator[str]:
    url = create_database(request.node.name.split("[")[0][:20].lower())
    yield url
    drop_database(url)


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite://{tmp_path / 'startgate.db'}"
    else:
        database = create_database(request.node.name.split("[")[0][:20].lower())
        yield database
        drop_database(database)
