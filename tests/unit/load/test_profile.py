"""Load-test knobs and accounting as plain functions."""

from __future__ import annotations

import math
from collections import Counter

import pytest

from apps.load.profile import LoadProfile, OrderMaker, units_to_lock_all
from apps.load.tally import Tally
from lockstock.catalog import load_catalog
from lockstock.errors import SettingsError
from streams.engine.commands import plan_split
from tests.builders import order_decision


@pytest.mark.parametrize("changes, message", [
    ({"rate": -5}, "--rate must be between"),
    ({"rate": float("nan")}, "--rate must be a number"),
    ({"duration_s": 0}, "--duration must be between"),
    ({"shape": "zigzag"}, "--shape must be one of"),
    ({"channels": ()}, "--channels needs at least one"),
    ({"skus": 2.5}, "--skus must be a whole number"),
    ({"multi_line": 1.5}, "--multi-line must be a share between 0 and 1"),
    ({"duplicates": -0.1}, "--duplicates must be a share between 0 and 1"),
    ({"cancellations": 2}, "--cancellations must be a share between 0 and 1"),
    ({"buyers": 0}, "--buyers must be between"),
    ({"zipf_s": -1}, "--zipf must be between"),
])
def test_bad_knobs_are_refused_with_their_name(changes, message):
    with pytest.raises(SettingsError, match=message):
        LoadProfile(**changes).validate()


def test_shapes_offer_what_they_say():
    assert LoadProfile(rate=100, duration_s=10).offered_total() == 1000
    ramp = LoadProfile(rate=100, duration_s=10, shape="ramp")
    assert ramp.rate_at(5) == pytest.approx(50) and ramp.rate_at(10) == 100
    spike = LoadProfile(rate=100, duration_s=10, shape="spike")
    assert spike.rate_at(1) == 25 and spike.rate_at(5) == 300
    assert spike.offered_total() == pytest.approx(25 * 9 + 300 * 1, rel=0.02)


def test_orders_follow_zipf_popularity_and_the_shares():
    profile = LoadProfile(skus=10, zipf_s=1.2, multi_line=0.2, duplicates=0.1, cancellations=0.3, buyers=50, seed=3)
    maker = OrderMaker(profile, "run1")
    orders = [maker.next_order(0) for _ in range(5000)]
    first_line = Counter(o["lines"][0]["sku"] for o, _, _ in orders)
    assert first_line["run1-SKU-0000"] > 3 * first_line["run1-SKU-0009"]  # the head sells most
    multi = sum(len(o["lines"]) > 1 for o, _, _ in orders) / len(orders)
    assert 0.17 < multi < 0.23
    assert 0.08 < sum(d for _, d, _ in orders) / len(orders) < 0.12
    assert 0.27 < sum(c for _, _, c in orders) / len(orders) < 0.33
    assert len({o["buyer_id"] for o, _, _ in orders}) <= 50  # buyers come back
    assert all(len({l["sku"] for l in o["lines"]}) == len(o["lines"]) for o, _, _ in orders)
    assert len({o["order_id"] for o, _, _ in orders}) == 5000


def test_uniform_popularity_when_zipf_is_zero():
    maker = OrderMaker(LoadProfile(skus=4, zipf_s=0, multi_line=0), "u")
    counts = Counter(maker.next_order(0)[0]["lines"][0]["sku"] for _ in range(8000))
    assert max(counts.values()) / min(counts.values()) < 1.15


def test_tally_recomputes_oversold_and_latency_from_decisions_alone():
    tally = Tally({"A": 3})
    for i in range(4):
        tally.sent({"order_id": f"o{i}", "placed_at": 1000})
    assert tally.decided(order_decision("o0", "LOCKED", ("A", 2)), 1100)
    assert tally.decided(order_decision("o1", "LOCKED", ("A", 2)), 1300)  # an engine that oversold by 1
    assert not tally.decided(order_decision("o1", "LOCKED", ("A", 2)), 1400)  # a repeated decision
    assert not tally.decided(order_decision("x", "LOCKED", ("A", 9)), 1400)  # not ours
    assert tally.oversold() == 1 and tally.undecided() == 2
    tally.decided(order_decision("o1", "RELEASED", ("A", 2), reason="CANCELLED"), 1500)
    tally.decided(order_decision("o2", "REJECTED", ("A", 1), reason="OUT_OF_STOCK"), 1200)
    summary = tally.summary()
    assert summary["oversold"] == 0 and summary["held_units"] == 2 and summary["undecided"] == 1
    assert summary["latency"]["max_ms"] == 300 and summary["latency"]["p50_ms"] == 200
    assert summary["reasons"] == {"RELEASED:CANCELLED": 1, "REJECTED:OUT_OF_STOCK": 1}
    assert summary["decisions_seen"] == 5  # repeats and later words included; "x" is not ours


@pytest.mark.parametrize("changes, message", [
    ({"hot_sku": 1.5}, "--hot-sku must be a share between 0 and 1"),
    ({"hot_sku": -0.1}, "--hot-sku must be a share between 0 and 1"),
    ({"hot_sku": float("nan")}, "--hot-sku must be a number"),
    ({"hot_stock": 100}, "--hot-stock needs --hot-sku above 0"),
    ({"hot_sku": 0.5, "hot_stock": 0}, "--hot-stock must be between 1 and"),
    ({"hot_sku": 0.5, "hot_stock": 10.5}, "--hot-stock must be a whole number"),
])
def test_bad_hot_knobs_are_refused_with_their_name(changes, message):
    with pytest.raises(SettingsError, match=message):
        LoadProfile(**changes).validate()


def test_hot_orders_buy_one_unit_of_the_hot_sku_each_from_a_new_buyer():
    profile = LoadProfile(skus=5, multi_line=0.3, hot_sku=0.4, duplicates=0, cancellations=0, buyers=10, seed=5).validate()
    maker = OrderMaker(profile, "h")
    orders = [maker.next_order(0)[0] for _ in range(5000)]
    hot = [o for o in orders if any(line["sku"] == maker.hot_sku for line in o["lines"])]
    assert maker.hot_sku == "h-SKU-HOT" and maker.hot_sku in maker.sku_names
    assert 0.37 < len(hot) / len(orders) < 0.43
    assert all(o["lines"] == [{"sku": maker.hot_sku, "qty": 1}] for o in hot)  # no other order buys it
    assert len({o["buyer_id"] for o in hot}) == len(hot)  # a crowd: nobody buys twice
    assert len({o["order_id"] for o in orders}) == len(orders)


def test_the_issue_reproduction_is_one_knob_every_order_hot():
    maker = OrderMaker(LoadProfile(hot_sku=1, cancellations=0, duplicates=0).validate(), "r")
    orders = [maker.next_order(0) for _ in range(1000)]
    assert all(o["lines"] == [{"sku": "r-SKU-HOT", "qty": 1}] and not twice and not cancel for o, twice, cancel in orders)


def test_no_hot_sku_no_hot_orders_and_the_same_orders_as_before():
    plain = OrderMaker(LoadProfile(seed=9), "p")
    assert plain.hot_sku is None and len(plain.sku_names) == 20
    again = OrderMaker(LoadProfile(seed=9, hot_sku=0.0), "p")
    assert [plain.next_order(0) for _ in range(200)] == [again.next_order(0) for _ in range(200)]


def default_split_locks(total: int, demand: dict[str, int], catalog) -> bool:
    """Every region's demand fits its allocation plus the one flex pool, split as the engine does."""
    split, flex = plan_split(total, {}, catalog.rules.flex_pct, catalog)
    return sum(max(0, units - split[r]) for r, units in demand.items()) <= flex


@pytest.mark.parametrize("channels", [("tiktok-us", "shopify", "amazon-us", "shopee-my"), ("shopee-my",), ("tiktok-eu", "shopee-th")])
def test_hot_stock_is_the_least_that_lets_every_hot_order_lock(channels):
    catalog = load_catalog(None)
    units = units_to_lock_all(16_000, channels, catalog)
    served = Counter(catalog.channels[c].region for c in channels)
    demand = {r: round(16_000 * n / len(channels)) for r, n in served.items()}
    assert units >= 16_000 and default_split_locks(units, demand, catalog)
    margin = {r: math.ceil(d * 1.1) + 10 for r, d in demand.items()}
    assert default_split_locks(units, margin, catalog) and not default_split_locks(units - 1, margin, catalog)
