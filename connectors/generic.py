"""The seller's own site: a small signed JSON contract, in both directions.

SIGNING (both directions). Every request carries two headers:
    X-Lockstock-Timestamp: <unix time in whole seconds, e.g. 1795000000>
    X-Lockstock-Signature: sha256=<lower-case hex of HMAC-SHA256(key = the shared secret as UTF-8,
                                    message = timestamp + "." + the raw request body bytes)>
The receiver recomputes the HMAC over the exact bytes received (before any JSON parsing),
compares in constant time and refuses a timestamp more than 300 s away from its clock (replay).
Example: secret "own-site", timestamp 1795000000, body {"order_id":"site:1001"} gives
sha256=66c1d39c3cb1e0f8a03935e37bb7a59b79acf496b2c5f4e0903906ad20836434. The secret is
LOCKSTOCK_GENERIC_SECRET (or connectors.generic.secret in the channels file).

INBOUND: your site -> lockstock, ``POST <gateway>/webhooks/generic``, Content-Type application/json:
    {"event_id": "evt-81723",            string, unique per event; a retry MUST reuse it
     "type": "order.created",            order.created | order.paid | order.cancelled | order.shipped
     "occurred_at": 1795000000123,       optional, for paid/cancelled/shipped (default: time received)
     "order": {
        "id": "1001",                    your order id (string or integer); lockstock's is "generic:1001"
        "channel": "site-us",            optional: a catalog channel with platform "generic";
                                         may be left out when the catalog has exactly one
        "buyer_id": "cust-42",           order.created: your stable customer id (purchase limits)
        "ship_to_region": "EU",          optional: a catalog region; default the channel's region
        "placed_at": "2026-11-27T20:15:03.120Z",  order.created: ISO-8601 with a zone, or epoch ms
        "lines": [{"sku": "TEE-RED-M", "qty": 2}],  order.created: seller SKUs, qty a whole number > 0
        "warehouse": "LA",               optional, order.shipped: a catalog warehouse
        "reason": "buyer changed mind"}} optional, order.cancelled
Answers: 200 (accepted, duplicate or ignored: do not resend), 400 with {"error": reason}
(malformed: fix, do not resend as is), 401 (signature or timestamp), 503 or no answer: retry
with backoff and the SAME event_id. Send order.created before any other event of an order.
Fields not listed are ignored; lines of one SKU are added up.

OUTBOUND: lockstock -> your site, ``POST {connectors.generic.base_url}/stock`` (or the channel's
``connector.base_url``), signed as above, at most 100 updates per request, one channel per request:
    {"updates": [{"sku": "TEE-RED-M", "quantity": 12, "channel": "site-us"}],
     "sent_at": "2026-11-27T20:15:04.001Z"}
``quantity`` is what the channel may show now (set it, do not add it). Answer 200 with
    {"accepted": ["TEE-RED-M"], "rejected": [{"sku": "GONE-1", "reason": "unknown sku", "retryable": false}]}
(``retryable`` optional, default false); a SKU in neither list is retried. 429 with Retry-After
(seconds) slows lockstock down; 5xx is retried; other 4xx fail the whole request. Rate: the
channel's ``rate_limit_per_min`` (requests), with a burst of one second's worth.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any, Mapping, Sequence

from connectors.base import (
    ApiCall, CallOutcome, Emit, Intake, NotConfigured, PayloadError, PushResult, StockPush, StockPusher,
    Webhook, WebhookAdapter, order_event, order_placed, status_outcome, stock_pusher, webhook_adapter,
)
from connectors.payload import is_whole, iso_epoch_ms, required_text, utf8_json_object
from connectors.signatures import generic_signature, verify_generic
from lockstock.catalog import Catalog, Channel

PLATFORM = "generic"
EVENT_TYPES = {"order.paid": "PAID", "order.cancelled": "CANCELLED", "order.shipped": "SHIPPED"}
MAX_UPDATES = 100


@webhook_adapter
class GenericWebhooks(WebhookAdapter):
    platform = PLATFORM
    secret_env = "LOCKSTOCK_GENERIC_SECRET"

    def verify(self, hook: Webhook, now_s: float) -> None:
        verify_generic(self.secret, hook.headers, hook.body, now_s)

    def intake(self, hook: Webhook) -> Intake:
        doc = utf8_json_object(hook.body, "body")
        event_id = required_text(doc.get("event_id"), "event_id")
        if len(event_id) > 200:
            raise PayloadError("event_id is longer than 200 characters")
        kind = doc.get("type")
        if not isinstance(kind, str) or (kind != "order.created" and kind not in EVENT_TYPES):
            raise PayloadError(f"type {kind!r} is not one of order.created, {', '.join(EVENT_TYPES)}")
        order = doc.get("order")
        if not isinstance(order, dict):
            raise PayloadError("order must be a JSON object")
        order_id = _order_id(order.get("id"))
        channel = self._channel(order.get("channel"))
        if kind == "order.created":
            return Intake(event_id, (self._placed(order, order_id, channel),))
        occurred_at = hook.received_at
        if doc.get("occurred_at") is not None:
            occurred_at = _epoch_ms(doc["occurred_at"], "occurred_at")
        warehouse = _optional_text(order.get("warehouse"), "order.warehouse")
        if warehouse is not None and self.catalog.warehouse_region(warehouse) is None:
            raise PayloadError(f"order.warehouse {warehouse!r} is not a warehouse of the catalog")
        reason = _optional_text(order.get("reason"), "order.reason")
        record = order_event(PLATFORM, order_id, channel, EVENT_TYPES[kind], event_id, occurred_at,
                             warehouse=warehouse if kind == "order.shipped" else None,
                             reason=reason if kind == "order.cancelled" else None)
        return Intake(event_id, (record,))

    def _placed(self, order: dict, order_id: str, channel: str) -> Emit:
        region = _optional_text(order.get("ship_to_region"), "order.ship_to_region") or ""
        if region and region not in self.catalog.regions:
            raise PayloadError(f"order.ship_to_region {region!r} is not one of {', '.join(self.catalog.regions)}")
        lines = order.get("lines")
        if not isinstance(lines, list) or not lines:
            raise PayloadError(f"order {order_id}: lines must be a non-empty list")
        units: dict[str, int] = {}
        for line in lines:
            if not isinstance(line, dict):
                raise PayloadError(f"order {order_id}: each line must be an object with sku and qty")
            sku, qty = line.get("sku"), line.get("qty")
            if not is_whole(qty) or qty <= 0:
                raise PayloadError(f"order {order_id}: line {sku!r} has qty {qty!r}; expected a whole number > 0")
            sku = required_text(sku, f"order {order_id}: lines[].sku")
            units[sku] = units.get(sku, 0) + qty
        buyer = order.get("buyer_id")
        if isinstance(buyer, bool) or not isinstance(buyer, (str, int)) or not str(buyer).strip():
            raise PayloadError(f"order {order_id}: buyer_id is missing (your stable customer id)")
        return order_placed(PLATFORM, order_id, channel, f"generic:{str(buyer).strip()}",
                            _epoch_ms(order.get("placed_at"), "order.placed_at"), list(units.items()), region)

    def _channel(self, given: Any) -> str:
        if given is None:
            own = [c.id for c in self.catalog.channels.values() if c.platform == PLATFORM and not c.store]
            if len(own) != 1:
                raise PayloadError(f"order.channel is required: the catalog has {len(own)} generic channels "
                                   f"({', '.join(own) or 'none'})")
            return own[0]
        channel = self.catalog.channels.get(given) if isinstance(given, str) else None
        if channel is None or channel.platform != PLATFORM:
            raise PayloadError(f"order.channel {given!r} is not a catalog channel with platform generic")
        return channel.id


def _optional_text(value: Any, what: str) -> str | None:
    return None if value is None or value == "" else required_text(value, what)


def _order_id(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)) or not str(value).strip():
        raise PayloadError(f"order.id must be a non-empty string or integer, got {value!r}")
    return str(value).strip()


def _epoch_ms(value: Any, what: str) -> int:
    """ISO-8601 with a zone, or epoch milliseconds (seconds are refused: a 1000x mistake)."""
    if is_whole(value):
        if not 10**11 <= value < 10**14:
            raise PayloadError(f"{what} {value} is not epoch milliseconds (seconds? send ms)")
        return value
    if not isinstance(value, str) or not value.strip():
        raise PayloadError(f"{what} is missing: ISO-8601 with a time zone, or epoch milliseconds")
    return iso_epoch_ms(value.strip(), f"{what} {value!r} is not ISO-8601",
                        f"{what} {value!r} has no time zone (add Z or +hh:mm)")


@stock_pusher
class GenericStockPusher(StockPusher):
    platform = PLATFORM
    max_batch = MAX_UPDATES
    credential_env = {"secret": "LOCKSTOCK_GENERIC_SECRET"}

    def __init__(self, catalog: Catalog, settings: Mapping[str, Any], credentials: Mapping[str, str]) -> None:
        super().__init__(catalog, settings, credentials)
        for channel in catalog.channels.values():
            if channel.platform == PLATFORM and not channel.store:
                self._stock_url(channel)  # fail at start, not at the first push

    def _stock_url(self, channel: Channel) -> str:
        base = str((channel.connector or {}).get("base_url") or self.settings.get("base_url") or "").strip()
        if not base.startswith(("http://", "https://")):
            raise NotConfigured(f"generic stock pushes are off: set connectors.generic.base_url (or channel "
                                f"{channel.id}'s connector.base_url) to your site's http(s) URL")
        return base.rstrip("/") + "/stock"

    def build_calls(self, channel: Channel, pushes: Sequence[StockPush], now_s: float) -> list[ApiCall]:
        url = self._stock_url(channel)
        sent_at = datetime.fromtimestamp(now_s, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        calls = []
        for start in range(0, len(pushes), MAX_UPDATES):
            chunk = tuple(pushes[start:start + MAX_UPDATES])
            body = json.dumps({"updates": [{"sku": p.sku, "quantity": max(0, int(p.quantity)), "channel": channel.id}
                                           for p in chunk], "sent_at": sent_at}, separators=(",", ":")).encode()
            timestamp = int(now_s)
            headers = {"content-type": "application/json", "x-lockstock-timestamp": str(timestamp),
                       "x-lockstock-signature": generic_signature(self.credentials["secret"], timestamp, body)}
            calls.append(ApiCall("POST", url, headers, body, chunk))
        return calls

    def parse_response(self, call: ApiCall, status: int, headers: Mapping[str, str], body: bytes) -> CallOutcome:
        failed = status_outcome(call, status, headers, body)
        if failed is not None:
            return failed
        try:
            answer = json.loads(body)
        except ValueError:
            answer = None
        if not isinstance(answer, dict) or not isinstance(answer.get("accepted", []), list) \
                or not isinstance(answer.get("rejected", []), list):
            reason = f"unreadable answer: {body[:200].decode('utf-8', 'replace')}"
            return CallOutcome(tuple(PushResult(p, ok=False, retryable=True, reason=reason) for p in call.pushes))
        accepted = {sku for sku in answer.get("accepted", []) if isinstance(sku, str)}
        rejected = {r["sku"]: r for r in answer.get("rejected", [])
                    if isinstance(r, dict) and isinstance(r.get("sku"), str)}
        results = []
        for push in call.pushes:
            if push.sku in rejected:
                entry = rejected[push.sku]
                results.append(PushResult(push, ok=False, retryable=entry.get("retryable") is True,
                                          reason=str(entry.get("reason") or "rejected by the site")))
            elif push.sku in accepted:
                results.append(PushResult(push, ok=True))
            else:
                results.append(PushResult(push, ok=False, retryable=True,
                                          reason="the site's answer does not mention this SKU"))
        return CallOutcome(tuple(results))
