"""What a load test offers: a total rate with a shape over time, N channels ordering at once,
SKU popularity following Zipf, and the share of multi-line, duplicate and cancelled orders, with
buyers reused so purchase limits are hit. Every knob is checked with a message naming it."""

from __future__ import annotations

import bisect
import itertools
import math
import random
from dataclasses import dataclass, field, replace

from lockstock.errors import SettingsError

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
        return replace(self, skus=int(self.skus), stock_per_sku=int(self.stock_per_sku), buyers=int(self.buyers),
                       max_qty=int(self.max_qty), seed=int(self.seed))

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
    """Orders for one run: ids ``<run>-<n>``, SKUs ``<run>-SKU-<k>`` drawn by Zipf popularity."""

    profile: LoadProfile
    run_id: str
    rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.profile.seed)
        self.sku_names = [f"{self.run_id}-SKU-{k:04d}" for k in range(self.profile.skus)]
        weights = [1.0 / (k + 1) ** self.profile.zipf_s for k in range(self.profile.skus)]
        self._cumulative = list(itertools.accumulate(weights))
        self._numbers = itertools.count(1)

    def sku(self) -> str:
        at = self.rng.random() * self._cumulative[-1]
        return self.sku_names[min(len(self.sku_names) - 1, bisect.bisect_left(self._cumulative, at))]

    def next_order(self, now_ms: int) -> tuple[dict, bool, bool]:
        """(OrderPlaced, send it twice, cancel it once locked)."""
        p, rng = self.profile, self.rng
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
