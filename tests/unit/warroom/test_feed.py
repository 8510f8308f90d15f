"""The war room feed's status and its retry after a failure, with no broker: a Kafka that
cannot even make a consumer fails every reader the feed opens."""

from __future__ import annotations

import threading
import time

from apps.warroom import feed as feed_module
from apps.warroom.feed import WarRoomFeed
from apps.warroom.model import WarRoom
from lockstock.catalog import load_catalog
from lockstock.kafka import Kafka
from lockstock.settings import Settings


def test_a_failing_reader_is_retried_and_the_status_says_so(monkeypatch):
    monkeypatch.setattr(feed_module, "RETRY_S", 0.05)
    kafka = Kafka(Settings(bootstrap_servers="127.0.0.1:9"), profile=None, codec=None)  # no consumer can be made
    feed = WarRoomFeed(kafka, WarRoom(load_catalog(None)), threading.Lock())
    assert feed.status() == {"state": "starting", "records": 0, "last_record_at": None, "error": None, "assigned": [],
                             "failures": 0}
    feed.start()
    try:
        deadline = time.monotonic() + 10
        while feed.status()["failures"] < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert feed.status()["failures"] >= 3  # it keeps trying
        status = feed.status()
        assert status["state"] == "retrying" and "consumer" in status["error"] and feed.is_alive()
    finally:
        started = time.monotonic()
        feed.stop(timeout=5)
    assert not feed.is_alive() and time.monotonic() - started < 5
