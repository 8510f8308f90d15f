"""`lockstock demo`: the seed's BreezeStyle live stream, end to end on a real broker.

Starts the embedded broker (unless KAFKA_BOOTSTRAP_SERVERS is set) and a worker, sets the stock
(refusing the seed's own over-promising split first, then splitting proportionally), plays the
90-minute stream compressed to about a minute (apps.simulation), prints the timeline of
what the engine did, and checks the result independently from the decision stream: no SKU has
more units held than exist, every order has a decision, and the worker's state agrees.
"""

from __future__ import annotations

import heapq
import json
import queue
import random
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import click
import yaml

from apps.cli import cli
from apps.cli.options import echo_table, settings_options
from apps.client import LockstockClient
from apps.simulation import OPERATOR_ACTIONS, SEED_SPLIT, SKUS, Lifecycle, plan_stream, real_seconds, sim_clock
from apps.supervise import WorkerPool, WorkerProcess
from apps.warroom.service import WarRoomService
from apps.watch import TopicWatcher
from lockstock.broker.embedded import free_port
from lockstock.catalog import Catalog, load_catalog
from lockstock.clock import now_ms
from lockstock.kafka import kafka_for
from lockstock.settings import Settings, parse_int, parse_port
from lockstock.stats import percentile
from streams.engine.commands import CommandError, plan_split

SETTLE_TIMEOUT_S = 60.0


def demo_catalog(base: Catalog, seconds: float) -> dict[str, Any]:
    """The catalog with its clocks compressed like the stream (90 minutes -> ``seconds``)."""
    factor = seconds / (90 * 60)
    rules = replace(
        base.rules, velocity_window_s=max(2, round(600 * factor)), limit_sellout_horizon_s=round(900 * factor),
        limit_min_units=20, realloc_factor=2.2, realloc_min_units=30,
        order_retention_s=3600, sweep_interval_s=0.5, reorder_cover_s=round(3 * 3600 * factor),
    )
    compressed = replace(base, rules=rules).to_dict()
    for channel in compressed["channels"].values():
        channel["reservation_ttl_s"] = max(3, round(channel["reservation_ttl_s"] * factor))
    return compressed


def write_demo_catalog(base: Catalog, seconds: float, directory: Path) -> tuple[Path, Catalog]:
    """The compressed catalog written where workers load it from, and read back (checked)."""
    path = directory / "channels.yaml"
    path.write_text(yaml.safe_dump(demo_catalog(base, seconds), sort_keys=False))
    return path, load_catalog(path)


@cli.command()
@settings_options
@click.option("--orders", default="2400", show_default=True, help="Orders in the stream (100-100000).")
@click.option("--seconds", default="60", show_default=True, help="Real seconds the 90-minute stream takes (10-3600).")
@click.option("--seed", default="7", show_default=True, help="Random seed, for a repeatable run.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), help="Also write the summary as JSON here.")
@click.option("--war-room", "war_room", metavar="PORT", help="Also serve the war room on this port while the stream plays "
              "(http://127.0.0.1:PORT/); `lockstock up --demo` keeps it open after the stream.")
def demo(settings: Settings, orders: str, seconds: str, seed: str, json_path: Path | None, war_room: str | None) -> None:
    """Play the BreezeStyle live stream (3 SKUs, 9 channels, US/EU/SEA + flex) and show every decision."""
    count = parse_int(orders, "--orders", minimum=100, maximum=100_000)
    duration = parse_int(seconds, "--seconds", minimum=10, maximum=3600)
    rng = random.Random(parse_int(seed, "--seed"))
    war_room_port = None if war_room is None else parse_port(war_room, "--war-room")
    run_tag = uuid.uuid4().hex[:8]
    settings = settings.with_(topic_prefix=f"{settings.topic_prefix}-demo-{run_tag}", app_id=f"lockstock-demo-{run_tag}")
    base = settings.catalog()
    with tempfile.TemporaryDirectory(prefix="lockstock-demo-") as scratch, kafka_for(settings) as kafka:
        catalog_path, catalog = write_demo_catalog(base, duration, Path(scratch))
        click.echo(f"broker {kafka.bootstrap} ({kafka.profile.name} profile); topics {settings.topic_prefix}.*")
        kafka.create_topics()
        worker_settings = kafka.settings.with_(data_dir=Path(scratch) / "state", web_port=free_port(),
                                               channels_file=catalog_path)
        pool = WorkerPool(worker_settings, Path(scratch) / "logs")
        room = None
        try:
            if war_room_port is not None:
                room = WarRoomService(kafka, catalog, settings.web_host, war_room_port).start()
                click.echo(f"war room: {room.url}")
            worker = pool.start()
            click.echo(f"worker pid {worker.process.pid} ready in {worker.wait_ready():.1f}s "
                       f"(stream clocks compressed x{90 * 60 / duration:.0f})")
            summary = StreamRun(LockstockClient(kafka), catalog, worker, count, duration, rng).run()
        finally:
            pool.stop_all()
            if room is not None:
                room.stop()
    print_summary(summary)
    if json_path:
        json_path.write_text(json.dumps(summary, indent=2) + "\n")
        click.echo(f"summary written to {json_path}")
    if summary["oversold"] or summary["undecided"] or not summary["worker_agrees"]:
        raise click.ClickException(
            f"oversold {summary['oversold']}, undecided {summary['undecided']}, "
            f"worker state agrees with decisions: {summary['worker_agrees']}"
        )


class StreamRun:
    """One played stream: sends orders, lifecycle events and operator commands on schedule,
    and follows decisions and alerts as a downstream consumer would."""

    def __init__(self, client: LockstockClient, catalog: Catalog, worker: WorkerProcess, count: int,
                 seconds: int, rng: random.Random, *, stopping: threading.Event | None = None) -> None:
        self.client, self.catalog, self.worker = client, catalog, worker
        self.count, self.seconds, self.rng = count, seconds, rng
        self.stopping = stopping or threading.Event()  # set by whoever plays the stream in the background
        self.lifecycle = Lifecycle()
        self.inbox: queue.Queue = queue.Queue()
        self.placed: dict[str, dict] = {}  # order_id -> OrderPlaced as sent (first copy)
        self.first_decision: dict[str, tuple[dict, int]] = {}
        self.final: dict[str, dict] = {}
        self.unpaid: set[str] = set()
        self.cancelled: set[str] = set()
        self.events: list[tuple[float, str, str]] = []  # heap of (due monotonic, order_id, type)
        self.alerts: dict[str, dict] = {}
        self.started = 0.0

    def run(self) -> dict[str, Any]:
        topics = self.client.topics
        watcher = TopicWatcher(self.client.kafka, [topics.orders_decisions, topics.inventory_alerts],
                               on_record=lambda t, v, at: self.inbox.put((t, v, at)))
        watcher.start_and_wait()
        try:
            self._set_stock()
            self._play()
            if not self.stopping.is_set():
                self._drain_until_settled()
        finally:
            watcher.stop()
        return self._summary()

    # -- set-up ------------------------------------------------------------------------------------
    def _set_stock(self) -> None:
        pct = self.catalog.rules.flex_pct
        try:
            plan_split(SKUS["BRZ-RING-01"], SEED_SPLIT, pct, self.catalog)
        except CommandError as refused:
            click.echo(f"\nseed split for BRZ-RING-01 refused: {refused}")
        split, flex = plan_split(SKUS["BRZ-RING-01"], SEED_SPLIT, pct, self.catalog, proportional=True)
        click.echo(f"proportional split instead: {', '.join(f'{r} {n}' for r, n in split.items())}, flex {flex}\n")
        self.client.set_stock("BRZ-RING-01", SKUS["BRZ-RING-01"], SEED_SPLIT, flex_pct=pct, proportional=True)
        for sku, total in SKUS.items():
            if sku != "BRZ-RING-01":
                self.client.set_stock(sku, total, flex_pct=pct)
        self.client.flush()

    # -- the stream ----------------------------------------------------------------------------------
    def _play(self) -> None:
        regions = {c.id: c.region for c in self.catalog.channels.values()}
        plan = plan_stream(self.count, self.seconds, self.rng, regions)
        phases = list(plan.phase_starts)
        actions = sorted((real_seconds(minute, self.seconds), what, fields) for minute, what, fields in OPERATOR_ACTIONS)
        self.started = time.monotonic()
        next_status = self.seconds / 9
        for planned in plan.orders:
            while True:
                if self.stopping.is_set():
                    return
                elapsed = time.monotonic() - self.started
                while phases and phases[0][0] <= elapsed:
                    _, phase = phases.pop(0)
                    click.echo(f"{sim_clock(elapsed, self.seconds)}  --- {phase.name} ---")
                while actions and actions[0][0] <= elapsed:
                    _, what, fields = actions.pop(0)
                    self._operator(what, dict(fields), elapsed)
                self._pump()
                if elapsed >= next_status:
                    self._status(elapsed)
                    next_status += self.seconds / 9
                if elapsed >= planned.at_s:
                    break
                time.sleep(min(0.005, planned.at_s - elapsed))
            order = {**planned.order, "placed_at": now_ms()}
            self.client.send(self.client.topics.orders_placed, order["order_id"], "OrderPlaced", order)
            self.placed.setdefault(order["order_id"], order)
        self.client.flush()
        self._status(time.monotonic() - self.started)

    def _operator(self, what: str, fields: dict[str, Any], elapsed: float) -> None:
        click.echo(f"{sim_clock(elapsed, self.seconds)}  operator: {what}")
        eta_in_s = fields.pop("eta_in_s", None)
        if eta_in_s:
            fields["eta"] = now_ms() + eta_in_s * 1000
        self.client.command(fields.pop("sku"), fields.pop("type"), issued_by="demo", **fields)

    def _pump(self) -> None:
        """Handle what the watcher saw and send lifecycle events that are due."""
        while True:
            try:
                topic, value, received = self.inbox.get_nowait()
            except queue.Empty:
                break
            if topic == self.client.topics.inventory_alerts:
                if value["alert_id"] not in self.alerts:
                    self.alerts[value["alert_id"]] = value
                    elapsed = time.monotonic() - self.started
                    click.echo(f"{sim_clock(elapsed, self.seconds)}  {value['type']:<25} {value['message']}")
                continue
            order_id = value["order_id"]
            self.final[order_id] = value
            if order_id in self.first_decision:
                continue
            self.first_decision[order_id] = (value, received)
            if value["status"] == "LOCKED":
                events = self.lifecycle.after_lock(self.rng)
                if not events:
                    self.unpaid.add(order_id)
                for delay, kind in events:
                    heapq.heappush(self.events, (time.monotonic() + delay * self.seconds / 60, order_id, kind))
        while self.events and self.events[0][0] <= time.monotonic():
            _, order_id, kind = heapq.heappop(self.events)
            if kind == "CANCELLED":
                self.cancelled.add(order_id)
            self.client.order_event(order_id, kind, channel=self.placed[order_id]["channel"],
                                    reason="buyer cancelled" if kind == "CANCELLED" else None)
        self.client.producer.poll(0)

    def _status(self, elapsed: float) -> None:
        statuses = Counter(d["status"] for d in self.final.values())
        click.echo(f"{sim_clock(elapsed, self.seconds)}  orders {len(self.placed)}, decided {len(self.final)}: "
                   f"locked {statuses['LOCKED']}, rejected {statuses['REJECTED']}, released {statuses['RELEASED']}")

    def _drain_until_settled(self) -> None:
        """After the last order: every order decided, every lifecycle event sent, every unpaid
        lock expired (RELEASED), and the worker's counts equal to the decision stream's."""
        ttl = max(c.reservation_ttl_s for c in self.catalog.channels.values())
        deadline = time.monotonic() + SETTLE_TIMEOUT_S + ttl
        while time.monotonic() < deadline and not self.stopping.is_set():
            self._pump()
            self.client.flush()
            undecided = set(self.placed) - set(self.final)
            unexpired = [o for o in self.unpaid if self.final[o]["status"] == "LOCKED"]
            if not undecided and not self.events and not unexpired and self._worker_rows()[1]:
                return
            time.sleep(0.2)

    # -- the independent check -----------------------------------------------------------------------
    def _held_by_decisions(self) -> Counter:
        held: Counter = Counter()
        for decision in self.final.values():
            if decision["order_id"] in self.placed and decision["status"] == "LOCKED":
                for line in decision["lines"]:
                    held[line["sku"]] += line["qty"]
        return held

    def _worker_rows(self) -> tuple[list[dict], bool]:
        held = self._held_by_decisions()
        rows = []
        for sku, total in SKUS.items():
            status, live = self.worker.get_json(f"/stock/{sku}/")
            if status != 200:
                return [], False
            used = live["locked"] + live["paid"] + live["shipped"]
            rows.append({
                "sku": sku, "total": total, "held_by_decisions": held[sku], "held_in_worker": used,
                "locked": live["locked"], "paid": live["paid"], "shipped": live["shipped"], "flex": live["flex"],
                "available": live["available"], "in_transit": sum(t["qty"] for t in live["in_transit"]),
                "buyer_limit": live["buyer_limit"],
                "region_overdrawn": sum(max(0, r["locked"] + r["paid"] + r["shipped"] - r["allocation"])
                                        for r in live["regions"].values()),
                "regions": " ".join(f"{n} {r['locked'] + r['paid'] + r['shipped']}/{r['allocation']}"
                                    for n, r in live["regions"].items()),
            })
        return rows, all(r["held_by_decisions"] == r["held_in_worker"] for r in rows)

    def _summary(self) -> dict[str, Any]:
        rows, agrees = self._worker_rows()
        finals = [d for o, d in self.final.items() if o in self.placed]
        statuses = Counter(d["status"] for d in finals)
        reasons = Counter(f"{d['status']}:{d['reason']}" for d in finals if d["reason"])
        latencies = [received - self.placed[o]["placed_at"] for o, (_, received) in self.first_decision.items()
                     if o in self.placed]
        held = self._held_by_decisions()
        return {
            "orders": len(self.placed), "locked": statuses["LOCKED"], "rejected": statuses["REJECTED"],
            "released": statuses["RELEASED"], "reasons": dict(sorted(reasons.items())),
            "units_locked": {sku: held[sku] for sku in SKUS}, "units_total": dict(SKUS),
            "oversold": sum(max(0, held[s] - t) for s, t in SKUS.items()) + sum(r["region_overdrawn"] for r in rows),
            "undecided": len(set(self.placed) - set(self.final)),
            "alerts": dict(Counter(a["type"] for a in self.alerts.values())),
            "p50_ms": percentile(latencies, 50), "p99_ms": percentile(latencies, 99),
            "max_ms": max(latencies, default=0), "worker_agrees": agrees, "stock": rows,
            "seconds": self.seconds,
        }


def print_summary(summary: dict) -> None:
    click.echo("")
    echo_table(summary["stock"], ["sku", "total", "held_by_decisions", "held_in_worker", "locked", "paid", "shipped",
                                  "available", "flex", "in_transit", "buyer_limit", "regions"])
    click.echo("")
    click.echo(f"orders {summary['orders']}: locked {summary['locked']}, rejected {summary['rejected']}, "
               f"released {summary['released']}; undecided {summary['undecided']}; oversold {summary['oversold']}")
    click.echo(f"reasons: {', '.join(f'{k} {v}' for k, v in summary['reasons'].items()) or 'none'}")
    click.echo(f"alerts: {', '.join(f'{k} {v}' for k, v in summary['alerts'].items()) or 'none'}")
    click.echo(f"order->decision latency p50 {summary['p50_ms']:.0f} ms, p99 {summary['p99_ms']:.0f} ms, "
               f"max {summary['max_ms']:.0f} ms; worker agrees with the decision stream: {summary['worker_agrees']}")
