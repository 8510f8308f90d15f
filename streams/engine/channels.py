"""Per-channel sellable quantities (``ChannelStock``) derived from a SKU's state.

A channel may show what its region can still lock (the region's free units plus the flex pool,
which the engine moves on demand), or 0 while it is paused. The record also carries the region
and the flex pool, so a consumer can tell the region's own units from the shared flex (the
sync's leases need exactly that); a flex transfer therefore re-announces every channel. Only changes are emitted; ``seq``
rises per SKU so a consumer of the compacted topic can drop anything older than what it has.
How much of this each marketplace is actually told (leases, buffers, floors) is the
connectors' business.

Changes within ``rules.channel_stock_interval_ms`` of a SKU's last announcement wait (the stock
keeper announces them when the interval is over, streams/folds.py ``ChannelStockDue``), except
the urgent ones: a sell-out must stop a marketplace at once.
"""

from __future__ import annotations

from typing import Any

from lockstock.catalog import Catalog
from schemas.records import ChannelStock
from streams.engine.state import SkuState


def sellable_by_channel(state: SkuState, catalog: Catalog) -> dict[str, list]:
    """channel -> [sellable, available, paused, flex] as of now."""
    snapshot = {}
    for channel in catalog.channels.values():
        region = state.regions.get(channel.region)
        available = max(0, (region.free if region else 0) + state.flex)
        paused = channel.id in state.paused
        snapshot[channel.id] = [0 if paused else available, available, paused, state.flex]
    return snapshot


def channel_stock_updates(state: SkuState, catalog: Catalog, now: int, *, resend: bool = False,
                          interval_ms: int = 0) -> list[ChannelStock] | None:
    """ChannelStock records for every channel whose quantity changed since the last ones sent
    (every channel when ``resend``), remembered in the state. None when the changes wait: they
    came within ``interval_ms`` of the SKU's last announcement (a hot SKU changes every few
    milliseconds, and a marketplace only needs the latest figure), and none of them is urgent."""
    current = sellable_by_channel(state, catalog)
    changed = [(channel, quantity) for channel, quantity in current.items()
               if resend or state.published.get(channel) != quantity]
    if not changed:
        return []
    if now - state.announced_at < interval_ms and \
            not any(urgent(state.published.get(channel), quantity) for channel, quantity in changed):
        return None
    state.announced_at = now
    updates: list[ChannelStock] = []
    for channel, quantity in changed:
        state.seq += 1
        state.published[channel] = quantity
        sellable, available, paused, flex = quantity
        updates.append({
            "channel": channel, "sku": state.sku, "sellable": sellable, "available": available,
            "updated_at": now, "seq": state.seq, "paused": paused,
            "region": catalog.channels[channel].region, "flex": flex,
        })
    return updates


def urgent(before: list | None, after: list) -> bool:
    """A change a marketplace must see at once: a channel's first figure, selling out or coming
    back (sellable to or from 0), paused or resumed."""
    return before is None or (before[0] == 0) != (after[0] == 0) or before[2] != after[2]
