"""Four marketplaces selling one stock pool at once, end to end on the real broker.

Started here: the lock engine (worker), `lockstock gateway` and `lockstock sync` as child
processes, and local fakes of Shopify (with YouTube sales through the store), TikTok Shop,
Shopee and Amazon (orders via its SQS queue). Every order starts on a fake: the fake sells only
what its listing shows, counts it down itself, and delivers its signed webhook (or queue
message); the sync keeps pushing leases while those sales happen, so pushes and sales race the
way they do in a live stream.

Afterwards: what all fakes sold together never exceeds the stock (per SKU); every sale reached
Kafka and got exactly one decision; no fake ever answered 429 (or refused a signature or a
payload); and the sync's p99 lag is reported.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from apps.client import LockstockClient
from apps.supervise import ServiceProcess, WorkerPool
from apps.watch import TopicWatcher
from connectors.config import stock_pushers
from connectors.fakes.amazon import FakeAmazon
from connectors.fakes.shopee import FakeShopee
from connectors.fakes.shopify import FakeShopify
from connectors.fakes.tiktok import FakeTikTok
from lockstock.broker.embedded import free_port
from lockstock.catalog import load_catalog

pytestmark = [pytest.mark.integration, pytest.mark.both_brokers]

STOCK = {"TEE": 240, "CAP": 160}
SELL_FOR_S = 40.0  # bounded: selling stops earlier once every listing has shown 0 for a while
SECRETS = {
    "LOCKSTOCK_SHOPIFY_SECRET": "shopify-app-secret", "LOCKSTOCK_SHOPIFY_ACCESS_TOKEN": "shpat_test",
    "LOCKSTOCK_TIKTOK_SECRET": "tiktok-app-secret", "LOCKSTOCK_TIKTOK_ACCESS_TOKEN": "tts-token",
    "LOCKSTOCK_SHOPEE_PARTNER_KEY": "shopee-partner-key", "LOCKSTOCK_SHOPEE_ACCESS_TOKEN": "shopee-token",
    "LOCKSTOCK_AMAZON_ACCESS_TOKEN": "Atza|lwa-token",
    "LOCKSTOCK_AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "LOCKSTOCK_AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
}


def channels_file(path: Path, urls: dict[str, Any], gateway_url: str) -> Path:
    data = {
        "regions": {"US": {"weight": 3, "warehouses": ["LA"], "nearest": ["SEA"]},
                    "SEA": {"weight": 1, "warehouses": ["KUL"], "nearest": ["US"]}},
        "channels": {
            "shopify": {"platform": "shopify", "region": "US", "account": "breeze-e2e.myshopify.com",
                        "rate_limit_per_min": 600, "advertise": {"share_pct": 40, "buffer": 1},
                        "connector": {"location_id": "gid://shopify/Location/1",
                                      "inventory_items": {"TEE": "gid://shopify/InventoryItem/11",
                                                          "CAP": "gid://shopify/InventoryItem/12"}}},
            "youtube-us": {"platform": "youtube", "region": "US", "store": "shopify",
                           "connector": {"source": "1780363"}},
            "tiktok-us": {"platform": "tiktok", "region": "US", "account": "7001", "rate_limit_per_min": 600,
                          "advertise": {"share_pct": 30, "buffer": 1},
                          "connector": {"shop_cipher": "ROW_e2e", "warehouse_id": "wh-1",
                                        "skus": {"TEE": {"product_id": "1001", "sku_id": "2001"},
                                                 "CAP": {"product_id": "1002", "sku_id": "2002"}}}},
            "amazon-us": {"platform": "amazon", "region": "US", "account": "ATVPDKIKX0DER",
                          "advertise": {"share_pct": 30, "buffer": 1}},
            "shopee-my": {"platform": "shopee", "region": "SEA", "account": "5001", "rate_limit_per_min": 600,
                          "advertise": {"buffer": 1},
                          "connector": {"skus": {"TEE": {"item_id": 301, "model_id": 1},
                                                 "CAP": {"item_id": 302, "model_id": 0}}}},
        },
        "rules": {"limit_sellout_horizon_s": 0, "limit_velocity_per_min": 0, "realloc_min_units": 10**9,
                  "sweep_interval_s": 0.5, "flex_chunk": 10},
        "connectors": {
            "shopify": {"base_url": urls["shopify"]},
            "tiktok": {"app_key": "e2e-app-key", "base_url": urls["tiktok"]},
            "shopee": {"partner_id": 2001, "base_url": urls["shopee"], "push_url": gateway_url + "/webhooks/shopee"},
            "amazon": {"base_url": urls["amazon"], "seller_id": "A2SELLER", "queue_url": urls["amazon_queue"],
                       "region": "us-east-1", "sqs_endpoint": urls["amazon"]},
        },
    }
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def start_fakes(catalog_probe, gateway_url: str) -> dict[str, Any]:
    """The fakes, each limited exactly as the sync's pusher budgets its channel."""
    pushers = stock_pushers(catalog_probe, SECRETS)

    def budget(channel: str) -> dict[str, float]:
        rate = pushers[catalog_probe.channels[channel].platform].budget(catalog_probe.channels[channel])
        return {"rate_capacity": rate.capacity, "rate_per_s": rate.refill_per_s, "gateway_url": gateway_url}

    return {
        "shopify": FakeShopify.for_catalog(catalog_probe, secret=SECRETS["LOCKSTOCK_SHOPIFY_SECRET"],
                                           access_token=SECRETS["LOCKSTOCK_SHOPIFY_ACCESS_TOKEN"], **budget("shopify")).start(),
        "tiktok": FakeTikTok.for_catalog(catalog_probe, app_key="e2e-app-key", app_secret=SECRETS["LOCKSTOCK_TIKTOK_SECRET"],
                                         access_token=SECRETS["LOCKSTOCK_TIKTOK_ACCESS_TOKEN"], **budget("tiktok-us")).start(),
        "shopee": FakeShopee.for_catalog(catalog_probe, partner_id=2001, partner_key=SECRETS["LOCKSTOCK_SHOPEE_PARTNER_KEY"],
                                         access_token=SECRETS["LOCKSTOCK_SHOPEE_ACCESS_TOKEN"], **budget("shopee-my")).start(),
        "amazon": FakeAmazon(access_token=SECRETS["LOCKSTOCK_AMAZON_ACCESS_TOKEN"], seller_id="A2SELLER",
                             aws_access_key_id=SECRETS["LOCKSTOCK_AWS_ACCESS_KEY_ID"],
                             aws_secret_access_key=SECRETS["LOCKSTOCK_AWS_SECRET_ACCESS_KEY"], max_wait_s=1.0,
                             **budget("amazon-us")).start(),
    }


ACCOUNTS = {"shopify": "breeze-e2e.myshopify.com", "tiktok": "7001", "shopee": "5001", "amazon": "ATVPDKIKX0DER"}


async def shop_on(fake, platform: str, rng: random.Random, stop: threading.Event) -> None:
    """A marketplace's buyers: a sale every ~25 ms while the listing shows stock."""
    account = ACCOUNTS[platform]
    while not stop.is_set():
        sku = rng.choice(list(STOCK))
        qty = 2 if rng.random() < 0.15 else 1
        if fake.quantity.get((account, sku), 0) >= qty:
            buyer = f"{platform}-buyer-{rng.randint(1, 10_000)}"
            if platform == "shopify" and rng.random() < 0.3:
                await fake.sell(account, sku, qty, buyer, source="1780363")  # a YouTube Shopping checkout
            else:
                await fake.sell(account, sku, qty, buyer)
        await asyncio.sleep(rng.uniform(0.01, 0.04))


@pytest.fixture
def stack(kafka, tmp_path):
    gateway_port, sync_port = free_port(), free_port()
    gateway_url = f"http://127.0.0.1:{gateway_port}"
    # Fakes need the catalog (ids, budgets) and the catalog needs the fakes' URLs: probe, then write.
    probe_path = channels_file(tmp_path / "probe.yaml", {k: "http://127.0.0.1:1" for k in
                                                         ("shopify", "tiktok", "shopee", "amazon", "amazon_queue")},
                               gateway_url)
    fakes = start_fakes(load_catalog(probe_path), gateway_url)
    urls = {"shopify": fakes["shopify"].base_url, "tiktok": fakes["tiktok"].url, "shopee": fakes["shopee"].url,
            "amazon": fakes["amazon"].url, "amazon_queue": fakes["amazon"].queue_url}
    path = channels_file(tmp_path / "channels.yaml", urls, gateway_url)
    settings = kafka.settings.with_(channels_file=path)
    workers = WorkerPool(settings, tmp_path / "logs")
    services = [
        ServiceProcess(settings, tmp_path / "logs" / "gateway.log", ("gateway", "--host", "127.0.0.1", "--port", str(gateway_port)),
                       port=gateway_port, env=SECRETS),
        ServiceProcess(settings, tmp_path / "logs" / "sync.log", ("--log-level", "info", "sync", "--port", str(sync_port)),
                       port=sync_port, env=SECRETS),
    ]
    try:
        worker = workers.start()
        for service in services:
            service.start()
        worker.wait_ready()
        for service in services:
            service.wait_ready()
        yield {"kafka": kafka.__class__.connect(settings), "fakes": fakes, "gateway": services[0], "sync": services[1]}
    finally:
        for service in services:
            service.stop()
        workers.stop_all()
        for fake in fakes.values():
            fake.stop()


def test_four_marketplaces_sell_one_pool_without_oversell_or_429(stack):
    kafka, fakes, sync = stack["kafka"], stack["fakes"], stack["sync"]
    topics = kafka.topics
    watcher = TopicWatcher(kafka, [topics.orders_placed, topics.orders_decisions]).start_and_wait()
    try:
        client = LockstockClient(kafka)
        for sku, total in STOCK.items():
            client.set_stock(sku, total)
        client.flush()

        def listed(platform: str) -> bool:
            return all(fakes[platform].quantity.get((ACCOUNTS[platform], sku), 0) > 0 for sku in STOCK)

        watcher.wait_for(lambda: all(listed(p) for p in fakes), 60, "first pushes")
        assert all(listed(p) for p in fakes), {p: dict(f.quantity) for p, f in fakes.items()}

        until, stop = time.monotonic() + SELL_FOR_S, threading.Event()
        futures = [asyncio.run_coroutine_threadsafe(shop_on(fake, platform, random.Random(seed), stop), fake.loop)
                   for seed, (platform, fake) in enumerate(fakes.items())]
        # Sold out: nothing shown anywhere for 3 s (then stop early), else the deadline ends it.
        empty_since = None
        while time.monotonic() < until:
            shown = sum(q for fake in fakes.values() for q in fake.quantity.values())
            empty_since = (empty_since or time.monotonic()) if shown == 0 else None
            if empty_since and time.monotonic() - empty_since > 3:
                break
            time.sleep(0.2)
        stop.set()
        for future in futures:
            future.result(60)  # a sale under way finishes delivering its webhook

        sales = {p: list(f.sales) for p, f in fakes.items()}
        expected = {f"{p}:{s.order_id}" for p, ss in sales.items() for s in ss}
        decided = lambda: {v["order_id"] for _, v, _ in watcher.snapshot(topics.orders_decisions)}  # noqa: E731
        watcher.wait_for(lambda: expected <= decided(), 60, "a decision for every sale")
        decisions = [v for _, v, _ in watcher.snapshot(topics.orders_decisions) if v["order_id"] in expected]
        status = sync.get_json("/status")[1]
        gateway_stats = stack["gateway"].get_json("/stats")[1]
    finally:
        watcher.stop()

    sold = {sku: sum(s.qty for ss in sales.values() for s in ss if s.sku == sku) for sku in STOCK}
    locked = {sku: sum(line["qty"] for d in decisions if d["status"] == "LOCKED" for line in d["lines"] if line["sku"] == sku)
              for sku in STOCK}
    rejected = [d for d in decisions if d["status"] == "REJECTED"]
    by_platform = {p: sum(s.qty for s in ss) for p, ss in sales.items()}
    report = {"stock": STOCK, "sold_on_fakes": sold, "locked": locked, "sold_by_platform": by_platform,
              "rejected": [(d["order_id"], d["reason"]) for d in rejected], "sync_lag_ms": status["lag_ms"],
              "lag_by_channel": {c: s.get("lag_ms") for c, s in status["channels"].items()},
              "gateway": gateway_stats,
              "fake_counters": {p: dict(f.counters) for p, f in fakes.items()}}
    print("\nmarketplaces:", json.dumps(report, indent=1))

    # Every sale reached Kafka and has exactly one decision: nothing lost, nothing doubled.
    assert all(s.delivered for ss in sales.values() for s in ss)
    assert expected <= {d["order_id"] for d in decisions}
    assert len(decisions) == len({d["order_id"] for d in decisions})
    # Zero oversell: what all marketplaces sold together never exceeds the pool.
    for sku, total in STOCK.items():
        assert sold[sku] <= total, report
        assert locked[sku] <= total, report
    assert not rejected, report  # no marketplace sale had to be turned down (and cancelled)
    # The pool was really sold across all four (the check above is not vacuous).
    assert sum(sold.values()) >= 0.8 * sum(STOCK.values()), report
    assert all(by_platform[p] > 0 for p in fakes), report
    # No fake ever saw more than its rate limit, a bad signature or a bad payload.
    for platform, fake in fakes.items():
        assert fake.counters["throttled"] == 0, (platform, dict(fake.counters))
        assert fake.counters["bad_signature"] == 0 and fake.counters["bad_shape"] == 0, (platform, dict(fake.counters))
    assert status["lag_ms"]["samples"] > 0 and status["lag_ms"]["p99"] > 0
