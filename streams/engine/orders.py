"""Order-level decisions as pure functions: validating an order, splitting it into per-SKU lock
requests, and folding per-SKU outcomes into one all-or-nothing decision."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from streams.engine.stock import LOCKED, REJECTED, RELEASED

EMPTY_ORDER = "EMPTY_ORDER"
INVALID_QUANTITY = "INVALID_QUANTITY"
INVALID_SKU = "INVALID_SKU"
COMPENSATION = "COMPENSATION"  # another line of the same order was rejected


def validate_order(order: dict[str, Any]) -> str | None:
    """The reason an order cannot be locked at all, or None if it is well formed."""
    lines = order.get("lines") or []
    if not lines:
        return EMPTY_ORDER
    for line in lines:
        if not line["sku"].strip():
            return INVALID_SKU
        if line["qty"] <= 0:
            return INVALID_QUANTITY
    return None


def units_per_sku(order: dict[str, Any]) -> dict[str, int]:
    """An order's units grouped by SKU (two lines of one SKU lock as one request)."""
    units: dict[str, int] = {}
    for line in order["lines"]:
        units[line["sku"]] = units.get(line["sku"], 0) + line["qty"]
    return units


def lock_requests(order: dict[str, Any]) -> list[dict[str, Any]]:
    """One LineLockRequest per SKU of a valid order, each routed to the partition owning the SKU."""
    units = units_per_sku(order)
    return [
        {
            "order_id": order["order_id"], "sku": sku, "qty": qty, "action": "LOCK",
            "channel": order["channel"], "buyer_id": order["buyer_id"],
            "region": order["ship_to_region"] or None, "sku_count": len(units),
            "placed_at": order["placed_at"], "reason": None,
        }
        for sku, qty in units.items()
    ]


@dataclass
class PendingOrder:
    """Per-SKU outcomes gathered for one order until all are in."""

    order_id: str
    sku_count: int
    channel: str
    placed_at: int
    outcomes: dict[str, dict[str, Any]] = field(default_factory=dict)  # sku -> {qty, status, reason, region}
    decision: dict[str, Any] | None = None  # set once, then repeated on redelivery

    def to_dict(self) -> dict[str, Any]:
        return {
            "order_id": self.order_id, "sku_count": self.sku_count, "channel": self.channel,
            "placed_at": self.placed_at, "outcomes": self.outcomes, "decision": self.decision,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "PendingOrder":
        return cls(**data)


@dataclass
class Verdict:
    decision: dict[str, Any] | None  # the OrderDecision to publish, if any
    release_skus: list[str]  # SKUs whose lock must be compensated
    replayed: bool = False


def collect_line_outcome(pending: PendingOrder | None, result: dict[str, Any], now_ms: int) -> tuple[PendingOrder, Verdict]:
    """Add one SKU's outcome; decide when every SKU has answered (all LOCKED or none)."""
    pending = pending or PendingOrder(result["order_id"], result["sku_count"], result["channel"], result["placed_at"])
    sku = result["sku"]
    if pending.decision is not None:
        # Everything after the decision is a redelivery or a compensation echo: repeat, never redo.
        if result["status"] == LOCKED and pending.decision["status"] != LOCKED:
            return pending, Verdict(pending.decision, [sku], replayed=True)
        return pending, Verdict(pending.decision if result["status"] != RELEASED else None, [], replayed=True)
    pending.outcomes[sku] = {
        "qty": result["qty"], "status": result["status"], "reason": result["reason"], "region": result["region"],
    }
    if len(pending.outcomes) < pending.sku_count:
        return pending, Verdict(None, [])
    rejected = [o for o in pending.outcomes.values() if o["status"] != LOCKED]
    status = LOCKED if not rejected else REJECTED
    reason = None if not rejected else rejected[0]["reason"]
    lines = [
        {"sku": s, "qty": o["qty"], "region": o["region"] if status == LOCKED else None}
        for s, o in sorted(pending.outcomes.items())
    ]
    pending.decision = {
        "order_id": pending.order_id, "status": status, "reason": reason, "lines": lines,
        "decided_at": now_ms, "channel": pending.channel, "placed_at": pending.placed_at,
    }
    release = [s for s, o in pending.outcomes.items() if o["status"] == LOCKED] if rejected else []
    return pending, Verdict(pending.decision, release)


def compensation_requests(pending: PendingOrder, skus: list[str]) -> list[dict[str, Any]]:
    """RELEASE requests giving back what a rejected order's other lines locked."""
    return [
        {
            "order_id": pending.order_id, "sku": sku, "qty": pending.outcomes[sku]["qty"], "action": "RELEASE",
            "channel": pending.channel, "buyer_id": "", "region": None, "sku_count": pending.sku_count,
            "placed_at": pending.placed_at, "reason": COMPENSATION,
        }
        for sku in skus
    ]


def rejection(order: dict[str, Any], reason: str, now_ms: int) -> dict[str, Any]:
    """The decision for an order rejected before any SKU was asked (malformed lines)."""
    return {
        "order_id": order["order_id"], "status": REJECTED, "reason": reason,
        "lines": [{"sku": line["sku"], "qty": line["qty"], "region": None} for line in order.get("lines") or []],
        "decided_at": now_ms, "channel": order["channel"], "placed_at": order["placed_at"],
    }


