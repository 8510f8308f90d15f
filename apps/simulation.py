"""The BreezeStyle live stream (the seed's case) as a reproducible traffic plan.

A 90-minute stream, 20:00-21:30, compressed into ``seconds`` of real time: an opening peak on
every channel, the 20:15 US surge (the US allocation crosses 85 %: flex transfer), the 20:40 EU
burst on one SKU (purchase limit 2 per buyer, reallocation towards EU), slow SEA sales, with
duplicates, multi-line orders, payments, cancellations, unpaid locks that expire, shipments, a
restock in transit and a paused channel mixed in. Pure planning: no Kafka here.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

STREAM_START_MIN = 20 * 60  # 20:00
STREAM_MINUTES = 90


@dataclass(frozen=True)
class Phase:
    name: str
    start_min: int  # minutes after 20:00
    end_min: int
    share: float  # share of all orders placed in this phase
    channels: dict[str, float]  # channel -> weight
    skus: dict[str, float]  # sku -> weight
    buyers: int  # distinct buyers per region in this phase (fewer: more repeat buyers)
    quantities: tuple[int, ...] = (1, 1, 1, 2, 2, 3)


SKUS = {"BRZ-RING-01": 3000, "BRZ-BAND-02": 1200, "BRZ-PEND-03": 800}
SEED_SPLIT = {"US": 1200, "EU": 1000, "SEA": 800}  # the seed's split: with 20 % flex it does not fit

# Weights per channel; in the opening the regions order roughly in line with the 40/33/27 split.
_ALL = {"tiktok-us": 1.4, "youtube-us": 0.9, "instagram-us": 0.6, "amazon-us": 0.8, "shopify": 0.3,
        "tiktok-eu": 2, "amazon-eu": 1.3, "shopee-my": 1.6, "shopee-th": 1.1}
_US = {"tiktok-us": 5, "youtube-us": 3, "instagram-us": 2, "amazon-us": 2, "shopify": 1,
       "tiktok-eu": 1.5, "amazon-eu": 1, "shopee-my": 0.8, "shopee-th": 0.5}
_EU = {"tiktok-eu": 6, "amazon-eu": 4, "tiktok-us": 0.6, "youtube-us": 0.3, "amazon-us": 0.3,
       "shopee-my": 0.2, "shopee-th": 0.1}
_LATE = {"tiktok-us": 1.5, "youtube-us": 1.2, "instagram-us": 0.6, "amazon-us": 0.8, "shopify": 0.4,
         "tiktok-eu": 1.6, "amazon-eu": 1.2, "shopee-my": 0.6, "shopee-th": 0.4}

PHASES = (
    Phase("opening peak, four platforms live", 0, 15, 0.24, _ALL, {"BRZ-RING-01": 7, "BRZ-BAND-02": 2, "BRZ-PEND-03": 1}, 400),
    Phase("US surge", 15, 30, 0.26, _US, {"BRZ-RING-01": 8.5, "BRZ-BAND-02": 1, "BRZ-PEND-03": 0.5}, 500),
    Phase("steady", 30, 40, 0.08, _ALL, {"BRZ-RING-01": 6, "BRZ-BAND-02": 2, "BRZ-PEND-03": 2}, 300),
    Phase("EU burst on BRZ-BAND-02", 40, 55, 0.22, _EU, {"BRZ-BAND-02": 8, "BRZ-RING-01": 2}, 250, (1, 2, 2, 3)),
    Phase("wind-down, SEA slow", 55, 90, 0.20, _LATE, {"BRZ-RING-01": 6, "BRZ-BAND-02": 2, "BRZ-PEND-03": 2}, 400),
)

# Operator actions during the stream: (minute, what, InventoryCommand fields)
OPERATOR_ACTIONS = (
    (45, "restock of BRZ-RING-01 to LA ships, arriving in 36 h",
     {"sku": "BRZ-RING-01", "type": "RESTOCK", "quantity": 1000, "region": "US", "warehouse": "LA", "eta_in_s": 36 * 3600}),
    (60, "shopee-th listing of BRZ-PEND-03 under review: paused",
     {"sku": "BRZ-PEND-03", "type": "PAUSE_CHANNEL", "channel": "shopee-th"}),
    (75, "shopee-th listing approved: resumed",
     {"sku": "BRZ-PEND-03", "type": "RESUME_CHANNEL", "channel": "shopee-th"}),
)


@dataclass
class PlannedOrder:
    at_s: float  # seconds after the stream starts (real time)
    order: dict[str, Any]  # OrderPlaced without placed_at (stamped when sent)
    duplicate_of: str | None = None


@dataclass
class Plan:
    orders: list[PlannedOrder] = field(default_factory=list)
    phase_starts: list[tuple[float, Phase]] = field(default_factory=list)


def sim_clock(real_s: float, seconds: float) -> str:
    """The stream's wall clock (20:00-21:30) at ``real_s`` into a run compressed to ``seconds``."""
    minute = STREAM_START_MIN + min(STREAM_MINUTES, real_s / seconds * STREAM_MINUTES)
    return f"{int(minute // 60):02d}:{int(minute % 60):02d}"


def real_seconds(minute: float, seconds: float) -> float:
    return minute / STREAM_MINUTES * seconds


def _pick(rng: random.Random, weights: dict[str, float]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def plan_stream(total_orders: int, seconds: float, rng: random.Random, regions_of: dict[str, str], *,
                multi_line_share: float = 0.12, duplicate_share: float = 0.04) -> Plan:
    """Every order of the stream with its send time; ``regions_of`` maps channel -> region."""
    plan = Plan()
    number = 0
    for phase in PHASES:
        start, end = real_seconds(phase.start_min, seconds), real_seconds(phase.end_min, seconds)
        plan.phase_starts.append((start, phase))
        count = round(total_orders * phase.share)
        for i in range(count):
            at = start + (end - start) * i / max(1, count)
            channel = _pick(rng, phase.channels)
            first = _pick(rng, phase.skus)
            lines = [{"sku": first, "qty": rng.choice(phase.quantities)}]
            others = [s for s in phase.skus if s != first]
            if others and rng.random() < multi_line_share:
                lines.append({"sku": rng.choice(others), "qty": 1})
            platform_id = 580000000000 + number
            order = {
                "order_id": f"{channel.split('-')[0]}:{platform_id}", "channel": channel,
                "buyer_id": f"buyer-{regions_of[channel]}-{rng.randint(1, phase.buyers)}",
                "ship_to_region": "", "lines": lines,
            }
            number += 1
            plan.orders.append(PlannedOrder(at, order))
            if rng.random() < duplicate_share:  # the platform redelivers its webhook a moment later
                plan.orders.append(PlannedOrder(at + rng.uniform(0.05, 1.0), dict(order), duplicate_of=order["order_id"]))
    plan.orders.sort(key=lambda p: p.at_s)
    return plan


@dataclass(frozen=True)
class Lifecycle:
    """What buyers do after a lock: most pay; a few cancel; a few never pay (the lock expires);
    some paid orders ship before the run ends."""

    cancel_share: float = 0.02
    unpaid_share: float = 0.03
    ship_share: float = 0.35

    def after_lock(self, rng: random.Random) -> list[tuple[float, str]]:
        """(delay in seconds, event type) for one locked order."""
        roll = rng.random()
        if roll < self.cancel_share:
            return [(rng.uniform(0.2, 1.5), "CANCELLED")]
        if roll < self.cancel_share + self.unpaid_share:
            return []
        paid = rng.uniform(0.1, 1.0)
        events = [(paid, "PAID")]
        if rng.random() < self.ship_share:
            events.append((paid + rng.uniform(1.0, 4.0), "SHIPPED"))
        return events
