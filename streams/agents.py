"""Agents: decode, call a pure function from streams.engine, write the table, send the outcome.

Pipeline (every hop keyed so the state it touches is owned by one partition's worker):
  orders.placed (order_id) --route_order_lines--> lock.requests (sku)
  lock.requests + inventory.commands (sku) --lock_stock_lines [stock table]--> lock.results (order_id)
  lock.results (order_id) --decide_orders [pending_orders table]--> orders.decisions (order_id)
                                                  \\--compensation RELEASE--> lock.requests (sku)
Sends use force=True: the record leaves at once (low latency) and Faust still flushes the
producer before it commits the source offset (at-least-once); the engine makes replays harmless.
"""

from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable

import faust

from lockstock.clock import now_ms
from lockstock.codec import Decoded
from lockstock.deadletter import INVALID_COMMAND, PROCESSING_ERROR, UNDECODABLE, WRONG_RECORD, dead_letter
from lockstock.errors import CodecError
from streams.app import Wiring
from streams.engine import orders as order_rules
from streams.engine import stock as stock_rules
from streams.engine.stock import SkuStock

logger = logging.getLogger(__name__)
SERVICE = "streams"


class Handler:
    """Shared plumbing of the agents: decode or dead-letter, encode and send."""

    def __init__(self, wiring: Wiring) -> None:
        self.w = wiring
        self.codec = wiring.kafka.codec

    async def send(self, topic: faust.TopicT, key: str, record: str, value: dict[str, Any]) -> None:
        await topic.send(key=key.encode(), value=self.codec.encode(record, value, topic=topic.get_topic_name()), force=True)

    async def dead_letter(self, event: faust.EventT, reason: str, error_type: str) -> None:
        message = event.message
        logger.warning("dead-lettering %s[%s]@%s: %s", message.topic, message.partition, message.offset, reason)
        record = dead_letter(
            source_topic=message.topic, partition=message.partition, offset=message.offset,
            key=message.key, payload=message.value, reason=reason, error_type=error_type, service=SERVICE,
        )
        await self.w.deadletter.send(
            key=message.key, value=self.codec.encode("DeadLetter", record, topic=self.w.deadletter.get_topic_name()),
            force=True,
        )

    async def process(self, stream: faust.StreamT, records: tuple[str, ...],
                      handle: Callable[[faust.EventT, Decoded], Awaitable[None]]) -> None:
        """The agent loop: decode (or dead-letter) each event and hand it to ``handle``; a failure
        while handling one event dead-letters that event instead of stopping every other one."""
        async for event in stream.events():
            decoded = await self.decode(event, *records)
            if decoded is None:
                continue
            try:
                await handle(event, decoded)
            except Exception as exc:
                logger.exception("handling %s failed", decoded.name)
                await self.dead_letter(event, f"{type(exc).__name__}: {exc}", PROCESSING_ERROR)

    async def decode(self, event: faust.EventT, *records: str) -> Decoded | None:
        try:
            return self.codec.decode_as(event.message.value, *records, topic=event.message.topic)
        except CodecError as exc:
            error_type = WRONG_RECORD if str(exc).startswith("expected ") else UNDECODABLE
            await self.dead_letter(event, str(exc), error_type)
            return None


def define_agents(app: faust.App, wiring: Wiring) -> None:
    h = Handler(wiring)
    stock_table = wiring.tables.stock
    pending_table = wiring.tables.pending_orders
    stock_inputs = app.topic(
        wiring.lock_requests.get_topic_name(), wiring.inventory_commands.get_topic_name(),
        key_type=bytes, value_type=bytes, internal=False,
    )

    @app.agent(wiring.orders_placed, name="route_order_lines")
    async def route_order_lines(stream: faust.StreamT) -> None:
        await h.process(stream, ("OrderPlaced",), route_order)

    async def route_order(event: faust.EventT, decoded: Decoded) -> None:
        order = decoded.value
        invalid = order_rules.validate_order(order)
        if invalid:
            await h.send(wiring.decisions, order["order_id"], "OrderDecision", order_rules.rejection(order, invalid, now_ms()))
            return
        for request in order_rules.lock_requests(order):
            await h.send(wiring.lock_requests, request["sku"], "LineLockRequest", request)

    @app.agent(stock_inputs, name="lock_stock_lines")
    async def lock_stock_lines(stream: faust.StreamT) -> None:
        await h.process(stream, ("LineLockRequest", "InventoryCommand"), update_stock)

    def load_stock(sku: str) -> SkuStock | None:
        raw = stock_table.get(sku)
        return SkuStock.from_dict(raw) if raw else None

    async def update_stock(event: faust.EventT, decoded: Decoded) -> None:
        value = decoded.value
        if decoded.name == "LineLockRequest":
            stock, result = stock_rules.apply_line_request(load_stock(value["sku"]), value, now_ms())
            if stock is not None:
                stock_table[value["sku"]] = stock.to_dict()  # dedup record and stock in one changelog record
            await h.send(wiring.lock_results, result["order_id"], "LineLockResult", result)
            return
        try:
            stock, applied = stock_rules.apply_command(load_stock(value["sku"]), value)
        except ValueError as exc:
            await h.dead_letter(event, str(exc), INVALID_COMMAND)
            return
        if applied:
            stock_table[value["sku"]] = stock.to_dict()

    @app.agent(wiring.lock_results, name="decide_orders")
    async def decide_orders(stream: faust.StreamT) -> None:
        await h.process(stream, ("LineLockResult",), collect)

    async def collect(event: faust.EventT, decoded: Decoded) -> None:
        result = decoded.value
        raw = pending_table.get(result["order_id"])
        pending = order_rules.PendingOrder.from_dict(raw) if raw else None
        pending, verdict = order_rules.collect_line_outcome(pending, result, now_ms())
        if not verdict.replayed:
            pending_table[pending.order_id] = pending.to_dict()
        for request in order_rules.compensation_requests(pending, verdict.release_skus):
            await h.send(wiring.lock_requests, request["sku"], "LineLockRequest", request)
        if verdict.decision is not None:
            await h.send(wiring.decisions, pending.order_id, "OrderDecision", verdict.decision)
