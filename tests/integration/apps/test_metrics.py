"""/metrics of the worker, the gateway and the sync, scraped during a run on the session broker:
the figures move, and agree with what was decided, answered and pushed."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.request
from collections import Counter
from typing import Any, Callable

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from apps.client import LockstockClient
from apps.supervise import WorkerPool
from connectors.config import stock_pushers
from connectors.fakes.generic import FakeGenericSite
from connectors.sync.service import SyncOptions, SyncService
from lockstock.broker.embedded import free_port
from lockstock.catalog import load_catalog
from lockstock.kafka import Kafka
from tests.integration.connectors.test_gateway import SECRET, RunningGateway, created, signed

pytestmark = pytest.mark.integration

Samples = dict[str, list[tuple[dict[str, str], float]]]


def scrape(url: str) -> Samples:
    """sample name -> [(labels, value)], parsed as Prometheus parses the text format."""
    with urllib.request.urlopen(url, timeout=5) as response:
        assert response.headers["Content-Type"].startswith("text/plain")
        text = response.read().decode()
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((sample.labels, sample.value))
    return found


def total(samples: Samples, name: str, **labels: str) -> float:
    return sum(v for found, v in samples.get(name, []) if all(found.get(k) == want for k, want in labels.items()))


def by(samples: Samples, name: str, *keys: str) -> dict[tuple[str, ...], float]:
    return {tuple(found[k] for k in keys): v for found, v in samples.get(name, []) if v}


def scrape_until(url: str, done: Callable[[Samples], bool], timeout: float) -> Samples:
    """Scrape until ``done`` holds or the deadline passes; the last scrape either way."""
    deadline = time.monotonic() + timeout
    samples = scrape(url)
    while not done(samples) and time.monotonic() < deadline:
        time.sleep(0.2)
        samples = scrape(url)
    return samples


def test_worker_metrics_agree_with_the_decisions(kafka, workers):
    worker = workers.start()
    worker.wait_ready()
    url = worker.url + "/metrics"
    before = scrape(url)
    assert total(before, "lockstock_decisions_total") == 0

    client = LockstockClient(kafka)
    client.set_stock("SKU-M", 3, {"US": 3}, flex_pct=0)
    client.flush()
    orders = {f"m-{i}": [("SKU-M", 1)] for i in range(6)}  # three lock, three find no stock
    orders["m-unknown"] = [("SKU-NEVER", 1)]
    orders["m-zero"] = [("SKU-M", 0)]
    for order_id, lines in orders.items():
        client.place_order(order_id, lines)
    client.send_raw(kafka.topics.orders_placed, "junk-m", b"not avro")
    client.flush()
    decided = [d for ds in client.decisions(set(orders)).values() for d in ds]
    statuses = Counter((d["status"], d["reason"] or "none") for d in decided)
    assert statuses[("LOCKED", "none")] == 3 and statuses[("REJECTED", "OUT_OF_STOCK")] == 3, statuses
    timed = sum(1 for d in decided if d["placed_at"])

    placed = kafka.topics.orders_placed

    def settled(samples: Samples) -> bool:
        lags = by(samples, "lockstock_consumer_lag_records", "topic", "partition")
        return (by(samples, "lockstock_decisions_total", "status", "reason") == dict(statuses)
                and total(samples, "lockstock_dead_letters_total", reason="UNDECODABLE") >= 1
                and not any(topic == placed for topic, _ in lags))

    after = scrape_until(url, settled, timeout=30)
    # Decisions counted are the decisions read, status by status, reason by reason.
    assert by(after, "lockstock_decisions_total", "status", "reason") == dict(statuses)
    assert total(after, "lockstock_decision_latency_seconds_count") == timed == len(decided)
    assert 0 < total(after, "lockstock_decision_latency_seconds_sum") < 60 * timed
    assert total(after, "lockstock_dead_letters_total", reason="UNDECODABLE") == 1
    assert total(after, "lockstock_batch_events_count") > 0 and total(after, "lockstock_batch_events_sum") > 0
    changelog_bytes = by(after, "lockstock_changelog_bytes_total", "topic")
    assert {topic.rsplit("-", 2)[-2] for (topic,) in changelog_bytes} == {"stock", "orders"}, changelog_bytes
    assert all(v > 0 for v in changelog_bytes.values())
    # One gauge per partition of orders.placed (one worker owns them all), drained to 0.
    lags = {labels["partition"]: v for labels, v in after.get("lockstock_consumer_lag_records", [])
            if labels["topic"] == placed}
    assert lags == {str(p): 0 for p in range(kafka.settings.partitions)}, after.get("lockstock_consumer_lag_records")


def test_gateway_answers_are_counted_by_platform_and_status(kafka):
    with RunningGateway(kafka, {"LOCKSTOCK_GENERIC_SECRET": SECRET}) as gateway:
        url = gateway.url + "/metrics"
        assert total(scrape(url), "lockstock_gateway_answers_total") == 0
        answers: Counter = Counter()

        def post(platform: str, body: bytes, headers: dict[str, str]) -> None:
            status, _ = gateway.post(platform, body, headers)
            answers[("unknown" if platform == "myspace" else platform, str(status))] += 1

        for n in range(3):
            body = json.dumps(created(f"e-m{n}", f"9000{n}")).encode()
            post("generic", body, signed(body))
        post("generic", body, signed(body))  # a duplicate
        post("generic", body, signed(body, "wrong"))
        post("generic", b'{"type": "order.created"}', signed(b'{"type": "order.created"}'))  # malformed
        post("shopify", body, {})  # no secret configured
        post("myspace", body, {})
        samples = scrape(url)

    assert answers[("generic", "200")] == 4 and answers[("generic", "400")] == 1, answers
    assert by(samples, "lockstock_gateway_answers_total", "platform", "code") == dict(answers)
    outcomes = by(samples, "lockstock_gateway_deliveries_total", "platform", "outcome")
    assert outcomes[("generic", "accepted")] == 3 and outcomes[("generic", "duplicate")] == 1, outcomes
    assert outcomes[("generic", "bad_signature")] == 1 and outcomes[("generic", "malformed")] == 1
    assert total(samples, "lockstock_dead_letters_total", reason="UNDECODABLE") == 1
    assert total(samples, "lockstock_gateway_ack_seconds_count") == 3


class RunningSync:
    """The sync served on its own event-loop thread, /metrics on a free port."""

    def __init__(self, kafka: Kafka, env: dict[str, str]) -> None:
        catalog = kafka.settings.catalog()
        self.service = SyncService(kafka, catalog, stock_pushers(catalog, env), SyncOptions(settle_ms=0))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.stop_event: asyncio.Event | None = None

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.stop_event = asyncio.Event()
        self.loop.run_until_complete(self.service.run(self.stop_event, port=self.port))

    def __enter__(self) -> "RunningSync":
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.stop_event is not None:
            self.loop.call_soon_threadsafe(self.stop_event.set)
        self.thread.join(30)


def test_sync_lag_and_pushes_per_channel(kafka, tmp_path):
    site = FakeGenericSite(secret=SECRET, rate_capacity=50, rate_per_s=50).start()
    try:
        data = load_catalog().to_dict()
        data["channels"]["site-us"] = {"platform": "generic", "region": "US"}
        data["connectors"] = {"generic": {"base_url": site.url}}
        path = tmp_path / "channels.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        settings = kafka.settings.with_(channels_file=path)
        pool = WorkerPool(settings, tmp_path / "logs")
        try:
            worker = pool.start()
            worker.wait_ready()
            with RunningSync(Kafka.connect(settings), {"LOCKSTOCK_GENERIC_SECRET": SECRET}) as sync:
                url = sync.url + "/metrics"
                client = LockstockClient(kafka)
                for sku in ("SKU-S1", "SKU-S2"):
                    client.set_stock(sku, 40, {"US": 40}, flex_pct=0)
                client.flush()

                def pushed(samples: Samples) -> bool:
                    return (total(samples, "lockstock_sync_pushes_total", channel="site-us", outcome="accepted") >= 2
                            and total(samples, "lockstock_sync_pending_age_seconds", channel="site-us") == 0
                            and total(samples, "lockstock_sync_queued_pushes", channel="site-us") == 0)

                samples = scrape_until_up(url, pushed, timeout=60)
        finally:
            pool.stop_all()
    finally:
        site.stop()

    accepted = total(samples, "lockstock_sync_pushes_total", channel="site-us", outcome="accepted")
    assert accepted >= 2, samples.get("lockstock_sync_pushes_total")
    assert {sku for (_, sku) in site.quantity} >= {"SKU-S1", "SKU-S2"}, site.quantity
    assert total(samples, "lockstock_sync_lag_seconds_count", channel="site-us") == accepted
    assert total(samples, "lockstock_sync_calls_total", channel="site-us") >= 1
    assert total(samples, "lockstock_sync_pending_age_seconds", channel="site-us") == 0
    assert total(samples, "lockstock_sync_caught_up") == 1
    assert total(samples, "lockstock_dead_letters_total", reason="SYNC_FAILED") == 0


def scrape_until_up(url: str, done: Callable[[Samples], bool], timeout: float) -> Samples:
    """scrape_until, for a server that may not listen yet."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return scrape_until(url, done, max(0.0, deadline - time.monotonic()))
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
