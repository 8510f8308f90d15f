"""Shopify: webhook signatures and intake, the inventorySetQuantities pusher, and the fake end to end.

Signature vectors were computed with `openssl dgst -sha256 -hmac SECRET -binary | base64` over
ORDER_BODY, byte for byte."""

from __future__ import annotations

import json
import socket
import time

import pytest
from aiohttp import web

from connectors.base import (
    REGISTRY, ApiCall, Intake, NotConfigured, PayloadError, StockPush, Webhook, order_placed,
)
from connectors.fakes.base import Sale
from connectors.fakes.shopify import FakeShopify
from connectors.shopify import SET_QUANTITIES, ShopifyStockPusher, ShopifyWebhooks
from connectors.signatures import SignatureError
from lockstock.catalog import catalog_from_dict
from tests.builders import catalog_of
from tests.unit.connectors.helpers import send

SECRET = "shpss_test_secret"
TOKEN = "shpat_test_token"
SHOP = "breezestyle.myshopify.com"
WEBHOOK_ID = "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"
ORDER_BODY = (b'{"id":820982911946154508,"email":"jon@example.com","created_at":"2024-03-05T10:00:00-05:00",'
              b'"source_name":"web","app_id":580111,"customer":{"id":115310627314723954},"line_items":'
              b'[{"sku":"SKU-1","quantity":2},{"sku":"SKU-2","quantity":1}],"shipping_address":{"country_code":"DE"}}')
ORDER_SIG = "KzjHMDEW/OrgkyRpjMgY32GH+cbPGCfMLpIdl0gYKic="  # secret "shpss_test_secret"
ORDER_SIG_OTHER_SECRET = "79W6Z2uKInO2Vo5eH37pwwI6YZRtPQsJjPXgIKsIS7Y="  # secret "another-secret"
PLACED_AT = 1_709_650_800_000  # 2024-03-05T10:00:00-05:00
LOCATION = "gid://shopify/Location/1"
ITEM_1, ITEM_2 = "gid://shopify/InventoryItem/11", "gid://shopify/InventoryItem/12"


def make_catalog(**shopify_settings):
    """The shop's channels in the US and EU, with ``shopify_settings`` in the connector section."""
    return catalog_of({
        "shopify": {"platform": "shopify", "region": "US", "account": SHOP, "connector": {
            "location_id": LOCATION, "inventory_items": {"SKU-1": ITEM_1, "SKU-2": 12},
            "warehouses": {"1": "LA"}}},
        "youtube-us": {"platform": "youtube", "region": "US", "store": "shopify",
                       "connector": {"source": "1780363"}},
        "instagram-us": {"platform": "instagram", "region": "US", "store": "shopify",
                         "connector": {"source": ["2329312", "instagram"]}},
        "tiktok-us": {"platform": "tiktok", "region": "US"},
    }, connectors={"shopify": {"country_regions": {"de": "EU", "US": "US"}, **shopify_settings}})


CATALOG = make_catalog()


def adapter(catalog=CATALOG):
    return ShopifyWebhooks(catalog, SECRET, catalog.connectors["shopify"])


def hook(body=ORDER_BODY, topic="orders/create", **headers):
    base = {"x-shopify-topic": topic, "x-shopify-hmac-sha256": ORDER_SIG, "x-shopify-shop-domain": SHOP,
            "x-shopify-webhook-id": WEBHOOK_ID}
    base.update({k.replace("_", "-"): v for k, v in headers.items()})
    return Webhook("shopify", "https://gw.example.com/webhooks/shopify", {k: v for k, v in base.items() if v is not None},
                   body, received_at=1_709_700_000_000)


def order(**changes):
    doc = json.loads(ORDER_BODY)
    doc.update(changes)
    return json.dumps(doc).encode()


# ---- signatures ---------------------------------------------------------------------------------

def test_registered_under_shopify():
    assert REGISTRY.webhooks["shopify"] is ShopifyWebhooks
    assert REGISTRY.pushers["shopify"] is ShopifyStockPusher


def test_known_vector_verifies():
    adapter().verify(hook(), now_s=0)


def test_tampered_body_is_refused():
    with pytest.raises(SignatureError, match="does not match"):
        adapter().verify(hook(ORDER_BODY.replace(b'"quantity":2', b'"quantity":9')), now_s=0)


def test_wrong_secret_is_refused():
    with pytest.raises(SignatureError, match="does not match"):
        adapter().verify(hook(x_shopify_hmac_sha256=ORDER_SIG_OTHER_SECRET), now_s=0)


def test_missing_signature_header_is_refused():
    with pytest.raises(SignatureError, match="missing"):
        adapter().verify(hook(x_shopify_hmac_sha256=None), now_s=0)


# ---- intake -------------------------------------------------------------------------------------

def test_orders_create_is_an_order_placed():
    intake = adapter().intake(hook())
    assert intake.delivery_id == WEBHOOK_ID and intake.ignored == ""
    [emit] = intake.records
    assert (emit.record, emit.key) == ("OrderPlaced", "shopify:820982911946154508")
    assert emit.value == {
        "order_id": "shopify:820982911946154508", "channel": "shopify", "buyer_id": "shopify:115310627314723954",
        "ship_to_region": "EU", "placed_at": PLACED_AT,
        "lines": [{"sku": "SKU-1", "qty": 2}, {"sku": "SKU-2", "qty": 1}],
    }


@pytest.mark.parametrize("source_name, app_id, channel", [
    ("1780363", 1780363, "youtube-us"),  # Google & YouTube app: source_name is its app id
    ("google", 1780363, "youtube-us"),  # a handle, matched on app_id
    ("2329312", 2329312, "instagram-us"),  # Facebook & Instagram app
    ("instagram", None, "instagram-us"),  # a handle listed in connector.source
    ("web", 580111, "shopify"),  # online store
    ("pos", 129785, "shopify"),  # no channel of the store claims it
    (None, None, "shopify"),
])
def test_source_picks_the_stores_channel(source_name, app_id, channel):
    [emit] = adapter().intake(hook(order(source_name=source_name, app_id=app_id))).records
    assert emit.value["channel"] == channel


def test_buyer_falls_back_to_email_then_anonymous():
    [guest] = adapter().intake(hook(order(customer=None, email=" Jon@Example.com "))).records
    assert guest.value["buyer_id"] == "jon@example.com"
    [nobody] = adapter().intake(hook(order(customer={}, email=None))).records
    no_buyer = order_placed("shopify", "820982911946154508", "shopify", "", 0, [("SKU-1", 1)])
    assert nobody.value["buyer_id"] == no_buyer.value["buyer_id"]  # the shared helper's choice


@pytest.mark.parametrize("address", [{"country_code": "BR"}, {}, None, {"country_code": 7}])
def test_unmapped_country_leaves_ship_to_region_empty(address):
    [emit] = adapter().intake(hook(order(shipping_address=address))).records
    assert emit.value["ship_to_region"] == ""


def test_country_regions_naming_an_unknown_region_is_refused():
    with pytest.raises(NotConfigured, match="unknown region"):
        ShopifyWebhooks(CATALOG, SECRET, {"country_regions": {"FR": "Europe"}})


def test_orders_paid_is_a_paid_event_keyed_by_the_webhook_id():
    body = order(financial_status="paid", updated_at="2024-03-05T10:05:00-05:00")
    [emit] = adapter().intake(hook(body, "orders/paid", x_shopify_triggered_at="2024-03-05T15:04:59.123456789Z")).records
    assert (emit.record, emit.key) == ("OrderEvent", "shopify:820982911946154508")
    assert emit.value == {"event_id": f"shopify:{WEBHOOK_ID}", "order_id": "shopify:820982911946154508",
                          "type": "PAID", "channel": "shopify", "occurred_at": PLACED_AT + 299_123,
                          "warehouse": None, "reason": None}


def test_orders_cancelled_carries_the_cancel_reason():
    body = order(source_name="1780363", app_id=1780363, cancelled_at="2024-03-05T10:10:00-05:00",
                 cancel_reason="inventory")
    [emit] = adapter().intake(hook(body, "orders/cancelled")).records
    assert emit.value == {"event_id": f"shopify:{WEBHOOK_ID}", "order_id": "shopify:820982911946154508",
                          "type": "CANCELLED", "channel": "youtube-us", "occurred_at": PLACED_AT + 600_000,
                          "warehouse": None, "reason": "inventory"}


def test_orders_fulfilled_is_shipped_from_the_mapped_location():
    body = order(updated_at="2024-03-05T11:00:00-05:00",
                 fulfillments=[{"id": 1, "location_id": 1, "status": "success"}])
    [emit] = adapter().intake(hook(body, "orders/fulfilled")).records
    assert (emit.value["type"], emit.value["warehouse"], emit.value["occurred_at"]) == ("SHIPPED", "LA", PLACED_AT + 3_600_000)


def test_event_without_any_time_uses_the_receipt_time():
    [emit] = adapter().intake(hook(order(updated_at=None), "orders/paid")).records
    assert emit.value["occurred_at"] == 1_709_700_000_000


def test_an_unreadable_triggered_at_header_is_skipped():
    body = order(updated_at="2024-03-05T10:05:00-05:00")
    [emit] = adapter().intake(hook(body, "orders/paid", x_shopify_triggered_at="last tuesday")).records
    assert emit.value["occurred_at"] == PLACED_AT + 300_000


@pytest.mark.parametrize("topic", ["orders/updated", "products/update", "app/uninstalled"])
def test_other_topics_are_ignored_with_a_reason(topic):
    intake = adapter().intake(hook(b"not even json", topic))
    assert intake == Intake(WEBHOOK_ID, (), ignored=f"topic {topic} is not an order event lockstock acts on")


@pytest.mark.parametrize("headers, message", [
    ({"x_shopify_webhook_id": None}, "X-Shopify-Webhook-Id"),
    ({"x_shopify_webhook_id": "  "}, "X-Shopify-Webhook-Id"),
    ({"x_shopify_topic": None}, "X-Shopify-Topic"),
    ({"x_shopify_shop_domain": None}, "X-Shopify-Shop-Domain"),
    ({"x_shopify_shop_domain": "other.myshopify.com"}, "no shopify channel has account"),
])
def test_missing_or_unknown_headers_are_payload_errors(headers, message):
    with pytest.raises(PayloadError, match=message):
        adapter().intake(hook(**headers))


@pytest.mark.parametrize("body, message", [
    (b"{not json", "not JSON"),
    (b"\xff\xfe\x00garbage", "not JSON"),
    (b"[1, 2]", "JSON list"),
    (b'"order"', "JSON str"),
    (order(id=None), "no id"),
    (order(id=True), "not a Shopify order id"),
    (order(id="82x"), "not a Shopify order id"),
    (order(line_items=None), "line_items is not a list"),
    (order(line_items={"sku": "SKU-1"}), "line_items is not a list"),
    (order(line_items=[]), "has no lines"),
    (order(line_items=["SKU-1"]), r"line_items\[0\] is not an object"),
    (order(line_items=[{"quantity": 1}]), "no seller SKU"),
    (order(line_items=[{"sku": None, "quantity": 1}]), "no seller SKU"),
    (order(line_items=[{"sku": "  ", "quantity": 1}]), "no seller SKU"),
    (order(line_items=[{"sku": "SKU-1", "quantity": 0}]), "quantity 0"),
    (order(line_items=[{"sku": "SKU-1", "quantity": -1}]), "quantity -1"),
    (order(line_items=[{"sku": "SKU-1", "quantity": "2"}]), "quantity '2'"),
    (order(line_items=[{"sku": "SKU-1", "quantity": 1.5}]), "quantity 1.5"),
    (order(line_items=[{"sku": "SKU-1"}]), "quantity None"),
    (order(created_at=None), "created_at None"),
    (order(created_at="yesterday"), "not an ISO 8601"),
    (order(created_at="2024-03-05T10:00:00"), "no UTC offset"),
    (order(created_at=1709650800), "not an ISO 8601"),
])
def test_malformed_orders_are_payload_errors(body, message):
    with pytest.raises(PayloadError, match=message):
        adapter().intake(hook(body))


@pytest.mark.parametrize("body", [b"[]", order(id=None), order(cancelled_at="soon")])
def test_malformed_events_are_payload_errors(body):
    with pytest.raises(PayloadError):
        adapter().intake(hook(body, "orders/cancelled"))


# ---- pusher: building calls ---------------------------------------------------------------------

def pusher(catalog=CATALOG, **settings):
    return ShopifyStockPusher(catalog, {"base_url": f"https://{SHOP}/admin/api/2025-01", **settings},
                              {"access_token": TOKEN})


def push(sku="SKU-1", quantity=5, expected=None, changed_at=1_000):
    return StockPush("shopify", sku, quantity, expected, changed_at)


def sent_input(call):
    doc = json.loads(call.body)
    assert doc["query"] == SET_QUANTITIES
    return doc["variables"]["input"]


def test_builds_the_exact_mutation_request():
    pushes = [push("SKU-1", 5, expected=7, changed_at=1_000), push("SKU-2", 0, expected=1, changed_at=2_000)]
    [call] = pusher().build_calls(CATALOG.channels["shopify"], pushes, now_s=0)
    assert (call.method, call.url, call.cost) == ("POST", f"https://{SHOP}/admin/api/2025-01/graphql.json", 10.0)
    assert call.headers == {"Content-Type": "application/json", "Accept": "application/json",
                            "X-Shopify-Access-Token": TOKEN}
    assert call.pushes == tuple(pushes)
    assert json.loads(call.body) == {"query": SET_QUANTITIES, "variables": {"input": {
        "name": "available", "reason": "correction",
        "referenceDocumentUri": "gid://lockstock/StockSync/shopify-2000", "ignoreCompareQuantity": False,
        "quantities": [
            {"inventoryItemId": ITEM_1, "locationId": LOCATION, "quantity": 5, "compareQuantity": 7},
            {"inventoryItemId": ITEM_2, "locationId": LOCATION, "quantity": 0, "compareQuantity": 1},
        ]}}}
    assert "inventorySetQuantities(input: $input)" in SET_QUANTITIES and "userErrors { code field message }" in SET_QUANTITIES


def test_pushes_without_expected_go_apart_and_skip_the_compare():
    calls = pusher().build_calls(CATALOG.channels["shopify"], [push("SKU-1", 5, expected=4), push("SKU-2", 3)], 0)
    compare, blind = (sent_input(c) for c in calls)
    assert compare["ignoreCompareQuantity"] is False and compare["quantities"][0]["compareQuantity"] == 4
    assert blind["ignoreCompareQuantity"] is True and "compareQuantity" not in blind["quantities"][0]
    assert [c.pushes[0].sku for c in calls] == ["SKU-1", "SKU-2"]


def test_batches_hold_at_most_250_distinct_items():
    items = {f"S{i}": f"gid://shopify/InventoryItem/{1000 + i}" for i in range(600)}
    catalog = catalog_from_dict({"regions": {"US": {}}, "channels": {"shopify": {
        "platform": "shopify", "region": "US", "account": SHOP,
        "connector": {"location_id": 1, "inventory_items": items}}}})
    pushes = [push(f"S{i}", i, expected=i) for i in range(600)] + [push("S550", 9, expected=550)]
    calls = pusher(catalog).build_calls(catalog.channels["shopify"], pushes, 0)
    assert [len(c.pushes) for c in calls] == [250, 250, 100, 1]  # S550 again: not in the call holding S550
    assert ShopifyStockPusher.max_batch == 250
    for call in calls:
        ids = [q["inventoryItemId"] for q in sent_input(call)["quantities"]]
        assert len(ids) == len(set(ids)) == len(call.pushes)
        assert [q["locationId"] for q in sent_input(call)["quantities"]] == ["gid://shopify/Location/1"] * len(ids)
    assert sum((c.pushes for c in calls), ()) == tuple(pushes)


def test_a_later_push_of_an_item_goes_out_in_a_later_call():
    pushes = [push("SKU-2", 1, expected=0), push("SKU-1", 1), push("SKU-1", 2, expected=1), push("SKU-1", 3)]
    calls = pusher().build_calls(CATALOG.channels["shopify"], pushes, 0)
    order = [(p.sku, p.quantity) for c in calls for p in c.pushes]
    assert [q for sku, q in order if sku == "SKU-1"] == [1, 2, 3]
    assert [[p.sku for p in c.pushes] for c in calls] == [["SKU-2"], ["SKU-1"], ["SKU-1"], ["SKU-1"]]


def test_unmapped_sku_rides_along_and_comes_back_refused():
    pushes = [push("SKU-1", 5, expected=5), push("NOPE", 3, expected=3)]
    [call] = pusher().build_calls(CATALOG.channels["shopify"], pushes, 0)
    assert len(sent_input(call)["quantities"]) == 1 and call.pushes == tuple(pushes)
    ok = graphql_ok()
    [sent, refused] = pusher().parse_response(call, 200, {}, ok).results
    assert sent.ok
    assert (refused.ok, refused.retryable, refused.reason) == (False, False, "no Shopify inventory item for SKU NOPE")
    # a refusal that can never succeed stays final even when the call itself was throttled
    outcome = pusher().parse_response(call, 429, {"Retry-After": "2"}, b"{}")
    assert outcome.throttled and [r.retryable for r in outcome.results] == [True, False]


def test_only_unmapped_skus_make_a_one_point_probe():
    [call] = pusher().build_calls(CATALOG.channels["shopify"], [push("NOPE", 1)], 0)
    assert json.loads(call.body) == {"query": "query LockstockProbe { shop { id } }"} and call.cost == 1.0
    [result] = pusher().parse_response(call, 200, {}, b'{"data":{"shop":{"id":"gid://shopify/Shop/1"}}}').results
    assert (result.ok, result.retryable, result.reason) == (False, False, "no Shopify inventory item for SKU NOPE")


def test_channel_without_location_refuses_every_push():
    catalog = catalog_from_dict({"regions": {"US": {}}, "channels": {"shopify": {
        "platform": "shopify", "region": "US", "connector": {"inventory_items": {"SKU-1": 11}}}}})
    [call] = pusher(catalog).build_calls(catalog.channels["shopify"], [push()], 0)
    [result] = pusher(catalog).parse_response(call, 200, {}, b'{"data":{"shop":{"id":"x"}}}').results
    assert not result.retryable and "connector.location_id" in result.reason


def test_url_from_the_channel_or_its_account_when_no_base_url():
    store = CATALOG.channels["shopify"]
    bare = ShopifyStockPusher(CATALOG, {}, {"access_token": TOKEN})
    assert bare.build_calls(store, [push()], 0)[0].url == f"https://{SHOP}/admin/api/2025-01/graphql.json"
    versioned = ShopifyStockPusher(CATALOG, {"api_version": "2025-04"}, {"access_token": TOKEN})
    assert versioned.build_calls(store, [push()], 0)[0].url == f"https://{SHOP}/admin/api/2025-04/graphql.json"
    with pytest.raises(NotConfigured, match="access token"):
        ShopifyStockPusher(CATALOG, {}, {}).build_calls(store, [push()], 0)


def test_budget_is_query_cost_points():
    store = CATALOG.channels["shopify"]
    assert (pusher().budget(store).capacity, pusher().budget(store).refill_per_s) == (1000.0, 100.0)
    tuned = pusher(cost_bucket=2000, cost_restore_per_s=1000).budget(store)
    assert (tuned.capacity, tuned.refill_per_s) == (2000.0, 1000.0)
    with pytest.raises(NotConfigured, match="cost_bucket"):
        pusher(cost_bucket="lots").budget(store)


# ---- pusher: reading answers --------------------------------------------------------------------

def graphql_ok(errors=(), group=True, available=990.0):
    return json.dumps({
        "data": {"inventorySetQuantities": {
            "inventoryAdjustmentGroup": {"id": "gid://shopify/InventoryAdjustmentGroup/1"} if group else None,
            "userErrors": list(errors)}},
        "extensions": {"cost": {"requestedQueryCost": 10, "actualQueryCost": 10, "throttleStatus": {
            "maximumAvailable": 1000.0, "currentlyAvailable": available, "restoreRate": 100.0}}},
    }).encode()


def two_push_call():
    return pusher().build_calls(CATALOG.channels["shopify"], [push("SKU-1", 5, 7), push("SKU-2", 4, 6)], 0)[0]


def test_success_accepts_every_push():
    outcome = pusher().parse_response(two_push_call(), 200, {}, graphql_ok())
    assert [r.ok for r in outcome.results] == [True, True]
    assert not outcome.throttled and outcome.retry_after_s is None


def test_nearly_empty_bucket_says_when_the_next_mutation_fits():
    outcome = pusher().parse_response(two_push_call(), 200, {}, graphql_ok(available=4.0))
    assert [r.ok for r in outcome.results] == [True, True]
    assert not outcome.throttled and outcome.retry_after_s == pytest.approx(0.06)


def test_stale_compare_is_retryable_and_blocks_the_batch():
    stale = {"code": "COMPARE_QUANTITY_STALE", "field": ["input", "quantities", "1", "compareQuantity"],
             "message": "The compareQuantity value does not match persisted value."}
    first, second = pusher().parse_response(two_push_call(), 200, {}, graphql_ok([stale], group=False)).results
    assert (first.ok, first.retryable, first.reason) == (
        False, True, "not applied: Shopify refused the batch for another item's error")
    assert (second.ok, second.retryable, second.actual) == (False, True, None)  # real Shopify does not say
    assert second.reason == "COMPARE_QUANTITY_STALE: compare quantity 6 no longer matches"


def test_stale_compare_reports_the_persisted_quantity_when_given():
    stale = {"code": "CHANGE_FROM_QUANTITY_STALE", "field": ["input", "quantities", "0", "changeFromQuantity"],
             "message": "The compareQuantity value does not match persisted value. Persisted quantity: 3"}
    first, second = pusher().parse_response(two_push_call(), 200, {}, graphql_ok([stale], group=True)).results
    assert (first.retryable, first.actual) == (True, 3)
    assert first.reason == "CHANGE_FROM_QUANTITY_STALE: compare quantity 7 no longer matches; Shopify shows 3"
    assert second.ok  # the mutation applied the rest


def test_unknown_item_is_final_and_general_errors_hit_every_push():
    unknown = {"code": "INVALID_INVENTORY_ITEM", "field": ["input", "quantities", "0", "inventoryItemId"],
               "message": "The specified inventory item could not be found."}
    first, second = pusher().parse_response(two_push_call(), 200, {}, graphql_ok([unknown], group=False)).results
    assert (first.retryable, first.reason) == (False, "INVALID_INVENTORY_ITEM: The specified inventory item could not be found.")
    assert second.retryable
    reason = {"code": "INVALID_REASON", "field": ["input", "reason"], "message": "The specified reason is invalid."}
    results = pusher().parse_response(two_push_call(), 200, {}, graphql_ok([reason], group=False)).results
    assert [(r.retryable, r.reason) for r in results] == [(False, "INVALID_REASON: The specified reason is invalid.")] * 2


def test_throttled_answer_is_a_throttle_with_the_wait_shopify_implies():
    body = json.dumps({
        "errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED",
                                                            "documentation": "https://shopify.dev/api/usage/rate-limits"}}],
        "extensions": {"cost": {"requestedQueryCost": 10, "actualQueryCost": None, "throttleStatus": {
            "maximumAvailable": 1000.0, "currentlyAvailable": 4, "restoreRate": 100.0}}}}).encode()
    outcome = pusher().parse_response(two_push_call(), 200, {}, body)
    assert outcome.throttled and outcome.retry_after_s == pytest.approx(0.06)
    assert [(r.ok, r.retryable) for r in outcome.results] == [(False, True)] * 2
    assert outcome.results[0].reason == "THROTTLED: 4 of 1000 points available, 10 requested, restoring 100/s"


@pytest.mark.parametrize("status, retryable, throttled", [(429, True, True), (500, True, False), (503, True, False),
                                                          (401, False, False), (403, False, False)])
def test_http_statuses(status, retryable, throttled):
    outcome = pusher().parse_response(two_push_call(), status, {"Retry-After": "2.0"}, b'{"errors":"x"}')
    assert [r.retryable for r in outcome.results] == [retryable] * 2 and outcome.throttled is throttled
    assert outcome.results[0].reason.startswith(f"HTTP {status}")


@pytest.mark.parametrize("body, retryable", [
    (b"<html>oops</html>", True),
    (b"[]", True),
    (b'{"data":{}}', True),
    (b'{"errors":[{"message":"Internal error","extensions":{"code":"INTERNAL_SERVER_ERROR"}}]}', True),
    (b'{"errors":[{"message":"Access denied","extensions":{"code":"ACCESS_DENIED"}}]}', False),
    (b'{"errors":"Variable $input was provided invalid value"}', False),
])
def test_odd_2xx_answers(body, retryable):
    results = pusher().parse_response(two_push_call(), 200, {}, body).results
    assert [(r.ok, r.retryable) for r in results] == [(False, retryable)] * 2


# ---- the fake, end to end -----------------------------------------------------------------------

@pytest.fixture
def fake_and_pusher(request):
    settings = getattr(request, "param", {})
    p = ShopifyStockPusher(CATALOG, settings, {"access_token": TOKEN})
    budget = p.budget(CATALOG.channels["shopify"])  # the fake enforces the very numbers the sync budgets
    fake = FakeShopify.for_catalog(CATALOG, secret=SECRET, access_token=TOKEN,
                                   rate_capacity=budget.capacity, rate_per_s=budget.refill_per_s).start()
    p.settings["base_url"] = fake.base_url
    yield fake, p
    fake.stop()


def push_through(fake, p, pushes):
    outcomes = []
    for call in p.build_calls(CATALOG.channels["shopify"], pushes, 0):
        outcomes.append(p.parse_response(call, *send(call)))
    return outcomes


def test_fake_applies_a_batch(fake_and_pusher):
    fake, p = fake_and_pusher
    [outcome] = push_through(fake, p, [push("SKU-1", 40, expected=0), push("SKU-2", 12, expected=0)])
    assert [r.ok for r in outcome.results] == [True, True]
    assert fake.quantity == {(SHOP, "SKU-1"): 40, (SHOP, "SKU-2"): 12}
    assert fake.counters["updates"] == 2 and fake.counters["calls"] == 1


def test_fake_refuses_a_stale_compare_with_the_actual_quantity(fake_and_pusher):
    fake, p = fake_and_pusher
    fake.quantity[(SHOP, "SKU-1")] = 8  # sold on the store while our push was in flight
    [outcome] = push_through(fake, p, [push("SKU-1", 40, expected=10), push("SKU-2", 12, expected=0)])
    stale, blocked = outcome.results
    assert (stale.ok, stale.retryable, stale.actual) == (False, True, 8)
    assert (blocked.ok, blocked.retryable) == (False, True)
    assert fake.quantity == {(SHOP, "SKU-1"): 8} and fake.counters["compare_refused"] == 1
    [retry] = push_through(fake, p, [push("SKU-1", 38, expected=stale.actual)])
    assert retry.results[0].ok and fake.quantity[(SHOP, "SKU-1")] == 38


def test_fake_sets_blind_pushes_and_refuses_unmapped_ones(fake_and_pusher):
    fake, p = fake_and_pusher
    fake.quantity[(SHOP, "SKU-2")] = 3
    outcomes = push_through(fake, p, [push("SKU-2", 1), push("NOPE", 4)])
    results = [r for o in outcomes for r in o.results]
    assert [(r.push.sku, r.ok, r.retryable) for r in results] == [("SKU-2", True, False), ("NOPE", False, False)]
    assert fake.quantity[(SHOP, "SKU-2")] == 1


@pytest.mark.parametrize("fake_and_pusher", [{"cost_bucket": 30, "cost_restore_per_s": 1}], indirect=True)
def test_fake_throttles_a_burst_the_way_shopify_does(fake_and_pusher):
    fake, p = fake_and_pusher
    calls = [p.build_calls(CATALOG.channels["shopify"], [push("SKU-1", q)], 0)[0] for q in range(5)]
    answers = [send(call) for call in calls]  # 50 points asked of a 30-point bucket at once
    assert [status for status, _, _ in answers] == [200] * 5  # Shopify throttles with a 200
    outcomes = [p.parse_response(call, *answer) for call, answer in zip(calls, answers)]
    assert [o.throttled for o in outcomes] == [False, False, False, True, True]
    assert fake.counters["throttled"] == 2 and fake.quantity[(SHOP, "SKU-1")] == 2
    assert outcomes[3].retry_after_s == pytest.approx(10, abs=1.5)
    cost = json.loads(answers[3][2])["extensions"]["cost"]
    assert cost["throttleStatus"]["maximumAvailable"] == 30.0 and cost["actualQueryCost"] is None


def test_fake_checks_the_access_token_and_the_shape(fake_and_pusher):
    fake, p = fake_and_pusher
    call = p.build_calls(CATALOG.channels["shopify"], [push()], 0)[0]
    call.headers["X-Shopify-Access-Token"] = "stolen"
    status, headers, body = send(call)
    assert status == 401 and fake.counters["bad_signature"] == 1
    assert not p.parse_response(call, status, headers, body).results[0].retryable
    good = p.build_calls(CATALOG.channels["shopify"], [push()], 0)[0]
    for bad_body in (b"{", json.dumps({"query": SET_QUANTITIES, "variables": {"input": {
            "name": "available", "reason": "correction", "quantities": [{"inventoryItemId": ITEM_1}]}}}).encode()):
        status, headers, body = send(ApiCall("POST", good.url, good.headers, bad_body, good.pushes))
        assert status in (200, 400) and b"errors" in body
    assert fake.counters["bad_shape"] == 2 and fake.quantity == {}


def test_fake_rejects_more_than_250_items_and_unknown_reasons(fake_and_pusher):
    fake, p = fake_and_pusher
    good = p.build_calls(CATALOG.channels["shopify"], [push()], 0)[0]
    doc = json.loads(good.body)
    doc["variables"]["input"]["quantities"] *= 251
    status, _, body = send(ApiCall("POST", good.url, good.headers, json.dumps(doc).encode(), good.pushes))
    assert status == 200 and "greater than the maximum allowed of 250" in body.decode()
    doc = json.loads(good.body)
    doc["variables"]["input"]["reason"] = "because"
    _, _, body = send(ApiCall("POST", good.url, good.headers, json.dumps(doc).encode(), good.pushes))
    assert json.loads(body)["data"]["inventorySetQuantities"]["userErrors"][0]["code"] == "INVALID_REASON"
    assert fake.quantity == {}


def test_fake_order_webhook_passes_verify_and_intake():
    fake = FakeShopify.for_catalog(CATALOG, secret=SECRET, access_token=TOKEN)
    sale = Sale("5001000000000001", SHOP, "SKU-2", 3, "ann", at=1_709_650_800.4)
    fake.sources[sale.order_id] = "youtube"
    path, headers, body = fake.order_webhook(sale)
    received = Webhook("shopify", "http://gw" + path, {k.lower(): v for k, v in headers.items()}, body, 0)
    adapter().verify(received, now_s=time.time())
    intake = adapter().intake(received)
    assert path == "/webhooks/shopify" and intake.delivery_id == headers["X-Shopify-Webhook-Id"]
    assert intake.records[0].value == {
        "order_id": "shopify:5001000000000001", "channel": "youtube-us",
        "buyer_id": f"shopify:{json.loads(body)['customer']['id']}", "ship_to_region": "US",
        "placed_at": PLACED_AT, "lines": [{"sku": "SKU-2", "qty": 3}]}
    assert fake.order_webhook(sale) == (path, headers, body)  # a redelivery is the same delivery
    paid_path, paid_headers, paid_body = fake.paid_webhook(sale)
    assert paid_headers["X-Shopify-Webhook-Id"] != headers["X-Shopify-Webhook-Id"]
    assert fake.paid_webhook(sale) == (paid_path, paid_headers, paid_body)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_fake_sells_from_youtube_and_the_gateway_side_takes_it():
    """The fake sells, signs and delivers; a stand-in gateway verifies and takes in each delivery."""
    intakes: list[Intake] = []
    shopify = adapter()

    async def gateway(request: web.Request) -> web.Response:
        body = await request.read()
        received = Webhook("shopify", str(request.url), {k.lower(): v for k, v in request.headers.items()},
                           body, int(time.time() * 1000))
        shopify.verify(received, time.time())
        intakes.append(shopify.intake(received))
        return web.json_response({"ok": True})

    async def serve(port: int) -> web.AppRunner:
        app = web.Application()
        app.router.add_post("/webhooks/shopify", gateway)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        return runner

    port = _free_port()
    fake = FakeShopify.for_catalog(CATALOG, secret=SECRET, access_token=TOKEN,
                                   gateway_url=f"http://127.0.0.1:{port}").start()
    try:
        runner = fake.run(lambda: serve(port))
        fake.quantity[(SHOP, "SKU-1")] = 5
        sale = fake.run(lambda: fake.sell(SHOP, "SKU-1", 2, buyer="ann", source="youtube"))
        web_sale = fake.run(lambda: fake.sell(SHOP, "SKU-1", 1, buyer="bob"))
        assert fake.run(lambda: fake.sell(SHOP, "SKU-1", 3, buyer="cy", source="instagram")) is None  # only 2 left
        assert fake.run(lambda: fake.deliver_event(sale, "paid"))
        assert fake.run(lambda: fake.deliver_event(web_sale, "cancelled"))
        fake.run(runner.cleanup)
    finally:
        fake.stop()
    assert sale.delivered and web_sale.delivered and fake.quantity[(SHOP, "SKU-1")] == 2
    values = [i.records[0].value for i in intakes]
    assert [(v.get("type", "PLACED"), v["channel"], v["order_id"]) for v in values] == [
        ("PLACED", "youtube-us", f"shopify:{sale.order_id}"),
        ("PLACED", "shopify", f"shopify:{web_sale.order_id}"),
        ("PAID", "youtube-us", f"shopify:{sale.order_id}"),
        ("CANCELLED", "shopify", f"shopify:{web_sale.order_id}"),
    ]
    assert values[3]["reason"] == "customer" and fake.counters["sale_refused"] == 1
    assert len({i.delivery_id for i in intakes}) == 4
