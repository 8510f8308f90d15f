"""Per-channel sellable quantities (ChannelStock) derived from a SKU's state."""

from __future__ import annotations

from functools import partial

from streams.engine.channels import channel_stock_updates, sellable_by_channel
from streams.engine.state import SkuState
from streams.engine.stock import release_order_line
from tests import builders
from tests.builders import CATALOG, commanded, locked, quiet

QUIET = quiet()
NOW = 7_000_000

# This module's SKU is set with command "s" and changed under QUIET rules at NOW.
stocked = partial(builders.stocked, command_id="s", catalog=QUIET, now=NOW)  # US 960, EU 800, SEA 640, flex 600
command = partial(commanded, catalog=QUIET, now=NOW)


def lock(state, order_id, qty, **fields):
    """A LOCKED line at NOW under QUIET rules; each order has a buyer of its own, named like it."""
    return locked(state, order_id, qty, catalog=QUIET, now=NOW, buyer_id=order_id, **fields)


def by_channel(updates):
    return {u["channel"]: u for u in updates}


def test_sellable_is_region_free_plus_flex():
    state = lock(stocked(), "o1", 60)
    snapshot = sellable_by_channel(state, CATALOG)
    assert set(snapshot) == set(CATALOG.channels)
    assert snapshot["tiktok-us"] == [900 + 600, 900 + 600, False, 600]
    assert snapshot["shopify"] == [1500, 1500, False, 600]
    assert snapshot["amazon-eu"] == [1400, 1400, False, 600]
    assert snapshot["shopee-th"] == [1240, 1240, False, 600]


def test_first_publication_covers_every_channel():
    state = stocked()
    updates = channel_stock_updates(state, CATALOG, NOW)
    assert len(updates) == 9
    assert [u["seq"] for u in updates] == list(range(1, 10))
    tiktok = by_channel(updates)["tiktok-us"]
    assert tiktok == {"channel": "tiktok-us", "sku": "A", "sellable": 1560, "available": 1560, "updated_at": NOW,
                      "seq": tiktok["seq"], "paused": False, "region": "US", "flex": 600}
    assert state.seq == 9 and state.published["tiktok-eu"] == [1400, 1400, False, 600]


def test_only_changed_channels_are_sent_and_seq_keeps_rising():
    state = stocked()
    channel_stock_updates(state, CATALOG, NOW)
    assert channel_stock_updates(state, CATALOG, NOW + 1) == []  # nothing changed
    state = lock(state, "o1", 5, region="EU", channel="tiktok-eu")
    updates = channel_stock_updates(state, CATALOG, NOW + 2)
    assert sorted(u["channel"] for u in updates) == ["amazon-eu", "tiktok-eu"]
    assert all(u["sellable"] == 795 + 600 for u in updates)
    assert [u["seq"] for u in updates] == [10, 11]
    state = lock(state, "o2", 5)  # a US lock: only the five US channels change
    updates = channel_stock_updates(state, CATALOG, NOW + 3)
    assert sorted(u["channel"] for u in updates) == ["amazon-us", "instagram-us", "shopify", "tiktok-us", "youtube-us"]
    assert [u["seq"] for u in updates] == [12, 13, 14, 15, 16]
    state, _, _ = release_order_line(state, "o2", "CANCELLED", QUIET, NOW)
    assert {u["sellable"] for u in channel_stock_updates(state, CATALOG, NOW + 4)} == {1560}


def test_flex_change_reaches_every_channel():
    state = stocked()
    channel_stock_updates(state, CATALOG, NOW)
    state = command(state, "RESTOCK", "r1", quantity=10)  # into the flex pool
    updates = channel_stock_updates(state, CATALOG, NOW + 1)
    assert len(updates) == 9
    assert by_channel(updates)["shopee-my"]["sellable"] == 640 + 610


def test_paused_channel_shows_zero_but_keeps_available():
    state = stocked()
    channel_stock_updates(state, CATALOG, NOW)
    state = command(state, "PAUSE_CHANNEL", "p1", channel="youtube-us")
    updates = channel_stock_updates(state, CATALOG, NOW + 1)
    assert updates == [{"channel": "youtube-us", "sku": "A", "sellable": 0, "available": 1560, "updated_at": NOW + 1,
                        "seq": 10, "paused": True, "region": "US", "flex": 600}]
    state = command(state, "RESUME_CHANNEL", "r1", channel="youtube-us")
    updates = channel_stock_updates(state, CATALOG, NOW + 2)
    assert [(u["channel"], u["sellable"], u["paused"], u["seq"]) for u in updates] == [("youtube-us", 1560, False, 11)]


def test_resend_sends_everything_again_with_new_seq():
    state = stocked()
    first = channel_stock_updates(state, CATALOG, NOW)
    again = channel_stock_updates(state, CATALOG, NOW + 1, resend=True)
    assert [u["channel"] for u in again] == [u["channel"] for u in first]
    assert min(u["seq"] for u in again) > max(u["seq"] for u in first)
    assert [u["sellable"] for u in again] == [u["sellable"] for u in first]


def test_a_region_without_state_shows_flex_only():
    state = SkuState(sku="A", total=50, flex=50)
    assert sellable_by_channel(state, CATALOG)["tiktok-eu"] == [50, 50, False, 50]


def test_a_flex_transfer_reannounces_every_channel_with_the_new_flex():
    state = stocked()
    channel_stock_updates(state, CATALOG, NOW)
    state.flex -= 100  # what the engine's automatic flex transfer does to the state
    state.regions["US"].allocation += 100
    updates = channel_stock_updates(state, CATALOG, NOW + 1)
    assert len(updates) == 9  # available is unchanged for US channels, but flex moved
    assert {u["flex"] for u in updates} == {500}
    assert by_channel(updates)["tiktok-us"]["available"] == 1560 and by_channel(updates)["amazon-eu"]["available"] == 1300


def test_changes_within_the_interval_wait_unless_urgent():
    state = stocked()
    first = channel_stock_updates(state, CATALOG, NOW, interval_ms=200)
    assert len(first) == 9 and state.announced_at == NOW  # a first figure is urgent
    state = lock(state, "o1", 5)
    assert channel_stock_updates(state, CATALOG, NOW + 50, interval_ms=200) is None  # held back
    assert state.announced_at == NOW and state.published["tiktok-us"][0] == 1560  # nothing remembered as sent
    state = lock(state, "o2", 5)
    later = channel_stock_updates(state, CATALOG, NOW + 200, interval_ms=200)
    assert {u["channel"] for u in later} == {"tiktok-us", "shopify", "youtube-us", "instagram-us", "amazon-us"} \
        and all(u["sellable"] == 1550 for u in later) and state.announced_at == NOW + 200  # both locks, one record each
    assert channel_stock_updates(state, CATALOG, NOW + 201, interval_ms=200) == []  # nothing changed


def test_a_sell_out_a_comeback_and_a_pause_go_at_once():
    state = stocked()
    channel_stock_updates(state, CATALOG, NOW, interval_ms=10_000)
    state = command(state, "PAUSE_CHANNEL", "pause", channel="tiktok-us")
    paused = channel_stock_updates(state, CATALOG, NOW + 1, interval_ms=10_000)
    assert [(u["channel"], u["sellable"], u["paused"]) for u in paused] == [("tiktok-us", 0, True)]
    state = lock(state, "o1", 1560, channel="shopify")  # the US region and the flex pool sold out
    out = channel_stock_updates(state, CATALOG, NOW + 2, interval_ms=10_000)
    assert out and all(u["sellable"] == 0 for u in out if u["region"] == "US")
