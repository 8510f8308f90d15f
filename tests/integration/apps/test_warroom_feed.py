"""The war room's feed against a real broker, no worker: it waits for the stock changelog (Faust
creates it with the first worker) while reading the other topics, adds it once it exists,
counts what it cannot decode in the model, and stops within its bound."""

from __future__ import annotations

import json
import threading
import time

import pytest
from confluent_kafka.admin import NewTopic

from apps.client import LockstockClient
from apps.warroom.feed import WarRoomFeed
from apps.warroom.model import WarRoom
from streams.engine.state import SkuState

pytestmark = pytest.mark.integration


def wait_until(done, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if done():
            return True
        time.sleep(0.1)
    return done()


def test_the_feed_waits_for_the_changelog_then_goes_live_and_counts_poison(kafka):
    room, lock = WarRoom(kafka.settings.catalog()), threading.Lock()
    feed = WarRoomFeed(kafka, room, lock)
    assert feed.status()["state"] == "starting" and not feed.is_alive()
    client = LockstockClient(kafka)
    client.send(kafka.topics.inventory_alerts, "S", "InventoryAlert",
                {"alert_id": "a1", "sku": "S", "type": "FLEX_TRANSFER", "message": "moved", "raised_at": 1})
    client.send_raw(kafka.topics.orders_decisions, "junk", b"not avro")
    client.flush()
    feed.start()
    try:
        assert wait_until(lambda: feed.status()["state"] == "waiting")
        status = feed.status()
        assert status["error"] == f"waiting for topic(s) {feed.changelog}"
        assert feed.changelog not in status["assigned"] and kafka.topics.inventory_alerts in status["assigned"]
        assert wait_until(lambda: room.snapshot(0)["stream"]["undecodable"] == 1 and room.alerts)
        assert room.snapshot(0)["stream"]["undecodable_by_topic"] == {kafka.topics.orders_decisions: 1}

        admin = kafka.admin()  # held: the creation is answered through it
        admin.create_topics([NewTopic(feed.changelog, kafka.settings.partitions, 1)])[feed.changelog].result(20)
        state = SkuState("S", total=5)
        client.send_raw(feed.changelog, json.dumps("S"), json.dumps(state.to_dict()).encode())
        client.flush()
        assert wait_until(lambda: feed.status()["state"] == "live" and "S" in room.boards)
        status = feed.status()
        assert status["error"] is None and feed.changelog in status["assigned"] and status["records"] >= 2
        assert len(room.alerts) == 1  # the alerts' position was kept: not read twice
    finally:
        started = time.monotonic()
        feed.stop(timeout=5)
        assert not feed.is_alive() and time.monotonic() - started < 5
