"""One load run against a running lockstock: offer orders at the profile's rate (or as fast as
possible), read decisions and channel stock back, tally them independently of the engine.
Used by `lockstock loadtest`, `lockstock bench` and the chaos run. Given a watchdog
(apps.load.deaths), a worker that dies ends the run early and the report names it."""

from __future__ import annotations

import contextlib
import queue
import time
import uuid
from typing import Any, Callable

import click

from apps.client import LockstockClient
from apps.load.deaths import Watchdog
from apps.load.profile import LoadProfile, OrderMaker, units_to_lock_all
from apps.load.tally import Tally
from lockstock.clock import now_ms
from lockstock.errors import BrokerError, SettingsError, describe_kafka_error
from lockstock.kafka import Kafka
from lockstock.reader import Record

FILL_PROGRESS_S = 5.0


class LoadRun:
    def __init__(self, kafka: Kafka, profile: LoadProfile, settle_s: float,
                 on_tick: Callable[[float], None] | None = None, watchdog: Watchdog | None = None,
                 divert: Callable[[dict, bool], dict | None] | None = None) -> None:
        self.kafka, self.profile, self.settle_s = kafka, profile, settle_s
        self.on_tick = on_tick  # called with the seconds since the traffic started (chaos hooks in here)
        # Given (order, send twice), takes an order to deliver another way (the chaos run's webhooks)
        # and returns it as it will reach the engine, to be tallied; None leaves it to the producer.
        self.divert = divert
        self.watchdog = watchdog
        self.unacked: dict[str, bytes] = {}  # order id -> payload the broker has not acknowledged yet
        self.producer_restarts = 0
        self.resent = 0
        self.run_id = f"lt{uuid.uuid4().hex[:6]}"
        self.maker = OrderMaker(profile, self.run_id)
        self.stock = {sku: profile.stock_per_sku for sku in self.maker.sku_names}
        if self.maker.hot_sku:
            self.stock[self.maker.hot_sku] = profile.hot_stock or units_to_lock_all(
                profile.hot_orders_expected(), profile.channels, kafka.settings.catalog())
        self.tally = Tally(dict(self.stock))
        self.fill_tally = Tally({})  # the bench's fill orders, counted apart from the measured ones
        self.client = LockstockClient(kafka)
        self.inbox: queue.Queue = queue.Queue()
        self.to_cancel: set[str] = set()
        self.stocked: set[str] = set()
        self.stock_set = False
        self.lines = 0  # order lines sent (each order once, whether or not it was sent twice)
        self.stopped_early = False
        self.last_decision_ms = 0  # when the latest first decision was read (epoch ms)

    def worker_died(self) -> bool:
        return bool(self.watchdog and self.watchdog.died)

    def run(self, before_settle: Callable[[], None] | None = None) -> dict[str, Any]:
        """Offer the profile's rate for its duration; the report once everything settled.
        ``before_settle`` runs between the traffic and the wait for the last decisions."""
        with self._reading():
            stocked = self._set_stock()
            started = time.monotonic()
            if stocked:
                self._offer(started)
            offered_s = max(1e-3, time.monotonic() - started)
            if before_settle and not self.worker_died():
                before_settle()
            self._settle()
            finished = time.monotonic()
        return self._report(offered_s, max(1e-3, finished - started))

    def burst(self, count: int) -> dict[str, Any]:
        """Saturation: ``count`` orders produced as fast as possible; throughput is the orders
        (and lines) decided per second from the first send to the last decision."""
        with self._reading():
            self._set_stock()
            started = now_ms()
            lines_before, sent = self.lines, 0
            while sent < count and not self.worker_died():
                order, _, _ = self.maker.next_order(now_ms())
                self._produce(order, twice=False)
                sent += 1
                if sent % 1000 == 0:
                    self.client.producer.poll(0)
                    self._pump()
            self.stopped_early = sent < count
            self.client.producer.flush(60)
            self._settle()
        lines = self.lines - lines_before
        seconds = max(1e-3, (max(self.last_decision_ms, started) - started) / 1000)
        summary = self.tally.summary()
        return {"orders": sent, "lines": lines, "seconds": round(seconds, 2), "orders_per_s": round(summary["decided"] / seconds),
                "lines_per_s": round(lines * summary["decided"] / max(1, sent) / seconds),
                "stopped_early": self.stopped_early, **summary}

    def fill(self, sku: str, count: int, channel: str, timeout_s: float,
             progress: Callable[[str], None] = click.echo) -> dict[str, Any]:
        """``count`` one-unit orders of ``sku`` through ``channel``, each from a new buyer, never
        paid nor cancelled: that many open reservations on one SKU once they are all LOCKED.
        Sent as fast as the engine takes them; returns when every one is decided, a worker died
        or ``timeout_s`` passed. Counted apart (``fill_tally``) from what is measured next."""
        with self._reading():
            self._set_stock()
            started = time.monotonic()
            first_placed_ms, sent, next_progress = now_ms(), 0, started + FILL_PROGRESS_S
            while time.monotonic() - started < timeout_s and not self.worker_died():
                for _ in range(min(1000, count - sent)):  # sending runs ahead of deciding; the producer's queue bounds it
                    self._produce(self.maker.one_unit_order(sku, channel, now_ms()), twice=False, tally=self.fill_tally)
                    sent += 1
                self.client.producer.poll(0 if sent < count else 0.05)
                self._pump()
                if sent == count and not self.fill_tally.undecided():
                    break
                if time.monotonic() >= next_progress:
                    next_progress += FILL_PROGRESS_S
                    progress(self._fill_progress(sku, sent, count, time.monotonic() - started))
            self.client.producer.flush(30)
            self._pump()
        seconds = time.monotonic() - started
        progress(self._fill_progress(sku, sent, count, seconds))
        statuses = self.fill_tally.summary()["final_status"]
        return {"sku": sku, "channel": channel, "asked": count, "sent": sent, "locked": statuses.get("LOCKED", 0),
                "rejected": statuses.get("REJECTED", 0), "undecided": self.fill_tally.undecided(),
                "seconds": round(seconds, 1), "per_s": round(len(self.fill_tally.first) / max(seconds, 1e-3)),
                "first_placed_ms": first_placed_ms}

    def _fill_progress(self, sku: str, sent: int, count: int, seconds: float) -> str:
        locked = sum(1 for d in self.fill_tally.final.values() if d["status"] == "LOCKED")
        return (f"fill {sku}: {seconds:6.1f}s  sent {sent:>8}/{count}  open reservations {locked:>8}  "
                f"undecided {self.fill_tally.undecided():>7}  ({len(self.fill_tally.first) / max(seconds, 1e-3):.0f}/s)")

    @contextlib.contextmanager
    def _reading(self):
        """Decisions and channel stock from now on (read from the end offsets: no history) into
        ``inbox``, on a thread, for the duration."""
        topics = self.kafka.topics
        reader = self.kafka.reader_thread(self._received, end=[topics.orders_decisions, topics.channels_stock],
                                          name="lockstock-load-reader", poll_s=0.05, batch=1000)
        reader.start()
        try:
            reader.wait_ready(30)
            yield
        finally:
            reader.stop(10)
        if reader.failure is not None:
            raise BrokerError(f"reading decisions failed: {describe_kafka_error(reader.failure)}") from reader.failure

    def _received(self, records: list[Record], caught_up: bool) -> None:
        received = now_ms()
        for record in records:
            self.inbox.put((record.topic, record.value, received))

    def _produce(self, order: dict, twice: bool, tally: Tally | None = None) -> None:
        payload = self.kafka.codec.encode("OrderPlaced", order, topic=self.kafka.topics.orders_placed)
        self.unacked[order["order_id"]] = payload
        for _ in range(2 if twice else 1):
            self._send(order["order_id"], payload)
        (tally or self.tally).sent(order)
        self.lines += len(order["lines"])

    def _send(self, order_id: str, payload: bytes) -> None:
        producer = self.client.producer
        while True:
            try:
                producer.produce(self.kafka.topics.orders_placed, key=order_id.encode(), value=payload,
                                 on_delivery=self._delivered)
                return
            except BufferError:  # the local queue is full: let librdkafka send
                producer.poll(0.05)

    def _delivered(self, error: Any, message: Any) -> None:
        if error is None:
            self.unacked.pop(message.key().decode(), None)

    def restart_producer(self) -> int:
        """Crash the order producer (what it had queued or in flight is dropped, unacknowledged)
        and start a new one that re-sends every order the broker did not acknowledge, the way a
        marketplace retries a webhook that got no 2xx. Some dropped records may have reached the
        broker anyway: those orders arrive twice. Returns how many were re-sent."""
        old = self.client.producer
        old.purge(in_queue=True, in_flight=True)
        old.poll(0)  # delivery reports: acknowledged ones leave ``unacked``, purged ones stay
        self.client.producer = self.kafka.producer()
        for order_id, payload in list(self.unacked.items()):
            self._send(order_id, payload)
        self.producer_restarts += 1
        self.resent += len(self.unacked)
        return len(self.unacked)

    def _pending_cancels(self) -> list[str]:
        """Orders the run cancelled that are still LOCKED by their latest decision."""
        return [o for o in self.to_cancel if self.tally.first.get(o) == "LOCKED" and self.tally.final[o]["status"] == "LOCKED"]

    def _cancel(self, order_id: str, channel: str | None) -> None:
        self.client.order_event(order_id, "CANCELLED", reason="load test cancellation",
                                channel=channel or self.profile.channels[0])

    def _pump(self) -> None:
        topics = self.kafka.topics
        while True:
            try:
                topic, value, received = self.inbox.get_nowait()
            except queue.Empty:
                return
            if topic == topics.channels_stock:
                self.stocked.add(value["sku"])
            elif self.fill_tally.decided(value, received):
                pass  # a fill order: neither measured nor cancelled
            elif self.tally.decided(value, received):  # the order's first decision
                self.last_decision_ms = max(self.last_decision_ms, received)
                if value["status"] == "LOCKED" and value["order_id"] in self.to_cancel:
                    self._cancel(value["order_id"], value.get("channel"))

    def _set_stock(self) -> bool:
        """Set every SKU's stock once per run and wait for the engine to announce it. False when a
        worker died meanwhile (the report says which); SettingsError when the engine is silent."""
        if self.stock_set:
            return True
        for sku, units in self.stock.items():
            self.client.set_stock(sku, units)
        self.client.flush()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(self.stocked) < len(self.stock) and not self.worker_died():
            self._pump()
            time.sleep(0.05)
        if self.worker_died():
            self.stopped_early = True
            return False
        if len(self.stocked) < len(self.stock):
            raise SettingsError(f"the engine did not announce stock for {len(self.stock) - len(self.stocked)} "
                                "SKU(s) within 60 s: is a worker running?")
        self.stock_set = True
        return True

    def _offer(self, started: float) -> None:
        due, last_t, sent, next_progress = 0.0, 0.0, 0, 1.0
        while True:
            t = time.monotonic() - started
            if t >= self.profile.duration_s:
                break
            if self.worker_died():
                self.stopped_early = True
                break
            due += self.profile.rate_at(t) * (t - last_t)
            last_t = t
            while sent < int(due):
                order, twice, cancel = self.maker.next_order(now_ms())
                diverted = self.divert(order, twice) if self.divert else None
                if diverted is None:
                    self._produce(order, twice)
                else:
                    order = diverted
                    self.tally.sent(order)
                    self.lines += len(order["lines"])
                if cancel:
                    self.to_cancel.add(order["order_id"])
                sent += 1
            self.client.producer.poll(0)
            self._pump()
            if self.on_tick:
                self.on_tick(t)
            if t >= next_progress:
                next_progress += 1.0
                self._progress(t)
            time.sleep(0.001)
        self.client.producer.flush(30)

    def _progress(self, t: float) -> None:
        latency = self.tally.latency()
        click.echo(f"t={t:5.1f}s  offered {len(self.tally.sent_at):>7} ({self.profile.rate_at(t):.0f}/s now)  "
                   f"decided {len(self.tally.first):>7}  p99 {latency.get('p99_ms', 0):.0f} ms  "
                   f"undecided {self.tally.undecided()}")

    def _settle(self) -> None:
        deadline = time.monotonic() + self.settle_s
        while time.monotonic() < deadline and not self.worker_died():
            self._pump()
            self.client.producer.poll(0)
            if not self.tally.undecided() and not self._pending_cancels():
                break
            time.sleep(0.05)
        self.client.flush()

    def _report(self, offered_s: float, total_s: float) -> dict[str, Any]:
        summary = self.tally.summary()
        died = self.watchdog.check_now() if self.watchdog else []
        return {
            "run_id": self.run_id, "profile": {**self.profile.__dict__, "channels": list(self.profile.channels)},
            "broker": self.kafka.profile.name, "offered_per_s": round(summary["orders"] / offered_s, 1),
            "achieved_per_s": round(summary["decided"] / total_s, 1), "seconds": round(total_s, 1),
            "lines": self.lines,
            "hot_sku": {"sku": self.maker.hot_sku, "stock": self.stock[self.maker.hot_sku]} if self.maker.hot_sku else None,
            **summary, "workers_died": died, "stopped_early": self.stopped_early,
            "cancels_pending": sorted(self._pending_cancels())[:10],  # cancelled by the run, never released
            "flipped_sample": self.tally.flips[:10],
        }
