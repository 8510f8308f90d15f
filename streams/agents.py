"""Agents: decode a batch, run each event through a pure function from streams.engine, send the
batch's outputs, then write each touched table value once.

Pipeline (every hop keyed so the state it touches is owned by one partition's worker):
  orders.placed + lock.results + orders.events + order.timers (order_id)
      --order_desk [orders table]--> lock.requests (sku): LOCK, compensating RELEASE, COMMIT, SHIP
                                 \\--> orders.decisions (order_id)
  lock.requests + inventory.commands (sku)
      --lock_stock_lines [stock table]--> lock.results (order_id), inventory.alerts (sku),
                                          channels.stock (channel:sku), inventory.audit (sku),
                                          orders.decisions (order_id): single-SKU orders, which
                                          their one answer decides (two hops, not three)
  sweep_orders (timer) --> order.timers: unpaid locks past their TTL, finished orders to forget

A batch commits in this order (the embedded broker has no transactions):
  1. its outputs are sent and acknowledged, then the new table values' changelog records are sent
     and acknowledged (sent together, a kill between the two acknowledgements could leave a
     changelog naming a decision the decisions topic never got, and the replayed input would
     find it done and announce nothing; it also keeps a SKU state from naming an audit chain
     head the topic lacks, see streams/engine/audit.py);
  2. the local store (RocksDB) is written, with its persisted changelog offset, in one write
     batch per partition;
  3. the input events are acknowledged (Faust commits their offsets later).
The changelog is the state of record: the local store is never ahead of it, so whichever worker
recovers a partition (this one after a restart, another after a rebalance) rebuilds the same
state. Faust's own table write does the reverse (store first, changelog later), which let a
killed worker come back with values no other worker ever saw. After a crash the changelog may be
ahead of the committed input offset; the replayed input then finds its effect already in the
state (the dedup record lives in the same value), and everything that effect produced is already
in Kafka. Replays repeat answers with the same ids; consumers dedupe on them. Events are taken
per batch (``take_events``): one round of acknowledgements and one write per key per batch.
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass, field, fields
from typing import Any, Callable

import faust

from lockstock.acked import AckedProducer

from lockstock.clock import now_ms
from lockstock.codec import Decoded
from lockstock.deadletter import INVALID_COMMAND, INVALID_EVENT, PROCESSING_ERROR, UNDECODABLE, WRONG_RECORD, dead_letter
from lockstock.errors import CodecError
from streams.app import Wiring
from streams.tables import StateCache, assignment_epoch, store_key, table_value, write_stores
from streams.engine import audit
from streams.engine import orders as desk
from streams.engine.channels import channel_stock_updates
from streams.engine.commands import CommandError, apply_command
from streams.engine.state import SkuState
from streams.engine.stock import apply_line_request

logger = logging.getLogger(__name__)
SERVICE = "streams"
BATCH_MAX = 500  # events per batch
BATCH_WAIT_S = 0.005  # how long a partial batch waits for more events
EXIT_UNANNOUNCED = 70  # the worker's exit status when a batch could not be sent (EX_SOFTWARE)

Output = tuple[faust.TopicT, str, str, dict[str, Any]]  # topic, key, record name, value


@dataclass
class Batch:
    """What one batch of events produced: outputs to send, then table values to write."""

    outputs: list[Output] = field(default_factory=list)
    dead: list[tuple[faust.EventT, str, str]] = field(default_factory=list)  # event, reason, error type
    writes: dict[str, tuple[faust.EventT, Any]] = field(default_factory=dict)  # key -> (event, state or None)


class Handler:
    """Shared plumbing of the agents: decode or dead-letter, send, write tables."""

    def __init__(self, app: faust.App, wiring: Wiring) -> None:
        self.app = app
        self.w = wiring
        self.codec = wiring.kafka.codec
        # linger 1 ms: a batch's records are produced together anyway; each hop waits for acks.
        self.producer = AckedProducer(wiring.kafka, **{"linger.ms": 1})
        handles = (getattr(wiring, f.name) for f in fields(wiring))
        self.topic_names = {t: t.get_topic_name() for t in handles if isinstance(t, faust.TopicT)}
        topics = wiring.kafka.topics
        self.value_schemas = {name: topics.spec_of(name).value_schemas for name in self.topic_names.values()}

    async def emit(self, outputs: list[Output], cache: StateCache | None = None,
                   writes: dict[str, tuple[faust.EventT, Any]] | None = None) -> None:
        """Send outputs and wait until the broker has them; then the changelog records of
        ``writes``, likewise; then write the local store and the cache (the module docstring
        says why). Records go through one idempotent confluent-kafka producer: Faust's own send
        costs more per record than the decision it carries. The changelog bytes are the store
        bytes too, exactly what Faust's recovery writes back, so each value is encoded once."""
        records = []
        for topic, key, record, value in outputs:
            name = self.topic_names[topic]
            records.append((name, key.encode(), self.codec.encode(record, value, topic=name), None))
        changes = []
        assert cache is not None or not writes
        if writes:
            table = cache.table
            changelog = table.changelog_topic.get_topic_name()
            for key, (event, state) in writes.items():
                key_bytes, value = store_key(key), None if state is None else state.to_json()
                changes.append((key, key_bytes, state, value))
                records.append((changelog, key_bytes, value, event.message.partition))
        await self.producer.send_all(records[:len(outputs)])
        positions = await self.producer.send_all(records[len(outputs):])
        stored: dict[int, list[tuple[bytes, bytes | None]]] = {}
        persisted: dict[int, int] = {}
        for (key, key_bytes, state, value), (partition, offset) in zip(changes, positions):
            stored.setdefault(partition, []).append((key_bytes, value))
            persisted[partition] = max(offset, persisted.get(partition, -1))
        if changes:
            write_stores(cache.table, stored, persisted)
        for key, _, state, _ in changes:
            cache.put(key, state)

    def dead_output(self, event: faust.EventT, reason: str, error_type: str) -> Output:
        message = event.message
        logger.warning("dead-lettering %s[%s]@%s: %s", message.topic, message.partition, message.offset, reason)
        record = dead_letter(
            source_topic=message.topic, partition=message.partition, offset=message.offset,
            key=message.key, payload=message.value, reason=reason, error_type=error_type, service=SERVICE,
        )
        return self.w.deadletter, (message.key or b"").decode("utf-8", "replace"), "DeadLetter", record

    def decode(self, event: faust.EventT, batch: Batch) -> Decoded | None:
        """The event's value, if it is a record its topic carries (per the topic registry)."""
        topic = event.message.topic
        try:
            records = self.value_schemas[topic]
            return self.codec.decode_as(event.message.value, *records, topic=topic)
        except CodecError as exc:
            error_type = WRONG_RECORD if str(exc).startswith("expected ") else UNDECODABLE
            batch.dead.append((event, str(exc), error_type))
            return None

    async def process(self, stream: faust.StreamT, cache: StateCache,
                      handle: Callable[[faust.EventT, Decoded, Batch], None],
                      finish: Callable[[Batch], None] | None = None) -> None:
        """The agent loop. ``handle`` folds one event into the batch; a failure while handling one
        event dead-letters that event instead of stopping every other one (and drops the
        cached value it may have changed half-way). ``finish`` adds what depends only on each
        key's state at the end of the batch."""
        async for events in stream.take_events(BATCH_MAX, within=BATCH_WAIT_S):
            logger.debug("%s: batch of %d events", cache.table.name, len(events))
            cache.sync(assignment_epoch(self.app))
            batch = Batch()
            for event in events:
                decoded = self.decode(event, batch)
                if decoded is None:
                    continue
                try:
                    handle(event, decoded, batch)
                except Exception as exc:
                    logger.exception("handling %s failed", decoded.name)
                    batch.dead.append((event, f"{type(exc).__name__}: {exc}", PROCESSING_ERROR))
                    key = decoded.value.get(cache.key_field) if isinstance(decoded.value, dict) else None
                    if key is not None and key not in batch.writes:
                        cache.forget(key)
            if finish is not None:
                finish(batch)
            await self.announce(batch.outputs + [self.dead_output(*dead) for dead in batch.dead], cache, batch.writes)

    async def announce(self, outputs: list[Output], cache: StateCache, writes: dict[str, tuple[faust.EventT, Any]]) -> None:
        """``emit`` a batch, or stop the worker. Faust's ``take_events`` acknowledges a batch's
        events in a ``finally``, even when the agent failed or was cancelled, and then commits
        them: a batch whose effects are not in Kafka must never get that far. A cancellation
        (a graceful stop) waits for the batch to be announced; a failure exits at once, without
        committing, so the batch is replayed on restart."""
        sending = asyncio.ensure_future(self.emit(outputs, cache, writes))
        try:
            await asyncio.shield(sending)
        except asyncio.CancelledError:
            await sending
            raise
        except Exception:
            logger.critical("could not announce a batch of %s; stopping without committing it", cache.table.name, exc_info=True)
            for log_handler in logging.getLogger().handlers:  # os._exit skips the usual flush
                log_handler.flush()
            os._exit(EXIT_UNANNOUNCED)


def define_agents(app: faust.App, wiring: Wiring) -> None:
    h = Handler(app, wiring)
    catalog = wiring.catalog
    stock_table, orders_table = wiring.tables.stock, wiring.tables.orders
    stocks = StateCache(stock_table, SkuState.from_dict, key_field="sku")
    orders = StateCache(orders_table, desk.OrderRecord.from_dict, key_field="order_id")
    deadlines = desk.Deadlines(catalog)

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
        await h.process(stream, orders, handle_order)

    def handle_order(event: faust.EventT, decoded: Decoded, batch: Batch) -> None:
        order_id = decoded.value["order_id"]
        record = batch.writes[order_id][1] if order_id in batch.writes else orders.get(order_id, event.message.partition)
        step = desk_steps[decoded.name](record, decoded.value, catalog, now_ms())
        batch.outputs += [(wiring.lock_requests, r["sku"], "LineLockRequest", r) for r in step.requests]
        batch.outputs += [(wiring.decisions, d["order_id"], "OrderDecision", d) for d in step.decisions]
        if step.problem:
            batch.dead.append((event, step.problem, INVALID_EVENT))
        if step.changed:
            batch.writes[order_id] = (event, step.record)
            deadlines.note(order_id, step.record)

    @app.timer(interval=catalog.rules.sweep_interval_s, name="sweep_orders")
    async def sweep_orders() -> None:
        """Ask the desk to expire unpaid locks past their TTL and forget old finished orders.
        Only orders whose deadline passed are read (not the whole table every tick); the
        deadlines of this worker's active partitions are rebuilt after each rebalance. The desk
        re-checks every timer."""
        if app.rebalancing or not app.tables.actives_ready:
            return
        if deadlines.generation != app.rebalancing_count:  # see assignment_epoch
            deadlines.rebuild(app.rebalancing_count, (
                (order_id, desk.OrderRecord.from_dict(table_value(raw))) for order_id, raw in orders_table.items()))
        now = now_ms()
        due = []
        for order_id in deadlines.passed(now):
            raw = table_value(orders_table.get(order_id))
            kind = desk.due_timer(desk.OrderRecord.from_dict(raw), catalog, now) if raw else None
            if kind:
                due.append((wiring.order_timers, order_id, "OrderTimer", {"order_id": order_id, "kind": kind, "due_at": now}))
            elif raw is None:
                deadlines.forget(order_id)
        if due:
            await h.emit(due)

    # -- the stock keeper: SKU-keyed, owns the stock table -------------------------------------
    @app.agent(channel_of(wiring.lock_requests, wiring.inventory_commands), name="lock_stock_lines")
    async def lock_stock_lines(stream: faust.StreamT) -> None:
        await h.process(stream, stocks, update_stock, announce_channel_stock)

    def update_stock(event: faust.EventT, decoded: Decoded, batch: Batch) -> None:
        value, sku, now = decoded.value, decoded.value["sku"], now_ms()
        state = batch.writes[sku][1] if sku in batch.writes else stocks.get(sku, event.message.partition)
        before = audit.balances(state)
        if decoded.name == "LineLockRequest":
            state, result, alerts = apply_line_request(state, value, catalog, now)
            if result is not None:
                batch.outputs.append((wiring.lock_results, result["order_id"], "LineLockResult", result))
                if desk.decided_by_stock_keeper(result):
                    batch.outputs.append((wiring.decisions, result["order_id"], "OrderDecision",
                                          desk.single_line_decision(result)))
            movement = audit.line_movement(value, result, alerts)
        else:
            try:
                state, applied, alerts = apply_command(state, value, catalog, now)
            except CommandError as exc:
                batch.dead.append((event, str(exc), INVALID_COMMAND))
                return
            if not applied:
                return
            movement = audit.command_movement(value, alerts)
        if state is None:
            return
        at = int(event.message.timestamp * 1000) if event.message.timestamp else now
        record = audit.append_movement(state, before, at=at, **movement)
        if record is not None:
            batch.outputs.append((wiring.audit, sku, "AuditRecord", record))
        batch.outputs += [(wiring.alerts, a["sku"], "InventoryAlert", a) for a in alerts]
        batch.writes[sku] = (event, state)

    def announce_channel_stock(batch: Batch) -> None:
        """Each changed SKU's per-channel quantities once per batch, as of the batch's end: the
        topic is compacted and a marketplace only needs the latest figure, so the values a hot
        SKU passed through within a few milliseconds are not worth a record each."""
        now = now_ms()
        for _, state in batch.writes.values():
            if state is not None:
                batch.outputs += [(wiring.channel_stock, f"{u['channel']}:{u['sku']}", "ChannelStock", u)
                                  for u in channel_stock_updates(state, catalog, now)]

