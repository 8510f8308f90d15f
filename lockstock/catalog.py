"""The channel catalog: regions (with warehouses), channels and the lock engine's rules.

Regions and channels are configuration, not code. The catalog is read once at startup from
``LOCKSTOCK_CHANNELS_FILE`` (YAML), or the packaged default (the BreezeStyle set-up), and every
value is checked so that a typo is a one-line error, never a surprise mid-stream.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from lockstock.errors import SettingsError

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class Region:
    name: str
    weight: float  # default share of the allocations when a split is not given
    warehouses: tuple[str, ...]  # this region's warehouses, nearest first
    nearest: tuple[str, ...]  # other regions to ship from when this one has none, nearest first


@dataclass(frozen=True)
class Advertise:
    """How much of its lease budget a channel shows on its marketplace (the sync's rules)."""

    share_pct: float | None = None  # of its region's budget; None: an equal part of what shares leave
    max_units: int | None = None  # never show more than this
    buffer: int = 0  # held back from what the channel could show (covers sales racing a push)
    floor: int = 0  # below this, show 0 (no "1 left" listings that cannot be honoured)

    BOUNDS = {"share_pct": (0, 100), "max_units": (0, 10**9), "buffer": (0, 10**9), "floor": (0, 10**9)}

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.BOUNDS if getattr(self, k) is not None}


@dataclass(frozen=True)
class Channel:
    id: str
    platform: str
    region: str
    reservation_ttl_s: int  # an unpaid lock is released after this long
    rate_limit_per_min: int  # the marketplace API budget (used by the connectors' pusher)
    # Connectors: the platform's account this channel is (shop id, shop domain, marketplace id),
    # the store channel it sells through (YouTube/Instagram via a Shopify store), how to advertise,
    # and platform-specific settings its adapter checks (listing ids, location, source ids).
    account: str = ""
    store: str = ""
    advertise: Advertise = field(default_factory=Advertise)
    connector: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True)
class Rules:
    flex_pct: float = 20.0
    flex_threshold_pct: float = 85.0
    flex_chunk: int = 200
    velocity_window_s: int = 600
    limit_per_buyer: int = 2
    limit_sellout_horizon_s: int = 1800
    limit_velocity_per_min: float = 0.0
    limit_min_units: int = 20
    replenish_below_pct: float = 30.0
    reorder_cover_s: int = 86400
    realloc_factor: float = 2.0
    realloc_boost: float = 1.5
    realloc_min_units: int = 30
    order_retention_s: int = 86400
    sweep_interval_s: float = 1.0
    channel_stock_interval_ms: int = 200

    # (minimum, maximum) per rule; every rule is a number a user gives, so every one is checked.
    BOUNDS = {
        "flex_pct": (0, 100), "flex_threshold_pct": (1, 100), "flex_chunk": (1, 10**9),
        "velocity_window_s": (1, 7 * 86400), "limit_per_buyer": (1, 10**6),
        "limit_sellout_horizon_s": (0, 30 * 86400), "limit_velocity_per_min": (0, 10**9),
        "limit_min_units": (1, 10**9), "replenish_below_pct": (0, 100), "reorder_cover_s": (0, 365 * 86400),
        "realloc_factor": (1, 100), "realloc_boost": (1, 100), "realloc_min_units": (1, 10**9),
        "order_retention_s": (1, 365 * 86400), "sweep_interval_s": (0.05, 3600),
        "channel_stock_interval_ms": (0, 60_000),
    }


@dataclass(frozen=True)
class Catalog:
    regions: dict[str, Region]
    channels: dict[str, Channel]
    rules: Rules = field(default_factory=Rules)
    source: str = "<built-in>"
    # Per platform: API base URL, secrets, app keys (connectors/config.py reads and checks it).
    connectors: dict[str, dict[str, Any]] = field(default_factory=dict)

    def region_of_order(self, channel_id: str, ship_to_region: str | None) -> str:
        """The allocation an order draws from: its ship-to region, else its channel's region."""
        return ship_to_region or self.channels[channel_id].region

    def warehouse_region(self, warehouse: str) -> str | None:
        for region in self.regions.values():
            if warehouse in region.warehouses:
                return region.name
        return None

    def warehouses_nearest(self, region: str) -> list[str]:
        """Every warehouse, the region's own first, then those of its nearest regions."""
        order = [region, *self.regions[region].nearest]
        order += [r for r in self.regions if r not in order]
        return [w for r in order for w in self.regions[r].warehouses]

    def default_split(self, units: int) -> dict[str, int]:
        """``units`` split over the regions by weight (largest remainders get the odd units)."""
        weights = {name: region.weight for name, region in self.regions.items()}
        return proportional_split(units, weights)

    def ttl_ms(self, channel_id: str) -> int:
        return self.channels[channel_id].reservation_ttl_s * 1000

    def to_dict(self) -> dict[str, Any]:
        """The catalog in the file's own shape (``catalog_from_dict`` reads it back)."""
        return {
            "regions": {r.name: {"weight": r.weight, "warehouses": list(r.warehouses), "nearest": list(r.nearest)}
                        for r in self.regions.values()},
            "channels": {c.id: _channel_dict(c) for c in self.channels.values()},
            "rules": {k: getattr(self.rules, k) for k in Rules.BOUNDS},
            **({"connectors": _redacted(self.connectors)} if self.connectors else {}),
        }

    def store_channels(self, store: str) -> list[Channel]:
        """The channels whose listing is ``store``'s (itself first, then those selling through it)."""
        return [c for c in self.channels.values() if c.id == store or c.store == store]


_SECRET_KEYS = ("secret", "partner_key", "token", "password")


def _redacted(connectors: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The connectors section without its secrets (the catalog is served on /catalog/)."""
    return {platform: {k: ("<set>" if any(s in k for s in _SECRET_KEYS) else v) for k, v in section.items()}
            for platform, section in connectors.items()}


def _channel_dict(c: Channel) -> dict[str, Any]:
    data: dict[str, Any] = {"platform": c.platform, "region": c.region, "reservation_ttl_s": c.reservation_ttl_s,
                            "rate_limit_per_min": c.rate_limit_per_min}
    if c.account:
        data["account"] = c.account
    if c.store:
        data["store"] = c.store
    if c.advertise != Advertise():
        data["advertise"] = c.advertise.to_dict()
    if c.connector:
        data["connector"] = dict(c.connector)
    return data


def proportional_split(units: int, weights: dict[str, float]) -> dict[str, int]:
    """Integer split of ``units`` proportional to ``weights`` that sums exactly to ``units``."""
    total_weight = sum(weights.values())
    if total_weight <= 0:
        raise SettingsError("region weights must add up to more than 0")
    exact = {name: units * w / total_weight for name, w in weights.items()}
    split = {name: math.floor(v) for name, v in exact.items()}
    leftover = units - sum(split.values())
    for name in sorted(exact, key=lambda n: (split[n] - exact[n], n))[:leftover]:
        split[name] += 1
    return split


def _number(value: Any, where: str, lo: float, hi: float, integer: bool) -> float | int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not float(value).is_integer()):
        kind = "a whole number" if integer else "a number"
        raise SettingsError(f"{where} must be {kind}, got {value!r}")
    if not (lo <= value <= hi) or (isinstance(value, float) and math.isnan(value)):
        raise SettingsError(f"{where} must be between {lo} and {hi}, got {value!r}")
    return int(value) if integer else float(value)


def _name(value: Any, where: str) -> str:
    if not isinstance(value, str) or not _NAME.match(value):
        raise SettingsError(f"{where} {value!r} may hold only letters, digits, '.', '_' and '-'")
    return value


def catalog_from_dict(data: Any, source: str = "<dict>") -> Catalog:
    if not isinstance(data, dict):
        raise SettingsError(f"{source}: expected a mapping with regions, channels and rules")
    unknown = set(data) - {"regions", "channels", "rules", "connectors"}
    if unknown:
        raise SettingsError(f"{source}: unknown section(s) {', '.join(sorted(unknown))}")
    raw_regions, raw_channels = data.get("regions") or {}, data.get("channels") or {}
    if not raw_regions or not isinstance(raw_regions, dict):
        raise SettingsError(f"{source}: at least one region is needed")
    if not raw_channels or not isinstance(raw_channels, dict):
        raise SettingsError(f"{source}: at least one channel is needed")
    regions: dict[str, Region] = {}
    seen_warehouses: dict[str, str] = {}
    for name, spec in raw_regions.items():
        where = f"{source}: region {name}"
        _name(name, f"{source}: region")
        spec = spec or {}
        warehouses = tuple(_name(w, f"{where} warehouse") for w in spec.get("warehouses") or [f"{name}-main"])
        for w in warehouses:
            if w in seen_warehouses:
                raise SettingsError(f"{where}: warehouse {w} already belongs to region {seen_warehouses[w]}")
            seen_warehouses[w] = name
        regions[name] = Region(
            name=name, weight=_number(spec.get("weight", 1), f"{where} weight", 0, 10**12, False),
            warehouses=warehouses, nearest=tuple(spec.get("nearest") or ()),
        )
    for region in regions.values():
        for other in region.nearest:
            if other not in regions or other == region.name:
                raise SettingsError(f"{source}: region {region.name} lists unknown nearest region {other!r}")
    channels: dict[str, Channel] = {}
    for channel_id, spec in raw_channels.items():
        where = f"{source}: channel {channel_id}"
        _name(channel_id, f"{source}: channel")
        spec = spec or {}
        if spec.get("region") not in regions:
            raise SettingsError(f"{where}: region {spec.get('region')!r} is not one of {', '.join(regions)}")
        channels[channel_id] = Channel(
            id=channel_id, platform=_name(spec.get("platform", channel_id), f"{where} platform"),
            region=spec["region"],
            reservation_ttl_s=_number(spec.get("reservation_ttl_s", 900), f"{where} reservation_ttl_s", 1, 30 * 86400, True),
            rate_limit_per_min=_number(spec.get("rate_limit_per_min", 120), f"{where} rate_limit_per_min", 1, 10**6, True),
            account=str(spec.get("account") or ""), store=str(spec.get("store") or ""),
            advertise=_advertise(spec.get("advertise"), where),
            connector=_mapping(spec.get("connector"), f"{where} connector"),
        )
        unknown_keys = set(spec) - _CHANNEL_KEYS
        if unknown_keys:
            raise SettingsError(f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown_keys)))}")
    _check_stores(channels, source)
    _check_shares(channels, regions, source)
    connectors = _mapping(data.get("connectors"), f"{source}: connectors")
    for platform, section in connectors.items():
        _mapping(section, f"{source}: connectors.{platform}")
    raw_rules = data.get("rules") or {}
    allowed = {f.name: f for f in fields(Rules)}
    unknown = set(raw_rules) - set(allowed)
    if unknown:
        raise SettingsError(f"{source}: unknown rule(s) {', '.join(sorted(unknown))}")
    values = {}
    for key, value in raw_rules.items():
        lo, hi = Rules.BOUNDS[key]
        values[key] = _number(value, f"{source}: rule {key}", lo, hi, allowed[key].type == "int")
    return Catalog(regions=regions, channels=channels, rules=Rules(**values), source=source,
                   connectors={p: dict(v or {}) for p, v in connectors.items()})


_CHANNEL_KEYS = {"platform", "region", "reservation_ttl_s", "rate_limit_per_min", "account", "store", "advertise", "connector"}


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise SettingsError(f"{where} must be a mapping, got {value!r}")
    return dict(value)


def _advertise(value: Any, where: str) -> Advertise:
    raw = _mapping(value, f"{where} advertise")
    unknown = set(raw) - set(Advertise.BOUNDS)
    if unknown:
        raise SettingsError(f"{where} advertise: unknown key(s) {', '.join(sorted(map(str, unknown)))}")
    checked = {}
    for key, item in raw.items():
        if item is None:
            continue
        lo, hi = Advertise.BOUNDS[key]
        checked[key] = _number(item, f"{where} advertise.{key}", lo, hi, key != "share_pct")
    return Advertise(**checked)


def _check_stores(channels: dict[str, Channel], source: str) -> None:
    for channel in channels.values():
        if not channel.store:
            continue
        store = channels.get(channel.store)
        if store is None or store.store:
            raise SettingsError(f"{source}: channel {channel.id} sells through store {channel.store!r}, "
                                "which is not a channel with its own listing")
        if store.region != channel.region:
            raise SettingsError(f"{source}: channel {channel.id} ({channel.region}) sells through store "
                                f"{store.id} ({store.region}); a store's channels share its region")


def _check_shares(channels: dict[str, Channel], regions: dict[str, Region], source: str) -> None:
    for region in regions:
        given = sum(c.advertise.share_pct or 0 for c in channels.values() if c.region == region)
        if given > 100 + 1e-9:
            raise SettingsError(f"{source}: advertise.share_pct of the channels in {region} adds up to "
                                f"{given:g}; the channels of a region can share at most 100 % of it")


def load_catalog(path: str | Path | None = None) -> Catalog:
    """The catalog from ``path``, or the packaged default when ``path`` is None."""
    if path is None:
        text = resources.files("lockstock").joinpath("catalog.yaml").read_text()
        return catalog_from_dict(yaml.safe_load(text), "<built-in catalog.yaml>")
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise SettingsError(f"cannot read channels file {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise SettingsError(f"channels file {path} is not valid YAML: {exc}") from None
    return catalog_from_dict(data, str(path))
