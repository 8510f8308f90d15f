"""Operator commands on one SKU (``InventoryCommand``) as pure functions over ``SkuState``.

A command that cannot apply raises ``CommandError`` with a sentence saying why; the agent
dead-letters it with that reason and the CLI shows it before anything is sent.
"""

from __future__ import annotations

import math
from typing import Any

from lockstock.catalog import Catalog, proportional_split
from lockstock.errors import LockstockError
from schemas.records import InventoryAlert, InventoryCommand
from streams.engine import automation
from streams.engine.automation import FLEX, alert
from streams.engine.state import SkuState


class CommandError(LockstockError, ValueError):
    """The command is well formed but cannot apply to this SKU's state."""


def plan_split(total: int, regions: dict[str, int], flex_pct: float, catalog: Catalog,
               proportional: bool = False) -> tuple[dict[str, int], int]:
    """Allocations per region and the flex pool for ``total`` units, or CommandError saying why.

    Allocations plus the flex pool may never exceed the total. With no regions given, the
    catalog's weights split what the flex pool leaves; with ``proportional``, the given regions
    are scaled down to fit. Units no region claims join the flex pool (they stay sellable).
    """
    if total < 0:
        raise CommandError(f"total must be >= 0, got {total}")
    if not 0 <= flex_pct <= 100:
        raise CommandError(f"flex pool must be 0-100 % of total, got {flex_pct:g}")
    unknown = sorted(set(regions) - set(catalog.regions))
    if unknown:
        raise CommandError(f"unknown region(s) {', '.join(unknown)}; configured: {', '.join(catalog.regions)}")
    negative = {r: n for r, n in regions.items() if n < 0}
    if negative:
        raise CommandError(f"allocations must be >= 0, got {', '.join(f'{r}={n}' for r, n in negative.items())}")
    flex_min = math.floor(total * flex_pct / 100 + 0.5)  # half up: 2.5 units of flex is 3, not 2
    room = total - flex_min
    if not regions:
        regions = catalog.default_split(room)
    elif sum(regions.values()) > room:
        if not proportional:
            asked = " + ".join(f"{r} {n}" for r, n in regions.items())
            raise CommandError(
                f"allocations {asked} = {sum(regions.values())} plus the flex pool {flex_min} ({flex_pct:g}% of {total}) "
                f"= {sum(regions.values()) + flex_min}, more than the {total} units that exist; lower the allocations "
                f"to {room} in total, lower the flex share, or ask for a proportional split"
            )
        regions = proportional_split(room, {r: float(n) for r, n in regions.items()})
    regions = {r: regions.get(r, 0) for r in catalog.regions}
    return regions, total - sum(regions.values())


def apply_command(state: SkuState | None, command: InventoryCommand, catalog: Catalog,
                  now: int) -> tuple[SkuState, bool, list[InventoryAlert]]:
    """Apply one InventoryCommand: (new state, applied?, alerts). A repeated command id is a no-op."""
    kind = command["type"]
    if state is not None and state.command_applied(command["command_id"]):
        return state, False, []
    if kind == "SET_STOCK":
        state, alerts = set_stock(state, command, catalog, now)
    elif state is None:
        raise CommandError(f"unknown SKU {command['sku']!r}: set its stock first")
    elif kind not in _HANDLERS:
        raise CommandError(f"command type {kind} is not one this worker knows")
    else:
        alerts = _HANDLERS[kind](state, command, catalog, now)
    state.note_command(command["command_id"], now)
    return state, True, alerts + automation.react(state, now, catalog.rules, command.get("region"))


def set_stock(state: SkuState | None, command: InventoryCommand, catalog: Catalog,
              now: int) -> tuple[SkuState, list[InventoryAlert]]:
    """Set the pool's total and its split. Refuses a split that leaves a region below what it
    has already locked, paid or shipped."""
    total, given_pct = command.get("total"), command.get("flex_pct")
    if total is None:
        raise CommandError("SET_STOCK needs a total")
    flex_pct = catalog.rules.flex_pct if given_pct is None else given_pct
    regions, flex = plan_split(total, dict(command.get("regions") or {}), flex_pct, catalog,
                               bool(command.get("proportional")))
    state = state or SkuState(sku=command["sku"])
    short = {r: state.regions[r].used for r, n in regions.items() if r in state.regions and n < state.regions[r].used}
    if short:
        raise CommandError(
            "the new split leaves less than already sold in " + ", ".join(f"{r} ({n} locked/paid/shipped)" for r, n in short.items())
        )
    warehouses = dict(command.get("warehouses") or {})
    unknown = sorted(w for w in warehouses if catalog.warehouse_region(w) is None)
    if unknown or any(n < 0 for n in warehouses.values()):
        raise CommandError(f"warehouse counts must name configured warehouses with units >= 0 (got {warehouses})")
    shipped = sum(r.shipped for r in state.regions.values())
    if warehouses and sum(warehouses.values()) != total - shipped:
        raise CommandError(
            f"warehouse counts add up to {sum(warehouses.values())}, but {total} - {shipped} shipped "
            f"= {total - shipped} units are on hand"
        )
    allocated = sum(regions.values())
    for name, units in regions.items():
        stock = state.region(name)
        stock.allocation = units
        stock.baseline_share = units / allocated if allocated else 0.0
    state.total, state.flex = total, flex
    state.warehouses = warehouses or _default_placement(state, catalog)
    return state, []


def _default_placement(state: SkuState, catalog: Catalog) -> dict[str, int]:
    """Without counts per warehouse: each region's units in its first warehouse, flex in the
    first warehouse of the first region."""
    placement = {w: 0 for region in catalog.regions.values() for w in region.warehouses}
    for name, stock in state.regions.items():
        placement[catalog.regions[name].warehouses[0]] += stock.allocation - stock.shipped
    placement[next(iter(catalog.regions.values())).warehouses[0]] += state.flex
    return placement


def _quantity(command: InventoryCommand, *, positive: bool = True) -> int:
    qty = command.get("quantity")
    if qty is None or (positive and qty <= 0) or qty == 0:
        raise CommandError(f"{command['type']} needs a quantity {'> 0' if positive else '!= 0'}, got {qty}")
    return qty


def _region_or_flex(command: InventoryCommand, catalog: Catalog, field_name: str = "region") -> str:
    region = str(command.get(field_name) or FLEX)  # "region" or "to_region": both strings or null
    if region != FLEX and region not in catalog.regions:
        raise CommandError(f"unknown region {region!r}; configured: {', '.join(catalog.regions)} (or {FLEX})")
    return region


def _warehouse(command: InventoryCommand, catalog: Catalog, region: str) -> str:
    warehouse = command.get("warehouse")
    if warehouse is None:
        home = region if region != FLEX else next(iter(catalog.regions))
        return catalog.regions[home].warehouses[0]
    if catalog.warehouse_region(warehouse) is None:
        raise CommandError(f"unknown warehouse {warehouse!r}")
    return warehouse


def _add_units(state: SkuState, region: str, units: int) -> None:
    if region == FLEX:
        state.flex += units
    else:
        state.region(region).allocation += units
    state.total += units


def restock(state: SkuState, command: InventoryCommand, catalog: Catalog, now: int) -> list[InventoryAlert]:
    """Stock arrived (added now), is in transit (``eta`` in the future: shown, not sellable), or
    a transit landed (``transit_id``: the recorded shipment, at the received quantity)."""
    transit_id = command.get("transit_id")
    if transit_id:
        shipment = state.in_transit.get(transit_id)
        if shipment is None:
            raise CommandError(f"no shipment {transit_id!r} in transit for {state.sku}")
        received = command.get("quantity")
        qty = shipment["qty"] if received is None else received
        if qty <= 0:
            raise CommandError(f"received quantity must be > 0, got {qty}")
        del state.in_transit[transit_id]
        region, warehouse = shipment["region"], shipment["warehouse"]
    else:
        qty = _quantity(command)
        region = _region_or_flex(command, catalog)
        warehouse = _warehouse(command, catalog, region)
        eta = command.get("eta")
        if eta and eta > command["issued_at"]:
            state.in_transit[command["command_id"]] = {
                "qty": qty, "region": region, "warehouse": warehouse, "eta": eta,
            }
            return []
    _add_units(state, region, qty)
    state.warehouses[warehouse] = state.warehouses.get(warehouse, 0) + qty
    return []


def transfer(state: SkuState, command: InventoryCommand, catalog: Catalog, now: int) -> list[InventoryAlert]:
    """Move free units between regions or the flex pool; locked units never move."""
    qty = _quantity(command)
    source, target = _region_or_flex(command, catalog), _region_or_flex(command, catalog, "to_region")
    if source == target:
        raise CommandError(f"transfer from {source} to itself")
    free = state.flex if source == FLEX else state.region(source).free
    if qty > free:
        raise CommandError(f"{source} has only {free} free units of {state.sku}; cannot move {qty}")
    _add_units(state, source, -qty)
    _add_units(state, target, qty)
    return []


def adjust(state: SkuState, command: InventoryCommand, catalog: Catalog, now: int) -> list[InventoryAlert]:
    """A count correction: units found (+) or lost (-) in a region (or flex) and its warehouse."""
    qty = _quantity(command, positive=False)
    region = _region_or_flex(command, catalog)
    warehouse = _warehouse(command, catalog, region)
    free = state.flex if region == FLEX else state.region(region).free
    if qty < 0 and -qty > free:
        raise CommandError(f"cannot remove {-qty} units from {region}: only {free} are free (the rest are sold)")
    if state.warehouses.get(warehouse, 0) + qty < 0:
        raise CommandError(f"warehouse {warehouse} holds only {state.warehouses.get(warehouse, 0)} units")
    _add_units(state, region, qty)
    state.warehouses[warehouse] = state.warehouses.get(warehouse, 0) + qty
    return []


def set_purchase_limit(state: SkuState, command: InventoryCommand, catalog: Catalog, now: int) -> list[InventoryAlert]:
    limit = command.get("buyer_limit")
    if limit is None or limit < 1:
        raise CommandError(f"a purchase limit must be >= 1 unit per buyer, got {limit}")
    state.buyer_limit, state.limit_source = limit, "operator"
    return [alert(state, "PURCHASE_LIMIT_TRIGGERED", f"{state.sku} limited to {limit} per buyer by an operator.",
                  now, quantity=limit, source="operator", issued_by=command.get("issued_by") or "")]


def clear_purchase_limit(state: SkuState, command: InventoryCommand, catalog: Catalog, now: int) -> list[InventoryAlert]:
    if state.buyer_limit is None:
        return []
    state.buyer_limit = state.limit_source = None
    return [alert(state, "PURCHASE_LIMIT_CLEARED", f"{state.sku}: purchase limit lifted.", now)]


def _channel(command: InventoryCommand, catalog: Catalog) -> str:
    channel = command.get("channel")
    if channel not in catalog.channels:
        raise CommandError(f"unknown channel {channel!r}; configured: {', '.join(catalog.channels)}")
    return channel


def pause_channel(state: SkuState, command: InventoryCommand, catalog: Catalog, now: int) -> list[InventoryAlert]:
    channel = _channel(command, catalog)
    if channel in state.paused:
        return []
    state.paused = sorted(state.paused + [channel])
    return [alert(state, "CHANNEL_PAUSED", f"{channel} stops selling {state.sku}.", now, channel=channel)]


def resume_channel(state: SkuState, command: InventoryCommand, catalog: Catalog, now: int) -> list[InventoryAlert]:
    channel = _channel(command, catalog)
    if channel not in state.paused:
        return []
    state.paused = [c for c in state.paused if c != channel]
    return [alert(state, "CHANNEL_RESUMED", f"{channel} sells {state.sku} again.", now, channel=channel)]


_HANDLERS = {
    "RESTOCK": restock, "TRANSFER": transfer, "ADJUST": adjust,
    "SET_PURCHASE_LIMIT": set_purchase_limit, "CLEAR_PURCHASE_LIMIT": clear_purchase_limit,
    "PAUSE_CHANNEL": pause_channel, "RESUME_CHANNEL": resume_channel,
}
