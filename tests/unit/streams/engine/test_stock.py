"""Per-SKU line actions (lock, release, commit, ship) as pure functions over ``SkuState``."""

from __future__ import annotations

import copy
from functools import partial

import pytest

from streams.engine.commands import apply_command
from streams.engine.state import BUYER, DONE, LINE, SkuState
from streams.engine.stock import (
    CHANNEL_PAUSED, LOCKED, OUT_OF_STOCK, PURCHASE_LIMIT, REJECTED, RELEASED, SHIPPED, UNKNOWN_REGION,
    UNKNOWN_SKU, apply_line_request, commit_order_line, pick_warehouses, release_order_line,
    ship_order_line,
)
from tests.builders import CATALOG, NOW, inventory_command, line_lock_request, lock_line, stocked, with_rules

# This module's lines were placed 5 ms before they are handled.
request = partial(line_lock_request, placed_at=NOW - 5)
lock = partial(lock_line, placed_at=NOW - 5)


def small(catalog=CATALOG) -> SkuState:
    """US/EU/SEA hold 10 each, the other 70 are flex."""
    return stocked(100, catalog=catalog, regions={"US": 10, "EU": 10, "SEA": 10}, flex_pct=0)


def snapshot(state: SkuState) -> dict:
    return copy.deepcopy(state.to_dict())


def by_type(alerts, kind):
    return [a for a in alerts if a["type"] == kind]


# -- lock ---------------------------------------------------------------------------------------------

def test_lock_takes_units_from_the_orders_region():
    state = stocked()
    assert (state.regions["US"].allocation, state.flex, state.available) == (960, 600, 3000)
    state, outcome, alerts = lock(state, "o1", 2)
    assert (outcome.status, outcome.reason, outcome.region, outcome.replayed) == (LOCKED, None, "US", False)
    assert state.regions["US"].locked == 2 and state.regions["US"].free == 958
    assert state.regions["EU"].locked == 0 and state.flex == 600
    assert state.available == 2998
    assert state.reservations["o1"].qty == 2 and state.reservations["o1"].region == "US"
    assert state.reservations["o1"].buyer == "b1" and state.reservations["o1"].channel == "tiktok-us"
    assert state.buyers == {"b1": 2}
    assert alerts == []


def test_lock_uses_flex_when_the_region_is_short_and_announces_it():
    state = small(with_rules(flex_chunk=5))
    state, outcome, _ = lock(state, "o1", 8, catalog=with_rules(flex_chunk=5))
    assert outcome.status == LOCKED and state.flex == 70  # 8 of 10: below the 85 % threshold
    state, outcome, alerts = lock(state, "o2", 4, catalog=with_rules(flex_chunk=5))
    # 2 free, 2 short: a flex chunk of 5 (not just the 2 missing) moves to US
    assert outcome.status == LOCKED and outcome.region == "US"
    transfers = by_type(alerts, "FLEX_TRANSFER")
    assert len(transfers) == 1
    assert transfers[0]["region"] == "US" and transfers[0]["quantity"] == 5
    assert "short of 2" in transfers[0]["details"]["trigger"]
    assert state.flex == 65 and state.regions["US"].allocation == 15 and state.regions["US"].locked == 12
    assert state.total == 100 == state.flex + sum(r.allocation for r in state.regions.values())


def test_flex_moves_at_least_what_is_short_and_at_most_what_is_left():
    state = small(with_rules(flex_chunk=5))
    state, outcome, alerts = lock(state, "o1", 30, catalog=with_rules(flex_chunk=5))  # 20 short > chunk
    assert outcome.status == LOCKED
    assert by_type(alerts, "FLEX_TRANSFER")[0]["quantity"] == 20
    state = small()  # chunk 200 > 70 in flex: all of flex moves
    state, outcome, alerts = lock(state, "o1", 11)
    assert outcome.status == LOCKED
    assert by_type(alerts, "FLEX_TRANSFER")[0]["quantity"] == 70 and state.flex == 0


def test_out_of_stock_when_region_and_flex_are_not_enough():
    quiet = with_rules(realloc_min_units=10**9, limit_min_units=10**9)  # no reallocation, no automatic limit
    state = small(quiet)
    before = state.to_dict()["regions"], state.flex
    state, outcome, alerts = lock(state, "o1", 81, catalog=quiet, region="EU", channel="tiktok-eu")  # 10 + 70 flex = 80
    assert (outcome.status, outcome.reason, outcome.region) == (REJECTED, OUT_OF_STOCK, None)
    assert (state.to_dict()["regions"], state.flex) == before and alerts == []
    assert state.history["o1"] == f"{REJECTED}:{OUT_OF_STOCK}"
    assert "o1" not in state.reservations and state.buyers == {}
    state, outcome, _ = lock(state, "o2", 80, catalog=quiet, region="EU", channel="tiktok-eu")
    assert outcome.status == LOCKED and state.available == 20  # the other regions' 20
    state, outcome, _ = lock(state, "o3", 1, catalog=quiet, region="EU", channel="tiktok-eu")
    assert (outcome.status, outcome.reason) == (REJECTED, OUT_OF_STOCK)
    assert state.regions["EU"].locked == 80 and state.regions["US"].free == 10


def test_selling_out_fast_sets_an_automatic_limit():
    state = small()
    state, outcome, alerts = lock(state, "o1", 80, region="EU", channel="tiktok-eu")
    assert outcome.status == LOCKED
    assert state.buyer_limit == 2 and state.limit_source == "auto"
    assert {"FLEX_TRANSFER", "PURCHASE_LIMIT_TRIGGERED"} <= {a["type"] for a in alerts}
    state, outcome, _ = lock(state, "o2", 3, region="EU", channel="tiktok-eu", buyer_id="b2")
    assert (outcome.status, outcome.reason) == (REJECTED, PURCHASE_LIMIT)


def test_purchase_limit_is_checked_per_buyer_before_stock():
    state = stocked()
    state, _, _ = apply_command(state, inventory_command("SET_PURCHASE_LIMIT", "lim", buyer_limit=2), CATALOG, NOW)
    state, outcome, _ = lock(state, "o1", 2)
    assert outcome.status == LOCKED
    state, outcome, _ = lock(state, "o2", 1, channel="amazon-us")  # the limit spans channels
    assert (outcome.status, outcome.reason) == (REJECTED, PURCHASE_LIMIT)
    state, outcome, _ = lock(state, "o3", 3, buyer_id="b2")
    assert (outcome.status, outcome.reason) == (REJECTED, PURCHASE_LIMIT)
    state, outcome, _ = lock(state, "o4", 2, buyer_id="b2")
    assert outcome.status == LOCKED
    state, _, _ = release_order_line(state, "o1", "CANCELLED", CATALOG, NOW)
    state, outcome, _ = lock(state, "o5", 2)  # released units no longer count
    assert outcome.status == LOCKED
    assert state.buyers == {"b1": 2, "b2": 2}


def test_unknown_sku_is_rejected_without_creating_state():
    state, outcome, alerts = lock(None, "o1", 1)
    assert state is None and (outcome.status, outcome.reason) == (REJECTED, UNKNOWN_SKU) and alerts == []


def test_unknown_region_is_rejected_and_remembered():
    state = stocked()
    state, outcome, _ = lock(state, "o1", 1, region="MARS")
    assert (outcome.status, outcome.reason) == (REJECTED, UNKNOWN_REGION)
    assert "MARS" not in state.regions and state.available == 3000
    state, outcome, _ = lock(state, "o2", 1, region=None)
    assert (outcome.status, outcome.reason) == (REJECTED, UNKNOWN_REGION)


def test_paused_channel_cannot_lock_but_others_can():
    state = stocked()
    state, _, _ = apply_command(state, inventory_command("PAUSE_CHANNEL", "p", channel="tiktok-us"), CATALOG, NOW)
    state, outcome, _ = lock(state, "o1", 1, channel="tiktok-us")
    assert (outcome.status, outcome.reason) == (REJECTED, CHANNEL_PAUSED)
    state, outcome, _ = lock(state, "o2", 1, channel="youtube-us")
    assert outcome.status == LOCKED
    state, _, _ = apply_command(state, inventory_command("RESUME_CHANNEL", "r", channel="tiktok-us"), CATALOG, NOW)
    state, outcome, _ = lock(state, "o3", 1, channel="tiktok-us")
    assert outcome.status == LOCKED
    assert state.regions["US"].locked == 2


def test_zero_quantity_is_a_bug_upstream():
    with pytest.raises(ValueError, match="qty must be > 0"):
        lock(stocked(), "o1", 0)


# -- idempotence ----------------------------------------------------------------------------------------

def test_redelivered_lock_repeats_the_answer_and_never_locks_twice():
    state = stocked()
    state, first, _ = lock(state, "o1", 2)
    before = snapshot(state)
    state, again, alerts = lock(state, "o1", 2)
    assert (again.status, again.region, again.replayed) == (first.status, first.region, True)
    assert snapshot(state) == before and alerts == []
    assert state.regions["US"].locked == 2


def test_redelivered_rejection_stays_a_rejection_even_with_room_now():
    state = small()
    state, first, _ = lock(state, "o1", 500)
    assert (first.status, first.reason) == (REJECTED, OUT_OF_STOCK)
    state, _, _ = apply_command(state, inventory_command("RESTOCK", "rs", quantity=1000, region="US"), CATALOG, NOW)
    before = snapshot(state)
    state, again, _ = lock(state, "o1", 500)
    assert (again.status, again.reason, again.replayed) == (REJECTED, OUT_OF_STOCK, True)
    assert snapshot(state) == before


def test_lock_redelivered_after_release_holds_nothing():
    state = stocked()
    state, _, _ = lock(state, "o1", 2)
    state, _, _ = release_order_line(state, "o1", "CANCELLED", CATALOG, NOW)
    before = snapshot(state)
    state, late, _ = lock(state, "o1", 2)
    assert late.status == RELEASED and late.replayed
    assert snapshot(state) == before and state.regions["US"].locked == 0


def test_release_before_lock_makes_the_late_lock_a_no_op():
    state = stocked()
    state, outcome, _ = release_order_line(state, "o1", "COMPENSATION", CATALOG, NOW)
    assert outcome.status == RELEASED and outcome.replayed
    state, late, _ = lock(state, "o1", 2)
    assert (late.status, late.reason) == (RELEASED, "COMPENSATION")
    assert state.regions["US"].locked == 0 and "o1" not in state.reservations


def test_lock_redelivered_after_ship_answers_locked_and_takes_nothing():
    state = stocked()
    state, _, _ = lock(state, "o1", 2)
    state, _, _ = ship_order_line(state, "o1", None, CATALOG, NOW)
    before = snapshot(state)
    state, late, _ = lock(state, "o1", 2)
    assert late.status == LOCKED and late.replayed
    assert snapshot(state) == before
    assert state.regions["US"].shipped == 2 and state.regions["US"].locked == 0


def test_lock_redelivered_after_ship_repeats_the_original_answer():
    state = stocked()
    state, first, _ = lock(state, "o1", 2)
    state, _, _ = ship_order_line(state, "o1", None, CATALOG, NOW)
    state, late, _ = lock(state, "o1", 2)
    assert (late.status, late.reason, late.region) == (first.status, first.reason, first.region)  # LOCKED, None, US


# -- release / commit / ship ------------------------------------------------------------------------------

def test_release_gives_units_back_once():
    state = stocked()
    state, _, _ = lock(state, "o1", 3)
    state, outcome, _ = release_order_line(state, "o1", "CANCELLED", CATALOG, NOW)
    assert (outcome.status, outcome.reason, outcome.region, outcome.replayed) == (RELEASED, "CANCELLED", "US", False)
    assert state.regions["US"].locked == 0 and state.available == 3000 and state.buyers == {}
    assert state.history["o1"] == "RELEASED:CANCELLED" and "o1" not in state.reservations
    before = snapshot(state)
    state, again, alerts = release_order_line(state, "o1", "CANCELLED", CATALOG, NOW)
    assert again.replayed and snapshot(state) == before and alerts == []


def test_release_of_a_paid_lock_returns_paid_units():
    state = stocked()
    state, _, _ = lock(state, "o1", 3)
    state, outcome = commit_order_line(state, "o1")
    assert state.regions["US"].paid == 3
    state, outcome, _ = release_order_line(state, "o1", "REFUNDED", CATALOG, NOW)
    assert outcome.status == RELEASED
    assert (state.regions["US"].locked, state.regions["US"].paid) == (0, 0) and state.available == 3000


def test_release_after_ship_is_not_a_return():
    state = stocked()
    state, _, _ = lock(state, "o1", 3)
    state, _, _ = ship_order_line(state, "o1", None, CATALOG, NOW)
    before = snapshot(state)
    state, outcome, _ = release_order_line(state, "o1", "CANCELLED", CATALOG, NOW)
    assert outcome.status == SHIPPED and outcome.replayed
    assert snapshot(state) == before and state.regions["US"].shipped == 3


def test_release_on_unknown_sku_is_a_no_op():
    state, outcome, alerts = release_order_line(None, "o1", "CANCELLED", CATALOG, NOW)
    assert state is None and outcome.status == RELEASED and outcome.replayed and alerts == []


def test_commit_moves_locked_to_paid_once():
    state = stocked()
    state, _, _ = lock(state, "o1", 3)
    state, outcome = commit_order_line(state, "o1")
    assert (outcome.status, outcome.region, outcome.replayed) == (LOCKED, "US", False)
    us = state.regions["US"]
    assert (us.locked, us.paid, us.free) == (0, 3, 957)
    assert state.reservations["o1"].paid
    state, again = commit_order_line(state, "o1")
    assert again.replayed and (us.locked, us.paid) == (0, 3)
    before = snapshot(state)
    state, unknown = commit_order_line(state, "nope")
    assert unknown.replayed and snapshot(state) == before
    assert commit_order_line(None, "o1") == (None, unknown)


def test_ship_takes_units_out_of_the_nearest_warehouse():
    state = stocked()
    assert state.warehouses == {"LA": 1560, "NJ": 0, "RTM": 800, "KUL": 640}
    state, _, _ = lock(state, "o1", 3)
    state, _ = commit_order_line(state, "o1")
    state, outcome, picks = ship_order_line(state, "o1", None, CATALOG, NOW)
    assert (outcome.status, outcome.region) == (SHIPPED, "US") and picks == [("LA", 3)]
    us = state.regions["US"]
    assert (us.locked, us.paid, us.shipped, us.free) == (0, 0, 3, 957)
    assert state.warehouses["LA"] == 1557 and state.ship_shortfall == 0
    assert state.history["o1"] == "SHIPPED:US:LA" and "o1" not in state.reservations
    assert state.buyers == {"b1": 3}  # shipped units still count toward a purchase limit
    assert state.available == 2997
    before = snapshot(state)
    state, again, picks = ship_order_line(state, "o1", None, CATALOG, NOW)
    assert again.replayed and picks == [] and snapshot(state) == before


def test_ship_of_an_unpaid_lock_and_of_a_named_warehouse():
    state = stocked(warehouses={"LA": 1000, "NJ": 1000, "RTM": 500, "KUL": 500})
    state, _, _ = lock(state, "o1", 2, region="EU", channel="tiktok-eu")
    state, outcome, picks = ship_order_line(state, "o1", "NJ", CATALOG, NOW)
    assert outcome.status == SHIPPED and picks == [("NJ", 2)]
    eu = state.regions["EU"]
    assert (eu.locked, eu.shipped) == (0, 2) and state.warehouses["NJ"] == 998
    assert state.history["o1"] == "SHIPPED:EU:NJ"


def test_ship_with_no_stock_anywhere_records_the_shortfall():
    state = stocked(warehouses={"LA": 0, "NJ": 1, "RTM": 0, "KUL": 2999})
    state, _, _ = lock(state, "o1", 3)
    state.warehouses = {"LA": 0, "NJ": 1, "RTM": 0, "KUL": 1}  # the count is off
    state, outcome, picks = ship_order_line(state, "o1", None, CATALOG, NOW)
    assert outcome.status == SHIPPED and picks == [("NJ", 1), ("KUL", 1)]
    assert state.ship_shortfall == 1 and all(n == 0 for n in state.warehouses.values())
    assert state.history["o1"] == "SHIPPED:US:NJ+KUL"
    assert state.regions["US"].shipped == 3


# -- warehouse picking ------------------------------------------------------------------------------------

def with_warehouses(**counts) -> SkuState:
    state = SkuState(sku="A")
    state.warehouses = dict(counts)
    return state


def test_pick_named_warehouse():
    state = with_warehouses(LA=10, NJ=10, RTM=10, KUL=10)
    assert pick_warehouses(state, CATALOG, "US", 4, "RTM") == [("RTM", 4)]  # the platform said so
    assert pick_warehouses(with_warehouses(LA=10, NJ=2), CATALOG, "US", 4, "NJ") == [("NJ", 2)]
    assert pick_warehouses(with_warehouses(LA=10, NJ=0), CATALOG, "US", 4, "NJ") == []
    assert pick_warehouses(with_warehouses(LA=10), CATALOG, "US", 4, "NOWHERE") == []


def test_pick_nearest_single_warehouse_holding_everything():
    assert pick_warehouses(with_warehouses(LA=10, NJ=10, RTM=10, KUL=10), CATALOG, "US", 4) == [("LA", 4)]
    assert pick_warehouses(with_warehouses(LA=3, NJ=10, RTM=10, KUL=10), CATALOG, "US", 4) == [("NJ", 4)]
    assert pick_warehouses(with_warehouses(LA=3, NJ=3, RTM=10, KUL=10), CATALOG, "US", 4) == [("RTM", 4)]
    assert pick_warehouses(with_warehouses(LA=10, NJ=10, RTM=10, KUL=0), CATALOG, "SEA", 4) == [("LA", 4)]
    assert pick_warehouses(with_warehouses(LA=10, RTM=10, KUL=10), CATALOG, "EU", 4) == [("RTM", 4)]


def test_pick_splits_nearest_first_when_no_single_warehouse_has_enough():
    state = with_warehouses(LA=3, NJ=2, RTM=4, KUL=10)
    assert pick_warehouses(state, CATALOG, "US", 12) == [("LA", 3), ("NJ", 2), ("RTM", 4), ("KUL", 3)]
    state = with_warehouses(LA=3, NJ=2, RTM=4, KUL=5)
    assert pick_warehouses(state, CATALOG, "SEA", 7) == [("KUL", 5), ("LA", 2)]


def test_pick_shortfall_takes_everything_there_is():
    state = with_warehouses(LA=1, NJ=0, RTM=2, KUL=0)
    picks = pick_warehouses(state, CATALOG, "US", 10)
    assert picks == [("LA", 1), ("RTM", 2)]
    assert pick_warehouses(with_warehouses(), CATALOG, "US", 10) == []


# -- apply_line_request -------------------------------------------------------------------------------------

def test_apply_line_request_answers_only_locks():
    state = stocked()
    state, result, alerts = apply_line_request(state, request("o1", 2, sku_count=3), CATALOG, NOW)
    assert result == {
        "order_id": "o1", "sku": "A", "qty": 2, "status": LOCKED, "reason": None, "region": "US",
        "sku_count": 3, "channel": "tiktok-us", "placed_at": NOW - 5, "decided_at": NOW, "announced": False,
    }
    state, result, _ = apply_line_request(state, request("o1", action="COMMIT"), CATALOG, NOW)
    assert result is None and state.regions["US"].paid == 2
    state, result, _ = apply_line_request(state, request("o1", action="SHIP", warehouse="NJ"), CATALOG, NOW)
    assert result is None and state.regions["US"].shipped == 2 and state.ship_shortfall == 2  # NJ holds none
    state, result, _ = apply_line_request(state, request("o2", 1), CATALOG, NOW)
    state, result, _ = apply_line_request(state, request("o2", action="RELEASE"), CATALOG, NOW)
    assert result is None and state.history["o2"] == "RELEASED:RELEASED"  # no reason given
    state, result, _ = apply_line_request(state, request("o3", 1, region="MARS"), CATALOG, NOW)
    assert (result["status"], result["reason"], result["region"]) == (REJECTED, UNKNOWN_REGION, None)


def test_apply_line_request_on_unknown_sku_and_bad_action():
    state, result, _ = apply_line_request(None, request("o1"), CATALOG, NOW)
    assert state is None and (result["status"], result["reason"]) == (REJECTED, UNKNOWN_SKU)
    with pytest.raises(ValueError, match="unknown lock action"):
        apply_line_request(stocked(), request("o1", action="STEAL"), CATALOG, NOW)


# -- state ----------------------------------------------------------------------------------------------------

def test_the_head_does_not_grow_with_orders_buyers_or_history():
    state = stocked(50_000)
    size = len(state.to_json())
    for n in range(6_000):
        state, outcome, _ = lock(state, f"o{n}", 1, buyer_id=f"b{n}", now=NOW)
        assert outcome.status == LOCKED
        if n % 2:
            state, _, _ = release_order_line(state, f"o{n}", "CANCELLED", CATALOG, NOW)
    assert len(state.to_json()) <= size + 64  # counts and the sales bucket grew by some digits
    assert state.open_reservations == len(state.reservations) == 3_000
    assert len(state.history) == 3_000 and state.lines.get(LINE, "o1") == [DONE, "RELEASED:CANCELLED", NOW]
    assert state.lines.get(BUYER, "b2") == [1, NOW] and state.lines.get(BUYER, "b1") == [0, NOW]


def test_state_survives_its_dict_form():
    state = stocked()
    state, _, _ = lock(state, "o1", 4)
    state, _, _ = lock(state, "o2", 1, region="SEA", channel="shopee-my", buyer_id="b2")
    state, _ = commit_order_line(state, "o2")
    state, _, _ = lock(state, "o3", 5000)
    restock = inventory_command("RESTOCK", "t1", quantity=50, region="EU", eta=NOW + 10)
    state, _, _ = apply_command(state, restock, CATALOG, NOW)
    data = snapshot(state)
    again = SkuState.from_dict(copy.deepcopy(data))
    assert again.to_dict() == data
    assert again == state
    assert again.public_view() == state.public_view()


def test_public_view_sums_regions():
    state = stocked()
    state, _, _ = lock(state, "o1", 4)
    state, _, _ = lock(state, "o2", 3, region="EU", channel="tiktok-eu")
    state, _ = commit_order_line(state, "o2")
    restock = inventory_command("RESTOCK", "t1", quantity=50, region="EU", eta=NOW + 10)
    state, _, _ = apply_command(state, restock, CATALOG, NOW)
    view = state.public_view()
    assert (view["total"], view["available"], view["flex"]) == (3000, 2993, 600)
    assert (view["locked"], view["paid"], view["shipped"]) == (4, 3, 0)
    assert view["regions"]["EU"] == {"allocation": 800, "locked": 0, "paid": 3, "shipped": 0, "free": 797,
                                     "in_transit": 50}
    assert view["in_transit"] == [{"id": "t1", "qty": 50, "region": "EU", "warehouse": "RTM", "eta": NOW + 10}]
    assert view["open_reservations"] == 2 and view["paused_channels"] == []
    assert "history" not in view and "reservations" not in view


def test_the_json_table_value_is_to_dict_and_decodes_back():
    import orjson

    state, _, _ = lock(stocked(), "o1", 2)
    assert state.reservations
    assert orjson.loads(state.to_json()) == state.to_dict()
    assert SkuState.from_dict(orjson.loads(state.to_json())) == state


def test_only_a_fresh_answer_to_a_single_sku_order_is_announced_by_the_keeper():
    state = stocked()
    state, first, _ = apply_line_request(state, request("o1", 2, sku_count=1), CATALOG, NOW)
    assert first["announced"] and first["status"] == LOCKED
    state, again, _ = apply_line_request(state, request("o1", 2, sku_count=1), CATALOG, NOW + 1)
    assert again["status"] == LOCKED and not again["announced"]  # a redelivery: announced the first time
    state, _, _ = apply_line_request(state, request("o1", 2, sku_count=1, action="RELEASE", reason="CANCELLED"), CATALOG, NOW + 2)
    state, late, _ = apply_line_request(state, request("o1", 2, sku_count=1), CATALOG, NOW + 3)
    assert late["status"] != LOCKED and not late["announced"]  # the desk's RELEASED decision stands
