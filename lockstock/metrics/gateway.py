"""The webhook gateway's metrics: every HTTP answer by platform and status code, every delivery
outcome (HTTP or Amazon's queue) by platform, broker acknowledgement time, dead letters."""

from __future__ import annotations

from typing import Any, Callable, Container, Mapping

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from lockstock.metrics import aiohttp_handler, code_label, dead_letters_counter

UNKNOWN_PLATFORM = "unknown"  # the platform comes from the URL: anyone can invent one
QUEUE_PLATFORMS = frozenset({"amazon"})  # delivered through a queue, so no webhook adapter names them
ACK_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


def platform_label(platform: str, known: Container[str]) -> str:
    return platform if platform in known else UNKNOWN_PLATFORM


def outcome_counts(counts: Mapping[tuple[str, str], int], known: Container[str]) -> dict[tuple[str, str], int]:
    """(platform label, outcome label) -> n, unknown platforms folded together."""
    folded: dict[tuple[str, str], int] = {}
    for (platform, outcome), n in counts.items():
        key = (platform_label(platform, known), code_label(outcome))
        folded[key] = folded.get(key, 0) + n
    return folded


class OutcomeCollector(Collector):
    """The gateway's own outcome counters (GatewayStats), read when scraped."""

    def __init__(self, counts: Callable[[], Mapping[tuple[str, str], int]], known: Container[str]) -> None:
        self.counts, self.known = counts, known

    def collect(self):
        family = CounterMetricFamily(
            "lockstock_gateway_deliveries", "Deliveries (webhooks and queue notifications) by platform and outcome: "
            "accepted, duplicate, ignored, malformed, bad_signature, not_configured, unknown_platform, broker_error "
            "(a malformed delivery whose dead letter could not be written counts as both).",
            labels=["platform", "outcome"])
        for (platform, outcome), n in sorted(outcome_counts(dict(self.counts()), self.known).items()):
            family.add_metric([platform, outcome], n)
        yield family


class GatewayMetrics:
    def __init__(self, known_platforms: Container[str], outcomes: Callable[[], Mapping[tuple[str, str], int]]) -> None:
        self.registry = registry = CollectorRegistry()
        self.known = known_platforms
        self.answers = Counter("lockstock_gateway_answers", "HTTP answers to webhooks by platform and status code "
                               "(200 accepted/duplicate/ignored, 400 malformed, 401 bad signature, 404 unknown "
                               "platform, 503 not configured or broker unavailable).", ["platform", "code"],
                               registry=registry)
        self.ack = Histogram("lockstock_gateway_ack_seconds", "From producing an accepted delivery's records to "
                             "the broker's acknowledgement of all of them.", buckets=ACK_BUCKETS_S, registry=registry)
        self.dead_letters = dead_letters_counter(registry)
        registry.register(OutcomeCollector(outcomes, known_platforms))
        self.handler = aiohttp_handler(registry)

    def answered(self, platform: str, status: int) -> None:
        self.answers.labels(platform_label(platform, self.known), str(status)).inc()

    def dead_lettered(self, error_type: str) -> None:
        self.dead_letters.labels(code_label(error_type)).inc()

    def acknowledged(self, seconds: float) -> None:
        self.ack.observe(seconds)

    @staticmethod
    def for_gateway(gateway: Any) -> "GatewayMetrics":
        return GatewayMetrics(frozenset(gateway.adapters) | QUEUE_PLATFORMS, lambda: gateway.stats.counts)
