"""The shared conformance vectors through Python, on SQLite and PostgreSQL."""

from __future__ import annotations

import pathlib

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


@pytest.mark.parametrize("file", scenario_files(), ids=lambda f: f.stem)
def test_vector_on_postgres(file: pathlib.Path, shared_postgres: str) -> None:
    run_scenario(file, shared_postgres)  # migrates on first use
    psql("TRUNCATE operation_runs, start_attempts, provider_connections RESTART IDENTITY", shared_postgres)
