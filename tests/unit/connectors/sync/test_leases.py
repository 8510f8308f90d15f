"""Leases: what each listing may show, as plain functions over plain state."""

from __future__ import annotations

from hypothesis import given, settings, strategies as st

from connectors.sync.leases import ListingSku, Pool, advertised, listings_of, plan, region_budgets
from lockstock.catalog import catalog_from_dict

REGIONS = {"US": {"weight": 2}, "EU": {"weight": 1}}


def catalog(channels=None):
    return catalog_from_dict({"regions": REGIONS, "channels": channels or {
        "shopify": {"platform": "shopify", "region": "US"},
        "youtube-us": {"platform": "youtube", "region": "US", "store": "shopify"},
        "tiktok-us": {"platform": "tiktok", "region": "US", "advertise": {"share_pct": 50, "buffer": 1}},
        "amazon-eu": {"platform": "amazon", "region": "EU", "advertise": {"floor": 3, "max_units": 40}},
    }})


def pool(free, flex, cat, paused=(), in_flight=None, sku="A"):
    p = Pool(sku, flex=flex, seq=1)
    for channel in cat.channels.values():
        p.available[channel.id] = free[channel.region] + flex
    p.paused = set(paused)
    p.in_flight = dict(in_flight or {})
    return p


def test_store_channels_fold_into_the_store_listing_with_their_shares():
    listings = listings_of(catalog())
    assert set(listings) == {"shopify", "tiktok-us", "amazon-eu"}
    shopify = listings["shopify"]
    assert shopify.members == ("shopify", "youtube-us")
    assert shopify.shares == {"shopify": 25.0, "youtube-us": 25.0}  # 50 % left, split equally
    assert listings["amazon-eu"].shares == {"amazon-eu": 100.0}


def test_budgets_split_flex_by_region_weight_and_charge_in_flight_units():
    cat = catalog()
    assert region_budgets(pool({"US": 100, "EU": 50}, 30, cat), cat) == {"US": 120, "EU": 60}
    # 10 units in flight on a US channel come off the US budget.
    assert region_budgets(pool({"US": 100, "EU": 50}, 30, cat, in_flight={"tiktok-us": 10}), cat) == {"US": 110, "EU": 60}
    # In flight beyond the region's free units are taken from flex, before it is split.
    assert region_budgets(pool({"US": 5, "EU": 50}, 30, cat, in_flight={"tiktok-us": 11}), cat) == {"US": 16, "EU": 58}


def test_an_older_writer_without_flex_never_counts_flex_once_per_region():
    cat = catalog()
    p = pool({"US": 100, "EU": 50}, 30, cat)
    p.flex_known, p.flex = False, 0
    assert sum(region_budgets(p, cat).values()) == 80  # only what every region can surely lock: min(available)


def test_advertised_applies_share_buffer_max_and_floor():
    listings = listings_of(catalog())
    assert advertised(listings["tiktok-us"], 120, set()) == 59  # 50 % of 120, less buffer 1
    assert advertised(listings["shopify"], 120, set()) == 60
    assert advertised(listings["shopify"], 120, {"youtube-us"}) == 30  # a paused member's share drops out
    assert advertised(listings["shopify"], 120, {"shopify"}) == 0  # a paused store shows nothing
    assert advertised(listings["amazon-eu"], 60, set()) == 40  # max_units
    assert advertised(listings["amazon-eu"], 2, set()) == 0  # under the floor of 3


def test_first_plan_pushes_every_listing_as_a_decrease():
    cat = catalog()
    known: dict[str, ListingSku] = {}
    pushes = plan(pool({"US": 100, "EU": 50}, 30, cat), listings_of(cat), known, cat)
    assert {(p.listing, p.quantity, p.decrease) for p in pushes} == {
        ("shopify", 60, True), ("tiktok-us", 59, True), ("amazon-eu", 40, True)}


def test_increases_wait_for_decreases_of_the_same_sku():
    cat = catalog()
    listings = listings_of(cat)
    known = {"shopify": ListingSku(shown=30), "tiktok-us": ListingSku(shown=80), "amazon-eu": ListingSku(shown=40)}
    pushes = plan(pool({"US": 100, "EU": 50}, 30, cat), listings, known, cat)
    assert [(p.listing, p.quantity, p.decrease) for p in pushes] == [("tiktok-us", 59, True)]
    known["tiktok-us"].pushing = 59  # on the wire
    assert plan(pool({"US": 100, "EU": 50}, 30, cat), listings, known, cat) == []
    known["tiktok-us"] = ListingSku(shown=59)  # landed
    pushes = plan(pool({"US": 100, "EU": 50}, 30, cat), listings, known, cat)
    assert [(p.listing, p.quantity, p.expected, p.decrease) for p in pushes] == [("shopify", 60, 30, False)]


def test_no_increase_while_the_listings_own_orders_are_in_flight():
    cat = catalog()
    listings = listings_of(cat)
    known = {"shopify": ListingSku(shown=10), "tiktok-us": ListingSku(shown=50), "amazon-eu": ListingSku(shown=40)}
    busy = pool({"US": 100, "EU": 50}, 30, cat, in_flight={"youtube-us": 1})
    assert [p.listing for p in plan(busy, listings, known, cat)] == ["tiktok-us"]  # tiktok may rise, shopify not
    assert "shopify" not in [p.listing for p in plan(busy, listings, known, cat)]


def test_an_increase_is_clamped_by_what_the_other_listings_of_the_region_hold():
    cat = catalog({"a": {"platform": "tiktok", "region": "US", "advertise": {"share_pct": 60}},
                   "b": {"platform": "shopee", "region": "US", "advertise": {"share_pct": 40}}})
    listings = listings_of(cat)
    known = {"a": ListingSku(shown=0), "b": ListingSku(shown=90)}  # b still shows an old lease
    pushes = plan(pool({"US": 100, "EU": 0}, 0, cat), listings, known, cat)
    assert [(p.listing, p.quantity, p.decrease) for p in pushes] == [("b", 40, True)]
    known["b"].pushing = None
    known["b"].shown = 40
    assert [(p.listing, p.quantity) for p in plan(pool({"US": 100, "EU": 0}, 0, cat), listings, known, cat)] == [("a", 60)]


@settings(max_examples=300, deadline=None)
@given(
    free_us=st.integers(0, 500), free_eu=st.integers(0, 500), flex=st.integers(0, 300),
    in_flight=st.dictionaries(st.sampled_from(["shopify", "youtube-us", "tiktok-us", "amazon-eu"]), st.integers(0, 80)),
    shown=st.dictionaries(st.sampled_from(["shopify", "tiktok-us", "amazon-eu"]), st.integers(0, 600)),
)
def test_after_any_plan_the_listings_never_hold_more_than_can_be_locked(free_us, free_eu, flex, in_flight, shown):
    """Whatever the listings showed before, once the plan's pushes land (decreases first, then
    increases), the listings of each region hold at most its budget, and any set of regions'
    budgets is at most what those regions can still lock once the orders in flight have locked."""
    cat = catalog()
    listings = listings_of(cat)
    free = {"US": free_us, "EU": free_eu}
    p = pool(free, flex, cat, in_flight=in_flight)
    known = {name: ListingSku(shown=q) for name, q in shown.items()}
    for _ in range(3):
        for push in plan(p, listings, known, cat):
            known[push.listing] = ListingSku(shown=push.quantity)
    budgets = region_budgets(p, cat)
    in_region = {r: sum(q for c, q in in_flight.items() if cat.channels[c].region == r) for r in free}
    overflow = sum(max(0, in_region[r] - free[r]) for r in free)  # in-flight units that land on flex
    flex_left = max(0, flex - overflow)
    for subset in (["US"], ["EU"], ["US", "EU"]):
        assert sum(budgets[r] for r in subset) <= sum(max(0, free[r] - in_region[r]) for r in subset) + flex_left
    for region, budget in budgets.items():
        held = sum(known[name].shown for name, listing in listings.items() if listing.region == region)
        assert held <= budget
