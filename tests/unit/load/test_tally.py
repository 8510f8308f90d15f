from apps.load.tally import Tally, allowed_change
from tests.builders import order_decision


def test_repeats_and_release_are_allowed_flips_are_counted():
    tally = Tally({"A": 5})
    for n in range(4):
        tally.sent({"order_id": f"o{n}", "placed_at": 1000})
    tally.decided(order_decision("o0", "LOCKED", ("A", 2)), 1010)
    tally.decided(order_decision("o0", "LOCKED", ("A", 2)), 1020)  # redelivery repeats it
    tally.decided(order_decision("o1", "LOCKED", ("A", 1)), 1030)
    tally.decided(order_decision("o1", "RELEASED", ("A", 1)), 1040)  # cancelled
    tally.decided(order_decision("o2", "REJECTED", ("A", 9)), 1050)
    tally.decided(order_decision("o2", "LOCKED", ("A", 9)), 1060)  # a bug: rejected, then locked
    summary = tally.summary()
    assert tally.flips == ["o2"] and summary["flipped"] == 1
    assert summary["undecided"] == 1  # o3
    held, holders = tally.holdings()
    assert held["A"] == 2 + 9 and holders["A"] == 2
    assert summary["oversold"] == 6  # 11 held on 5 units, recomputed from decisions


def test_decisions_for_other_runs_are_ignored():
    tally = Tally({"A": 5})
    assert tally.decided(order_decision("elsewhere", "LOCKED", ("A", 1)), 1) is False
    assert tally.decisions_seen == 0


def test_allowed_changes():
    assert allowed_change("LOCKED", "LOCKED") and allowed_change("LOCKED", "RELEASED")
    assert not allowed_change("RELEASED", "LOCKED") and not allowed_change("REJECTED", "LOCKED")
    assert not allowed_change("LOCKED", "REJECTED")
