"""One partitioning contract: a key lands on the same partition whether the project's
confluent-kafka producer or Faust (aiokafka, murmur2) writes it."""

from __future__ import annotations

import pytest
from aiokafka.partitioner import DefaultPartitioner

pytestmark = [pytest.mark.integration, pytest.mark.both_brokers]


def test_confluent_producer_partitions_like_faust(kafka):
    topic = kafka.topics.lock_requests
    partitions = list(range(kafka.settings.partitions))
    keys = [f"SKU-{n}" for n in range(300)] + [f"shopify:{8209829119461545 + n}" for n in range(100)]
    landed: dict[bytes, int] = {}

    def delivered(err, message):
        assert err is None, err
        landed[message.key()] = message.partition()

    producer = kafka.producer()
    for key in keys:
        producer.produce(topic, key=key.encode(), value=b"x", on_delivery=delivered)
    assert producer.flush(30) == 0
    faust_partitioner = DefaultPartitioner()
    mismatched = [
        key for key in keys
        if landed[key.encode()] != faust_partitioner(key.encode(), partitions, partitions)
    ]
    assert len(landed) == len(keys) and mismatched == []
    assert len(set(landed.values())) == len(partitions)  # and keys really spread out
