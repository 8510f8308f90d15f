"""What a load test offers: a total rate with a shape over time, N channels ordering at once,
SKU popularity following Zipf, and the share of multi-line, duplicate and cancelled orders, with
buyers reused so purchase limits are hit. Every knob is checked with a message naming it."""

from __future__ import annotations

import bisect
import itertools
import math
import random
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from lockstock.errors import SettingsError

if TYPE_CHECKING:
    from lockstock.catalog import Catalog

SHAPES = ("sustained", "ramp", "spike")
DEFAULT_CHANNELS = ("tiktok-us", "shopify", "amazon-us", "shopee-my")  # four platforms at once


@dataclass(frozen=True)
class LoadProfile:
    rate: float = 500.0  # orders/s offered (at the peak for ramp; the baseline is rate/4 for spike)
    duration_s: float = 30.0
    shape: str = "sustained"
    channels: tuple[str, ...] = DEFAULT_CHANNELS
    skus: int = 20
    stock_per_sku: int = 1000
    zipf_s: float = 1.1  # popularity exponent; 0 = every SKU equally popular
    multi_line: float = 0.1  # share of orders with 2-3 SKUs
    duplicates: float = 0.02  # share of orders sent twice (a platform's redelivery)
    cancellations: float = 0.05  # share of locked orders cancelled soon after
    buyers: int = 5000  # distinct buyers; fewer means more repeat buyers (purchase limits)
    max_qty: int = 2
    seed: int = 7
    hot_sku: float = 0.0  # share of orders that buy one unit of the run's hot SKU, each from a new buyer
    hot_stock: int | None = None  # units on the hot SKU; None: enough for every hot order to lock

    def validate(self) -> "LoadProfile":
        _between(self.rate, "--rate", 0.1, 1_000_000)
        _between(self.duration_s, "--duration", 1, 86_400)
        if self.shape not in SHAPES:
            raise SettingsError(f"--shape must be one of {', '.join(SHAPES)}, got {self.shape!r}")
        if not self.channels:
            raise SettingsError("--channels needs at least one channel")
        _between(self.skus, "--skus", 1, 100_000, whole=True)
        _between(self.stock_per_sku, "--stock-per-sku", 1, 10**9, whole=True)
        _between(self.zipf_s, "--zipf", 0, 10)
        for name, share in (("--multi-line", self.multi_line), ("--duplicates", self.duplicates),
                            ("--cancellations", self.cancellations)):
            _between(share, name, 0, 1, share=True)
        _between(self.buyers, "--buyers", 1, 10**9, whole=True)
        _between(self.max_qty, "--max-qty", 1, 1000, whole=True)
        _between(self.seed, "--seed", 0, 2**32, whole=True)
        _between(self.hot_sku, "--hot-sku", 0, 1, share=True)
        if self.hot_stock is not None:
            if not self.hot_sku:
                raise SettingsError("--hot-stock needs --hot-sku above 0 (no order would buy the hot SKU)")
            _between(self.hot_stock, "--hot-stock", 1, 10**9, whole=True)
        return replace(self, skus=int(self.skus), stock_per_sku=int(self.stock_per_sku), buyers=int(self.buyers),
                       max_qty=int(self.max_qty), seed=int(self.seed),
                       hot_stock=None if self.hot_stock is None else int(self.hot_stock))

    def rate_at(self, t: float) -> float:
        """Offered orders/s at ``t`` seconds into the run."""
        if self.shape == "ramp":
            return self.rate * min(1.0, max(0.02, t / self.duration_s))
        if self.shape == "spike":  # a quiet quarter rate, and 3x for the middle 10 % of the run
            middle = abs(t - self.duration_s / 2) <= self.duration_s * 0.05
            return self.rate * (3.0 if middle else 0.25)
        return self.rate

    def offered_total(self, step: float = 0.01) -> int:
        return round(sum(self.rate_at(i * step) * step for i in range(int(self.duration_s / step))))

    def hot_orders_expected(self) -> int:
        return math.ceil(self.offered_total() * self.hot_sku)


def units_to_lock_all(orders: int, channels: tuple[str, ...], catalog: Catalog) -> int:
    """The smallest total for one SKU, split the engine's default way (a flex pool of
    ``rules.flex_pct``, the rest over the regions by weight), on which ``orders`` one-unit orders
    spread evenly over ``channels`` all lock: each region's demand past its allocation comes out
    of the one flex pool. Demand gets a tenth (and 10 units) more, for the random channel draw."""
    served = Counter(catalog.channels[c].region for c in channels)
    demand = {region: math.ceil(orders * n / len(channels) * 1.1) + 10 for region, n in served.items()}

    def enough(total: int) -> bool:
        flex = math.floor(total * catalog.rules.flex_pct / 100 + 0.5)  # as streams/engine/commands.plan_split
        split = catalog.default_split(total - flex)
        return sum(max(0, units - split.get(region, 0)) for region, units in demand.items()) <= flex

    low, high = 1, sum(demand.values())
    while not enough(high):
        high *= 2
    while low < high:  # the smallest total that is enough: more units never make it less so
        middle = (low + high) // 2
        low, high = (low, middle) if enough(middle) else (middle + 1, high)
    return high


def _between(value: float, name: str, lo: float, hi: float, *, whole: bool = False, share: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise SettingsError(f"{name} must be a number, got {value!r}")
    if whole and not float(value).is_integer():
        raise SettingsError(f"{name} must be a whole number, got {value!r}")
    if not lo <= value <= hi:
        what = "a share between 0 and 1" if share else f"between {lo:g} and {hi:g}"
        raise SettingsError(f"{name} must be {what}, got {value!r}")


@dataclass
class OrderMaker:
    """Orders for one run: ids ``<run>-<n>``, SKUs ``<run>-SKU-<k>`` drawn by Zipf popularity;
    with ``hot_sku`` a share of them buy one unit of ``<run>-SKU-HOT`` (a SKU no other order
    buys), each from a buyer of its own: a flash sale's crowd, which purchase limits never stop."""

    profile: LoadProfile
    run_id: str
    rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.profile.seed)
        self.sku_names = [f"{self.run_id}-SKU-{k:04d}" for k in range(self.profile.skus)]
        weights = [1.0 / (k + 1) ** self.profile.zipf_s for k in range(self.profile.skus)]
        self._cumulative = list(itertools.accumulate(weights))
        self._numbers = itertools.count(1)
        self._hot_buyers = itertools.count(1)
        self.hot_sku = f"{self.run_id}-SKU-HOT" if self.profile.hot_sku else None
        if self.hot_sku:
            self.sku_names.append(self.hot_sku)

    def sku(self) -> str:
        at = self.rng.random() * self._cumulative[-1]
        return self.sku_names[min(len(self._cumulative) - 1, bisect.bisect_left(self._cumulative, at))]

    def one_unit_order(self, sku: str, channel: str, now_ms: int) -> dict:
        """One unit of ``sku`` for a buyer never seen before (hot orders, the bench's fill)."""
        return {
            "order_id": f"{self.run_id}-{next(self._numbers)}", "channel": channel,
            "buyer_id": f"{self.run_id}-hot-buyer-{next(self._hot_buyers)}", "ship_to_region": "",
            "placed_at": now_ms, "lines": [{"sku": sku, "qty": 1}],
        }

    def next_order(self, now_ms: int) -> tuple[dict, bool, bool]:
        """(OrderPlaced, send it twice, cancel it once locked)."""
        p, rng = self.profile, self.rng
        if self.hot_sku and rng.random() < p.hot_sku:  # no draw without a hot SKU: old seeds replay
            order = self.one_unit_order(self.hot_sku, rng.choice(p.channels), now_ms)
            return order, rng.random() < p.duplicates, rng.random() < p.cancellations
        count = rng.choice((2, 3)) if p.skus > 1 and rng.random() < p.multi_line else 1
        skus: list[str] = []
        while len(skus) < min(count, p.skus):
            sku = self.sku()
            if sku not in skus:
                skus.append(sku)
        order = {
            "order_id": f"{self.run_id}-{next(self._numbers)}", "channel": rng.choice(p.channels),
            "buyer_id": f"{self.run_id}-buyer-{rng.randrange(p.buyers)}", "ship_to_region": "",
            "placed_at": now_ms, "lines": [{"sku": s, "qty": rng.randint(1, p.max_qty)} for s in skus],
        }
        return order, rng.random() < p.duplicates, rng.random() < p.cancellations
