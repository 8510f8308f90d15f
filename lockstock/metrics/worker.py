"""The stream worker's metrics: decisions, order->decision latency, dead letters, batch sizes,
changelog bytes (counted per batch by the agents) and consumer lag (read when scraped)."""

from __future__ import annotations

from collections import Counter as Tally
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from lockstock.metrics import code_label, dead_letters_counter

DECISION_RECORD = "OrderDecision"
# RELEASED comes when a lock expires or an order is cancelled, long after the order was placed:
# only the first answer (LOCKED or REJECTED) measures how fast an order is decided.
ANSWERS = frozenset({"LOCKED", "REJECTED"})
# Marketplace clocks (placed_at) and the worker's (decided_at) differ a little: a small negative
# latency is a fast decision (counted as 0); a larger one, or over a day, is a wrong clock.
CLOCK_SKEW_MS = 60_000
LATEST_SANE_MS = 24 * 3600 * 1000
LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)


@dataclass
class BatchTally:
    """What one batch adds to the counters, as plain values."""

    decisions: Tally = field(default_factory=Tally)  # (status, reason label) -> n
    latencies_s: list[tuple[str, float]] = field(default_factory=list)  # (status, seconds)
    dead: Tally = field(default_factory=Tally)  # error_type label -> n


def decision_latency_ms(decision: dict[str, Any]) -> int | None:
    """decided_at - placed_at of an answer, if placed_at is set and the difference is sane."""
    placed, decided = decision.get("placed_at"), decision.get("decided_at")
    if decision.get("status") not in ANSWERS or not placed or decided is None:
        return None
    latency = decided - placed
    if latency < -CLOCK_SKEW_MS or latency > LATEST_SANE_MS:
        return None
    return max(0, latency)


def tally_batch(outputs: Iterable[Any], problems: Iterable[Any]) -> BatchTally:
    """Decisions among ``outputs`` (objects with ``.record`` and ``.value``) and dead letters
    among ``problems`` (objects with ``.error_type``)."""
    tally = BatchTally()
    for output in outputs:
        if output.record != DECISION_RECORD:
            continue
        value = output.value
        status = code_label(value.get("status"))
        tally.decisions[(status, code_label(value.get("reason")))] += 1
        latency = decision_latency_ms(value)
        if latency is not None:
            tally.latencies_s.append((status, latency / 1000))
    for problem in problems:
        tally.dead[code_label(problem.error_type)] += 1
    return tally


def changelog_size(records: Iterable[tuple[str, bytes | None, bytes | None, Any]], topics: frozenset[str]) -> dict[str, tuple[int, int]]:
    """topic -> (records, key+value bytes) of the records bound for one of ``topics``."""
    sizes: dict[str, tuple[int, int]] = {}
    for topic, key, value, _ in records:
        if topic in topics:
            count, size = sizes.get(topic, (0, 0))
            sizes[topic] = (count + 1, size + len(key or b"") + len(value or b""))
    return sizes


def consumer_lag(consumer: Any, topics: frozenset[str]) -> list[tuple[str, int, int]]:
    """(topic, partition, lag) for each assigned partition of ``topics`` whose high watermark is
    known: the records past the committed offset (Faust's ``_committed_offset`` holds the next
    offset to read, as Kafka's commit does). Before the first commit the read offset stands in;
    before any read, the log start is taken as 0."""
    lags = []
    for tp in consumer.assignment():
        if tp.topic not in topics:
            continue  # changelog partitions are the table manager's, not a measure of work to do
        try:
            highwater = consumer.highwater(tp)
        except Exception:  # not (or no longer) assigned in the client: nothing to say
            continue
        if highwater is None:
            continue
        committed = consumer._committed_offset.get(tp)
        if committed is None:
            read = consumer._read_offset.get(tp)
            committed = read + 1 if read is not None else 0
        lags.append((tp.topic, tp.partition, max(0, highwater - committed)))
    return lags


class ConsumerLagCollector(Collector):
    """Consumer lag per partition, computed at scrape time from the worker's consumer."""

    def __init__(self, consumer: Callable[[], Any], topics: Callable[[], frozenset[str]]) -> None:
        self.consumer, self.topics = consumer, topics

    def collect(self):
        family = GaugeMetricFamily(
            "lockstock_consumer_lag_records",
            "Records in a partition this worker consumes that are not committed yet (high watermark "
            "minus committed offset); only partitions assigned to this worker.", labels=["topic", "partition"])
        try:
            lags = consumer_lag(self.consumer(), self.topics())
        except Exception:  # the consumer is not started, or is being rebuilt: no samples this scrape
            lags = []
        for topic, partition, lag in lags:
            family.add_metric([topic, str(partition)], lag)
        yield family


class WorkerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry = registry or CollectorRegistry()
        self.decisions = Counter("lockstock_decisions", "OrderDecision records sent, by status and reason "
                                 "(a replayed batch repeats its decisions).", ["status", "reason"], registry=registry)
        self.latency = Histogram("lockstock_decision_latency_seconds", "Order placed (placed_at) to decided "
                                 "(decided_at), LOCKED and REJECTED answers with a placed_at.", ["status"],
                                 buckets=LATENCY_BUCKETS_S, registry=registry)
        self.dead_letters = dead_letters_counter(registry)
        self.batch_events = Histogram("lockstock_batch_events", "Input events per agent batch, by table.",
                                      ["table"], buckets=BATCH_BUCKETS, registry=registry)
        self.changelog_records = Counter("lockstock_changelog_records", "Records written to a table's changelog "
                                         "(acknowledged).", ["topic"], registry=registry)
        self.changelog_bytes = Counter("lockstock_changelog_bytes", "Key plus value bytes written to a table's "
                                       "changelog (acknowledged; before compression).", ["topic"], registry=registry)

    @classmethod
    def of(cls, app: Any) -> "WorkerMetrics":
        """The app's metrics, made on first use (the agents count, the views serve)."""
        metrics = getattr(app, "lockstock_metrics", None)
        if metrics is None:
            metrics = app.lockstock_metrics = cls()
        return metrics

    def count_batch(self, table: str, events: int, outputs: Iterable[Any], problems: Iterable[Any]) -> None:
        self.batch_events.labels(table).observe(events)
        tally = tally_batch(outputs, problems)
        for (status, reason), n in tally.decisions.items():
            self.decisions.labels(status, reason).inc(n)
        for status, seconds in tally.latencies_s:
            self.latency.labels(status).observe(seconds)
        for reason, n in tally.dead.items():
            self.dead_letters.labels(reason).inc(n)

    def count_changelog(self, records: list, topics: frozenset[str]) -> None:
        for topic, (count, size) in changelog_size(records, topics).items():
            self.changelog_records.labels(topic).inc(count)
            self.changelog_bytes.labels(topic).inc(size)

    def watch_consumer(self, consumer: Callable[[], Any], topics: Callable[[], frozenset[str]]) -> None:
        self.registry.register(ConsumerLagCollector(consumer, topics))


class MeteredProducer:
    """The agents' producer, counting what it writes to the changelogs once acknowledged (the
    commit protocol of streams/transaction.py sends them through it)."""

    def __init__(self, producer: Any, metrics: WorkerMetrics, changelogs: Iterable[str]) -> None:
        self.producer, self.metrics, self.changelogs = producer, metrics, frozenset(changelogs)

    async def send_all(self, records: list) -> list:
        positions = await self.producer.send_all(records)
        self.metrics.count_changelog(records, self.changelogs)
        return positions

    def __getattr__(self, name: str) -> Any:
        return getattr(self.producer, name)
