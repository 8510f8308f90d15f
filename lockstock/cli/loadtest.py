"""`lockstock loadtest`: play N channels ordering at once against a running lockstock and report
what a seller needs before going live: offered vs achieved rate, order->decision latency
percentiles, decisions by status and reason, oversold units recomputed from the decision stream,
and orders left without a decision.

Without KAFKA_BOOTSTRAP_SERVERS it starts the embedded broker and a worker for the run. The run's
SKUs, orders and buyers carry a run id, so it never touches real stock."""

from __future__ import annotations

import contextlib
import json
import queue
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import click

from lockstock.cli import cli
from lockstock.cli.options import echo_table, settings_options
from lockstock.client import LockstockClient
from lockstock.clock import now_ms
from lockstock.errors import SettingsError
from lockstock.kafka import Kafka, kafka_for
from lockstock.load.profile import DEFAULT_CHANNELS, SHAPES, LoadProfile, OrderMaker
from lockstock.load.tally import Tally
from lockstock.settings import Settings
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
@click.option("--json", "json_path", type=click.Path(path_type=Path), help="Write the report as JSON to this file.")
def loadtest(settings: Settings, rate: str, duration: str, shape: str, channels: str, skus: str, stock_per_sku: str,
             zipf: str, multi_line: str, duplicates: str, cancellations: str, buyers: str, max_qty: str, seed: str,
             settle: str, json_path: Path | None) -> None:
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
    with kafka_for(settings) as kafka:
        kafka.create_topics()
        pool = None
        if settings.embedded:
            pool = WorkerPool(kafka.settings, kafka.settings.data_dir / "loadtest-logs")
            click.echo("starting a worker on the embedded broker ...")
            pool.start().wait_ready()
        try:
            report = LoadRun(kafka, profile, settle_s).run()
        finally:
            if pool is not None:
                pool.stop_all()
    _print(report)
    if json_path:
        json_path.write_text(json.dumps(report, indent=2) + "\n")
        click.echo(f"report written to {json_path}")
    if report["oversold"] or report["undecided"]:
        raise SystemExit(1)


class LoadRun:
    def __init__(self, kafka: Kafka, profile: LoadProfile, settle_s: float) -> None:
        self.kafka, self.profile, self.settle_s = kafka, profile, settle_s
        self.run_id = f"lt{uuid.uuid4().hex[:6]}"
        self.maker = OrderMaker(profile, self.run_id)
        self.tally = Tally({sku: profile.stock_per_sku for sku in self.maker.sku_names})
        self.client = LockstockClient(kafka)
        self.inbox: queue.Queue = queue.Queue()
        self.to_cancel: set[str] = set()
        self.stocked: set[str] = set()
        self.last_decision_ms = 0  # when the latest first decision was read (epoch ms)

    def run(self) -> dict[str, Any]:
        """Offer the profile's rate for its duration; the report once everything settled."""
        with self._reading():
            self._set_stock()
            started = time.monotonic()
            self._offer(started)
            offered_s = time.monotonic() - started
            self._settle()
            finished = time.monotonic()
        return self._report(offered_s, finished - started)

    def burst(self, count: int) -> dict[str, Any]:
        """Saturation: ``count`` orders produced as fast as possible; throughput is the orders
        (and lines) decided per second from the first send to the last decision."""
        with self._reading():
            self._set_stock()
            started = now_ms()
            lines = 0
            for _ in range(count):
                order, _, _ = self.maker.next_order(now_ms())
                self._produce(order, twice=False)
                lines += len(order["lines"])
                if len(self.tally.sent_at) % 1000 == 0:
                    self.client.producer.poll(0)
                    self._pump()
            self.client.producer.flush(60)
            self._settle()
        seconds = max(1e-3, (max(self.last_decision_ms, started) - started) / 1000)
        summary = self.tally.summary()
        return {"orders": count, "lines": lines, "seconds": round(seconds, 2), "orders_per_s": round(summary["decided"] / seconds),
                "lines_per_s": round(lines * summary["decided"] / count / seconds), **summary}

    @contextlib.contextmanager
    def _reading(self):
        stop, ready = threading.Event(), threading.Event()
        reader = threading.Thread(target=self._read, args=(stop, ready), daemon=True)
        reader.start()
        if not ready.wait(30):
            raise SettingsError("could not start reading decisions within 30 s")
        try:
            yield
        finally:
            stop.set()
            reader.join(10)

    def _produce(self, order: dict, twice: bool) -> None:
        topic, producer = self.kafka.topics.orders_placed, self.client.producer
        payload = self.kafka.codec.encode("OrderPlaced", order, topic=topic)
        for _ in range(2 if twice else 1):
            while True:
                try:
                    producer.produce(topic, key=order["order_id"].encode(), value=payload)
                    break
                except BufferError:  # the local queue is full: let librdkafka send
                    producer.poll(0.05)
        self.tally.sent(order)

    def _read(self, stop: threading.Event, ready: threading.Event) -> None:
        """Decisions and channel stock from now on (assigned at the end offsets: no history)."""
        topics = self.kafka.topics
        consumer = self.kafka.consumer()
        try:
            self.kafka.assign_at(consumer, end=[topics.orders_decisions, topics.channels_stock])
            ready.set()
            while not stop.is_set():
                for message in consumer.consume(1000, 0.05):
                    if message.error() is None:
                        value = self.kafka.codec.decode(message.value()).value
                        self.inbox.put((message.topic(), value, now_ms()))
        finally:
            ready.set()
            consumer.close()

    def _pump(self) -> None:
        topics = self.kafka.topics
        while True:
            try:
                topic, value, received = self.inbox.get_nowait()
            except queue.Empty:
                return
            if topic == topics.channels_stock:
                self.stocked.add(value["sku"])
            elif self.tally.decided(value, received):  # the order's first decision
                self.last_decision_ms = max(self.last_decision_ms, received)
                if value["status"] == "LOCKED" and value["order_id"] in self.to_cancel:
                    self.client.order_event(value["order_id"], "CANCELLED", reason="load test cancellation",
                                            channel=value.get("channel") or self.profile.channels[0])

    def _set_stock(self) -> None:
        for sku in self.maker.sku_names:
            self.client.set_stock(sku, self.profile.stock_per_sku)
        self.client.flush()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(self.stocked) < len(self.maker.sku_names):
            self._pump()
            time.sleep(0.05)
        if len(self.stocked) < len(self.maker.sku_names):
            raise SettingsError(f"the engine did not announce stock for {len(self.maker.sku_names) - len(self.stocked)} "
                                "SKU(s) within 60 s: is a worker running?")

    def _offer(self, started: float) -> None:
        producer = self.client.producer
        due, last_t, sent, next_progress = 0.0, 0.0, 0, 1.0
        while True:
            t = time.monotonic() - started
            if t >= self.profile.duration_s:
                break
            due += self.profile.rate_at(t) * (t - last_t)
            last_t = t
            while sent < int(due):
                order, twice, cancel = self.maker.next_order(now_ms())
                self._produce(order, twice)
                if cancel:
                    self.to_cancel.add(order["order_id"])
                sent += 1
            producer.poll(0)
            self._pump()
            if t >= next_progress:
                next_progress += 1.0
                self._progress(t)
            time.sleep(0.001)
        producer.flush(30)

    def _progress(self, t: float) -> None:
        latency = self.tally.latency()
        click.echo(f"t={t:5.1f}s  offered {len(self.tally.sent_at):>7} ({self.profile.rate_at(t):.0f}/s now)  "
                   f"decided {len(self.tally.first):>7}  p99 {latency.get('p99_ms', 0):.0f} ms  "
                   f"undecided {self.tally.undecided()}")

    def _settle(self) -> None:
        deadline = time.monotonic() + self.settle_s
        while time.monotonic() < deadline:
            self._pump()
            self.client.producer.poll(0)
            pending_cancels = [o for o in self.to_cancel if self.tally.first.get(o) == "LOCKED"
                               and self.tally.final[o]["status"] == "LOCKED"]
            if not self.tally.undecided() and not pending_cancels:
                break
            time.sleep(0.05)
        self.client.flush()

    def _report(self, offered_s: float, total_s: float) -> dict[str, Any]:
        summary = self.tally.summary()
        return {
            "run_id": self.run_id, "profile": {**self.profile.__dict__, "channels": list(self.profile.channels)},
            "broker": self.kafka.profile.name, "offered_per_s": round(summary["orders"] / offered_s, 1),
            "achieved_per_s": round(summary["decided"] / total_s, 1), "seconds": round(total_s, 1), **summary,
        }


def _print(report: dict[str, Any]) -> None:
    click.echo("")
    rows = [{"measure": k, "value": report[k]} for k in
            ("orders", "offered_per_s", "achieved_per_s", "decided", "undecided", "held_units", "oversold")]
    rows += [{"measure": f"latency {k}", "value": v} for k, v in report["latency"].items()]
    rows += [{"measure": f"final {k}", "value": v} for k, v in sorted(report["final_status"].items())]
    rows += [{"measure": f"reason {k}", "value": v} for k, v in sorted(report["reasons"].items())]
    echo_table(rows, ["measure", "value"])
