"""`lockstock loadtest`: play N channels ordering at once against a running lockstock and report
what a seller needs before going live: offered vs achieved rate, order->decision latency
percentiles, decisions by status and reason, oversold units recomputed from the decision stream,
and orders left without a decision.

Without KAFKA_BOOTSTRAP_SERVERS it starts the embedded broker and a worker for the run. The run's
SKUs, orders and buyers carry a run id, so it never touches real stock.

``--chaos`` starts its own workers (two by default) and SIGKILLs them at random points while the
orders flow, restarts them, and crashes the order producer once; it passes only with every order
decided exactly one way, nothing oversold and the engine's state equal to the decisions. On a real
cluster it runs under its own app id and topic prefix, never in the production group."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import click

from lockstock.cli import cli
from lockstock.cli.options import echo_table, settings_options
from lockstock.errors import SettingsError
from lockstock.kafka import kafka_for
from lockstock.load.chaos import ChaosRun
from lockstock.load.profile import DEFAULT_CHANNELS, SHAPES, LoadProfile
from lockstock.load.run import LoadRun
from lockstock.settings import Settings, parse_int
from lockstock.supervise import WorkerPool


def _number(value: str, name: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {value!r}") from None


@cli.command()
@settings_options
@click.option("--rate", default="500", show_default=True, help="Orders/s offered in total (the peak for ramp; spike: 1/4 of it, 3x in the middle 10 %).")
@click.option("--duration", default="30", show_default=True, help="Seconds of traffic.")
@click.option("--shape", default="sustained", show_default=True, type=click.Choice(SHAPES), help="How the rate moves over the run.")
@click.option("--channels", default=",".join(DEFAULT_CHANNELS), show_default=True, help="Channels ordering at once (catalog ids, comma-separated).")
@click.option("--skus", default="20", show_default=True, help="SKUs in play (created for the run).")
@click.option("--stock-per-sku", default="1000", show_default=True, help="Units set per SKU before the run.")
@click.option("--zipf", default="1.1", show_default=True, help="SKU popularity skew (Zipf exponent; 0 = uniform).")
@click.option("--multi-line", default="0.1", show_default=True, help="Share of orders with 2-3 SKUs (0-1).")
@click.option("--duplicates", default="0.02", show_default=True, help="Share of orders delivered twice (0-1).")
@click.option("--cancellations", default="0.05", show_default=True, help="Share of locked orders cancelled (0-1).")
@click.option("--buyers", default="5000", show_default=True, help="Distinct buyers (fewer: more repeat buyers, purchase limits).")
@click.option("--max-qty", default="2", show_default=True, help="Units per line, 1 to this.")
@click.option("--seed", default="7", show_default=True, help="Random seed (the same seed plays the same orders).")
@click.option("--settle", default="60", show_default=True, help="Seconds to wait for the last decisions after the traffic.")
@click.option("--chaos", is_flag=True, help="SIGKILL and restart workers mid-run and crash the producer once; check nothing is lost, doubled or oversold.")
@click.option("--workers", default="2", show_default=True, help="Workers --chaos starts and kills (1-8).")
@click.option("--kills", default="3", show_default=True, help="Worker SIGKILLs spread over a --chaos run (0-100).")
@click.option("--json", "json_path", type=click.Path(path_type=Path), help="Write the report as JSON to this file.")
def loadtest(settings: Settings, rate: str, duration: str, shape: str, channels: str, skus: str, stock_per_sku: str,
             zipf: str, multi_line: str, duplicates: str, cancellations: str, buyers: str, max_qty: str, seed: str,
             settle: str, chaos: bool, workers: str, kills: str, json_path: Path | None) -> None:
    """Load-test a running lockstock before going live (four platforms ordering at once by default)."""
    profile = LoadProfile(
        rate=_number(rate, "--rate"), duration_s=_number(duration, "--duration"), shape=shape,
        channels=tuple(c.strip() for c in channels.split(",") if c.strip()), skus=_number(skus, "--skus"),
        stock_per_sku=_number(stock_per_sku, "--stock-per-sku"), zipf_s=_number(zipf, "--zipf"),
        multi_line=_number(multi_line, "--multi-line"), duplicates=_number(duplicates, "--duplicates"),
        cancellations=_number(cancellations, "--cancellations"), buyers=_number(buyers, "--buyers"),
        max_qty=_number(max_qty, "--max-qty"), seed=_number(seed, "--seed"),
    ).validate()
    settle_s = _number(settle, "--settle")
    if not 1 <= settle_s <= 3600:
        raise SettingsError(f"--settle must be between 1 and 3600, got {settle}")
    catalog = settings.catalog()
    unknown = [c for c in profile.channels if c not in catalog.channels]
    if unknown:
        raise SettingsError(f"--channels: {', '.join(unknown)} not in the catalog ({', '.join(catalog.channels)})")
    worker_count = parse_int(workers, "--workers", minimum=1, maximum=8)
    kill_count = parse_int(kills, "--kills", minimum=0, maximum=100)
    if chaos:
        report = _chaos(settings, profile, settle_s, worker_count, kill_count)
    else:
        report = _load(settings, profile, settle_s)
    _print(report)
    if json_path:
        json_path.write_text(json.dumps(report, indent=2) + "\n")
        click.echo(f"report written to {json_path}")
    failed = report["oversold"] or report["undecided"] or report["flipped"] or \
        (report.get("chaos") or {}).get("state_mismatches")
    if failed:
        raise SystemExit(1)


def _load(settings: Settings, profile: LoadProfile, settle_s: float) -> dict[str, Any]:
    with kafka_for(settings) as kafka:
        kafka.create_topics()
        pool = None
        if settings.embedded:
            pool = WorkerPool(kafka.settings, kafka.settings.data_dir / "loadtest-logs")
            click.echo("starting a worker on the embedded broker ...")
            pool.start().wait_ready()
        try:
            return LoadRun(kafka, profile, settle_s).run()
        finally:
            if pool is not None:
                pool.stop_all()


def _chaos(settings: Settings, profile: LoadProfile, settle_s: float, workers: int, kills: int) -> dict[str, Any]:
    if not settings.embedded:
        # Its own group and topics: killing workers must never touch the production group.
        run = uuid.uuid4().hex[:8]
        settings = settings.with_(app_id=f"lockstock-chaos-{run}", topic_prefix=f"lockstock-chaos-{run}")
        click.echo(f"chaos on {settings.bootstrap_servers}: app id and topic prefix {settings.app_id}")
    with kafka_for(settings) as kafka:
        kafka.create_topics()
        # Under the data directory the user chose, not the run's state directory (the embedded
        # broker's runs delete theirs): a failed chaos run is read from its workers' logs.
        log_dir = settings.data_dir / "chaos-logs" / time.strftime("%Y%m%d-%H%M%S")
        click.echo(f"starting {workers} worker(s) for the chaos run (logs in {log_dir}) ...")
        return ChaosRun(kafka, profile, settle_s, workers, kills, profile.seed, log_dir, progress=click.echo).run()


def _print(report: dict[str, Any]) -> None:
    click.echo("")
    rows = [{"measure": k, "value": report[k]} for k in
            ("orders", "offered_per_s", "achieved_per_s", "decided", "undecided", "flipped", "held_units", "oversold")]
    rows += [{"measure": f"latency {k}", "value": v} for k, v in report["latency"].items()]
    rows += [{"measure": f"final {k}", "value": v} for k, v in sorted(report["final_status"].items())]
    rows += [{"measure": f"reason {k}", "value": v} for k, v in sorted(report["reasons"].items())]
    chaos = report.get("chaos")
    if chaos:
        actions = [e["action"] for e in chaos["events"]]
        rows += [{"measure": "chaos workers", "value": chaos["workers"]},
                 {"measure": "chaos kills / restarts", "value": f"{actions.count('kill')} / {actions.count('restart')}"},
                 {"measure": "chaos producer crashes (re-sent)", "value": f"{actions.count('producer-restart')} ({chaos['producer_resent']})"},
                 {"measure": "engine state vs decisions", "value": "agrees" if not chaos["state_mismatches"]
                  else f"{len(chaos['state_mismatches'])} SKU(s) differ"}]
    echo_table(rows, ["measure", "value"])
