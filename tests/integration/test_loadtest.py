"""`lockstock loadtest` against a running worker on the real broker, as a seller runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration


def test_loadtest_reports_every_order_decided_and_nothing_oversold(kafka, workers, tmp_path):
    workers.start().wait_ready()
    out = tmp_path / "load.json"
    result = subprocess.run(
        [sys.executable, "-m", "lockstock", "loadtest", "--rate", "200", "--duration", "5", "--skus", "5",
         "--stock-per-sku", "150", "--buyers", "300", "--cancellations", "0.2", "--duplicates", "0.1",
         "--json", str(out)],
        env={**os.environ, **kafka.settings.as_env()}, capture_output=True, text=True, timeout=180,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "offered" in result.stdout and "latency p99_ms" in result.stdout  # progress lines and the table
    report = json.loads(out.read_text())
    assert 900 <= report["orders"] <= 1000
    assert report["undecided"] == 0 and report["oversold"] == 0
    assert sum(report["final_status"].values()) == report["orders"]
    assert report["held_units"] <= 5 * 150
    assert report["final_status"].get("REJECTED", 0) > 0  # 5 x 150 units cannot cover ~1000 orders
    assert report["reasons"].get("RELEASED:load test cancellation", 0) > 0
    assert 0 < report["latency"]["p50_ms"] <= report["latency"]["p99_ms"] <= report["latency"]["max_ms"]
    assert report["offered_per_s"] == pytest.approx(200, rel=0.1)
