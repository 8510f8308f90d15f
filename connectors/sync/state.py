"""The sync's view of the world, as plain state fed by Kafka records (no I/O here).

- ``channels.stock`` updates each SKU's pool (older ``seq`` ignored: the topic is compacted and
  may replay).
- ``orders.placed`` puts an order's units in flight on its channel and takes them off what its
  listing shows (the platform decremented its own count when it sold).
- ``orders.decisions`` settles the order, ``settle_ms`` later: the decision is produced after the
  engine's stock update for that order, but the two topics are read independently, so for a
  moment the units are counted twice (in flight and gone from stock), never zero times.
- Orders never decided within ``forget_ms`` are dropped from in flight (counted in
  ``stale_in_flight``: an engine that stopped deciding is the alert, not our lease).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

from connectors.sync.leases import Listing, ListingSku, Pool, Push, listings_of, plan
from lockstock.catalog import Catalog
from lockstock.stats import percentile

RATE_WINDOW_MS = 10_000  # sales rate over the last 10 s: a live stream's bursts are short
SAMPLES = 200  # recent delays kept per listing


@dataclass
class OpenOrder:
    channel: str
    units: dict[str, int]  # sku -> qty
    seen_at: int
    settle_at: int | None = None


@dataclass
class SyncState:
    catalog: Catalog
    settle_ms: int = 500
    forget_ms: int = 300_000
    pools: dict[str, Pool] = field(default_factory=dict)
    known: dict[str, dict[str, ListingSku]] = field(default_factory=dict)  # sku -> listing -> state
    orders: dict[str, OpenOrder] = field(default_factory=dict)
    stale_in_flight: int = 0
    exact: set[str] = field(default_factory=set)  # listings pushed with compare-and-set: no race margin
    recent_sales: dict[str, deque] = field(default_factory=dict)  # listing -> (seen_at, units)
    intake_ms: dict[str, deque] = field(default_factory=dict)  # listing -> sale-to-seen delays
    push_ms: dict[str, deque] = field(default_factory=dict)  # listing -> push round trips

    def __post_init__(self) -> None:
        self.listings: dict[str, Listing] = listings_of(self.catalog)
        self.listing_of: dict[str, str] = {m: name for name, l in self.listings.items() for m in l.members}

    def pool(self, sku: str) -> Pool:
        pool = self.pools.get(sku)
        if pool is None:
            pool = self.pools[sku] = Pool(sku)
        return pool

    def on_stock(self, record: dict, at: int) -> str | None:
        """The SKU whose plan may change, or None (an old or foreign record)."""
        if record["channel"] not in self.catalog.channels:
            return None
        pool = self.pool(record["sku"])
        if record["seq"] < pool.seq:
            return None
        pool.apply_stock(record)
        pool.changed_at = max(pool.changed_at, at)
        return pool.sku

    def on_placed(self, order: dict, at: int, seen_at: int | None = None) -> set[str]:
        """``at``: when the order reached Kafka; ``seen_at``: when we read it (default ``at``)."""
        order_id, channel = order["order_id"], order["channel"]
        if order_id in self.orders or channel not in self.catalog.channels:
            return set()  # a redelivery, or a channel this catalog does not know
        units: dict[str, int] = {}
        for line in order["lines"]:
            if line["qty"] > 0:
                units[line["sku"]] = units.get(line["sku"], 0) + line["qty"]
        self.orders[order_id] = OpenOrder(channel, units, at)
        listing = self.listing_of.get(channel)
        if listing:
            self.recent_sales.setdefault(listing, deque()).append((at, sum(units.values())))
            seen = at if seen_at is None else seen_at
            delay = min(60_000, max(0, seen - order.get("placed_at", seen)))  # platform clocks may be off
            self.intake_ms.setdefault(listing, deque(maxlen=SAMPLES)).append(delay)
        for sku, qty in units.items():
            pool = self.pool(sku)
            pool.in_flight[channel] = pool.in_flight.get(channel, 0) + qty
            pool.changed_at = max(pool.changed_at, at)
            state = self.known.setdefault(sku, {}).get(listing) if listing else None
            if state is not None and state.shown is not None and state.pushing is None:
                # The platform counted this sale down itself. (A sale we hear of while our push
                # is on the wire was most likely overwritten by that push: keep the higher view.)
                state.shown = max(0, state.shown - qty)
        return set(units)

    def on_decision(self, decision: dict, now: int) -> None:
        order = self.orders.get(decision["order_id"])
        if order is not None and order.settle_at is None:
            order.settle_at = now + self.settle_ms

    def settle(self, now: int) -> set[str]:
        """Take settled (and long-undecided) orders out of flight; the SKUs that changed."""
        changed: set[str] = set()
        for order_id, order in list(self.orders.items()):
            stale = order.settle_at is None and now - order.seen_at > self.forget_ms
            if not stale and (order.settle_at is None or order.settle_at > now):
                continue
            self.stale_in_flight += stale
            del self.orders[order_id]
            for sku, qty in order.units.items():
                pool = self.pool(sku)
                left = pool.in_flight.get(order.channel, 0) - qty
                if left > 0:
                    pool.in_flight[order.channel] = left
                else:
                    pool.in_flight.pop(order.channel, None)
                changed.add(sku)
        return changed

    def pushed(self, listing: str, round_trip_ms: float) -> None:
        self.push_ms.setdefault(listing, deque(maxlen=SAMPLES)).append(round_trip_ms)

    def race_margin(self, listing: str, now: int) -> int:
        """Units ``listing`` may sell that we cannot know of when a push lands: its sales rate
        times (how late sales reach us + how long a push takes), both at p90."""
        if listing in self.exact:
            return 0
        sales = self.recent_sales.get(listing)
        while sales and now - sales[0][0] > RATE_WINDOW_MS:
            sales.popleft()
        if not sales:
            return 0
        per_ms = sum(units for _, units in sales) / RATE_WINDOW_MS
        window_ms = percentile(list(self.intake_ms.get(listing, ())), 90) + percentile(list(self.push_ms.get(listing, ())), 90)
        return math.ceil(per_ms * window_ms)

    def race_margins(self, now: int) -> dict[str, int]:
        """Every listing's race margin, computed once per planning pass (not once per SKU)."""
        return {name: self.race_margin(name, now) for name in self.listings}

    def plan(self, sku: str, now: int = 0, margins: dict[str, int] | None = None) -> list[Push]:
        pool = self.pools.get(sku)
        if pool is None or pool.seq < 0:
            return []  # nothing known from the engine yet: push nothing
        if margins is None and now:
            margins = self.race_margins(now)
        return plan(pool, self.listings, self.known.setdefault(sku, {}), self.catalog, margins)

    def sent(self, push: Push) -> None:
        self.known[push.sku][push.listing].pushing = push.quantity

    def answered(self, push: Push, accepted: bool, actual: int | None = None) -> None:
        state = self.known[push.sku][push.listing]
        state.pushing = None
        if accepted:
            state.shown = push.quantity
        elif actual is not None:
            state.shown = actual  # a refused compare-and-set told us what the platform shows
