"""The bench's hot-SKU row: the choices it makes, as plain functions."""

from __future__ import annotations

from apps.load.hotsku import largest_value, longest_ttl_channel, still_open
from lockstock.catalog import load_catalog


def test_the_fill_goes_through_the_channel_whose_reservations_live_longest():
    catalog = load_catalog(None)
    channel = longest_ttl_channel(catalog)
    assert channel.reservation_ttl_s == max(c.reservation_ttl_s for c in catalog.channels.values())
    assert channel.id == "shopify"  # 3600 s in the built-in catalog


def test_a_reservation_is_open_until_its_ttl_ends():
    assert still_open(1_000, 900, 1_000 + 899_999)
    assert not still_open(1_000, 900, 1_000 + 900_000)


def test_the_largest_value_and_its_key():
    records = [(b'"A"', b"x" * 10), (b'"B"', b"y" * 300), (b'"B"', None), (b'"C"', b"z" * 20)]
    assert largest_value(records) == {"bytes": 300, "key": '"B"', "records": 4}
    assert largest_value([]) == {"bytes": 0, "key": None, "records": 0}
