"""Agents: decode, call a pure function from streams.engine, send its outputs, write the table.

Pipeline (every hop keyed so the state it touches is owned by one partition's worker):
  orders.placed + lock.results + orders.events + order.timers (order_id)
      --order_desk [orders table]--> lock.requests (sku): LOCK, compensating RELEASE, COMMIT, SHIP
                                 \--> orders.decisions (order_id)
  lock.requests + inventory.commands (sku)
      --lock_stock_lines [stock table]--> lock.results (order_id), inventory.alerts (sku),
                                          channels.stock (channel:sku)
  sweep_orders (timer) --> order.timers: unpaid locks past their TTL, finished orders to forget

Outputs are acknowledged by the broker *before* the table value is written. The embedded broker
has no transactions, so after a crash the table may be ahead of the committed input offset; the
replayed input then finds its effect already in the state, and everything that effect should
have produced is already in Kafka. The reverse order could persist an effect whose alert or
channel update was lost. Replays repeat answers with the same ids; consumers dedupe on them.
"""

from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable

import faust

from lockstock.clock import now_ms
from lockstock.codec import Decoded
from lockstock.deadletter import INVALID_COMMAND, INVALID_EVENT, PROCESSING_ERROR, UNDECODABLE, WRONG_RECORD, dead_letter
from lockstock.errors import CodecError
from streams.app import Wiring
from streams.engine import orders as desk
from streams.engine.channels import channel_stock_updates
from streams.engine.commands import CommandError, apply_command
from streams.engine.state import SkuState
from streams.engine.stock import apply_line_request

logger = logging.getLogger(__name__)
SERVICE = "streams"


class Handler:
    """Shared plumbing of the agents: decode or dead-letter, encode and send."""

    def __init__(self, wiring: Wiring) -> None:
        self.w = wiring
        self.codec = wiring.kafka.codec

    async def emit(self, outputs: list[tuple[faust.TopicT, str, str, dict[str, Any]]]) -> None:
        """Send (topic, key, record name, value) outputs and wait until the broker has them all."""
        pending = []
        for topic, key, record, value in outputs:
            encoded = self.codec.encode(record, value, topic=topic.get_topic_name())
            pending.append(await topic.send(key=key.encode(), value=encoded, force=True))
        for delivery in pending:
            await delivery

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

    async def process(self, stream: faust.StreamT, handle: Callable[[faust.EventT, Decoded], Awaitable[None]]) -> None:
        """The agent loop: decode (or dead-letter) each event and hand it to ``handle``; a failure
        while handling one event dead-letters that event instead of stopping every other one."""
        async for event in stream.events():
            decoded = await self.decode(event)
            if decoded is None:
                continue
            try:
                await handle(event, decoded)
            except Exception as exc:
                logger.exception("handling %s failed", decoded.name)
                await self.dead_letter(event, f"{type(exc).__name__}: {exc}", PROCESSING_ERROR)

    async def decode(self, event: faust.EventT) -> Decoded | None:
        """The event's value, if it is a record its topic carries (per the topic registry)."""
        topic = event.message.topic
        try:
            records = self.w.kafka.topics.spec_of(topic).value_schemas
            return self.codec.decode_as(event.message.value, *records, topic=topic)
        except CodecError as exc:
            error_type = WRONG_RECORD if str(exc).startswith("expected ") else UNDECODABLE
            await self.dead_letter(event, str(exc), error_type)
            return None


def define_agents(app: faust.App, wiring: Wiring) -> None:
    h = Handler(wiring)
    catalog = wiring.catalog
    stock_table, orders_table = wiring.tables.stock, wiring.tables.orders

    def channel_of(*topics: faust.TopicT) -> faust.TopicT:
        return app.topic(*(t.get_topic_name() for t in topics), key_type=bytes, value_type=bytes, internal=False)

    # -- the order desk: order-keyed, owns the orders table -----------------------------------
    desk_steps = {
        "OrderPlaced": desk.on_order_placed, "LineLockResult": desk.on_line_result,
        "OrderEvent": desk.on_order_event, "OrderTimer": desk.on_timer,
    }

    @app.agent(channel_of(wiring.orders_placed, wiring.lock_results, wiring.orders_events, wiring.order_timers),
               name="order_desk")
    async def order_desk(stream: faust.StreamT) -> None:
        await h.process(stream, handle_order)

    async def handle_order(event: faust.EventT, decoded: Decoded) -> None:
        order_id = decoded.value["order_id"]
        raw = orders_table.get(order_id)
        record = desk.OrderRecord.from_dict(raw) if raw else None
        step = desk_steps[decoded.name](record, decoded.value, catalog, now_ms())
        await h.emit(
            [(wiring.lock_requests, r["sku"], "LineLockRequest", r) for r in step.requests]
            + [(wiring.decisions, d["order_id"], "OrderDecision", d) for d in step.decisions]
        )
        if step.problem:
            await h.dead_letter(event, step.problem, INVALID_EVENT)
        if not step.changed:
            return
        if step.record is None:
            orders_table.pop(order_id, None)
        else:
            orders_table[order_id] = step.record.to_dict()

    @app.timer(interval=catalog.rules.sweep_interval_s, name="sweep_orders")
    async def sweep_orders() -> None:
        """Ask the desk to expire unpaid locks past their TTL and forget old finished orders.
        Only this worker's active partitions are scanned; the desk re-checks every timer."""
        if app.rebalancing or not app.tables.actives_ready:
            return
        now = now_ms()
        due = []
        for order_id, raw in orders_table.items():
            kind = desk.due_timer(desk.OrderRecord.from_dict(raw), catalog, now)
            if kind:
                due.append((wiring.order_timers, order_id, "OrderTimer", {"order_id": order_id, "kind": kind, "due_at": now}))
        if due:
            await h.emit(due)

    # -- the stock keeper: SKU-keyed, owns the stock table -------------------------------------
    @app.agent(channel_of(wiring.lock_requests, wiring.inventory_commands), name="lock_stock_lines")
    async def lock_stock_lines(stream: faust.StreamT) -> None:
        await h.process(stream, update_stock)

    async def update_stock(event: faust.EventT, decoded: Decoded) -> None:
        value, sku, now = decoded.value, decoded.value["sku"], now_ms()
        raw = stock_table.get(sku)
        state = SkuState.from_dict(raw) if raw else None
        outputs: list[tuple[faust.TopicT, str, str, dict[str, Any]]] = []
        if decoded.name == "LineLockRequest":
            state, result, alerts = apply_line_request(state, value, catalog, now)
            if result is not None:
                outputs.append((wiring.lock_results, result["order_id"], "LineLockResult", result))
        else:
            try:
                state, applied, alerts = apply_command(state, value, catalog, now)
            except CommandError as exc:
                await h.dead_letter(event, str(exc), INVALID_COMMAND)
                return
            if not applied:
                return
        if state is None:
            await h.emit(outputs)
            return
        outputs += [(wiring.alerts, a["sku"], "InventoryAlert", a) for a in alerts]
        outputs += [(wiring.channel_stock, f"{u['channel']}:{u['sku']}", "ChannelStock", u)
                    for u in channel_stock_updates(state, catalog, now)]
        await h.emit(outputs)
        stock_table[sku] = state.to_dict()  # after the outputs are in Kafka; see the module docstring
