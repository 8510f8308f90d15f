"""Per-SKU stock decisions as pure functions over a plain state object.

No Kafka and no Faust here: agents hand in a decoded request and the current state, and get
back the new state and the outcome. The dedup record lives in the same state value as the
stock it protects, so one changelog record carries both (the embedded broker has no
transactions; see lockstock.broker.profile).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# How many finished orders per SKU are remembered to absorb redeliveries. Orders still holding a
# reservation are always remembered; this bounds only the released/rejected history.
DEDUP_HISTORY = 20_000

LOCKED, REJECTED, RELEASED = "LOCKED", "REJECTED", "RELEASED"
OUT_OF_STOCK = "OUT_OF_STOCK"
UNKNOWN_SKU = "UNKNOWN_SKU"


@dataclass
class LineOutcome:
    """The answer for one order's units of one SKU."""

    status: str
    reason: str | None = None
    replayed: bool = False  # True when this answer repeats an earlier one (redelivery)


@dataclass
class SkuStock:
    sku: str
    total: int = 0
    locked: int = 0
    reservations: dict[str, int] = field(default_factory=dict)  # order_id -> units held
    history: dict[str, str] = field(default_factory=dict)  # finished order_id -> final status
    applied_commands: list[str] = field(default_factory=list)  # recent command ids (dedup)

    @property
    def available(self) -> int:
        return self.total - self.locked

    def to_dict(self) -> dict[str, Any]:
        return {
            "sku": self.sku, "total": self.total, "locked": self.locked,
            "reservations": self.reservations, "history": self.history,
            "applied_commands": self.applied_commands,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SkuStock":
        return cls(
            sku=data["sku"], total=data["total"], locked=data["locked"],
            reservations=dict(data.get("reservations", {})), history=dict(data.get("history", {})),
            applied_commands=list(data.get("applied_commands", [])),
        )

    def public_view(self) -> dict[str, Any]:
        """What operators and `stock show` see (no dedup bookkeeping)."""
        return {
            "sku": self.sku, "total": self.total, "locked": self.locked,
            "available": self.available, "open_reservations": len(self.reservations),
        }


def _remember(stock: SkuStock, order_id: str, status: str) -> None:
    stock.history.pop(order_id, None)
    stock.history[order_id] = status
    while len(stock.history) > DEDUP_HISTORY:
        del stock.history[next(iter(stock.history))]


def lock_order_line(stock: SkuStock | None, order_id: str, qty: int) -> tuple[SkuStock | None, LineOutcome]:
    """Lock ``qty`` units for ``order_id``, or reject. A repeated request repeats the answer."""
    if stock is None:
        return None, LineOutcome(REJECTED, UNKNOWN_SKU)
    if order_id in stock.reservations:
        return stock, LineOutcome(LOCKED, replayed=True)
    if order_id in stock.history:
        previous = stock.history[order_id]
        return stock, LineOutcome(previous, OUT_OF_STOCK if previous == REJECTED else None, replayed=True)
    if qty <= 0:
        raise ValueError(f"qty must be > 0, got {qty}")  # validated upstream; a bug if reached
    if qty > stock.available:
        _remember(stock, order_id, REJECTED)
        return stock, LineOutcome(REJECTED, OUT_OF_STOCK)
    stock.locked += qty
    stock.reservations[order_id] = qty
    return stock, LineOutcome(LOCKED)


def release_order_line(stock: SkuStock | None, order_id: str, reason: str) -> tuple[SkuStock | None, LineOutcome]:
    """Give back what ``order_id`` holds. Releasing twice, or what was never locked, is a no-op."""
    if stock is None:
        return None, LineOutcome(RELEASED, reason, replayed=True)
    held = stock.reservations.pop(order_id, None)
    if held is None:
        replayed = order_id in stock.history
        _remember(stock, order_id, RELEASED)
        return stock, LineOutcome(RELEASED, reason, replayed=replayed)
    stock.locked -= held
    _remember(stock, order_id, RELEASED)
    return stock, LineOutcome(RELEASED, reason)


def apply_line_request(stock: SkuStock | None, request: dict[str, Any], now_ms: int) -> tuple[SkuStock | None, dict[str, Any]]:
    """Handle one LineLockRequest (LOCK or RELEASE): the new state and the LineLockResult."""
    order_id = request["order_id"]
    if request["action"] == "LOCK":
        stock, outcome = lock_order_line(stock, order_id, request["qty"])
    else:
        stock, outcome = release_order_line(stock, order_id, request["reason"] or RELEASED)
    return stock, {
        "order_id": order_id, "sku": request["sku"], "qty": request["qty"], "status": outcome.status,
        "reason": outcome.reason, "region": request["region"] if outcome.status == LOCKED else None,
        "sku_count": request["sku_count"], "channel": request["channel"],
        "placed_at": request["placed_at"], "decided_at": now_ms,
    }


def apply_command(stock: SkuStock | None, command: dict[str, Any]) -> tuple[SkuStock, bool]:
    """Handle one InventoryCommand. ValueError (with the reason) for a command that cannot apply."""
    if command["type"] != "SET_STOCK" or command["total"] is None:
        raise ValueError(f"command {command['type']} is not supported by this worker yet")
    return set_stock(stock, command["sku"], command["total"], command["command_id"])


def set_stock(stock: SkuStock | None, sku: str, total: int, command_id: str) -> tuple[SkuStock, bool]:
    """Set the pool's total. Refuses a total below what is already locked. Returns (state, applied)."""
    if total < 0:
        raise ValueError(f"total must be >= 0, got {total}")
    stock = stock or SkuStock(sku=sku)
    if command_id in stock.applied_commands:
        return stock, False
    if total < stock.locked:
        raise ValueError(f"total {total} is below the {stock.locked} units already locked for {sku}")
    stock.total = total
    stock.applied_commands = (stock.applied_commands + [command_id])[-1000:]
    return stock, True
