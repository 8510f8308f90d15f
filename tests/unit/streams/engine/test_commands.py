"""Operator commands (InventoryCommand) and the stock split, as pure functions over ``SkuState``."""

from __future__ import annotations

import copy
from functools import partial

import pytest

from streams.engine.commands import CommandError, apply_command, plan_split
from streams.engine.state import COMMAND, SkuState
from streams.engine.stock import commit_order_line, ship_order_line
from tests import builders
from tests.builders import CATALOG, inventory_command, locked, quiet

NOW = 5_000_000
QUIET = quiet()  # locks here set no automatic limit

# This module's clock is NOW; its commands get fresh ids unless a test names one.
command = partial(inventory_command, issued_at=NOW)
stocked = partial(builders.stocked, command_id=None, now=NOW)
lock = partial(locked, catalog=QUIET, now=NOW)


def run(state, kind, **fields):
    return apply_command(state, command(kind, **fields), CATALOG, NOW)


def refused(state, kind, match, **fields):
    """The command raises CommandError with a reason and leaves the state exactly as it was."""
    before = copy.deepcopy(state.to_dict()) if state is not None else None
    cmd = command(kind, **fields)
    with pytest.raises(CommandError, match=match) as caught:
        apply_command(state, cmd, CATALOG, NOW)
    assert str(caught.value)
    if state is not None:
        assert state.to_dict() == before
        assert cmd["command_id"] not in state.applied_commands
    return str(caught.value)


def conserved(state: SkuState) -> bool:
    return state.total == state.flex + sum(r.allocation for r in state.regions.values())


# -- plan_split ------------------------------------------------------------------------------------------

SEED = {"US": 1200, "EU": 1000, "SEA": 800}


def test_seed_split_is_refused_with_the_numbers():
    with pytest.raises(CommandError) as caught:
        plan_split(3000, SEED, 20, CATALOG)
    message = str(caught.value)
    assert "US 1200 + EU 1000 + SEA 800 = 3000" in message
    assert "flex pool 600 (20% of 3000)" in message
    assert "= 3600, more than the 3000 units" in message
    assert "2400" in message and "proportional" in message


def test_seed_split_scaled_down_proportionally():
    assert plan_split(3000, SEED, 20, CATALOG, proportional=True) == ({"US": 960, "EU": 800, "SEA": 640}, 600)


def test_default_split_follows_the_catalog_weights():
    assert plan_split(3000, {}, 20, CATALOG) == ({"US": 960, "EU": 800, "SEA": 640}, 600)
    regions, flex = plan_split(1001, {}, 0, CATALOG)
    assert sum(regions.values()) == 1001 and flex == 0
    assert regions["US"] > regions["EU"] > regions["SEA"]


def test_unclaimed_units_join_the_flex_pool():
    assert plan_split(1000, {"US": 100}, 0, CATALOG) == ({"US": 100, "EU": 0, "SEA": 0}, 900)
    assert plan_split(1000, {"US": 500, "EU": 300}, 20, CATALOG) == ({"US": 500, "EU": 300, "SEA": 0}, 200)
    assert plan_split(3000, SEED, 0, CATALOG) == (SEED, 0)  # exactly the total fits
    assert plan_split(0, {}, 20, CATALOG) == ({"US": 0, "EU": 0, "SEA": 0}, 0)


@pytest.mark.parametrize(("total", "regions", "flex_pct", "match"), [
    (-1, {}, 20, "total must be >= 0, got -1"),
    (100, {}, 101, "flex pool must be 0-100 % of total, got 101"),
    (100, {}, -1, "flex pool must be 0-100"),
    (100, {"MARS": 1}, 20, "unknown region.*MARS; configured: US, EU, SEA"),
    (100, {"US": -5}, 20, "allocations must be >= 0, got US=-5"),
])
def test_plan_split_errors(total, regions, flex_pct, match):
    with pytest.raises(CommandError, match=match):
        plan_split(total, regions, flex_pct, CATALOG)


# -- SET_STOCK -------------------------------------------------------------------------------------------

def test_set_stock_creates_the_sku():
    state, applied, alerts = run(None, "SET_STOCK", total=3000)
    assert applied and alerts == []
    assert (state.sku, state.total, state.flex) == ("A", 3000, 600)
    assert {r: s.allocation for r, s in state.regions.items()} == {"US": 960, "EU": 800, "SEA": 640}
    assert state.regions["US"].baseline_share == pytest.approx(0.4)
    assert state.warehouses == {"LA": 960 + 600, "NJ": 0, "RTM": 800, "KUL": 640}
    assert conserved(state) and state.available == 3000


def test_set_stock_seed_example_through_the_command():
    refused(None, "SET_STOCK", "3600, more than the 3000", total=3000, regions=SEED, flex_pct=20)
    state, applied, _ = run(None, "SET_STOCK", total=3000, regions=SEED, flex_pct=20, proportional=True)
    assert applied and state.flex == 600
    assert {r: s.allocation for r, s in state.regions.items()} == {"US": 960, "EU": 800, "SEA": 640}


def test_set_stock_with_warehouse_counts():
    state = stocked(100, warehouses={"LA": 10, "NJ": 20, "RTM": 30, "KUL": 40})
    assert state.warehouses == {"LA": 10, "NJ": 20, "RTM": 30, "KUL": 40}
    refused(state, "SET_STOCK", "add up to 99, but 100 - 0 shipped = 100", total=100,
            warehouses={"LA": 99})
    refused(state, "SET_STOCK", "configured warehouses", total=100, warehouses={"XX": 100})
    refused(state, "SET_STOCK", "configured warehouses", total=100, warehouses={"LA": 101, "NJ": -1})
    refused(state, "SET_STOCK", "needs a total", total=None)


def test_set_stock_again_keeps_what_is_sold():
    state = stocked()
    state = lock(state, "o1", 100)
    state, _, _ = ship_order_line(state, "o1", None, CATALOG, NOW)
    state = lock(state, "o2", 50)
    new_split = command("SET_STOCK", total=4000, regions={"US": 1000, "EU": 1000, "SEA": 1000}, flex_pct=0)
    state, applied, _ = apply_command(state, new_split, QUIET, NOW)  # QUIET: no velocity reallocation
    assert applied and state.total == 4000 and state.flex == 1000
    us = state.regions["US"]
    assert (us.allocation, us.locked, us.shipped, us.free) == (1000, 50, 100, 850)
    assert "o2" in state.reservations
    assert sum(state.warehouses.values()) == 4000 - 100  # shipped units are not on hand
    assert conserved(state)


def test_set_stock_below_what_is_sold_is_refused():
    state = stocked()
    state = lock(state, "o1", 100)
    state, _ = commit_order_line(state, "o1")
    state = lock(state, "o2", 30, region="EU", channel="tiktok-eu")
    message = refused(state, "SET_STOCK", "less than already sold", total=1000,
                      regions={"US": 99, "EU": 10, "SEA": 0}, flex_pct=0)
    assert "US (100 locked/paid/shipped)" in message and "EU (30 locked/paid/shipped)" in message


def test_duplicate_command_id_is_a_no_op():
    state = stocked()  # applied as "c<n>"; its id is remembered
    (set_id,) = state.applied_commands
    before = copy.deepcopy(state.to_dict())
    state, applied, alerts = apply_command(state, command("SET_STOCK", set_id, total=999), CATALOG, NOW)
    assert not applied and alerts == [] and state.to_dict() == before
    restock = command("RESTOCK", "rs-1", quantity=10, region="US")
    state, applied, _ = apply_command(state, restock, CATALOG, NOW)
    assert applied and state.total == 3010
    snapshot = copy.deepcopy(state.to_dict())
    state, applied, alerts = apply_command(state, restock, CATALOG, NOW)
    assert not applied and alerts == [] and state.to_dict() == snapshot


def test_applied_command_ids_are_records_of_their_own_and_the_head_does_not_grow():
    state = stocked()
    size = len(state.to_json())
    for n in range(600):
        state, applied, _ = apply_command(state, command("ADJUST", f"adj-{n}", quantity=1), CATALOG, NOW + n)
        assert applied
    assert len(state.to_json()) <= size + 16  # counts grew by some digits, nothing else
    assert len(state.applied_commands) == 601
    assert state.lines.get(COMMAND, "adj-599") == [NOW + 599]  # stamped: forgotten by time


def test_commands_other_than_set_stock_need_the_sku():
    refused(None, "RESTOCK", "unknown SKU 'A': set its stock first", quantity=5)
    refused(stocked(), "EXPLODE", "command type EXPLODE is not one this worker knows")


# -- RESTOCK ---------------------------------------------------------------------------------------------

def test_restock_arrived_adds_to_region_and_warehouse():
    state = stocked()
    state, applied, _ = run(state, "RESTOCK", quantity=100, region="EU")
    assert applied and state.total == 3100 and state.regions["EU"].allocation == 900
    assert state.warehouses["RTM"] == 900 and conserved(state)
    state, _, _ = run(state, "RESTOCK", quantity=10, region="US", warehouse="NJ")
    assert state.warehouses["NJ"] == 10 and state.regions["US"].allocation == 970
    state, _, _ = run(state, "RESTOCK", quantity=7)  # no region: the flex pool, first region's warehouse
    assert state.flex == 607 and state.warehouses["LA"] == 1567 and state.total == 3117 and conserved(state)


def test_restock_in_transit_is_shown_not_sold_until_received():
    state = stocked()
    state, applied, _ = apply_command(state, command("RESTOCK", "ship-1", quantity=500, region="SEA", eta=NOW + 3600_000),
                                      CATALOG, NOW)
    assert applied and state.total == 3000 and state.available == 3000
    assert state.in_transit == {"ship-1": {"qty": 500, "region": "SEA", "warehouse": "KUL", "eta": NOW + 3600_000}}
    assert state.public_view()["regions"]["SEA"]["in_transit"] == 500
    state, applied, _ = run(state, "RESTOCK", transit_id="ship-1", quantity=480)  # 20 broke on the way
    assert applied and state.in_transit == {}
    assert state.total == 3480 and state.regions["SEA"].allocation == 1120 and state.warehouses["KUL"] == 1120
    refused(state, "RESTOCK", "no shipment 'ship-1' in transit", transit_id="ship-1")


def test_restock_received_at_the_recorded_quantity_by_default():
    state = stocked()
    state, _, _ = apply_command(state, command("RESTOCK", "ship-2", quantity=50, eta=NOW + 1, warehouse="NJ"), CATALOG, NOW)
    assert state.in_transit["ship-2"]["region"] == "flex"
    state, _, _ = run(state, "RESTOCK", transit_id="ship-2")
    assert state.flex == 650 and state.warehouses["NJ"] == 50 and state.total == 3050


def test_restock_with_a_past_eta_arrives_now():
    state = stocked()
    state, _, _ = run(state, "RESTOCK", quantity=5, region="US", eta=NOW - 1)
    assert state.in_transit == {} and state.total == 3005


def test_restock_errors_change_nothing():
    state = stocked()
    state, _, _ = apply_command(state, command("RESTOCK", "ship-3", quantity=50, region="US", eta=NOW + 1), CATALOG, NOW)
    refused(state, "RESTOCK", "needs a quantity > 0, got 0", quantity=0)
    refused(state, "RESTOCK", "needs a quantity > 0, got -5", quantity=-5)
    refused(state, "RESTOCK", "needs a quantity > 0, got None")
    refused(state, "RESTOCK", "unknown region 'MARS'", quantity=5, region="MARS")
    refused(state, "RESTOCK", "unknown warehouse 'XX'", quantity=5, warehouse="XX")
    refused(state, "RESTOCK", "received quantity must be > 0, got 0", transit_id="ship-3", quantity=0)
    refused(state, "RESTOCK", "no shipment 'nope'", transit_id="nope")
    assert "ship-3" in state.in_transit


# -- TRANSFER --------------------------------------------------------------------------------------------

def test_transfer_moves_free_units():
    state = stocked()
    state, applied, _ = run(state, "TRANSFER", region="US", to_region="EU", quantity=100)
    assert applied and state.regions["US"].allocation == 860 and state.regions["EU"].allocation == 900
    state, _, _ = run(state, "TRANSFER", region="flex", to_region="SEA", quantity=50)
    assert state.flex == 550 and state.regions["SEA"].allocation == 690
    state, _, _ = run(state, "TRANSFER", region="EU", quantity=10)  # no target: back into flex
    assert state.flex == 560 and state.regions["EU"].allocation == 890
    assert state.total == 3000 and conserved(state)


def test_transfer_never_moves_locked_units():
    state = stocked(30, regions={"US": 10, "EU": 10, "SEA": 10}, flex_pct=0)  # no flex to top US up
    state = lock(state, "o1", 8)
    message = refused(state, "TRANSFER", "US has only 2 free units of A; cannot move 3",
                      region="US", to_region="EU", quantity=3)
    assert message
    state, applied, _ = run(state, "TRANSFER", region="US", to_region="EU", quantity=2)
    assert applied and state.regions["US"].allocation == 8 == state.regions["US"].locked


def test_transfer_errors_change_nothing():
    state = stocked()
    refused(state, "TRANSFER", "transfer from US to itself", region="US", to_region="US", quantity=1)
    refused(state, "TRANSFER", "flex to itself", quantity=1)
    refused(state, "TRANSFER", "unknown region 'MARS'", region="MARS", to_region="US", quantity=1)
    refused(state, "TRANSFER", "unknown region 'MARS'", region="US", to_region="MARS", quantity=1)
    refused(state, "TRANSFER", "needs a quantity > 0", region="US", to_region="EU", quantity=0)
    refused(state, "TRANSFER", "flex has only 600 free units", region="flex", to_region="EU", quantity=601)


# -- ADJUST ----------------------------------------------------------------------------------------------

def test_adjust_found_and_lost_units():
    state = stocked()
    state, applied, _ = run(state, "ADJUST", quantity=5, region="EU")
    assert applied and state.total == 3005 and state.regions["EU"].allocation == 805 and state.warehouses["RTM"] == 805
    state, _, _ = run(state, "ADJUST", quantity=-3, region="EU", reason="damaged")
    assert state.total == 3002 and state.regions["EU"].allocation == 802 and state.warehouses["RTM"] == 802
    state, _, _ = run(state, "ADJUST", quantity=-100)  # the flex pool, first region's first warehouse
    assert state.flex == 500 and state.warehouses["LA"] == 1460 and conserved(state)


def test_adjust_errors_change_nothing():
    state = stocked(100, regions={"US": 10, "EU": 10, "SEA": 10}, flex_pct=0)
    state = lock(state, "o1", 8)
    refused(state, "ADJUST", "cannot remove 3 units from US: only 2 are free", quantity=-3, region="US")
    refused(state, "ADJUST", "warehouse NJ holds only 0 units", quantity=-1, region="US", warehouse="NJ")
    refused(state, "ADJUST", "needs a quantity != 0, got 0", quantity=0)
    refused(state, "ADJUST", "needs a quantity != 0, got None")
    refused(state, "ADJUST", "unknown region", quantity=1, region="MARS")
    refused(state, "ADJUST", "unknown warehouse", quantity=1, region="US", warehouse="XX")


# -- purchase limits ---------------------------------------------------------------------------------------

def test_set_and_clear_purchase_limit():
    state = stocked()
    state, applied, alerts = run(state, "SET_PURCHASE_LIMIT", buyer_limit=3)
    assert applied and (state.buyer_limit, state.limit_source) == (3, "operator")
    assert [(a["type"], a["quantity"], a["details"]["source"]) for a in alerts] == [
        ("PURCHASE_LIMIT_TRIGGERED", 3, "operator")]
    state, applied, alerts = run(state, "CLEAR_PURCHASE_LIMIT")
    assert applied and (state.buyer_limit, state.limit_source) == (None, None)
    assert [a["type"] for a in alerts] == ["PURCHASE_LIMIT_CLEARED"]
    state, applied, alerts = run(state, "CLEAR_PURCHASE_LIMIT")  # nothing to clear: applied, quiet
    assert applied and alerts == []


def test_purchase_limit_errors():
    state = stocked()
    refused(state, "SET_PURCHASE_LIMIT", ">= 1 unit per buyer, got 0", buyer_limit=0)
    refused(state, "SET_PURCHASE_LIMIT", ">= 1 unit per buyer, got None")


# -- pause / resume ----------------------------------------------------------------------------------------

def test_pause_and_resume_channel():
    state = stocked()
    state, applied, alerts = run(state, "PAUSE_CHANNEL", channel="tiktok-us")
    assert applied and state.paused == ["tiktok-us"]
    assert [(a["type"], a["channel"]) for a in alerts] == [("CHANNEL_PAUSED", "tiktok-us")]
    state, _, _ = run(state, "PAUSE_CHANNEL", channel="amazon-eu")
    state, applied, alerts = run(state, "PAUSE_CHANNEL", channel="tiktok-us")
    assert applied and alerts == [] and state.paused == ["amazon-eu", "tiktok-us"]
    state, applied, alerts = run(state, "RESUME_CHANNEL", channel="tiktok-us")
    assert state.paused == ["amazon-eu"] and [a["type"] for a in alerts] == ["CHANNEL_RESUMED"]
    state, applied, alerts = run(state, "RESUME_CHANNEL", channel="tiktok-us")
    assert applied and alerts == [] and state.paused == ["amazon-eu"]


def test_pause_errors():
    state = stocked()
    refused(state, "PAUSE_CHANNEL", "unknown channel 'myspace'", channel="myspace")
    refused(state, "RESUME_CHANNEL", "unknown channel None")


def test_commands_run_the_automatic_reactions():
    state = stocked(100, regions={"US": 40, "EU": 10, "SEA": 10}, flex_pct=0)
    state = lock(state, "o1", 9)
    assert state.flex == 40
    # a new split leaves US at 9 of 10 (90 % >= 85 %): the reaction moves flex to it at once
    state, applied, alerts = run(state, "SET_STOCK", total=100, regions={"US": 10, "EU": 10, "SEA": 10}, flex_pct=0)
    assert applied
    assert [(a["type"], a["region"], a["quantity"]) for a in alerts] == [("FLEX_TRANSFER", "US", 70)]
    assert state.flex == 0 and state.regions["US"].allocation == 80 and conserved(state)
