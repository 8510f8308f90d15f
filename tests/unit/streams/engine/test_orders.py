"""The order desk: validation, all-or-nothing decisions with compensation, lifecycle and timers."""

from __future__ import annotations

import copy
from functools import partial

import pytest

from streams.engine.orders import (
    CANCELLED, COMPENSATION, EMPTY_ORDER, EXPIRE, FORGET, INVALID_QUANTITY, INVALID_SKU, PAID, PAYMENT_TIMEOUT,
    PENDING, UNKNOWN_CHANNEL, UNKNOWN_REGION, Deadlines, OrderRecord, due_timer, next_due_at, on_line_result, on_order_event,
    on_order_placed, on_timer, units_per_sku, validate_order,
)
from streams.engine import orders as desk
from streams.engine.stock import LOCKED, OUT_OF_STOCK, REJECTED, RELEASED, SHIPPED
from tests.builders import CATALOG, line_lock_result, order_event, order_placed, with_rules

T0 = 50_000_000
TTL_MS = 900_000  # tiktok-us
RETENTION_MS = CATALOG.rules.order_retention_s * 1000


# This module's orders have no ship-to region (None) and are placed at T0; the stock side answers at T0 + 1.
order = partial(order_placed, ship_to_region=None, placed_at=T0)
answer = partial(line_lock_result, decided_at=T0 + 1)
event = partial(order_event, occurred_at=T0)


def actions(step):
    return sorted((r["sku"], r["action"], r["reason"]) for r in step.requests)


def placed(*lines, **kw):
    step = on_order_placed(None, order(*lines, **kw), CATALOG, T0)
    return step.record, {r["sku"]: r for r in step.requests}


def locked_order(*lines, at=T0 + 10, **kw) -> OrderRecord:
    record, requests = placed(*(lines or (("A", 1), ("B", 2))), **kw)
    step = None
    for request in requests.values():
        step = on_line_result(record, answer(request), CATALOG, at)
        record = step.record
    assert record.status == LOCKED
    return record


# -- validation -----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("the_order", "reason"), [
    (order(), EMPTY_ORDER),
    ({**order(), "lines": None}, EMPTY_ORDER),
    (order(("A", 0)), INVALID_QUANTITY),
    (order(("A", 1), ("B", -2)), INVALID_QUANTITY),
    (order((" ", 1)), INVALID_SKU),
    (order(("", 1)), INVALID_SKU),
    (order(("A", 1), channel="myspace"), UNKNOWN_CHANNEL),
    (order(("A", 1), ship_to_region="MARS"), UNKNOWN_REGION),
    (order(("A", 1), ("B", 2), ship_to_region="EU"), None),
    (order(("A", 1), ship_to_region=""), None),  # empty ship-to: the channel's region
])
def test_validation_reasons(the_order, reason):
    assert validate_order(the_order, CATALOG) == reason


def test_invalid_order_is_rejected_at_once():
    step = on_order_placed(None, order(("A", 1), ("B", 0)), CATALOG, T0)
    assert step.requests == [] and step.changed and step.problem is None
    assert step.record.status == REJECTED and step.record.reason == INVALID_QUANTITY
    assert step.decisions == [step.record.decision]
    decision = step.decisions[0]
    assert (decision["status"], decision["reason"], decision["order_id"]) == (REJECTED, INVALID_QUANTITY, "o1")
    assert decision["lines"] == [{"sku": "A", "qty": 1, "region": None}, {"sku": "B", "qty": 0, "region": None}]


def test_lines_of_one_sku_lock_together():
    assert units_per_sku(order(("A", 1), ("B", 2), ("A", 3))) == {"A": 4, "B": 2}
    record, requests = placed(("A", 1), ("B", 2), ("A", 3))
    assert record.sku_count == 2 and {s: r["qty"] for s, r in requests.items()} == {"A": 4, "B": 2}


# -- placing and deciding ----------------------------------------------------------------------------------

def test_order_placed_asks_every_sku_to_lock():
    step = on_order_placed(None, order(("A", 1), ("B", 2), ship_to_region="EU", channel="shopify", buyer_id="bob"),
                           CATALOG, T0)
    assert step.decisions == [] and step.record.status == PENDING
    assert sorted(r["sku"] for r in step.requests) == ["A", "B"]
    for request in step.requests:
        assert request["action"] == "LOCK" and request["order_id"] == "o1"
        assert (request["region"], request["channel"], request["buyer_id"]) == ("EU", "shopify", "bob")
        assert request["sku_count"] == 2 and request["placed_at"] == T0
    _, requests = placed(("A", 1), channel="shopee-th")
    assert requests["A"]["region"] == "SEA"  # no ship-to: the channel's region


def test_all_lines_locked_is_a_lock_with_a_payment_deadline():
    record, requests = placed(("A", 1), ("B", 2))
    step = on_line_result(record, answer(requests["A"]), CATALOG, T0 + 5)
    assert step.decisions == [] and step.record.status == PENDING and step.changed
    step = on_line_result(step.record, answer(requests["B"], region="EU"), CATALOG, T0 + 7)
    assert step.requests == [] and step.record.status == LOCKED
    assert step.record.expires_at == T0 + 7 + TTL_MS
    assert step.decisions == [{
        "order_id": "o1", "status": LOCKED, "reason": None, "decided_at": T0 + 7, "channel": "tiktok-us",
        "placed_at": T0, "lines": [{"sku": "A", "qty": 1, "region": "US"}, {"sku": "B", "qty": 2, "region": "EU"}],
    }]


def test_one_rejected_line_rejects_the_order_and_releases_the_rest():
    record, requests = placed(("A", 1), ("B", 2), ("C", 3))
    record = on_line_result(record, answer(requests["A"]), CATALOG, T0).record
    record = on_line_result(record, answer(requests["B"], REJECTED, OUT_OF_STOCK), CATALOG, T0).record
    step = on_line_result(record, answer(requests["C"]), CATALOG, T0 + 3)
    assert step.record.status == REJECTED and step.record.reason == OUT_OF_STOCK
    assert actions(step) == [("A", "RELEASE", COMPENSATION), ("C", "RELEASE", COMPENSATION)]
    assert [(d["status"], d["reason"]) for d in step.decisions] == [(REJECTED, OUT_OF_STOCK)]
    assert all(line["region"] is None for line in step.decisions[0]["lines"])
    assert step.record.expires_at is None and step.record.finished_at == T0 + 3


def test_duplicate_order_placed_repeats_the_decision():
    record = locked_order()
    decision = record.decision
    step = on_order_placed(copy.deepcopy(record), order(("A", 1), ("B", 2)), CATALOG, T0 + 99)
    assert step.decisions == [decision] and step.requests == [] and not step.changed
    rejected = on_order_placed(None, order(), CATALOG, T0).record
    step = on_order_placed(rejected, order(), CATALOG, T0 + 5)
    assert step.decisions == [rejected.decision] and not step.changed


def test_duplicate_order_placed_while_undecided_reasks_missing_skus():
    record, requests = placed(("A", 1), ("B", 2))
    step = on_order_placed(record, order(("A", 1), ("B", 2)), CATALOG, T0 + 1)
    assert actions(step) == [("A", "LOCK", None), ("B", "LOCK", None)] and step.decisions == []
    record = on_line_result(record, answer(requests["A"]), CATALOG, T0 + 2).record
    step = on_order_placed(record, order(("A", 1), ("B", 2)), CATALOG, T0 + 3)
    assert actions(step) == [("B", "LOCK", None)] and step.decisions == []


def test_late_locked_after_a_rejection_is_released():
    record, requests = placed(("A", 1), ("B", 2))
    record = on_line_result(record, answer(requests["A"], REJECTED, OUT_OF_STOCK), CATALOG, T0).record
    record = on_line_result(record, answer(requests["B"], REJECTED, OUT_OF_STOCK), CATALOG, T0).record
    assert record.status == REJECTED
    step = on_line_result(record, answer(requests["B"]), CATALOG, T0 + 1)  # e.g. a stale redelivery
    # released, and the latest decision repeated (the one the redelivered answer completed may not have left)
    assert actions(step) == [("B", "RELEASE", COMPENSATION)] and step.decisions == [record.decision] and not step.changed
    step = on_line_result(record, answer(requests["A"], REJECTED, OUT_OF_STOCK), CATALOG, T0 + 1)
    assert step.requests == [] and step.decisions == [record.decision] and not step.changed


def test_a_redelivered_cancel_or_expiry_repeats_the_released_decision():
    """The desk's decisions leave after its changelog: a kill between the two is followed by a
    replay of the input that made the decision, which must announce it again."""
    record, requests = placed(("A", 1), ("B", 2))
    for sku in ("A", "B"):
        record = on_line_result(record, answer(requests[sku]), CATALOG, T0).record
    cancel = order_event(CANCELLED, "o1:c", "o1", occurred_at=T0, reason="buyer")
    released = on_order_event(record, cancel, CATALOG, T0 + 1)
    assert [d["status"] for d in released.decisions] == ["RELEASED"]
    again = on_order_event(released.record, cancel, CATALOG, T0 + 2)
    assert again.decisions == released.decisions and again.requests == [] and not again.changed
    expired = on_timer(released.record, {"order_id": "o1", "kind": EXPIRE, "due_at": T0}, CATALOG, T0 + 3)
    assert expired.decisions == released.decisions and expired.requests == [] and not expired.changed


def test_late_answers_for_a_held_order_change_nothing():
    record = locked_order(("A", 1))
    request = {"order_id": "o1", "sku": "A", "qty": 1, "sku_count": 1, "channel": "tiktok-us", "placed_at": T0}
    step = on_line_result(record, answer(request), CATALOG, T0 + 100)
    assert step.requests == [] and step.decisions == [] and not step.changed and record.status == LOCKED


def test_an_announced_answer_the_desk_overtook_is_followed_by_the_desks_decision():
    """The keeper announced LOCKED, was killed before its changelog, and answered the replayed
    request afresh (announcing LOCKED again) after the desk had released the order: the units go
    back and the desk's RELEASED decision is announced after the keeper's stale one."""
    record = locked_order(("A", 1))
    record = on_order_event(record, event("CANCELLED"), CATALOG, T0 + 50).record
    assert record.status == RELEASED
    request = {"order_id": "o1", "sku": "A", "qty": 1, "sku_count": 1, "channel": "tiktok-us", "placed_at": T0}
    stale = {**answer(request), "announced": True, "decided_at": T0 + 60}
    step = on_line_result(record, stale, CATALOG, T0 + 60)
    assert actions(step) == [("A", "RELEASE", COMPENSATION)] and not step.changed
    assert step.decisions == [record.decision] and record.decision["status"] == RELEASED
    step = on_line_result(record, {**stale, "announced": False}, CATALOG, T0 + 61)
    assert step.decisions == [record.decision]  # a replayed answer: the desk repeats its latest decision


def test_a_replayed_answer_repeats_a_single_sku_decision_the_keeper_may_not_have_announced():
    """The keeper's decision and its lock result leave in one send after its changelog; killed
    between them, the result may be out without the decision. The replayed answer is not
    announced by the keeper, so the desk repeats the decision it recorded. A multi-SKU order's
    decision is the desk's own, sent after the desk's changelog: a kill between the two is followed
    by the replay of the answer that completed it, so the desk repeats that one too."""
    record = locked_order(("A", 1))
    request = {"order_id": "o1", "sku": "A", "qty": 1, "sku_count": 1, "channel": "tiktok-us", "placed_at": T0}
    step = on_line_result(record, {**answer(request), "announced": False}, CATALOG, T0 + 70)
    assert [d["status"] for d in step.decisions] == [LOCKED] and not step.changed and not step.requests
    multi = locked_order(("A", 1), ("B", 2))
    again = on_line_result(multi, {**answer(request), "sku_count": 2, "announced": False}, CATALOG, T0 + 70)
    assert again.decisions == [multi.decision] and not again.changed and not again.requests


def test_answer_overtaking_its_order_starts_the_record():
    record, requests = placed(("A", 1), ("B", 2))
    first = answer(requests["A"])
    step = on_line_result(None, first, CATALOG, T0)
    assert step.record.status == PENDING and step.record.skus == {"A": 1} and step.record.sku_count == 2
    step = on_order_placed(step.record, order(("A", 1), ("B", 2)), CATALOG, T0 + 1)
    assert actions(step) == [("B", "LOCK", None)] and step.record.buyer_id == "b1" and step.record.region == "US"
    step = on_line_result(step.record, answer(requests["B"]), CATALOG, T0 + 2)
    assert step.record.status == LOCKED and step.decisions[0]["status"] == LOCKED


# -- lifecycle ------------------------------------------------------------------------------------------------

def test_paid_commits_every_line():
    record = locked_order()
    step = on_order_event(record, event("PAID"), CATALOG, T0 + 20)
    assert actions(step) == [("A", "COMMIT", None), ("B", "COMMIT", None)]
    assert step.record.status == PAID and step.record.expires_at is None and step.decisions == []
    again = on_order_event(step.record, event("PAID"), CATALOG, T0 + 21)  # same event redelivered
    assert again.requests == [] and not again.changed
    other = on_order_event(step.record, event("PAID", "e2"), CATALOG, T0 + 22)  # a second PAID: nothing new
    assert other.requests == [] and other.problem is None and step.record.status == PAID


def test_cancelled_releases_and_announces():
    record = locked_order()
    step = on_order_event(record, event("CANCELLED"), CATALOG, T0 + 20)
    assert actions(step) == [("A", "RELEASE", CANCELLED), ("B", "RELEASE", CANCELLED)]
    assert step.record.status == RELEASED and step.record.finished_at == T0 + 20
    decision = step.decisions[0]
    assert (decision["status"], decision["reason"]) == (RELEASED, CANCELLED)
    assert [line["region"] for line in decision["lines"]] == ["US", "US"]
    paid = on_order_event(locked_order(), event("PAID"), CATALOG, T0 + 20).record
    step = on_order_event(paid, event("CANCELLED", "e2", reason="BUYER_CHANGED_MIND"), CATALOG, T0 + 30)
    assert actions(step) == [("A", "RELEASE", "BUYER_CHANGED_MIND"), ("B", "RELEASE", "BUYER_CHANGED_MIND")]
    assert step.record.reason == "BUYER_CHANGED_MIND"


def test_shipped_ships_every_line_from_the_named_warehouse():
    record = on_order_event(locked_order(), event("PAID"), CATALOG, T0 + 20).record
    step = on_order_event(record, event("SHIPPED", "e2", warehouse="NJ"), CATALOG, T0 + 30)
    assert actions(step) == [("A", "SHIP", None), ("B", "SHIP", None)]
    assert {r["warehouse"] for r in step.requests} == {"NJ"}
    assert step.record.status == SHIPPED and step.record.finished_at == T0 + 30 and step.decisions == []
    step = on_order_event(locked_order(), event("SHIPPED"), CATALOG, T0 + 30)  # unpaid but shipped: still ships
    assert actions(step) == [("A", "SHIP", None), ("B", "SHIP", None)] and step.requests[0]["warehouse"] is None


def test_events_before_the_decision_are_held_then_applied():
    record, requests = placed(("A", 1), ("B", 2))
    step = on_order_event(record, event("PAID"), CATALOG, T0 + 1)
    assert step.requests == [] and step.changed and step.problem is None
    assert [e["type"] for e in step.record.early_events] == ["PAID"]
    record = on_line_result(step.record, answer(requests["A"]), CATALOG, T0 + 2).record
    step = on_line_result(record, answer(requests["B"]), CATALOG, T0 + 3)
    assert step.record.status == PAID and step.record.early_events == []
    assert actions(step) == [("A", "COMMIT", None), ("B", "COMMIT", None)]
    assert [d["status"] for d in step.decisions] == [LOCKED]


def test_cancel_before_the_decision_releases_after_it():
    record, requests = placed(("A", 1))
    record = on_order_event(record, event("CANCELLED"), CATALOG, T0 + 1).record
    step = on_line_result(record, answer(requests["A"]), CATALOG, T0 + 2)
    # LOCKED was announced by the stock keeper with the answer; the desk announces what follows
    assert [(d["status"], d["reason"]) for d in step.decisions] == [(RELEASED, CANCELLED)]
    assert actions(step) == [("A", "RELEASE", CANCELLED)] and step.record.status == RELEASED


def test_the_decision_of_a_single_sku_order_is_the_one_the_stock_keeper_announced():
    for status, reason in ((LOCKED, None), (REJECTED, OUT_OF_STOCK)):
        record, requests = placed(("A", 1), ("A", 2))  # two lines, one SKU: one answer decides
        result = answer(requests["A"], status, reason)
        assert desk.decided_by_stock_keeper(result)
        step = on_line_result(record, result, CATALOG, T0 + 5)
        assert step.decisions == []
        assert step.record.decision == desk.single_line_decision(result)
        # ...and it is what the desk itself would have announced, timed at the answer
        assert step.record.decision == {**desk._decision(step.record, result["decided_at"])}
        assert step.record.decision["lines"] == [{"sku": "A", "qty": 3, "region": "US" if status == LOCKED else None}]
        repeat = on_order_placed(step.record, order(("A", 1), ("A", 2)), CATALOG, T0 + 9)
        assert repeat.decisions == [desk.single_line_decision(result)]  # a duplicate order hears it again


def test_a_single_sku_answer_the_keeper_did_not_announce_is_announced_by_the_desk():
    record, requests = placed(("A", 1))
    result = {**answer(requests["A"]), "announced": False}  # a replayed answer, or an older worker's
    step = on_line_result(record, result, CATALOG, T0 + 5)
    assert [d["status"] for d in step.decisions] == [LOCKED] and step.record.decision == step.decisions[0]


def test_a_multi_sku_order_is_decided_by_the_desk():
    record, requests = placed(("A", 1), ("B", 1))
    assert not desk.decided_by_stock_keeper(answer(requests["A"]))
    record = on_line_result(record, answer(requests["A"]), CATALOG, T0 + 2).record
    step = on_line_result(record, answer(requests["B"]), CATALOG, T0 + 3)
    assert [d["status"] for d in step.decisions] == [LOCKED]


def test_early_cancel_of_a_rejected_order_releases_nothing_twice():
    record, requests = placed(("A", 1), ("B", 1))
    record = on_order_event(record, event("CANCELLED"), CATALOG, T0 + 1).record
    record = on_line_result(record, answer(requests["A"]), CATALOG, T0 + 2).record
    step = on_line_result(record, answer(requests["B"], REJECTED, OUT_OF_STOCK), CATALOG, T0 + 3)
    assert actions(step) == [("A", "RELEASE", COMPENSATION)]
    assert [d["status"] for d in step.decisions] == [REJECTED] and step.record.reason == OUT_OF_STOCK


def test_early_payment_of_a_rejected_order_is_a_problem():
    record, requests = placed(("A", 1))
    record = on_order_event(record, event("PAID"), CATALOG, T0 + 1).record
    step = on_line_result(record, answer(requests["A"], REJECTED, OUT_OF_STOCK), CATALOG, T0 + 2)
    assert step.record.status == REJECTED
    assert step.problem is not None and "refund" in step.problem


def test_impossible_events_are_problems():
    step = on_order_event(None, event("PAID", order_id="ghost"), CATALOG, T0)
    assert step.record is None and not step.changed and "unknown order 'ghost'" in step.problem
    shipped = on_order_event(locked_order(), event("SHIPPED"), CATALOG, T0 + 20).record
    step = on_order_event(shipped, event("CANCELLED", "e2"), CATALOG, T0 + 30)
    assert "cancelled after it shipped" in step.problem and step.requests == [] and shipped.status == SHIPPED
    rejected = on_order_placed(None, order(("A", 0)), CATALOG, T0).record
    step = on_order_event(rejected, event("PAID"), CATALOG, T0 + 1)
    assert "paid but holds no stock" in step.problem and "refund" in step.problem and step.requests == []
    step = on_order_event(rejected, event("SHIPPED", "e2"), CATALOG, T0 + 1)
    assert "shipped but holds no stock" in step.problem and step.requests == []
    step = on_order_event(locked_order(), event("REFUNDED"), CATALOG, T0 + 1)
    assert "REFUNDED is not one lockstock handles" in step.problem and not step.changed


def test_cancel_of_a_finished_order_is_a_quiet_no_op():
    rejected = on_order_placed(None, order(("A", 0)), CATALOG, T0).record
    step = on_order_event(rejected, event("CANCELLED"), CATALOG, T0 + 1)
    assert step.requests == [] and step.decisions == [] and step.problem is None and rejected.status == REJECTED


# -- timers -----------------------------------------------------------------------------------------------------

def test_unpaid_lock_expires_after_the_ttl_not_before():
    record = locked_order(at=T0)
    deadline = T0 + TTL_MS
    assert due_timer(record, CATALOG, deadline - 1) is None
    early = on_timer(record, {"kind": EXPIRE}, CATALOG, deadline - 1)
    assert not early.changed and early.requests == [] and record.status == LOCKED
    assert due_timer(record, CATALOG, deadline) == EXPIRE
    step = on_timer(record, {"kind": EXPIRE}, CATALOG, deadline)
    assert step.record.status == RELEASED and step.record.reason == PAYMENT_TIMEOUT
    assert actions(step) == [("A", "RELEASE", PAYMENT_TIMEOUT), ("B", "RELEASE", PAYMENT_TIMEOUT)]
    assert [(d["status"], d["reason"]) for d in step.decisions] == [(RELEASED, PAYMENT_TIMEOUT)]
    again = on_timer(step.record, {"kind": EXPIRE}, CATALOG, deadline + 5)
    assert not again.changed and again.requests == []


def test_paid_order_never_expires():
    record = on_order_event(locked_order(at=T0), event("PAID"), CATALOG, T0 + 1).record
    late = T0 + TTL_MS * 10
    assert due_timer(record, CATALOG, late) is None
    step = on_timer(record, {"kind": EXPIRE}, CATALOG, late)
    assert not step.changed and step.record.status == PAID and step.requests == []


def test_ttl_follows_the_channel():
    record = locked_order(at=T0, channel="shopify")
    assert record.expires_at == T0 + 3_600_000


def test_finished_orders_are_forgotten_after_retention():
    record = on_order_event(locked_order(at=T0), event("CANCELLED"), CATALOG, T0 + 100).record
    assert due_timer(record, CATALOG, T0 + 100 + RETENTION_MS - 1) is None
    step = on_timer(record, {"kind": FORGET}, CATALOG, T0 + 100 + RETENTION_MS - 1)
    assert step.record is record and not step.changed
    assert due_timer(record, CATALOG, T0 + 100 + RETENTION_MS) == FORGET
    step = on_timer(record, {"kind": FORGET}, CATALOG, T0 + 100 + RETENTION_MS)
    assert step.record is None and step.changed


def test_orders_holding_stock_are_never_forgotten():
    for record in (locked_order(), on_order_event(locked_order(), event("PAID"), CATALOG, T0).record):
        far = T0 + RETENTION_MS * 100
        step = on_timer(record, {"kind": FORGET}, CATALOG, far)
        assert step.record is record and not step.changed
    short = with_rules(order_retention_s=1)
    rejected = on_order_placed(None, order(), short, T0).record
    assert due_timer(rejected, short, T0 + 999) is None and due_timer(rejected, short, T0 + 1000) == FORGET


def test_timers_for_unknown_orders_are_no_ops():
    step = on_timer(None, {"kind": EXPIRE}, CATALOG, T0)
    assert step.record is None and not step.changed and step.problem is None


def test_record_survives_its_dict_form():
    record, _ = placed(("A", 1), ("B", 2))
    record = on_order_event(record, event("PAID"), CATALOG, T0).record
    data = copy.deepcopy(record.to_dict())
    assert OrderRecord.from_dict(data) == record
    assert OrderRecord.from_dict(data).to_dict() == record.to_dict()


def test_next_due_at_is_exactly_when_a_timer_becomes_due():
    """The sweeper reads only orders whose deadline passed: a timer must never be due earlier."""
    locked = locked_order(at=T0)
    paid = on_order_event(locked_order(at=T0), event("PAID"), CATALOG, T0 + 1).record
    cancelled = on_order_event(locked_order(at=T0), event("CANCELLED"), CATALOG, T0 + 2).record
    rejected = on_order_placed(None, order(("A", 0)), CATALOG, T0).record
    for record in (locked, paid, cancelled, rejected):
        due = next_due_at(record, CATALOG)
        if due is None:
            assert due_timer(record, CATALOG, T0 + 10**12) is None
        else:
            assert due_timer(record, CATALOG, due - 1) is None and due_timer(record, CATALOG, due) is not None
    assert next_due_at(paid, CATALOG) is None and next_due_at(locked, CATALOG) == T0 + TTL_MS


def test_deadlines_list_only_orders_whose_timer_is_due_and_follow_each_write():
    locked = locked_order(at=T0)
    paid = on_order_event(locked_order(at=T0), event("PAID"), CATALOG, T0 + 1).record
    deadlines = Deadlines(CATALOG)
    deadlines.rebuild("gen-1", [("o-locked", locked), ("o-paid", paid)])
    assert deadlines.generation == "gen-1" and deadlines.due == {"o-locked": T0 + TTL_MS}  # paid: never due
    assert deadlines.passed(T0 + TTL_MS - 1) == [] and deadlines.passed(T0 + TTL_MS) == ["o-locked"]
    expired = on_timer(locked, {"kind": EXPIRE}, CATALOG, T0 + TTL_MS).record
    deadlines.note("o-locked", expired)  # released: now due when it may be forgotten
    assert deadlines.due["o-locked"] == next_due_at(expired, CATALOG) > T0 + TTL_MS
    deadlines.note("o-locked", None)  # forgotten
    deadlines.forget("o-unknown")
    assert deadlines.due == {}


def test_deadlines_come_in_time_order_skip_superseded_writes_and_repeat_until_noted_anew():
    deadlines = Deadlines(CATALOG)
    for n in range(5000):  # one order written many times: the heap keeps only what is current
        deadlines.note("o-busy", locked_order(at=T0 + n))
    assert len(deadlines.heap) <= 2 * len(deadlines.due) + 1024
    deadlines.note("o-early", locked_order(at=T0 - 10))
    assert deadlines.passed(T0 + TTL_MS + 4998) == ["o-early"]  # o-busy's earlier deadlines were superseded
    assert sorted(deadlines.passed(T0 + TTL_MS + 5000)) == ["o-busy", "o-early"]  # o-early not noted anew: again
    deadlines.note("o-early", None)
    deadlines.note("o-busy", on_order_event(locked_order(at=T0), event("PAID"), CATALOG, T0 + 1).record)
    assert deadlines.passed(T0 + 10 * TTL_MS) == [] and deadlines.due == {}


def test_the_json_table_value_is_to_dict_and_decodes_back():
    import orjson

    record = locked_order(("A", 1), ("B", 2))
    assert orjson.loads(record.to_json()) == record.to_dict()
    assert OrderRecord.from_dict(orjson.loads(record.to_json())) == record
