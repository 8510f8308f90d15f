"""TikTok Shop (Partner API, 202309 versions): order webhooks in, inventory updates out.

What this follows (checked with the search tool; the partner.tiktokshop.com pages are quoted by the
SDKs and generated clients named here):

- Webhook envelope, ORDER_STATUS_CHANGE (type 1),
  https://partner.tiktokshop.com/docv2/page/650300b8a57708028b430b4a (as modelled by the
  fudiwei/DotNetCore.SKIT.FlurlHttpClient.ByteDance OrderStatusChangeEvent):
  ``{"type": 1, "tts_notification_id": "...", "shop_id": "...", "timestamp": <unix s>,
  "data": {"order_id": "...", "order_status": "AWAITING_SHIPMENT", "update_time": <unix s>,
  "is_on_hold_order": false}}``. Delivery is at least once; ``tts_notification_id`` identifies a
  notification, so it is the delivery id.
- Webhook signature: ``Authorization`` = hex HMAC-SHA256(app secret, app_key + raw body)
  (connectors.signatures.verify_tiktok).
- The status change carries no line items. Get Order Detail (GET /order/202309/orders) has them:
  ``line_items[]`` with ``seller_sku``, one entry per unit (no quantity field), plus ``user_id`` and
  ``create_time``. A production deployment fetches it for an order seen without lines; this
  adapter does not make network calls, so it reads ``data.line_items`` when the delivery carries
  them (the "order detail enriched" shape the fake sends, ``quantity`` optional, default 1) and
  otherwise says why the delivery produced no OrderPlaced.
- Statuses (Get Order Detail): UNPAID; ON_HOLD ("payment has been finished, but the buyer may
  cancel without seller approval", UK only); AWAITING_SHIPMENT (paid); AWAITING_COLLECTION;
  PARTIALLY_SHIPPING; IN_TRANSIT ("collected by the carrier"); DELIVERED; COMPLETED; CANCELLED.
- API request signing (202309): sign = hex HMAC-SHA256(app_secret, app_secret + path +
  concat(key + value for the query parameters sorted by key, without sign and access_token) +
  raw body + app_secret); the access token travels in the ``x-tts-access-token`` header
  (SKIT TikTokShopRequestSigningInterceptor; the same steps in several public clients).
- Update Inventory: POST /product/202309/products/{product_id}/inventory/update?app_key&timestamp
  &shop_cipher&sign, body ``{"skus": [{"id": sku_id, "inventory": [{"warehouse_id"?, "quantity"}]}]}``,
  quantity 0..99999; answer ``{"code": 0, "message": "Success", "request_id", "data": {"errors":
  [{"code", "message", "detail": {"sku_id", "extra_errors": [...]}}]}}`` (lywzx/tiktok-partner-api,
  generated from the partner docs).
- Common errors, https://partner.tiktokshop.com/docv2/page/common-errors: 36009002 "Too many
  requests" (throttled, retry), 36009003 "Internal error. Please try again" (retry); the rest
  (36009004 invalid parameter, 105002 expired token, 106001 bad signature, ...) are final.
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
from connectors.signatures import verify_tiktok
from lockstock.catalog import Catalog, Channel

PLATFORM = "tiktok"
DEFAULT_BASE_URL = "https://open-api.tiktokglobalshop.com"
INVENTORY_PATH = "/product/202309/products/{product_id}/inventory/update"
ORDER_STATUS_CHANGE = 1
MAX_QUANTITY = 99_999  # Update Inventory refuses larger quantities; showing the cap is harmless
TOO_MANY_REQUESTS = 36009002
RETRYABLE_CODES = frozenset({TOO_MANY_REQUESTS, 36009003})

# Statuses whose delivery may carry the order's lines (first sight of an order).
PLACING_STATUSES = frozenset({"UNPAID", "ON_HOLD", "AWAITING_SHIPMENT"})
# Lifecycle events by status. Each event id is "<order>:<event>", so the several statuses that
# mean the same thing (ON_HOLD and AWAITING_SHIPMENT are both paid; IN_TRANSIT, DELIVERED and
# COMPLETED are all shipped) yield one event at the engine, whichever arrives first.
EVENT_OF_STATUS = {
    "ON_HOLD": "PAID", "AWAITING_SHIPMENT": "PAID", "CANCELLED": "CANCELLED",
    "IN_TRANSIT": "SHIPPED", "DELIVERED": "SHIPPED", "COMPLETED": "SHIPPED",
}


# ---- inbound ---------------------------------------------------------------------------------
@webhook_adapter
class TikTokWebhooks(WebhookAdapter):
    """ORDER_STATUS_CHANGE deliveries become OrderPlaced (with lines) and OrderEvent records.

    UNPAID / ON_HOLD / AWAITING_SHIPMENT with lines: OrderPlaced (the engine dedupes it by
    order_id, so every status that repeats the lines is safe). ON_HOLD / AWAITING_SHIPMENT: PAID.
    CANCELLED: CANCELLED. IN_TRANSIT / DELIVERED / COMPLETED: SHIPPED. Anything else is ignored.
    """

    platform = PLATFORM
    secret_env = "LOCKSTOCK_TIKTOK_SECRET"

    def __init__(self, catalog: Catalog, secret: str, settings: Mapping[str, Any]) -> None:
        super().__init__(catalog, secret, settings)
        self.app_key = str(self.settings.get("app_key") or "").strip()
        if not self.app_key:  # TikTok signs app_key + body: without it nothing can be verified
            raise NotConfigured("tiktok webhooks are refused: connectors.tiktok.app_key is not set "
                                "(the app key of the TikTok Shop app, Partner Center > App details)")

    def verify(self, hook: Webhook, now_s: float) -> None:
        # TikTok's webhook signature has no timestamp: replays are caught by the delivery id.
        verify_tiktok(self.secret, self.app_key, hook.headers, hook.body)

    def intake(self, hook: Webhook) -> Intake:
        envelope = load_object(hook.body, "TikTok Shop webhook")
        kind = envelope.get("type")
        if not is_whole(kind):
            raise PayloadError(f"TikTok Shop webhook 'type' must be a whole number, got {kind!r}"[:200])
        notification = text(envelope.get("tts_notification_id")) or (
            str(envelope["tts_notification_id"]) if is_whole(envelope.get("tts_notification_id")) else "")
        if kind != ORDER_STATUS_CHANGE:
            delivery = notification or f"type{kind}:{envelope.get('shop_id')}:{envelope.get('timestamp')}"
            return Intake(delivery, (), ignored=f"webhook type {kind} is not an order status change")
        channel = channel_by_account(self.catalog, PLATFORM, identifier(envelope.get("shop_id"), "shop_id"))
        data = mapping(envelope.get("data"), "data")
        order_id = identifier(data.get("order_id"), "data.order_id")
        status = order_status(data, "order_status", order_id)
        changed_s = unix_seconds(data.get("update_time", envelope.get("timestamp")), "data.update_time")
        delivery = notification or f"{order_id}:{status}:{changed_s}"
        lines = line_items(data.get("line_items"), order_id) if status in PLACING_STATUSES else []
        records = status_records(PLATFORM, channel, order_id, changed_s, data, lines=lines, buyer_key="user_id",
                                 event=EVENT_OF_STATUS.get(status))
        if records:
            return Intake(delivery, records)
        if status in PLACING_STATUSES:
            why = (f"{status} order {order_id} carries no line items; lockstock places an order with its lines "
                   "(a production deployment fetches them with Get Order Detail)")
        else:
            why = f"status {status} needs no action"
        return Intake(delivery, (), ignored=why)


def line_items(raw: Any, order_id: str) -> list[tuple[str, int]]:
    """(seller SKU, units) from ``line_items``; Get Order Detail lists one item per unit."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise PayloadError(f"order {order_id}: data.line_items must be a list")
    totals: dict[str, int] = {}
    for i, item in enumerate(raw):
        where = f"order {order_id} line {i}"
        item = mapping(item, where)
        add_line(totals, item.get("seller_sku"), item.get("quantity", 1), where)
    return list(totals.items())


# ---- outbound --------------------------------------------------------------------------------
def api_sign(app_secret: str, path: str, params: Mapping[str, Any], body: bytes) -> str:
    """TikTok Shop's request signature (202309): see the module docstring."""
    signed = "".join(f"{k}{params[k]}" for k in sorted(params) if k not in ("sign", "access_token"))
    message = app_secret.encode() + path.encode() + signed.encode() + body + app_secret.encode()
    return hmac.new(app_secret.encode(), message, hashlib.sha256).hexdigest()


def listing_ids(channel: Channel) -> tuple[str, str | None, dict[str, tuple[str, str]]]:
    """(shop_cipher, warehouse_id, {seller SKU: (product_id, sku_id)}) from the channel's connector."""
    connector = channel.connector
    cipher = str(connector.get("shop_cipher") or "").strip()
    if not cipher:
        raise NotConfigured(f"channel {channel.id}: connector.shop_cipher is not set "
                            "(TikTok's Get Authorized Shops returns it per shop)")
    warehouse = str(connector.get("warehouse_id") or "").strip() or None
    raw = connector.get("skus")
    if not isinstance(raw, dict):
        raise NotConfigured(f"channel {channel.id}: connector.skus must map each seller SKU to "
                            "{product_id, sku_id}")
    skus = {}
    for sku, ids in raw.items():
        if not isinstance(ids, dict) or not str(ids.get("product_id") or "").strip() or \
                not str(ids.get("sku_id") or "").strip():
            raise NotConfigured(f"channel {channel.id}: connector.skus.{sku} needs product_id and sku_id")
        skus[str(sku)] = (str(ids["product_id"]).strip(), str(ids["sku_id"]).strip())
    return cipher, warehouse, skus


@stock_pusher
class TikTokStockPusher(StockPusher):
    """Update Inventory, one call per product carrying all of that product's SKUs being pushed.

    max_batch is 100: TikTok lists up to 100 SKUs under one product in most markets, so one call
    can carry a whole product; pushes of several products become one call each.

    Every tiktok channel's ids are checked when the pusher is made (NotConfigured names the gap),
    so building calls never fails. A SKU the channel does not list (no connector.skus entry)
    cannot be sent: it rides along in the first call's pushes and is answered as a final failure
    saying so, which the sync reports, instead of waiting forever for a call.
    """

    platform = PLATFORM
    max_batch = 100
    credential_env = {"app_secret": "LOCKSTOCK_TIKTOK_SECRET", "access_token": "LOCKSTOCK_TIKTOK_ACCESS_TOKEN"}

    def __init__(self, catalog: Catalog, settings: Mapping[str, Any], credentials: Mapping[str, str]) -> None:
        super().__init__(catalog, settings, credentials)
        self.app_key = str(self.settings.get("app_key") or "").strip()
        if not self.app_key:
            raise NotConfigured("tiktok stock pushes are off: connectors.tiktok.app_key is not set")
        self.base_url = str(self.settings.get("base_url") or DEFAULT_BASE_URL).rstrip("/")
        self.listings = {c.id: listing_ids(c) for c in catalog.channels.values()
                         if c.platform == PLATFORM and not c.store}

    def _ids(self, channel: Channel) -> tuple[str, str | None, dict[str, tuple[str, str]]]:
        return self.listings.get(channel.id) or listing_ids(channel)

    def build_calls(self, channel: Channel, pushes: Sequence[StockPush], now_s: float) -> list[ApiCall]:
        cipher, warehouse, skus = self._ids(channel)
        batches, unlisted = batches_by_listing(pushes, skus, self.max_batch)
        calls = [self._call(product_id, batch, skus, cipher, warehouse, now_s) for product_id, batch in batches]
        if unlisted and calls:
            calls[0].pushes += unlisted
        return calls

    def _call(self, product_id: str, pushes: list[StockPush], skus: dict[str, tuple[str, str]], cipher: str,
              warehouse: str | None, now_s: float) -> ApiCall:
        inventory = {"warehouse_id": warehouse} if warehouse else {}  # else the SKU's default warehouse
        body = json.dumps({"skus": [
            {"id": skus[p.sku][1], "inventory": [{**inventory, "quantity": min(MAX_QUANTITY, max(0, p.quantity))}]}
            for p in pushes]}, separators=(",", ":")).encode()
        path = INVENTORY_PATH.format(product_id=product_id)
        params = {"app_key": self.app_key, "shop_cipher": cipher, "timestamp": str(int(now_s))}
        params["sign"] = api_sign(self.credentials["app_secret"], path, params, body)
        headers = {"content-type": "application/json", "x-tts-access-token": self.credentials["access_token"]}
        return ApiCall("POST", f"{self.base_url}{path}?{urlencode(sorted(params.items()))}", headers, body,
                       tuple(pushes))

    def parse_response(self, call: ApiCall, status: int, headers: Mapping[str, str], body: bytes) -> CallOutcome:
        sku_ids = {p.sku: ids[1] for p in call.pushes if (ids := self._listing(p)) is not None}
        return refuse_unlisted(call, sku_ids, lambda sent: self._outcome(sent, sku_ids, status, headers, body),
                               "product_id and sku_id")

    def _listing(self, push: StockPush) -> tuple[str, str] | None:
        channel = self.catalog.channels.get(push.channel)
        return self._ids(channel)[2].get(push.sku) if channel is not None else None

    def _outcome(self, call: ApiCall, sku_ids: dict[str, str], status: int, headers: Mapping[str, str],
                 body: bytes) -> CallOutcome:
        try:
            payload = load_object(body, "TikTok Shop response")
        except PayloadError:
            payload = {}
        code = payload.get("code")
        if code == TOO_MANY_REQUESTS:  # whatever the HTTP status: slow the whole budget down
            status = 429
        shared = status_outcome(call, status, headers, body)
        if shared is not None:
            return shared
        if not is_whole(code):
            # Unreadable 2xx: setting an absolute quantity again is harmless, so retry.
            return fail_all(call, retryable=True, reason=f"unreadable TikTok Shop answer: {body[:120]!r}")
        refused = sku_errors(payload.get("data"))
        if code == 0:
            return CallOutcome(tuple(
                PushResult(p, ok=False, reason=refused[sku_ids[p.sku]]) if sku_ids[p.sku] in refused
                else PushResult(p, ok=True) for p in call.pushes))
        message = f"TikTok Shop code {code}: {str(payload.get('message') or '')[:200]}"
        results = []
        for push in call.pushes:
            own = refused.get(sku_ids[push.sku])
            # Named SKUs were refused themselves; the others were held back by the failed call.
            retryable = code in RETRYABLE_CODES or (own is None and bool(refused))
            results.append(PushResult(push, ok=False, retryable=retryable, reason=own or message))
        return CallOutcome(tuple(results))


def sku_errors(data: Any) -> dict[str, str]:
    """sku_id -> reason from ``data.errors[].detail``."""
    refused: dict[str, str] = {}
    errors = data.get("errors") if isinstance(data, dict) else None
    for error in errors if isinstance(errors, list) else []:
        if not isinstance(error, dict) or not isinstance(error.get("detail"), dict):
            continue
        sku_id = error["detail"].get("sku_id")
        if isinstance(sku_id, (str, int)) and not isinstance(sku_id, bool):
            refused[str(sku_id)] = f"TikTok Shop code {error.get('code')}: {str(error.get('message') or '')[:200]}"
    return refused

