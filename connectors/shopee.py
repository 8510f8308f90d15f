"""Shopee Open Platform v2: order status pushes in, stock updates out.

What this follows (checked with the search tool):

- Push mechanism (open.shopee.com developer guide, "Push Mechanism"): Shopee POSTs to the push URL
  registered for the app; ``Authorization`` = hex HMAC-SHA256(partner key, push URL + "|" + raw
  body) (connectors.signatures.verify_shopee). Behind a proxy the URL we are called at differs
  from the registered one, so ``connectors.shopee.push_url`` overrides the received URL.
- order_status_push (code 3), as delivered (samples from live shops in public code):
  ``{"msg_id": "...", "data": {"ordersn": "251214B9XAB0ST", "status": "READY_TO_SHIP",
  "update_time": 1765689439, "completed_scenario": null, "items": []}, "shop_id": 336094210,
  "code": 3, "timestamp": 1765689440}``. Shopee documents no delivery id (``msg_id`` appears in
  newer pushes but is not documented as stable across retries, and lost pushes re-fetched with
  v2.push.get_lost_push_message come without it), so the delivery id is built from what a
  redelivery repeats: ``{shop_id}:{ordersn}:{status}:{update_time}``.
- The push carries no lines (``items`` is empty). v2.order.get_order_detail has them in
  ``item_list[]`` (``item_sku``, ``model_sku``, ``model_quantity_purchased``) with
  ``buyer_user_id`` and ``create_time``; a production deployment calls it for an order seen without
  lines. This adapter makes no network calls: it reads ``data.item_list`` (or a non-empty
  ``data.items``) when the delivery carries them, which the fake does, and otherwise says why no
  OrderPlaced was produced. The seller SKU is ``model_sku``, or ``item_sku`` for an item without
  variations.
- Order statuses: UNPAID, READY_TO_SHIP (paid), PROCESSED, RETRY_SHIP, SHIPPED,
  TO_CONFIRM_RECEIVE, IN_CANCEL (buyer asked; not final), CANCELLED, TO_RETURN, COMPLETED.
- Shop-level API signing (open.shopee.com developer guide, "API calls"): sign = hex
  HMAC-SHA256(partner_key, partner_id + api path + timestamp + access_token + shop_id), common
  query parameters partner_id, timestamp, access_token, shop_id, sign (congminh1254/shopee-sdk
  fetch.ts does exactly this).
- v2.product.update_stock: POST /api/v2/product/update_stock, body ``{"item_id": N, "stock_list":
  [{"model_id": M (0 for an item without variations), "seller_stock": [{"location_id"?, "stock"}]}]}``,
  stock_list length 1..50; answer ``{"error": "", "message": "", "warning": "", "request_id",
  "response": {"success_list": [{"model_id", "seller_stock"}], "failure_list": [{"model_id",
  "failed_reason"}]}}``.
- Errors come as a non-empty ``error`` string. Shopee's public pages do not pin the rate-limit
  string down; clients in the wild branch on ``error_rate_limit``, and HTTP 429 is read by
  status_outcome, so any error naming a rate limit / too many requests counts as throttled.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any, Mapping, Sequence
from urllib.parse import urlencode

from connectors.base import (
    ApiCall, CallOutcome, Intake, NotConfigured, PayloadError, PushResult, StockPush, StockPusher, Webhook,
    WebhookAdapter, channel_by_account, status_outcome, stock_pusher, webhook_adapter,
)
from connectors.payload import (
    add_line, batches_by_listing, fail_all, identifier, is_whole, load_object, mapping, order_status,
    refuse_unlisted, status_records, text, unix_seconds,
)
from connectors.signatures import verify_shopee
from lockstock.catalog import Catalog, Channel

PLATFORM = "shopee"
DEFAULT_BASE_URL = "https://partner.shopeemobile.com"
UPDATE_STOCK_PATH = "/api/v2/product/update_stock"
ORDER_STATUS_PUSH = 3
MAX_MODELS_PER_CALL = 50  # update_stock: "stock_list length should be between 1 to 50"

PLACING_STATUSES = frozenset({"UNPAID", "READY_TO_SHIP"})
# One event per kind per order ("<ordersn>:<event>"), so a later status that implies an earlier one
# (PROCESSED after READY_TO_SHIP, COMPLETED after SHIPPED) repairs a lost push without doubling.
EVENT_OF_STATUS = {
    "READY_TO_SHIP": "PAID", "PROCESSED": "PAID", "CANCELLED": "CANCELLED",
    "SHIPPED": "SHIPPED", "TO_CONFIRM_RECEIVE": "SHIPPED", "COMPLETED": "SHIPPED",
}
THROTTLE_MARKERS = ("rate_limit", "too_many", "toomany")
RETRY_MARKERS = ("server", "inner", "busy", "timeout", "system")


# ---- inbound ---------------------------------------------------------------------------------
@webhook_adapter
class ShopeeWebhooks(WebhookAdapter):
    """order_status_push (code 3) becomes OrderPlaced (with lines) and OrderEvent records.

    UNPAID / READY_TO_SHIP with lines: OrderPlaced (the engine dedupes it by order_id).
    READY_TO_SHIP / PROCESSED: PAID. CANCELLED: CANCELLED (IN_CANCEL is only a request and is
    ignored until Shopee cancels). SHIPPED / TO_CONFIRM_RECEIVE / COMPLETED: SHIPPED.
    """

    platform = PLATFORM
    secret_env = "LOCKSTOCK_SHOPEE_PARTNER_KEY"

    def verify(self, hook: Webhook, now_s: float) -> None:
        # The push signature has no timestamp: replays are caught by the delivery id.
        url = str(self.settings.get("push_url") or "").strip() or hook.url
        verify_shopee(self.secret, url, hook.headers, hook.body)

    def intake(self, hook: Webhook) -> Intake:
        push = load_object(hook.body, "Shopee push")
        code = push.get("code")
        if not is_whole(code):
            raise PayloadError(f"Shopee push 'code' must be a whole number, got {code!r}"[:200])
        if code != ORDER_STATUS_PUSH:
            delivery = f"{push.get('shop_id')}:code{code}:{push.get('timestamp')}"
            return Intake(delivery, (), ignored=f"push code {code} is not an order status push")
        shop_id = identifier(push.get("shop_id"), "shop_id")
        channel = channel_by_account(self.catalog, PLATFORM, shop_id)
        data = mapping(push.get("data"), "data")
        ordersn = identifier(data.get("ordersn"), "data.ordersn")
        status = order_status(data, "status", ordersn)
        changed_s = unix_seconds(data.get("update_time"), "data.update_time")
        delivery = f"{shop_id}:{ordersn}:{status}:{changed_s}"
        lines = item_lines(data.get("item_list") or data.get("items"), ordersn) if status in PLACING_STATUSES else []
        records = status_records(PLATFORM, channel, ordersn, changed_s, data, lines=lines, buyer_key="buyer_user_id",
                                 event=EVENT_OF_STATUS.get(status))
        if records:
            return Intake(delivery, records)
        if status in PLACING_STATUSES:
            why = (f"{status} order {ordersn} carries no item_list; lockstock places an order with its lines "
                   "(a production deployment calls v2.order.get_order_detail)")
        elif status == "IN_CANCEL":
            why = "IN_CANCEL is a cancellation request; the lock is released when Shopee says CANCELLED"
        else:
            why = f"status {status} needs no action"
        return Intake(delivery, (), ignored=why)


def item_lines(raw: Any, ordersn: str) -> list[tuple[str, int]]:
    """(seller SKU, units) from get_order_detail's ``item_list``."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise PayloadError(f"order {ordersn}: data.item_list must be a list")
    totals: dict[str, int] = {}
    for i, item in enumerate(raw):
        where = f"order {ordersn} item {i}"
        item = mapping(item, where)
        sku = text(item.get("model_sku")) or item.get("item_sku")  # no variations: the item's own SKU
        add_line(totals, sku, item.get("model_quantity_purchased"), where)
    return list(totals.items())


# ---- outbound --------------------------------------------------------------------------------
def api_sign(partner_key: str, partner_id: str, path: str, timestamp: int, access_token: str, shop_id: str) -> str:
    """Shopee's shop-level API signature: see the module docstring."""
    base = f"{partner_id}{path}{timestamp}{access_token}{shop_id}"
    return hmac.new(partner_key.encode(), base.encode(), hashlib.sha256).hexdigest()


def listing_ids(channel: Channel) -> tuple[str, str | None, dict[str, tuple[int, int]]]:
    """(shop_id, location_id, {seller SKU: (item_id, model_id)}) from the channel."""
    shop_id = channel.account.strip()
    if not shop_id.isdigit():
        raise NotConfigured(f"channel {channel.id}: account must be the Shopee shop_id, got {channel.account!r}")
    connector = channel.connector
    location = str(connector.get("location_id") or "").strip() or None
    raw = connector.get("skus")
    if not isinstance(raw, dict):
        raise NotConfigured(f"channel {channel.id}: connector.skus must map each seller SKU to {{item_id, model_id}}")
    skus = {}
    for sku, ids in raw.items():
        item_id = ids.get("item_id") if isinstance(ids, dict) else None
        model_id = ids.get("model_id", 0) if isinstance(ids, dict) else None
        if not is_whole(item_id) or not is_whole(model_id):
            raise NotConfigured(f"channel {channel.id}: connector.skus.{sku} needs a numeric item_id "
                                "(and model_id, 0 for an item without variations)")
        skus[str(sku)] = (item_id, model_id)
    return shop_id, location, skus


@stock_pusher
class ShopeeStockPusher(StockPusher):
    """update_stock, one call per item carrying the models being pushed (at most 50, Shopee's cap).

    Every shopee channel's ids are checked when the pusher is made (NotConfigured names the gap),
    so building calls never fails. A SKU the channel does not list (no connector.skus entry)
    cannot be sent: it rides along in the first call's pushes and is answered as a final failure
    saying so, which the sync reports, instead of waiting forever for a call.
    """

    platform = PLATFORM
    max_batch = MAX_MODELS_PER_CALL
    credential_env = {"partner_key": "LOCKSTOCK_SHOPEE_PARTNER_KEY", "access_token": "LOCKSTOCK_SHOPEE_ACCESS_TOKEN"}

    def __init__(self, catalog: Catalog, settings: Mapping[str, Any], credentials: Mapping[str, str]) -> None:
        super().__init__(catalog, settings, credentials)
        self.partner_id = str(self.settings.get("partner_id") or "").strip()
        if not self.partner_id.isdigit():
            raise NotConfigured("shopee stock pushes are off: connectors.shopee.partner_id is not set "
                                "(the numeric partner id of the Shopee app)")
        self.base_url = str(self.settings.get("base_url") or DEFAULT_BASE_URL).rstrip("/")
        self.listings = {c.id: listing_ids(c) for c in catalog.channels.values()
                         if c.platform == PLATFORM and not c.store}

    def _ids(self, channel: Channel) -> tuple[str, str | None, dict[str, tuple[int, int]]]:
        return self.listings.get(channel.id) or listing_ids(channel)

    def build_calls(self, channel: Channel, pushes: Sequence[StockPush], now_s: float) -> list[ApiCall]:
        shop_id, location, skus = self._ids(channel)
        batches, unlisted = batches_by_listing(pushes, skus, self.max_batch)
        calls = [self._call(shop_id, location, item_id, batch, skus, now_s) for item_id, batch in batches]
        if unlisted and calls:
            calls[0].pushes += unlisted
        return calls

    def _call(self, shop_id: str, location: str | None, item_id: int, pushes: list[StockPush],
              skus: dict[str, tuple[int, int]], now_s: float) -> ApiCall:
        where = {"location_id": location} if location else {}  # else the shop's default location
        body = json.dumps({"item_id": item_id, "stock_list": [
            {"model_id": skus[p.sku][1], "seller_stock": [{**where, "stock": max(0, p.quantity)}]}
            for p in pushes]}, separators=(",", ":")).encode()
        timestamp = int(now_s)
        token = self.credentials["access_token"]
        params = {"partner_id": self.partner_id, "timestamp": timestamp, "access_token": token, "shop_id": shop_id,
                  "sign": api_sign(self.credentials["partner_key"], self.partner_id, UPDATE_STOCK_PATH, timestamp,
                                   token, shop_id)}
        return ApiCall("POST", f"{self.base_url}{UPDATE_STOCK_PATH}?{urlencode(params)}",
                       {"content-type": "application/json"}, body, tuple(pushes))

    def parse_response(self, call: ApiCall, status: int, headers: Mapping[str, str], body: bytes) -> CallOutcome:
        model_ids = {p.sku: ids[1] for p in call.pushes if (ids := self._listing(p)) is not None}
        return refuse_unlisted(call, model_ids, lambda sent: self._outcome(sent, model_ids, status, headers, body),
                               "item_id and model_id")

    def _listing(self, push: StockPush) -> tuple[int, int] | None:
        channel = self.catalog.channels.get(push.channel)
        return self._ids(channel)[2].get(push.sku) if channel is not None else None

    def _outcome(self, call: ApiCall, model_ids: dict[str, int], status: int, headers: Mapping[str, str],
                 body: bytes) -> CallOutcome:
        try:
            payload = load_object(body, "Shopee response")
        except PayloadError:
            payload = {}
        error = str(payload.get("error") or "").strip()
        if any(marker in error.lower() for marker in THROTTLE_MARKERS):
            status = 429  # whatever the HTTP status: slow the whole budget down
        shared = status_outcome(call, status, headers, body)
        if shared is not None:
            return shared
        if error:
            retryable = any(marker in error.lower() for marker in RETRY_MARKERS)
            return fail_all(call, retryable, f"Shopee {error}: {str(payload.get('message') or '')[:200]}")
        answer = payload.get("response")
        if not isinstance(answer, dict):
            # Unreadable 2xx: setting an absolute stock again is harmless, so retry.
            return fail_all(call, True, f"unreadable Shopee answer: {body[:120]!r}")
        refused = _by_model(answer.get("failure_list"),
                            lambda f: f"Shopee refused: {str(f.get('failed_reason'))[:200]}")
        applied = _by_model(answer.get("success_list"), lambda s: "")
        results = []
        for push in call.pushes:
            model = model_ids[push.sku]
            if model in refused:
                results.append(PushResult(push, ok=False, reason=refused[model]))
            elif model in applied:
                results.append(PushResult(push, ok=True))
            else:
                results.append(PushResult(push, ok=False, retryable=True,
                                          reason=f"model {model} is in neither success_list nor failure_list"))
        return CallOutcome(tuple(results))


def _by_model(entries: Any, describe: Any) -> dict[int, str]:
    found: dict[int, str] = {}
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict) and is_whole(entry.get("model_id")):
            found[entry["model_id"]] = describe(entry)
    return found

