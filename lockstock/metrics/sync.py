"""The marketplace sync's metrics: lag per channel (pending and achieved), push outcomes,
queues and dead letters. Everything but the achieved-lag histogram is read off the service's
lanes when scraped."""

from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from lockstock.clock import now_ms
from lockstock.deadletter import SYNC_FAILED
from lockstock.metrics import aiohttp_handler, code_label

LAG_BUCKETS_S = (0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900, 3600)
# Lane.counts keys that are outcomes of a push; "calls" counts requests, "dead_lettered" letters.
PUSH_OUTCOMES = ("accepted", "compare_refused", "retries", "throttled", "failed")


def pending_age_s(changed_at_ms: Iterable[int], now: int) -> float:
    """Age of the oldest stock change still waiting for a push (0 when none waits)."""
    oldest = min(changed_at_ms, default=None)
    return 0.0 if oldest is None else max(0, now - oldest) / 1000


class SyncCollector(Collector):
    def __init__(self, service: Any, clock: Callable[[], int]) -> None:
        self.service, self.clock = service, clock

    def collect(self):
        service, now = self.service, self.clock()
        lanes: Mapping[str, Any] = service.lanes
        pending = GaugeMetricFamily(
            "lockstock_sync_pending_age_seconds",
            "Sync lag per channel, the figure to alarm on: age of the oldest stock change queued for the "
            "channel and not yet accepted by the platform (from the change reaching Kafka; 0 when nothing "
            "waits). It keeps growing while a channel is throttled, failing or stuck, when no push succeeds.",
            labels=["channel"])
        queued = GaugeMetricFamily("lockstock_sync_queued_pushes", "Listings (SKUs) waiting for a push, per channel.",
                                   labels=["channel"])
        calls = CounterMetricFamily("lockstock_sync_calls", "API requests sent to the platform, per channel.",
                                    labels=["channel"])
        pushes = CounterMetricFamily("lockstock_sync_pushes", "Push outcomes per channel: accepted, compare_refused "
                                     "(the listing showed another quantity), retries, throttled (429), failed "
                                     "(given up: dead-lettered).", labels=["channel", "outcome"])
        dead = 0
        for name, lane in sorted(lanes.items()):
            pending.add_metric([name], pending_age_s((at for _, at in lane.queue.values()), now))
            queued.add_metric([name], len(lane.queue))
            calls.add_metric([name], lane.counts.get("calls", 0))
            for outcome in PUSH_OUTCOMES:
                pushes.add_metric([name, code_label(outcome)], lane.counts.get(outcome, 0))
            dead += lane.counts.get("dead_lettered", 0)
        letters = CounterMetricFamily("lockstock_dead_letters", "Records dead-lettered by this process, by "
                                      "DeadLetter.error_type (lockstock/deadletter.py).", labels=["reason"])
        letters.add_metric([SYNC_FAILED], dead)
        caught_up = GaugeMetricFamily("lockstock_sync_caught_up", "1 once the compacted channel stock topic is "
                                      "read through (pushes start then), else 0.")
        caught_up.add_metric([], 1 if service.caught_up else 0)
        yield from (pending, queued, calls, pushes, letters, caught_up)


class SyncMetrics:
    def __init__(self, service: Any, clock: Callable[[], int] = now_ms) -> None:
        self.registry = registry = CollectorRegistry()
        self.lag = Histogram("lockstock_sync_lag_seconds", "Achieved sync lag per channel: from a stock change "
                             "reaching Kafka (record timestamp) to the platform accepting its push.", ["channel"],
                             buckets=LAG_BUCKETS_S, registry=registry)
        registry.register(SyncCollector(service, clock))
        self.handler = aiohttp_handler(registry)

    def accepted(self, channel: str, lag_ms: int) -> None:
        self.lag.labels(channel).observe(lag_ms / 1000)
