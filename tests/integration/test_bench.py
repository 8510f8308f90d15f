"""`lockstock bench` end to end on the real broker, small: every figure the issue names is written
with a measured value, and the efficiency is the ratio of the two measured rates."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration


@pytest.mark.timeout(600)  # slow CI machines: the run itself is bounded by its own timeout
def test_bench_writes_every_figure_from_a_real_run(kafka, workers, tmp_path):
    workers.start().wait_ready()
    out = tmp_path / "b.json"
    result = subprocess.run(
        [sys.executable, "-m", "lockstock", "bench", "--orders", "1000", "--rates", "100", "--rate-seconds", "3",
         "--passthrough-messages", "20000", "--json", str(out)],
        env={**os.environ, **kafka.settings.as_env()}, capture_output=True, text=True, timeout=400,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    figures = json.loads(out.read_text())
    assert figures["passthrough"]["messages"] == 20000 and figures["passthrough_per_s"] > 0
    assert figures["faust_floor"]["events"] >= 60000 and figures["faust_floor_per_s"] == figures["faust_floor"]["per_s"] > 0
    assert figures["saturation"]["orders"] == 1000 and figures["saturation"]["undecided"] == 0
    assert figures["pipeline_per_s"] > 0 and figures["pipeline_orders_per_s"] > 0
    assert figures["pipeline_per_s"] >= figures["pipeline_orders_per_s"]  # lines >= orders
    assert figures["efficiency"] == pytest.approx(figures["pipeline_per_s"] / figures["passthrough_per_s"], abs=1e-4)
    latency = figures["latency"]["100"]
    assert 0 < latency["p50_ms"] <= latency["p99_ms"] and latency["undecided"] == 0
    assert figures["oversold"] == 0 and figures["undecided"] == 0
    assert figures["broker"] in ("embedded", "kafka") and figures["cpu"] and figures["partitions"] == kafka.settings.partitions
    assert "passthrough_per_s" in result.stdout and "efficiency" in result.stdout  # the human table
