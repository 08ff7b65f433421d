"""The README's Python quickstarts are the files in examples/, verbatim, and they
run; the typed example passes mypy --strict."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

from conftest import ROOT

EXAMPLES = ROOT / "bindings" / "python" / "examples"


@pytest.mark.parametrize("name", ["quickstart.py", "quickstart_async.py"])
def test_readme_shows_the_example_verbatim(name: str) -> None:
    readme = (ROOT / "README.md").read_text()
    marker = f"<!-- quickstart: bindings/python/examples/{name} -->\n```python\n"
    assert marker in readme, f"README lacks the marker for {name}"
    start = readme.index(marker) + len(marker)
    end = readme.index("```", start)
    assert readme[start:end] == (EXAMPLES / name).read_text()


def test_quickstarts_run(tmp_path: pathlib.Path) -> None:
    for db in pathlib.Path("/tmp").glob("startgate-quickstart.db*"):
        db.unlink()
    sync = subprocess.run([sys.executable, str(EXAMPLES / "quickstart.py")], cwd=ROOT, capture_output=True, text=True)
    assert sync.returncode == 0, sync.stderr
    assert "Inventory sync queued" in sync.stdout
    assert "Inventory sync succeeded | notify: False" in sync.stdout, "scheduled runs never notify"
    concurrent = subprocess.run([sys.executable, str(EXAMPLES / "quickstart_async.py")], cwd=ROOT, capture_output=True, text=True)
    assert concurrent.returncode == 0, concurrent.stderr
    # Both starts race for one scope: exactly one is queued, the other sees it.
    assert concurrent.stdout.count("[queued]") == 1, concurrent.stdout
    assert concurrent.stdout.count("[scope busy]") == 1, concurrent.stdout


def test_typed_example_passes_mypy_strict() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(EXAMPLES / "typed_example.py")],
        capture_output=True, text=True, env={**os.environ, "MYPYPATH": ""},
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_installed_package_passes_mypy_strict() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "-p", "startgate"],
        capture_output=True, text=True, env={**os.environ, "MYPYPATH": ""},
    )
    assert result.returncode == 0, result.stdout + result.stderr
