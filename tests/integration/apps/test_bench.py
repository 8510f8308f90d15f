"""`lockstock bench` end to end on the real broker, small: every figure the issue names is written
with a measured value, and the efficiency is the ratio of the two measured rates. The bench starts
its own worker (--start-workers), so it can read that worker's CPU time and memory."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration


@pytest.mark.timeout(600)  # slow CI machines: the run itself is bounded by its own timeout
def test_bench_writes_every_figure_from_a_real_run(kafka, tmp_path):
    out = tmp_path / "b.json"
    result = subprocess.run(
        [sys.executable, "-m", "lockstock", "bench", "--orders", "1000", "--rates", "100", "--rate-seconds", "3",
         "--passthrough-messages", "20000", "--hot-reservations", "2000", "--start-workers", "--json", str(out)],
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
    assert figures["workers_started_by_bench"] and figures["app_id"].startswith("lockstock-bench-")
    assert figures["workers_died"] == []
    assert figures["pipeline_cpu_s_per_10k_lines"] > 0 and latency["cpu_s_per_10k_lines"] > 0

    hot = figures["hot_sku"]
    assert "error" not in hot and hot["reservations"] == figures["hot_reservations"] == 2000
    assert hot["fill"]["locked"] == 2000 and hot["fill"]["undecided"] == 0 and hot["fill"]["seconds"] > 0
    assert hot["channel"] == "shopify" and hot["reservation_ttl_s"] == 3600  # the longest TTL in the catalog
    assert hot["open_at_end"] == 2000 and hot["expired_before_end"] is False  # held through the measurement
    assert hot["burst"]["orders"] == 1000 and hot["burst"]["undecided"] == 0 and hot["burst"]["oversold"] == 0
    assert figures["hot_lines_per_s"] == hot["lines_per_s"] > 0
    assert figures["hot_vs_pipeline"] == pytest.approx(hot["lines_per_s"] / figures["pipeline_per_s"], abs=1e-3)
    assert figures["hot_cpu_s_per_10k_lines"] == hot["cpu_s_per_10k_lines"] > 0
    record = figures["largest_changelog_record"]
    assert record["topic"] == f"{figures['app_id']}-stock-changelog" and record["records"] > 0
    assert figures["largest_changelog_record_bytes"] == record["bytes"] > 0
    [rss] = figures["worker_rss_mb"].values()  # one worker, still running when read
    assert 10 < rss < 100_000
    assert "fill " in result.stdout and "open reservations" in result.stdout  # progress while filling
    assert "hot SKU pipeline_per_s" in result.stdout and "largest stock changelog record" in result.stdout
    codec = figures["codec"]
    assert set(codec) == {"OrderPlaced", "LineLockRequests", "LineLockResults", "OrderDecision", "AuditRecord", "ChannelStock"}
    assert all(v > 0 for figures_of in codec.values() for k, v in figures_of.items() if k.endswith("_us"))
    assert "codec AuditRecord encode / decode us" in result.stdout
