"""The gateway's and the sync's metrics over plain values: labels stay few, scrape-time figures
follow the live counters, /metrics answers in Prometheus' text format."""

from __future__ import annotations

import asyncio
from collections import Counter
from types import SimpleNamespace

from prometheus_client import CONTENT_TYPE_LATEST

from lockstock.metrics.gateway import GatewayMetrics, outcome_counts
from lockstock.metrics.sync import SyncMetrics, pending_age_s
from tests.unit.metrics.helpers import value


def test_platforms_nobody_configured_are_folded_into_one_label():
    counts = {("generic", "accepted"): 3, ("myspace", "unknown_platform"): 1, ("friendster", "unknown_platform"): 2}
    assert outcome_counts(counts, {"generic", "shopify"}) == {("generic", "accepted"): 3,
                                                                ("unknown", "unknown_platform"): 3}


def test_gateway_answers_and_outcomes_show_in_the_registry():
    stats = Counter({("generic", "accepted"): 2, ("generic", "bad_signature"): 1})
    metrics = GatewayMetrics({"generic", "shopify"}, lambda: stats)
    for platform, status in [("generic", 200), ("generic", 200), ("generic", 401), ("made-up", 404)]:
        metrics.answered(platform, status)
    metrics.dead_lettered("UNDECODABLE")
    metrics.acknowledged(0.004)
    r = metrics.registry
    assert value(r, "lockstock_gateway_answers_total", platform="generic", code="200") == 2
    assert value(r, "lockstock_gateway_answers_total", platform="unknown", code="404") == 1
    assert value(r, "lockstock_gateway_deliveries_total", platform="generic", outcome="bad_signature") == 1
    stats[("generic", "accepted")] += 1  # read again at the next scrape
    assert value(r, "lockstock_gateway_deliveries_total", platform="generic", outcome="accepted") == 3
    assert value(r, "lockstock_dead_letters_total", reason="UNDECODABLE") == 1
    assert value(r, "lockstock_gateway_ack_seconds_count") == 1


def test_metrics_are_served_in_the_prometheus_text_format():
    metrics = GatewayMetrics({"generic"}, dict)
    metrics.answered("generic", 200)
    response = asyncio.run(metrics.handler(None))
    assert response.headers["Content-Type"] == CONTENT_TYPE_LATEST
    assert b'lockstock_gateway_answers_total{code="200",platform="generic"} 1.0' in response.body


def test_pending_age_is_that_of_the_oldest_waiting_change():
    assert pending_age_s([5_000, 2_000, 9_000], now=10_000) == 8.0
    assert pending_age_s([], now=10_000) == 0.0
    assert pending_age_s([10_500], now=10_000) == 0.0  # a change stamped by a clock slightly ahead


def lane(queue_changed_at: list[int], **counts: int) -> SimpleNamespace:
    return SimpleNamespace(queue={f"SKU-{i}": (object(), at) for i, at in enumerate(queue_changed_at)},
                           counts=Counter(counts))


def test_sync_figures_are_read_off_the_lanes_when_scraped():
    now = 1_700_000_000_000
    service = SimpleNamespace(caught_up=True, lanes={
        "tiktok-us": lane([now - 30_000, now - 1_000], calls=7, accepted=5, throttled=1, failed=1, dead_lettered=1),
        "shopee-my": lane([]),
    })
    metrics = SyncMetrics(service, clock=lambda: now)
    metrics.accepted("tiktok-us", 1_500)
    r = metrics.registry
    assert value(r, "lockstock_sync_pending_age_seconds", channel="tiktok-us") == 30
    assert value(r, "lockstock_sync_pending_age_seconds", channel="shopee-my") == 0
    assert value(r, "lockstock_sync_queued_pushes", channel="tiktok-us") == 2
    assert value(r, "lockstock_sync_calls_total", channel="tiktok-us") == 7
    assert value(r, "lockstock_sync_pushes_total", channel="tiktok-us", outcome="accepted") == 5
    assert value(r, "lockstock_sync_pushes_total", channel="shopee-my", outcome="accepted") == 0
    assert value(r, "lockstock_dead_letters_total", reason="SYNC_FAILED") == 1
    assert value(r, "lockstock_sync_caught_up") == 1
    assert value(r, "lockstock_sync_lag_seconds_count", channel="tiktok-us") == 1
    assert value(r, "lockstock_sync_lag_seconds_sum", channel="tiktok-us") == 1.5
    service.lanes["tiktok-us"].queue.clear()
    assert value(r, "lockstock_sync_pending_age_seconds", channel="tiktok-us") == 0
