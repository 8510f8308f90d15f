"""The worker's metrics as plain functions over plain values, and what the registry then shows."""

from __future__ import annotations

import asyncio
from collections import namedtuple
from types import SimpleNamespace

from lockstock.metrics.worker import (
    CLOCK_SKEW_MS, MeteredProducer, WorkerMetrics, changelog_size, consumer_lag, decision_latency_ms, tally_batch,
)
from tests.builders import order_decision
from tests.unit.metrics.helpers import value


def decision(status: str, reason: str | None = None, placed_at: int | None = 1_000, decided_at: int = 1_250):
    return SimpleNamespace(record="OrderDecision", value=order_decision(
        "o", status, reason=reason, placed_at=placed_at, decided_at=decided_at))


def other(record: str = "LineLockRequests"):
    return SimpleNamespace(record=record, value={"status": "LOCKED", "placed_at": 1, "decided_at": 2})


def test_decisions_are_counted_by_status_and_reason_and_nothing_else_is():
    tally = tally_batch([decision("LOCKED"), decision("LOCKED"), decision("REJECTED", "OUT_OF_STOCK"),
                         decision("RELEASED", "EXPIRED"), other(), other("InventoryAlert")], [])
    assert dict(tally.decisions) == {("LOCKED", "none"): 2, ("REJECTED", "OUT_OF_STOCK"): 1,
                                     ("RELEASED", "EXPIRED"): 1}


def test_latency_is_measured_on_answers_with_a_placed_at_only():
    tally = tally_batch([decision("LOCKED", placed_at=1_000, decided_at=1_250),
                         decision("REJECTED", "OUT_OF_STOCK", placed_at=2_000, decided_at=4_000),
                         decision("LOCKED", placed_at=None),
                         decision("RELEASED", "EXPIRED", placed_at=1_000, decided_at=900_000)], [])
    assert tally.latencies_s == [("LOCKED", 0.25), ("REJECTED", 2.0)]


def test_a_little_clock_skew_counts_as_instant_and_a_wrong_clock_is_left_out():
    assert decision_latency_ms(decision("LOCKED", placed_at=1_500, decided_at=1_000).value) == 0
    assert decision_latency_ms(decision("LOCKED", placed_at=CLOCK_SKEW_MS + 10_000, decided_at=1_000).value) is None
    assert decision_latency_ms(decision("LOCKED", placed_at=1, decided_at=2 * 24 * 3600 * 1000).value) is None
    assert decision_latency_ms(decision("LOCKED", placed_at=0).value) is None


def test_dead_letters_are_counted_by_error_type_and_free_text_never_becomes_a_label():
    problems = [SimpleNamespace(reason="C3 01 missing", error_type="UNDECODABLE"),
                SimpleNamespace(reason="x", error_type="UNDECODABLE"),
                SimpleNamespace(reason="y", error_type="WRONG_RECORD"),
                SimpleNamespace(reason="z", error_type="order 123 exploded at line 4")]
    assert dict(tally_batch([], problems).dead) == {"UNDECODABLE": 2, "WRONG_RECORD": 1, "OTHER": 1}


def test_changelog_size_counts_key_and_value_bytes_of_changelog_records_only():
    records = [("app-stock-changelog", b"k1", b"12345", 0), ("app-stock-changelog", b"k2", None, 1),
               ("app-orders-changelog", b"o", b"xy", 2), ("t.orders.decisions", b"o", b"ignored", None)]
    assert changelog_size(records, frozenset({"app-stock-changelog", "app-orders-changelog"})) == {
        "app-stock-changelog": (2, 9), "app-orders-changelog": (1, 3)}


tp = namedtuple("tp", "topic partition")  # as Faust's TP


class FakeConsumer:
    """What consumer_lag reads of Faust's consumer."""

    def __init__(self, highwaters, committed, read) -> None:
        self.highwaters, self._committed_offset, self._read_offset = highwaters, committed, read

    def assignment(self):
        return set(self.highwaters)

    def highwater(self, partition):
        found = self.highwaters[partition]
        if isinstance(found, Exception):
            raise found
        return found


def test_consumer_lag_is_highwater_minus_committed_with_the_read_offset_before_a_commit():
    placed = [tp("orders.placed", p) for p in range(5)]
    changelog = tp("app-stock-changelog", 0)
    consumer = FakeConsumer(
        {placed[0]: 10, placed[1]: 7, placed[2]: None, placed[3]: AssertionError("not assigned"), placed[4]: 4,
         changelog: 99},
        committed={placed[0]: 6, placed[1]: None}, read={placed[1]: 4})
    lags = sorted(consumer_lag(consumer, frozenset({"orders.placed"})))
    assert lags == [("orders.placed", 0, 4), ("orders.placed", 1, 2), ("orders.placed", 4, 4)]


def test_a_batch_shows_in_the_registry():
    metrics = WorkerMetrics()
    metrics.count_batch("stock", 3, [decision("LOCKED"), decision("REJECTED", "UNKNOWN_SKU")],
                        [SimpleNamespace(error_type="INVALID_COMMAND")])
    metrics.count_batch("stock", 1, [decision("LOCKED", placed_at=None)], [])
    r = metrics.registry
    assert value(r, "lockstock_decisions_total", status="LOCKED", reason="none") == 2
    assert value(r, "lockstock_decisions_total", status="REJECTED", reason="UNKNOWN_SKU") == 1
    assert value(r, "lockstock_decision_latency_seconds_count", status="LOCKED") == 1
    assert value(r, "lockstock_decision_latency_seconds_count", status="REJECTED") == 1
    assert value(r, "lockstock_dead_letters_total", reason="INVALID_COMMAND") == 1
    assert value(r, "lockstock_batch_events_count", table="stock") == 2
    assert value(r, "lockstock_batch_events_sum", table="stock") == 4


def test_the_metered_producer_counts_changelog_bytes_once_acknowledged():
    sent = []

    class Producer:
        async def send_all(self, records):
            sent.append(len(records))
            return [(0, i) for i in range(len(records))]

    metrics = WorkerMetrics()
    producer = MeteredProducer(Producer(), metrics, ["app-stock-changelog"])
    positions = asyncio.run(producer.send_all([("app-stock-changelog", b"ab", b"cde", 0), ("out", b"k", b"v", None)]))
    assert positions == [(0, 0), (0, 1)] and sent == [2]
    assert value(metrics.registry, "lockstock_changelog_bytes_total", topic="app-stock-changelog") == 5
    assert value(metrics.registry, "lockstock_changelog_records_total", topic="app-stock-changelog") == 1
    assert value(metrics.registry, "lockstock_changelog_bytes_total", topic="out") is None


def test_the_metered_producer_counts_nothing_the_broker_refused():
    class Refusing:
        async def send_all(self, records):
            raise RuntimeError("refused")

    metrics = WorkerMetrics()
    producer = MeteredProducer(Refusing(), metrics, ["cl"])
    try:
        asyncio.run(producer.send_all([("cl", b"k", b"v", 0)]))
    except RuntimeError:
        pass
    else:
        raise AssertionError("the refusal must reach the caller")
    assert value(metrics.registry, "lockstock_changelog_bytes_total", topic="cl") is None


def test_lag_is_collected_when_scraped_and_a_consumer_that_is_not_there_yields_no_samples():
    metrics = WorkerMetrics()
    current = {"consumer": FakeConsumer({tp("orders.placed", 2): 5}, {tp("orders.placed", 2): 5}, {})}
    metrics.watch_consumer(lambda: current["consumer"], lambda: frozenset({"orders.placed"}))
    assert value(metrics.registry, "lockstock_consumer_lag_records", topic="orders.placed", partition="2") == 0
    current["consumer"].highwaters[tp("orders.placed", 2)] = 8
    assert value(metrics.registry, "lockstock_consumer_lag_records", topic="orders.placed", partition="2") == 3
    current["consumer"] = None  # assignment() fails: the scrape still answers
    assert value(metrics.registry, "lockstock_consumer_lag_records", topic="orders.placed", partition="2") is None
