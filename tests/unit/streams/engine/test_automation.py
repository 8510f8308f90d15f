"""The engine's automatic reactions: flex transfers, purchase limits, replenishment, reallocation."""

from __future__ import annotations

import copy
import dataclasses

import orjson
import pytest
from hypothesis import given, settings, strategies as st

from lockstock.catalog import Rules, load_catalog
from streams.engine import automation
from streams.engine.automation import (
    flex_on_threshold, purchase_limit, react, reallocation, record_sale, replenishment, velocity_per_s,
    window_sales,
)
from streams.engine.commands import apply_command
from streams.engine.state import RegionStock, SkuState
from tests.builders import inventory_command, line_lock_request

CATALOG = load_catalog()
RULES = Rules()
T0 = 10_000_000  # a bucket boundary (buckets are 600 s / 12 = 50 s)
S = 1000  # ms per second


def sku(total=None, flex=0, **regions: RegionStock) -> SkuState:
    state = SkuState(sku="A", flex=flex, regions=dict(regions))
    state.total = total if total is not None else flex + sum(r.allocation for r in regions.values())
    return state


def sell(state, region, qty, at, rules=RULES):
    record_sale(state, region, qty, at, rules)


def types(alerts):
    return [a["type"] for a in alerts]


# -- sales window ----------------------------------------------------------------------------------

def test_window_counts_recent_sales_per_region_and_forgets_old_ones():
    state = sku()
    sell(state, "US", 3, T0)
    sell(state, "US", 1, T0 + 10 * S)  # same 50 s bucket
    sell(state, "EU", 2, T0 + 60 * S)
    assert len(state.sales) == 2
    assert window_sales(state, T0 + 60 * S, RULES) == {"US": 4, "EU": 2}
    assert window_sales(state, T0 + 649 * S, RULES) == {"US": 4, "EU": 2}
    assert window_sales(state, T0 + 650 * S, RULES) == {"EU": 2}  # the first bucket left the window
    assert window_sales(state, T0 + 700 * S, RULES) == {}
    assert state.sales == []


def test_velocity_per_second():
    state = sku()
    assert velocity_per_s(state, T0, RULES) == 0.0
    sell(state, "US", 10, T0)
    assert velocity_per_s(state, T0, RULES) == pytest.approx(10 / 50)  # at least one bucket long
    assert velocity_per_s(state, T0 + 100 * S, RULES) == pytest.approx(10 / 100)
    sell(state, "US", 50, T0 + 500 * S)
    assert velocity_per_s(state, T0 + 600 * S, RULES) == pytest.approx(60 / 600)  # capped at the window


# -- flex transfer on threshold ----------------------------------------------------------------------

def test_flex_chunk_moves_when_a_region_crosses_the_threshold():
    state = sku(flex=1000, US=RegionStock(allocation=100, locked=84))
    assert flex_on_threshold(state, "US", T0, RULES) == []
    state.regions["US"].locked = 85
    alerts = flex_on_threshold(state, "US", T0, RULES)
    assert types(alerts) == ["FLEX_TRANSFER"]
    assert (alerts[0]["region"], alerts[0]["quantity"]) == ("US", 200)
    assert "US at 85% of its allocation" in alerts[0]["message"] and "800 left in flex" in alerts[0]["message"]
    assert state.flex == 800 and state.regions["US"].allocation == 300 and state.total == 1100


def test_flex_transfer_fires_once_per_crossing_and_again_after_recrossing():
    state = sku(flex=3, US=RegionStock(allocation=100, locked=95))
    first = flex_on_threshold(state, "US", T0, RULES)
    assert [a["quantity"] for a in first] == [3]  # capped by what is left in flex
    assert state.flex == 0 and state.regions["US"].allocation == 103 and state.regions["US"].above_flex_threshold
    assert flex_on_threshold(state, "US", T0, RULES) == []  # still above (95/103): no second transfer
    state.regions["US"].locked = 50  # released: below the threshold again
    assert flex_on_threshold(state, "US", T0, RULES) == []
    assert not state.regions["US"].above_flex_threshold
    state.flex += 50
    state.total += 50
    state.regions["US"].locked = 100  # crossing again
    again = flex_on_threshold(state, "US", T0, RULES)
    assert [a["quantity"] for a in again] == [50] and state.flex == 0


def test_flex_transfer_with_an_empty_pool_or_no_allocation():
    state = sku(flex=0, US=RegionStock(allocation=10, locked=10), EU=RegionStock(allocation=0))
    assert flex_on_threshold(state, "US", T0, RULES) == []
    assert state.regions["US"].above_flex_threshold  # crossed, with nothing to move
    assert flex_on_threshold(state, "EU", T0, RULES) == []
    assert flex_on_threshold(state, "SEA", T0, RULES) == []
    assert "SEA" not in state.regions


# -- purchase limits ------------------------------------------------------------------------------------

def test_no_limit_below_the_minimum_sales():
    state = sku(total=30, US=RegionStock(allocation=30, locked=19))
    sell(state, "US", 19, T0)
    assert purchase_limit(state, T0, RULES) == [] and state.buyer_limit is None


def test_limit_when_the_projected_sell_out_is_too_soon():
    far = sku(US=RegionStock(allocation=1020, locked=20))  # 1000 left at 0.4/s: 2500 s > 1800 s
    sell(far, "US", 20, T0)
    assert purchase_limit(far, T0, RULES) == [] and far.buyer_limit is None
    near = sku(US=RegionStock(allocation=520, locked=20))  # 500 left at 0.4/s: 1250 s
    sell(near, "US", 20, T0)
    alerts = purchase_limit(near, T0, RULES)
    assert types(alerts) == ["PURCHASE_LIMIT_TRIGGERED"]
    assert (near.buyer_limit, near.limit_source) == (2, "auto")
    assert alerts[0]["quantity"] == 2 and alerts[0]["details"]["source"] == "auto"
    assert alerts[0]["details"]["projected_sellout_s"] == "1250"
    assert "projected to sell out in 20.8 min" in alerts[0]["message"]
    assert purchase_limit(near, T0, RULES) == []  # set once


def test_limit_by_velocity_threshold():
    rules = dataclasses.replace(RULES, limit_velocity_per_min=20, limit_sellout_horizon_s=0, limit_per_buyer=3)
    slow = sku(US=RegionStock(allocation=10_000, locked=20))
    sell(slow, "US", 20, T0, rules)
    assert purchase_limit(slow, T0 + 100 * S, rules) == []  # 12 units/min
    fast = sku(US=RegionStock(allocation=10_000, locked=20))
    sell(fast, "US", 20, T0, rules)
    alerts = purchase_limit(fast, T0, rules)  # 20 units in 50 s: 24/min
    assert types(alerts) == ["PURCHASE_LIMIT_TRIGGERED"] and fast.buyer_limit == 3
    assert "selling 24 units/min (threshold 20)" in alerts[0]["message"]
    assert alerts[0]["details"]["velocity_per_min"] == "24.0"


def test_an_operator_limit_is_never_overridden():
    state = sku(US=RegionStock(allocation=520, locked=20))
    sell(state, "US", 20, T0)
    state.buyer_limit, state.limit_source = 7, "operator"
    assert purchase_limit(state, T0, RULES) == []
    assert react(state, T0, RULES, "US") == []
    assert (state.buyer_limit, state.limit_source) == (7, "operator")


def test_operator_limit_through_commands_survives_a_rush():
    state, _, _ = apply_command(None, inventory_command("SET_STOCK", "s", issued_at=T0, total=100), CATALOG, T0)
    state, _, _ = apply_command(state, inventory_command("SET_PURCHASE_LIMIT", "l", issued_at=T0, buyer_limit=40),
                                CATALOG, T0)
    from streams.engine.stock import lock_order_line
    for n in range(3):
        request = line_lock_request(f"o{n}", 10, buyer_id=f"b{n}", placed_at=T0)
        state, outcome, alerts = lock_order_line(state, request, CATALOG, T0)
        assert outcome.status == "LOCKED"
        assert "PURCHASE_LIMIT_TRIGGERED" not in types(alerts)
    assert (state.buyer_limit, state.limit_source) == (40, "operator")


# -- replenishment ---------------------------------------------------------------------------------------

def test_replenishment_once_per_crossing_with_hysteresis():
    state = sku(US=RegionStock(allocation=1000, locked=700))
    assert replenishment(state, T0, RULES) == []  # 300 left: not below 30 %
    state.regions["US"].locked = 705
    first = replenishment(state, T0, RULES)
    assert types(first) == ["REPLENISHMENT"]
    assert first[0]["quantity"] == 5  # no velocity: back up to the threshold (300)
    assert first[0]["details"]["available"] == "295" and first[0]["details"]["total"] == "1000"
    assert "295 of 1000 units left (< 30%); reorder 5" in first[0]["message"]
    assert state.low_stock
    state.regions["US"].locked = 800
    assert replenishment(state, T0, RULES) == []  # still low: no second alert
    state.regions["US"].locked = 700  # back at the threshold: re-armed
    assert replenishment(state, T0, RULES) == [] and not state.low_stock
    state.regions["US"].locked = 701
    second = replenishment(state, T0, RULES)
    assert types(second) == ["REPLENISHMENT"] and second[0]["alert_id"] != first[0]["alert_id"]


def test_reorder_quantity_covers_the_velocity_minus_what_is_coming():
    rules = dataclasses.replace(RULES, reorder_cover_s=1000)
    state = sku(US=RegionStock(allocation=1000, locked=760))  # 240 left of 1000
    sell(state, "US", 60, T0, rules)  # 60 units in a 50 s bucket: 1.2/s, 1200 in 1000 s
    state.in_transit = {"t1": {"qty": 100, "region": "US", "warehouse": "LA", "eta": T0 + 1}}
    alerts = replenishment(state, T0, rules)
    assert alerts[0]["quantity"] == 1200 - 240 - 100
    assert alerts[0]["details"]["in_transit"] == "100" and alerts[0]["details"]["velocity_per_min"] == "72.0"


def test_reorder_never_negative_and_no_alert_without_stock():
    state = sku(US=RegionStock(allocation=1000, locked=705))
    state.in_transit = {"t1": {"qty": 10_000, "region": "US", "warehouse": "LA", "eta": T0 + 1}}
    assert replenishment(state, T0, RULES)[0]["quantity"] == 0
    assert replenishment(sku(), T0, RULES) == []


# -- reallocation ------------------------------------------------------------------------------------------

def test_reallocation_moves_only_free_units_and_announces_it():
    rules = dataclasses.replace(RULES, realloc_boost=100, realloc_min_units=10)
    state = sku(
        US=RegionStock(allocation=45, locked=30, paid=9, baseline_share=0.4),  # 6 free
        EU=RegionStock(allocation=45, locked=20, shipped=18, baseline_share=0.4),  # 7 free
        SEA=RegionStock(allocation=20, locked=15, baseline_share=0.2),  # 5 free
    )
    sell(state, "SEA", 15, T0, rules)
    alerts = reallocation(state, T0, rules)
    assert types(alerts) == ["REALLOCATION"]
    assert (alerts[0]["region"], alerts[0]["quantity"], alerts[0]["details"]["sources"]) == ("SEA", 13, "EU:7,US:6")
    assert "SEA sells 100% of A (baseline 20%): moved 13 free units to it from EU:7,US:6" in alerts[0]["message"]
    assert [state.regions[r].free for r in ("US", "EU", "SEA")] == [0, 0, 18]  # every free unit, nothing more
    assert (state.regions["US"].locked, state.regions["US"].paid) == (30, 9)  # sold units stay where they are
    assert (state.regions["EU"].locked, state.regions["EU"].shipped) == (20, 18)
    assert sum(r.allocation for r in state.regions.values()) == 110 and state.total == 110


def test_reallocation_too_small_to_matter_is_not_announced():
    rules = dataclasses.replace(RULES, realloc_boost=100, realloc_min_units=10)
    state = sku(
        US=RegionStock(allocation=40, locked=39, baseline_share=0.4),  # 1 free
        EU=RegionStock(allocation=40, locked=38, baseline_share=0.4),  # 2 free
        SEA=RegionStock(allocation=20, locked=15, baseline_share=0.2),
    )
    sell(state, "SEA", 15, T0, rules)
    before = [r.allocation for r in state.regions.values()]
    assert reallocation(state, T0, rules) == []  # 3 more units for SEA: below realloc_min_units
    assert [r.allocation for r in state.regions.values()] == before and state.regions["SEA"].hot


def test_reallocation_after_default_stock_split():
    state, _, _ = apply_command(None, inventory_command("SET_STOCK", "s", issued_at=T0, total=3000), CATALOG, T0)
    state.regions["SEA"].locked = 30
    sell(state, "SEA", 30, T0)
    alerts = reallocation(state, T0, RULES)
    # SEA: 100 % of sales vs 26.7 % baseline -> up to 1.5 x 26.7 % = 40 % of the 2370 free units (948)
    assert types(alerts) == ["REALLOCATION"] and alerts[0]["details"]["sources"] == "EU:153,US:185"
    assert state.regions["SEA"].free == 948
    assert (state.regions["US"].allocation, state.regions["EU"].allocation) == (960 - 185, 800 - 153)
    assert state.flex == 600  # flex is not touched


def test_reallocation_once_per_crossing_with_a_cool_down_band():
    rules = dataclasses.replace(RULES, realloc_min_units=10)
    state = sku(US=RegionStock(allocation=30, baseline_share=0.3), EU=RegionStock(allocation=70, baseline_share=0.7))
    sell(state, "US", 5, T0, rules)
    sell(state, "EU", 5, T0, rules)
    assert reallocation(state, T0, rules) == []  # US 50 % < 2 x 30 %: nobody is hot
    sell(state, "US", 100, T0 + 1 * S, rules)  # US now sells 105 of 110
    state.regions["US"].locked = 10
    first = reallocation(state, T0 + 1 * S, rules)
    # up to 1.5 x 30 % of the 90 free units (40) for US, which has 20 free: 20 come from EU
    assert types(first) == ["REALLOCATION"] and first[0]["details"]["sources"] == "EU:20"
    assert state.regions["US"].hot and state.regions["US"].free == 40
    allocations = [r.allocation for r in state.regions.values()]
    assert reallocation(state, T0 + 2 * S, rules) == []  # still hot: nothing more moves
    sell(state, "EU", 95, T0 + 3 * S, rules)  # US at 105 of 205 (51 %): below the trigger, above the cool-down
    assert reallocation(state, T0 + 3 * S, rules) == [] and state.regions["US"].hot
    assert [r.allocation for r in state.regions.values()] == allocations
    sell(state, "EU", 300, T0 + 4 * S, rules)  # US at 21 %: cooled down, may fire again later
    assert reallocation(state, T0 + 4 * S, rules) == [] and not state.regions["US"].hot
    sell(state, "US", 1000, T0 + 5 * S, rules)  # hot again: a second crossing moves again
    state.regions["US"].locked = 39
    again = reallocation(state, T0 + 5 * S, rules)
    assert types(again) == ["REALLOCATION"] and again[0]["alert_id"] != first[0]["alert_id"]


def test_no_reallocation_below_the_minimum_sales():
    state = sku(US=RegionStock(allocation=50, baseline_share=0.5), EU=RegionStock(allocation=50, baseline_share=0.5))
    sell(state, "US", 29, T0)
    before = copy.deepcopy(state)
    assert reallocation(state, T0, RULES) == [] and state == before


# -- react and alert ids -------------------------------------------------------------------------------------

def test_alert_ids_are_per_sku_and_increasing():
    state = sku(flex=1000, US=RegionStock(allocation=100, locked=90), EU=RegionStock(allocation=100, locked=95))
    alerts = react(state, T0, RULES, "EU")
    assert types(alerts) == ["FLEX_TRANSFER", "FLEX_TRANSFER"]
    assert [a["region"] for a in alerts] == ["EU", "US"]  # the region that changed first
    assert [a["alert_id"] for a in alerts] == ["A:flex_transfer:1", "A:flex_transfer:2"]
    assert all(a["sku"] == "A" and a["raised_at"] == T0 for a in alerts)
    state.regions["US"].locked = 700 + 90
    more = react(state, T0, RULES)
    assert [a["alert_id"] for a in more] == ["A:replenishment:3"]


def test_alerts_are_deterministic_on_replay():
    state = sku(flex=1000, US=RegionStock(allocation=100, locked=90, baseline_share=1.0))
    sell(state, "US", 90, T0)
    copy_of_state = copy.deepcopy(state)
    assert react(state, T0, RULES, "US") == react(copy_of_state, T0, RULES, "US")
    assert state == copy_of_state


def test_alert_details_are_strings():
    state = sku()
    alert = automation.alert(state, "X_Y", "m", T0, region="US", quantity=3, n=5, f=1.5)
    assert alert == {"alert_id": "A:x_y:1", "sku": "A", "type": "X_Y", "message": "m", "raised_at": T0,
                     "region": "US", "channel": None, "quantity": 3, "details": {"n": "5", "f": "1.5"}}


# -- the window's running totals ---------------------------------------------------------------------

def _recounted(state: SkuState) -> dict[str, int]:
    units: dict[str, int] = {}
    for _, counts in state.sales:
        for region, qty in counts.items():
            units[region] = units.get(region, 0) + qty
    return units


_STEP = st.one_of(
    st.tuples(st.just("sell"), st.sampled_from(["US", "EU", "SEA"]), st.integers(1, 50), st.integers(0, 200)),
    st.tuples(st.just("look"), st.sampled_from(["window", "velocity", "react"]), st.just(0), st.integers(0, 400)),
    st.tuples(st.just("reload"), st.sampled_from(["json", "copy"]), st.just(0), st.just(0)),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_STEP, max_size=60), st.sampled_from([60, 600, 601]))
def test_the_running_window_totals_equal_a_recount_after_any_sales_prunes_and_reloads(steps, window_s):
    rules = dataclasses.replace(RULES, velocity_window_s=window_s)
    state = sku(total=10**6, flex=1000, US=RegionStock(allocation=10**5, baseline_share=0.5),
                EU=RegionStock(allocation=10**5, baseline_share=0.5))
    now = T0
    for action, what, qty, seconds in steps:
        now += seconds * S
        if action == "sell":
            record_sale(state, what, qty, now, rules)
        elif action == "reload":  # the totals are never stored: a state read back rebuilds them
            state = SkuState.from_dict(orjson.loads(state.to_json())) if what == "json" else copy.deepcopy(state)
            assert "sales_in_window" not in orjson.loads(state.to_json())
        elif what == "window":
            assert window_sales(state, now, rules) == _recounted(state)
        elif what == "velocity":
            units = sum(_recounted(copy.deepcopy(state)).values())
            velocity_per_s(state, now, rules)
            assert sum(_recounted(state).values()) <= units  # pruned, never added to
        else:
            react(state, now, rules)
        if state.sales_in_window is not None:
            assert state.sales_in_window == _recounted(state)
        assert window_sales(state, now, rules) == _recounted(state)
