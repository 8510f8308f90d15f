"""The lock engine end to end on a real broker: one worker (started by this module, with the test
catalog tests/integration/channels.yaml) and the topics a connector or operator would use.

Every test owns its SKUs and order ids; the worker, topics and the reader are shared by the
module so its start-up is paid once. Nothing here waits a fixed time to assert: each check polls
the worker's web views or reads the topics until a condition holds, with a deadline. Orders with
different ids may be processed in any order, so wherever one must come before another the test
waits for the first one's decision. ``Feed.sync`` reads every topic up to its end offset, which
is how "exactly one alert" and "latest channel stock" are judged on everything produced so far.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from confluent_kafka import TopicPartition

from apps.client import LockstockClient
from apps.supervise import WorkerPool
from lockstock.broker.embedded import free_port
from lockstock.catalog import load_catalog
from lockstock.clock import now_ms
from lockstock.kafka import Kafka
from lockstock.settings import Settings

pytestmark = pytest.mark.integration

CATALOG_FILE = Path(__file__).parents[1] / "channels.yaml"
CATALOG = load_catalog(CATALOG_FILE)
TIMEOUT = 30.0


# -- plumbing ----------------------------------------------------------------------------------

def wait_for(what: str, probe: Callable[[], Any], timeout: float = TIMEOUT, interval: float = 0.05) -> Any:
    """probe() until it returns something truthy; its last value in the failure message."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")


class Feed:
    """Reads the engine's output topics from the beginning with one group-less reader, keeping
    every record; a record it cannot decode fails the test at the next ``sync``."""

    def __init__(self, kafka: Kafka) -> None:
        self.kafka = kafka
        t = kafka.topics
        self.topics = [t.orders_decisions, t.inventory_alerts, t.channels_stock, t.deadletter]
        self.reader = kafka.reader(beginning=self.topics)
        self.partitions = [TopicPartition(topic, p) for topic in self.topics for p in range(kafka.settings.partitions)]
        self.records: dict[str, list[tuple[str, dict]]] = {topic: [] for topic in self.topics}
        self.positions: dict[tuple[str, int], int] = {}

    def poll(self, wait: float = 0.05) -> None:
        for record in self.reader.poll(wait, 1000):
            self.records[record.topic].append(((record.key or b"").decode(), record.value))
            self.positions[(record.topic, record.partition)] = record.offset + 1

    def until(self, what: str, probe: Callable[[], Any], timeout: float = TIMEOUT) -> Any:
        def step() -> Any:
            self.poll()
            return probe()
        return wait_for(what, step, timeout, interval=0)

    def sync(self, timeout: float = TIMEOUT) -> None:
        """Read every topic up to the end offsets as of now."""
        ends = self.kafka.end_offsets(self.reader.consumer, self.partitions)
        self.until("the feed to reach the end offsets", lambda: all(
            self.positions.get(tp, 0) >= end for tp, end in ends.items()), timeout)
        assert not self.reader.bad.undecodable, self.reader.bad.last_reason

    def close(self) -> None:
        self.reader.close()

    # views over what was read
    def decisions(self, order_id: str) -> list[dict]:
        return [v for k, v in self.records[self.kafka.topics.orders_decisions] if v["order_id"] == order_id]

    def alerts(self, sku: str, kind: str | None = None) -> list[dict]:
        return [v for k, v in self.records[self.kafka.topics.inventory_alerts]
                if v["sku"] == sku and (kind is None or v["type"] == kind)]

    def dead(self, key: str) -> list[dict]:
        return [v for k, v in self.records[self.kafka.topics.deadletter] if k == key]

    def channel_stock(self, sku: str) -> dict[str, tuple[str, dict]]:
        """Latest ChannelStock per channel (highest seq), with the record key."""
        latest: dict[str, tuple[str, dict]] = {}
        for key, value in self.records[self.kafka.topics.channels_stock]:
            if value["sku"] == sku and (value["channel"] not in latest or value["seq"] > latest[value["channel"]][1]["seq"]):
                latest[value["channel"]] = (key, value)
        return latest


@dataclass
class Engine:
    kafka: Kafka
    worker: Any
    client: LockstockClient
    feed: Feed

    # -- sending -------------------------------------------------------------------------------
    def order(self, order_id: str, lines: list[tuple[str, int]], **kw: Any) -> dict:
        order = self.client.place_order(order_id, lines, **kw)
        self.client.flush()
        return order

    def command(self, sku: str, kind: str, **fields: Any) -> dict:
        command = self.client.command(sku, kind, **fields)
        self.client.flush()
        return command

    def set_stock(self, sku: str, total: int, regions: dict[str, int] | None = None, **kw: Any) -> dict:
        command = self.client.set_stock(sku, total, regions, **kw)
        self.client.flush()
        return command

    def event(self, order_id: str, kind: str, **kw: Any) -> dict:
        event = self.client.order_event(order_id, kind, **kw)
        self.client.flush()
        return event

    # -- waiting -------------------------------------------------------------------------------
    def decided(self, order_id: str, count: int = 1, timeout: float = TIMEOUT) -> dict:
        """The order's count-th decision, once it is out."""
        return self.feed.until(f"decision #{count} of {order_id}",
                               lambda: len(self.feed.decisions(order_id)) >= count and self.feed.decisions(order_id)[count - 1],
                               timeout)

    def lock(self, order_id: str, lines: list[tuple[str, int]], **kw: Any) -> dict:
        self.order(order_id, lines, **kw)
        return self.decided(order_id)

    def stock(self, sku: str) -> dict | None:
        status, body = self.worker.get_json(f"/stock/{sku}/")
        return body if status == 200 else None

    def stock_when(self, sku: str, what: str, condition: Callable[[dict], bool], timeout: float = TIMEOUT) -> dict:
        """/stock/{sku}/ once condition(view) holds."""
        def probe() -> dict | None:
            view = self.stock(sku)
            return view if view is not None and condition(view) else None
        return wait_for(f"{sku}: {what}", probe, timeout)

    def order_view(self, order_id: str) -> dict | None:
        status, body = self.worker.get_json(f"/orders/{order_id}/")
        return body if status == 200 else None

    def dead_command(self, command: dict, timeout: float = TIMEOUT) -> dict:
        """The dead letter of an InventoryCommand, found by its command id."""
        def find() -> dict | None:
            for value in self.feed.dead(command["sku"]):
                payload = self.kafka.codec.decode(value["payload"], topic=self.kafka.topics.inventory_commands).value
                if payload["command_id"] == command["command_id"]:
                    return value
            return None
        return self.feed.until(f"dead letter of {command['type']} {command['command_id']}", find, timeout)


@pytest.fixture(scope="module")
def engine(broker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    tmp = tmp_path_factory.mktemp("lock-engine")
    tag = uuid.uuid4().hex[:10]
    settings = Settings(bootstrap_servers=broker.bootstrap, data_dir=tmp / "state", topic_prefix=f"t{tag}",
                        app_id=f"lockstock-t{tag}", partitions=4, web_port=free_port(), channels_file=CATALOG_FILE)
    kafka = Kafka.connect(settings)
    kafka.create_topics()
    pool = WorkerPool(settings, tmp / "logs")
    feed = None
    try:
        worker = pool.start()
        worker.wait_ready()
        feed = Feed(kafka)
        yield Engine(kafka, worker, LockstockClient(kafka), feed)
    finally:
        if feed is not None:
            feed.close()
        pool.stop_all()


def expected_channel_stock(view: dict) -> dict[str, tuple[int, int, bool]]:
    """channel -> (sellable, available, paused) as the engine must publish it for this state."""
    expected = {}
    for channel in CATALOG.channels.values():
        region = view["regions"].get(channel.region)
        available = max(0, (region["free"] if region else 0) + view["flex"])
        paused = channel.id in view["paused_channels"]
        expected[channel.id] = (0 if paused else available, available, paused)
    return expected


def published_channel_stock(engine: Engine, sku: str, view: dict) -> dict[str, tuple[int, int, bool]]:
    """The latest figures per channel, once they are those ``view`` implies: the keeper announces
    a change within rules.channel_stock_interval_ms (a pause or a sell-out at once)."""
    def latest() -> dict[str, tuple[int, int, bool]]:
        records = engine.feed.channel_stock(sku)
        assert all(key == f"{channel}:{sku}" for channel, (key, _) in records.items()), records
        return {channel: (v["sellable"], v["available"], v["paused"]) for channel, (_, v) in records.items()}

    engine.feed.sync()
    expected = expected_channel_stock(view)
    engine.feed.until(f"{sku}'s channel figures to be {expected}", lambda: latest() == expected)
    return latest()


def regions_of(view: dict) -> dict[str, tuple[int, int, int, int, int]]:
    """region -> (allocation, locked, paid, shipped, free)"""
    return {name: (r["allocation"], r["locked"], r["paid"], r["shipped"], r["free"]) for name, r in view["regions"].items()}


def lines_of(decision: dict) -> list[tuple[str, int, str | None]]:
    return [(line["sku"], line["qty"], line["region"]) for line in decision["lines"]]


# -- 1. the lock path ---------------------------------------------------------------------------

def test_lock_path_region_then_flex_then_out_of_stock(engine: Engine) -> None:
    sku = "LOCK-1"
    engine.set_stock(sku, 10, {"US": 4, "EU": 3, "SEA": 1}, flex_pct=20)
    view = engine.stock_when(sku, "stock set", lambda v: v["total"] == 10)
    assert (view["flex"], view["available"]) == (2, 10)
    assert regions_of(view) == {"EU": (3, 0, 0, 0, 3), "SEA": (1, 0, 0, 0, 1), "US": (4, 0, 0, 0, 4)}

    # The region's own allocation first: 3 of US's 4.
    first = engine.lock("lock-o1", [(sku, 3)])
    assert (first["status"], first["reason"], lines_of(first)) == ("LOCKED", None, [(sku, 3, "US")])
    view = engine.stock_when(sku, "o1 locked", lambda v: v["locked"] == 3)
    assert regions_of(view)["US"] == (4, 3, 0, 0, 1) and view["flex"] == 2

    # 3 more: US has 1 free, the flex pool covers the 2 missing (flex_chunk 2), announced.
    second = engine.lock("lock-o2", [(sku, 3)])
    assert (second["status"], lines_of(second)) == ("LOCKED", [(sku, 3, "US")])
    flex = engine.feed.until("a FLEX_TRANSFER alert", lambda: engine.feed.alerts(sku, "FLEX_TRANSFER"))
    assert [(a["region"], a["quantity"], a["details"]["trigger"], a["details"]["flex_left"]) for a in flex] == [
        ("US", 2, "US short of 2 for an order", "0")]
    assert flex[0]["alert_id"].startswith(f"{sku}:flex_transfer:")
    topics = engine.kafka.topics
    assert {k for k, v in engine.feed.records[topics.inventory_alerts] if v["sku"] == sku} == {sku}  # keyed by SKU
    assert {k for k, v in engine.feed.records[topics.orders_decisions] if v["order_id"] == "lock-o2"} == {"lock-o2"}
    view = engine.stock_when(sku, "o2 locked", lambda v: v["locked"] == 6)
    assert regions_of(view)["US"] == (6, 6, 0, 0, 0) and (view["flex"], view["available"]) == (0, 4)

    # Nothing left in US nor in flex: rejected, nothing held.
    third = engine.lock("lock-o3", [(sku, 1)])
    assert (third["status"], third["reason"], lines_of(third)) == ("REJECTED", "OUT_OF_STOCK", [(sku, 1, None)])

    # The ship-to region wins over the channel's region (tiktok-us serves US).
    fourth = engine.lock("lock-o4", [(sku, 2)], channel="tiktok-us", region="EU")
    assert (fourth["status"], lines_of(fourth)) == ("LOCKED", [(sku, 2, "EU")])
    view = engine.stock_when(sku, "o4 locked in EU", lambda v: v["regions"]["EU"]["locked"] == 2)
    assert regions_of(view) == {"EU": (3, 2, 0, 0, 1), "SEA": (1, 0, 0, 0, 1), "US": (6, 6, 0, 0, 0)}
    assert (view["locked"], view["available"], view["open_reservations"]) == (8, 2, 3)

    # Orders the desk refuses outright, whatever the stock.
    engine.order("lock-bad-channel", [(sku, 1)], channel="myspace")
    engine.order("lock-bad-region", [(sku, 1)], region="MARS")
    engine.order("lock-zero", [(sku, 0)])
    engine.order("lock-negative", [(sku, 1), ("LOCK-OTHER", -2)])
    engine.order("lock-empty", [])
    refused = {o: engine.decided(o) for o in
               ("lock-bad-channel", "lock-bad-region", "lock-zero", "lock-negative", "lock-empty")}
    assert {o: (d["status"], d["reason"]) for o, d in refused.items()} == {
        "lock-bad-channel": ("REJECTED", "UNKNOWN_CHANNEL"), "lock-bad-region": ("REJECTED", "UNKNOWN_REGION"),
        "lock-zero": ("REJECTED", "INVALID_QUANTITY"), "lock-negative": ("REJECTED", "INVALID_QUANTITY"),
        "lock-empty": ("REJECTED", "EMPTY_ORDER"),
    }
    assert lines_of(refused["lock-bad-region"]) == [(sku, 1, None)]
    assert lines_of(refused["lock-negative"]) == [(sku, 1, None), ("LOCK-OTHER", -2, None)]
    assert refused["lock-empty"]["lines"] == []

    # A redelivered OrderPlaced repeats the decision word for word and locks nothing more.
    engine.order("lock-o1", [(sku, 3)])
    assert engine.decided("lock-o1", count=2) == first
    engine.feed.sync()
    assert len(engine.feed.decisions("lock-o1")) == 2
    view = engine.stock(sku)
    assert regions_of(view) == {"EU": (3, 2, 0, 0, 1), "SEA": (1, 0, 0, 0, 1), "US": (6, 6, 0, 0, 0)}
    assert (view["locked"], view["available"], view["open_reservations"]) == (8, 2, 3)
    assert len(engine.feed.alerts(sku, "FLEX_TRANSFER")) == 1

    # channels.stock: per channel:sku, region free + flex (US 0, EU 1, SEA 1) ...
    expected = expected_channel_stock(view)
    assert {c: e[0] for c, e in expected.items()} == {
        "tiktok-us": 0, "youtube-us": 0, "instagram-us": 0, "amazon-us": 0, "shopify": 0,
        "tiktok-eu": 1, "amazon-eu": 1, "shopee-my": 1, "shopee-th": 1}
    assert published_channel_stock(engine, sku, view) == expected
    # ... and 0 for a paused channel, which still reports what its region could sell.
    engine.command(sku, "PAUSE_CHANNEL", channel="amazon-eu")
    view = engine.stock_when(sku, "amazon-eu paused", lambda v: v["paused_channels"] == ["amazon-eu"])
    published = published_channel_stock(engine, sku, view)
    assert published["amazon-eu"] == (0, 1, True) and published["tiktok-eu"] == (1, 1, False)
    assert published == expected_channel_stock(view)


# -- 2. the order lifecycle ---------------------------------------------------------------------

def test_lifecycle_paid_cancelled_shipped_expired(engine: Engine) -> None:
    sku = "LIFE-1"
    engine.set_stock(sku, 100, {"US": 40, "EU": 30, "SEA": 10}, flex_pct=20,
                     warehouses={"LA": 0, "NJ": 60, "RTM": 30, "KUL": 10})
    view = engine.stock_when(sku, "stock set", lambda v: v["total"] == 100)
    assert view["warehouses"] == {"KUL": 10, "LA": 0, "NJ": 60, "RTM": 30} and view["flex"] == 20

    # Five US locks (tiktok-us, TTL 600 s) and two on shopee-th (SEA, TTL 2 s), all at once.
    placed = {"life-pay": 2, "life-cancel": 3, "life-ship": 3, "life-ship-rtm": 2, "life-refund": 1}
    for order_id, qty in placed.items():
        engine.client.place_order(order_id, [(sku, qty)], buyer=order_id)
    for order_id in ("life-expire", "life-expire-paid"):
        engine.client.place_order(order_id, [(sku, 2)], channel="shopee-th", buyer=order_id)
    engine.client.flush()
    locks = {o: engine.decided(o) for o in [*placed, "life-expire", "life-expire-paid"]}
    engine.event("life-expire-paid", "PAID")  # paid well within its 2 s: it must never expire
    assert {o: (d["status"], lines_of(d)) for o, d in locks.items()} == {
        **{o: ("LOCKED", [(sku, qty, "US")]) for o, qty in placed.items()},
        "life-expire": ("LOCKED", [(sku, 2, "SEA")]), "life-expire-paid": ("LOCKED", [(sku, 2, "SEA")])}
    view = engine.stock_when(sku, "the US locks", lambda v: v["regions"]["US"]["locked"] == 11)
    assert regions_of(view)["US"] == (40, 11, 0, 0, 29)

    engine.client.order_event("life-pay", "PAID")
    engine.client.order_event("life-refund", "PAID")
    engine.client.order_event("life-refund", "CANCELLED")  # paid, then cancelled: the paid units return
    engine.client.order_event("life-cancel", "CANCELLED", reason="buyer changed mind")
    engine.client.order_event("life-ship", "PAID")
    engine.client.order_event("life-ship", "SHIPPED")  # no warehouse named: nearest with stock
    engine.client.order_event("life-ship-rtm", "SHIPPED", warehouse="RTM")  # shipped unpaid (e.g. COD)
    engine.client.order_event("life-ghost", "PAID")  # no such order
    engine.client.flush()

    # CANCELLED: a RELEASED decision carrying the event's reason; the units come back.
    released = engine.decided("life-cancel", count=2)
    assert (released["status"], released["reason"], lines_of(released)) == (
        "RELEASED", "buyer changed mind", [(sku, 3, "US")])
    # An event for an order nobody placed is dead-lettered ...
    ghost = engine.feed.until("the ghost event's dead letter", lambda: engine.feed.dead("life-ghost"))
    assert [(d["error_type"], d["reason"], d["source_topic"]) for d in ghost] == [
        ("INVALID_EVENT", "PAID for unknown order 'life-ghost'", engine.kafka.topics.orders_events)]
    # ... and the worker keeps going: the unpaid shopee-th lock expires after its 2 s TTL.
    expired = engine.decided("life-expire", count=2)
    assert (expired["status"], expired["reason"], lines_of(expired)) == ("RELEASED", "PAYMENT_TIMEOUT", [(sku, 2, "SEA")])
    assert expired["decided_at"] - locks["life-expire"]["decided_at"] >= 2000
    refunded = engine.decided("life-refund", count=2)
    assert (refunded["status"], refunded["reason"], lines_of(refunded)) == ("RELEASED", "CANCELLED", [(sku, 1, "US")])
    # A payment arriving after the expiry holds no stock: dead-lettered for a refund.
    engine.event("life-expire", "PAID")
    late = engine.feed.until("the late payment's dead letter", lambda: engine.feed.dead("life-expire"))
    assert [(d["error_type"], d["reason"]) for d in late] == [("INVALID_EVENT", "order life-expire was paid but "
                                                               "holds no stock (RELEASED PAYMENT_TIMEOUT): refund it")]
    # The paid shopee-th order outlives its TTL (plus a sweep interval or two) without a release.
    wait_for("the paid order's TTL to pass", lambda: now_ms() >= locks["life-expire-paid"]["decided_at"] + 2000 + 500)

    # PAID: locked -> paid; SHIPPED: -> shipped, out of NJ (LA, nearer, holds none) or of RTM as named.
    view = engine.stock_when(sku, "paid, shipped, released", lambda v: (
        v["regions"]["US"]["locked"], v["regions"]["SEA"]["locked"], v["shipped"]) == (0, 0, 5))
    assert regions_of(view) == {"EU": (30, 0, 0, 0, 30), "SEA": (10, 0, 2, 0, 8), "US": (40, 0, 2, 5, 33)}
    assert view["warehouses"] == {"KUL": 10, "LA": 0, "NJ": 57, "RTM": 28}
    assert (view["total"], view["available"], view["open_reservations"], view["ship_shortfall"]) == (100, 91, 2, 0)
    orders = {o: engine.order_view(o) for o in (*placed, "life-expire", "life-expire-paid")}
    assert {o: (v["status"], v["reason"]) for o, v in orders.items()} == {
        "life-pay": ("PAID", None), "life-cancel": ("RELEASED", "buyer changed mind"), "life-ship": ("SHIPPED", None),
        "life-ship-rtm": ("SHIPPED", None), "life-refund": ("RELEASED", "CANCELLED"),
        "life-expire": ("RELEASED", "PAYMENT_TIMEOUT"), "life-expire-paid": ("PAID", None)}
    assert orders["life-pay"]["expires_at"] is None and orders["life-expire-paid"]["expires_at"] is None
    engine.feed.sync()
    assert {o: len(engine.feed.decisions(o)) for o in ("life-pay", "life-ship", "life-ship-rtm", "life-expire-paid")} == {
        "life-pay": 1, "life-ship": 1, "life-ship-rtm": 1, "life-expire-paid": 1}

    # PAID sent before the decision is out (as soon as the desk knows the order): still applied.
    engine.order("life-early", [(sku, 2)], buyer="life-early")
    # (On the embedded broker the desk still shows it PENDING here: the PAID waits for the decision.)
    wait_for("the desk to know life-early", lambda: engine.order_view("life-early"), interval=0.005)
    engine.event("life-early", "PAID")
    decision = engine.decided("life-early")
    assert (decision["status"], lines_of(decision)) == ("LOCKED", [(sku, 2, "US")])
    engine.stock_when(sku, "life-early paid", lambda v: v["regions"]["US"]["paid"] == 4)
    assert wait_for("life-early PAID", lambda: (engine.order_view("life-early") or {}).get("status") == "PAID")
    engine.feed.sync()
    assert engine.feed.dead("life-early") == []
    assert regions_of(engine.stock(sku))["US"] == (40, 0, 4, 5, 31)


# -- 3. inventory commands ----------------------------------------------------------------------

def test_inventory_commands(engine: Engine) -> None:
    sku = "CMD-1"
    engine.set_stock(sku, 100)  # no split given: the catalog's weights share what flex (20 %) leaves
    before = engine.stock_when(sku, "stock set", lambda v: v["total"] == 100)
    assert regions_of(before) == {"EU": (27, 0, 0, 0, 27), "SEA": (21, 0, 0, 0, 21), "US": (32, 0, 0, 0, 32)}
    assert before["flex"] == 20 and before["warehouses"] == {"KUL": 21, "LA": 52, "NJ": 0, "RTM": 27}

    # The seed split does not fit: 3000 + 20 % flex = 3600 > 3000. Dead-lettered, state untouched.
    seed = engine.set_stock(sku, 3000, {"US": 1200, "EU": 1000, "SEA": 800}, flex_pct=20)
    dead = engine.dead_command(seed)
    assert dead["error_type"] == "INVALID_COMMAND" and dead["source_topic"] == engine.kafka.topics.inventory_commands
    assert "= 3600, more than the 3000 units that exist" in dead["reason"], dead["reason"]
    assert engine.stock(sku) == before

    # Proportional: the regions are scaled into the 2400 the flex pool leaves.
    engine.set_stock(sku, 3000, {"US": 1200, "EU": 1000, "SEA": 800}, flex_pct=20, proportional=True)
    view = engine.stock_when(sku, "proportional split", lambda v: v["total"] == 3000)
    assert regions_of(view) == {"EU": (800, 0, 0, 0, 800), "SEA": (640, 0, 0, 0, 640), "US": (960, 0, 0, 0, 960)}
    assert (view["flex"], view["available"]) == (600, 3000)
    assert view["warehouses"] == {"KUL": 640, "LA": 1560, "NJ": 0, "RTM": 800}

    # RESTOCK that arrived is sellable at once; one with a future eta is only shown in transit.
    engine.command(sku, "RESTOCK", quantity=50, region="EU")
    eta = now_ms() + 86_400_000
    transit = engine.command(sku, "RESTOCK", quantity=100, region="SEA", eta=eta)
    view = engine.stock_when(sku, "a shipment in transit", lambda v: v["in_transit"] != [])
    assert view["in_transit"] == [{"id": transit["command_id"], "qty": 100, "region": "SEA", "warehouse": "KUL", "eta": eta}]
    assert (view["total"], view["available"], view["regions"]["SEA"]["in_transit"]) == (3050, 3050, 100)
    assert regions_of(view) == {"EU": (850, 0, 0, 0, 850), "SEA": (640, 0, 0, 0, 640), "US": (960, 0, 0, 0, 960)}
    assert view["warehouses"] == {"KUL": 640, "LA": 1560, "NJ": 0, "RTM": 850}

    # Receiving it (90 of the 100 arrived); a transit nobody recorded is refused.
    engine.command(sku, "RESTOCK", transit_id=transit["command_id"], quantity=90)
    unknown_transit = engine.command(sku, "RESTOCK", transit_id="no-such-shipment")
    # TRANSFER moves free units (region -> region, flex -> region); more than free is refused.
    engine.command(sku, "TRANSFER", quantity=100, region="US", to_region="EU")
    engine.command(sku, "TRANSFER", quantity=50, to_region="SEA")  # no region: from the flex pool
    too_many = engine.command(sku, "TRANSFER", quantity=5000, region="SEA", to_region="US")
    # ADJUST corrects counts: 10 lost in EU (RTM), 5 found in US at NJ.
    engine.command(sku, "ADJUST", quantity=-10, region="EU", reason="cycle count")
    engine.command(sku, "ADJUST", quantity=5, region="US", warehouse="NJ", reason="found on a pallet")
    assert engine.dead_command(unknown_transit)["reason"] == "no shipment 'no-such-shipment' in transit for CMD-1"
    assert engine.dead_command(too_many)["reason"] == "SEA has only 780 free units of CMD-1; cannot move 5000"
    # Commands of one SKU apply in order: once the last one shows, all before it have applied.
    view = engine.stock_when(sku, "the last ADJUST", lambda v: v["warehouses"].get("NJ") == 5)
    assert regions_of(view) == {"EU": (940, 0, 0, 0, 940), "SEA": (780, 0, 0, 0, 780), "US": (865, 0, 0, 0, 865)}
    assert (view["total"], view["flex"], view["available"], view["in_transit"]) == (3135, 550, 3135, [])
    assert view["warehouses"] == {"KUL": 730, "LA": 1560, "NJ": 5, "RTM": 840}

    # SET_PURCHASE_LIMIT: per buyer, across channels.
    engine.command(sku, "SET_PURCHASE_LIMIT", buyer_limit=3)
    view = engine.stock_when(sku, "the operator's limit", lambda v: v["buyer_limit"] == 3)
    assert view["limit_source"] == "operator"
    limit_alerts = engine.feed.until("the limit alert", lambda: engine.feed.alerts(sku, "PURCHASE_LIMIT_TRIGGERED"))
    assert [(a["quantity"], a["details"]["source"]) for a in limit_alerts] == [(3, "operator")]
    assert engine.lock("cmd-lim-1", [(sku, 2)], buyer="shopper", channel="tiktok-us")["status"] == "LOCKED"
    over = engine.lock("cmd-lim-2", [(sku, 2)], buyer="shopper", channel="amazon-eu")
    assert (over["status"], over["reason"]) == ("REJECTED", "PURCHASE_LIMIT")
    assert lines_of(engine.lock("cmd-lim-3", [(sku, 1)], buyer="shopper", channel="amazon-eu")) == [(sku, 1, "EU")]
    assert engine.lock("cmd-lim-4", [(sku, 3)], buyer="someone-else")["status"] == "LOCKED"
    # CLEAR lifts it.
    engine.command(sku, "CLEAR_PURCHASE_LIMIT")
    view = engine.stock_when(sku, "no limit", lambda v: v["buyer_limit"] is None)
    assert view["limit_source"] is None
    assert engine.feed.until("the cleared alert", lambda: engine.feed.alerts(sku, "PURCHASE_LIMIT_CLEARED"))
    assert engine.lock("cmd-lim-5", [(sku, 2)], buyer="shopper")["status"] == "LOCKED"
    view = engine.stock_when(sku, "the limit orders", lambda v: v["locked"] == 8)
    assert (view["regions"]["US"]["locked"], view["regions"]["EU"]["locked"]) == (7, 1)

    # PAUSE_CHANNEL: that channel's orders are rejected and it publishes 0; EU's other channel sells.
    engine.command(sku, "PAUSE_CHANNEL", channel="tiktok-eu")
    view = engine.stock_when(sku, "tiktok-eu paused", lambda v: v["paused_channels"] == ["tiktok-eu"])
    paused = engine.lock("cmd-paused", [(sku, 1)], channel="tiktok-eu")
    assert (paused["status"], paused["reason"], lines_of(paused)) == ("REJECTED", "CHANNEL_PAUSED", [(sku, 1, None)])
    assert engine.lock("cmd-amazon-eu", [(sku, 1)], channel="amazon-eu")["status"] == "LOCKED"
    view = engine.stock_when(sku, "the amazon-eu lock", lambda v: v["regions"]["EU"]["locked"] == 2)
    published = published_channel_stock(engine, sku, view)
    eu_sellable = view["regions"]["EU"]["free"] + view["flex"]
    assert eu_sellable == 938 + 550
    assert published["tiktok-eu"] == (0, eu_sellable, True) and published["amazon-eu"] == (eu_sellable, eu_sellable, False)
    assert published == expected_channel_stock(view)
    assert [a["channel"] for a in engine.feed.alerts(sku, "CHANNEL_PAUSED")] == ["tiktok-eu"]
    # RESUME restores it.
    engine.command(sku, "RESUME_CHANNEL", channel="tiktok-eu")
    engine.stock_when(sku, "tiktok-eu resumed", lambda v: v["paused_channels"] == [])
    assert lines_of(engine.lock("cmd-resumed", [(sku, 1)], channel="tiktok-eu")) == [(sku, 1, "EU")]
    view = engine.stock_when(sku, "the resumed lock", lambda v: v["regions"]["EU"]["locked"] == 3)
    published = published_channel_stock(engine, sku, view)
    assert published["tiktok-eu"] == (eu_sellable - 1, eu_sellable - 1, False)
    assert published == expected_channel_stock(view)


# -- 4. automation ------------------------------------------------------------------------------

def test_flex_transfer_once_per_crossing_of_85_percent(engine: Engine) -> None:
    sku = "AUTO-FLEX"
    engine.set_stock(sku, 50, {"US": 20, "EU": 15, "SEA": 5}, flex_pct=20)
    engine.stock_when(sku, "stock set", lambda v: v["total"] == 50 and v["flex"] == 10)
    # 18 single units in US, as a burst (any order: every lock takes 1, so the counts run 1..18).
    # The 17th is 85 % of 20: one chunk of 2 moves (22); the 18th is 82 % of 22, under again.
    for n in range(18):
        engine.client.place_order(f"flex-{n}", [(sku, 1)], buyer=f"flex-buyer-{n}")
    engine.client.flush()
    for n in range(18):
        assert engine.decided(f"flex-{n}")["status"] == "LOCKED"
    view = engine.stock_when(sku, "18 locked", lambda v: v["locked"] == 18)
    assert regions_of(view)["US"] == (22, 18, 0, 0, 4) and view["flex"] == 8
    engine.feed.sync()
    transfers = engine.feed.alerts(sku, "FLEX_TRANSFER")
    assert [(a["region"], a["quantity"], a["details"]["trigger"], a["details"]["flex_left"]) for a in transfers] == [
        ("US", 2, "US at 85% of its allocation", "8")]
    # The 19th crosses again (19/22 = 86 %): a second transfer, and only one.
    assert engine.lock("flex-18", [(sku, 1)], buyer="flex-buyer-18")["status"] == "LOCKED"
    view = engine.stock_when(sku, "19 locked", lambda v: v["locked"] == 19)
    assert regions_of(view)["US"] == (24, 19, 0, 0, 5) and view["flex"] == 6
    engine.feed.sync()
    transfers = engine.feed.alerts(sku, "FLEX_TRANSFER")
    assert [(a["quantity"], a["details"]["trigger"], a["details"]["flex_left"]) for a in transfers] == [
        (2, "US at 85% of its allocation", "8"), (2, "US at 86% of its allocation", "6")]
    assert len({a["alert_id"] for a in transfers}) == 2
    assert engine.feed.alerts(sku, "PURCHASE_LIMIT_TRIGGERED") == [] and engine.feed.alerts(sku, "REPLENISHMENT") == []


def test_fast_burst_triggers_a_purchase_limit(engine: Engine) -> None:
    sku = "AUTO-BURST"
    engine.set_stock(sku, 1000, {"US": 800, "EU": 0, "SEA": 0}, flex_pct=20)
    engine.stock_when(sku, "stock set", lambda v: v["total"] == 1000)
    # 40 buyers x 2 units within seconds: 80 units over the >= 50 s a young window counts is
    # >= 60 units/min, so the limit (2 per buyer) triggers during the burst, at about the 50th
    # unit. Each buyer takes exactly the limit, so every one of them still locks.
    for n in range(40):
        engine.client.place_order(f"burst-{n}", [(sku, 2)], buyer=f"burst-buyer-{n}", channel="tiktok-us")
    engine.client.flush()
    statuses = {engine.decided(f"burst-{n}")["status"] for n in range(40)}
    assert statuses == {"LOCKED"}
    view = engine.stock_when(sku, "the burst locked", lambda v: v["locked"] == 80)
    assert (view["buyer_limit"], view["limit_source"]) == (2, "auto")
    engine.feed.sync()
    triggered = engine.feed.alerts(sku, "PURCHASE_LIMIT_TRIGGERED")
    assert len(triggered) == 1, triggered
    assert (triggered[0]["quantity"], triggered[0]["details"]["source"]) == (2, "auto")
    assert float(triggered[0]["details"]["velocity_per_min"]) >= 60
    # Later orders over the limit are rejected, for new buyers and for buyers who already hold units
    # (on any channel); an order within the limit still locks.
    over_new = engine.lock("burst-late-1", [(sku, 3)], buyer="late-buyer")
    over_held = engine.lock("burst-late-2", [(sku, 1)], buyer="burst-buyer-0", channel="amazon-us")
    within = engine.lock("burst-late-3", [(sku, 2)], buyer="late-buyer")
    assert [(d["status"], d["reason"]) for d in (over_new, over_held, within)] == [
        ("REJECTED", "PURCHASE_LIMIT"), ("REJECTED", "PURCHASE_LIMIT"), ("LOCKED", None)]
    view = engine.stock_when(sku, "the late lock", lambda v: v["locked"] == 82)
    assert view["open_reservations"] == 41


def test_replenishment_alert_once_when_falling_under_30_percent(engine: Engine) -> None:
    sku = "AUTO-LOW"
    engine.set_stock(sku, 40, {"US": 40}, flex_pct=0)
    engine.stock_when(sku, "stock set", lambda v: v["total"] == 40)
    # 5 units at a time: 40 -> 35 ... 15 stays at or above 12 (30 %); the 6th order leaves 10.
    for n in range(5):
        engine.client.place_order(f"low-{n}", [(sku, 5)], buyer=f"low-buyer-{n}")
    engine.client.flush()
    assert {engine.decided(f"low-{n}")["status"] for n in range(5)} == {"LOCKED"}
    view = engine.stock_when(sku, "25 locked", lambda v: v["locked"] == 25)
    assert (view["available"], view["low_stock"]) == (15, False)
    engine.feed.sync()
    assert engine.feed.alerts(sku, "REPLENISHMENT") == []
    assert engine.lock("low-5", [(sku, 5)], buyer="low-buyer-5")["status"] == "LOCKED"
    alerts = engine.feed.until("a REPLENISHMENT alert", lambda: engine.feed.alerts(sku, "REPLENISHMENT"))
    # reorder_cover_s 0: the reorder brings it back to the threshold: 12 - 10 = 2.
    assert [(a["quantity"], a["details"]["available"], a["details"]["total"], a["details"]["in_transit"])
            for a in alerts] == [(2, "10", "40", "0")]
    # Still under the threshold: no second alert for the same crossing.
    assert engine.lock("low-6", [(sku, 5)], buyer="low-buyer-6")["status"] == "LOCKED"
    view = engine.stock_when(sku, "35 locked", lambda v: v["locked"] == 35)
    assert (view["available"], view["low_stock"]) == (5, True)
    engine.feed.sync()
    assert len(engine.feed.alerts(sku, "REPLENISHMENT")) == 1


# -- 5. the CLI against the worker ----------------------------------------------------------------

def run_cli(engine: Engine, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": engine.kafka.bootstrap,
           "LOCKSTOCK_TOPIC_PREFIX": engine.kafka.settings.topic_prefix, "LOCKSTOCK_CHANNELS_FILE": str(CATALOG_FILE)}
    env.pop("LOCKSTOCK_WORKER_URL", None)
    return subprocess.run([sys.executable, "-m", "lockstock", *args], env=env, capture_output=True, text=True,
                          timeout=60)


def test_cli_stock_set_and_show(engine: Engine) -> None:
    sku = "CLI-1"
    refused = run_cli(engine, "stock", "set", sku, "--total", "3000", "--regions", "US=1200,EU=1000,SEA=800",
                      "--flex-pct", "20")
    assert refused.returncode != 0
    assert "3600" in refused.stderr and "more than the 3000 units that exist" in refused.stderr, refused.stderr
    assert "Traceback" not in refused.stderr
    assert engine.worker.get_json(f"/stock/{sku}/")[0] == 404  # refused before anything was sent

    done = run_cli(engine, "stock", "set", sku, "--total", "3000", "--regions", "US=1200,EU=1000,SEA=800",
                   "--flex-pct", "20", "--proportional")
    assert done.returncode == 0, done.stderr
    rows = [line.split() for line in done.stdout.splitlines()]
    assert [["US", "960"], ["EU", "800"], ["SEA", "640"], ["flex", "600"]] == [r for r in rows if len(r) == 2 and r[0] != "REGION"]
    view = engine.stock_when(sku, "the CLI's split", lambda v: v["total"] == 3000)
    assert regions_of(view) == {"EU": (800, 0, 0, 0, 800), "SEA": (640, 0, 0, 0, 640), "US": (960, 0, 0, 0, 960)}
    assert view["flex"] == 600

    assert engine.lock("cli-o1", [(sku, 7)], channel="amazon-eu")["status"] == "LOCKED"
    view = engine.stock_when(sku, "cli-o1 locked", lambda v: v["locked"] == 7)
    shown = run_cli(engine, "stock", "show", sku, "--json", "--worker-url", engine.worker.url)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout) == view

    table = run_cli(engine, "stock", "show", sku, "--worker-url", engine.worker.url)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].startswith(f"{sku}: total 3000, available 2993, flex 600, locked 7, paid 0, shipped 0")
    assert lines[1].split() == ["REGION", "ALLOCATION", "LOCKED", "PAID", "SHIPPED", "FREE", "IN_TRANSIT"]
    assert [line.split() for line in lines[2:5]] == [
        ["EU", "800", "7", "0", "0", "793", "0"], ["SEA", "640", "0", "0", "0", "640", "0"],
        ["US", "960", "0", "0", "0", "960", "0"]]

    missing = run_cli(engine, "stock", "show", "CLI-NOPE", "--worker-url", engine.worker.url)
    assert missing.returncode != 0 and "unknown SKU 'CLI-NOPE'" in missing.stderr, missing.stderr
