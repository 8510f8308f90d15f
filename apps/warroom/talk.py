"""Suggested talking points: sentences a stream host can say, generated from the war room's
picture of a SKU ("Only 50 left in Europe!", "LA warehouse restocks in 36 h"). Pure functions
over the snapshot dictionaries that ``model`` builds, so the page and the tests read the same
words.

Every sentence must be true for a buyer watching: "left in Europe" counts what a European buyer
can still lock (the region's free units plus the shared flex pool the engine draws on), not the
region's own allocation alone.
"""

from __future__ import annotations

from typing import Any

# Names a host would say. Codes not listed here are said as they are written in the catalog.
REGION_NAMES = {"US": "the US", "EU": "Europe", "SEA": "Southeast Asia", "UK": "the UK", "CN": "China",
                "JP": "Japan", "LATAM": "Latin America", "MENA": "the Middle East", "APAC": "Asia-Pacific"}
WAREHOUSE_NAMES = {"LA": "LA", "NJ": "New Jersey", "RTM": "Rotterdam", "KUL": "Kuala Lumpur"}
PLATFORM_NAMES = {"tiktok": "TikTok", "youtube": "YouTube", "instagram": "Instagram", "amazon": "Amazon",
                  "shopee": "Shopee", "shopify": "Shopify", "lazada": "Lazada", "generic": "our shop"}

# Urgency order of the kinds of point: what sells the next unit comes first.
URGENCY = {"sold_out": 0, "last_units": 1, "sellout_soon": 2, "limit": 3, "restock": 4, "hot_channel": 5}
MAX_POINTS_PER_SKU = 4
MAX_PER_KIND = 2  # across SKUs: a restock is not crowded out by every SKU's countdown
HOT_CHANNEL_SHARE = 0.5  # a channel taking at least this share of the recent sales is "on fire"
HOT_CHANNEL_MIN_UNITS = 10  # ... once there are enough sales to say so


def region_name(code: str) -> str:
    return REGION_NAMES.get(code, code)


def warehouse_name(code: str | None) -> str | None:
    return None if code is None else WAREHOUSE_NAMES.get(code, code)


def channel_name(channel_id: str, platform: str | None = None) -> str:
    """``tiktok-us`` -> ``TikTok US``; the catalog's platform names the first word when given."""
    head, _, tail = channel_id.partition("-")
    word = PLATFORM_NAMES.get(platform or head, (platform or head).capitalize())
    return f"{word} {tail.upper()}" if tail else word


def human_duration(seconds: float) -> str:
    """A duration as a host would say it: 45 s, 12 min, 36 h, 4 days."""
    seconds = max(0.0, seconds)
    if seconds < 90:
        return f"{round(seconds)} s"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min"
    if seconds < 72 * 3600:
        return f"{round(seconds / 3600)} h"
    return f"{round(seconds / 86400)} days"


def talking_points(card: dict[str, Any], *, sellout_horizon_s: float) -> list[dict[str, Any]]:
    """Points for one SKU card (``WarRoom.snapshot()['skus'][i]``), most urgent first.
    ``sellout_horizon_s``: a projected sell-out sooner than this is worth announcing."""
    if not card.get("has_state"):
        return []
    sku = card["sku"]
    points: list[dict[str, Any]] = []

    def say(kind: str, text: str) -> None:
        points.append({"sku": sku, "kind": kind, "text": text})

    restock_by_region: dict[str, float] = {}
    for shipment in card["in_transit"]["shipments"]:
        region = shipment["region"]
        restock_by_region[region] = min(restock_by_region.get(region, float("inf")), shipment["eta_in_s"])

    for code, region in card["regions"].items():
        if region["allocation"] <= 0:
            continue
        if region["buyable"] <= 0:
            later = restock_by_region.get(code)
            tail = f"; more arriving in {human_duration(later)}" if later is not None else ""
            say("sold_out", f"{sku} is sold out in {region_name(code)}{tail}.")
        elif region["low"]:
            say("last_units", f"Only {region['buyable']:,} {sku} left in {region_name(code)}!")

    eta = card.get("sellout_eta_s")
    if eta is not None and card["available"] > 0 and eta < sellout_horizon_s:
        say("sellout_soon", f"At this pace {sku} sells out in about {human_duration(eta)}!")

    if card.get("buyer_limit"):
        say("limit", f"{sku} is limited to {card['buyer_limit']} per buyer, so everyone gets a chance.")

    for shipment in sorted(card["in_transit"]["shipments"], key=lambda s: s["eta_in_s"]):
        where = warehouse_name(shipment.get("warehouse"))
        when = "any moment now" if shipment["eta_in_s"] <= 0 else f"in {human_duration(shipment['eta_in_s'])}"
        if where:
            say("restock", f"{where} warehouse restocks {when}: {shipment['qty']:,} more {sku} on the way.")
        else:
            say("restock", f"{shipment['qty']:,} more {sku} arrive {when}.")

    recent = {c: v["window_units"] for c, v in card["channels"].items() if v.get("window_units", 0) > 0}
    total_recent = sum(recent.values())
    if len(recent) > 1 and total_recent >= HOT_CHANNEL_MIN_UNITS:
        channel, units = max(recent.items(), key=lambda kv: (kv[1], kv[0]))
        if units >= HOT_CHANNEL_SHARE * total_recent:
            say("hot_channel", f"{card['channels'][channel]['name']} is on fire: {units:,} of the last "
                               f"{total_recent:,} {sku} sold there.")

    points.sort(key=lambda p: URGENCY[p["kind"]])
    return points[:MAX_POINTS_PER_SKU]


def top_points(cards: list[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    """The most urgent points across SKUs, at most ``MAX_PER_KIND`` of a kind."""
    every = sorted((p for card in cards for p in card.get("talking_points", [])),
                   key=lambda p: (URGENCY[p["kind"]], p["sku"]))
    kept, per_kind = [], {}
    for point in every:
        if per_kind.get(point["kind"], 0) < MAX_PER_KIND:
            per_kind[point["kind"]] = per_kind.get(point["kind"], 0) + 1
            kept.append(point)
    return kept[:limit]
