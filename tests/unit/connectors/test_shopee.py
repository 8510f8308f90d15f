"""Shopee Open Platform v2: push verification and intake, update_stock requests and answers, the fake.

Signatures are known vectors computed with openssl over the same bytes:
  push: printf '%s' "$PUSH_URL|$BODY" | openssl dgst -sha256 -hmac shopee-partner-key
  API:  printf '%s' "2001887/api/v2/product/update_stock1795000000shopee-token-abc600001" \\
          | openssl dgst -sha256 -hmac shopee-partner-key
"""

from __future__ import annotations

import json
import time

import pytest

from connectors.base import ApiCall, Intake, NotConfigured, PayloadError, StockPush, Webhook
from connectors.config import stock_pushers
from connectors.fakes.base import Sale
from connectors.fakes.shopee import FakeShopee
from connectors.shopee import ShopeeStockPusher, ShopeeWebhooks, api_sign
from connectors.signatures import SignatureError, shopee_signature
from lockstock.catalog import catalog_from_dict, load_catalog
from tests.unit.connectors.helpers import AdapterGateway, send, summary, values

PARTNER_ID, KEY, TOKEN = 2001887, "shopee-partner-key", "shopee-token-abc"
MY_SHOP, TH_SHOP = "600001", "600002"
SKUS = {
    "TEE-BLK-M": {"item_id": 800123, "model_id": 1001},
    "TEE-BLK-L": {"item_id": 800123, "model_id": 1002},
    "MUG-WHT": {"item_id": 800200, "model_id": 0},
}
CATALOG = catalog_from_dict({
    "regions": {"SEA": {"warehouses": ["KUL"]}},
    "channels": {
        "shopee-my": {"platform": "shopee", "region": "SEA", "rate_limit_per_min": 120, "account": MY_SHOP,
                      "connector": {"location_id": "MYZ", "skus": SKUS}},
        "shopee-th": {"platform": "shopee", "region": "SEA", "rate_limit_per_min": 120, "account": TH_SHOP,
                      "connector": {"skus": {"MUG-WHT": {"item_id": 900200}}}},
    },
    "connectors": {"shopee": {"partner_id": PARTNER_ID}},
})
SETTINGS = {"partner_id": PARTNER_ID}
CREDENTIALS = {"partner_key": KEY, "access_token": TOKEN}

REGISTERED_URL, RECEIVED_URL = "https://lockstock.example.com/webhooks/shopee", "http://10.0.0.7:8080/webhooks/shopee"
PUSH_BODY = (b'{"data":{"items":[],"ordersn":"2512140B9XAB0ST","status":"CANCELLED","completed_scenario":"",'
             b'"update_time":1795000000},"shop_id":600001,"code":3,"timestamp":1795000001}')
SIG_REGISTERED = "f765d1d9c73a2f74c1c1c9792c9abbd94659783745a3681a9b86e81bfbdd3f4e"
SIG_RECEIVED = "168fa0b33dc3be0afd038a2fe87f47064e94b6c066e374a6b62d13e62a1e5cc1"
API_SIGN = "f9c0b3a12e40690eae35c643be4b6e914b3ec85575127cecada1cfba57063667"


def adapter(**settings) -> ShopeeWebhooks:
    return ShopeeWebhooks(CATALOG, KEY, settings)


def hook(body: bytes | dict, headers: dict[str, str] | None = None, url: str = RECEIVED_URL) -> Webhook:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Webhook("shopee", url, headers or {}, raw, received_at=0)


def order_push(status: str, *, shop: int | str = 600001, **data) -> dict:
    return {"msg_id": "85bb37f009e143af84852e17d50b572d", "code": 3, "shop_id": shop, "timestamp": 1795000051,
            "data": {"items": [], "ordersn": "2512140B9XAB0ST", "status": status, "completed_scenario": "",
                     "update_time": 1795000050, **data}}


# ---- signatures ------------------------------------------------------------------------------
def test_registered_push_url_is_what_is_verified_behind_a_proxy():
    adapter(push_url=REGISTERED_URL).verify(hook(PUSH_BODY, {"authorization": SIG_REGISTERED}), now_s=0)
    with pytest.raises(SignatureError, match="does not match"):
        adapter(push_url=REGISTERED_URL).verify(hook(PUSH_BODY, {"authorization": SIG_RECEIVED}), now_s=0)


def test_without_push_url_the_received_url_is_verified():
    adapter().verify(hook(PUSH_BODY, {"authorization": SIG_RECEIVED}), now_s=0)
    adapter().verify(hook(PUSH_BODY, {"authorization": SIG_RECEIVED.upper()}), now_s=0)  # hex case is free


@pytest.mark.parametrize("secret, body, headers, problem", [
    (KEY, PUSH_BODY.replace(b"CANCELLED", b"COMPLETED"), {"authorization": SIG_RECEIVED}, "does not match"),
    ("other-key", PUSH_BODY, {"authorization": SIG_RECEIVED}, "does not match"),
    (KEY, PUSH_BODY, {}, "missing"),
    (KEY, PUSH_BODY, {"authorization": ""}, "missing"),
])
def test_bad_signatures_are_refused(secret, body, headers, problem):
    with pytest.raises(SignatureError, match=problem):
        ShopeeWebhooks(CATALOG, secret, {}).verify(hook(body, headers), now_s=0)


# ---- status mapping --------------------------------------------------------------------------
PLACED = {"order_id": "shopee:2512140B9XAB0ST", "channel": "shopee-my", "buyer_id": "shopee:128374651",
          "ship_to_region": "", "placed_at": 1795000000000, "lines": [{"sku": "TEE-BLK-M", "qty": 2}]}
DETAIL = {"create_time": 1795000000, "buyer_user_id": 128374651, "item_list": [
    {"item_id": 800123, "model_id": 1001, "item_sku": "TEE", "model_sku": "TEE-BLK-M", "model_quantity_purchased": 2}]}


def event(kind: str, reason: str | None = None) -> dict:
    return {"event_id": f"shopee:2512140B9XAB0ST:{kind}", "order_id": "shopee:2512140B9XAB0ST", "type": kind,
            "channel": "shopee-my", "occurred_at": 1795000050000, "warehouse": None, "reason": reason}


def test_ready_to_ship_with_lines_places_and_pays():
    intake = adapter().intake(hook(order_push("READY_TO_SHIP", **DETAIL)))
    assert intake.delivery_id == "600001:2512140B9XAB0ST:READY_TO_SHIP:1795000050" and not intake.ignored
    assert values(intake) == [("OrderPlaced", PLACED), ("OrderEvent", event("PAID"))]


def test_unpaid_with_lines_places_only():
    assert values(adapter().intake(hook(order_push("UNPAID", **DETAIL)))) == [("OrderPlaced", PLACED)]


def test_unpaid_without_lines_is_ignored_and_says_why():
    intake = adapter().intake(hook(order_push("UNPAID")))
    assert intake.records == () and "get_order_detail" in intake.ignored


@pytest.mark.parametrize("status", ["READY_TO_SHIP", "PROCESSED"])
def test_paid_statuses_without_lines_share_one_event_id(status):
    assert values(adapter().intake(hook(order_push(status)))) == [("OrderEvent", event("PAID"))]


def test_cancelled_carries_the_reason_and_in_cancel_waits():
    intake = adapter().intake(hook(order_push("CANCELLED", cancel_reason="BUYER_REQUEST")))
    assert values(intake) == [("OrderEvent", event("CANCELLED", "BUYER_REQUEST"))]
    waiting = adapter().intake(hook(order_push("IN_CANCEL")))
    assert waiting.records == () and "CANCELLED" in waiting.ignored


@pytest.mark.parametrize("status", ["SHIPPED", "TO_CONFIRM_RECEIVE", "COMPLETED"])
def test_shipped_statuses_share_one_event_id(status):
    assert values(adapter().intake(hook(order_push(status)))) == [("OrderEvent", event("SHIPPED"))]


@pytest.mark.parametrize("status", ["RETRY_SHIP", "TO_RETURN", "INVOICE_PENDING"])
def test_other_statuses_are_ignored(status):
    intake = adapter().intake(hook(order_push(status)))
    assert intake.records == () and status in intake.ignored


def test_other_push_codes_are_ignored():
    intake = adapter().intake(hook({"code": 4, "shop_id": 600001, "timestamp": 1795000000, "data": {}}))
    assert intake == Intake("600001:code4:1795000000", (), ignored="push code 4 is not an order status push")


def test_item_sku_stands_in_for_a_model_without_sku_and_lines_add_up():
    items = [{"item_sku": "MUG-WHT", "model_sku": "", "model_quantity_purchased": 1},
             {"item_sku": "MUG", "model_sku": "MUG-WHT", "model_quantity_purchased": 2}]
    placed = adapter().intake(hook(order_push("UNPAID", items=items))).records[0].value
    assert placed["lines"] == [{"sku": "MUG-WHT", "qty": 3}]
    assert placed["buyer_id"] == "shopee:2512140B9XAB0ST:buyer" and placed["placed_at"] == 1795000050000


def test_channel_is_chosen_by_shop_id():
    assert adapter().intake(hook(order_push("CANCELLED", shop=600002))).records[0].value["channel"] == "shopee-th"


def test_unknown_shop_is_a_payload_error():
    with pytest.raises(PayloadError, match="no shopee channel has account"):
        adapter().intake(hook(order_push("CANCELLED", shop=999)))


@pytest.mark.parametrize("body", [
    b"\xc3\x28", b"", b"{'code': 3}", b'["code", 3]', b'"code"', b"{" * 50_000,
    {"code": "3", "shop_id": 600001, "data": {}},
    {"code": None, "shop_id": 600001, "data": {}},
    {"code": 3, "shop_id": 600001},
    {"code": 3, "shop_id": 600001, "data": "READY_TO_SHIP"},
    {"code": 3, "data": {"ordersn": "X", "status": "CANCELLED", "update_time": 1795000000}},
    {"code": 3, "shop_id": True, "data": {"ordersn": "X", "status": "CANCELLED", "update_time": 1795000000}},
    order_push("CANCELLED", ordersn=""),
    order_push("CANCELLED", ordersn=["X"]),
    {"code": 3, "shop_id": 600001, "data": {"ordersn": "X", "status": "", "update_time": 1795000000}},
    {"code": 3, "shop_id": 600001, "data": {"ordersn": "X", "status": None, "update_time": 1795000000}},
    order_push("CANCELLED", update_time=None),
    order_push("CANCELLED", update_time="1795000050"),
    order_push("CANCELLED", update_time=-1),
    order_push("UNPAID", item_list={"model_sku": "TEE-BLK-M"}),
    order_push("UNPAID", item_list=[None]),
    order_push("UNPAID", item_list=[{"model_sku": "TEE-BLK-M"}]),
    order_push("UNPAID", item_list=[{"model_sku": "TEE-BLK-M", "model_quantity_purchased": "2"}]),
    order_push("UNPAID", item_list=[{"model_sku": "TEE-BLK-M", "model_quantity_purchased": -2}]),
    order_push("UNPAID", item_list=[{"model_sku": "TEE-BLK-M", "model_quantity_purchased": 1.0}]),
    order_push("UNPAID", item_list=[{"item_sku": "", "model_sku": "", "model_quantity_purchased": 1}]),
    order_push("UNPAID", item_list=[{"model_sku": "TEE-BLK-M", "model_quantity_purchased": 1}], create_time=1.5),
    order_push("UNPAID", item_list=[{"model_sku": "TEE-BLK-M", "model_quantity_purchased": 1}], buyer_user_id={}),
])
def test_malformed_bodies_are_payload_errors(body):
    with pytest.raises(PayloadError):
        adapter().intake(hook(body))


# ---- outbound: request shape, signing, grouping ----------------------------------------------
def pusher(**settings) -> ShopeeStockPusher:
    return ShopeeStockPusher(CATALOG, {**SETTINGS, **settings}, CREDENTIALS)


def push(sku: str, qty: int, channel: str = "shopee-my") -> StockPush:
    return StockPush(channel, sku, qty)


def test_request_shape_and_known_sign():
    [call] = pusher().build_calls(CATALOG.channels["shopee-my"], [push("TEE-BLK-M", 37)], now_s=1795000000.9)
    assert call.method == "POST"
    assert call.url == ("https://partner.shopeemobile.com/api/v2/product/update_stock?partner_id=2001887"
                        f"&timestamp=1795000000&access_token={TOKEN}&shop_id=600001&sign={API_SIGN}")
    assert call.headers == {"content-type": "application/json"}
    assert call.body == (b'{"item_id":800123,"stock_list":[{"model_id":1001,'
                         b'"seller_stock":[{"location_id":"MYZ","stock":37}]}]}')
    assert call.pushes == (push("TEE-BLK-M", 37),)
    assert api_sign(KEY, "2001887", "/api/v2/product/update_stock", 1795000000, TOKEN, MY_SHOP) == API_SIGN


def test_pushes_are_grouped_by_item():
    calls = pusher().build_calls(CATALOG.channels["shopee-my"], [
        push("TEE-BLK-M", 5), push("MUG-WHT", -3), push("TEE-BLK-L", 4), push("NOT-LISTED", 1), push("TEE-BLK-M", 6)],
        now_s=1795000000)
    assert [json.loads(c.body) for c in calls] == [
        {"item_id": 800123, "stock_list": [{"model_id": 1001, "seller_stock": [{"location_id": "MYZ", "stock": 6}]},
                                           {"model_id": 1002, "seller_stock": [{"location_id": "MYZ", "stock": 4}]}]},
        {"item_id": 800200, "stock_list": [{"model_id": 0, "seller_stock": [{"location_id": "MYZ", "stock": 0}]}]}]
    assert calls[0].pushes == (push("TEE-BLK-M", 6), push("TEE-BLK-L", 4), push("NOT-LISTED", 1))
    th = pusher().build_calls(CATALOG.channels["shopee-th"], [push("MUG-WHT", 2, "shopee-th")], now_s=1795000000)
    assert json.loads(th[0].body)["stock_list"] == [{"model_id": 0, "seller_stock": [{"stock": 2}]}]
    assert "shop_id=600002" in th[0].url


def test_an_item_with_more_models_than_max_batch_is_split():
    skus = {f"S{i}": {"item_id": 7, "model_id": 100 + i} for i in range(51)}
    catalog = catalog_from_dict({"regions": {"SEA": {}}, "channels": {"shopee-my": {
        "platform": "shopee", "region": "SEA", "account": MY_SHOP, "connector": {"skus": skus}}}})
    calls = ShopeeStockPusher(catalog, SETTINGS, CREDENTIALS).build_calls(
        catalog.channels["shopee-my"], [push(s, 1) for s in skus], now_s=1795000000)
    assert [len(json.loads(c.body)["stock_list"]) for c in calls] == [50, 1]


@pytest.mark.parametrize("account, connector, problem", [
    ("", {"skus": SKUS}, "account must be the Shopee shop_id"),
    ("my-shop", {"skus": SKUS}, "account must be the Shopee shop_id"),
    (MY_SHOP, {}, "connector.skus"),
    (MY_SHOP, {"skus": {"TEE": {"item_id": "800123"}}}, "numeric item_id"),
    (MY_SHOP, {"skus": {"TEE": {"item_id": 1, "model_id": None}}}, "numeric item_id"),
])
def test_channel_without_ids_is_not_configured(account, connector, problem):
    catalog = catalog_from_dict({"regions": {"SEA": {}}, "channels": {"shopee-my": {
        "platform": "shopee", "region": "SEA", "account": account, "connector": connector}}})
    with pytest.raises(NotConfigured, match=f"shopee-my.*{problem}"):
        ShopeeStockPusher(catalog, SETTINGS, CREDENTIALS)


def test_missing_partner_id_and_default_catalog_are_not_configured():
    with pytest.raises(NotConfigured, match="partner_id"):
        ShopeeStockPusher(CATALOG, {}, CREDENTIALS)
    pushers = stock_pushers(load_catalog(), env={"LOCKSTOCK_SHOPEE_PARTNER_KEY": KEY,
                                                 "LOCKSTOCK_SHOPEE_ACCESS_TOKEN": TOKEN})
    assert isinstance(pushers["shopee"], NotConfigured) and "partner_id" in str(pushers["shopee"])


# ---- outbound: answers -----------------------------------------------------------------------
def two_model_call() -> ApiCall:
    [call] = pusher().build_calls(CATALOG.channels["shopee-my"], [push("TEE-BLK-M", 3), push("TEE-BLK-L", 4)],
                                  now_s=1795000000)
    return call


def answer(error: str = "", message: str = "", response: dict | None = None) -> bytes:
    return json.dumps({"error": error, "message": message, "warning": "", "request_id": "r1",
                       **({"response": response} if response is not None else {})}).encode()


def test_success():
    body = answer(response={"success_list": [{"model_id": 1001, "seller_stock": [{"stock": 3}]},
                                             {"model_id": 1002, "seller_stock": [{"stock": 4}]}], "failure_list": []})
    outcome = pusher().parse_response(two_model_call(), 200, {}, body)
    assert summary(outcome) == [("TEE-BLK-M", True, False), ("TEE-BLK-L", True, False)] and not outcome.throttled


def test_partial_failure_uses_failure_list():
    body = answer(response={"success_list": [{"model_id": 1001, "seller_stock": [{"stock": 3}]}],
                            "failure_list": [{"model_id": 1002, "failed_reason": "Model is not exist"}]})
    outcome = pusher().parse_response(two_model_call(), 200, {}, body)
    assert summary(outcome) == [("TEE-BLK-M", True, False), ("TEE-BLK-L", False, False)]
    assert outcome.results[1].reason == "Shopee refused: Model is not exist"


def test_a_model_in_neither_list_is_retried():
    body = answer(response={"success_list": [{"model_id": 1001}], "failure_list": []})
    assert summary(pusher().parse_response(two_model_call(), 200, {}, body))[1] == ("TEE-BLK-L", False, True)


@pytest.mark.parametrize("status", [200, 403])
def test_rate_limit_error_throttles_whatever_the_status(status):
    outcome = pusher().parse_response(two_model_call(), status, {}, answer("error_rate_limit", "too many requests"))
    assert outcome.throttled and summary(outcome) == [("TEE-BLK-M", False, True), ("TEE-BLK-L", False, True)]


def test_http_429_throttles_with_retry_after():
    outcome = pusher().parse_response(two_model_call(), 429, {"retry-after": "2"}, b"")
    assert outcome.throttled and outcome.retry_after_s == 2.0 and all(r.retryable for r in outcome.results)


@pytest.mark.parametrize("status, body, retryable", [
    (500, b"", True),
    (502, b"<html>bad gateway</html>", True),
    (200, answer("error_server", "Something wrong. Please try later."), True),
    (200, answer("error_param", "item_id is invalid"), False),
    (403, answer("error_auth", "Invalid access_token."), False),
    (200, b"not json at all", True),
])
def test_failures(status, body, retryable):
    outcome = pusher().parse_response(two_model_call(), status, {}, body)
    assert not outcome.throttled and [(r.ok, r.retryable) for r in outcome.results] == [(False, retryable)] * 2


def test_an_unlisted_sku_is_answered_as_a_final_failure():
    [call] = pusher().build_calls(CATALOG.channels["shopee-my"], [push("MUG-WHT", 1), push("GONE", 2)], 1795000000)
    outcome = pusher().parse_response(call, 200, {}, answer(response={"success_list": [{"model_id": 0}]}))
    assert summary(outcome) == [("MUG-WHT", True, False), ("GONE", False, False)]
    assert "not listed on shopee-my" in outcome.results[1].reason


# ---- the fake, over real HTTP ----------------------------------------------------------------
@pytest.fixture
def running():
    gateway = AdapterGateway(adapter()).start()
    budget = ShopeeStockPusher(CATALOG, SETTINGS, CREDENTIALS).budget(CATALOG.channels["shopee-my"])
    fake = FakeShopee.for_catalog(CATALOG, partner_id=PARTNER_ID, partner_key=KEY, access_token=TOKEN,
                                  gateway_url=gateway.url, rate_capacity=budget.capacity,
                                  rate_per_s=budget.refill_per_s).start()
    try:
        yield fake, gateway, pusher(base_url=fake.url)
    finally:
        fake.stop()
        gateway.stop()


def test_fake_end_to_end(running):
    fake, gateway, shopee = running
    calls = shopee.build_calls(CATALOG.channels["shopee-my"], [push("TEE-BLK-M", 5), push("TEE-BLK-L", 4),
                                                               push("MUG-WHT", 9)], time.time())
    outcomes = [shopee.parse_response(call, *send(call)) for call in calls]
    assert [r.ok for o in outcomes for r in o.results] == [True, True, True]
    assert fake.quantity == {(MY_SHOP, "TEE-BLK-M"): 5, (MY_SHOP, "TEE-BLK-L"): 4, (MY_SHOP, "MUG-WHT"): 9}

    sale = fake.run(lambda: fake.sell(MY_SHOP, "TEE-BLK-L", 3, buyer="128374651"))
    assert sale.delivered and fake.quantity[(MY_SHOP, "TEE-BLK-L")] == 1
    placed, paid = gateway.intakes[-1].records
    assert placed.value["lines"] == [{"sku": "TEE-BLK-L", "qty": 3}] and placed.value["channel"] == "shopee-my"
    assert placed.value["buyer_id"] == "shopee:128374651" and paid.value["type"] == "PAID"

    assert fake.run(lambda: fake.deliver_event(sale, "CANCELLED"))
    [cancelled] = gateway.intakes[-1].records
    assert (cancelled.value["type"], cancelled.value["order_id"]) == ("CANCELLED", f"shopee:{sale.order_id}")


def signed_call(base_url: str, body: bytes, token: str = TOKEN, shop: str = MY_SHOP) -> ApiCall:
    """A request signed like the pusher's, with a body the pusher would never build."""
    ts = int(time.time())
    sign = api_sign(KEY, str(PARTNER_ID), "/api/v2/product/update_stock", ts, token, shop)
    url = (f"{base_url}/api/v2/product/update_stock?partner_id={PARTNER_ID}&timestamp={ts}"
           f"&access_token={token}&shop_id={shop}&sign={sign}")
    return ApiCall("POST", url, {"content-type": "application/json"}, body, (push("TEE-BLK-M", 1),))


def test_fake_reports_unknown_models_in_failure_list(running):
    fake, _, _ = running
    body = b'{"item_id":800123,"stock_list":[{"model_id":1001,"seller_stock":[{"stock":2}]},' \
           b'{"model_id":4242,"seller_stock":[{"stock":1}]}]}'
    status, _, answer_body = send(signed_call(fake.url, body))
    response = json.loads(answer_body)["response"]
    assert status == 200 and [f["model_id"] for f in response["failure_list"]] == [4242]
    assert [s["model_id"] for s in response["success_list"]] == [1001]
    assert fake.quantity == {(MY_SHOP, "TEE-BLK-M"): 2} and fake.counters["unknown_model"] == 1


def test_fake_refuses_bad_sign_token_and_shape(running):
    fake, _, shopee = running
    [call] = shopee.build_calls(CATALOG.channels["shopee-my"], [push("MUG-WHT", 2)], time.time())
    call.url = call.url.replace("shop_id=600001", "shop_id=600002")  # the sign covers the shop
    status, _, body = send(call)
    assert status == 403 and json.loads(body)["error"] == "error_sign"
    assert [(r.ok, r.retryable) for r in shopee.parse_response(call, status, {}, body).results] == [(False, False)]
    status, _, body = send(signed_call(fake.url, b'{"item_id":800200,"stock_list":[]}', token="stolen"))
    assert status == 403 and json.loads(body)["error"] == "invalid_access_token"
    assert fake.counters["bad_signature"] == 2 and fake.quantity == {}

    status, _, body = send(signed_call(fake.url, b'{"item_id":800200,"stock_list":[{"model_id":0,"seller_stock":[]}]}',
                                       shop=TH_SHOP))  # another shop's budget: not throttled yet
    assert status == 400 and json.loads(body)["error"] == "error_param" and fake.counters["bad_shape"] == 1


def test_fake_throttles_a_burst_beyond_the_budget(running):
    fake, _, shopee = running
    budget = shopee.budget(CATALOG.channels["shopee-my"])
    assert (budget.capacity, budget.refill_per_s) == (2.0, 2.0) == fake._rate  # the same numbers on both sides
    channel = CATALOG.channels["shopee-my"]
    outcomes = [shopee.parse_response(call, *send(call))
                for call in [shopee.build_calls(channel, [push("MUG-WHT", n)], time.time())[0] for n in range(5)]]
    throttled = [o for o in outcomes if o.throttled]
    assert outcomes[0].results[0].ok and len(throttled) >= 2
    assert all(o.retry_after_s and o.retry_after_s >= 1 and o.results[0].retryable for o in throttled)
    assert fake.counters["throttled"] == len(throttled) and fake.counters["calls"] == 5


def test_fake_pushes_are_signed_like_shopee():
    fake = FakeShopee.for_catalog(CATALOG, partner_id=PARTNER_ID, partner_key=KEY, access_token=TOKEN,
                                  gateway_url="https://lockstock.example.com", order_status="UNPAID")
    sale = Sale("2512140B9XAB0ST", MY_SHOP, "MUG-WHT", 1, "128374651", at=1795000000)
    path, headers, body = fake.order_webhook(sale)
    assert path == "/webhooks/shopee"
    assert headers["Authorization"] == shopee_signature(KEY, REGISTERED_URL, body)
    received = hook(body, {"authorization": headers["Authorization"]}, url=REGISTERED_URL)
    adapter().verify(received, 0)
    [(record, value)] = values(adapter().intake(received))
    assert record == "OrderPlaced"
    assert (value["lines"], value["placed_at"]) == ([{"sku": "MUG-WHT", "qty": 1}], 1795000000000)
    _, headers, body = fake.status_webhook(sale, "SHIPPED")
    adapter(push_url=REGISTERED_URL).verify(hook(body, {"authorization": headers["Authorization"]}), 0)
    assert [r.value["type"] for r in adapter().intake(hook(body)).records] == ["SHIPPED"]
