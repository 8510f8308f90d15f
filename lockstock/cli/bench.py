"""`lockstock bench`: in one run, on one broker and one partition count, (a) the broker's own
ceiling (a plain consume -> produce loop), (b) the lock pipeline at saturation (orders placed ->
decisions, mixed single / multi-line), (c) the pipeline at fixed offered rates for latency, and
(d) Faust's own floor: how fast one worker's agent merely receives events, the bound any Faust
pipeline lives under (lockstock.load.faustfloor).
Writes the figures a reader needs to judge them: efficiency against the ceiling, the broker, the
CPU, the worker count."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

import click

from lockstock.cli import cli
from lockstock.cli.options import echo_table, settings_options
from lockstock.errors import SettingsError
from lockstock.kafka import kafka_for
from lockstock.load.faustfloor import faust_floor
from lockstock.load.passthrough import passthrough
from lockstock.load.profile import LoadProfile
from lockstock.load.run import LoadRun
from lockstock.settings import Settings, parse_int
from lockstock.supervise import WorkerPool


def cpu_description() -> str:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        model = platform.processor()
    return f"{os.cpu_count()} x {model or platform.machine()}"


def _rates(value: str) -> list[int]:
    try:
        rates = [int(r) for r in value.split(",") if r.strip()]
    except ValueError:
        raise SettingsError(f"--rates must be whole numbers separated by commas, got {value!r}") from None
    if not rates or any(not 1 <= r <= 1_000_000 for r in rates):
        raise SettingsError(f"--rates must each be between 1 and 1000000, got {value!r}")
    return rates


@cli.command()
@settings_options
@click.option("--workers", default="1", show_default=True, help="Lock-engine workers to start (1-8) when lockstock starts them.")
@click.option("--orders", default="20000", show_default=True, help="Orders for the saturation run (1000-10000000).")
@click.option("--rates", default="500,1000,2000", show_default=True, help="Offered orders/s for the latency runs.")
@click.option("--rate-seconds", default="10", show_default=True, help="Seconds per latency run (2-600).")
@click.option("--passthrough-messages", default="200000", show_default=True, help="Records for the ceiling (10000-10000000).")
@click.option("--json", "json_path", type=click.Path(path_type=Path), help="Write the figures as JSON to this file.")
def bench(settings: Settings, workers: str, orders: str, rates: str, rate_seconds: str, passthrough_messages: str,
          json_path: Path | None) -> None:
    """Benchmark the lock pipeline against the broker's own ceiling (embedded broker unless
    KAFKA_BOOTSTRAP_SERVERS is set; then workers must already be running unless none answer)."""
    worker_count = parse_int(workers, "--workers", minimum=1, maximum=8)
    order_count = parse_int(orders, "--orders", minimum=1000, maximum=10_000_000)
    rate_list = _rates(rates)
    seconds = parse_int(rate_seconds, "--rate-seconds", minimum=2, maximum=600)
    messages = parse_int(passthrough_messages, "--passthrough-messages", minimum=10_000, maximum=10_000_000)
    figures: dict[str, Any] = {"cpu": cpu_description(), "workers": worker_count}
    with kafka_for(settings) as kafka:
        kafka.create_topics()
        figures.update(broker=kafka.profile.name, partitions=kafka.settings.partitions)
        click.echo(f"(a) passthrough ceiling: {messages} records ...")
        ceiling = passthrough(kafka, messages, progress=click.echo)
        figures["passthrough"] = ceiling
        pool = None
        if settings.embedded:
            pool = WorkerPool(kafka.settings, kafka.settings.data_dir / "bench-logs")
            for index in range(worker_count):
                pool.start(data_dir=kafka.settings.data_dir / f"worker-{index}")  # RocksDB: one directory per worker
            for worker in pool.started:
                worker.wait_ready()
        try:
            click.echo(f"(b) pipeline at saturation: {order_count} orders ...")
            saturation = LoadRun(kafka, LoadProfile(skus=200, stock_per_sku=10**7, zipf_s=0.8, multi_line=0.1,
                                                    buyers=10**6, seed=11), settle_s=300).burst(order_count)
            figures["saturation"] = saturation
            latency = {}
            for rate in rate_list:
                click.echo(f"(c) {rate} orders/s for {seconds} s ...")
                profile = LoadProfile(rate=rate, duration_s=seconds, skus=200, stock_per_sku=10**7, zipf_s=0.8,
                                      multi_line=0.1, duplicates=0, cancellations=0, buyers=10**6, seed=rate)
                run = LoadRun(kafka, profile, settle_s=60).run()
                latency[str(rate)] = {**run["latency"], "achieved_per_s": run["achieved_per_s"],
                                      "undecided": run["undecided"], "oversold": run["oversold"]}
        finally:
            if pool is not None:
                pool.stop_all()
        click.echo("(d) Faust's floor: one agent receiving batches and doing nothing ...")
        floor = faust_floor(kafka, progress=click.echo)
        figures["faust_floor"] = floor
    pipeline = saturation["lines_per_s"]
    figures.update(
        passthrough_per_s=ceiling["per_s"], pipeline_per_s=pipeline, pipeline_orders_per_s=saturation["orders_per_s"],
        efficiency=round(pipeline / ceiling["per_s"], 4), latency=latency, faust_floor_per_s=floor["per_s"],
        oversold=saturation["oversold"] + sum(r["oversold"] for r in latency.values()),
        undecided=saturation["undecided"] + sum(r["undecided"] for r in latency.values()),
    )
    rows = [{"figure": "passthrough_per_s", "value": figures["passthrough_per_s"]},
            {"figure": "pipeline_per_s (lines)", "value": pipeline},
            {"figure": "pipeline orders/s", "value": saturation["orders_per_s"]},
            {"figure": "efficiency", "value": figures["efficiency"]},
            {"figure": "faust_floor_per_s (events, 1 agent, no work)", "value": floor["per_s"]}]
    rows += [{"figure": f"{rate}/s p50 / p99 ms", "value": f"{r.get('p50_ms')} / {r.get('p99_ms')}"} for rate, r in latency.items()]
    rows += [{"figure": k, "value": figures[k]} for k in ("oversold", "undecided", "broker", "cpu", "workers")]
    echo_table(rows, ["figure", "value"])
    if json_path:
        json_path.write_text(json.dumps(figures, indent=2) + "\n")
        click.echo(f"figures written to {json_path}")
    if figures["oversold"]:
        raise SystemExit(1)
