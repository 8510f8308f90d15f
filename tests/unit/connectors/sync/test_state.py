"""The sync's state fed with plain records, as Kafka would deliver them."""

from __future__ import annotations

from connectors.sync.leases import ListingSku, Push
from connectors.sync.state import SyncState
from lockstock.catalog import catalog_from_dict
from tests.builders import order_placed

CATALOG = catalog_from_dict({
    "regions": {"US": {"weight": 1}},
    "channels": {"shopify": {"platform": "shopify", "region": "US"},
                 "youtube-us": {"platform": "youtube", "region": "US", "store": "shopify"},
                 "tiktok-us": {"platform": "tiktok", "region": "US", "advertise": {"share_pct": 50}}},
})


def stock(channel, available, seq, flex=0, sku="A"):
    return {"channel": channel, "sku": sku, "sellable": available, "available": available, "updated_at": 1,
            "seq": seq, "paused": False, "region": "US", "flex": flex}


def placed(order_id, channel, *lines):
    """An order of buyer "b" placed at 1 ms."""
    return order_placed(*lines, order_id=order_id, channel=channel, buyer_id="b", placed_at=1)


def fed() -> SyncState:
    state = SyncState(CATALOG, settle_ms=100, forget_ms=10_000)
    for seq, channel in enumerate(CATALOG.channels, 1):
        state.on_stock(stock(channel, 100, seq), at=1000)
    return state


def test_nothing_is_planned_before_the_engine_announced_the_sku():
    assert SyncState(CATALOG).plan("A") == []


def test_older_seq_is_ignored_and_the_change_time_is_the_record_time():
    state = fed()
    assert state.on_stock(stock("tiktok-us", 5, seq=1), at=2000) is None
    assert state.pools["A"].available["tiktok-us"] == 100 and state.pools["A"].changed_at == 1000
    assert state.on_stock(stock("tiktok-us", 90, seq=9), at=3000) == "A"
    assert state.pools["A"].available["tiktok-us"] == 90 and state.pools["A"].changed_at == 3000


def test_a_sale_is_in_flight_and_counted_off_its_listing_until_settled():
    state = fed()
    pushes = {p.listing: p.quantity for p in state.plan("A")}
    assert pushes == {"shopify": 50, "tiktok-us": 50}
    for push in state.plan("A"):
        state.sent(push)
        state.answered(push, accepted=True)
    assert state.on_placed(placed("o1", "youtube-us", ("A", 3)), at=5000) == {"A"}
    assert state.known["A"]["shopify"].shown == 47  # YouTube sells through the Shopify listing
    assert state.pools["A"].in_flight == {"youtube-us": 3}
    assert state.on_placed(placed("o1", "youtube-us", ("A", 3)), at=5001) == set()  # redelivery
    state.on_stock(stock("tiktok-us", 100, seq=10, flex=0), at=5002)
    assert "shopify" not in {p.listing for p in state.plan("A")}  # 47 < its lease of 50, but no raise while in flight
    state.on_decision({"order_id": "o1"}, now=6000)
    assert state.settle(6050) == set()  # settle_ms not over yet
    assert state.settle(6100) == {"A"} and state.pools["A"].in_flight == {}


def test_a_sale_heard_while_a_push_is_on_the_wire_does_not_lower_the_pushed_view():
    state = fed()
    for push in state.plan("A"):
        state.sent(push)
    state.on_placed(placed("o1", "shopify", ("A", 2)), at=5000)
    assert state.plan("A") == []  # nothing planned for listings that are being pushed
    state.answered(Push("shopify", "A", 50, None, decrease=True), accepted=True)
    assert state.known["A"]["shopify"] == ListingSku(shown=50, pushing=None)


def test_a_refused_compare_and_set_adopts_the_platforms_quantity():
    state = fed()
    push = next(p for p in state.plan("A") if p.listing == "shopify")
    state.sent(push)
    state.answered(push, accepted=False, actual=7)
    assert state.known["A"]["shopify"].shown == 7


def test_orders_never_decided_are_forgotten_and_counted():
    state = fed()
    state.on_placed(placed("o1", "tiktok-us", ("A", 1), ("B", 2)), at=1000)
    assert state.settle(5000) == set()
    assert state.settle(11_001) == {"A", "B"}
    assert state.stale_in_flight == 1 and state.orders == {}


def test_race_margin_is_sales_rate_times_intake_delay_plus_push_time():
    state = fed()
    for i in range(20):  # 20 units in 10 s on TikTok, each seen 300 ms after the platform sold it
        order = placed(f"t{i}", "tiktok-us", ("A", 1))
        order["placed_at"] = 10_000 + i * 500
        state.on_placed(order, at=order["placed_at"] + 300, seen_at=order["placed_at"] + 300)
    for _ in range(10):
        state.pushed("tiktok-us", 200.0)
    now = 10_000 + 19 * 500 + 300
    assert state.race_margin("tiktok-us", now) == 1  # 2 units/s x 0.5 s
    state.exact = {"tiktok-us"}
    assert state.race_margin("tiktok-us", now) == 0  # compare-and-set needs none
    state.exact = set()
    assert state.race_margin("tiktok-us", now + 60_000) == 0  # quiet again: the rate window emptied
    assert state.race_margin("shopify", now) == 0  # no sales, no margin


def test_the_race_margin_lowers_the_listings_lease_beyond_its_buffer():
    state = fed()
    before = {p.listing: p.quantity for p in state.plan("A", now=1)}
    for i in range(40):
        order = placed(f"t{i}", "tiktok-us", ("B", 1))  # another SKU: A's pool is unchanged
        order["placed_at"] = 1000
        state.on_placed(order, at=2000, seen_at=2000)  # 1 s late
    after = {p.listing: p.quantity for p in state.plan("A", now=2000)}
    assert before["tiktok-us"] - after["tiktok-us"] == 4  # 40 units / 10 s x 1 s
    assert before["shopify"] == after["shopify"]
