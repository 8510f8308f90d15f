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
import time
from typing import Any, Awaitable, Callable

import faust

from lockstock.codec import Decoded
from lockstock.deadletter import INVALID_COMMAND, PROCESSING_ERROR, UNDECODABLE, WRONG_RECORD, dead_letter
from lockstock.errors import CodecError
from streams.app import Wiring
from streams.engine import orders as order_rules
from streams.engine.stock import LOCKED, SkuStock, lock_order_line, release_order_line, set_stock

logger = logging.getLogger(__name__)
SERVICE = "streams"


def now_ms() -> int:
    return int(time.time() * 1000)


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
        units = order_rules.units_per_sku(order)
        for sku, qty in units.items():
            await h.send(wiring.lock_requests, sku, "LineLockRequest", {
                "order_id": order["order_id"], "sku": sku, "qty": qty, "action": "LOCK",
                "channel": order["channel"], "buyer_id": order["buyer_id"],
                "region": order["ship_to_region"] or None, "sku_count": len(units),
                "placed_at": order["placed_at"], "reason": None,
            })

    @app.agent(stock_inputs, name="lock_stock_lines")
    async def lock_stock_lines(stream: faust.StreamT) -> None:
        await h.process(stream, ("LineLockRequest", "InventoryCommand"), update_stock)

    async def update_stock(event: faust.EventT, decoded: Decoded) -> None:
        if decoded.name == "LineLockRequest":
            await apply_lock_request(decoded.value)
        else:
            await apply_command(event, decoded.value)

    async def apply_lock_request(request: dict[str, Any]) -> None:
        sku, order_id = request["sku"], request["order_id"]
        raw = stock_table.get(sku)
        stock = SkuStock.from_dict(raw) if raw else None
        if request["action"] == "LOCK":
            stock, outcome = lock_order_line(stock, order_id, request["qty"])
        else:
            stock, outcome = release_order_line(stock, order_id, request["reason"] or "RELEASED")
        if stock is not None:
            stock_table[sku] = stock.to_dict()  # dedup record and stock in one changelog record
        await h.send(wiring.lock_results, order_id, "LineLockResult", {
            "order_id": order_id, "sku": sku, "qty": request["qty"], "status": outcome.status,
            "reason": outcome.reason, "region": request["region"] if outcome.status == LOCKED else None,
            "sku_count": request["sku_count"], "channel": request["channel"],
            "placed_at": request["placed_at"], "decided_at": now_ms(),
        })

    async def apply_command(event: faust.EventT, command: dict[str, Any]) -> None:
        if command["type"] != "SET_STOCK" or command["total"] is None:
            await h.dead_letter(event, f"command {command['type']} is not supported by this worker yet", INVALID_COMMAND)
            return
        raw = stock_table.get(command["sku"])
        try:
            stock, applied = set_stock(SkuStock.from_dict(raw) if raw else None, command["sku"], command["total"], command["command_id"])
        except ValueError as exc:
            await h.dead_letter(event, str(exc), INVALID_COMMAND)
            return
        if applied:
            stock_table[command["sku"]] = stock.to_dict()

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
        for sku in verdict.release_skus:
            outcome = pending.outcomes[sku]
            await h.send(wiring.lock_requests, sku, "LineLockRequest", {
                "order_id": pending.order_id, "sku": sku, "qty": outcome["qty"], "action": "RELEASE",
                "channel": pending.channel, "buyer_id": "", "region": None, "sku_count": pending.sku_count,
                "placed_at": pending.placed_at, "reason": order_rules.COMPENSATION,
            })
        if verdict.decision is not None:
            await h.send(wiring.decisions, pending.order_id, "OrderDecision", verdict.decision)
