"""`lockstock demo` end to end against the session's broker: every order decided, nothing
oversold, and the worker's live table agrees with the decision stream."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration


def test_demo_plays_the_stream_decides_every_order_without_oversell(broker, tmp_path):
    out = tmp_path / "demo.json"
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap, "LOCKSTOCK_DATA_DIR": str(tmp_path / "state")}
    result = subprocess.run(
        [sys.executable, "-m", "lockstock", "demo", "--orders", "600", "--seconds", "15", "--json", str(out)],
        capture_output=True, text=True, timeout=240, env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads(out.read_text())
    for field in ("orders", "locked", "rejected", "released", "units_locked", "units_total", "oversold", "alerts",
                  "p50_ms", "p99_ms"):
        assert field in summary, field
    assert summary["orders"] >= 590 and summary["undecided"] == 0 and summary["oversold"] == 0
    assert summary["locked"] + summary["rejected"] + summary["released"] == summary["orders"]
    assert summary["worker_agrees"]
    assert summary["released"] > 0  # cancellations and expired unpaid locks
    assert summary["alerts"].get("CHANNEL_PAUSED") == 1 and summary["alerts"].get("CHANNEL_RESUMED") == 1
    assert 0 < summary["p50_ms"] <= summary["p99_ms"]
    for sku, total in summary["units_total"].items():
        assert 0 < summary["units_locked"][sku] <= total
    assert "seed split for BRZ-RING-01 refused" in result.stdout and "3600" in result.stdout
    assert "--- US surge ---" in result.stdout and "--- EU burst on BRZ-BAND-02 ---" in result.stdout
