"""Per-SKU line actions as pure functions over ``SkuState``: lock, release, commit (paid), ship.

No Kafka and no Faust here: the agent hands in a decoded LineLockRequest and the current state,
and gets back the new state, the LineLockResult to send (if any) and the alerts it caused.
Every action is idempotent per order: a redelivered request repeats the first answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, cast

from lockstock.catalog import Catalog
from schemas.records import InventoryAlert, LineLockRequest, LineLockResult, LineStatus
from streams.engine import automation
from streams.engine.state import DONE, HELD, Reservation, SkuState

LOCKED: Final = "LOCKED"
REJECTED: Final = "REJECTED"
RELEASED: Final = "RELEASED"
SHIPPED: Final = "SHIPPED"
OUT_OF_STOCK = "OUT_OF_STOCK"
UNKNOWN_SKU = "UNKNOWN_SKU"
UNKNOWN_REGION = "UNKNOWN_REGION"
PURCHASE_LIMIT = "PURCHASE_LIMIT"
CHANNEL_PAUSED = "CHANNEL_PAUSED"


@dataclass
class LineOutcome:
    """The answer for one order's units of one SKU."""

    status: str
    reason: str | None = None
    region: str | None = None
    replayed: bool = False  # True when this answer repeats an earlier one (redelivery)


def _replay(state: SkuState, order_id: str) -> LineOutcome | None:
    record = state.line(order_id)
    if record is None:
        return None
    if record[0] == HELD:
        return LineOutcome(LOCKED, region=Reservation.from_record(record).region, replayed=True)
    if record[0] == DONE:
        status, _, detail = record[1].partition(":")
        if status == SHIPPED:  # a shipped order was locked: its lock request's answer stays LOCKED
            return LineOutcome(LOCKED, region=detail.split(":")[0] or None, replayed=True)
        return LineOutcome(status, detail or None, replayed=True)
    return None


def _reject(state: SkuState, order_id: str, reason: str, now: int) -> LineOutcome:
    state.finish(order_id, f"{REJECTED}:{reason}", now)
    return LineOutcome(REJECTED, reason)


def lock_order_line(state: SkuState | None, request: LineLockRequest, catalog: Catalog,
                    now: int) -> tuple[SkuState | None, LineOutcome, list[InventoryAlert]]:
    """Lock an order's units of this SKU: buyer limit, then the region's allocation, then the flex
    pool (an automatic transfer, announced), else REJECTED OUT_OF_STOCK."""
    if state is None:
        return None, LineOutcome(REJECTED, UNKNOWN_SKU), []
    order_id, qty, region = request["order_id"], request["qty"], request["region"]
    replayed = _replay(state, order_id)
    if replayed:
        return state, replayed, []
    if qty <= 0:
        raise ValueError(f"qty must be > 0, got {qty}")  # validated by the order desk; a bug if reached
    if region not in catalog.regions:
        return state, _reject(state, order_id, UNKNOWN_REGION, now), []
    if request["channel"] in state.paused:
        return state, _reject(state, order_id, CHANNEL_PAUSED, now), []
    buyer = request["buyer_id"]
    if state.buyer_limit is not None and state.buyer_units(buyer) + qty > state.buyer_limit:
        return state, _reject(state, order_id, PURCHASE_LIMIT, now), []
    stock = state.region(region)
    alerts: list[InventoryAlert] = []
    if qty > stock.free:
        short = qty - max(0, stock.free)
        if state.flex < short:
            return state, _reject(state, order_id, OUT_OF_STOCK, now), []
        move = min(state.flex, max(short, catalog.rules.flex_chunk))
        alerts += automation.move_flex(state, region, move, now, f"{region} short of {short} for an order")
    stock.locked += qty
    state.hold(order_id, Reservation(qty, region, buyer, request["channel"]))
    state.add_buyer_units(buyer, qty, now)
    automation.record_sale(state, region, qty, now, catalog.rules)
    alerts += automation.react(state, now, catalog.rules, region)
    return state, LineOutcome(LOCKED, region=region), alerts


def release_order_line(state: SkuState | None, order_id: str, reason: str, catalog: Catalog,
                       now: int) -> tuple[SkuState | None, LineOutcome, list[InventoryAlert]]:
    """Give back what ``order_id`` holds (locked or paid). Releasing twice, or what was never
    locked, is a no-op; a shipped order cannot be released (that is a return)."""
    if state is None:
        return None, LineOutcome(RELEASED, reason, replayed=True), []
    held = state.held(order_id)
    if held is None:
        outcome = state.outcome(order_id)
        if outcome is not None and outcome.startswith(SHIPPED):
            return state, LineOutcome(SHIPPED, replayed=True), []
        if outcome is None:
            state.finish(order_id, f"{RELEASED}:{reason}", now)  # a late lock for it must not hold units
        return state, LineOutcome(RELEASED, reason, replayed=True), []
    stock = state.region(held.region)
    if held.paid:
        stock.paid -= held.qty
    else:
        stock.locked -= held.qty
    state.add_buyer_units(held.buyer, -held.qty, now)
    state.finish(order_id, f"{RELEASED}:{reason}", now)
    return state, LineOutcome(RELEASED, reason, region=held.region), automation.react(state, now, catalog.rules, held.region)


def commit_order_line(state: SkuState | None, order_id: str) -> tuple[SkuState | None, LineOutcome]:
    """Paid: the lock becomes a commitment (it no longer expires). Repeats are no-ops."""
    held = state.held(order_id) if state else None
    if state is None or held is None or held.paid:
        return state, LineOutcome(LOCKED, replayed=True)
    stock = state.region(held.region)
    stock.locked -= held.qty
    stock.paid += held.qty
    held.paid = True
    state.hold(order_id, held)
    return state, LineOutcome(LOCKED, region=held.region)


def ship_order_line(state: SkuState | None, order_id: str, warehouse: str | None, catalog: Catalog,
                    now: int) -> tuple[SkuState | None, LineOutcome, list[tuple[str, int]]]:
    """Shipped: the units leave the warehouse (the one named, else the nearest with stock).
    Returns the warehouses picked and units taken from each."""
    held = state.held(order_id) if state else None
    if state is None or held is None:
        return state, LineOutcome(SHIPPED, replayed=True), []
    stock = state.region(held.region)
    if held.paid:
        stock.paid -= held.qty
    else:
        stock.locked -= held.qty
    stock.shipped += held.qty
    picks = pick_warehouses(state, catalog, held.region, held.qty, warehouse)
    for name, units in picks:
        state.warehouses[name] -= units
    state.ship_shortfall += held.qty - sum(units for _, units in picks)
    state.finish(order_id, f"{SHIPPED}:{held.region}:{'+'.join(name for name, _ in picks) or 'none'}", now)
    return state, LineOutcome(SHIPPED, region=held.region), picks


def pick_warehouses(state: SkuState, catalog: Catalog, region: str, qty: int,
                    named: str | None = None) -> list[tuple[str, int]]:
    """The warehouse the platform named; else the nearest single warehouse holding all ``qty``;
    else nearest first, split. Never takes more than a warehouse holds."""
    if named:
        return [(named, min(qty, state.warehouses.get(named, 0)))] if state.warehouses.get(named, 0) > 0 else []
    order = [w for w in catalog.warehouses_nearest(region) if state.warehouses.get(w, 0) > 0]
    for name in order:
        if state.warehouses[name] >= qty:
            return [(name, qty)]
    picks, left = [], qty
    for name in order:
        take = min(left, state.warehouses[name])
        picks.append((name, take))
        left -= take
        if not left:
            break
    return picks


def apply_line_request(state: SkuState | None, request: LineLockRequest, catalog: Catalog,
                       now: int) -> tuple[SkuState | None, LineLockResult | None, list[InventoryAlert]]:
    """Handle one LineLockRequest: the new state, the LineLockResult for the order desk (only a
    LOCK is answered; the desk already knows what it released, paid or shipped), and the alerts."""
    order_id, action = request["order_id"], request["action"]
    if action == "RELEASE":
        state, _, alerts = release_order_line(state, order_id, request["reason"] or RELEASED, catalog, now)
        return state, None, alerts
    if action == "COMMIT":
        return commit_order_line(state, order_id)[0], None, []
    if action == "SHIP":
        return ship_order_line(state, order_id, request.get("warehouse"), catalog, now)[0], None, []
    if action != "LOCK":
        raise ValueError(f"unknown lock action {action!r}")
    state, outcome, alerts = lock_order_line(state, request, catalog, now)
    # A single-SKU order is decided by this answer; only a fresh one is announced here. A replayed
    # answer may since have been overtaken by a release: the desk, which knows, repeats the order's
    # latest decision instead (orders.on_line_result), also when a kill between the keeper's
    # changelog and its answers kept the first announcement from leaving.
    announced = request["sku_count"] == 1 and not outcome.replayed
    return state, {
        "order_id": order_id, "sku": request["sku"], "qty": request["qty"], "status": cast(LineStatus, outcome.status),
        "reason": outcome.reason, "region": outcome.region if outcome.status == LOCKED else None,
        "sku_count": request["sku_count"], "channel": request["channel"],
        "placed_at": request["placed_at"], "decided_at": now, "announced": announced,
    }, alerts
