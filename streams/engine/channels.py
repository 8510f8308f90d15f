"""Per-channel sellable quantities (``ChannelStock``) derived from a SKU's state.

A channel may show what its region can still lock (the region's free units plus the flex pool,
which the engine moves on demand), or 0 while it is paused. The record also carries the region
and the flex pool, so a consumer can tell the region's own units from the shared flex (the
sync's leases need exactly that); a flex transfer therefore re-announces every channel. Only changes are emitted; ``seq``
rises per SKU so a consumer of the compacted topic can drop anything older than what it has.
How much of this each marketplace is actually told (leases, buffers, floors) is the
connectors' business.
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


def channel_stock_updates(state: SkuState, catalog: Catalog, now: int, *, resend: bool = False) -> list[ChannelStock]:
    """ChannelStock records for every channel whose quantity changed since the last ones sent
    (every channel when ``resend``), remembered in the state."""
    updates: list[ChannelStock] = []
    for channel, current in sellable_by_channel(state, catalog).items():
        if not resend and state.published.get(channel) == current:
            continue
        state.seq += 1
        state.published[channel] = current
        sellable, available, paused, flex = current
        updates.append({
            "channel": channel, "sku": state.sku, "sellable": sellable, "available": available,
            "updated_at": now, "seq": state.seq, "paused": paused,
            "region": catalog.channels[channel].region, "flex": flex,
        })
    return updates
