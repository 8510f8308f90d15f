"""Agents: move records between Kafka and the pure folds of streams/folds.py, one batch at a time.

Each agent takes a batch of events, decodes each (or dead-letters it), runs it through its fold
inside the batch's table transaction, seals it, and hands its commit (streams/transaction.py:
effects, then changelog, then the local store, then answers) to the pipeline of
streams/pipeline.py while it takes the next batch. Only once the commit is done may Faust
acknowledge the batch's events. streams/topology.py declares which topics each agent
reads and writes, and docs/topology.md draws it.

After a crash the changelog may be ahead of the committed input offset; the replayed input then
finds its effect already in the state (the dedup record is committed with the counts it
protects), and everything that effect produced is already in Kafka. Replays repeat answers with
the same ids; consumers dedupe on them.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Iterator

import faust

from lockstock.acked import AckedProducer
from lockstock.clock import now_ms
from lockstock.deadletter import UNDECODABLE, WRONG_RECORD, dead_letter
from lockstock.errors import CodecError, WrongRecordError
from lockstock.kafka import key_partition
from lockstock.metrics.worker import MeteredProducer, WorkerMetrics
from lockstock.topics import DEADLETTER, LOCK_REQUESTS, TopicSpec
from streams.app import Wiring
from streams.batch import Finish, Fold, run_batch
from streams.engine import orders as desk
from streams.engine.state import SkuState
from streams.envelopes import pack, unpack
from streams.folds import (
    ORDER_KEY, STOCK_KEY, ChannelStockDue, Event, Output, Problem, due_timer, fold_order, fold_stock,
)
from streams.pipeline import Pipeline
from streams.tables import assignment_epoch, heads, table_value
from streams.take import take_batches
from streams.topology import TOPOLOGY
from streams.transaction import TableStore, TableTransaction

logger = logging.getLogger(__name__)
SERVICE = "streams"
BATCH_MAX = 500  # events per batch
PARTITION_MEMORY = 100_000  # keys whose partition is remembered
SETTLE_WAIT_S = 0.1  # while a rebalance is under way, how often work due by time looks again

Record = tuple[str, bytes, bytes, None]  # topic, key, value, partition (the producer's choice)


class Handler:
    """Shared plumbing of the agents: decode or dead-letter, fold, commit."""

    def __init__(self, app: faust.App, wiring: Wiring) -> None:
        self.app = app
        self.catalog = wiring.catalog
        self.codec = wiring.kafka.codec
        self.metrics = WorkerMetrics.of(app)
        changelogs = [table.changelog_topic.get_topic_name() for table in (wiring.tables.stock, wiring.tables.orders)]
        # linger 1 ms: a batch's records are produced together anyway; each hop waits for acks.
        self.producer = MeteredProducer(AckedProducer(wiring.kafka, **{"linger.ms": 1}), self.metrics, changelogs)
        topics = wiring.kafka.topics
        self.names = {spec: spec.name(topics.prefix) for _, spec in topics}
        self.value_schemas = {name: spec.value_schemas for name, spec in topics}
        self.partition_count = wiring.kafka.settings.partitions  # every SKU- and order-keyed topic has it
        self.partitions: dict[str, int] = {}

    def encode(self, output: Output) -> Record:
        name = self.names[output.topic]
        return name, output.key.encode(), self.codec.encode(output.record, output.value, topic=name), output.partition

    def partition_of(self, topic: TopicSpec, key: str) -> int:
        """The partition ``key`` routes to on ``topic`` (SKUs repeat: remembered)."""
        try:
            return self.partitions[key]
        except KeyError:
            if len(self.partitions) > PARTITION_MEMORY:
                self.partitions.clear()
            partition = self.partitions[key] = key_partition(key.encode(), self.partition_count)
            return partition

    def dead_record(self, event: faust.EventT, problem: Problem) -> Record:
        message = event.message
        logger.warning("dead-lettering %s[%s]@%s: %s", message.topic, message.partition, message.offset, problem.reason)
        record = dead_letter(
            source_topic=message.topic, partition=message.partition, offset=message.offset, key=message.key,
            payload=message.value, reason=problem.reason, error_type=problem.error_type, service=SERVICE,
        )
        return self.encode(Output(DEADLETTER, (message.key or b"").decode("utf-8", "replace"), "DeadLetter", record))

    def lines(self, events: list[faust.EventT]) -> Iterator[tuple[faust.EventT, Event | Problem]]:
        """Each event's lines as a fold takes them (an envelope carries many), if it is a record
        its topic carries (per the topic registry); else why not."""
        for event in events:
            message = event.message
            try:
                decoded = self.codec.decode_as(message.value, *self.value_schemas[message.topic], topic=message.topic)
            except CodecError as exc:
                yield event, Problem(str(exc), WRONG_RECORD if isinstance(exc, WrongRecordError) else UNDECODABLE)
                continue
            at = int(message.timestamp * 1000) if message.timestamp else None
            for record, value in unpack(decoded.name, decoded.value):
                yield event, Event(message.partition, message.offset, at, record, value)

    async def process(self, agent: str, stream: faust.StreamT, store: TableStore, fold: Fold,
                      finish: Finish | None = None, due: ChannelStockDue | None = None) -> None:
        """The agent loop: a batch of events through ``fold`` (streams/batch.py), sealed, and its
        commit handed to the pipeline while the next batch is taken (streams/pipeline.py). The
        topology names the outputs that are answers, sent after the changelog. ``due``: channel
        stock owed by time, which may run a batch without events."""
        pipeline = Pipeline(self.producer)
        answer_topics = TOPOLOGY.agent(agent).answers
        def wake_in() -> float | None:  # a new assignment owes every SKU's figures at once
            assert due is not None
            return 0.0 if assignment_epoch(self.app) != store.cache.epoch else due.next_due(now_ms())

        try:
            async for events in take_batches(stream, BATCH_MAX, wake_in if due is not None else None):
                epoch = assignment_epoch(self.app)
                if not events and (epoch[1] or not self.app.tables.actives_ready):
                    await asyncio.sleep(SETTLE_WAIT_S)  # what is due waits for the assignment to settle
                    continue
                if epoch != store.cache.epoch or epoch[1]:
                    await pipeline.drain()  # a new assignment starts from what is in the store
                    if due is not None and not epoch[1]:
                        due.owe_all(((sku, self.partition_of(LOCK_REQUESTS, sku)) for sku, _ in heads(store.table)),
                                    now_ms())
                store.sync(epoch)
                tx = store.begin(now_ms())
                result = run_batch(tx, self.lines(events), fold, self.catalog, now_ms, finish)
                packed = pack(result.outputs, self.partition_of)
                records = [self.encode(o) for o in packed if o.topic not in answer_topics]
                answers = [self.encode(o) for o in packed if o.topic in answer_topics]
                records += [self.dead_record(event, problem) for event, problem in result.dead]
                pipeline.submit(tx, records, stream, events, answers)
                self.metrics.count_batch(store.name, len(events), result.outputs, (p for _, p in result.dead))
                await pipeline.throttle()
        finally:
            # A graceful stop lets the commits in flight finish (their events are then acknowledged).
            await pipeline.drain()

    async def send(self, outputs: list[Output]) -> None:
        """Outputs that change no table (the sweeper's timers), acknowledged before returning."""
        await self.producer.send_all([self.encode(o) for o in outputs])


def define_agents(app: faust.App, wiring: Wiring) -> None:
    h = Handler(app, wiring)
    catalog = wiring.catalog
    orders_table = wiring.tables.orders
    stocks = TableStore(wiring.tables.stock, SkuState.from_dict, STOCK_KEY,
                        retention_ms=catalog.rules.order_retention_s * 1000)
    orders = TableStore(orders_table, desk.OrderRecord.from_dict, ORDER_KEY)
    deadlines = desk.Deadlines(catalog)

    def channel_of(agent: str) -> faust.TopicT:
        names = [h.names[spec] for spec in TOPOLOGY.agent(agent).inputs]
        return app.topic(*names, key_type=bytes, value_type=bytes, internal=False)

    # -- the order desk: order-keyed, owns the orders table -----------------------------------
    @app.agent(channel_of("order_desk"), name="order_desk")
    async def order_desk(stream: faust.StreamT) -> None:
        await h.process("order_desk", stream, orders, fold_order, note_deadlines)

    def note_deadlines(tx: TableTransaction) -> list[Output]:
        for order_id, (_, record) in tx.heads.items():
            deadlines.note(order_id, record)
        return []

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
            timer = due_timer(order_id, desk.OrderRecord.from_dict(raw) if raw else None, catalog, now)
            if timer is not None:
                due.append(timer)
            elif raw is None:
                deadlines.forget(order_id)
        if due:
            await h.send(due)

    # -- the stock keeper: SKU-keyed, owns the stock table -------------------------------------
    channel_stock = ChannelStockDue(catalog)

    @app.agent(channel_of("lock_stock_lines"), name="lock_stock_lines")
    async def lock_stock_lines(stream: faust.StreamT) -> None:
        await h.process("lock_stock_lines", stream, stocks, fold_stock,
                        lambda tx: channel_stock.finish(tx, now_ms()), channel_stock)

