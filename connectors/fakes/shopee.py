"""A fake Shopee Open Platform v2: v2.product.update_stock and signed order status pushes.

It checks our requests the way Shopee does (partner_id, a timestamp within 5 minutes, the
shop-level ``sign``, the shop's access_token; ``error_auth`` with 403 otherwise), the body's shape
(``item_id``, 1..50 ``stock_list`` entries with ``model_id`` and ``seller_stock[].stock``),
throttles per shop (429), keeps the advertised quantity per (shop_id, seller SKU) and reports
unknown models in ``failure_list`` as Shopee does. Its pushes are order_status_push (code 3)
signed with ``Authorization`` = HMAC(partner key, push URL + "|" + body), the push URL being
``gateway_url + "/webhooks/shopee"``, and carry get_order_detail's ``item_list``.
"""

from __future__ import annotations

import json
import time
from typing import Any, Mapping

from aiohttp import web

from connectors.fakes.base import FakeMarketplace, Sale
from connectors.payload import is_whole
from connectors.shopee import MAX_MODELS_PER_CALL, UPDATE_STOCK_PATH, api_sign
from connectors.signatures import shopee_signature
from lockstock.catalog import Catalog

SIGN_WINDOW_S = 300


class FakeShopee(FakeMarketplace):
    platform = "shopee"

    def __init__(self, *, partner_id: int | str, partner_key: str, access_token: str,
                 listings: Mapping[str, Mapping[str, Mapping[str, int]]], order_status: str = "READY_TO_SHIP",
                 gateway_url: str = "", rate_capacity: float = 2.0, rate_per_s: float = 2.0) -> None:
        """``listings``: shop_id -> seller SKU -> {item_id, model_id} (model_id 0: no variations)."""
        super().__init__(gateway_url=gateway_url, rate_capacity=rate_capacity, rate_per_s=rate_per_s)
        self.partner_id, self.partner_key, self.access_token = str(partner_id), partner_key, access_token
        self.listings = {str(shop): {sku: dict(ids) for sku, ids in skus.items()} for shop, skus in listings.items()}
        # (shop_id, item_id) -> model_id -> seller SKU: what an update_stock call names
        self.skus_of_item: dict[tuple[str, int], dict[int, str]] = {}
        for shop, skus in self.listings.items():
            for sku, ids in skus.items():
                self.skus_of_item.setdefault((shop, ids["item_id"]), {})[ids.get("model_id", 0)] = sku
        self.order_status = order_status

    @classmethod
    def for_catalog(cls, catalog: Catalog, **kwargs: Any) -> "FakeShopee":
        """A fake serving every shopee channel of ``catalog`` (account = shop_id, connector.skus)."""
        channels = [c for c in catalog.channels.values() if c.platform == "shopee" and not c.store]
        return cls(listings={c.account: c.connector.get("skus", {}) for c in channels}, **kwargs)

    @property
    def push_url(self) -> str:
        """The push URL registered with Shopee, which the push signature covers."""
        return self.gateway_url + "/webhooks/shopee"

    def routes(self) -> list[web.RouteDef]:
        return [web.post(UPDATE_STOCK_PATH, self.update_stock)]

    # ---- update_stock ----------------------------------------------------------------------
    async def update_stock(self, request: web.Request) -> web.Response:
        query = dict(request.query)
        shop = query.get("shop_id", "?")
        limited = self.throttle(shop)
        if limited is not None:
            return self._answer("error_rate_limit", "Too many requests, please try again later.", status=429,
                                headers={"Retry-After": limited.headers["Retry-After"]})
        refused = self._refuse_auth(query)
        if refused is not None:
            return refused
        if shop not in self.listings:
            return self._bad_shape(f"shop_id {shop} is not authorized to this partner")
        try:
            item_id, stocks = parse_stock_list(await request.read())
        except ValueError as exc:
            return self._bad_shape(str(exc))
        models = self.skus_of_item.get((shop, item_id))
        if models is None:
            self.counters["unknown_item"] += 1
            return self._answer("error_item_not_found", f"item_id {item_id} not found in shop {shop}")
        success, failure = [], []
        for model_id, seller_stock in stocks:
            if model_id not in models:
                self.counters["unknown_model"] += 1
                failure.append({"model_id": model_id, "failed_reason": f"model_id {model_id} not found"})
                continue
            self.set_quantity(shop, models[model_id], sum(entry["stock"] for entry in seller_stock))
            success.append({"model_id": model_id, "seller_stock": seller_stock})
        return self._answer("", "", response={"success_list": success, "failure_list": failure})

    def _refuse_auth(self, query: dict[str, str]) -> web.Response | None:
        timestamp = query.get("timestamp", "")
        if query.get("partner_id") != self.partner_id:
            return self._forbidden("error_auth", "Invalid partner_id.")
        if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > SIGN_WINDOW_S:
            return self._forbidden("error_auth", "Invalid timestamp.")
        expected = api_sign(self.partner_key, self.partner_id, UPDATE_STOCK_PATH, int(timestamp),
                            query.get("access_token", ""), query.get("shop_id", ""))
        if query.get("sign") != expected:
            return self._forbidden("error_sign", "Wrong sign.")
        if query.get("access_token") != self.access_token:
            return self._forbidden("invalid_access_token", "Invalid access_token.")
        return None

    def _answer(self, error: str, message: str, status: int = 200, response: Any = None,
                headers: Mapping[str, str] | None = None) -> web.Response:
        payload = {"error": error, "message": message, "warning": "", "request_id": f"fake{next(self._ids):012d}",
                   **({"response": response} if response is not None else {})}
        return web.json_response(payload, status=status, headers=headers)

    def _forbidden(self, error: str, message: str) -> web.Response:
        self.counters["bad_signature"] += 1
        return self._answer(error, message, status=403)

    def _bad_shape(self, reason: str) -> web.Response:
        self.counters["bad_shape"] += 1
        return self._answer("error_param", reason, status=400)

    # ---- pushes ----------------------------------------------------------------------------
    def order_webhook(self, sale: Sale) -> tuple[str, dict[str, str], bytes]:
        return self.status_webhook(sale, self.order_status, with_lines=True)

    def status_webhook(self, sale: Sale, status: str, with_lines: bool = False) -> tuple[str, dict[str, str], bytes]:
        """order_status_push for ``sale``; ``with_lines`` adds get_order_detail's item_list (enriched)."""
        now = int(time.time())
        data: dict[str, Any] = {"items": [], "ordersn": sale.order_id, "status": status, "completed_scenario": "",
                                "update_time": now}
        if with_lines:
            ids = self.listings.get(sale.account, {}).get(sale.sku, {})
            data.update(create_time=int(sale.at), buyer_user_id=sale.buyer, item_list=[
                {"item_id": ids.get("item_id", 0), "model_id": ids.get("model_id", 0), "item_sku": "",
                 "model_sku": sale.sku, "model_quantity_purchased": sale.qty}])
        shop_id: int | str = int(sale.account) if sale.account.isdigit() else sale.account
        body = json.dumps({"msg_id": f"{now}{next(self._ids):07d}", "data": data, "shop_id": shop_id, "code": 3,
                           "timestamp": now}).encode()
        headers = {"Authorization": shopee_signature(self.partner_key, self.push_url, body),
                   "Content-Type": "application/json"}
        return "/webhooks/shopee", headers, body

    async def deliver_event(self, sale: Sale, status: str, attempts: int = 8) -> bool:
        """Push a later status of ``sale`` (CANCELLED, SHIPPED, ...); True once answered 2xx."""
        path, headers, body = self.status_webhook(sale, status)
        return await self.post_to_gateway(path, headers, body, attempts)


def parse_stock_list(body: bytes) -> tuple[int, list[tuple[int, list[dict[str, Any]]]]]:
    """(item_id, [(model_id, seller_stock)]) of an update_stock body; ValueError saying what is wrong."""
    try:
        payload = json.loads(body)
    except ValueError:
        raise ValueError("body is not JSON") from None
    if not isinstance(payload, dict) or not is_whole(payload.get("item_id")):
        raise ValueError("item_id must be a number")
    stock_list = payload.get("stock_list")
    if not isinstance(stock_list, list) or not 1 <= len(stock_list) <= MAX_MODELS_PER_CALL:
        raise ValueError(f"stock_list length should be between 1 to {MAX_MODELS_PER_CALL}")
    stocks = []
    for i, entry in enumerate(stock_list):
        model_id = entry.get("model_id", 0) if isinstance(entry, dict) else None
        seller_stock = entry.get("seller_stock") if isinstance(entry, dict) else None
        if not is_whole(model_id):
            raise ValueError(f"stock_list[{i}].model_id must be a number")
        if not isinstance(seller_stock, list) or not seller_stock:
            raise ValueError(f"stock_list[{i}].seller_stock must be a non-empty list")
        for stock in seller_stock:
            if not isinstance(stock, dict) or not is_whole(stock.get("stock")) or stock["stock"] < 0:
                raise ValueError(f"stock_list[{i}].seller_stock[].stock must be a whole number >= 0")
            if "location_id" in stock and not isinstance(stock["location_id"], str):
                raise ValueError(f"stock_list[{i}].seller_stock[].location_id must be a string")
        stocks.append((model_id, seller_stock))
    return payload["item_id"], stocks
