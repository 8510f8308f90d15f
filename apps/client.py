"""Produce to and read from lockstock topics the way an outside service does: through the
project's producer factory (murmur2, idempotent) and codec. Used by the CLI, demo and tests."""

from __future__ import annotations

import time
import uuid
from typing import Any, Callable, Iterable

from lockstock.clock import now_ms
from lockstock.codec import Decoded
from lockstock.kafka import Kafka


class LockstockClient:
    """Produce and read lockstock topics like an outside service would."""

    def __init__(self, kafka: Kafka) -> None:
        self.kafka = kafka
        self.codec = kafka.codec
        self.topics = kafka.topics
        self.producer = kafka.producer()

    def send(self, topic: str, key: str, record: str, value: dict) -> None:
        self.send_raw(topic, key, self.codec.encode(record, value, topic=topic))

    def send_raw(self, topic: str, key: str, value: bytes) -> None:
        while True:
            try:
                self.producer.produce(topic, key=key.encode(), value=value)
                break
            except BufferError:  # the local queue is full (a big batch): let librdkafka send first
                self.producer.poll(0.5)
        self.producer.poll(0)

    def flush(self) -> None:
        remaining = self.producer.flush(30)
        assert remaining == 0, f"{remaining} records not delivered"

    def command(self, sku: str, kind: str, **fields: Any) -> dict:
        """Send one InventoryCommand (fields as in the schema; the rest take their defaults)."""
        command = {"command_id": fields.pop("command_id", None) or uuid.uuid4().hex, "sku": sku, "type": kind,
                   "issued_at": now_ms(), **fields}
        self.send(self.topics.inventory_commands, sku, "InventoryCommand", command)
        return command

    def set_stock(self, sku: str, total: int, regions: dict[str, int] | None = None, *,
                  flex_pct: float | None = None, proportional: bool = False, **fields: Any) -> dict:
        return self.command(sku, "SET_STOCK", total=total, regions=regions or {}, flex_pct=flex_pct,
                            proportional=proportional, **fields)

    def order_event(self, order_id: str, kind: str, *, channel: str = "tiktok-us", event_id: str | None = None,
                    warehouse: str | None = None, reason: str | None = None) -> dict:
        """Send one OrderEvent (PAID, CANCELLED, SHIPPED) for an order."""
        event = {"event_id": event_id or f"{order_id}:{kind.lower()}", "order_id": order_id, "type": kind,
                 "channel": channel, "occurred_at": now_ms(), "warehouse": warehouse, "reason": reason}
        self.send(self.topics.orders_events, order_id, "OrderEvent", event)
        return event

    def place_order(self, order_id: str, lines: Iterable[tuple[str, int]], *, channel: str = "tiktok-us",
                    buyer: str = "buyer-1", region: str = "") -> dict:
        order = {
            "order_id": order_id, "channel": channel, "buyer_id": buyer, "ship_to_region": region,
            "placed_at": now_ms(), "lines": [{"sku": s, "qty": q} for s, q in lines],
        }
        self.send(self.topics.orders_placed, order_id, "OrderPlaced", order)
        return order

    def read_until(self, topics: list[str], done: Callable[[list[tuple[str, Any]]], bool], timeout: float = 60.0) -> list[tuple[str, Any]]:
        """Read topics from the start until done(records) or the deadline; (topic, Decoded) pairs.
        AssertionError at the deadline. Undecodable records are skipped (and logged)."""
        records: list[tuple[str, Any]] = []
        deadline = time.monotonic() + timeout
        with self.kafka.reader(beginning=topics) as reader:
            while time.monotonic() < deadline:
                records += [(r.topic, Decoded(r.schema, r.value)) for r in reader.poll(0.5)]
                if done(records):
                    return records
        raise AssertionError(f"condition not met within {timeout}s after {len(records)} records")

    def decisions(self, expected_orders: set[str], timeout: float = 60.0) -> dict[str, list[dict]]:
        """Every decision per order id, waiting until each expected order has at least one."""
        def all_decided(records: list) -> bool:
            return expected_orders <= {d.value["order_id"] for _, d in records}

        records = self.read_until([self.topics.orders_decisions], all_decided, timeout)
        by_order: dict[str, list[dict]] = {}
        for _, decoded in records:
            by_order.setdefault(decoded.value["order_id"], []).append(decoded.value)
        return by_order
