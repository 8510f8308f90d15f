"""The whole lock engine in memory: the folds, the batch runner and the table transactions the
worker runs, over in-memory topics and real RocksDB stores, with no broker and no Faust app. Tests
drive whole flows with it, crash a commit after any record and restart from the changelog, the
way bytewax's testing runner drives a dataflow.

    flow = MemoryFlow(catalog, tmp_path)
    flow.send(INVENTORY_COMMANDS, "SKU-1", "InventoryCommand", {...})
    flow.send(ORDERS_PLACED, "o-1", "OrderPlaced", {...})
    flow.run()
    flow.values(ORDERS_DECISIONS)

Topics are named by their registry suffix; a record's value is (Avro record name, dict), or bytes
that no record decodes from (bad input). Each agent takes its inputs one partition at a time.
"""

from __future__ import annotations

import shutil
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import rocksdict
from faust.stores.rocksdb import Store

from lockstock.catalog import Catalog
from lockstock.clock import now_ms
from lockstock.deadletter import UNDECODABLE
from lockstock.topics import DEADLETTER, TopicSpec, changelog_topic
from streams.batch import Finish, Fold, run_batch
from streams.engine.orders import OrderRecord
from streams.envelopes import pack, unpack
from streams.engine.state import SkuState
from streams.folds import ORDER_KEY, STOCK_KEY, ChannelStockDue, Event, Output, Problem, fold_order, fold_stock
from streams.lines import heads_in
from streams.tables import store_key
from streams.topology import TOPOLOGY
from streams.transaction import TableStore, TableTransaction


class Crashed(Exception):
    """The process "died" while its producer was sending (MemoryLog.crash_after)."""


class MemoryLog:
    """Topics as lists per partition; the producer the transactions send through."""

    def __init__(self, partitions: int) -> None:
        self.partitions = partitions
        self.topics: dict[str, dict[int, list[tuple[bytes, Any]]]] = {}
        self.arrival: dict[tuple[str, int, int], int] = {}  # (topic, partition, offset) -> order of arrival
        self.crash_after: int | None = None  # records still accepted before the "process dies"

    def partition_of(self, key: bytes) -> int:
        return zlib.crc32(key) % self.partitions

    def append(self, topic: str, key: bytes, value: Any, partition: int | None = None) -> tuple[int, int]:
        if partition is None:
            partition = self.partition_of(key)
        records = self.topics.setdefault(topic, {}).setdefault(partition, [])
        records.append((key, value))
        self.arrival[(topic, partition, len(records) - 1)] = len(self.arrival)
        return partition, len(records) - 1

    async def send_all(self, records: list[tuple[str, bytes, Any, int | None]]) -> list[tuple[int, int]]:
        positions = []
        for topic, key, value, partition in records:
            if self.crash_after is not None:
                if self.crash_after == 0:
                    raise Crashed(f"killed before sending to {topic}")
                self.crash_after -= 1
            positions.append(self.append(topic, key, value, partition))
        return positions

    def records(self, topic: str, partition: int) -> list[tuple[bytes, Any]]:
        return self.topics.get(topic, {}).get(partition, [])


MEMORY_APP_ID = "memory"  # the app id the in-memory tables' changelogs are named under


class MemoryTable:
    """What a TableStore needs of a Faust table: a name, a changelog topic, and one raw-mode
    RocksDB per partition with Faust's persisted-offset key (``data``)."""

    offset_key = Store.offset_key

    def __init__(self, name: str, root: Path) -> None:
        self.name, self.root = name, root
        self.changelog_topic = self  # get_topic_name, as Faust's changelog topic answers it
        self.data = self
        self.dbs: dict[int, rocksdict.Rdict] = {}

    def get_topic_name(self) -> str:
        return changelog_topic(MEMORY_APP_ID, self.name)

    def _db_for_partition(self, partition: int) -> rocksdict.Rdict:
        if partition not in self.dbs:
            self.dbs[partition] = rocksdict.Rdict(str(self.root / f"{self.name}-{partition}"),
                                                  options=rocksdict.Options(raw_mode=True))
        return self.dbs[partition]

    def recover(self, log: MemoryLog) -> None:
        """Faust's recovery: apply the changelog after each partition's persisted offset."""
        for partition in range(log.partitions):
            db = self._db_for_partition(partition)
            held = db.get(self.offset_key)
            start = int(held) + 1 if held is not None else 0
            records = log.records(self.get_topic_name(), partition)
            for key, value in records[start:]:
                if value is None:
                    db.delete(key)
                else:
                    db.put(key, value)
            if len(records) > start:
                db.put(self.offset_key, str(len(records) - 1).encode())

    def close(self) -> None:
        for db in self.dbs.values():
            db.close()
        self.dbs = {}

    def value(self, key: str) -> bytes | None:
        """``key``'s stored head, whichever partition holds it."""
        for db in self.dbs.values():
            raw = db.get(store_key(key))
            if raw is not None:
                return raw
        return None


@dataclass
class MemoryAgent:
    name: str
    fold: Fold
    table: str
    key_field: str
    finish: Callable[["MemoryFlow"], Finish | None] = lambda flow: None
    inputs: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        self.inputs = tuple(spec.suffix for spec in TOPOLOGY.agent(self.name).inputs)


@dataclass
class MemoryFlow:
    catalog: Catalog
    root: Path
    partitions: int = 4
    batch_max: int = 500
    clock: Callable[[], int] = now_ms
    log: MemoryLog = field(init=False)
    restarts: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self.log = MemoryLog(self.partitions)
        self._crash: tuple[str, int] | None = None
        self.agents = [
            MemoryAgent("order_desk", fold_order, "orders", ORDER_KEY),
            MemoryAgent("lock_stock_lines", fold_stock, "stock", STOCK_KEY,
                        finish=lambda flow: lambda tx: flow.channel_stock.finish(tx, flow.clock())),
        ]
        self.committed: dict[tuple[str, str, int], int] = {}  # (agent, topic, partition) -> next offset
        self._open(fresh=True)

    def _open(self, fresh: bool) -> None:
        state_dir = self.root / f"state-{self.restarts}"
        previous = self.root / f"state-{self.restarts - 1}"
        if not fresh and previous.exists():
            shutil.copytree(previous, state_dir)
        self.tables = {name: MemoryTable(name, state_dir) for name in ("stock", "orders")}
        for table in self.tables.values():
            table.recover(self.log)
        retention_ms = self.catalog.rules.order_retention_s * 1000
        self.stores = {
            "stock": TableStore(self.tables["stock"], SkuState.from_dict, STOCK_KEY, retention_ms=retention_ms),
            "orders": TableStore(self.tables["orders"], OrderRecord.from_dict, ORDER_KEY),
        }
        # A new process owes every SKU its channel figures, as a worker does after an assignment.
        self.channel_stock = ChannelStockDue(self.catalog)
        self.channel_stock.owe_all(((sku, partition) for partition, db in self.tables["stock"].dbs.items()
                                    for sku, _ in heads_in(db)), self.clock())

    # -- input ----------------------------------------------------------------------------------

    def send(self, topic: TopicSpec, key: str, record: str, value: dict[str, Any]) -> None:
        self.log.append(topic.suffix, key.encode(), (record, value))

    def send_raw(self, topic: TopicSpec, key: str, payload: bytes) -> None:
        """A record that decodes as nothing (bad input)."""
        self.log.append(topic.suffix, key.encode(), payload)

    # -- running --------------------------------------------------------------------------------

    def run(self, max_batches: int = 100_000) -> int:
        """Run batches until no agent has input left and no channel figures are due; the number
        of batches run."""
        for count in range(max_batches):
            if not self.step() and not self.announce_due():
                return count
        raise AssertionError(f"still busy after {max_batches} batches")

    def step(self, only: str | None = None, only_partition: int | None = None) -> bool:
        """One batch of the first agent partition with input waiting (of agent ``only``, of
        ``only_partition``, if given); False when none has any."""
        partitions = range(self.partitions) if only_partition is None else (only_partition,)
        for agent in self.agents:
            if only is not None and agent.name != only:
                continue
            for partition in partitions:
                pending = self._pending(agent, partition)
                if pending:
                    self._batch(agent, partition, pending[: self.batch_max])
                    return True
        return False

    def announce_due(self) -> bool:
        """A batch without input for the channel figures due by now, as the stock keeper runs
        one when its interval passed; False when none are due."""
        if self.channel_stock.next_due(self.clock()) != 0:
            return False
        keeper = next(agent for agent in self.agents if agent.name == "lock_stock_lines")
        self._batch(keeper, 0, [])
        return True

    def _pending(self, agent: MemoryAgent, partition: int) -> list[tuple[str, int, bytes, Any]]:
        pending = []
        for topic in agent.inputs:
            start = self.committed.get((agent.name, topic, partition), 0)
            pending += [(topic, start + i, key, value)
                        for i, (key, value) in enumerate(self.log.records(topic, partition)[start:])]
        return sorted(pending, key=lambda p: self.log.arrival[(p[0], partition, p[1])])  # as they arrived

    def _batch(self, agent: MemoryAgent, partition: int, events: list[tuple[str, int, bytes, Any]]) -> None:
        store = self.stores[agent.table]
        store.sync((self.restarts, False))
        tx = store.begin(self.clock())
        items = [((topic, offset, key, value), line) for topic, offset, key, value in events
                 for line in self._lines(partition, offset, value)]
        result = run_batch(tx, items, agent.fold, self.catalog, self.clock, agent.finish(self))
        outputs = pack(result.outputs, lambda topic, key: self.log.partition_of(key.encode()))
        answer_topics = TOPOLOGY.agent(agent.name).answers
        records = [self._record(o) for o in outputs if o.topic not in answer_topics]
        answers = [self._record(o) for o in outputs if o.topic in answer_topics]
        for (topic, offset, key, _), problem in result.dead:
            dead = {"source_topic": topic, "offset": offset, "reason": problem.reason, "error_type": problem.error_type}
            records.append((DEADLETTER.suffix, key, ("DeadLetter", dead), None))
        if self._crash is not None and self._crash[0] == agent.name:
            self.log.crash_after, self._crash = self._crash[1], None
        self._commit(tx, records, answers)
        for topic, offset, _, _ in events:
            self.committed[(agent.name, topic, partition)] = offset + 1

    @staticmethod
    def _record(output: Output) -> tuple[str, bytes, tuple[str, dict[str, Any]], int | None]:
        return output.topic.suffix, output.key.encode(), (output.record, output.value), output.partition

    def _commit(self, tx: TableTransaction, records: list, answers: list) -> None:
        coroutine = tx.commit(self.log, records, answers=answers)
        try:
            coroutine.send(None)  # the memory log never waits: the commit finishes in one step
        except StopIteration:
            return
        raise AssertionError("a memory commit waited")

    @staticmethod
    def _lines(partition: int, offset: int, value: Any) -> list[Event | Problem]:
        if not isinstance(value, tuple):
            return [Problem(f"not a record: {bytes(value[:16])!r}", UNDECODABLE)]
        return [Event(partition, offset, None, record, fields) for record, fields in unpack(*value)]

    # -- crashes ----------------------------------------------------------------------------------

    def crash_during_next_commit(self, agent: str, after_records: int) -> None:
        """``agent``'s next commit "dies" once it sent ``after_records`` records (outputs, then
        changelog: line records, then heads, then answers)."""
        self._crash = (agent, after_records)

    def restart(self, fresh_state: bool = False) -> None:
        """A new process: the stores recovered from the changelog (from an empty state directory
        with ``fresh_state``), every cache empty, input replayed from the committed offsets."""
        self.log.crash_after, self._crash = None, None
        for table in self.tables.values():
            table.close()
        self.restarts += 1
        self._open(fresh=fresh_state)

    # -- output -----------------------------------------------------------------------------------

    def values(self, topic: TopicSpec) -> list[dict[str, Any]]:
        """Every record on ``topic`` (an envelope's lines one by one), partition by partition."""
        return [line for partition in range(self.partitions) for _, value in self.log.records(topic.suffix, partition)
                for _, line in unpack(*value)]

    def changelog(self, table: str) -> list[tuple[bytes, bytes | None]]:
        name = self.tables[table].get_topic_name()
        return [record for partition in range(self.partitions) for record in self.log.records(name, partition)]
