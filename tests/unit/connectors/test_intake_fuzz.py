"""Fuzzed deliveries: whatever a signed body holds, every platform's intake answers with an
Intake or a PayloadError (the gateway's 400 + dead letter) -- never another exception, which
would be an adapter bug (the gateway would still answer 400, but the reason would be a stack
trace, not a reason)."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings, strategies as st

from connectors.amazon import AmazonNotifications
from connectors.base import Intake, PayloadError, Webhook
from connectors.config import webhook_adapters
from lockstock.catalog import catalog_from_dict, load_catalog

_DATA = load_catalog().to_dict()
_DATA["channels"]["site-us"] = {"platform": "generic", "region": "US"}
CATALOG = catalog_from_dict(_DATA, "fuzz catalog")
ENV = {"LOCKSTOCK_SHOPIFY_SECRET": "s", "LOCKSTOCK_TIKTOK_SECRET": "s", "LOCKSTOCK_SHOPEE_PARTNER_KEY": "s",
       "LOCKSTOCK_GENERIC_SECRET": "s"}
CATALOG.connectors.setdefault("tiktok", {})["app_key"] = "k"
ADAPTERS = webhook_adapters(CATALOG, ENV)

junk = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


def maybe(value):
    """The plausible value, or junk, or (as None from draw) a missing key."""
    return st.one_of(st.just(value), junk)


def shaped(template: dict) -> st.SearchStrategy:
    """Dicts with the template's keys, each value plausible or junk, some keys dropped."""
    def field(value):
        if isinstance(value, dict):
            return shaped(value)
        if isinstance(value, list) and value and isinstance(value[0], dict):
            return st.one_of(st.lists(shaped(value[0]), max_size=3), junk)
        return maybe(value)
    return st.fixed_dictionaries({}, optional={k: field(v) for k, v in template.items()})


SHOPIFY = {"id": 820982911946154508, "created_at": "2026-11-24T20:15:03-05:00", "email": "a@b.c",
           "customer": {"id": 115310627314723954}, "source_name": "1780363", "app_id": 1780363,
           "line_items": [{"sku": "TEE", "quantity": 1}], "shipping_address": {"country_code": "US"},
           "cancel_reason": "customer", "cancelled_at": "2026-11-24T20:16:03-05:00"}
TIKTOK = {"type": 1, "tts_notification_id": "7327", "shop_id": "7494000000000000001", "timestamp": 1795000000,
          "data": {"order_id": "576461413038785752", "order_status": "AWAITING_SHIPMENT", "update_time": 1795000000,
                   "line_items": [{"seller_sku": "TEE", "quantity": 1}]}}
SHOPEE = {"code": 3, "shop_id": 300000001, "timestamp": 1795000000,
          "data": {"ordersn": "2311240001", "status": "READY_TO_SHIP", "update_time": 1795000000,
                   "item_list": [{"model_sku": "TEE", "model_quantity_purchased": 1}]}}
GENERIC = {"event_id": "e1", "type": "order.created",
           "order": {"id": "1", "channel": "site-us", "buyer_id": "b", "placed_at": 1795000000000,
                     "lines": [{"sku": "TEE", "qty": 1}]}}
AMAZON = {"NotificationVersion": "1.0", "NotificationType": "ORDER_CHANGE", "PayloadVersion": "1.0",
          "EventTime": "2026-11-24T20:15:03Z",
          "Payload": {"OrderChangeNotification": {"NotificationLevel": "OrderLevel", "SellerId": "A2", "AmazonOrderId": "113-1",
                                                  "OrderChangeType": "OrderStatusChange",
                                                  "Summary": {"MarketplaceId": "ATVPDKIKX0DER", "OrderStatus": "Unshipped",
                                                              "PurchaseDate": "2026-11-24T20:15:03Z",
                                                              "OrderItems": [{"OrderItemId": "1", "SellerSKU": "TEE", "Quantity": 1}]}}},
          "NotificationMetadata": {"NotificationId": "n1", "PublishTime": "2026-11-24T20:15:04Z"}}
HEADERS = {
    "shopify": st.fixed_dictionaries({"x-shopify-topic": st.sampled_from(["orders/create", "orders/paid", "orders/cancelled",
                                                                            "orders/fulfilled", "products/update", ""]),
                                      "x-shopify-webhook-id": st.text(max_size=10),
                                      "x-shopify-shop-domain": st.sampled_from(["breezestyle.myshopify.com", "x", ""])}),
    "tiktok": st.just({}), "shopee": st.just({}), "generic": st.just({}),
}
TEMPLATES = {"shopify": SHOPIFY, "tiktok": TIKTOK, "shopee": SHOPEE, "generic": GENERIC}


def check(outcome_of) -> None:
    try:
        outcome = outcome_of()
    except PayloadError as exc:
        assert str(exc)  # a reason for the platform's developer
        return
    assert isinstance(outcome, Intake) and isinstance(outcome.delivery_id, str)
    for emit in outcome.records:
        assert emit.record in ("OrderPlaced", "OrderEvent") and emit.key == emit.value["order_id"]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), platform=st.sampled_from(sorted(TEMPLATES)))
def test_webhook_intake_never_raises_anything_but_payload_error(data, platform):
    body = data.draw(st.one_of(shaped(TEMPLATES[platform]).map(lambda d: json.dumps(d).encode()),
                               junk.map(lambda d: json.dumps(d).encode()), st.binary(max_size=64)))
    headers = data.draw(HEADERS[platform])
    adapter = ADAPTERS[platform]
    check(lambda: adapter.intake(Webhook(platform, "https://hooks.example.com/webhooks/" + platform, headers, body, 0)))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=st.one_of(shaped(AMAZON).map(lambda d: json.dumps(d).encode()), st.binary(max_size=64),
                      shaped(AMAZON).map(lambda d: json.dumps({"Type": "Notification", "Message": json.dumps(d)}).encode())))
def test_amazon_notification_intake_never_raises_anything_but_payload_error(body):
    check(lambda: AmazonNotifications(CATALOG).intake(body))
