"""Leases: how many units each marketplace listing may show, carved from the pool so that all
listings together can never sell more than the engine can still lock.

Inputs per SKU (``Pool``): from ``channels.stock``, each region's free units and the shared flex
pool; from ``orders.placed``, units sold on a listing whose decision has not reached us yet (in
flight: the engine's numbers do not include them). The budget of a region is its free units,
less its in-flight units, plus its part of the flex pool (split by region weight, less what
in-flight orders beyond their region's free units will take from it). Budgets add up to at most
what can be locked, and any set of regions can lock at least the sum of their budgets, so
every listing can honour what it shows.

Inside a region, a listing gets its share of the budget (``advertise.share_pct``; channels with
no share split what the explicit ones leave), less its buffer, capped at ``max_units``, and 0
under ``floor``. YouTube / Instagram channels selling through a store add their share to the
store's listing: the store shows one quantity for all of them.

Planning (``plan``) is safe under concurrency as well as at rest:
- a decrease (or a first push) is sent at once, ahead of any increase;
- an increase waits until no decrease of that SKU is pending or in flight and none of the
  listing's own orders is in flight, and is clamped so that the listings of the region together
  never show more than the region's budget, counting every other listing at the higher of what
  it shows and what is being pushed to it.
What a listing shows (``shown``) follows our acknowledged pushes and the listing's own sales;
platforms whose API can compare-and-set refuse a push made against a stale ``shown``.
What no push protocol without compare-and-set can close is a sale on the platform that happens
while our push is on the wire and whose webhook has not arrived: a set overwrites it. Each such
listing therefore holds back a race margin: its recent sales rate times how late its sales reach
us (webhook or queue delay, p90) plus how long a push takes (p90), at least ``buffer``
(connectors/sync/state.py measures both). Compare-and-set platforms (Shopify) need none: a
push against a stale quantity is refused and re-planned.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from lockstock.catalog import Advertise, Catalog, proportional_split


@dataclass(frozen=True)
class Listing:
    """A store channel's listing on its platform and the channels that sell through it."""

    channel: str
    platform: str
    region: str
    members: tuple[str, ...]
    shares: dict[str, float]  # member -> share_pct of the region budget
    advertise: Advertise

    def share(self, paused: set[str]) -> float:
        return sum(pct for member, pct in self.shares.items() if member not in paused)


def listings_of(catalog: Catalog) -> dict[str, Listing]:
    """Every channel with its own listing, with the resolved share of each member channel."""
    shares: dict[str, float] = {}
    for region in catalog.regions:
        members = [c for c in catalog.channels.values() if c.region == region]
        explicit = sum(c.advertise.share_pct or 0 for c in members if c.advertise.share_pct is not None)
        implicit = [c for c in members if c.advertise.share_pct is None]
        for channel in members:
            if channel.advertise.share_pct is not None:
                shares[channel.id] = channel.advertise.share_pct
            else:
                shares[channel.id] = max(0.0, 100.0 - explicit) / len(implicit)
    listings = {}
    for channel in catalog.channels.values():
        if channel.store:
            continue
        members = catalog.store_channels(channel.id)
        listings[channel.id] = Listing(
            channel=channel.id, platform=channel.platform, region=channel.region,
            members=tuple(m.id for m in members), shares={m.id: shares[m.id] for m in members},
            advertise=channel.advertise,
        )
    return listings


@dataclass
class Pool:
    """One SKU as the engine last announced it, plus the units in flight per channel."""

    sku: str
    available: dict[str, int] = field(default_factory=dict)  # channel -> region free + flex
    paused: set[str] = field(default_factory=set)
    flex: int = 0
    flex_known: bool = True
    seq: int = -1
    changed_at: int = 0  # when the latest input that changes this SKU's plan reached Kafka (ms)
    in_flight: dict[str, int] = field(default_factory=dict)  # channel -> units sold, not yet in the numbers

    def apply_stock(self, record: dict) -> bool:
        """Take a ChannelStock record; False when it is older than what we have."""
        channel = record["channel"]
        self.available[channel] = max(0, record["available"])
        if record.get("paused"):
            self.paused.add(channel)
        else:
            self.paused.discard(channel)
        flex = record.get("flex", -1)
        self.flex_known = flex >= 0
        self.flex = max(0, flex)
        self.seq = max(self.seq, record["seq"])
        return True

    def region_free(self, catalog: Catalog) -> dict[str, int]:
        free = {}
        for region in catalog.regions:
            seen = [a for c, a in self.available.items() if c in catalog.channels and catalog.channels[c].region == region]
            # An older writer did not say how much of ``available`` is flex: count none of it as
            # the region's own, so flex is never counted once per region.
            free[region] = (max(0, min(seen) - self.flex) if self.flex_known else 0) if seen else 0
        return free

    def shared_flex(self) -> int:
        if self.flex_known:
            return self.flex
        return min(self.available.values(), default=0)


def region_budgets(pool: Pool, catalog: Catalog) -> dict[str, int]:
    free = pool.region_free(catalog)
    in_flight = {region: 0 for region in catalog.regions}
    for channel, units in pool.in_flight.items():
        if channel in catalog.channels:
            in_flight[catalog.channels[channel].region] += units
    overflow = sum(max(0, in_flight[r] - free[r]) for r in free)  # lands on flex when locked
    flex_left = max(0, pool.shared_flex() - overflow)
    weights = {name: region.weight for name, region in catalog.regions.items()}
    flex_parts = proportional_split(flex_left, weights) if sum(weights.values()) > 0 else {r: 0 for r in weights}
    return {r: max(0, free[r] - in_flight[r]) + flex_parts[r] for r in free}


def advertised(listing: Listing, budget: int, paused: set[str], race_margin: int = 0) -> int:
    """The listing's rule applied to its region's budget, less what it may sell unseen (the race
    margin) on top of its configured buffer."""
    if listing.channel in paused:
        return 0
    rules = listing.advertise
    units = math.floor(budget * min(100.0, listing.share(paused)) / 100.0 + 1e-9) - max(rules.buffer, race_margin)
    if rules.max_units is not None:
        units = min(units, rules.max_units)
    return 0 if units < max(1, rules.floor) else units


@dataclass
class ListingSku:
    """Our knowledge of one listing's quantity of one SKU on its platform."""

    shown: int | None = None  # what it shows: last acknowledged push, less its own sales since
    pushing: int | None = None  # a push on the wire, not answered yet


@dataclass(frozen=True)
class Push:
    listing: str
    sku: str
    quantity: int
    expected: int | None
    decrease: bool  # decreases (and first pushes) go first, increases wait for them


def plan(pool: Pool, listings: dict[str, Listing], known: dict[str, ListingSku], catalog: Catalog,
         race_margins: dict[str, int] | None = None) -> list[Push]:
    """The pushes that bring every listing of ``pool.sku`` towards its lease, safely now."""
    budgets = region_budgets(pool, catalog)
    margins = race_margins or {}
    targets = {name: advertised(listing, budgets[listing.region], pool.paused, margins.get(name, 0))
               for name, listing in listings.items()}
    pushes: list[Push] = []
    increases: list[str] = []
    for name, target in targets.items():
        state = known.setdefault(name, ListingSku())
        if state.pushing is not None:
            continue  # re-planned when the platform answers
        if state.shown is None or target < state.shown:
            pushes.append(Push(name, pool.sku, target, state.shown, decrease=True))
        elif target > state.shown:
            increases.append(name)
    if pushes or any(s.pushing is not None and (s.shown is None or s.pushing < s.shown) for s in known.values()):
        return pushes  # increases wait until every decrease has landed
    held = {name: _held(state) for name, state in known.items() if name in listings}
    for name in increases:
        listing = listings[name]
        if any(pool.in_flight.get(member, 0) for member in listing.members):
            continue  # never raise a listing while its own orders are in flight
        others = sum(held[o] for o, other in listings.items() if other.region == listing.region and o != name)
        quantity = min(targets[name], budgets[listing.region] - others)
        if quantity > (known[name].shown or 0):
            pushes.append(Push(name, pool.sku, quantity, known[name].shown, decrease=False))
            held[name] = quantity  # the next listing of the region counts this one at its new height
    return pushes


def _held(state: ListingSku) -> int:
    """What a listing may sell at most: the higher of what it shows and what it is being sent."""
    return max(state.shown or 0, state.pushing or 0)
