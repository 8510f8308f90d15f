"""The war room's picture of a live stream, folded from records: pure, no Kafka, no clock.

Inputs, as the feed reads them:
- the engine's state per SKU (the stock table's changelog): the truth for the four stock states
  (available, reserved, low, in transit) and the region heat map, shown exactly as the engine has
  them, never recomputed from decisions;
- ``orders.decisions``: what sold where and when, for the consumption curves, the sales velocity
  and the sell-out countdown (a redelivered decision repeats itself and is counted once; a
  RELEASED decision gives its units back to the curve);
- ``inventory.alerts``: the live alert feed (deduplicated by alert id: replays repeat ids);
- ``channels.stock``: what each channel may sell right now (latest ``seq`` wins).

Memory is bounded whatever the stream's length or SKU count: curves keep at most
``MAX_CURVE_POINTS`` buckets (their width doubles as the stream grows), velocity windows a dozen
buckets, and SKUs, orders and alert ids are remembered in bounded least-recently-used maps.
"""

from __future__ import annotations

import math
from collections import Counter, OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any

from apps.warroom.talk import channel_name, region_name, talking_points, top_points, warehouse_name
from lockstock.catalog import Catalog
from streams.engine.state import SkuState

MAX_CURVE_POINTS = 120
FIRST_BUCKET_MS = 1000
WINDOW_BUCKETS = 12  # like the engine's own velocity window (streams/engine/automation.py)
MAX_ALERTS = 40
MAX_SKUS = 2_000  # SKUs remembered; the least recently changed is forgotten first
MAX_CARDS = 12  # SKUs shown in full; with more, the best sellers
ORDER_MEMORY = 50_000  # orders remembered to tell a repeated decision from a new one
ALERT_ID_MEMORY = 10_000
MAX_TALKING_POINTS = 7

LOCKED, REJECTED, RELEASED = "LOCKED", "REJECTED", "RELEASED"


class Curve:
    """Cumulative units per channel over time in at most ``max_points`` buckets. Buckets start at
    one second and double in width whenever the stream outgrows them, so a 30-second load test
    and a 90-minute stream both fill the chart with the same bounded number of points."""

    def __init__(self, max_points: int = MAX_CURVE_POINTS, first_width_ms: int = FIRST_BUCKET_MS) -> None:
        self.max_points, self.width = max_points, first_width_ms
        self.origin: int | None = None
        self.buckets: dict[int, Counter] = {}

    def add(self, at_ms: int, channel: str, units: int) -> None:
        if self.origin is None:
            self.origin = at_ms
        # Partitions interleave, so a record may be a little older than the first one seen.
        index = max(0, (at_ms - self.origin) // self.width)
        while index >= self.max_points:
            self._coarsen()
            index = (at_ms - self.origin) // self.width
        self.buckets.setdefault(index, Counter())[channel] += units

    def _coarsen(self) -> None:
        self.width *= 2
        merged: dict[int, Counter] = {}
        for index, counts in self.buckets.items():
            merged.setdefault(index // 2, Counter()).update(counts)
        self.buckets = merged

    def points(self, now_ms: int) -> dict[str, Any]:
        """``{"t": [ms...], "series": {channel: [cumulative units...]}}``, extended flat to now."""
        if self.origin is None or not self.buckets:
            return {"t": [], "series": {}}
        last = max(self.buckets)
        now_index = (now_ms - self.origin) // self.width
        if last < now_index < self.max_points:
            last = now_index
        channels = sorted({c for counts in self.buckets.values() for c in counts})
        times, series = [self.origin], {c: [0] for c in channels}
        running = Counter()
        for index in range(last + 1):
            running.update(self.buckets.get(index, {}))
            times.append(min(self.origin + (index + 1) * self.width, max(now_ms, self.origin)))
            for c in channels:
                series[c].append(running[c])
        return {"t": times, "series": series}


class SalesWindow:
    """Units locked within the last ``window_ms``, per channel and region, in a dozen buckets
    (velocity the way the engine measures it, so the countdown agrees with its purchase limits)."""

    def __init__(self, window_ms: int) -> None:
        self.window_ms = window_ms
        self.bucket_ms = max(1, window_ms // WINDOW_BUCKETS)
        self.buckets: dict[int, tuple[Counter, Counter]] = {}  # bucket start -> (by channel, by region)

    def add(self, at_ms: int, channel: str, region: str, units: int) -> None:
        start = at_ms - at_ms % self.bucket_ms
        by_channel, by_region = self.buckets.setdefault(start, (Counter(), Counter()))
        by_channel[channel] += units
        by_region[region] += units
        horizon = at_ms - self.window_ms - self.bucket_ms
        for old in [s for s in self.buckets if s < horizon]:
            del self.buckets[old]

    def _live(self, now_ms: int) -> list[tuple[int, tuple[Counter, Counter]]]:
        horizon = now_ms - self.window_ms
        return sorted((s, b) for s, b in self.buckets.items() if s + self.bucket_ms > horizon and s <= now_ms)

    def by_channel(self, now_ms: int) -> Counter:
        total = Counter()
        for _, (by_channel, _) in self._live(now_ms):
            total.update(by_channel)
        return total

    def per_s(self, now_ms: int) -> float:
        """Units per second over the window, or since the first sale in it early in a stream."""
        live = self._live(now_ms)
        units = sum(sum(by_channel.values()) for _, (by_channel, _) in live)
        if units <= 0:
            return 0.0
        elapsed_ms = min(self.window_ms, max(self.bucket_ms, now_ms - live[0][0]))
        return units / (elapsed_ms / 1000)


@dataclass
class SkuBoard:
    """Everything the war room knows about one SKU."""

    sku: str
    curve: Curve
    window: SalesWindow
    view: dict[str, Any] | None = None  # the engine's public view (SkuState.public_view), newest
    state_at: int | None = None
    sold: Counter = field(default_factory=Counter)  # channel -> units locked, net of releases
    channels: dict[str, dict[str, Any]] = field(default_factory=dict)  # channel -> latest ChannelStock


class WarRoom:
    """Fold records in with the ``on_*`` methods (from one thread, or under one lock); read the
    picture with :meth:`snapshot`. ``version`` rises with every change, so a server can tell
    when there is news to push."""

    def __init__(self, catalog: Catalog, *, max_skus: int = MAX_SKUS, max_cards: int = MAX_CARDS) -> None:
        self.catalog, self.rules = catalog, catalog.rules
        self.max_skus, self.max_cards = max_skus, max_cards
        self.window_ms = int(self.rules.velocity_window_s * 1000)
        self.boards: OrderedDict[str, SkuBoard] = OrderedDict()
        self.curve = Curve()
        self.window = SalesWindow(self.window_ms)
        self.sold: Counter = Counter()  # channel -> units locked, net of releases, every SKU
        self.rejected: Counter = Counter()  # reason -> orders
        self.orders: OrderedDict[str, str] = OrderedDict()  # order id -> last status seen
        self.alerts: deque[dict[str, Any]] = deque(maxlen=MAX_ALERTS)
        self.alert_ids: OrderedDict[str, None] = OrderedDict()
        self.alert_types: Counter = Counter()
        self.counts: Counter = Counter()
        self.undecodable: Counter = Counter()  # topic -> records that could not be read
        self.last_error: str | None = None
        self.version = 0

    # -- folding -------------------------------------------------------------------------------------
    def _board(self, sku: str) -> SkuBoard:
        board = self.boards.get(sku)
        if board is None:
            board = self.boards[sku] = SkuBoard(sku, Curve(), SalesWindow(self.window_ms))
            while len(self.boards) > self.max_skus:
                self.boards.popitem(last=False)
        self.boards.move_to_end(sku)
        return board

    def on_stock_state(self, sku: str, state: SkuState | dict[str, Any] | None, at_ms: int | None = None) -> None:
        """The engine's state of ``sku``: a SkuState, its public view or its table value (None:
        the SKU was deleted). ValueError when it is none of these."""
        self.version += 1
        self.counts["stock_updates"] += 1
        if state is None:
            self.boards.pop(sku, None)
            return
        view = _public_view(state)
        board = self._board(sku)
        board.view, board.state_at = view, at_ms

    def on_decision(self, decision: dict[str, Any], at_ms: int | None = None) -> None:
        """An OrderDecision. Counted at its ``decided_at`` (``at_ms`` if it has none)."""
        order_id, status = decision["order_id"], decision["status"]
        self.version += 1
        self.counts["decisions"] += 1
        previous = self.orders.get(order_id)
        if previous == status:
            return  # a redelivered order repeats its decision
        self.orders[order_id] = status
        self.orders.move_to_end(order_id)
        while len(self.orders) > ORDER_MEMORY:
            self.orders.popitem(last=False)
        if previous is None:
            self.counts["orders"] += 1
        self.counts[status.lower()] += 1
        at = decision.get("decided_at") or at_ms or 0
        channel = decision.get("channel") or "unknown"
        if status == REJECTED:
            self.rejected[decision.get("reason") or "UNKNOWN"] += 1
        elif status == LOCKED and previous is None:
            self._count_lines(decision, at, channel, +1)
        elif status == RELEASED and previous == LOCKED:
            self._count_lines(decision, at, channel, -1)

    def _count_lines(self, decision: dict[str, Any], at: int, channel: str, sign: int) -> None:
        for line in decision.get("lines") or ():
            if line.get("region") is None:
                continue
            units = sign * int(line["qty"])
            board = self._board(line["sku"])
            for curve, sold in ((board.curve, board.sold), (self.curve, self.sold)):
                curve.add(at, channel, units)
                sold[channel] += units
            if sign > 0:  # velocity is the pace of locking; a release is not a negative sale
                board.window.add(at, channel, line["region"], units)
                self.window.add(at, channel, line["region"], units)

    def on_alert(self, alert: dict[str, Any]) -> None:
        """An InventoryAlert; a replayed one (same id) is shown once."""
        self.version += 1
        alert_id = alert["alert_id"]
        if alert_id in self.alert_ids:
            return
        self.alert_ids[alert_id] = None
        while len(self.alert_ids) > ALERT_ID_MEMORY:
            self.alert_ids.popitem(last=False)
        self.alert_types[alert["type"]] += 1
        self.counts["alerts"] += 1
        self.alerts.appendleft({k: alert.get(k) for k in
                                ("alert_id", "sku", "type", "message", "raised_at", "region", "channel", "quantity")})

    def on_channel_stock(self, record: dict[str, Any]) -> None:
        """A ChannelStock record; an older ``seq`` than the one held is ignored."""
        self.version += 1
        self.counts["channel_updates"] += 1
        board = self._board(record["sku"])
        held = board.channels.get(record["channel"])
        if held is not None and held["seq"] >= record["seq"]:
            return
        board.channels[record["channel"]] = {k: record.get(k) for k in
                                             ("sellable", "available", "paused", "region", "seq", "updated_at")}

    def on_undecodable(self, topic: str, error: str) -> None:
        """A record the feed could not read: counted and shown, never fatal."""
        self.version += 1
        self.undecodable[topic] += 1
        self.last_error = f"{topic}: {error}"[:300]

    # -- reading -------------------------------------------------------------------------------------
    def snapshot(self, now_ms: int) -> dict[str, Any]:
        """The whole picture as of ``now_ms``, JSON-able."""
        with_state = [b for b in self.boards.values() if b.view is not None]
        cards = [self._card(b, now_ms) for b in self._shown()]
        for card in cards:
            card["talking_points"] = talking_points(card, sellout_horizon_s=self._sellout_horizon_s())
        overall = self._overall(with_state, now_ms)
        return {
            "generated_at": now_ms,
            "version": self.version,
            "rules": {"low_pct": self.rules.replenish_below_pct, "velocity_window_s": self.rules.velocity_window_s},
            "names": {
                "regions": {r: region_name(r) for r in self._regions(with_state)},
                "channels": {c.id: channel_name(c.id, c.platform) for c in self.catalog.channels.values()},
            },
            "overall": overall,
            "skus": cards,
            "sku_count": len(self.boards),
            "hidden_skus": len(self.boards) - len(cards),
            "alerts": list(self.alerts),
            "alert_types": dict(self.alert_types),
            "talking_points": top_points(cards, MAX_TALKING_POINTS),
            "stream": {
                **{k: self.counts[k] for k in ("decisions", "orders", "locked", "rejected", "released", "alerts",
                                               "stock_updates", "channel_updates")},
                "rejected_by_reason": dict(self.rejected),
                "undecodable": sum(self.undecodable.values()),
                "undecodable_by_topic": dict(self.undecodable),
                "last_error": self.last_error,
            },
        }

    def _sellout_horizon_s(self) -> float:
        # Twice the engine's own purchase-limit horizon: early enough to build urgency on air.
        return 2 * max(60, self.rules.limit_sellout_horizon_s)

    def _shown(self) -> list[SkuBoard]:
        """Up to ``max_cards`` SKUs: all of them, or the best sellers; in name order, so cards
        do not jump around as sales move."""
        boards = list(self.boards.values())
        if len(boards) > self.max_cards:
            boards = sorted(boards, key=lambda b: (b.view is None, -sum(b.sold.values()), b.sku))[:self.max_cards]
        return sorted(boards, key=lambda b: b.sku)

    def _regions(self, boards: list[SkuBoard]) -> list[str]:
        names = list(self.catalog.regions)
        extra = {r for b in boards for r in b.view["regions"]} - set(names)
        return names + sorted(extra)

    def _channel_rows(self, board: SkuBoard, now_ms: int) -> dict[str, dict[str, Any]]:
        recent = board.window.by_channel(now_ms)
        known = [c.id for c in self.catalog.channels.values()]
        rows = {}
        for channel in known + sorted(set(board.sold) | set(board.channels) - set(known)):
            latest = board.channels.get(channel) or {}
            platform = self.catalog.channels[channel].platform if channel in self.catalog.channels else None
            rows[channel] = {
                "name": channel_name(channel, platform), "sold": board.sold.get(channel, 0),
                "window_units": recent.get(channel, 0), "sellable": latest.get("sellable"),
                "paused": bool(latest.get("paused")),
            }
        return rows

    def _card(self, board: SkuBoard, now_ms: int) -> dict[str, Any]:
        view = board.view or {}
        per_s = board.window.per_s(now_ms)
        available = view.get("available", 0)
        total = view.get("total", 0)
        threshold = math.ceil(total * self.rules.replenish_below_pct / 100)
        regions = {}
        for name, region in (view.get("regions") or {}).items():
            buyable = max(0, region["free"] + view.get("flex", 0))
            could_have = region["allocation"] + view.get("flex", 0)
            regions[name] = {
                "allocation": region["allocation"], "sold": region["locked"] + region["paid"] + region["shipped"],
                "remaining": region["free"], "buyable": buyable, "in_transit": region["in_transit"],
                "sell_through": _ratio(region["locked"] + region["paid"] + region["shipped"], region["allocation"]),
                "low": could_have > 0 and buyable * 100 < self.rules.replenish_below_pct * could_have,
            }
        shipments = [{"id": t["id"], "qty": t["qty"], "region": t["region"], "warehouse": t.get("warehouse"),
                      "warehouse_name": warehouse_name(t.get("warehouse")), "eta": t["eta"],
                      "eta_in_s": (t["eta"] - now_ms) / 1000}
                     for t in sorted(view.get("in_transit") or [], key=lambda t: t["eta"])]
        return {
            "sku": board.sku, "has_state": board.view is not None, "state_at": board.state_at,
            "total": total, "available": available, "flex": view.get("flex", 0),
            "reserved": view.get("locked", 0) + view.get("paid", 0),
            "locked": view.get("locked", 0), "paid": view.get("paid", 0), "shipped": view.get("shipped", 0),
            "low": bool(view.get("low_stock")) or (total > 0 and available < threshold),
            "low_threshold": threshold,
            "in_transit": {"units": sum(s["qty"] for s in shipments), "shipments": shipments,
                           "next_eta": shipments[0]["eta"] if shipments else None},
            "regions": regions,
            "channels": self._channel_rows(board, now_ms),
            "velocity_per_min": round(per_s * 60, 1),
            **_sellout(available, per_s, now_ms),
            "buyer_limit": view.get("buyer_limit"), "limit_source": view.get("limit_source"),
            "paused_channels": view.get("paused_channels", []),
            "sold": sum(board.sold.values()),
            "curve": board.curve.points(now_ms),
        }

    def _overall(self, boards: list[SkuBoard], now_ms: int) -> dict[str, Any]:
        views = [b.view for b in boards]
        total = sum(v["total"] for v in views)
        available = sum(v["available"] for v in views)
        regions = {}
        for name in self._regions(boards):
            parts = [v["regions"][name] for v in views if name in v["regions"]]
            allocation = sum(p["allocation"] for p in parts)
            sold = sum(p["locked"] + p["paid"] + p["shipped"] for p in parts)
            regions[name] = {"allocation": allocation, "sold": sold, "remaining": sum(p["free"] for p in parts),
                             "in_transit": sum(p["in_transit"] for p in parts), "sell_through": _ratio(sold, allocation)}
        per_s = self.window.per_s(now_ms)
        threshold_pct = self.rules.replenish_below_pct
        return {
            "skus": len(views), "total": total, "available": available, "flex": sum(v["flex"] for v in views),
            "reserved": sum(v["locked"] + v["paid"] for v in views),
            "locked": sum(v["locked"] for v in views), "paid": sum(v["paid"] for v in views),
            "shipped": sum(v["shipped"] for v in views),
            "in_transit": sum(t["qty"] for v in views for t in v["in_transit"]),
            "low_skus": sorted(b.sku for b in boards
                               if b.view["low_stock"] or b.view["available"] * 100 < threshold_pct * b.view["total"]),
            "regions": regions,
            "velocity_per_min": round(per_s * 60, 1),
            **_sellout(available, per_s, now_ms),
            "sold": sum(self.sold.values()),
            "sold_by_channel": {c: n for c, n in self.sold.items() if n},
            "curve": self.curve.points(now_ms),
        }


def _ratio(part: float, whole: float) -> float:
    return round(part / whole, 4) if whole > 0 else 0.0


def _sellout(available: int, per_s: float, now_ms: int) -> dict[str, Any]:
    """Sell-out countdown at the current pace; None while nothing sells (or nothing is left)."""
    if per_s <= 0:
        return {"sellout_eta_s": None, "sellout_at": None}
    seconds = available / per_s
    return {"sellout_eta_s": round(seconds, 1), "sellout_at": now_ms + round(seconds * 1000)}


_VIEW_KEYS = ("sku", "total", "available", "flex", "locked", "paid", "shipped", "regions", "in_transit")


def _public_view(state: SkuState | dict[str, Any]) -> dict[str, Any]:
    """The engine's public view from a SkuState, the view itself, or a stock table value."""
    if isinstance(state, SkuState):
        return state.public_view()
    if not isinstance(state, dict):
        raise ValueError(f"expected a SKU state, got {type(state).__name__}")
    if "audit_head" in state or "reservations" in state:  # a table value (SkuState.to_dict), either format
        try:
            return SkuState.from_dict(state).public_view()
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            raise ValueError(f"not a SKU state: {exc}") from None
    missing = [k for k in _VIEW_KEYS if k not in state]
    if missing:
        raise ValueError(f"SKU view lacks {', '.join(missing)}")
    return {"low_stock": False, "buyer_limit": None, "limit_source": None, "paused_channels": [], **state}
