"""The import contracts of pyproject.toml ([tool.importlinter]) hold, and they bite: the same
contracts over a copy of the tree whose engine imports Faust, or whose core imports an
application, fail."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("apps", "lockstock", "streams", "connectors", "schemas")
LINT = "from importlinter.cli import lint_imports_command; lint_imports_command()"


def lint(root: Path) -> subprocess.CompletedProcess:
    # PYTHONPATH first: the packages under ``root`` are found before the editable install's.
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([sys.executable, "-c", LINT], cwd=root, env=env, capture_output=True, text=True, timeout=120)


def test_the_import_contracts_are_kept():
    result = lint(ROOT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def copy_tree(tmp_path: Path) -> None:
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__", "static"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")


def test_importing_faust_in_the_engine_breaks_a_contract(tmp_path):
    copy_tree(tmp_path)
    state = tmp_path / "streams" / "engine" / "state.py"
    state.write_text(state.read_text() + "\nimport faust  # noqa: E402,F401\n")
    result = lint(tmp_path)
    assert result.returncode != 0
    assert "The engine (decision logic) imports no Kafka, Faust, RocksDB or aiohttp BROKEN" in " ".join(result.stdout.split())
    assert "streams.engine.state -> faust" in result.stdout


LAYERS = "Applications on top, then the engine and the connectors (siblings), then the core BROKEN"


@pytest.mark.parametrize(("module", "imported", "line"), [
    # the core importing an application
    ("lockstock/topics.py", "apps.sheet", "lockstock.topics -> apps.sheet"),
    # streams and connectors are independent siblings: not even the engine imports a connector
    ("streams/views.py", "connectors.gateway", "streams.views -> connectors.gateway"),
])
def test_an_import_against_the_layers_breaks_them(tmp_path, module, imported, line):
    copy_tree(tmp_path)
    path = tmp_path / module
    path.write_text(path.read_text() + f"\nimport {imported}  # noqa: E402,F401\n")
    result = lint(tmp_path)
    assert result.returncode != 0
    assert LAYERS in " ".join(result.stdout.split())
    assert line in result.stdout
