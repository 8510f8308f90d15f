"""Load-test knobs and accounting as plain functions."""

from __future__ import annotations

from collections import Counter

import pytest

from lockstock.errors import SettingsError
from lockstock.load.profile import LoadProfile, OrderMaker
from lockstock.load.tally import Tally


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


def decision(order_id, status, *lines, reason=None):
    return {"order_id": order_id, "status": status, "reason": reason, "lines": [{"sku": s, "qty": q} for s, q in lines]}


def test_tally_recomputes_oversold_and_latency_from_decisions_alone():
    tally = Tally({"A": 3})
    for i in range(4):
        tally.sent({"order_id": f"o{i}", "placed_at": 1000})
    assert tally.decided(decision("o0", "LOCKED", ("A", 2)), 1100)
    assert tally.decided(decision("o1", "LOCKED", ("A", 2)), 1300)  # an engine that oversold by 1
    assert not tally.decided(decision("o1", "LOCKED", ("A", 2)), 1400)  # a repeated decision
    assert not tally.decided(decision("x", "LOCKED", ("A", 9)), 1400)  # not ours
    assert tally.oversold() == 1 and tally.undecided() == 2
    tally.decided(decision("o1", "RELEASED", ("A", 2), reason="CANCELLED"), 1500)
    tally.decided(decision("o2", "REJECTED", ("A", 1), reason="OUT_OF_STOCK"), 1200)
    summary = tally.summary()
    assert summary["oversold"] == 0 and summary["held_units"] == 2 and summary["undecided"] == 1
    assert summary["latency"]["max_ms"] == 300 and summary["latency"]["p50_ms"] == 200
    assert summary["reasons"] == {"RELEASED:CANCELLED": 1, "REJECTED:OUT_OF_STOCK": 1}
    assert summary["decisions_seen"] == 5  # repeats and later words included; "x" is not ours
