"""SKU states for tests, made with the engine's own pure functions (apply_command, lock_order_line)."""

from __future__ import annotations

from typing import Any

from lockstock.catalog import Catalog
from schemas.records import InventoryAlert, InventoryCommandType
from streams.engine.commands import apply_command
from streams.engine.state import SkuState
from streams.engine.stock import LOCKED, LineOutcome, lock_order_line
from tests.builders.catalogs import CATALOG
from tests.builders.records import NOW, inventory_command, line_lock_request


def commanded(state: SkuState | None, kind: InventoryCommandType, command_id: str | None = None, *,
              sku: str | None = None, catalog: Catalog = CATALOG, now: int = NOW, **fields: Any) -> SkuState:
    """``state`` after an InventoryCommand of type ``kind`` with ``fields``, issued and applied at
    ``now`` (default ``NOW``) under ``catalog`` (default: the repo's); asserts it was applied. The
    command is for ``sku``, by default the state's SKU ("A" for no state yet); without a
    ``command_id`` it gets a fresh one."""
    sku = sku or (state.sku if state is not None else "A")
    command = inventory_command(kind, command_id, sku=sku, issued_at=now, **fields)
    state, applied, _ = apply_command(state, command, catalog, now)
    assert applied
    return state


def stocked(total: int = 3000, *, sku: str = "A", command_id: str | None = "set-1", catalog: Catalog = CATALOG,
            now: int = NOW, **fields: Any) -> SkuState:
    """A new SKU (default "A") set to ``total`` units (default 3000: in the repo's catalog US 960,
    EU 800, SEA 640, flex 600) by a SET_STOCK command "set-1" with ``fields`` (regions, flex_pct,
    ...), applied at ``now`` (default ``NOW``) under ``catalog`` (default: the repo's)."""
    return commanded(None, "SET_STOCK", command_id, sku=sku, catalog=catalog, now=now, total=total, **fields)


def lock_line(state: SkuState | None, order_id: str, qty: int = 1, *, catalog: Catalog = CATALOG, now: int = NOW,
              **request_fields: Any) -> tuple[SkuState | None, LineOutcome, list[InventoryAlert]]:
    """What ``lock_order_line`` makes of a LOCK of ``qty`` units (default 1) for ``order_id`` at
    ``now`` (default ``NOW``) under ``catalog`` (default: the repo's): (state, outcome, alerts).
    The request is ``line_lock_request``'s with ``request_fields``, for the state's SKU and
    placed at ``now`` unless they say otherwise."""
    request_fields.setdefault("sku", state.sku if state is not None else "A")
    request_fields.setdefault("placed_at", now)
    return lock_order_line(state, line_lock_request(order_id, qty, **request_fields), catalog, now)


def locked(state: SkuState | None, order_id: str, qty: int = 1, **fields: Any) -> SkuState:
    """``state`` after ``lock_line(state, order_id, qty, **fields)``; asserts the line was LOCKED."""
    state, outcome, _ = lock_line(state, order_id, qty, **fields)
    assert outcome.status == LOCKED and state is not None
    return state
