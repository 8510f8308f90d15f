"""mypy passes over what pyproject.toml's [tool.mypy] names (the engine and the pure marketplace
adapters, typed with the records generated from the schemas), and it bites: a misspelt field in
a record the engine builds, or a record of the wrong shape handed to it, fails the check."""

from __future__ import annotations

import shutil
from pathlib import Path

from mypy import api

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("lockstock", "streams", "connectors", "schemas")


def mypy(root: Path, cache: Path) -> tuple[str, int]:
    stdout, stderr, status = api.run(["--config-file", str(root / "pyproject.toml"), "--cache-dir", str(cache)])
    return stdout + stderr, status


def copy_tree(into: Path) -> Path:
    for package in PACKAGES:
        shutil.copytree(ROOT / package, into / package, ignore=shutil.ignore_patterns("__pycache__", "static"))
    shutil.copy(ROOT / "pyproject.toml", into / "pyproject.toml")
    return into


def test_the_engine_and_the_adapters_type_check(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)  # [tool.mypy] files are relative to the project
    report, status = mypy(ROOT, tmp_path / "cache")
    assert status == 0, report
    assert "Success: no issues found" in report


def test_a_misspelt_field_in_a_decision_fails_the_check(tmp_path, monkeypatch):
    root = copy_tree(tmp_path / "tree")
    orders = root / "streams" / "engine" / "orders.py"
    source = orders.read_text()
    assert '"decided_at": now, "channel": record.channel' in source
    orders.write_text(source.replace('"decided_at": now, "channel": record.channel',
                                     '"decided_on": now, "channel": record.channel'))
    monkeypatch.chdir(root)
    report, status = mypy(root, tmp_path / "cache")
    assert status == 1
    assert 'streams/engine/orders.py' in report and '"decided_on"' in report


def test_a_result_handed_where_a_request_is_expected_fails_the_check(tmp_path, monkeypatch):
    root = copy_tree(tmp_path / "tree")
    stock = root / "streams" / "engine" / "stock.py"
    stock.write_text(stock.read_text() + (
        "\n\ndef _misuse(result: LineLockResult, catalog: Catalog) -> None:\n"
        "    apply_line_request(None, result, catalog, 0)\n"))
    monkeypatch.chdir(root)
    report, status = mypy(root, tmp_path / "cache")
    assert status == 1
    assert 'incompatible type "LineLockResult"; expected "LineLockRequest"' in report
