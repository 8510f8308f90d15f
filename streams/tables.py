"""Faust tables. Values are the JSON of ``streams.engine`` state objects, kept as bytes: the
agents write the changelog and the store themselves (streams/agents.py), and raw values spare
every standby replica and every recovery from decoding each changelog record into Python objects
only to store its bytes again (with two workers, 5.6 -> 4.5 s of CPU per worker for an
8,000-order burst; docs/benchmarks.md). Read them with ``table_value``."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import faust
import orjson
import rocksdict

from lockstock.topics import TABLES
from streams.lines import heads_in


@dataclass
class Tables:
    stock: faust.TableT  # sku -> SkuState head, [sku, kind, id] -> line record; partitioned like lock.requests
    orders: faust.TableT  # order_id -> OrderRecord dict; partitioned like every order-keyed topic


def define_tables(app: faust.App, partitions: int) -> Tables:
    def table(name: str, help: str) -> faust.TableT:
        assert name in TABLES, f"table {name} missing from lockstock.topics.TABLES"
        return app.Table(
            name, partitions=partitions, value_type=bytes,  # keys: str as JSON (Faust's default)
            help=help,
        )

    return Tables(
        stock=table("stock", "Per SKU: a head (allocations, flex pool, limits, alert state) and a record per "
                             "order line, buyer tally and command (streams/lines.py)."),
        orders=table("orders", "Per order: its lines' outcomes, decision and lifecycle status."),
    )


class StateCache:
    """Decoded table values of the keys this worker touched, so a hot key (a best-selling SKU,
    an order between its placement and its answer) is decoded from the store once rather than
    once per batch. The agents write through it: every value they persist is put back here.

    Valid for one partition assignment only: a rebalance may hand a partition to another worker,
    and the recovery that follows rewrites the store from the changelog, so ``sync`` drops
    everything when the ``assignment_epoch`` changes (and keeps nothing while one is under way).
    Bounded: the least recently written half goes when it holds ``limit`` values."""

    def __init__(self, table: faust.TableT, decode: Callable[[dict[str, Any]], Any], key_field: str,
                 limit: int = 50_000, read: Callable[[bytes, int], bytes | None] | None = None) -> None:
        self.table = table
        # (store key, partition) -> raw value: the store, or what a sealed batch left for it (TableStore.stored)
        self.read = read or functools.partial(stored_value, table)
        self.key_field = key_field  # the field of an input record that names its key
        self.decode = decode
        self.limit = limit
        self.epoch: Any = None
        self.values: dict[str, Any] = {}

    def sync(self, epoch: Any) -> bool:
        """Drop everything when the assignment changed (or is changing); True if it did."""
        if epoch != self.epoch or epoch[1]:
            self.values.clear()
            self.epoch = epoch
            return True
        return False

    def get(self, key: str, partition: int | None = None) -> Any:
        """The decoded value, or None when the table has none. ``partition``: the one the key
        lives in (the agents know it from the event), read with a single store lookup."""
        try:
            return self.values[key]
        except KeyError:
            raw = table_value(self.table.get(key) if partition is None else self.read(store_key(key), partition))
            value = self.decode(raw) if raw else None
            if value is not None:
                self.values[key] = value
            return value

    def put(self, key: str, value: Any) -> None:
        self.values.pop(key, None)  # re-inserted last: insertion order is write recency
        if value is not None:
            self.values[key] = value
            if len(self.values) > self.limit:
                for stale in list(self.values)[: self.limit // 2]:
                    del self.values[stale]

    def forget(self, key: str) -> None:
        """Drop a value a failed handler may have changed half-way (the store still has the truth)."""
        self.values.pop(key, None)


def table_value(raw: bytes | None) -> dict[str, Any] | None:
    """A table value as the plain dict its state object reads (``from_dict``)."""
    return None if raw is None else orjson.loads(raw)


def stored_value(table: faust.TableT, key: bytes, partition: int) -> bytes | None:
    """The raw value under store key ``key`` in the local store of ``partition``: one RocksDB
    get. Faust's own lookup outside an event's context asks every partition's database, twice
    (contains, then get), which made the stores a tenth of the worker's time."""
    return table.data._db_for_partition(partition).get(key)


def store_key(key: str) -> bytes:
    """A table key as the store and the changelog hold it: JSON, Faust's key serializer."""
    return orjson.dumps(key)


def write_stores(table: faust.TableT, values: dict[int, list[tuple[bytes, bytes | None]]],
                 persisted: dict[int, int]) -> None:
    """Write each partition's new values (None deletes) and its persisted changelog offset to
    the table's local store in one RocksDB write batch, as Faust's own changelog recovery
    writes them (``apply_changelog_batch``): one write per partition instead of a put per key
    plus one for the offset, and the offset never lands without the values it covers. No
    changelog record: the agents (``streams.agents.Handler.emit``) sent those."""
    store = table.data
    for partition, items in values.items():
        batch = rocksdict.WriteBatch(raw_mode=True)  # Faust opens its databases in raw mode
        for key, value in items:
            if value is None:
                batch.delete(key)
            else:
                batch.put(key, value)
        batch.put(store.offset_key, str(persisted[partition]).encode())
        store._db_for_partition(partition).write(batch)


def assignment_epoch(app: faust.App) -> tuple[int, bool]:
    """Names this worker's partition assignment: (rebalances this worker went through, rebalancing
    now). Faust counts every rebalance itself, so this does not depend on which generation ids a
    broker hands out (the embedded broker starts every group at 0 and gave two workers that
    joined together the same one)."""
    return app.rebalancing_count, bool(app.rebalancing)


def heads(table: faust.TableT) -> Iterator[tuple[str, bytes]]:
    """(sku, raw head) of every SKU in this worker's active partitions of the stock table, without
    walking their line records: heads sort before them (streams/lines.py)."""
    for db in table.data._dbs_for_actives():
        yield from heads_in(db)
