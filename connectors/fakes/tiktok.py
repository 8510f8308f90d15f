"""A fake TikTok Shop: the 202309 Update Inventory endpoint and signed order webhooks.

It checks our requests the way TikTok does (app_key, a timestamp within 5 minutes, the request
``sign``, the ``x-tts-access-token`` header), the body's shape (``skus[].id``,
``inventory[].quantity`` 0..99999), throttles per shop (answering 429 with TikTok's 36009002
body), and keeps the advertised quantity per (shop_id, seller SKU). The shop is named by
``shop_cipher`` in requests, as in TikTok's API; the fake maps it back to the shop id, which is
the channel's ``account``. Its order webhooks are ORDER_STATUS_CHANGE deliveries signed like
TikTok's, carrying the order's lines (see connectors/tiktok.py on why lines).
"""

from __future__ import annotations

import json
import time
from typing import Any, Mapping

from aiohttp import web

from connectors.fakes.base import FakeMarketplace, Sale
from connectors.payload import is_whole
from connectors.signatures import tiktok_signature
from connectors.tiktok import INVENTORY_PATH, MAX_QUANTITY, TOO_MANY_REQUESTS, api_sign
from lockstock.catalog import Catalog

SIGN_WINDOW_S = 300
INVALID_PARAM = 36009004  # TikTok's "invalid param error"
BAD_SIGNATURE, BAD_TOKEN = 106001, 105002
UNKNOWN_SKU = 12019000  # the fake's own product-level business error (the adapter reads any code)


class FakeTikTok(FakeMarketplace):
    platform = "tiktok"

    def __init__(self, *, app_key: str, app_secret: str, access_token: str, shops: Mapping[str, str],
                 listings: Mapping[str, Mapping[str, Mapping[str, str]]], order_status: str = "AWAITING_SHIPMENT",
                 gateway_url: str = "", rate_capacity: float = 2.0, rate_per_s: float = 2.0) -> None:
        """``shops``: shop_id -> shop_cipher; ``listings``: shop_id -> seller SKU -> {product_id, sku_id}."""
        super().__init__(gateway_url=gateway_url, rate_capacity=rate_capacity, rate_per_s=rate_per_s)
        self.app_key, self.app_secret, self.access_token = app_key, app_secret, access_token
        self.shop_of_cipher = {cipher: shop for shop, cipher in shops.items()}
        self.listings = {shop: {sku: dict(ids) for sku, ids in skus.items()} for shop, skus in listings.items()}
        # (shop_id, product_id) -> sku_id -> seller SKU: what an inventory update names
        self.skus_of_product: dict[tuple[str, str], dict[str, str]] = {}
        for shop, skus in self.listings.items():
            for sku, ids in skus.items():
                self.skus_of_product.setdefault((shop, str(ids["product_id"])), {})[str(ids["sku_id"])] = sku
        self.order_status = order_status

    @classmethod
    def for_catalog(cls, catalog: Catalog, **kwargs: Any) -> "FakeTikTok":
        """A fake serving every tiktok channel of ``catalog`` (account, connector.shop_cipher, skus)."""
        channels = [c for c in catalog.channels.values() if c.platform == "tiktok" and not c.store]
        return cls(shops={c.account: c.connector["shop_cipher"] for c in channels},
                   listings={c.account: c.connector.get("skus", {}) for c in channels}, **kwargs)

    def routes(self) -> list[web.RouteDef]:
        return [web.post(INVENTORY_PATH, self.update_inventory)]

    # ---- Update Inventory ------------------------------------------------------------------
    async def update_inventory(self, request: web.Request) -> web.Response:
        query = dict(request.query)
        shop = self.shop_of_cipher.get(query.get("shop_cipher", ""), query.get("shop_cipher", "?"))
        limited = self.throttle(shop)
        if limited is not None:
            return self._answer(TOO_MANY_REQUESTS, "Too many requests. You've made too many requests in a short "
                                "period of time.", status=429, headers={"Retry-After": limited.headers["Retry-After"]})
        body = await request.read()
        refused = self._refuse_auth(request.path, query, request.headers.get("x-tts-access-token", ""), body)
        if refused is not None:
            return refused
        if shop not in self.listings:
            return self._bad_shape(f"shop_cipher {query.get('shop_cipher')!r} is not an authorized shop")
        product = request.match_info["product_id"]
        known = self.skus_of_product.get((shop, product))
        if known is None:
            return self._bad_shape(f"product {product} does not belong to shop {shop}")
        try:
            updates = parse_skus(body)
        except ValueError as exc:
            return self._bad_shape(str(exc))
        errors = []
        for sku_id, quantity in updates:
            if sku_id in known:
                self.set_quantity(shop, known[sku_id], quantity)
            else:
                self.counters["unknown_sku"] += 1
                errors.append({"code": UNKNOWN_SKU, "message": f"sku {sku_id} not found under product {product}",
                               "detail": {"sku_id": sku_id, "extra_errors": []}})
        return self._answer(0, "Success", data={"errors": errors} if errors else {})

    def _refuse_auth(self, path: str, query: dict[str, str], token: str, body: bytes) -> web.Response | None:
        if query.get("app_key") != self.app_key:
            return self._unauthorized(INVALID_PARAM, "Invalid credentials. Invalid `app_key` query parameter.")
        timestamp = query.get("timestamp", "")
        if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > SIGN_WINDOW_S:
            return self._unauthorized(INVALID_PARAM, "Invalid timestamp. The value of the `timestamp` query "
                                      "parameter must not be earlier than 5 minutes before the current time.")
        if query.get("sign") != api_sign(self.app_secret, path, query, body):
            return self._unauthorized(BAD_SIGNATURE, "Invalid signature.")
        if token != self.access_token:
            return self._unauthorized(BAD_TOKEN, "Invalid credentials. The `x-tts-access-token` header is invalid.")
        return None

    def _answer(self, code: int, message: str, status: int = 200, data: Any = None,
                headers: Mapping[str, str] | None = None) -> web.Response:
        payload = {"code": code, "message": message, "request_id": f"fake{next(self._ids):012d}",
                   **({"data": data} if data is not None else {})}
        return web.json_response(payload, status=status, headers=headers)

    def _unauthorized(self, code: int, message: str) -> web.Response:
        self.counters["bad_signature"] += 1
        return self._answer(code, message, status=401)

    def _bad_shape(self, reason: str) -> web.Response:
        self.counters["bad_shape"] += 1
        return self._answer(INVALID_PARAM, f"invalid param error: {reason}", status=400)

    # ---- webhooks --------------------------------------------------------------------------
    def order_webhook(self, sale: Sale) -> tuple[str, dict[str, str], bytes]:
        return self.status_webhook(sale, self.order_status, with_lines=True)

    def status_webhook(self, sale: Sale, status: str, with_lines: bool = False) -> tuple[str, dict[str, str], bytes]:
        """ORDER_STATUS_CHANGE for ``sale``; ``with_lines`` adds Get Order Detail's lines (enriched)."""
        now = int(time.time())
        data: dict[str, Any] = {"order_id": sale.order_id, "order_status": status, "update_time": now,
                                "is_on_hold_order": False}
        if with_lines:
            ids = self.listings.get(sale.account, {}).get(sale.sku, {})
            data.update(create_time=int(sale.at), user_id=sale.buyer, line_items=[
                {"seller_sku": sale.sku, "quantity": sale.qty, "product_id": ids.get("product_id", ""),
                 "sku_id": ids.get("sku_id", "")}])
        body = json.dumps({"type": 1, "tts_notification_id": f"{now}{next(self._ids):07d}", "shop_id": sale.account,
                           "timestamp": now, "data": data}).encode()
        headers = {"Authorization": tiktok_signature(self.app_secret, self.app_key, body),
                   "Content-Type": "application/json"}
        return "/webhooks/tiktok", headers, body

    async def deliver_event(self, sale: Sale, status: str, attempts: int = 8) -> bool:
        """Deliver a later status of ``sale`` (CANCELLED, IN_TRANSIT, ...); True once answered 2xx."""
        path, headers, body = self.status_webhook(sale, status)
        return await self.post_to_gateway(path, headers, body, attempts)


def parse_skus(body: bytes) -> list[tuple[str, int]]:
    """(sku_id, quantity) of an Update Inventory body; ValueError saying what is wrong."""
    try:
        payload = json.loads(body)
    except ValueError:
        raise ValueError("body is not JSON") from None
    skus = payload.get("skus") if isinstance(payload, dict) else None
    if not isinstance(skus, list) or not skus:
        raise ValueError("skus must be a non-empty list")
    updates = []
    for i, sku in enumerate(skus):
        if not isinstance(sku, dict) or not isinstance(sku.get("id"), str) or not sku["id"]:
            raise ValueError(f"skus[{i}].id must be a string")
        inventory = sku.get("inventory")
        if not isinstance(inventory, list) or not inventory:
            raise ValueError(f"skus[{i}].inventory must be a non-empty list")
        total = 0
        for entry in inventory:
            quantity = entry.get("quantity") if isinstance(entry, dict) else None
            if not is_whole(quantity) or not 0 <= quantity <= MAX_QUANTITY:
                raise ValueError(f"skus[{i}].inventory quantity must be 0..{MAX_QUANTITY}, got {quantity!r}")
            if "warehouse_id" in entry and not isinstance(entry["warehouse_id"], str):
                raise ValueError(f"skus[{i}].inventory warehouse_id must be a string")
            total += quantity  # one advertised quantity per SKU: the warehouses add up
        updates.append((sku["id"], total))
    return updates
