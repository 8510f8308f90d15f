"""Per-SKU lock rules as pure functions, plus invariants over random streams (hypothesis)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.engine.stock import (
    DEDUP_HISTORY, LOCKED, OUT_OF_STOCK, REJECTED, RELEASED, UNKNOWN_SKU, SkuStock,
    lock_order_line, release_order_line, set_stock,
)


def stocked(total: int) -> SkuStock:
    stock, applied = set_stock(None, "A", total, "cmd-1")
    assert applied
    return stock


def test_lock_takes_units_until_none_are_left():
    stock = stocked(5)
    stock, outcome = lock_order_line(stock, "o1", 3)
    assert outcome.status == LOCKED and stock.available == 2
    stock, outcome = lock_order_line(stock, "o2", 3)
    assert (outcome.status, outcome.reason) == (REJECTED, OUT_OF_STOCK) and stock.available == 2
    stock, outcome = lock_order_line(stock, "o3", 2)
    assert outcome.status == LOCKED and stock.available == 0


def test_unknown_sku_is_rejected_without_creating_state():
    stock, outcome = lock_order_line(None, "o1", 1)
    assert stock is None and (outcome.status, outcome.reason) == (REJECTED, UNKNOWN_SKU)


def test_redelivery_repeats_the_answer_and_never_locks_twice():
    stock = stocked(3)
    stock, first = lock_order_line(stock, "o1", 2)
    stock, again = lock_order_line(stock, "o1", 2)
    assert first.status == again.status == LOCKED and again.replayed
    assert stock.locked == 2
    stock, rejected = lock_order_line(stock, "o2", 2)
    stock.total = 10  # even with room now, the replayed rejection stays a rejection
    stock, again = lock_order_line(stock, "o2", 2)
    assert rejected.status == again.status == REJECTED and again.replayed and stock.locked == 2


def test_release_gives_units_back_once_and_a_late_lock_stays_released():
    stock = stocked(3)
    stock, _ = lock_order_line(stock, "o1", 2)
    stock, released = release_order_line(stock, "o1", "CANCELLED")
    assert released.status == RELEASED and stock.locked == 0 and not released.replayed
    stock, again = release_order_line(stock, "o1", "CANCELLED")
    assert again.replayed and stock.locked == 0
    stock, late = lock_order_line(stock, "o1", 2)  # the original order redelivered after release
    assert late.status == RELEASED and stock.locked == 0


def test_set_stock_is_idempotent_and_refuses_to_strand_locked_units():
    stock = stocked(5)
    stock, _ = lock_order_line(stock, "o1", 4)
    stock, applied = set_stock(stock, "A", 100, "cmd-1")
    assert not applied and stock.total == 5
    with pytest.raises(ValueError, match="below the 4 units already locked"):
        set_stock(stock, "A", 3, "cmd-2")
    with pytest.raises(ValueError, match=">= 0"):
        set_stock(stock, "A", -1, "cmd-3")


def test_history_is_bounded():
    stock = stocked(0)
    for n in range(DEDUP_HISTORY + 10):
        stock, _ = lock_order_line(stock, f"o{n}", 1)
    assert len(stock.history) == DEDUP_HISTORY
    assert "o0" not in stock.history and f"o{DEDUP_HISTORY + 9}" in stock.history


def test_state_survives_its_dict_form():
    stock = stocked(9)
    stock, _ = lock_order_line(stock, "o1", 4)
    stock, _ = release_order_line(stock, "o2", "X")
    assert SkuStock.from_dict(stock.to_dict()) == stock


operations = st.lists(
    st.tuples(st.sampled_from(["lock", "release", "restock"]), st.integers(0, 30), st.integers(1, 6)),
    max_size=200,
)


@settings(max_examples=300, deadline=None)
@given(total=st.integers(0, 40), ops=operations)
def test_invariants_over_random_streams(total, ops):
    stock = stocked(total)
    for step, (kind, order_n, qty) in enumerate(ops):
        before = stock.to_dict()
        if kind == "lock":
            stock, outcome = lock_order_line(stock, f"o{order_n}", qty)
            if outcome.replayed:
                assert stock.to_dict() == before  # a duplicate never changes state
        elif kind == "release":
            stock, _ = release_order_line(stock, f"o{order_n}", "CANCELLED")
        else:
            stock, _ = set_stock(stock, "A", stock.locked + qty, f"restock-{step}")
        assert 0 <= stock.locked <= stock.total  # never oversold
        assert stock.locked == sum(stock.reservations.values())  # units conserved
        assert not set(stock.reservations) & set(stock.history)


def request(action: str, order_id: str = "o1", qty: int = 2, reason=None) -> dict:
    return {"order_id": order_id, "sku": "A", "qty": qty, "action": action, "channel": "tiktok-us",
            "buyer_id": "b", "region": "US", "sku_count": 1, "placed_at": 10, "reason": reason}


def test_line_requests_produce_the_result_record():
    from streams.engine.stock import apply_line_request

    stock, result = apply_line_request(stocked(3), request("LOCK"), now_ms=20)
    assert stock.locked == 2
    assert result == {"order_id": "o1", "sku": "A", "qty": 2, "status": LOCKED, "reason": None, "region": "US",
                      "sku_count": 1, "channel": "tiktok-us", "placed_at": 10, "decided_at": 20}
    stock, result = apply_line_request(stock, request("LOCK", "o2"), now_ms=21)
    assert (result["status"], result["reason"], result["region"]) == (REJECTED, OUT_OF_STOCK, None)
    stock, result = apply_line_request(stock, request("RELEASE", reason="COMPENSATION"), now_ms=22)
    assert stock.locked == 0 and (result["status"], result["reason"]) == (RELEASED, "COMPENSATION")


def test_commands_set_stock_or_say_why_not():
    from streams.engine.stock import apply_command

    command = {"command_id": "c1", "sku": "A", "type": "SET_STOCK", "total": 7}
    stock, applied = apply_command(None, command)
    assert applied and stock.total == 7
    with pytest.raises(ValueError, match="RESTOCK is not supported"):
        apply_command(stock, {**command, "type": "RESTOCK", "command_id": "c2"})
