"""Fake own site: the receiving end of the generic contract (connectors/generic.py).

``POST /stock``: throttled first (per channel; 429 with Retry-After), then the
X-Lockstock-Timestamp / X-Lockstock-Signature check with its replay window (401, counted
``bad_signature``), then the shape (400, ``bad_shape``): at most 100 updates of
``{"sku", "quantity" >= 0, "channel"}`` and a ``sent_at``. Each update sets the channel's quantity
(the fake's account is the lockstock channel id) unless its SKU is in ``reject_skus``; the answer
is ``{"accepted": [...], "rejected": [{"sku", "reason"}]}``. Sales post a signed
``order.created`` to the gateway's ``/webhooks/generic``; ``event_webhook`` builds the later events.
"""

from __future__ import annotations

import json
import time
from typing import Any

from aiohttp import web

from connectors.fakes.base import FakeMarketplace, Sale
from connectors.generic import MAX_UPDATES
from connectors.signatures import REPLAY_WINDOW_S, SignatureError, generic_signature, verify_generic

WEBHOOK_PATH = "/webhooks/generic"


def signed(secret: str, payload: dict[str, Any], timestamp: int | None = None) -> tuple[dict[str, str], bytes]:
    """(headers, body) of a request signed with the generic scheme."""
    body = json.dumps(payload, separators=(",", ":")).encode()
    timestamp = int(time.time()) if timestamp is None else timestamp
    return {"Content-Type": "application/json", "X-Lockstock-Timestamp": str(timestamp),
            "X-Lockstock-Signature": generic_signature(secret, timestamp, body)}, body


class FakeGenericSite(FakeMarketplace):
    platform = "generic"

    def __init__(self, *, secret: str, gateway_url: str = "", rate_capacity: float = 2.0, rate_per_s: float = 2.0,
                 window_s: int = REPLAY_WINDOW_S) -> None:
        super().__init__(gateway_url=gateway_url, rate_capacity=rate_capacity, rate_per_s=rate_per_s)
        self.secret, self.window_s = secret, window_s
        self.reject_skus: dict[str, str] = {}  # sku -> reason the site gives

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/stock", self._stock)]

    def order_webhook(self, sale: Sale) -> tuple[str, dict[str, str], bytes]:
        headers, body = signed(self.secret, {
            "event_id": f"created-{sale.order_id}", "type": "order.created",
            "order": {"id": sale.order_id, "channel": sale.account, "buyer_id": sale.buyer,
                      "placed_at": int(sale.at * 1000), "lines": [{"sku": sale.sku, "qty": sale.qty}]}})
        return WEBHOOK_PATH, headers, body

    def event_webhook(self, sale: Sale, kind: str, *, warehouse: str | None = None,
                      reason: str | None = None) -> tuple[str, dict[str, str], bytes]:
        """order.paid / order.cancelled / order.shipped of an earlier sale, signed."""
        order: dict[str, Any] = {"id": sale.order_id, "channel": sale.account}
        if warehouse:
            order["warehouse"] = warehouse
        if reason:
            order["reason"] = reason
        headers, body = signed(self.secret, {"event_id": f"{kind}-{sale.order_id}", "type": kind,
                                             "occurred_at": int(time.time() * 1000), "order": order})
        return WEBHOOK_PATH, headers, body

    async def _stock(self, request: web.Request) -> web.Response:
        raw = await request.read()
        payload = _json(raw)
        updates = payload.get("updates") if isinstance(payload, dict) else None
        first = updates[0] if isinstance(updates, list) and updates and isinstance(updates[0], dict) else {}
        limited = self.throttle(str(first.get("channel") or "?"))
        if limited is not None:
            return limited
        try:
            verify_generic(self.secret, request.headers, raw, time.time(), self.window_s)
        except SignatureError as exc:
            return self.refuse("bad_signature", 401, str(exc))
        problem = _shape_problem(payload)
        if problem:
            return self.refuse("bad_shape", 400, problem)
        accepted, rejected = [], []
        for update in payload["updates"]:
            if update["sku"] in self.reject_skus:
                rejected.append({"sku": update["sku"], "reason": self.reject_skus[update["sku"]]})
            else:
                self.set_quantity(update["channel"], update["sku"], update["quantity"])
                accepted.append(update["sku"])
        return web.json_response({"accepted": accepted, "rejected": rejected})


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _shape_problem(payload: Any) -> str:
    if not isinstance(payload, dict):
        return "body must be a JSON object"
    updates = payload.get("updates")
    if not isinstance(updates, list) or not 1 <= len(updates) <= MAX_UPDATES:
        return f"updates must be a list of 1 to {MAX_UPDATES} entries"
    if not isinstance(payload.get("sent_at"), str):
        return "sent_at is required"
    for update in updates:
        if not isinstance(update, dict) or not isinstance(update.get("sku"), str) or not update["sku"]:
            return "each update needs a sku"
        quantity = update.get("quantity")
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 0:
            return f"update {update['sku']}: quantity must be a whole number >= 0, got {quantity!r}"
        if not isinstance(update.get("channel"), str) or not update["channel"]:
            return f"update {update['sku']}: channel is required"
    return ""
