"""`lockstock loadtest` against a running worker on the real broker, as a seller runs it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from apps.load.chaos import ChaosRun
from apps.load.deaths import PoolWatch, Watchdog
from apps.load.profile import LoadProfile
from apps.load.run import LoadRun
from apps.supervise import WorkerPool

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


def test_hot_sku_knob_sells_one_sku_to_a_crowd_and_every_order_locks(kafka, workers, tmp_path):
    """The issue's reproduction (one SKU, one unit per new buyer, nothing cancelled), scaled down."""
    workers.start().wait_ready()
    out = tmp_path / "hot.json"
    result = subprocess.run(
        [sys.executable, "-m", "lockstock", "loadtest", "--hot-sku", "1", "--rate", "200", "--duration", "3",
         "--cancellations", "0", "--duplicates", "0", "--worker-url", workers.started[0].url, "--json", str(out)],
        env={**os.environ, **kafka.settings.as_env()}, capture_output=True, text=True, timeout=180,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["orders"] >= 500 and report["undecided"] == 0 and report["oversold"] == 0
    assert report["final_status"] == {"LOCKED": report["orders"]}  # the auto stock lets every hot order lock
    assert report["held_units"] == report["orders"] <= report["hot_sku"]["stock"]
    assert report["workers_died"] == [] and not report["stopped_early"]
    assert f"watching the worker at {workers.started[0].url}" in result.stdout


@pytest.mark.timeout(240)
def test_a_worker_the_run_started_that_dies_fails_the_run_with_its_log_tail(kafka, tmp_path):
    """A worker killed outside any chaos plan: the run stops early and names it, PID, exit
    status and its log's last lines, instead of reporting its orders as undecided."""
    pool = WorkerPool(kafka.settings, tmp_path / "logs")
    victim = pool.start()
    victim.wait_ready()
    killed_at = []

    def kill_at_two_seconds(t: float) -> None:
        if t >= 2 and not killed_at:
            os.kill(victim.pid, signal.SIGKILL)  # not victim.kill(): that is a deliberate, expected kill
            killed_at.append(time.monotonic())

    profile = LoadProfile(rate=100, duration_s=30, skus=5, stock_per_sku=10_000, seed=3)
    try:
        with Watchdog([PoolWatch(pool)], interval_s=0.2) as watchdog:
            report = LoadRun(kafka, profile, settle_s=120, on_tick=kill_at_two_seconds, watchdog=watchdog).run()
    finally:
        pool.stop_all()
    [dead] = report["workers_died"]
    assert dead["pid"] == victim.pid and dead["exit_status"] == -signal.SIGKILL and "SIGKILL" in dead["how"]
    assert dead["log"] == str(victim.log_path)
    tail = dead["log_tail"].splitlines()
    assert 0 < len(tail) <= 40 and tail == victim.log_path.read_text().splitlines()[-len(tail):]
    assert report["stopped_early"] and report["orders"] < 30 * 100  # the traffic stopped, nobody waited out the settle
    assert report["seconds"] < 30


@pytest.mark.timeout(300)
def test_loadtest_fails_when_the_worker_at_worker_url_dies(kafka, workers, tmp_path):
    """A worker the loadtest did not start (the user's), watched at --worker-url."""
    worker = workers.start()
    worker.wait_ready()
    out = tmp_path / "died.json"
    command = [sys.executable, "-m", "lockstock", "loadtest", "--rate", "100", "--duration", "60", "--skus", "5",
               "--settle", "120", "--worker-url", worker.url, "--json", str(out)]
    with subprocess.Popen(command, env={**os.environ, **kafka.settings.as_env()}, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True) as loadtest:
        try:
            lines = []
            for line in loadtest.stdout:  # the traffic is flowing once progress lines come
                lines.append(line)
                if line.startswith("t=  2"):
                    break
            worker.process.send_signal(signal.SIGKILL)  # by its PID, which this test started
            rest, _ = loadtest.communicate(timeout=120)
        finally:
            if loadtest.poll() is None:
                loadtest.kill()
    output = "".join(lines) + rest
    assert loadtest.returncode == 1, output[-4000:]
    report = json.loads(out.read_text())
    [dead] = report["workers_died"]
    assert dead["worker"] == worker.url and "/ready/ stopped answering" in dead["how"]
    assert report["stopped_early"] and report["orders"] < 60 * 100
    assert "workers died" in output and f"FAILURE: worker {worker.url} died" in output


@pytest.mark.timeout(300)
def test_chaos_run_tells_its_own_kills_from_a_worker_killed_outside_its_plan(kafka, tmp_path):
    """The plan's SIGKILL is expected; one more SIGKILL after the plan is done is a death."""
    profile = LoadProfile(rate=80, duration_s=30, skus=6, stock_per_sku=10_000, seed=4)
    chaos = ChaosRun(kafka, profile, settle_s=120, workers=2, kills=1, seed=4, log_dir=tmp_path / "logs",
                     progress=lambda line: None)
    planned = chaos.load.on_tick
    last_event_s = max(e.at_s for e in chaos.plan)
    victims = []

    def then_kill_one_more(t: float) -> None:
        planned(t)
        if not chaos.pending and t >= last_event_s + 3 and not victims:
            victims.append(chaos.slots[0])
            os.kill(chaos.slots[0].pid, signal.SIGKILL)  # a worker this run started, by its PID

    chaos.load.on_tick = then_kill_one_more
    report = chaos.run()
    assert [e["action"] for e in report["chaos"]["events"]].count("kill") == 1  # the plan ran
    [dead] = report["workers_died"]  # only the kill outside the plan
    assert dead["pid"] == victims[0].pid and dead["exit_status"] == -signal.SIGKILL
    assert dead["log_tail"] and dead["log"] == str(victims[0].log_path)
    assert report["stopped_early"] and report["chaos"]["state_mismatches"] is None  # not compared: a worker died
