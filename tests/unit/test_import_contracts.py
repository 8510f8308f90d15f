"""The import contracts of pyproject.toml ([tool.importlinter]) hold, and they bite: the same
contracts over a copy of the tree whose engine imports Faust fail."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("lockstock", "streams", "connectors", "schemas")
LINT = "from importlinter.cli import lint_imports_command; lint_imports_command()"


def lint(root: Path) -> subprocess.CompletedProcess:
    # PYTHONPATH first: the packages under ``root`` are found before the editable install's.
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([sys.executable, "-c", LINT], cwd=root, env=env, capture_output=True, text=True, timeout=120)


def test_the_import_contracts_are_kept():
    result = lint(ROOT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def test_importing_faust_in_the_engine_breaks_a_contract(tmp_path):
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__", "static"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    state = tmp_path / "streams" / "engine" / "state.py"
    state.write_text(state.read_text() + "\nimport faust  # noqa: E402,F401\n")
    result = lint(tmp_path)
    assert result.returncode != 0
    assert "The engine (decision logic) imports no Kafka, Faust, RocksDB or aiohttp BROKEN" in " ".join(result.stdout.split())
    assert "streams.engine.state -> faust" in result.stdout
