"""The war room's fold: the engine's state shown as it is, decisions counted once, curves and
memory bounded, velocity and sell-out countdown as the engine measures them, talking points true."""

from __future__ import annotations

import json

import pytest

from apps.warroom import model as model_module
from apps.warroom.model import MAX_ALERTS, MAX_CURVE_POINTS, Curve, WarRoom
from apps.warroom.talk import channel_name, human_duration, top_points
from lockstock.catalog import load_catalog
from schemas.records import OrderDecision
from streams.engine.state import RegionStock, SkuState
from tests.builders import order_decision

T0 = 1_000_000_000  # a multiple of the default window's 50 s bucket, so bucket edges are easy
HOUR_MS = 3600 * 1000


def ring(*, us_free: int = 600, eu_free: int = 500, flex: int = 600, locked_us: int = 300, paid_eu: int = 100,
         shipped_us: int = 60, transit_eta: int | None = T0 + 36 * HOUR_MS) -> SkuState:
    state = SkuState("BRZ-RING-01", flex=flex)
    state.regions = {
        "US": RegionStock(allocation=us_free + locked_us + shipped_us, locked=locked_us, shipped=shipped_us),
        "EU": RegionStock(allocation=eu_free + paid_eu, paid=paid_eu),
        "SEA": RegionStock(allocation=640),
    }
    state.total = flex + sum(r.allocation for r in state.regions.values())
    if transit_eta is not None:
        state.in_transit = {"t-1": {"qty": 1000, "region": "US", "warehouse": "LA", "eta": transit_eta}}
    return state


def decision(order_id: str, status: str, lines: list[tuple[str, int, str | None]], *, at: int = T0,
             **fields) -> OrderDecision:
    """An OrderDecision decided ``at`` (default T0), its order placed 5 ms before."""
    return order_decision(order_id, status, *lines, decided_at=at, placed_at=at - 5, **fields)


@pytest.fixture
def room() -> WarRoom:
    return WarRoom(load_catalog(None))


def card_of(snapshot: dict, sku: str) -> dict:
    return next(c for c in snapshot["skus"] if c["sku"] == sku)


def test_four_states_and_regions_are_the_engines_numbers(room):
    state = ring()
    room.on_stock_state(state.sku, state, T0)
    card = card_of(room.snapshot(T0), "BRZ-RING-01")
    view = state.public_view()
    assert card["available"] == view["available"] == 600 + 500 + 640 + 600
    assert card["reserved"] == view["locked"] + view["paid"] == 400
    assert (card["locked"], card["paid"], card["shipped"]) == (300, 100, 60)
    assert card["in_transit"]["units"] == 1000 and card["in_transit"]["next_eta"] == T0 + 36 * HOUR_MS
    assert card["in_transit"]["shipments"][0]["eta_in_s"] == 36 * 3600
    assert card["in_transit"]["shipments"][0]["warehouse_name"] == "LA"
    assert {r: v["remaining"] for r, v in card["regions"].items()} == {"EU": 500, "SEA": 640, "US": 600}
    assert card["regions"]["US"]["sold"] == 360 and card["regions"]["US"]["in_transit"] == 1000
    assert card["regions"]["EU"]["buyable"] == 500 + 600  # a European buyer can also get flex units
    assert card["low"] is False and card["low_threshold"] == 840  # 30 % of 2800
    overall = room.snapshot(T0)["overall"]
    assert (overall["total"], overall["available"], overall["reserved"], overall["in_transit"]) == (2800, 2340, 400, 1000)


def test_the_table_value_and_the_public_view_fold_like_the_state_itself(room):
    state = ring()
    room.on_stock_state("A", state.to_dict(), T0)
    room.on_stock_state("B", state.public_view(), T0)
    snapshot = room.snapshot(T0)
    assert card_of(snapshot, "A")["regions"] == card_of(snapshot, "B")["regions"]
    room.on_stock_state("A", None, T0)  # a deleted key
    assert [c["sku"] for c in room.snapshot(T0)["skus"]] == ["B"]


@pytest.mark.parametrize("garbage", [["not", "a", "dict"], {"sku": "X"}, {"sku": "X", "reservations": {}, "bogus": 1}])
def test_a_value_that_is_no_sku_state_is_a_clear_error(room, garbage):
    with pytest.raises(ValueError, match="SKU"):
        room.on_stock_state("X", garbage, T0)


def test_a_decision_counts_once_and_a_release_gives_its_units_back(room):
    locked = decision("o-1", "LOCKED", [("BRZ-RING-01", 3, "US"), ("BRZ-BAND-02", 1, "US")], at=T0)
    room.on_decision(locked)
    room.on_decision(dict(locked))  # redelivered: the same decision again
    room.on_decision(decision("o-2", "LOCKED", [("BRZ-RING-01", 2, "EU")], channel="tiktok-eu", at=T0 + 1000))
    room.on_decision(decision("o-3", "REJECTED", [("BRZ-RING-01", 5, None)], at=T0 + 1000, reason="OUT_OF_STOCK"))
    snapshot = room.snapshot(T0 + 2000)
    assert card_of(snapshot, "BRZ-RING-01")["channels"]["tiktok-us"]["sold"] == 3
    assert card_of(snapshot, "BRZ-RING-01")["channels"]["tiktok-eu"]["sold"] == 2
    assert snapshot["overall"]["sold"] == 6
    assert snapshot["stream"]["orders"] == 3 and snapshot["stream"]["decisions"] == 4
    assert snapshot["stream"]["rejected_by_reason"] == {"OUT_OF_STOCK": 1}

    room.on_decision(decision("o-1", "RELEASED", [("BRZ-RING-01", 3, "US"), ("BRZ-BAND-02", 1, "US")],
                              at=T0 + 3000, reason="CANCELLED"))
    room.on_decision(decision("o-9", "RELEASED", [("BRZ-RING-01", 7, "US")], at=T0 + 3000))  # its lock never seen
    snapshot = room.snapshot(T0 + 4000)
    ring_card = card_of(snapshot, "BRZ-RING-01")
    assert ring_card["channels"]["tiktok-us"]["sold"] == 0 and ring_card["sold"] == 2
    assert ring_card["curve"]["series"]["tiktok-us"][-1] == 0
    assert max(ring_card["curve"]["series"]["tiktok-us"]) == 3
    assert snapshot["overall"]["sold"] == 2


def test_curves_stay_bounded_over_a_long_stream_and_end_at_the_units_sold():
    curve = Curve()
    for second in range(0, 5 * 3600, 7):  # five hours, a sale every 7 s
        curve.add(T0 + second * 1000, "tiktok-us" if second % 2 else "amazon-us", 2)
    points = curve.points(T0 + 5 * HOUR_MS)
    assert len(points["t"]) <= MAX_CURVE_POINTS + 1
    assert points["t"] == sorted(points["t"]) and points["t"][0] == T0
    sold = len(range(0, 5 * 3600, 7)) * 2
    assert points["series"]["tiktok-us"][-1] + points["series"]["amazon-us"][-1] == sold
    for series in points["series"].values():
        assert series == sorted(series)


def test_a_quiet_curve_runs_flat_to_now_and_an_empty_one_has_no_points():
    curve = Curve()
    assert curve.points(T0) == {"t": [], "series": {}}
    curve.add(T0, "shopify", 4)
    points = curve.points(T0 + 10_000)
    assert points["t"][-1] == T0 + 10_000 and points["series"]["shopify"][-1] == 4


def test_velocity_and_sellout_countdown_follow_the_engines_window(room):
    room.on_stock_state("BRZ-RING-01", ring(us_free=100, eu_free=100, flex=100), T0)  # 940 available
    for k in range(12):  # 10 units every 50 s for the 600 s window
        room.on_decision(decision(f"o-{k}", "LOCKED", [("BRZ-RING-01", 10, "US")], at=T0 + k * 50_000))
    card = card_of(room.snapshot(T0 + 600_000), "BRZ-RING-01")
    assert card["velocity_per_min"] == 12.0  # 120 units in 600 s
    assert card["sellout_eta_s"] == pytest.approx(940 / 0.2)
    assert card["sellout_at"] == T0 + 600_000 + 4_700_000
    quiet = card_of(room.snapshot(T0 + 2 * HOUR_MS), "BRZ-RING-01")
    assert quiet["velocity_per_min"] == 0 and quiet["sellout_eta_s"] is None and quiet["sellout_at"] is None


def test_early_in_a_stream_velocity_counts_from_the_first_sale(room):
    room.on_stock_state("BRZ-RING-01", ring(), T0)
    room.on_decision(decision("o-1", "LOCKED", [("BRZ-RING-01", 30, "US")], at=T0))
    card = card_of(room.snapshot(T0 + 100_000), "BRZ-RING-01")  # 30 units in the first 100 s
    assert card["velocity_per_min"] == 18.0


def test_low_stock_and_talking_points_speak_the_truth(room):
    # No flex left: EU has 20 units a European buyer can still get; SEA nothing at all.
    state = ring(us_free=500, eu_free=20, flex=0, transit_eta=T0 + 36 * HOUR_MS)
    state.regions["SEA"] = RegionStock(allocation=300, locked=200, paid=100)
    state.total = state.flex + sum(r.allocation for r in state.regions.values())
    state.buyer_limit, state.limit_source = 2, "auto"
    room.on_stock_state(state.sku, state, T0)
    for k in range(12):
        room.on_decision(decision(f"t-{k}", "LOCKED", [("BRZ-RING-01", 1, "US")], channel="tiktok-us", at=T0 + k))
    room.on_decision(decision("a-1", "LOCKED", [("BRZ-RING-01", 1, "US")], channel="amazon-us", at=T0))
    snapshot = room.snapshot(T0 + 1000)
    card = card_of(snapshot, "BRZ-RING-01")
    assert card["regions"]["EU"]["low"] and not card["regions"]["US"]["low"]
    texts = [p["text"] for p in card["talking_points"]]
    assert "Only 20 BRZ-RING-01 left in Europe!" in texts
    assert "BRZ-RING-01 is sold out in Southeast Asia." in texts
    assert any(t.startswith("At this pace BRZ-RING-01 sells out in about") for t in texts)
    assert "BRZ-RING-01 is limited to 2 per buyer, so everyone gets a chance." in texts
    assert texts[:2] == ["BRZ-RING-01 is sold out in Southeast Asia.", "Only 20 BRZ-RING-01 left in Europe!"]
    assert len(texts) == 4  # capped per SKU, the most urgent kept

    calm = WarRoom(load_catalog(None))
    calm.on_stock_state(state.sku, ring(), T0)
    for k in range(12):
        calm.on_decision(decision(f"t-{k}", "LOCKED", [("BRZ-RING-01", 1, "US")], channel="tiktok-us", at=T0))
    calm.on_decision(decision("a-1", "LOCKED", [("BRZ-RING-01", 1, "US")], channel="amazon-us", at=T0))
    texts = [p["text"] for p in card_of(calm.snapshot(T0 + 1000), "BRZ-RING-01")["talking_points"]]
    assert "LA warehouse restocks in 36 h: 1,000 more BRZ-RING-01 on the way." in texts
    assert "TikTok US is on fire: 12 of the last 13 BRZ-RING-01 sold there." in texts
    assert not any("left in" in t or "sold out" in t for t in texts)


def test_the_on_air_list_keeps_variety_most_urgent_first():
    cards = [{"talking_points": [{"sku": f"S{n}", "kind": "sellout_soon", "text": f"S{n} soon"}]} for n in range(4)]
    cards += [{"talking_points": [{"sku": "R", "kind": "restock", "text": "R restocks"},
                                  {"sku": "R", "kind": "last_units", "text": "Only 3 R left"}]}]
    assert [p["text"] for p in top_points(cards, 7)] == ["Only 3 R left", "S0 soon", "S1 soon", "R restocks"]
    assert len(top_points(cards, 2)) == 2


def test_the_sku_goes_low_under_the_catalogs_replenishment_threshold(room):
    state = ring(us_free=100, eu_free=100, flex=100, locked_us=3000)  # 940 of 4100 left: under 30 %
    room.on_stock_state(state.sku, state, T0)
    snapshot = room.snapshot(T0)
    assert card_of(snapshot, state.sku)["low"] and snapshot["overall"]["low_skus"] == [state.sku]


def test_alerts_are_shown_once_newest_first_and_bounded(room):
    for n in range(MAX_ALERTS + 5):
        alert = {"alert_id": f"BRZ-RING-01:flex_transfer:{n}", "sku": "BRZ-RING-01", "type": "FLEX_TRANSFER",
                 "message": f"moved {n}", "raised_at": T0 + n, "region": "US", "channel": None, "quantity": 200,
                 "details": {}}
        room.on_alert(alert)
        room.on_alert(dict(alert))  # replayed
    snapshot = room.snapshot(T0)
    assert len(snapshot["alerts"]) == MAX_ALERTS
    assert snapshot["alerts"][0]["message"] == f"moved {MAX_ALERTS + 4}"
    assert snapshot["alert_types"] == {"FLEX_TRANSFER": MAX_ALERTS + 5}
    assert snapshot["stream"]["alerts"] == MAX_ALERTS + 5


def test_channel_stock_keeps_the_newest_sequence(room):
    base = {"channel": "tiktok-eu", "sku": "BRZ-BAND-02", "available": 80, "updated_at": T0, "region": "EU", "flex": 10}
    room.on_channel_stock({**base, "sellable": 80, "seq": 5, "paused": False})
    room.on_channel_stock({**base, "sellable": 99, "seq": 4, "paused": False})  # late and older
    room.on_channel_stock({**base, "sellable": 0, "seq": 6, "paused": True})
    row = card_of(room.snapshot(T0), "BRZ-BAND-02")["channels"]["tiktok-eu"]
    assert row["sellable"] == 0 and row["paused"] is True and row["name"] == "TikTok EU"


def test_memory_is_bounded_in_skus_cards_and_orders(monkeypatch):
    monkeypatch.setattr(model_module, "ORDER_MEMORY", 100)
    room = WarRoom(load_catalog(None), max_skus=5, max_cards=3)
    for n in range(8):
        sku = f"SKU-{n}"
        room.on_stock_state(sku, ring(), T0)
        room.on_decision(decision(f"o-{n}", "LOCKED", [(sku, n + 1, "US")]))
    snapshot = room.snapshot(T0)
    assert snapshot["sku_count"] == 5 and snapshot["hidden_skus"] == 2
    assert [c["sku"] for c in snapshot["skus"]] == ["SKU-5", "SKU-6", "SKU-7"]  # best sellers, by name
    for n in range(300):
        room.on_decision(decision(f"x-{n}", "REJECTED", [("SKU-7", 1, None)], reason="OUT_OF_STOCK"))
    assert len(room.orders) == 100


def test_undecodable_records_are_counted_and_the_snapshot_is_json(room):
    room.on_undecodable("lockstock.orders.decisions", "not Avro single-object encoded")
    room.on_stock_state("BRZ-RING-01", ring(), T0)
    room.on_decision(decision("o-1", "LOCKED", [("BRZ-RING-01", 1, "US")]))
    snapshot = json.loads(json.dumps(room.snapshot(T0 + 1000)))
    assert snapshot["stream"]["undecodable"] == 1
    assert snapshot["stream"]["last_error"].startswith("lockstock.orders.decisions: not Avro")
    assert snapshot["names"]["regions"]["EU"] == "Europe" and snapshot["names"]["channels"]["youtube-us"] == "YouTube US"


def test_version_rises_with_every_record(room):
    before = room.version
    room.on_alert({"alert_id": "a", "sku": "S", "type": "REPLENISHMENT", "message": "m", "raised_at": T0})
    room.on_decision(decision("o-1", "REJECTED", [("S", 1, None)], reason="UNKNOWN_SKU"))
    assert room.version == before + 2


@pytest.mark.parametrize("seconds, said", [(12, "12 s"), (600, "10 min"), (36 * 3600, "36 h"), (5 * 86400, "5 days"),
                                           (-3, "0 s")])
def test_durations_are_said_the_way_a_host_says_them(seconds, said):
    assert human_duration(seconds) == said


@pytest.mark.parametrize("channel, platform, said", [("tiktok-us", "tiktok", "TikTok US"), ("shopee-my", None, "Shopee MY"),
                                                     ("shopify", "shopify", "Shopify"), ("site-us", "generic", "our shop US")])
def test_channel_names(channel, platform, said):
    assert channel_name(channel, platform) == said
