"""`lockstock demo`: the round trip on a real broker, end to end, in about half a minute.

Starts the embedded broker (unless KAFKA_BOOTSTRAP_SERVERS is set) and a worker process, sets
stock for a few SKUs, places orders from nine channels (multi-line orders, duplicates and
malformed payloads mixed in), reads every decision back and checks the result independently:
units locked per SKU never exceed stock, every order has a decision.
"""

from __future__ import annotations

import json
import random
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

import click

from lockstock.broker.embedded import free_port
from lockstock.cli import cli
from lockstock.cli.options import echo_table, settings_options
from lockstock.client import LockstockClient
from lockstock.clock import now_ms
from lockstock.kafka import kafka_for
from lockstock.settings import Settings, parse_int
from lockstock.supervise import WorkerPool

CHANNELS = ["tiktok-us", "tiktok-eu", "youtube-us", "instagram-us", "amazon-us", "amazon-eu",
            "shopee-my", "shopee-th", "shopify"]
REGION = {"tiktok-us": "US", "youtube-us": "US", "instagram-us": "US", "amazon-us": "US", "shopify": "US",
          "tiktok-eu": "EU", "amazon-eu": "EU", "shopee-my": "SEA", "shopee-th": "SEA"}
STOCK = {"BRZ-FAN-01": 300, "BRZ-FAN-02": 200, "BRZ-CASE-01": 120}


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile: always a latency some order really had."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


@cli.command()
@settings_options
@click.option("--orders", default="400", show_default=True, help="Orders to place (1-100000).")
@click.option("--seed", default="7", show_default=True, help="Random seed, for a repeatable run.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), help="Also write the summary as JSON here.")
def demo(settings: Settings, orders: str, seed: str, json_path: Path | None) -> None:
    """Place orders from nine channels against a few SKUs and show every lock decision."""
    count = parse_int(orders, "--orders", minimum=1, maximum=100_000)
    rng = random.Random(parse_int(seed, "--seed"))
    run_tag = uuid.uuid4().hex[:8]
    settings = settings.with_(topic_prefix=f"{settings.topic_prefix}-demo-{run_tag}", app_id=f"lockstock-demo-{run_tag}")
    with tempfile.TemporaryDirectory(prefix="lockstock-demo-") as scratch, kafka_for(settings) as kafka:
        click.echo(f"broker {kafka.bootstrap} ({kafka.profile.name} profile); topics {settings.topic_prefix}.*")
        kafka.create_topics()
        worker_settings = kafka.settings.with_(data_dir=Path(scratch) / "state", web_port=free_port())
        pool = WorkerPool(worker_settings, Path(scratch) / "logs")
        try:
            worker = pool.start()
            click.echo(f"worker pid {worker.process.pid} ready in {worker.wait_ready():.1f}s")
            summary = _run(LockstockClient(kafka), count, rng, worker)
        finally:
            pool.stop_all()
    _report(summary)
    if json_path:
        json_path.write_text(json.dumps(summary, indent=2) + "\n")
        click.echo(f"summary written to {json_path}")
    if summary["oversold"] or summary["undecided"] or not summary["worker_agrees"]:
        raise click.ClickException(
            f"oversold {summary['oversold']}, undecided {summary['undecided']}, "
            f"worker state agrees with decisions: {summary['worker_agrees']}"
        )


def _run(client: LockstockClient, count: int, rng: random.Random, worker) -> dict:
    for sku, total in STOCK.items():
        client.set_stock(sku, total)
    client.flush()
    placed: dict[str, dict] = {}
    skus = list(STOCK)
    with click.progressbar(range(count), label="placing orders") as bar:
        for n in bar:
            channel = rng.choice(CHANNELS)
            lines = [(sku, rng.choice([1, 1, 1, 2, 3])) for sku in rng.sample(skus, rng.choice([1, 1, 1, 2]))]
            order = client.place_order(f"{channel}:{100000 + n}", lines, channel=channel,
                                       buyer=f"buyer-{rng.randint(1, count // 3 + 1)}", region=REGION[channel])
            placed[order["order_id"]] = order
            if rng.random() < 0.05:  # a webhook redelivered: same order id again
                client.place_order(order["order_id"], lines, channel=channel, buyer=order["buyer_id"], region=REGION[channel])
    client.send_raw(client.topics.orders_placed, "malformed-1", b'{"order_id": "json-not-avro"}')
    client.flush()
    click.echo(f"placed {count} orders (+ duplicates and one malformed payload); waiting for decisions")
    by_order = client.decisions(set(placed), timeout=120)
    received = now_ms()
    locked_units: Counter[str] = Counter()
    statuses: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    latencies = []
    inconsistent = 0
    for order_id, decisions in by_order.items():
        if order_id not in placed:
            continue
        first = decisions[0]
        inconsistent += any(d["status"] != first["status"] for d in decisions)
        statuses[first["status"]] += 1
        if first["reason"]:
            reasons[first["reason"]] += 1
        if first["status"] == "LOCKED":
            for line in first["lines"]:
                locked_units[line["sku"]] += line["qty"]
        latencies.append(first["decided_at"] - placed[order_id]["placed_at"])
    stock_rows = _settled_stock(worker, locked_units)
    return {
        "orders": len(placed),
        "locked": statuses["LOCKED"],
        "rejected": statuses["REJECTED"],
        "released": statuses["RELEASED"],
        "reasons": dict(reasons),
        "units_locked": dict(locked_units),
        "units_total": dict(STOCK),
        "oversold": sum(max(0, locked_units[s] - t) for s, t in STOCK.items()),
        "undecided": len(set(placed) - set(by_order)),
        "inconsistent_duplicates": inconsistent,
        "p50_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
        "stock": stock_rows,
        "worker_agrees": all(r["locked_in_worker"] == r["locked_by_decisions"] for r in stock_rows),
        "measured_at": received,
    }


def _settled_stock(worker, locked_units: Counter, timeout: float = 30.0) -> list[dict]:
    """The worker's live stock once compensations still in flight (releases of rejected
    multi-line orders) have landed; after the deadline, whatever it shows."""
    deadline = time.monotonic() + timeout
    while True:
        rows = []
        for sku, total in STOCK.items():
            _, live = worker.get_json(f"/stock/{sku}/")
            rows.append({"sku": sku, "total": total, "locked_by_decisions": locked_units[sku],
                         "locked_in_worker": live.get("locked"), "available": live.get("available")})
        if all(r["locked_in_worker"] == r["locked_by_decisions"] for r in rows) or time.monotonic() > deadline:
            return rows
        time.sleep(0.2)


def _report(summary: dict) -> None:
    click.echo("")
    echo_table(summary["stock"], ["sku", "total", "locked_by_decisions", "locked_in_worker", "available"])
    click.echo("")
    click.echo(
        f"orders {summary['orders']}: locked {summary['locked']}, rejected {summary['rejected']} "
        f"{summary['reasons'] or ''}; oversold {summary['oversold']}; undecided {summary['undecided']}; "
        f"order->decision p50 {summary['p50_ms']:.0f} ms, p99 {summary['p99_ms']:.0f} ms"
    )
