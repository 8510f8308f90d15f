"""The webhook gateway against a real broker: signatures, dedupe, dead letters, acknowledged
producing, and fuzzed bodies that must never produce a 5xx or lose an accepted event."""

from __future__ import annotations

import asyncio
import json
import random
import threading
import time
import urllib.error
import urllib.request
from typing import Any

import pytest

from apps.watch import TopicWatcher
from connectors.config import webhook_adapters
from connectors.gateway import Gateway, serve
from connectors.signatures import generic_signature
from lockstock.broker.embedded import free_port
from lockstock.catalog import catalog_from_dict, load_catalog

pytestmark = [pytest.mark.integration, pytest.mark.both_brokers]

SECRET = "own-site-secret"


def catalog_with_own_site():
    data = load_catalog().to_dict()
    data["channels"]["site-us"] = {"platform": "generic", "region": "US"}
    return catalog_from_dict(data, "test catalog")


class RunningGateway:
    """The gateway served on its own event-loop thread at a free port."""

    def __init__(self, kafka, env: dict[str, str]) -> None:
        catalog = catalog_with_own_site()
        self.gateway = Gateway(kafka, catalog, webhook_adapters(catalog, env))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.stop_event = asyncio.Event()
        self.loop.run_until_complete(serve(self.gateway, "127.0.0.1", self.port, self.stop_event,
                                           on_ready=lambda url: self.ready.set()))

    def __enter__(self) -> "RunningGateway":
        self.thread.start()
        assert self.ready.wait(20), "gateway did not start"
        return self

    def __exit__(self, *exc: Any) -> None:
        self.loop.call_soon_threadsafe(self.stop_event.set)
        self.thread.join(20)

    def post(self, platform: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict]:
        request = urllib.request.Request(f"{self.url}/webhooks/{platform}", data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=15) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")


def signed(body: bytes, secret: str = SECRET) -> dict[str, str]:
    ts = int(time.time())
    return {"Content-Type": "application/json", "X-Lockstock-Timestamp": str(ts),
            "X-Lockstock-Signature": generic_signature(secret, ts, body)}


def created(event_id: str, order_id: str, lines=(("TEE", 1),)) -> dict:
    return {"event_id": event_id, "type": "order.created",
            "order": {"id": order_id, "buyer_id": "b1", "placed_at": int(time.time() * 1000),
                      "lines": [{"sku": s, "qty": q} for s, q in lines]}}


@pytest.fixture
def gateway(kafka):
    with RunningGateway(kafka, {"LOCKSTOCK_GENERIC_SECRET": SECRET}) as running:
        yield running


@pytest.fixture
def watcher(kafka):
    topics = kafka.topics
    watching = TopicWatcher(kafka, [topics.orders_placed, topics.orders_events, topics.deadletter]).start_and_wait()
    yield watching
    watching.stop()


def test_signature_secret_and_route_checks(gateway, kafka, watcher):
    body = json.dumps(created("e-1", "1")).encode()
    assert gateway.post("generic", body, signed(body, "wrong"))[0] == 401
    assert gateway.post("generic", body, {"Content-Type": "application/json"})[0] == 401
    status, answer = gateway.post("shopify", body, {})  # no Shopify secret in this gateway's environment
    assert status == 503 and "LOCKSTOCK_SHOPIFY_SECRET" in answer["error"]
    assert gateway.post("myspace", body, {})[0] == 404
    time.sleep(1.0)  # nothing may arrive: give a stray record the time to show up
    assert watcher.snapshot() == []


def test_accepted_once_acknowledged_and_duplicates_produce_nothing(gateway, kafka, watcher):
    body = json.dumps(created("e-2", "820982911946154508", (("TEE", 2), ("CAP", 1)))).encode()
    status, answer = gateway.post("generic", body, signed(body))
    assert status == 200 and answer["status"] == "accepted"
    assert answer["records"][0]["topic"] == kafka.topics.orders_placed and answer["records"][0]["offset"] >= 0
    for _ in range(3):
        status, again = gateway.post("generic", body, signed(body))
        assert (status, again["status"]) == (200, "duplicate")
    assert watcher.wait_for(lambda: watcher.snapshot(kafka.topics.orders_placed), 15, "the order")
    time.sleep(0.5)
    placed = watcher.snapshot(kafka.topics.orders_placed)
    assert len(placed) == 1
    order = placed[0][1]
    assert order["order_id"] == "generic:820982911946154508"
    assert [(line["sku"], line["qty"]) for line in order["lines"]] == [("TEE", 2), ("CAP", 1)]


def test_malformed_is_a_400_with_the_reason_and_a_dead_letter(gateway, kafka, watcher):
    body = b'{"event_id": "e-3", "type": "order.created", "order": {"id": "9", "lines": [{"sku": "TEE", "qty": 0}]}}'
    status, answer = gateway.post("generic", body, signed(body))
    assert status == 400 and answer["error"]
    assert watcher.wait_for(lambda: watcher.snapshot(kafka.topics.deadletter), 15, "the dead letter")
    letter = watcher.snapshot(kafka.topics.deadletter)[0][1]
    assert letter["payload"] == body and letter["service"] == "gateway" and letter["reason"] == answer["error"]
    assert letter["source_topic"] == "webhooks/generic"


def _mutations(rng: random.Random, n: int) -> list[bytes]:
    """Signed-but-odd bodies: valid orders, wrong types, missing keys, junk bytes, truncations."""
    junk_values = [None, True, -1, 0, 2**63, 1.5, "", "x" * 5000, [], {}, "\u0000", "💥", [1, 2], {"a": 1}]
    bodies = []
    for i in range(n):
        doc: Any = created(f"fz-{i}", f"{i}", [("TEE", rng.randint(1, 3))] * rng.randint(1, 3))
        roll = rng.random()
        if roll < 0.25:
            pass  # a valid order
        elif roll < 0.55:
            target = rng.choice([doc, doc["order"], doc["order"]["lines"][0]])
            target[rng.choice(list(target))] = rng.choice(junk_values)
        elif roll < 0.7:
            target = rng.choice([doc, doc["order"], doc["order"]["lines"][0]])
            target.pop(rng.choice(list(target)))
        elif roll < 0.8:
            doc = rng.choice(junk_values)
        else:
            raw = json.dumps(doc).encode()
            bodies.append(rng.choice([raw[: rng.randint(0, len(raw))], bytes(rng.getrandbits(8) for _ in range(64)),
                                      b"\xff\xfe" + raw, raw + b"}"]))
            continue
        bodies.append(json.dumps(doc).encode())
    return bodies


def test_fuzzed_bodies_never_give_a_5xx_and_every_accepted_event_is_on_the_broker(gateway, kafka, watcher):
    rng = random.Random(20261124)
    outcomes = {"accepted": 0, "duplicate": 0, "ignored": 0, "rejected": 0}
    for body in _mutations(rng, 300):
        status, answer = gateway.post("generic", body, signed(body))
        assert status in (200, 400), (status, answer, body[:200])
        outcomes[answer["status"] if status == 200 else "rejected"] += 1
    assert outcomes["accepted"] >= 50 and outcomes["rejected"] >= 100, outcomes
    topics = kafka.topics

    def produced() -> tuple[int, int]:
        return len(watcher.snapshot(topics.orders_placed)), len(watcher.snapshot(topics.deadletter))

    watcher.wait_for(lambda: produced() == (outcomes["accepted"], outcomes["rejected"]), 30, "every record")
    assert produced() == (outcomes["accepted"], outcomes["rejected"])
    stats = json.loads(urllib.request.urlopen(f"{gateway.url}/stats", timeout=5).read())["platforms"]["generic"]
    assert stats["accepted"] == outcomes["accepted"] and stats["malformed"] == outcomes["rejected"]
