"""What every topic (and the orders table's changelog) holds about some orders: the evidence a
failed end-to-end assertion prints, so a lost or doubled order can be diagnosed from CI output."""

from __future__ import annotations

from collections import defaultdict
from typing import Iterable

from lockstock.kafka import Kafka
from lockstock.topics import changelog_topic
from streams.envelopes import unpack

TRAIL_TOPICS = ("orders_placed", "lock_requests", "lock_results", "orders_decisions")


def order_trail(kafka: Kafka, order_ids: Iterable[str], limit: int = 5) -> str:
    wanted = sorted(set(order_ids))[:limit]
    if not wanted:
        return ""
    topics = [getattr(kafka.topics, name) for name in TRAIL_TOPICS]
    changelog = changelog_topic(kafka.settings.app_id, "orders")
    consumer = kafka.consumer()
    found: dict[str, list[str]] = defaultdict(list)
    try:
        ends = kafka.assign_at(consumer, beginning=[*topics, changelog])
        remaining = {tp for tp, end in ends.items() if end > 0}
        while remaining:
            batch = consumer.consume(1000, 2.0)
            if not batch:
                break
            for message in batch:
                if message.error() is not None:
                    continue
                tp = (message.topic(), message.partition())
                if message.offset() + 1 >= ends.get(tp, 0):
                    remaining.discard(tp)
                key = (message.key() or b"").decode("utf-8", "replace")
                if message.topic() == changelog:
                    key = key.strip('"')
                    value = (message.value() or b"<tombstone>")[:300].decode("utf-8", "replace")
                    lines = [value]
                else:
                    decoded = kafka.codec.decode(message.value(), topic=message.topic())
                    lines = [line for _, line in unpack(decoded.name, decoded.value)]  # an envelope: its lines
                for value in lines:
                    order_id = value.get("order_id") if isinstance(value, dict) else key
                    if order_id in wanted:
                        found[order_id].append(f"  {message.topic()}[{message.partition()}]@{message.offset()} "
                                               f"ts={message.timestamp()[1]} {value}")
    finally:
        consumer.close()
    return "\n".join(f"{order_id}:\n" + "\n".join(found.get(order_id, ["  (nowhere)"])) for order_id in wanted)
