"""The engine's automatic reactions to how a SKU sells, as pure functions over ``SkuState``:
flex transfers, purchase limits, replenishment alerts and velocity reallocation.

Each reaction fires once per crossing of its threshold (a flag in the state is the hysteresis)
and returns the InventoryAlert records announcing what it did. Alert ids are numbered per SKU,
so a replayed event that repeats a reaction repeats the same id.
"""

from __future__ import annotations

import math
from typing import Any

from lockstock.catalog import Rules
from schemas.records import AlertType, InventoryAlert
from streams.engine.state import SkuState

FLEX = "flex"  # the flex pool, where a region name is expected (transfers, restock, adjust)
BUCKETS_PER_WINDOW = 12


def alert(state: SkuState, kind: AlertType, message: str, now: int, *, region: str | None = None,
          channel: str | None = None, quantity: int | None = None, **details: Any) -> InventoryAlert:
    state.alert_seq += 1
    return {
        "alert_id": f"{state.sku}:{kind.lower()}:{state.alert_seq}", "sku": state.sku, "type": kind,
        "message": message, "raised_at": now, "region": region, "channel": channel, "quantity": quantity,
        "details": {k: str(v) for k, v in details.items()},
    }


# -- sales velocity ------------------------------------------------------------------------------

def _bucket_ms(rules: Rules) -> int:
    return max(1, rules.velocity_window_s * 1000 // BUCKETS_PER_WINDOW)


def record_sale(state: SkuState, region: str, qty: int, now: int, rules: Rules) -> None:
    """Count ``qty`` units locked in ``region`` into the sliding window's current bucket."""
    bucket_ms = _bucket_ms(rules)
    start = now - now % bucket_ms
    if state.sales and state.sales[-1][0] == start:
        counts = state.sales[-1][1]
    else:
        counts = {}
        state.sales.append([start, counts])
    counts[region] = counts.get(region, 0) + qty
    totals = state.sales_in_window
    if totals is not None:
        totals[region] = totals.get(region, 0) + qty
    _prune(state, now, rules, bucket_ms)


def _prune(state: SkuState, now: int, rules: Rules, bucket_ms: int | None = None) -> None:
    horizon = now - rules.velocity_window_s * 1000
    if bucket_ms is None:
        bucket_ms = _bucket_ms(rules)
    sales = state.sales
    if sales and sales[0][0] + bucket_ms <= horizon:
        while sales and sales[0][0] + bucket_ms <= horizon:
            sales.pop(0)
        # A bucket leaves at most once per bucket length: recounting then is cheaper than
        # keeping track of which regions the remaining buckets still mention.
        state.sales_in_window = None


def _window_units(state: SkuState) -> dict[str, int]:
    """Per region, the units of the buckets ``state.sales`` holds (pruned by the caller), kept
    in the state so a lock does not add up the whole window again. Not to be changed by callers."""
    totals = state.sales_in_window
    if totals is None:
        totals = {}
        for _, counts in state.sales:
            for region, qty in counts.items():
                totals[region] = totals.get(region, 0) + qty
        state.sales_in_window = totals
    return totals


def window_sales(state: SkuState, now: int, rules: Rules) -> dict[str, int]:
    """Units locked per region within the window ending ``now``."""
    _prune(state, now, rules)
    return dict(_window_units(state))


def _velocity(state: SkuState, units: int, now: int, rules: Rules) -> float:
    """``velocity_per_s`` given the window's units (pruned to ``now``)."""
    if not units:
        return 0.0
    elapsed_ms = min(rules.velocity_window_s * 1000, max(_bucket_ms(rules), now - state.sales[0][0]))
    return units / (elapsed_ms / 1000)


def velocity_per_s(state: SkuState, now: int, rules: Rules) -> float:
    """Units per second over the window (or since the first sale, early in a stream)."""
    _prune(state, now, rules)
    return _velocity(state, sum(_window_units(state).values()), now, rules)


# -- reactions -------------------------------------------------------------------------------------

def move_flex(state: SkuState, region: str, units: int, now: int, trigger: str) -> list[InventoryAlert]:
    """Move ``units`` from the flex pool into ``region``'s allocation and announce it."""
    if units <= 0:
        return []
    state.flex -= units
    target = state.region(region)
    target.allocation += units
    return [alert(
        state, "FLEX_TRANSFER", f"Moved {units} units of {state.sku} from the flex pool to {region} ({trigger}); "
        f"{state.flex} left in flex.", now, region=region, quantity=units, trigger=trigger, flex_left=state.flex,
    )]


def flex_on_threshold(state: SkuState, region: str, now: int, rules: Rules) -> list[InventoryAlert]:
    """Once per crossing: a region that has used >= threshold of its allocation gets a chunk of flex."""
    stock = state.regions.get(region)
    if stock is None or stock.allocation <= 0:
        return []
    if (stock.locked + stock.paid + stock.shipped) * 100 < rules.flex_threshold_pct * stock.allocation:  # used
        stock.above_flex_threshold = False
        return []
    if stock.above_flex_threshold:
        return []
    stock.above_flex_threshold = True
    pct = round(100 * stock.used / stock.allocation)
    return move_flex(state, region, min(rules.flex_chunk, state.flex), now, f"{region} at {pct}% of its allocation")


def purchase_limit(state: SkuState, now: int, rules: Rules) -> list[InventoryAlert]:
    """Set a per-buyer limit when the SKU sells abnormally fast (projected sell-out too soon, or
    units/min above the threshold). An operator's limit is never overridden."""
    if state.buyer_limit is not None:
        return []
    _prune(state, now, rules)
    return _purchase_limit(state, now, rules, state.available)


def _purchase_limit(state: SkuState, now: int, rules: Rules, available: int) -> list[InventoryAlert]:
    """``purchase_limit`` with the window pruned to ``now`` and ``state.available`` known."""
    if state.buyer_limit is not None:
        return []
    units = sum(_window_units(state).values())
    if units < rules.limit_min_units:
        return []
    per_s = _velocity(state, units, now, rules)
    sellout_s = available / per_s if per_s else math.inf
    if rules.limit_velocity_per_min and per_s * 60 >= rules.limit_velocity_per_min:
        why = f"selling {per_s * 60:.0f} units/min (threshold {rules.limit_velocity_per_min:g})"
    elif sellout_s < rules.limit_sellout_horizon_s:
        why = f"projected to sell out in {sellout_s / 60:.1f} min"
    else:
        return []
    state.buyer_limit, state.limit_source = rules.limit_per_buyer, "auto"
    return [alert(
        state, "PURCHASE_LIMIT_TRIGGERED", f"{state.sku} is {why}: limited to {rules.limit_per_buyer} per buyer "
        "across all channels.", now, quantity=rules.limit_per_buyer, source="auto",
        velocity_per_min=round(per_s * 60, 1), projected_sellout_s=round(sellout_s) if per_s else "never",
    )]


def replenishment(state: SkuState, now: int, rules: Rules) -> list[InventoryAlert]:
    """Once per crossing below the threshold: tell purchasing, with a reorder quantity that covers
    ``reorder_cover_s`` at the observed velocity (at least back to the threshold)."""
    return _replenishment(state, now, rules, state.available)


def _replenishment(state: SkuState, now: int, rules: Rules, available: int) -> list[InventoryAlert]:
    """``replenishment`` with ``state.available`` known."""
    if state.total <= 0:
        return []
    threshold = state.total * rules.replenish_below_pct / 100
    if available >= threshold:
        state.low_stock = False
        return []
    if state.low_stock:
        return []
    state.low_stock = True
    per_s = velocity_per_s(state, now, rules)
    in_transit = sum(t["qty"] for t in state.in_transit.values())
    target = max(per_s * rules.reorder_cover_s, threshold)
    reorder = max(0, math.ceil(target - available - in_transit))
    return [alert(
        state, "REPLENISHMENT", f"{state.sku}: {available} of {state.total} units left "
        f"(< {rules.replenish_below_pct:g}%); reorder {reorder}.", now, quantity=reorder,
        available=available, total=state.total, in_transit=in_transit, velocity_per_min=round(per_s * 60, 1),
    )]


def reallocation(state: SkuState, now: int, rules: Rules) -> list[InventoryAlert]:
    """Once per crossing: a region selling above ``realloc_factor`` x its baseline share gets up to
    ``realloc_boost`` x that share of the regions' free units, taken from the other regions' free
    units. Locked, paid and shipped units never move."""
    _prune(state, now, rules)
    return _reallocation(state, now, rules)


def _reallocation(state: SkuState, now: int, rules: Rules) -> list[InventoryAlert]:
    """``reallocation`` with the window pruned to ``now``."""
    sales = _window_units(state)
    sold = sum(sales.values())
    if sold < rules.realloc_min_units:
        return []
    alerts = []
    for name, stock in state.regions.items():
        share = sales.get(name, 0) / sold
        if stock.baseline_share <= 0 or share < rules.realloc_factor * stock.baseline_share:
            # Cool down only well below the trigger, so a share wobbling around it moves once.
            if share < (1 + rules.realloc_factor) / 2 * stock.baseline_share:
                stock.hot = False
            continue
        if stock.hot:
            continue
        stock.hot = True
        free_total = sum(max(0, r.free) for r in state.regions.values())
        target = math.floor(min(share, rules.realloc_boost * stock.baseline_share, 1.0) * free_total)
        if target - stock.free < rules.realloc_min_units:
            continue  # already holds about its boosted share: nothing worth announcing
        moved = _take_free_from_others(state, name, target - stock.free)
        if moved:
            detail = ",".join(f"{r}:{n}" for r, n in sorted(moved.items()))
            units = sum(moved.values())
            alerts.append(alert(
                state, "REALLOCATION", f"{name} sells {share:.0%} of {state.sku} (baseline {stock.baseline_share:.0%}): "
                f"moved {units} free units to it from {detail}.", now, region=name, quantity=units,
                sources=detail, window_share=round(share, 3), baseline_share=round(stock.baseline_share, 3),
            ))
    return alerts


def _take_free_from_others(state: SkuState, to: str, wanted: int) -> dict[str, int]:
    donors = {n: r.free for n, r in state.regions.items() if n != to and r.free > 0}
    wanted = min(wanted, sum(donors.values()))
    if wanted <= 0:
        return {}
    pool = sum(donors.values())
    moved = {n: wanted * free // pool for n, free in donors.items()}
    for n in sorted(donors, key=lambda d: -donors[d]):  # integer remainder from the largest donors
        if sum(moved.values()) >= wanted:
            break
        if moved[n] < donors[n]:
            moved[n] += 1
    for n, units in moved.items():
        state.regions[n].allocation -= units
    state.regions[to].allocation += sum(moved.values())
    return {n: u for n, u in moved.items() if u}


def react(state: SkuState, now: int, rules: Rules, region: str | None = None) -> list[InventoryAlert]:
    """Every reaction after a change, the region that changed first."""
    alerts = []
    if region:
        alerts += flex_on_threshold(state, region, now, rules)
    for name in state.regions:
        if name != region:
            alerts += flex_on_threshold(state, name, now, rules)
    # The window is pruned once for every reaction below (docs/decisions/0007); the flex
    # transfers above do not read it.
    _prune(state, now, rules)
    # A reallocation only moves allocation between regions, which leaves ``available`` as it
    # was, and the limit changes no count: one sum serves the limit and the replenishment.
    available = state.available
    alerts += _purchase_limit(state, now, rules, available)
    alerts += _reallocation(state, now, rules)
    alerts += _replenishment(state, now, rules, available)
    return alerts
