"""What every topic (and the orders table's changelog) holds about some orders: the evidence a
failed end-to-end assertion prints, so a lost or doubled order can be diagnosed from CI output."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any, Iterable

from confluent_kafka import KafkaException

from apps.readback import decode_table_record
from lockstock.errors import BrokerError, describe_kafka_error
from lockstock.kafka import Kafka
from lockstock.reader import Record
from lockstock.topics import changelog_topic
from streams.envelopes import unpack

TRAIL_TOPICS = ("orders_placed", "lock_requests", "lock_results", "orders_decisions")
READ_TIMEOUT_S = 30.0


def order_trail(kafka: Kafka, order_ids: Iterable[str], limit: int = 5) -> str:
    """Every record about the first ``limit`` of ``order_ids``, per order; never raises for
    a read that does not finish (the trail is printed on a failure already being reported)."""
    wanted = sorted(set(order_ids))[:limit]
    if not wanted:
        return ""
    changelog = changelog_topic(kafka.settings.app_id, "orders")
    wanted_topics = [*(getattr(kafka.topics, name) for name in TRAIL_TOPICS), changelog]
    found: dict[str, list[str]] = defaultdict(list)
    notes: list[str] = []
    try:
        # The changelog exists only once a worker ran: a trail without it still says the rest.
        existing = kafka.admin().list_topics(timeout=10).topics
        topics = [t for t in wanted_topics if t in existing]
        notes += [f"({t} does not exist)" for t in wanted_topics if t not in existing]
        with kafka.reader(beginning=topics, raw=[changelog]) as reader:
            for record in reader.read_to_end(READ_TIMEOUT_S):
                for order_id, value in _about(record, changelog):
                    if order_id in wanted:
                        found[order_id].append(f"  {record.topic}[{record.partition}]@{record.offset} "
                                               f"ts={record.timestamp} {value}")
            if reader.bad.undecodable:
                notes.append(f"(undecodable records skipped: {dict(reader.bad.undecodable)})")
    except (BrokerError, KafkaException) as exc:
        notes.append(f"(the trail is incomplete: {describe_kafka_error(exc)})")
    return "\n".join([*(f"{order_id}:\n" + "\n".join(found.get(order_id, ["  (nowhere)"])) for order_id in wanted),
                      *notes])


def _about(record: Record, changelog: str) -> list[tuple[Any, Any]]:
    """(order id, what the record says) pairs: one per line of an envelope."""
    if record.topic == changelog:
        order_id, value = decode_table_record(record.key, record.value)
        return [(order_id, "<tombstone>" if value is None else json.dumps(value)[:300])]
    key = (record.key or b"").decode("utf-8", "replace")
    return [(value.get("order_id") if isinstance(value, dict) else key, value)
            for _, value in unpack(record.name, record.value)]
