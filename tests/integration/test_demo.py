"""`lockstock demo` end to end against the session's broker: every order decided, nothing
oversold, and the worker's live table agrees with the decision stream."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration


def test_demo_decides_every_order_without_oversell(broker, tmp_path):
    out = tmp_path / "demo.json"
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap, "LOCKSTOCK_DATA_DIR": str(tmp_path / "state")}
    result = subprocess.run(
        [sys.executable, "-m", "lockstock", "demo", "--orders", "150", "--json", str(out)],
        capture_output=True, text=True, timeout=240, env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads(out.read_text())
    assert summary["orders"] == 150 and summary["undecided"] == 0 and summary["oversold"] == 0
    assert summary["locked"] + summary["rejected"] == 150
    assert summary["worker_agrees"] and summary["inconsistent_duplicates"] == 0
    for sku, total in summary["units_total"].items():
        assert summary["units_locked"].get(sku, 0) <= total
