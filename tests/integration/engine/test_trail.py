"""The evidence trail failed end-to-end tests print (tests/integration/trail.py), no worker:
an order is found on the topics and in the orders changelog (a Faust table record: JSON key
and value), an unknown one is "(nowhere)", a missing changelog is said, not fatal."""

from __future__ import annotations

import json

import pytest
from confluent_kafka.admin import NewTopic

from apps.client import LockstockClient
from lockstock.topics import changelog_topic
from tests.integration.trail import order_trail

pytestmark = pytest.mark.integration


def test_the_trail_shows_an_order_on_the_topics_and_in_the_changelog(kafka):
    client = LockstockClient(kafka)
    client.place_order("tr-1", [("SKU-T", 1)])
    client.flush()
    changelog = changelog_topic(kafka.settings.app_id, "orders")

    before = order_trail(kafka, ["tr-1", "tr-unknown"])
    assert f"{kafka.topics.orders_placed}[" in before and "'order_id': 'tr-1'" in before
    assert "tr-unknown:\n  (nowhere)" in before
    assert f"({changelog} does not exist)" in before

    admin = kafka.admin()  # held: the creation is answered through it
    admin.create_topics([NewTopic(changelog, kafka.settings.partitions, 1)])[changelog].result(20)
    client.send_raw(changelog, json.dumps("tr-1"), json.dumps({"status": "LOCKED"}).encode())
    client.flush()
    after = order_trail(kafka, ["tr-1"])
    assert f'{changelog}[' in after and '{"status": "LOCKED"}' in after
    assert "does not exist" not in after and "incomplete" not in after
