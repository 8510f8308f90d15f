"""A local Shopify: the GraphQL Admin API's ``inventorySetQuantities`` and signed ``orders/*`` webhooks.

Like the real one it checks ``X-Shopify-Access-Token`` (401), charges query cost to a leaky bucket per
shop and answers an empty bucket with HTTP 200 + a THROTTLED error (not a 429), reports
``extensions.cost.throttleStatus`` on every answer, validates the mutation's variables, and applies a
mutation all or nothing: any userError (a stale compareQuantity, an unknown item) and no quantity of
it is set. Its one addition: a stale compare says the persisted quantity ("persisted quantity: N"),
which real Shopify leaves out. Sales can come from the online store or from a channel app
(``sell(..., source="youtube")``), so a test can play a YouTube or Instagram order.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import time
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping

from aiohttp import web

from connectors.fakes.base import FakeMarketplace, Sale
from connectors.shopify import (
    API_VERSION, DEFAULT_COST_BUCKET, DEFAULT_RESTORE_PER_S, MAX_BATCH, MUTATION_COST, PROBE_COST, gid,
)
from connectors.signatures import shopify_signature
from lockstock.catalog import Catalog

# source nickname -> (source_name, app_id) as Shopify writes them on the order
CHANNEL_APPS = {"web": ("web", 580111), "youtube": ("1780363", 1780363), "instagram": ("2329312", 2329312)}
# the documented reasons of inventorySetQuantities
REASONS = {
    "correction", "cycle_count_available", "damaged", "movement_canceled", "movement_created",
    "movement_received", "movement_updated", "other", "promotion", "quality_control", "received",
    "reservation_created", "reservation_deleted", "reservation_updated", "restock", "safety_stock", "shrinkage",
}
EVENT_TOPICS = {"paid": "orders/paid", "cancelled": "orders/cancelled", "fulfilled": "orders/fulfilled"}
MAX_QUANTITY = 1_000_000_000


class FakeShopify(FakeMarketplace):
    platform = "shopify"

    def __init__(self, *, secret: str, access_token: str, shops: Mapping[str, Mapping[str, Any]],
                 api_version: str = API_VERSION, utc_offset_h: int = -4, country_code: str = "US",
                 gateway_url: str = "", rate_capacity: float = DEFAULT_COST_BUCKET,
                 rate_per_s: float = DEFAULT_RESTORE_PER_S) -> None:
        """``shops``: shop domain -> a store channel's connector {location_id, inventory_items {SKU: id}}."""
        super().__init__(gateway_url=gateway_url, rate_capacity=rate_capacity, rate_per_s=rate_per_s)
        self.secret, self.access_token, self.api_version = secret, access_token, api_version
        self.zone = timezone(timedelta(hours=utc_offset_h))  # the shop's time zone, as in its payloads
        self.country_code = country_code
        self.locations = {shop: gid("Location", spec.get("location_id")) for shop, spec in shops.items()}
        self.items = {shop: {gid("InventoryItem", item): sku
                             for sku, item in (spec.get("inventory_items") or {}).items()}
                      for shop, spec in shops.items()}
        self.sources: dict[str, str] = {}  # order id -> source nickname or raw source_name
        self._selling_source = "web"
        self._event_times: dict[tuple[str, str], float] = {}  # (order id, topic): a redelivery is the same body
        self._groups = itertools.count(1)

    @classmethod
    def for_catalog(cls, catalog: Catalog, **kwargs: Any) -> "FakeShopify":
        """One shop per Shopify store channel of ``catalog`` (its account and connector)."""
        shops = {c.account: c.connector for c in catalog.channels.values()
                 if c.platform == "shopify" and not c.store and c.account}
        return cls(shops=shops, **kwargs)

    @property
    def base_url(self) -> str:
        """What ``connectors.shopify.base_url`` is for this fake."""
        return f"{self.url}/admin/api/{self.api_version}"

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/admin/api/{version}/graphql.json", self._graphql)]

    # ---- the Admin API ---------------------------------------------------------------------
    async def _graphql(self, request: web.Request) -> web.Response:
        if request.headers.get("X-Shopify-Access-Token", "") != self.access_token:
            self.counters["bad_signature"] += 1
            return web.json_response({"errors": "[API] Invalid API key or access token "
                                                "(unrecognized login or wrong password)"}, status=401)
        if not re.fullmatch(r"\d{4}-\d{2}", request.match_info["version"]):
            return self.refuse("bad_shape", 404, f"no API version {request.match_info['version']}")
        shop = self._shop(request)
        if shop is None:
            return self.refuse("bad_shape", 404, "unknown shop")
        try:
            doc = json.loads(await request.read())
        except ValueError:
            doc = None
        if not isinstance(doc, dict) or not isinstance(doc.get("query"), str):
            self.counters["bad_shape"] += 1
            return web.json_response({"errors": {"query": "Required parameter missing or invalid"}}, status=400)
        query = doc["query"]
        if "inventorySetQuantities" in query:
            cost = MUTATION_COST
        elif re.search(r"\bshop\s*\{", query):
            cost = PROBE_COST
        else:
            return self._graphql_error(shop, 0, "the fake serves only inventorySetQuantities and shop { id }")
        if self.throttle(shop, cost) is not None:  # counted there; Shopify says it with a 200
            return web.json_response({
                "errors": [{"message": "Throttled", "extensions": {
                    "code": "THROTTLED", "documentation": "https://shopify.dev/api/usage/rate-limits"}}],
                "extensions": self._cost(shop, cost, None)})
        if cost == PROBE_COST:
            return web.json_response({"data": {"shop": {"id": "gid://shopify/Shop/1"}},
                                      "extensions": self._cost(shop, cost, cost)})
        return self._set_quantities(shop, cost, doc.get("variables"))

    def _shop(self, request: web.Request) -> str | None:
        """The shop is the host on real Shopify; locally the Host header, else the only shop."""
        host = request.headers.get("Host", "").split(":")[0]
        if host in self.items:
            return host
        return next(iter(self.items)) if len(self.items) == 1 else None

    def _set_quantities(self, shop: str, cost: float, variables: Any) -> web.Response:
        problem, entries = _shape_problem(variables)
        if problem:
            return self._graphql_error(shop, cost, problem)
        spec = variables["input"]
        errors = self._user_errors(shop, spec, entries)
        if errors:
            self.counters["user_errors"] += 1
            if any(e["code"] == "COMPARE_QUANTITY_STALE" for e in errors):
                self.counters["compare_refused"] += 1
            group = None
        else:  # every check passed: apply them all (the loop runs nothing else in between)
            for entry in entries:
                self.set_quantity(shop, self.items[shop][entry["inventoryItemId"]], entry["quantity"])
            group = {"id": f"gid://shopify/InventoryAdjustmentGroup/{next(self._groups)}"}
        return web.json_response({"data": {"inventorySetQuantities": {"inventoryAdjustmentGroup": group,
                                                                       "userErrors": errors}},
                                  "extensions": self._cost(shop, cost, cost)})

    def _user_errors(self, shop: str, spec: dict, entries: list[dict]) -> list[dict]:
        errors = []
        if spec["name"] != "available":
            errors.append(_user_error("INVALID_NAME", ["input", "name"], "The fake sets only 'available'."))
        if spec["reason"] not in REASONS:
            errors.append(_user_error("INVALID_REASON", ["input", "reason"], "The specified reason is invalid."))
        ignore, seen = spec.get("ignoreCompareQuantity") is True, set()
        for index, entry in enumerate(entries):
            path = ["input", "quantities", str(index)]
            item, sku = entry["inventoryItemId"], self.items[shop].get(entry["inventoryItemId"])
            if entry["locationId"] != self.locations.get(shop):
                errors.append(_user_error("INVALID_LOCATION", path + ["locationId"],
                                          "The specified location could not be found."))
            elif sku is None:
                errors.append(_user_error("INVALID_INVENTORY_ITEM", path + ["inventoryItemId"],
                                          "The specified inventory item could not be found."))
            elif item in seen:
                errors.append(_user_error("NO_DUPLICATE_INVENTORY_ITEM_ID_GROUP_ID_PAIR", path,
                                          "The combination of inventoryItemId and locationId must be unique."))
            elif entry["quantity"] < 0:
                errors.append(_user_error("INVALID_QUANTITY_NEGATIVE", path + ["quantity"],
                                          "The quantity can't be negative."))
            elif entry["quantity"] > MAX_QUANTITY:
                errors.append(_user_error("INVALID_QUANTITY_TOO_HIGH", path + ["quantity"],
                                          "The total quantity can't be higher than 1,000,000,000."))
            elif not ignore and entry.get("compareQuantity") is None:
                errors.append(_user_error("COMPARE_QUANTITY_REQUIRED", path + ["compareQuantity"],
                                          "The compareQuantity argument must be given to each quantity or "
                                          "ignored using ignoreCompareQuantity."))
            elif not ignore and entry["compareQuantity"] != self.quantity.get((shop, sku), 0):
                errors.append(_user_error("COMPARE_QUANTITY_STALE", path + ["compareQuantity"],
                                          "The compareQuantity value does not match persisted value. "
                                          f"Persisted quantity: {self.quantity.get((shop, sku), 0)}"))
            seen.add(item)
        return errors

    def _graphql_error(self, shop: str, cost: float, message: str) -> web.Response:
        """A query Shopify cannot run: HTTP 200 with top-level errors, as GraphQL does."""
        self.counters["bad_shape"] += 1
        return web.json_response({"errors": [{"message": message}], "extensions": self._cost(shop, cost, cost)})

    def _cost(self, shop: str, requested: float, actual: float | None) -> dict:
        limiter = self._limiters.get(shop)
        available = limiter.tokens if limiter else self._rate[0]
        return {"cost": {"requestedQueryCost": requested, "actualQueryCost": actual, "throttleStatus": {
            "maximumAvailable": float(self._rate[0]), "currentlyAvailable": round(available, 3),
            "restoreRate": float(self._rate[1])}}}

    # ---- orders and webhooks ---------------------------------------------------------------
    async def sell(self, account: str, sku: str, qty: int = 1, buyer: str = "buyer",
                   source: str = "web") -> Sale | None:
        """As the base, from ``source``: "web", "youtube", "instagram" or a raw source_name."""
        self._selling_source = source  # read by deliver() before the sale's first await
        return await super().sell(account, sku, qty, buyer)

    def deliver(self, sale: Sale) -> None:
        self.sources.setdefault(sale.order_id, self._selling_source)
        return None  # the base posts order_webhook(sale)

    def order_payload(self, sale: Sale, topic: str = "orders/create") -> dict[str, Any]:
        """The Order resource as Shopify sends it on ``topic``."""
        source = self.sources.get(sale.order_id, "web")
        source_name, app_id = CHANNEL_APPS.get(source, (source, None))
        created = self._iso(sale.at)
        number = int(sale.order_id)
        order: dict[str, Any] = {
            "id": number, "admin_graphql_api_id": f"gid://shopify/Order/{number}",
            "name": f"#{1000 + int(sale.order_id[-6:])}",  # the fake's order counter
            "email": f"{sale.buyer}@example.com", "created_at": created, "updated_at": created,
            "processed_at": created, "currency": "USD", "financial_status": "pending",
            "fulfillment_status": None, "cancelled_at": None, "cancel_reason": None,
            "source_name": source_name, "app_id": app_id, "test": False,
            "customer": {"id": _customer_id(sale.buyer), "email": f"{sale.buyer}@example.com"},
            "line_items": [{"id": number + 1, "variant_id": _stable_id(sale.sku), "sku": sale.sku,
                            "quantity": sale.qty, "title": sale.sku, "price": "0.00", "requires_shipping": True}],
            "shipping_address": {"country_code": self.country_code},
        }
        if topic != "orders/create":
            when = self._iso(self._event_times.setdefault((sale.order_id, topic), time.time()))
            order["updated_at"] = when
            if topic == "orders/paid":
                order["financial_status"] = "paid"
            elif topic == "orders/cancelled":
                order.update(cancelled_at=when, cancel_reason="customer", financial_status="voided")
            elif topic == "orders/fulfilled":
                location = (self.locations.get(sale.account) or "gid://shopify/Location/0").rsplit("/", 1)[-1]
                order.update(fulfillment_status="fulfilled", fulfillments=[
                    {"id": number + 2, "location_id": int(location), "status": "success", "created_at": when}])
        return order

    def order_webhook(self, sale: Sale) -> tuple[str, dict[str, str], bytes]:
        return self._signed(sale, "orders/create")

    def paid_webhook(self, sale: Sale) -> tuple[str, dict[str, str], bytes]:
        return self._signed(sale, "orders/paid")

    def cancelled_webhook(self, sale: Sale) -> tuple[str, dict[str, str], bytes]:
        return self._signed(sale, "orders/cancelled")

    def fulfilled_webhook(self, sale: Sale) -> tuple[str, dict[str, str], bytes]:
        return self._signed(sale, "orders/fulfilled")

    async def deliver_event(self, sale: Sale, kind: str, attempts: int = 8) -> bool:
        """Send the order's "paid" / "cancelled" / "fulfilled" webhook, retrying like Shopify."""
        path, headers, body = self._signed(sale, EVENT_TOPICS[kind])
        return await self.post_to_gateway(path, headers, body, attempts)

    def _signed(self, sale: Sale, topic: str) -> tuple[str, dict[str, str], bytes]:
        body = json.dumps(self.order_payload(sale, topic)).encode()
        first = sale.at if topic == "orders/create" else time.time()
        triggered = self._event_times.setdefault((sale.order_id, topic), first)
        headers = {
            "Content-Type": "application/json",
            "X-Shopify-Topic": topic,
            "X-Shopify-Hmac-Sha256": shopify_signature(self.secret, body),
            "X-Shopify-Shop-Domain": sale.account,
            "X-Shopify-Api-Version": self.api_version,
            # one id per (shop, topic, order): every retry of this delivery carries the same one
            "X-Shopify-Webhook-Id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{sale.account}/{topic}/{sale.order_id}")),
            "X-Shopify-Triggered-At": datetime.fromtimestamp(triggered, timezone.utc).isoformat(),
        }
        return "/webhooks/shopify", headers, body

    def _iso(self, epoch_s: float) -> str:
        return datetime.fromtimestamp(int(epoch_s), self.zone).isoformat()


def _shape_problem(variables: Any) -> tuple[str, list[dict]]:
    """Why ``variables`` do not fit InventorySetQuantitiesInput! (GraphQL's own coercion), else ""."""
    spec = variables.get("input") if isinstance(variables, dict) else None
    if not isinstance(spec, dict):
        return "Variable $input of type InventorySetQuantitiesInput! was provided invalid value", []
    for key in ("name", "reason"):
        if not isinstance(spec.get(key), str):
            return f"Variable $input: {key} must be a String!", []
    if "ignoreCompareQuantity" in spec and not isinstance(spec["ignoreCompareQuantity"], bool):
        return "Variable $input: ignoreCompareQuantity must be a Boolean", []
    entries = spec.get("quantities")
    if not isinstance(entries, list) or not entries:
        return "Variable $input: quantities must be a non-empty list", []
    if len(entries) > MAX_BATCH:
        return f"The input array size of {len(entries)} is greater than the maximum allowed of {MAX_BATCH}.", []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            return f"Variable $input: quantities[{index}] is not an InventoryQuantityInput", []
        for key in ("inventoryItemId", "locationId"):
            if not isinstance(entry.get(key), str):
                return f"Variable $input: quantities[{index}].{key} must be an ID!", []
        for key, required in (("quantity", True), ("compareQuantity", False)):
            value = entry.get(key)
            not_int = value is not None and (isinstance(value, bool) or not isinstance(value, int))
            if not_int or (value is None and required):
                return f"Variable $input: quantities[{index}].{key} must be an Int", []
    return "", entries


def _user_error(code: str, field: list[str], message: str) -> dict[str, Any]:
    return {"code": code, "field": field, "message": message}


def _stable_id(text: str) -> int:
    return int(hashlib.sha256(text.encode()).hexdigest()[:12], 16)


def _customer_id(buyer: str) -> int:
    return _stable_id(f"customer:{buyer}")
