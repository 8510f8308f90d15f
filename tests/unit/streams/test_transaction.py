"""The table transaction's commit protocol (streams/transaction.py) over real RocksDB stores and
an in-memory log: the order of the changelog, offsets that go backwards, heads of the first
table format."""

from __future__ import annotations

import asyncio
from functools import partial

import orjson
import pytest

from lockstock.topics import changelog_topic
from streams.engine.state import LINE, BUYER, SkuState
from streams.engine.stock import lock_order_line
from streams.lines import is_line_key
from streams.memory import MEMORY_APP_ID, MemoryLog, MemoryTable
from streams.tables import store_key
from streams.transaction import OffsetWentBackwards, TableStore
from tests.builders import CATALOG, line_lock_request

NOW = 1_800_000_000_000


def stock_store(tmp_path) -> tuple[TableStore, MemoryTable]:
    table = MemoryTable("stock", tmp_path)
    store = TableStore(table, SkuState.from_dict, "sku", retention_ms=86_400_000)
    store.sync((0, False))
    return store, table


def first_lock(tmp_path):
    """A store, its table, a log and a batch that creates SKU A (5 units in the US) and locks o1."""
    store, table = stock_store(tmp_path)
    tx = store.begin(NOW)
    state = SkuState(sku="A", total=5)
    state.region("US").allocation = 5
    tx.write("A", 0, state)
    lock_order_line(tx.read("A", 0), request("o1"), CATALOG, NOW)
    return store, table, MemoryLog(1), tx


request = partial(line_lock_request, channel="shopify", placed_at=NOW)  # this module's orders: 1 unit on shopify


def test_line_records_are_sent_before_the_head_that_commits_them(tmp_path):
    store, table, log, tx = first_lock(tmp_path)
    asyncio.run(tx.commit(log, []))
    keys = [key for key, _ in log.records(changelog_topic(MEMORY_APP_ID, "stock"), 0)]
    assert [is_line_key(k) for k in keys] == [True, True, False]
    head = orjson.loads(table._db_for_partition(0).get(store_key("A")))
    assert head["version"] == 1 and head["open_reservations"] == 1
    version, after, before = orjson.loads(log.records(changelog_topic(MEMORY_APP_ID, "stock"), 0)[0][1])
    assert (version, after[0], before) == (1, "H", None)


def test_a_store_write_whose_offset_goes_backwards_is_refused(tmp_path):
    store, table = stock_store(tmp_path)
    table._db_for_partition(0).put(table.offset_key, b"41")  # the store already holds offset 41

    class Behind(MemoryLog):
        async def send_all(self, records):
            return [(0, 40) for _ in records]

    tx = store.begin(NOW)
    tx.write("A", 0, SkuState(sku="A"))
    with pytest.raises(OffsetWentBackwards, match="40 is not past the persisted 41"):
        asyncio.run(tx.commit(Behind(1), []))
    assert table._db_for_partition(0).get(store_key("A")) is None  # nothing written


def test_a_head_of_the_first_format_moves_its_records_out_on_first_touch(tmp_path):
    store, table = stock_store(tmp_path)
    legacy = SkuState(sku="A", total=5).to_dict()
    legacy["regions"] = {"US": [5, 1, 0, 0, 1.0, False, False]}
    legacy.update(reservations={"o1": [1, "US", "b1", "shopify", False]}, history={"o0": "REJECTED:OUT_OF_STOCK"},
                  buyers={"b1": 1}, applied_commands=["set-1"])
    del legacy["open_reservations"], legacy["version"]
    table._db_for_partition(0).put(store_key("A"), orjson.dumps(legacy))
    tx = store.begin(NOW)
    state = tx.read("A", 0)
    assert state.open_reservations == 1 and state.held("o1").buyer == "b1"
    _, outcome, _ = lock_order_line(state, request("o1"), CATALOG, NOW)  # a redelivery: the legacy hold answers
    assert outcome.replayed and state.regions["US"].locked == 1
    asyncio.run(tx.commit(MemoryLog(1), []))
    db = table._db_for_partition(0)
    head = orjson.loads(db.get(store_key("A")))
    assert "reservations" not in head and head["open_reservations"] == 1
    assert orjson.loads(db.get(orjson.dumps(["A", LINE, "o0"])))[1][:2] == ["F", "REJECTED:OUT_OF_STOCK"]
    assert orjson.loads(db.get(orjson.dumps(["A", BUYER, "b1"])))[1] == [1, None]


def test_the_next_batch_reads_what_a_sealed_batch_staged_before_its_commit(tmp_path):
    store, table, log, first = first_lock(tmp_path)  # a SKU the first batch creates
    first.seal_batch()
    store.cache.values.clear()  # even without the cache: the sealed values are pending for the store

    second = store.begin(NOW)
    head = second.read("A", 0)
    assert head.version == 1 and head.open_reservations == 1 and head.held("o1").qty == 1
    assert table._db_for_partition(0).get(store_key("A")) is None  # not in the store yet
    _, outcome, _ = lock_order_line(head, request("o1"), CATALOG, NOW)  # a redelivery repeats its answer
    assert outcome.replayed
    lock_order_line(head, request("o2"), CATALOG, NOW)
    second.seal_batch()

    async def both():
        committing = asyncio.ensure_future(first.commit(log, []))
        await second.commit(log, [], after=committing)

    asyncio.run(both())
    versions = [orjson.loads(value)["version"] if not is_line_key(key) else orjson.loads(value)[0]
                for key, value in log.records(changelog_topic(MEMORY_APP_ID, "stock"), 0)]
    assert versions == sorted(versions) and versions[-1] == 2  # the first batch's records, then the second's
    assert store.pending == {}
    stored = orjson.loads(table._db_for_partition(0).get(store_key("A")))
    assert stored["version"] == 2 and stored["open_reservations"] == 2
