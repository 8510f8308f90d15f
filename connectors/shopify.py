"""Shopify: ``orders/*`` webhooks in, ``inventorySetQuantities`` (GraphQL Admin API 2025-01) out.
YouTube Shopping and Instagram orders sold through a connected Shopify store arrive on the same
webhooks and are told apart by the order's ``source_name`` / ``app_id``.

What this follows (shopify.dev unless noted):

Webhooks (https://shopify.dev/docs/apps/build/webhooks/verify-deliveries, .../webhooks/delivery-structure)
  - ``X-Shopify-Hmac-SHA256`` = base64 HMAC-SHA256 of the raw body with the app's client secret
    (``connectors.signatures.verify_shopify``).
  - ``X-Shopify-Topic`` (``orders/create``, ``orders/paid``, ``orders/cancelled``, ``orders/fulfilled``),
    ``X-Shopify-Shop-Domain`` (the store, matched against the channel's ``account``),
    ``X-Shopify-Webhook-Id`` (the same on every retry of one delivery; Shopify's advice for ignoring
    duplicates, so it is our delivery id and the OrderEvent's event id), ``X-Shopify-Triggered-At``.
  - Body: the Order resource: ``id``, ``created_at`` (ISO 8601 with offset), ``line_items[].sku`` /
    ``quantity``, ``customer.id``, ``email``, ``source_name``, ``app_id``,
    ``shipping_address.country_code``, ``cancel_reason``, ``cancelled_at``, ``fulfillments[].location_id``.

Sales channels of a store (https://shopify.dev/changelog/channel-attribution-is-now-available-in-beta)
  An order's ``source_name`` is "web" (online store, app_id 580111), "pos", "shopify_draft_order",
  "iphone"/"android", or for an order a sales-channel app created, the handle that app chose, else the
  app's id as a string; ``app_id`` is the creating app's id. The channel apps lockstock cares about:
  Google & YouTube = app 1780363 (handle "google"), Facebook & Instagram = app 2329312. So:

      youtube-us:   {platform: youtube,   store: shopify, connector: {source: "1780363"}}
      instagram-us: {platform: instagram, store: shopify, connector: {source: "2329312"}}

  ``connector.source`` (a string or a list) is compared with ``source_name`` and with ``app_id`` as a
  string; an order matching no channel of the store belongs to the store channel itself. Caveat:
  YouTube product links and Instagram product tags usually check out on the online store, and such
  orders say "web": only orders checked out inside the channel app can be attributed.

Stock (https://shopify.dev/docs/api/admin-graphql/2025-01/mutations/inventorySetQuantities)
  - API version 2025-01: ``input: {name: "available", reason: "correction", referenceDocumentUri,
    ignoreCompareQuantity, quantities: [{inventoryItemId, locationId, quantity, compareQuantity}]}``.
    Every quantity needs a compareQuantity unless ``ignoreCompareQuantity`` is true
    (COMPARE_QUANTITY_REQUIRED), so pushes with and without ``expected`` go in separate calls.
  - A stale compare is the userError COMPARE_QUANTITY_STALE (2026-04 on: changeFromQuantity and
    CHANGE_FROM_QUANTITY_STALE, read as the same). Shopify's message ("The compareQuantity value does
    not match persisted value.") does not say the persisted quantity, so ``actual`` is None unless the
    message carries "persisted quantity: N" (the fake's does).
  - Input arrays hold at most 250 items (https://shopify.dev/docs/api/usage/limits): max_batch 250,
    and one inventory item at most once per call (NO_DUPLICATE_INVENTORY_ITEM_ID_GROUP_ID_PAIR).

Rate limit (https://shopify.dev/docs/apps/build/apis/graphql-admin/rate-limits)
  Calculated query cost in a leaky bucket per app and store: the Standard plan restores 100 points/s
  (Advanced 200, Plus 1000); a mutation costs 10 points; a query may not exceed 1000 points, which is
  also the bucket we assume. Every response reports ``extensions.cost.throttleStatus``
  {maximumAvailable, currentlyAvailable, restoreRate}; a throttled call is HTTP 200 with
  ``errors[].extensions.code == "THROTTLED"``. Set ``connectors.shopify.cost_bucket`` /
  ``cost_restore_per_s`` to the store's plan (read them off any response's throttleStatus).

Settings (``connectors.shopify``): secret, access_token, base_url (e.g.
https://shop.myshopify.com/admin/api/2025-01; else built from the channel's account and
``api_version``), country_regions {country code: region}, cost_bucket, cost_restore_per_s.
Per store channel: ``account`` (the myshopify domain), ``connector: {location_id, inventory_items:
{SKU: gid://shopify/InventoryItem/N}, base_url?, warehouses?: {location id: warehouse}}``.
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any, Mapping, Sequence

from connectors.base import (
    ApiCall, CallOutcome, Emit, Intake, NotConfigured, PayloadError, PushResult, RateBudget, StockPush,
    StockPusher, Webhook, WebhookAdapter, channel_by_account, order_event, order_placed, status_outcome,
    stock_pusher, webhook_adapter,
)
from connectors.payload import is_whole, iso_epoch_ms
from connectors.signatures import verify_shopify
from lockstock.catalog import Catalog, Channel

PLATFORM = "shopify"
API_VERSION = "2025-01"
MAX_BATCH = 250
MUTATION_COST = 10.0  # Shopify's flat cost of a mutation
PROBE_COST = 1.0  # ``shop { id }``: one object
DEFAULT_COST_BUCKET = 1000.0
DEFAULT_RESTORE_PER_S = 100.0

SET_QUANTITIES = (
    "mutation LockstockSetAvailable($input: InventorySetQuantitiesInput!) {"
    " inventorySetQuantities(input: $input) {"
    " inventoryAdjustmentGroup { id }"
    " userErrors { code field message } } }"
)
# Carries pushes refused before sending when nothing else is sent (see build_calls).
PROBE = "query LockstockProbe { shop { id } }"

EVENT_TOPICS = {"orders/paid": "PAID", "orders/cancelled": "CANCELLED", "orders/fulfilled": "SHIPPED"}
STALE_CODES = {"COMPARE_QUANTITY_STALE", "CHANGE_FROM_QUANTITY_STALE"}
RETRYABLE_USER_ERRORS = STALE_CODES | {"IDEMPOTENCY_CONCURRENT_REQUEST"}
RETRYABLE_GRAPHQL_ERRORS = {"INTERNAL_SERVER_ERROR", "SERVICE_UNAVAILABLE", "TIMEOUT"}
_PERSISTED = re.compile(r"persisted quantity:?\s*(-?\d+)", re.IGNORECASE)


# ---- shared helpers (the fake uses them too) ----------------------------------------------------

def gid(kind: str, value: Any) -> str | None:
    """``gid://shopify/<kind>/<n>`` from a gid or a bare numeric id; None when it is neither."""
    if isinstance(value, bool) or value is None:
        return None
    text = str(value).strip()
    if re.fullmatch(r"\d+", text):
        return f"gid://shopify/{kind}/{text}"
    return text if re.fullmatch(rf"gid://shopify/{kind}/\d+", text) else None


def iso_ms(value: Any, what: str) -> int:
    """Epoch ms of an ISO 8601 timestamp that carries its offset (Shopify always sends one)."""
    if not isinstance(value, str):
        raise PayloadError(f"{what} {value!r} is not an ISO 8601 timestamp")
    return iso_epoch_ms(value.strip(), f"{what} {value!r} is not an ISO 8601 timestamp",
                        f"{what} {value!r} has no UTC offset")


# ---- inbound ------------------------------------------------------------------------------------

@webhook_adapter
class ShopifyWebhooks(WebhookAdapter):
    platform = PLATFORM
    secret_env = "LOCKSTOCK_SHOPIFY_SECRET"

    def __init__(self, catalog: Catalog, secret: str, settings: Mapping[str, Any]) -> None:
        super().__init__(catalog, secret, settings)
        self.country_regions = _country_regions(catalog, self.settings.get("country_regions"))

    def verify(self, hook: Webhook, now_s: float) -> None:
        verify_shopify(self.secret, hook.headers, hook.body)  # Shopify signs no timestamp

    def intake(self, hook: Webhook) -> Intake:
        delivery_id = hook.header("X-Shopify-Webhook-Id").strip()
        if not delivery_id:
            raise PayloadError("missing X-Shopify-Webhook-Id header (Shopify's id of this delivery)")
        topic = hook.header("X-Shopify-Topic").strip()
        if not topic:
            raise PayloadError("missing X-Shopify-Topic header")
        if topic != "orders/create" and topic not in EVENT_TOPICS:
            return Intake(delivery_id, (), ignored=f"topic {topic} is not an order event lockstock acts on")
        order = _json_object(hook.body)
        number = _order_number(order)
        store = self._store(hook.header("X-Shopify-Shop-Domain"))
        channel = sales_channel(self.catalog, store, order)
        if topic == "orders/create":
            return Intake(delivery_id, (self._placed(order, number, channel),))
        return Intake(delivery_id, (self._event(hook, topic, order, number, store, channel, delivery_id),))

    def _store(self, shop_domain: str) -> str:
        if not shop_domain.strip():
            raise PayloadError("missing X-Shopify-Shop-Domain header")
        return channel_by_account(self.catalog, PLATFORM, shop_domain.strip())

    def _placed(self, order: dict, number: str, channel: str) -> Emit:
        items = order.get("line_items")
        if not isinstance(items, list):
            raise PayloadError(f"order shopify:{number}: line_items is not a list")
        lines = []
        for index, item in enumerate(items):
            if not isinstance(item, dict):
                raise PayloadError(f"order shopify:{number}: line_items[{index}] is not an object")
            lines.append((item.get("sku"), item.get("quantity")))
        return order_placed(PLATFORM, number, channel, _buyer(order), iso_ms(order.get("created_at"), "created_at"),
                            lines, ship_to_region=self._region(order))

    def _event(self, hook: Webhook, topic: str, order: dict, number: str, store: str, channel: str,
               delivery_id: str) -> Emit:
        kind = EVENT_TOPICS[topic]
        reason = warehouse = None
        times = [order.get("updated_at")]
        try:  # headers are not signed: a bad one is skipped, never a reason to refuse the order
            times.insert(0, iso_ms(hook.header("X-Shopify-Triggered-At"), "X-Shopify-Triggered-At"))
        except PayloadError:
            pass
        if kind == "CANCELLED":
            times.insert(0, order.get("cancelled_at"))
            raw_reason = order.get("cancel_reason")
            reason = raw_reason.strip() if isinstance(raw_reason, str) and raw_reason.strip() else None
        if kind == "SHIPPED":
            warehouse = _warehouse(self.catalog, self.catalog.channels[store], order)
        occurred = next((t if isinstance(t, int) else iso_ms(t, "event time") for t in times if t is not None),
                        hook.received_at)
        return order_event(PLATFORM, number, channel, kind, delivery_id, occurred, warehouse=warehouse, reason=reason)

    def _region(self, order: dict) -> str:
        address = order.get("shipping_address")
        code = address.get("country_code") if isinstance(address, dict) else None
        return self.country_regions.get(code.strip().upper(), "") if isinstance(code, str) else ""


def sales_channel(catalog: Catalog, store: str, order: Mapping[str, Any]) -> str:
    """The channel of ``store`` whose ``connector.source`` names the order's source_name or app_id."""
    origins = {str(v).strip() for v in (order.get("source_name"), order.get("app_id"))
               if isinstance(v, (str, int)) and not isinstance(v, bool) and str(v).strip()}
    for channel in catalog.store_channels(store):
        if channel.id != store and origins & _sources(channel.connector.get("source")):
            return channel.id
    return store


def _sources(value: Any) -> set[str]:
    values = value if isinstance(value, (list, tuple)) else [value]
    return {str(v).strip() for v in values if isinstance(v, (str, int)) and not isinstance(v, bool) and str(v).strip()}


def _json_object(body: bytes) -> dict:
    try:
        order = json.loads(body)
    except ValueError:  # includes bytes that are not UTF-8
        raise PayloadError("body is not JSON") from None
    if not isinstance(order, dict):
        raise PayloadError(f"body is a JSON {type(order).__name__}, expected an order object")
    return order


def _order_number(order: dict) -> str:
    value = order.get("id")
    if is_whole(value) and value > 0:
        return str(value)
    if isinstance(value, str) and value.strip().isdigit():
        return value.strip()
    raise PayloadError(f"order id {value!r} is not a Shopify order id" if value is not None else "order has no id")


def _buyer(order: dict) -> str:
    """Shopify's customer id; an email when the order has no customer (guest checkout)."""
    customer = order.get("customer")
    if not isinstance(customer, dict):
        customer = {}
    customer_id = customer.get("id")
    if isinstance(customer_id, (int, str)) and not isinstance(customer_id, bool) and str(customer_id).strip():
        return f"{PLATFORM}:{str(customer_id).strip()}"
    for email in (order.get("email"), order.get("contact_email"), customer.get("email")):
        if isinstance(email, str) and email.strip():
            return email.strip().lower()
    return ""


def _warehouse(catalog: Catalog, store: Channel, order: dict) -> str | None:
    """The lockstock warehouse of the fulfilling location (``connector.warehouses``), if mapped."""
    fulfillments = order.get("fulfillments")
    mapping = store.connector.get("warehouses")
    if not isinstance(fulfillments, list) or not fulfillments or not isinstance(mapping, dict):
        return None
    last = fulfillments[-1] if isinstance(fulfillments[-1], dict) else {}
    location = gid("Location", last.get("location_id"))
    for key, warehouse in mapping.items():
        if location and gid("Location", key) == location and catalog.warehouse_region(str(warehouse)):
            return str(warehouse)
    return None


def _country_regions(catalog: Catalog, raw: Any) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise NotConfigured(f"connectors.shopify.country_regions must map country codes to regions, got {raw!r}")
    unknown = {str(k): v for k, v in raw.items() if v not in catalog.regions}
    if unknown:
        raise NotConfigured(f"connectors.shopify.country_regions names unknown region(s): {unknown}")
    return {str(code).strip().upper(): region for code, region in raw.items()}


# ---- outbound -----------------------------------------------------------------------------------

@stock_pusher
class ShopifyStockPusher(StockPusher):
    platform = PLATFORM
    max_batch = MAX_BATCH
    compare_and_set = True
    credential_env = {"access_token": "LOCKSTOCK_SHOPIFY_ACCESS_TOKEN"}

    def budget(self, channel: Channel) -> RateBudget:
        """Query-cost points of the store's bucket (not calls per minute: Shopify counts cost)."""
        return RateBudget(capacity=self._points("cost_bucket", DEFAULT_COST_BUCKET),
                          refill_per_s=self._points("cost_restore_per_s", DEFAULT_RESTORE_PER_S))

    def build_calls(self, channel: Channel, pushes: Sequence[StockPush], now_s: float) -> list[ApiCall]:
        url, headers = self._endpoint(channel), self._headers()
        location = gid("Location", channel.connector.get("location_id"))
        sendable, refused = [], []
        for push in pushes:
            item = self._item(channel, push.sku)
            if location is None or item is None:
                refused.append(push)
            else:
                sendable.append((push, item))
        calls = [self._mutation(url, headers, channel, batch, location)
                 for batch in _batches(sendable) if location is not None]  # none sendable without a location
        # A push that can never be sent must still come back as a refusal (the sync dead-letters
        # it): it rides along on a real call, or on a one-point probe when nothing else is sent.
        if refused and calls:
            calls[0].pushes += tuple(refused)
        elif refused:
            body = json.dumps({"query": PROBE}, separators=(",", ":")).encode()
            calls.append(ApiCall("POST", url, headers, body, tuple(refused), cost=PROBE_COST))
        return calls

    def parse_response(self, call: ApiCall, status: int, headers: Mapping[str, str], body: bytes) -> CallOutcome:
        count = _sent_count(call)
        sent = call.pushes[:count]
        refused = tuple(PushResult(p, ok=False, retryable=False, reason=self.refusal(p)) for p in call.pushes[count:])
        failed = status_outcome(dataclasses.replace(call, pushes=sent), status, headers, body)
        if failed is not None:
            return dataclasses.replace(failed, results=failed.results + refused)
        outcome = _read_graphql(sent, call.cost, body)
        return dataclasses.replace(outcome, results=outcome.results + refused)

    def refusal(self, push: StockPush) -> str:
        """Why ``push`` cannot be sent at all (missing mapping), else ""."""
        channel = self.catalog.channels.get(push.channel)
        if channel is None:
            return f"channel {push.channel} is not in the catalog"
        if gid("Location", channel.connector.get("location_id")) is None:
            return f"channel {channel.id} has no Shopify location (set connector.location_id)"
        if self._item(channel, push.sku) is None:
            return f"no Shopify inventory item for SKU {push.sku}"
        return ""

    def _item(self, channel: Channel, sku: str) -> str | None:
        items = channel.connector.get("inventory_items")
        return gid("InventoryItem", items.get(sku)) if isinstance(items, dict) else None

    def _endpoint(self, channel: Channel) -> str:
        base = channel.connector.get("base_url") or self.settings.get("base_url")
        if not base and channel.account:
            base = f"https://{channel.account}/admin/api/{self.settings.get('api_version') or API_VERSION}"
        if not base:
            raise NotConfigured(f"channel {channel.id}: set connectors.shopify.base_url or the channel's account")
        return f"{str(base).rstrip('/')}/graphql.json"

    def _headers(self) -> dict[str, str]:
        token = self.credentials.get("access_token", "")
        if not token:
            raise NotConfigured("shopify stock pushes are off: no access token")
        return {"Content-Type": "application/json", "Accept": "application/json", "X-Shopify-Access-Token": token}

    def _mutation(self, url: str, headers: dict[str, str], channel: Channel,
                  batch: list[tuple[StockPush, str]], location: str) -> ApiCall:
        compare = batch[0][0].expected is not None  # a batch is all compare or all not (_batches)
        quantities = []
        for push, item in batch:
            quantity = {"inventoryItemId": item, "locationId": location, "quantity": push.quantity}
            if compare:
                quantity["compareQuantity"] = push.expected
            quantities.append(quantity)
        changed_at = max(push.changed_at for push, _ in batch)
        variables = {"input": {
            "name": "available", "reason": "correction",
            # shows up in the store's inventory history: which lockstock sync set it
            "referenceDocumentUri": f"gid://lockstock/StockSync/{channel.id}-{changed_at}",
            "ignoreCompareQuantity": not compare, "quantities": quantities,
        }}
        body = json.dumps({"query": SET_QUANTITIES, "variables": variables}, separators=(",", ":")).encode()
        return ApiCall("POST", url, dict(headers), body, tuple(p for p, _ in batch), cost=MUTATION_COST)

    def _points(self, key: str, default: float) -> float:
        value = self.settings.get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise NotConfigured(f"connectors.shopify.{key} must be a number of points > 0, got {value!r}")
        return float(value)


def _batches(sendable: list[tuple[StockPush, str]]) -> list[list[tuple[StockPush, str]]]:
    """At most MAX_BATCH per call, compare and no-compare pushes apart, an item at most once per call
    and a later push of an item in a later call than the earlier one (calls go out in order)."""
    batches: list[list[tuple[StockPush, str]]] = []
    last: dict[str, int] = {}  # item -> index of the batch holding its latest push
    for push, item in sendable:
        compare = push.expected is not None
        start = last.get(item, -1) + 1
        home = next((i for i in range(start, len(batches)) if len(batches[i]) < MAX_BATCH
                     and (batches[i][0][0].expected is not None) == compare), None)
        if home is None:
            batches.append([])
            home = len(batches) - 1
        batches[home].append((push, item))
        last[item] = home
    return batches


def _sent_count(call: ApiCall) -> int:
    """How many of ``call.pushes`` are in its quantities (the rest were refused before sending)."""
    try:
        variables = json.loads(call.body).get("variables") or {}
        return len(variables["input"]["quantities"])
    except (ValueError, KeyError, TypeError, AttributeError):
        return 0


def _read_graphql(sent: tuple[StockPush, ...], cost: float, body: bytes) -> CallOutcome:
    """A 2xx GraphQL answer: THROTTLED, other top-level errors, or per-quantity userErrors."""
    def every(retryable: bool, reason: str, **extra: Any) -> CallOutcome:
        return CallOutcome(tuple(PushResult(p, ok=False, retryable=retryable, reason=reason) for p in sent), **extra)

    try:
        doc = json.loads(body)
    except ValueError:
        doc = None
    if not isinstance(doc, dict):
        return every(True, f"unreadable Shopify response: {body[:200].decode('utf-8', 'replace')}")
    status = _throttle_status(doc)
    errors = doc.get("errors")
    if errors:
        errors = errors if isinstance(errors, list) else [errors]
        codes = {_error_code(e) for e in errors}
        if "THROTTLED" in codes:
            return every(True, f"THROTTLED: {_describe(status, cost)}", throttled=True,
                         retry_after_s=_wait(status, cost))
        return every(bool(codes & RETRYABLE_GRAPHQL_ERRORS), f"GraphQL error: {_error_message(errors[0])}")
    if not sent:
        return CallOutcome(())
    data = doc.get("data")
    if not isinstance(data, dict):
        data = {}
    payload = data.get("inventorySetQuantities")
    if not isinstance(payload, dict):
        return every(True, "Shopify answered without an inventorySetQuantities result")
    user_errors = [e for e in payload.get("userErrors") or [] if isinstance(e, dict)]
    applied = payload.get("inventoryAdjustmentGroup") is not None or not user_errors
    by_index: dict[int, dict] = {}
    general = []
    for error in user_errors:
        index = _quantity_index(error.get("field"))
        if index is None:
            general.append(error)
        else:
            by_index.setdefault(index, error)
    results = []
    for index, push in enumerate(sent):
        refusal = by_index.get(index) or (general[0] if general else None)
        if refusal is not None:
            results.append(_refused(push, refusal))
        elif not applied:
            results.append(PushResult(push, ok=False, retryable=True,
                                      reason="not applied: Shopify refused the batch for another item's error"))
        else:
            results.append(PushResult(push, ok=True))
    # a nearly empty bucket: say how long until the next mutation fits (not a throttle)
    low = status is not None and status.get("currentlyAvailable", cost) < MUTATION_COST
    return CallOutcome(tuple(results), retry_after_s=_wait(status, MUTATION_COST) if low else None)


def _refused(push: StockPush, error: dict) -> PushResult:
    code = str(error.get("code") or "USER_ERROR")
    message = str(error.get("message") or "")
    if code in STALE_CODES:
        found = _PERSISTED.search(message)
        actual = int(found.group(1)) if found else None
        shown = f"; Shopify shows {actual}" if actual is not None else ""
        return PushResult(push, ok=False, retryable=True, actual=actual,
                          reason=f"{code}: compare quantity {push.expected} no longer matches{shown}")
    return PushResult(push, ok=False, retryable=code in RETRYABLE_USER_ERRORS, reason=f"{code}: {message}")


def _quantity_index(field: Any) -> int | None:
    if not isinstance(field, list) or "quantities" not in field:
        return None
    position = field.index("quantities") + 1
    try:
        return int(field[position])
    except (IndexError, ValueError, TypeError):
        return None


def _error_code(error: Any) -> str:
    extensions = error.get("extensions") if isinstance(error, dict) else None
    return str(extensions.get("code", "")) if isinstance(extensions, dict) else ""


def _error_message(error: Any) -> str:
    return str(error.get("message", error) if isinstance(error, dict) else error)[:200]


def _throttle_status(doc: dict) -> dict[str, float] | None:
    extensions = doc.get("extensions")
    cost = extensions.get("cost") if isinstance(extensions, dict) else None
    status = cost.get("throttleStatus") if isinstance(cost, dict) else None
    if not isinstance(status, dict):
        return None
    numbers = {k: v for k, v in status.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    return numbers if {"currentlyAvailable", "restoreRate"} <= set(numbers) else None


def _wait(status: dict[str, float] | None, cost: float) -> float | None:
    if status is None or status["restoreRate"] <= 0:
        return None
    return max(0.0, (cost - status["currentlyAvailable"]) / status["restoreRate"])


def _describe(status: dict[str, float] | None, cost: float) -> str:
    if status is None:
        return f"{cost:g} points requested"
    return (f"{status['currentlyAvailable']:g} of {status.get('maximumAvailable', 0):g} points available, "
            f"{cost:g} requested, restoring {status['restoreRate']:g}/s")
