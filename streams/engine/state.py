"""The per-SKU state the lock engine keeps: one plain object per SKU, one table value.

Accounting (units are conserved; tests check these invariants on random streams):
  total == flex + sum(region.allocation)
  region.locked + region.paid + region.shipped <= region.allocation   (never oversold)
A region's allocation counts every unit it was given during the stream, including those already
shipped, so ``free = allocation - locked - paid - shipped`` is what it can still lock. Flex units
belong to no region until moved. The dedup record (reservations, history, applied commands) lives
in the same value as the counts it protects: one changelog record carries both, because the
embedded broker has no transactions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

# Finished orders remembered per SKU to absorb redeliveries (orders still holding units are
# always remembered). Bounded so a SKU's table value stays well under a Kafka record's size.
DEDUP_HISTORY = 5_000
COMMAND_HISTORY = 500


@dataclass
class RegionStock:
    allocation: int = 0
    locked: int = 0  # reserved, not paid
    paid: int = 0  # paid, not shipped
    shipped: int = 0
    baseline_share: float = 0.0  # share of the allocations when stock was set (reallocation baseline)
    above_flex_threshold: bool = False  # hysteresis of the automatic flex transfer
    hot: bool = False  # hysteresis of velocity reallocation

    @property
    def used(self) -> int:
        return self.locked + self.paid + self.shipped

    @property
    def free(self) -> int:
        return self.allocation - self.used

    def to_list(self) -> list:
        return [self.allocation, self.locked, self.paid, self.shipped, self.baseline_share,
                self.above_flex_threshold, self.hot]

    @classmethod
    def from_list(cls, values: list) -> "RegionStock":
        return cls(*values)


@dataclass
class Reservation:
    qty: int
    region: str
    buyer: str
    channel: str
    paid: bool = False
    warehouse: str | None = None  # set when shipped

    def to_list(self) -> list:
        return [self.qty, self.region, self.buyer, self.channel, self.paid]

    @classmethod
    def from_list(cls, values: list) -> "Reservation":
        return cls(*values)


@dataclass
class SkuState:
    sku: str
    total: int = 0
    flex: int = 0
    regions: dict[str, RegionStock] = field(default_factory=dict)
    warehouses: dict[str, int] = field(default_factory=dict)  # warehouse -> physical on-hand
    in_transit: dict[str, dict[str, Any]] = field(default_factory=dict)  # transit id -> {qty, region, warehouse, eta}
    reservations: dict[str, Reservation] = field(default_factory=dict)  # order_id -> units held
    history: dict[str, str] = field(default_factory=dict)  # finished order_id -> "STATUS[:REASON]"
    buyers: dict[str, int] = field(default_factory=dict)  # buyer -> units held or shipped (purchase limits)
    buyer_limit: int | None = None
    limit_source: str | None = None  # "operator" or "auto"
    paused: list[str] = field(default_factory=list)  # channels that may not lock this SKU
    sales: list[list] = field(default_factory=list)  # [[bucket_start_ms, {region: units}], ...] newest last
    low_stock: bool = False  # hysteresis of the replenishment alert
    alert_seq: int = 0  # numbers alerts, so a replayed alert carries the same id
    applied_commands: list[str] = field(default_factory=list)
    published: dict[str, list] = field(default_factory=dict)  # channel -> [sellable, available, paused, flex] last sent
    seq: int = 0  # ChannelStock sequence for this SKU
    ship_shortfall: int = 0  # units shipped that no warehouse's count covered (count is off)
    audit_seq: int = 0  # the SKU's audit chain head (streams.engine.audit): last record's seq
    audit_head: str = "0" * 64  # ... and its hash (64 zeros: no record yet)

    @property
    def available(self) -> int:
        """Units that can still be locked anywhere: every region's free units plus the flex pool."""
        return self.flex + sum(r.free for r in self.regions.values())

    def region(self, name: str) -> RegionStock:
        if name not in self.regions:
            self.regions[name] = RegionStock()
        return self.regions[name]

    def to_dict(self) -> dict[str, Any]:
        return {
            "sku": self.sku, "total": self.total, "flex": self.flex,
            "regions": {k: v.to_list() for k, v in self.regions.items()},
            "warehouses": self.warehouses, "in_transit": self.in_transit,
            "reservations": {k: v.to_list() for k, v in self.reservations.items()},
            "history": self.history, "buyers": self.buyers, "buyer_limit": self.buyer_limit,
            "limit_source": self.limit_source, "paused": self.paused, "sales": self.sales,
            "low_stock": self.low_stock, "alert_seq": self.alert_seq,
            "applied_commands": self.applied_commands, "published": self.published, "seq": self.seq,
            "ship_shortfall": self.ship_shortfall, "audit_seq": self.audit_seq, "audit_head": self.audit_head,
        }

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SkuState":
        state = cls(**{k: v for k, v in data.items() if k not in ("regions", "reservations")})
        state.regions = {k: RegionStock.from_list(v) for k, v in data.get("regions", {}).items()}
        state.reservations = {k: Reservation.from_list(v) for k, v in data.get("reservations", {}).items()}
        return state

    def public_view(self) -> dict[str, Any]:
        """What operators, `stock show` and the war room see (no dedup bookkeeping)."""
        return {
            "sku": self.sku, "total": self.total, "available": self.available, "flex": self.flex,
            "locked": sum(r.locked for r in self.regions.values()),
            "paid": sum(r.paid for r in self.regions.values()),
            "shipped": sum(r.shipped for r in self.regions.values()),
            "regions": {
                name: {"allocation": r.allocation, "locked": r.locked, "paid": r.paid, "shipped": r.shipped,
                       "free": r.free, "in_transit": sum(t["qty"] for t in self.in_transit.values() if t["region"] == name)}
                for name, r in sorted(self.regions.items())
            },
            "warehouses": dict(sorted(self.warehouses.items())),
            "in_transit": [{"id": k, **v} for k, v in sorted(self.in_transit.items())],
            "buyer_limit": self.buyer_limit, "limit_source": self.limit_source,
            "paused_channels": sorted(self.paused), "open_reservations": len(self.reservations),
            "low_stock": self.low_stock, "ship_shortfall": self.ship_shortfall,
            "audit": {"seq": self.audit_seq, "head": self.audit_head},
        }


def remember(state: SkuState, order_id: str, outcome: str) -> None:
    """Record a finished order's outcome (bounded: the oldest finished orders are forgotten)."""
    state.history.pop(order_id, None)
    state.history[order_id] = outcome
    while len(state.history) > DEDUP_HISTORY:
        del state.history[next(iter(state.history))]


def remember_command(state: SkuState, command_id: str) -> None:
    state.applied_commands = (state.applied_commands + [command_id])[-COMMAND_HISTORY:]
