"""The channel catalog: the packaged default, validation of a user's YAML, proportional splits."""

from __future__ import annotations

import copy

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from lockstock.catalog import Rules, catalog_from_dict, load_catalog, proportional_split
from lockstock.errors import SettingsError


def base() -> dict:
    return {
        "regions": {
            "US": {"weight": 3, "warehouses": ["LA", "NJ"], "nearest": ["EU"]},
            "EU": {"weight": 1, "warehouses": ["RTM"], "nearest": ["US"]},
        },
        "channels": {
            "shop-us": {"platform": "shopify", "region": "US", "reservation_ttl_s": 60, "rate_limit_per_min": 10},
            "shop-eu": {"platform": "shopify", "region": "EU"},
        },
        "rules": {"flex_pct": 10, "flex_chunk": 50},
    }


def write(tmp_path, data) -> str:
    path = tmp_path / "channels.yaml"
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return str(path)


# -- the packaged default ---------------------------------------------------------------------------

def test_default_catalog_has_the_breezestyle_set_up():
    catalog = load_catalog()
    assert list(catalog.regions) == ["US", "EU", "SEA"]
    assert catalog.regions["US"].warehouses == ("LA", "NJ")
    assert catalog.regions["EU"].warehouses == ("RTM",)
    assert catalog.regions["SEA"].warehouses == ("KUL",)
    assert len(catalog.channels) == 9
    assert catalog.channels["shopee-th"].region == "SEA"
    assert catalog.channels["amazon-eu"].rate_limit_per_min == 300
    assert catalog.rules == Rules()  # the YAML repeats the documented defaults
    assert catalog.ttl_ms("tiktok-us") == 900_000
    assert catalog.ttl_ms("shopify") == 3_600_000


def test_default_catalog_helpers():
    catalog = load_catalog()
    assert catalog.warehouse_region("NJ") == "US"
    assert catalog.warehouse_region("KUL") == "SEA"
    assert catalog.warehouse_region("NOWHERE") is None
    assert catalog.warehouses_nearest("US") == ["LA", "NJ", "RTM", "KUL"]
    assert catalog.warehouses_nearest("SEA") == ["KUL", "LA", "NJ", "RTM"]
    assert catalog.region_of_order("tiktok-eu", None) == "EU"
    assert catalog.region_of_order("tiktok-eu", "SEA") == "SEA"
    assert catalog.default_split(2400) == {"US": 960, "EU": 800, "SEA": 640}
    assert sum(catalog.default_split(1001).values()) == 1001


def test_a_file_loads_with_defaults_for_what_it_omits(tmp_path):
    catalog = load_catalog(write(tmp_path, base()))
    assert catalog.source.endswith("channels.yaml")
    assert catalog.channels["shop-eu"].reservation_ttl_s == 900
    assert catalog.channels["shop-eu"].rate_limit_per_min == 120
    assert catalog.rules.flex_pct == 10.0 and isinstance(catalog.rules.flex_pct, float)
    assert catalog.rules.flex_chunk == 50 and isinstance(catalog.rules.flex_chunk, int)
    assert catalog.rules.limit_per_buyer == Rules().limit_per_buyer


def test_a_region_without_warehouses_gets_one():
    data = base()
    data["regions"]["APAC"] = {}
    catalog = catalog_from_dict(data)
    assert catalog.regions["APAC"].warehouses == ("APAC-main",)
    assert catalog.regions["APAC"].weight == 1.0


# -- validation ---------------------------------------------------------------------------------------

def broken(change) -> dict:
    data = copy.deepcopy(base())
    change(data)
    return data


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d["channels"]["shop-eu"].update(region="APAC"), r"channel shop-eu: region 'APAC' is not one of US, EU"),
    (lambda d: d["channels"]["shop-us"].update(reservation_ttl_s=-5), r"shop-us reservation_ttl_s must be between 1 and .*got -5"),
    (lambda d: d["channels"]["shop-us"].update(reservation_ttl_s=1.5), r"reservation_ttl_s must be a whole number, got 1.5"),
    (lambda d: d["channels"]["shop-us"].update(rate_limit_per_min=0), r"rate_limit_per_min must be between 1"),
    (lambda d: d["rules"].update(flex_magic=3), r"unknown rule\(s\) flex_magic"),
    (lambda d: d["rules"].update(flex_pct="twenty"), r"rule flex_pct must be a number, got 'twenty'"),
    (lambda d: d["rules"].update(flex_chunk=True), r"rule flex_chunk must be a whole number, got True"),
    (lambda d: d["rules"].update(flex_chunk=2.5), r"rule flex_chunk must be a whole number, got 2.5"),
    (lambda d: d["rules"].update(flex_pct=101), r"rule flex_pct must be between 0 and 100, got 101"),
    (lambda d: d["rules"].update(realloc_factor=float("nan")), r"realloc_factor must be between"),
    (lambda d: d["regions"]["EU"].update(warehouses=["LA"]), r"region EU: warehouse LA already belongs to region US"),
    (lambda d: d["regions"]["EU"].update(nearest=["MARS"]), r"region EU lists unknown nearest region 'MARS'"),
    (lambda d: d["regions"]["EU"].update(nearest=["EU"]), r"region EU lists unknown nearest region 'EU'"),
    (lambda d: d["regions"]["US"].update(weight=-1), r"region US weight must be between 0"),
    (lambda d: d["regions"].update({"bad name": {}}), r"region 'bad name' may hold only letters"),
    (lambda d: d["channels"].update({"shop/x": {"region": "US"}}), r"channel 'shop/x' may hold only letters"),
    (lambda d: d.update(extra={}), r"unknown section\(s\) extra"),
    (lambda d: d.update(regions={}), r"at least one region is needed"),
    (lambda d: d.update(channels={}), r"at least one channel is needed"),
], ids=lambda v: v if isinstance(v, str) else "")
def test_bad_values_are_one_line_errors(change, message):
    with pytest.raises(SettingsError, match=message):
        catalog_from_dict(broken(change), "my.yaml")


def test_error_message_names_the_file(tmp_path):
    path = write(tmp_path, broken(lambda d: d["channels"]["shop-eu"].update(region="APAC")))
    with pytest.raises(SettingsError) as caught:
        load_catalog(path)
    assert str(caught.value).startswith(path + ": channel shop-eu")
    assert "\n" not in str(caught.value)


def test_unreadable_and_invalid_files(tmp_path):
    with pytest.raises(SettingsError, match="cannot read channels file"):
        load_catalog(tmp_path / "missing.yaml")
    with pytest.raises(SettingsError, match="is not valid YAML"):
        load_catalog(write(tmp_path, "regions: [unclosed\n"))
    with pytest.raises(SettingsError, match="expected a mapping"):
        load_catalog(write(tmp_path, "- just\n- a list\n"))


# -- proportional_split ---------------------------------------------------------------------------------

def test_proportional_split_examples():
    assert proportional_split(2400, {"US": 1200, "EU": 1000, "SEA": 800}) == {"US": 960, "EU": 800, "SEA": 640}
    assert proportional_split(10, {"a": 1, "b": 1, "c": 1}) == {"a": 4, "b": 3, "c": 3}
    assert proportional_split(0, {"a": 1, "b": 2}) == {"a": 0, "b": 0}
    assert proportional_split(5, {"a": 0, "b": 1}) == {"a": 0, "b": 5}


def test_proportional_split_needs_some_weight():
    with pytest.raises(SettingsError, match="more than 0"):
        proportional_split(10, {"a": 0, "b": 0})


@settings(max_examples=300, deadline=None, database=None)
@given(units=st.integers(0, 10**7),
       weights=st.dictionaries(st.sampled_from("ABCDEFG"), st.floats(0, 10**6), min_size=1).filter(
           lambda w: sum(w.values()) > 0))
def test_proportional_split_sums_exactly_and_stays_close(units, weights):
    split = proportional_split(units, weights)
    assert set(split) == set(weights)
    assert sum(split.values()) == units
    total = sum(weights.values())
    for name, share in split.items():
        assert share >= 0
        assert abs(share - units * weights[name] / total) < 1 + 1e-6 * units


def test_catalog_to_dict_reads_back_unchanged():
    catalog = load_catalog()
    again = catalog_from_dict(catalog.to_dict(), catalog.source)
    assert again == catalog
