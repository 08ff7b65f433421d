"""The shared conformance vectors through Python, on SQLite and PostgreSQL."""

from __future__ import annotations

import pathlib
import subprocess

import pytest

from conformance_runner import run_scenario, scenario_files
from conftest import psql


def test_there_are_enough_vectors() -> None:
    assert len(scenario_files()) >= 25


@pytest.mark.parametrize("file", scenario_files(), ids=lambda f: f.stem)
def test_vector_on_sqlite(file: pathlib.Path, tmp_path: pathlib.Path) -> None:
    run_scenario(file, f"sqlite://{tmp_path / 'conformance.db'}")


@pytest.fixture(scope="module")
def shared_postgres():  # type: ignore[no-untyped-def]
    from conftest import create_database, drop_database

    url = create_database("conformance")
    yield url
    drop_database(url)


@pytest.fixture(scope="module")
def host_view_postgres():  # type: ignore[no-untyped-def]
    """A migrated database whose connection facts are a host table's, through a view."""
    from startgate import Gate

    from conftest import REGISTRY, ROOT, create_database, drop_database

    url = create_database("hostview")
    Gate.open(url, REGISTRY).migrate()
    subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", url, "-f", str(ROOT / "tests" / "conformance" / "host_view.sql")],
                   check=True, capture_output=True)
    yield url
    drop_database(url)


@pytest.mark.parametrize("file", scenario_files(), ids=lambda f: f.stem)
def test_vector_with_facts_from_a_host_view(file: pathlib.Path, host_view_postgres: str) -> None:
    run_scenario(file, host_view_postgres, migrate=False, host_view=True)
    psql("TRUNCATE startgate.operation_runs, startgate.start_attempts, public.host_tenant_connections RESTART IDENTITY",
         host_view_postgres)


@pytest.mark.parametrize("file", scenario_files(), ids=lambda f: f.stem)
def test_vector_on_postgres(file: pathlib.Path, shared_postgres: str) -> None:
    run_scenario(file, shared_postgres)  # migrates on first use
    psql("TRUNCATE startgate.operation_runs, startgate.start_attempts, startgate.provider_connections RESTART IDENTITY", shared_postgres)
