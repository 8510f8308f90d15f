"""Avro record dicts for tests, one builder per record type (schemas/records.py has their fields).

Every builder fills every field of its record (an InventoryCommand: the required ones and those
given); keyword arguments are named after the fields.
Defaults: SKU "A", order "o1", channel "tiktok-us", buyer "b1", region "US", time ``NOW``.
"""

from __future__ import annotations

import itertools
from typing import Any, cast

from schemas.records import (
    DecisionStatus, InventoryCommand, InventoryCommandType, LineAllocation, LineLockRequest, LineLockResult, LineStatus,
    LockAction, OrderDecision, OrderEvent, OrderEventType, OrderPlaced,
)

NOW = 1_000_000
"""The builders' default clock (ms), an arbitrary instant well after 0."""

_fresh_command_ids = (f"c{n}" for n in itertools.count())


def inventory_command(kind: InventoryCommandType, command_id: str | None = None, *, sku: str = "A",
                      issued_at: int = NOW, **fields: Any) -> InventoryCommand:
    """An InventoryCommand of type ``kind`` on ``sku`` (default "A"), issued at ``issued_at``
    (default ``NOW``), with the type's ``fields`` (total, regions, quantity, ...). Without a
    ``command_id`` it gets a fresh one ("c0", "c1", ...)."""
    if command_id is None:
        command_id = next(_fresh_command_ids)
    command: InventoryCommand = {"command_id": command_id, "sku": sku, "type": kind, "issued_at": issued_at}
    return cast(InventoryCommand, {**command, **fields})  # fields: the command type's optional fields


def line_lock_request(order_id: str = "o1", qty: int = 1, *, sku: str = "A", action: LockAction = "LOCK",
                      channel: str = "tiktok-us", buyer_id: str = "b1", region: str | None = "US",
                      sku_count: int = 1, placed_at: int = NOW, reason: str | None = None,
                      warehouse: str | None = None) -> LineLockRequest:
    """A LineLockRequest: ``action`` (default LOCK) on ``qty`` (default 1) units of ``sku``
    (default "A") for order ``order_id`` of buyer "b1" on tiktok-us, shipping to the US, an order
    of one SKU placed at ``NOW``; no reason, no warehouse."""
    return {"order_id": order_id, "sku": sku, "qty": qty, "action": action, "channel": channel,
            "buyer_id": buyer_id, "region": region, "sku_count": sku_count, "placed_at": placed_at,
            "reason": reason, "warehouse": warehouse}


def line_lock_result(request: LineLockRequest, status: LineStatus = "LOCKED", reason: str | None = None,
                     region: str | None = "US", *, decided_at: int = NOW) -> LineLockResult:
    """The LineLockResult the stock side sends for a LOCK ``request``: ``status`` (default LOCKED)
    with ``reason``, in ``region`` (default "US"; None unless LOCKED), decided at ``decided_at``
    (default ``NOW``); announced when the order has only this SKU."""
    return {"order_id": request["order_id"], "sku": request["sku"], "qty": request["qty"], "status": status,
            "reason": reason, "region": region if status == "LOCKED" else None, "sku_count": request["sku_count"],
            "channel": request["channel"], "placed_at": request["placed_at"], "decided_at": decided_at,
            "announced": request["sku_count"] == 1}


def order_placed(*lines: tuple[str, int], order_id: str = "o1", channel: str = "tiktok-us", buyer_id: str = "b1",
                 ship_to_region: str = "", placed_at: int = NOW) -> OrderPlaced:
    """An OrderPlaced with ``lines`` given as (sku, qty) pairs (default: none): order "o1" of buyer
    "b1" on tiktok-us, no ship-to region ("": the channel's), placed at ``NOW``."""
    return {"order_id": order_id, "channel": channel, "buyer_id": buyer_id, "ship_to_region": ship_to_region,
            "placed_at": placed_at, "lines": [{"sku": sku, "qty": qty} for sku, qty in lines]}


def order_event(kind: OrderEventType, event_id: str = "e1", order_id: str = "o1", *, channel: str = "tiktok-us",
                occurred_at: int = NOW, warehouse: str | None = None, reason: str | None = None) -> OrderEvent:
    """An OrderEvent of type ``kind`` (PAID, CANCELLED, SHIPPED): event "e1" of order "o1" on
    tiktok-us at ``NOW``, no warehouse, no reason."""
    return {"event_id": event_id, "order_id": order_id, "type": kind, "channel": channel,
            "occurred_at": occurred_at, "warehouse": warehouse, "reason": reason}


def order_decision(order_id: str, status: DecisionStatus, *lines: tuple[str, int] | tuple[str, int, str | None],
                   reason: str | None = None, channel: str | None = "tiktok-us", placed_at: int | None = NOW - 5,
                   decided_at: int = NOW) -> OrderDecision:
    """An OrderDecision: ``status`` of order ``order_id`` with ``lines`` given as (sku, qty) or
    (sku, qty, region) (default region None); no reason, on tiktok-us, placed at ``NOW`` - 5 and
    decided at ``NOW``."""
    return {"order_id": order_id, "status": status, "reason": reason, "lines": [_allocation(*line) for line in lines],
            "decided_at": decided_at, "channel": channel, "placed_at": placed_at}


def _allocation(sku: str, qty: int, region: str | None = None) -> LineAllocation:
    return {"sku": sku, "qty": qty, "region": region}
