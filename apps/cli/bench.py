"""`lockstock bench`: in one run, on one broker and one partition count, (a) the broker's own
ceiling (a plain consume -> produce loop), (b) the lock pipeline at saturation (orders placed ->
decisions, mixed single / multi-line), (c) the pipeline at fixed offered rates for latency, and
(d) Faust's own floor: how fast one worker's agent merely receives events, the bound any Faust
pipeline lives under (apps.load.faustfloor), and (e) the hot-SKU row: (b) again with one SKU
holding N open reservations (apps.load.hotsku). (e) runs before (d): it needs the workers,
and (d) runs once they are stopped.
Writes the figures a reader needs to judge them: efficiency against the ceiling, the broker, the
CPU, the worker count, and for workers the bench started, their CPU seconds per 10,000 lines and
their memory after (e). A worker that dies ends the measuring: the bench names it with its last log
lines and exits 1 (apps.load.deaths)."""

from __future__ import annotations

import json
import os
import platform
import time
import uuid
from pathlib import Path
from typing import Any

import click

from apps.cli import cli
from apps.cli.options import echo_table, settings_options
from apps.load.codecbench import codec_row
from apps.load.deaths import PoolWatch, Watch, Watchdog, death_lines, external_watches
from apps.load.faustfloor import faust_floor
from apps.load.hotsku import hot_row, largest_changelog_record
from apps.load.passthrough import passthrough
from apps.load.profile import LoadProfile
from apps.load.resources import CpuMeter, per_10k_lines, process_rss_mb
from apps.load.run import LoadRun
from apps.supervise import WorkerPool
from lockstock.errors import BrokerError, SettingsError
from lockstock.kafka import Kafka, kafka_for
from lockstock.settings import Settings, parse_int

# The pipeline's order mix: (b), (c) and (e) all play it, so their figures compare.
PIPELINE_MIX = {"skus": 200, "stock_per_sku": 10**7, "zipf_s": 0.8, "multi_line": 0.1, "buyers": 10**6}


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
@click.option("--orders", default="20000", show_default=True, help="Orders for the saturation runs (1000-10000000).")
@click.option("--rates", default="500,1000,2000", show_default=True, help="Offered orders/s for the latency runs.")
@click.option("--rate-seconds", default="10", show_default=True, help="Seconds per latency run (2-600).")
@click.option("--passthrough-messages", default="200000", show_default=True, help="Records for the ceiling (10000-10000000).")
@click.option("--hot-reservations", default="200000", show_default=True,
              help="Open reservations the hot-SKU row puts on one SKU before it measures (0-10000000; 0 skips the row).")
@click.option("--start-workers", is_flag=True,
              help="With KAFKA_BOOTSTRAP_SERVERS set, start --workers workers anyway, under an app id and topic prefix of "
                   "the bench's own (never the production group); CPU and memory figures need workers the bench started.")
@click.option("--worker-url", envvar="LOCKSTOCK_WORKER_URL",
              help="A running worker's web address, watched so that its death stops the bench [env LOCKSTOCK_WORKER_URL].")
@click.option("--json", "json_path", type=click.Path(path_type=Path), help="Write the figures as JSON to this file.")
def bench(settings: Settings, workers: str, orders: str, rates: str, rate_seconds: str, passthrough_messages: str,
          hot_reservations: str, start_workers: bool, worker_url: str | None, json_path: Path | None) -> None:
    """Benchmark the lock pipeline against the broker's own ceiling (embedded broker and workers
    of its own unless KAFKA_BOOTSTRAP_SERVERS is set; then the workers already running are
    measured, or, with --start-workers, workers of the bench's own)."""
    worker_count = parse_int(workers, "--workers", minimum=1, maximum=8)
    order_count = parse_int(orders, "--orders", minimum=1000, maximum=10_000_000)
    rate_list = _rates(rates)
    seconds = parse_int(rate_seconds, "--rate-seconds", minimum=2, maximum=600)
    messages = parse_int(passthrough_messages, "--passthrough-messages", minimum=10_000, maximum=10_000_000)
    reservations = parse_int(hot_reservations, "--hot-reservations", minimum=0, maximum=10_000_000)
    own_workers = settings.embedded or start_workers
    if start_workers and not settings.embedded:
        run = uuid.uuid4().hex[:8]
        settings = settings.with_(app_id=f"lockstock-bench-{run}", topic_prefix=f"lockstock-bench-{run}")
        click.echo(f"bench on {settings.bootstrap_servers} with workers of its own: app id and topic prefix {settings.app_id}")
    # Under the data directory the user chose: the embedded broker's run directory is deleted after it.
    log_dir = settings.data_dir / "bench-logs" / time.strftime("%Y%m%d-%H%M%S")
    figures: dict[str, Any] = {"cpu": cpu_description(), "workers": worker_count, "app_id": settings.app_id,
                               "workers_started_by_bench": own_workers}
    with kafka_for(settings) as kafka:
        kafka.create_topics()
        figures.update(broker=kafka.profile.name, partitions=kafka.settings.partitions)
        click.echo(f"(a) passthrough ceiling: {messages} records ...")
        ceiling = passthrough(kafka, messages, progress=click.echo)
        figures["passthrough"] = ceiling
        pool = WorkerPool(kafka.settings, log_dir) if own_workers else None
        try:
            if pool is not None:
                _start(pool, worker_count)
                watches: list[Watch] = [PoolWatch(pool)]
            else:
                watches = external_watches(kafka, worker_url, f"http://{settings.web_host}:{settings.web_port}", say=click.echo)
            pids = [w.pid for w in pool.started] if pool else []
            with Watchdog(watches) as watchdog:
                figures.update(_measure(kafka, order_count, rate_list, seconds, reservations, watchdog, pids))
            figures["workers_died"] = watchdog.died
        finally:
            if pool is not None:
                pool.stop_all()
        click.echo("(d) Faust's floor: one agent receiving batches and doing nothing ...")
        floor = faust_floor(kafka, progress=click.echo)
        figures["faust_floor"] = floor
        click.echo("(f) the codec: each record of the lock path, compiled and with fastavro ...")
        figures["codec"] = codec_row(kafka.codec)
    figures.update(_summary(figures, ceiling, floor))
    _print(figures)
    if json_path:
        json_path.write_text(json.dumps(figures, indent=2) + "\n")
        click.echo(f"figures written to {json_path}")
    if figures["oversold"] or figures["workers_died"] or (figures.get("hot_sku") or {}).get("error"):
        raise SystemExit(1)


def _start(pool: WorkerPool, count: int) -> None:
    for index in range(count):  # RocksDB: one directory per worker
        pool.start(data_dir=pool.settings.data_dir / "bench-state" / pool.settings.app_id / f"worker-{index}")
    for worker in pool.started:
        worker.wait_ready()
    click.echo(f"{count} worker(s) ready (pid {', '.join(str(w.pid) for w in pool.started)}; logs in {pool.log_dir})")


def _measure(kafka: Kafka, orders: int, rates: list[int], seconds: int, reservations: int, watchdog: Watchdog,
             pids: list[int]) -> dict[str, Any]:
    """Rows (b), (c) and (e), each skipped once a worker has died (its figures would measure the dead)."""
    measured: dict[str, Any] = {"latency": {}}
    click.echo(f"(b) pipeline at saturation: {orders} orders ...")
    meter = CpuMeter(pids).start()
    saturation = LoadRun(kafka, LoadProfile(**PIPELINE_MIX, seed=11), settle_s=300, watchdog=watchdog).burst(orders)
    cpu_s = meter.seconds()
    measured["saturation"] = {**saturation, "cpu_s": cpu_s, "cpu_s_per_10k_lines": per_10k_lines(cpu_s, saturation["lines"])}
    for rate in rates:
        if watchdog.died:
            break
        click.echo(f"(c) {rate} orders/s for {seconds} s ...")
        profile = LoadProfile(rate=rate, duration_s=seconds, **PIPELINE_MIX, duplicates=0, cancellations=0, seed=rate)
        meter = CpuMeter(pids).start()
        run = LoadRun(kafka, profile, settle_s=60, watchdog=watchdog).run()
        cpu_s = meter.seconds()
        measured["latency"][str(rate)] = {**run["latency"], "achieved_per_s": run["achieved_per_s"],
                                          "undecided": run["undecided"], "oversold": run["oversold"],
                                          "cpu_s_per_10k_lines": per_10k_lines(cpu_s, run["lines"])}
    if reservations and not watchdog.died:
        click.echo(f"(e) hot SKU: {reservations} open reservations on one SKU, then (b) again ...")
        measured["hot_sku"] = hot_row(kafka, LoadProfile(**PIPELINE_MIX, seed=11), reservations, orders,
                                      saturation["lines_per_s"], watchdog=watchdog, pids=pids, progress=click.echo)
    measured["worker_rss_mb"] = {str(pid): process_rss_mb(pid) for pid in pids}
    click.echo("the largest record of the stock table's changelog ...")
    try:
        measured["largest_changelog_record"] = largest_changelog_record(kafka, progress=click.echo)
    except BrokerError as exc:
        measured["largest_changelog_record"] = {"error": str(exc)}
    return measured


def _summary(figures: dict[str, Any], ceiling: dict[str, Any], floor: dict[str, Any]) -> dict[str, Any]:
    """The headline figures, beside the rows they come from."""
    saturation, latency = figures["saturation"], figures["latency"]
    hot = figures.get("hot_sku") or {}
    pipeline = saturation["lines_per_s"]
    return {
        "passthrough_per_s": ceiling["per_s"], "pipeline_per_s": pipeline, "pipeline_orders_per_s": saturation["orders_per_s"],
        "efficiency": round(pipeline / ceiling["per_s"], 4), "faust_floor_per_s": floor["per_s"],
        "pipeline_cpu_s_per_10k_lines": saturation["cpu_s_per_10k_lines"],
        "hot_reservations": hot.get("reservations", 0), "hot_fill_seconds": (hot.get("fill") or {}).get("seconds"),
        "hot_lines_per_s": hot.get("lines_per_s"), "hot_vs_pipeline": hot.get("vs_pipeline"),
        "hot_cpu_s_per_10k_lines": hot.get("cpu_s_per_10k_lines"),
        "largest_changelog_record_bytes": figures["largest_changelog_record"].get("bytes"),
        "oversold": saturation["oversold"] + sum(r["oversold"] for r in latency.values())
                    + (hot.get("burst") or {}).get("oversold", 0),
        "undecided": saturation["undecided"] + sum(r["undecided"] for r in latency.values())
                     + (hot.get("burst") or {}).get("undecided", 0),
    }


def _print(figures: dict[str, Any]) -> None:
    hot, record = figures.get("hot_sku") or {}, figures["largest_changelog_record"]
    not_ours = "not measured (workers not started by the bench: --start-workers)"
    rows = [{"figure": "passthrough_per_s", "value": figures["passthrough_per_s"]},
            {"figure": "pipeline_per_s (lines)", "value": figures["pipeline_per_s"]},
            {"figure": "pipeline orders/s", "value": figures["pipeline_orders_per_s"]},
            {"figure": "efficiency", "value": figures["efficiency"]},
            {"figure": "faust_floor_per_s (events, 1 agent, no work)", "value": figures["faust_floor_per_s"]},
            {"figure": "pipeline worker CPU s / 10k lines", "value": _or(figures["pipeline_cpu_s_per_10k_lines"], not_ours)}]
    rows += [{"figure": f"{rate}/s p50 / p99 ms", "value": f"{r.get('p50_ms')} / {r.get('p99_ms')}"}
             for rate, r in figures["latency"].items()]
    if hot:
        fill = hot["fill"]
        rows.append({"figure": "hot SKU open reservations (fill)",
                     "value": f"{fill['locked']} of {hot['reservations']} in {fill['seconds']} s via {hot['channel']} "
                              f"(TTL {hot['reservation_ttl_s']} s)"})
        if "lines_per_s" in hot:
            rows += [{"figure": "hot SKU pipeline_per_s (lines)",
                      "value": f"{hot['lines_per_s']} ({hot.get('vs_pipeline')} x pipeline; target >= 0.8)"},
                     {"figure": "hot SKU worker CPU s / 10k lines", "value": _or(hot["cpu_s_per_10k_lines"], not_ours)}]
        if hot.get("error"):
            rows.append({"figure": "hot SKU row FAILED", "value": hot["error"]})
    rss = ", ".join(f"pid {pid}: {'gone' if mb is None else f'{mb} MB'}" for pid, mb in figures["worker_rss_mb"].items())
    rows.append({"figure": "worker RSS after the runs" + (" (hot SKU last)" if hot else ""), "value": rss or not_ours})
    rows.append({"figure": "largest stock changelog record (bytes)",
                 "value": f"{record['bytes']} (key {record['key']}, of {record['records']} records)" if "bytes" in record
                 else record["error"]})
    rows += [{"figure": f"codec {record} encode / decode us", "value": f"{c['encode_us']} / {c['decode_us']} "
              f"(fastavro {c['encode_fastavro_us']} / {c['decode_fastavro_us']}){'' if c['compiled'] else ', not compiled'}"}
             for record, c in figures.get("codec", {}).items()]
    rows += [{"figure": k, "value": figures[k]} for k in ("oversold", "undecided", "broker", "cpu", "workers")]
    died = figures["workers_died"]
    rows.append({"figure": "workers died", "value": len(died) or "none"})
    rows += [{"figure": f"  died: {d['worker']}", "value": d["how"]} for d in died]
    echo_table(rows, ["figure", "value"])
    for line in death_lines(died):
        click.echo(line)


def _or(value: Any, instead: str) -> Any:
    return instead if value is None else value
