"""Order-level rules: validation, per-SKU split, all-or-nothing folding with compensation."""

from __future__ import annotations

from streams.engine.orders import (
    COMPENSATION, EMPTY_ORDER, INVALID_QUANTITY, INVALID_SKU, PendingOrder, collect_line_outcome,
    rejection, units_per_sku, validate_order,
)


def order(*lines):
    return {"order_id": "o1", "channel": "tiktok-us", "buyer_id": "b", "ship_to_region": "US", "placed_at": 10,
            "lines": [{"sku": s, "qty": q} for s, q in lines]}


def result(sku, status, qty=1, reason=None, sku_count=2):
    return {"order_id": "o1", "sku": sku, "qty": qty, "status": status, "reason": reason,
            "region": "US" if status == "LOCKED" else None, "sku_count": sku_count, "channel": "tiktok-us", "placed_at": 10}


def test_validation_reasons():
    assert validate_order(order()) == EMPTY_ORDER
    assert validate_order(order(("A", 0))) == INVALID_QUANTITY
    assert validate_order(order(("A", -2))) == INVALID_QUANTITY
    assert validate_order(order((" ", 1))) == INVALID_SKU
    assert validate_order(order(("A", 1), ("B", 2))) is None


def test_lines_of_one_sku_lock_together():
    assert units_per_sku(order(("A", 1), ("B", 2), ("A", 3))) == {"A": 4, "B": 2}


def test_decides_only_when_every_sku_answered():
    pending, verdict = collect_line_outcome(None, result("A", "LOCKED"), now_ms=20)
    assert verdict.decision is None
    pending, verdict = collect_line_outcome(pending, result("B", "LOCKED", qty=2), now_ms=21)
    assert verdict.decision["status"] == "LOCKED" and verdict.release_skus == []
    assert verdict.decision["lines"] == [{"sku": "A", "qty": 1, "region": "US"}, {"sku": "B", "qty": 2, "region": "US"}]
    assert verdict.decision["decided_at"] == 21 and verdict.decision["placed_at"] == 10


def test_one_rejected_line_rejects_the_order_and_releases_the_others():
    pending, _ = collect_line_outcome(None, result("A", "LOCKED"), now_ms=20)
    pending, verdict = collect_line_outcome(pending, result("B", "REJECTED", reason="OUT_OF_STOCK"), now_ms=21)
    assert verdict.decision["status"] == "REJECTED" and verdict.decision["reason"] == "OUT_OF_STOCK"
    assert verdict.release_skus == ["A"]
    assert all(line["region"] is None for line in verdict.decision["lines"])


def test_after_the_decision_everything_is_a_replay():
    pending, _ = collect_line_outcome(None, result("A", "LOCKED"), now_ms=20)
    pending, first = collect_line_outcome(pending, result("B", "REJECTED", reason="OUT_OF_STOCK"), now_ms=21)
    # the compensation's echo is absorbed silently
    pending, echo = collect_line_outcome(pending, result("A", "RELEASED", reason=COMPENSATION), now_ms=22)
    assert echo.decision is None and echo.release_skus == [] and echo.replayed
    # a redelivered LOCKED result of a rejected order is released again (idempotent downstream)
    pending, again = collect_line_outcome(pending, result("A", "LOCKED"), now_ms=23)
    assert again.decision == first.decision and again.release_skus == ["A"]
    assert PendingOrder.from_dict(pending.to_dict()) == pending


def test_rejection_before_locking():
    decision = rejection(order(("A", 0)), INVALID_QUANTITY, now_ms=5)
    assert decision["status"] == "REJECTED" and decision["reason"] == INVALID_QUANTITY
    assert decision["lines"] == [{"sku": "A", "qty": 0, "region": None}]


def test_one_lock_request_per_sku_and_compensation_for_locked_lines():
    from streams.engine.orders import compensation_requests, lock_requests

    requests = lock_requests(order(("A", 1), ("B", 2), ("A", 3)))
    assert [(r["sku"], r["qty"], r["action"], r["sku_count"], r["region"]) for r in requests] == [
        ("A", 4, "LOCK", 2, "US"), ("B", 2, "LOCK", 2, "US")]
    pending, _ = collect_line_outcome(None, result("A", "LOCKED", qty=4), now_ms=20)
    pending, verdict = collect_line_outcome(pending, result("B", "REJECTED", reason="OUT_OF_STOCK"), now_ms=21)
    [release] = compensation_requests(pending, verdict.release_skus)
    assert (release["sku"], release["qty"], release["action"], release["reason"]) == ("A", 4, "RELEASE", COMPENSATION)
