"""StateCache: the agents' decoded table values, valid for one consumer generation."""

from __future__ import annotations

from streams.tables import StateCache


class Table(dict):
    name = "stock"


def decode(raw):
    return {"decoded": raw["n"]}


def test_a_value_is_decoded_once_and_then_served_from_the_cache():
    table = Table(a={"n": 1})
    cache = StateCache(table, decode, key_field="sku")
    cache.sync(1)
    first = cache.get("a")
    table["a"] = {"n": 2}  # the store changed behind the cache's back...
    assert cache.get("a") is first  # ...which only a rebalance can do, and sync notices that
    assert cache.get("missing") is None


def test_a_new_generation_drops_every_value():
    table = Table(a={"n": 1})
    cache = StateCache(table, decode, key_field="sku")
    cache.sync(1)
    cache.get("a")
    table["a"] = {"n": 2}  # recovery after the rebalance rewrote the store
    cache.sync(1)
    assert cache.get("a") == {"decoded": 1}
    cache.sync(2)
    assert cache.get("a") == {"decoded": 2}


def test_put_writes_through_and_none_forgets():
    cache = StateCache(Table(), decode, key_field="sku")
    cache.sync(1)
    cache.put("a", {"decoded": 5})
    assert cache.get("a") == {"decoded": 5}
    cache.put("a", None)
    assert cache.get("a") is None
    cache.put("b", {"decoded": 1})
    cache.forget("b")
    assert cache.get("b") is None


def test_the_least_recently_written_half_goes_when_full():
    cache = StateCache(Table(), decode, key_field="sku", limit=4)
    cache.sync(1)
    for key in "abcd":
        cache.put(key, {"decoded": key})
    cache.put("a", {"decoded": "a2"})  # a is now the most recent
    cache.put("e", {"decoded": "e"})  # 5 > 4: the two oldest (b, c) go
    assert sorted(cache.values) == ["a", "d", "e"]
