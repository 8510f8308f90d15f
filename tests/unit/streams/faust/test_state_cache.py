"""StateCache: the agents' decoded table values, valid for one partition assignment."""

from __future__ import annotations

import orjson

from streams.tables import StateCache


class Table(dict):
    """A table's values are JSON bytes (streams/tables.py)."""

    name = "stock"

    def __init__(self, **values):
        super().__init__({k: orjson.dumps(v) for k, v in values.items()})

    def __setitem__(self, key, value):
        super().__setitem__(key, orjson.dumps(value))


def decode(raw):
    return {"decoded": raw["n"]}


def test_a_value_is_decoded_once_and_then_served_from_the_cache():
    table = Table(a={"n": 1})
    cache = StateCache(table, decode, key_field="sku")
    cache.sync((1, False))
    first = cache.get("a")
    table["a"] = {"n": 2}  # the store changed behind the cache's back...
    assert cache.get("a") is first  # ...which only a rebalance can do, and sync notices that
    assert cache.get("missing") is None


def test_a_new_assignment_drops_every_value_and_a_rebalance_keeps_none():
    table = Table(a={"n": 1})
    cache = StateCache(table, decode, key_field="sku")
    cache.sync((1, False))
    cache.get("a")
    table["a"] = {"n": 2}  # recovery after the rebalance rewrote the store
    cache.sync((1, False))
    assert cache.get("a") == {"decoded": 1}
    cache.sync((2, False))
    assert cache.get("a") == {"decoded": 2}


def test_put_writes_through_and_none_forgets():
    cache = StateCache(Table(), decode, key_field="sku")
    cache.sync((1, False))
    cache.put("a", {"decoded": 5})
    assert cache.get("a") == {"decoded": 5}
    cache.put("a", None)
    assert cache.get("a") is None
    cache.put("b", {"decoded": 1})
    cache.forget("b")
    assert cache.get("b") is None


def test_the_least_recently_written_half_goes_when_full():
    cache = StateCache(Table(), decode, key_field="sku", limit=4)
    cache.sync((1, False))
    for key in "abcd":
        cache.put(key, {"decoded": key})
    cache.put("a", {"decoded": "a2"})  # a is now the most recent
    cache.put("e", {"decoded": "e"})  # 5 > 4: the two oldest (b, c) go
    assert sorted(cache.values) == ["a", "d", "e"]


def test_nothing_is_kept_while_a_rebalance_is_under_way():
    table = Table(a={"n": 1})
    cache = StateCache(table, decode, key_field="sku")
    cache.sync((2, True))
    cache.get("a")
    table["a"] = {"n": 2}  # recovery is still writing the store
    cache.sync((2, True))
    assert cache.get("a") == {"decoded": 2}
    table["a"] = {"n": 3}
    cache.sync((2, False))  # recovery done
    assert cache.get("a") == {"decoded": 3}


def test_the_epoch_counts_rebalances_whatever_generation_the_broker_hands_out():
    from types import SimpleNamespace

    from streams.tables import assignment_epoch

    app = SimpleNamespace(rebalancing_count=3, rebalancing=False, consumer_generation_id=0)
    assert assignment_epoch(app) == (3, False)


class PartitionedStore:
    """Faust's RocksDB store as the agents read it: one database per partition, JSON keys."""

    def __init__(self, **dbs):
        self.dbs = {int(p[1:]): {orjson.dumps(k): orjson.dumps(v) for k, v in values.items()} for p, values in dbs.items()}
        self.opened = []

    def _db_for_partition(self, partition):
        self.opened.append(partition)
        return self.dbs[partition]


def test_a_key_read_with_its_partition_is_one_lookup_in_that_partitions_store():
    table = Table()
    table.data = PartitionedStore(p0={"a": {"n": 0}}, p1={"a": {"n": 1}, "b": {"n": 2}})
    cache = StateCache(table, decode, key_field="sku")
    cache.sync((1, False))
    assert cache.get("a", 1) == {"decoded": 1}
    assert cache.get("b", 0) is None  # not in partition 0's store: the table's other stores are not asked
    assert table.data.opened == [1, 0]
