"""The broker's own ceiling: a plain confluent-kafka consume -> produce loop with no logic and
librdkafka's default batching, over the same broker and partition count as the pipeline. What
the lock pipeline reaches is judged against this, not against an absolute number."""

from __future__ import annotations

import os
import time
from typing import Any

from lockstock.errors import BrokerError
from lockstock.kafka import Kafka

PAYLOAD_BYTES = 120  # about an encoded single-line OrderPlaced


def load_bench_topic(kafka: Kafka, topic: str, messages: int, *, also_create: tuple[str, ...] = ()) -> Any:
    """Create ``topic`` (and ``also_create``) with the app's partition count if missing, and
    fill it with ``messages`` random records of PAYLOAD_BYTES over 10,000 keys, librdkafka's
    default batching: the input of a bench figure. Returns the (flushed) producer."""
    from confluent_kafka import Producer
    from confluent_kafka.admin import NewTopic

    partitions, replication = kafka.settings.partitions, kafka.settings.replication_factor
    admin = kafka.admin()  # kept referenced until the futures resolve
    futures = admin.create_topics([NewTopic(t, partitions, replication) for t in (topic, *also_create)])
    for name, future in futures.items():
        try:
            future.result(30)
        except Exception as exc:  # an existing topic from an earlier run is fine
            if "already exists" not in str(exc).lower():
                raise BrokerError(f"cannot create {name}: {exc}") from None
    producer = Producer({"bootstrap.servers": kafka.bootstrap, "partitioner": "murmur2_random"})
    payload = os.urandom(PAYLOAD_BYTES)
    for i in range(messages):
        while True:
            try:
                producer.produce(topic, key=str(i % 10_000).encode(), value=payload)
                break
            except BufferError:
                producer.poll(0.01)
    producer.flush(60)
    return producer


def passthrough(kafka: Kafka, messages: int = 200_000, progress=None) -> dict[str, Any]:
    prefix = kafka.settings.topic_prefix
    source, sink = f"{prefix}.bench.passthrough-in", f"{prefix}.bench.passthrough-out"
    producer = load_bench_topic(kafka, source, messages, also_create=(sink,))
    if progress:
        progress(f"passthrough: {messages} records loaded, copying ...")
    consumer = kafka.consumer()
    kafka.assign_at(consumer, beginning=[source])
    copied, started = 0, None
    deadline = time.monotonic() + 300
    while copied < messages and time.monotonic() < deadline:
        batch = consumer.consume(10_000, 1.0)
        if batch and started is None:
            started = time.monotonic()
        for message in batch:
            if message.error() is not None:
                continue
            while True:
                try:
                    producer.produce(sink, key=message.key(), value=message.value())
                    break
                except BufferError:
                    producer.poll(0.01)
            copied += 1
        producer.poll(0)
    producer.flush(60)
    elapsed = time.monotonic() - (started or time.monotonic())
    consumer.close()
    if copied < messages:
        raise BrokerError(f"passthrough copied only {copied} of {messages} records within 300 s")
    return {"messages": messages, "seconds": round(elapsed, 2), "per_s": round(messages / elapsed)}
