"""TikTok Shop: webhook verification and intake, Update Inventory requests and answers, the fake.

Signatures are known vectors computed with openssl over the same bytes:
  webhook: printf '%s' "app-key-123$BODY" | openssl dgst -sha256 -hmac tts-secret
  API:     printf '%s' "tts-secret$PATH""app_keyapp-key-123shop_cipher$CIPHER""timestamp1795000000$BODY""tts-secret" \
             | openssl dgst -sha256 -hmac tts-secret
"""

from __future__ import annotations

import json
import time
from urllib.parse import urlencode

import pytest

from connectors.base import ApiCall, Intake, NotConfigured, PayloadError, StockPush, Webhook
from connectors.config import stock_pushers
from connectors.fakes.base import Sale
from connectors.fakes.tiktok import FakeTikTok
from connectors.signatures import SignatureError, tiktok_signature
from connectors.tiktok import TikTokStockPusher, TikTokWebhooks, api_sign
from lockstock.catalog import catalog_from_dict, load_catalog
from tests.unit.connectors.helpers import AdapterGateway, send, summary, values

APP_KEY, SECRET, TOKEN = "app-key-123", "tts-secret", "tts-access-token"
US_SHOP, EU_SHOP = "7494049642642441621", "7494049642642441999"
US_CIPHER = "GCP_XF90igAAAABh00qsWgtvOiGFNqyubMt3"
TEE, CAP = "1729592969712206112", "1729592969712206200"  # product ids
SKUS = {
    "TEE-BLK-M": {"product_id": TEE, "sku_id": "1729592969712207008"},
    "TEE-BLK-L": {"product_id": TEE, "sku_id": "1729592969712207009"},
    "CAP-RED": {"product_id": CAP, "sku_id": "1729592969712207100"},
}
CATALOG = catalog_from_dict({
    "regions": {"US": {"warehouses": ["LA"]}, "EU": {"warehouses": ["RTM"]}},
    "channels": {
        "tiktok-us": {"platform": "tiktok", "region": "US", "rate_limit_per_min": 120, "account": US_SHOP,
                      "connector": {"shop_cipher": US_CIPHER, "warehouse_id": "7068517275539719942", "skus": SKUS}},
        "tiktok-eu": {"platform": "tiktok", "region": "EU", "rate_limit_per_min": 120, "account": EU_SHOP,
                      "connector": {"shop_cipher": "GCP_EU_cipher", "skus": {"TEE-BLK-M": SKUS["TEE-BLK-M"]}}},
    },
    "connectors": {"tiktok": {"app_key": APP_KEY}},
})
SETTINGS = {"app_key": APP_KEY, "base_url": "https://open-api.tiktokglobalshop.com"}
CREDENTIALS = {"app_secret": SECRET, "access_token": TOKEN}

HOOK_BODY = (b'{"type":1,"tts_notification_id":"7327112393057371910","shop_id":"7494049642642441621",'
             b'"timestamp":1795000000,"data":{"order_id":"576461413038785752","order_status":"CANCELLED",'
             b'"update_time":1795000000}}')
HOOK_SIG = "c12a100edbd80a1ba5edefb43699da1a7315d040b057e81cdeb02c4088258b2a"
API_SIGN = "0db90f58b9f8fff200a63edb879e52b9f36a1017519fe46914a3afbd4a0e7f28"


def adapter() -> TikTokWebhooks:
    return TikTokWebhooks(CATALOG, SECRET, {"app_key": APP_KEY})


def hook(body: bytes | dict, headers: dict[str, str] | None = None) -> Webhook:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Webhook("tiktok", "https://gw.example/webhooks/tiktok", headers or {}, raw, received_at=0)


def status_change(status: str, *, notification: str | None = "n-1", shop: str = US_SHOP, **data) -> dict:
    body = {"type": 1, "shop_id": shop, "timestamp": 1795000100,
            "data": {"order_id": "576461413038785752", "order_status": status, "update_time": 1795000050, **data}}
    if notification is not None:
        body["tts_notification_id"] = notification
    return body


# ---- signatures ------------------------------------------------------------------------------
def test_known_vector_verifies():
    adapter().verify(hook(HOOK_BODY, {"authorization": HOOK_SIG}), now_s=0)


@pytest.mark.parametrize("secret, body, headers, problem", [
    (SECRET, HOOK_BODY.replace(b"CANCELLED", b"COMPLETED"), {"authorization": HOOK_SIG}, "does not match"),
    ("other-secret", HOOK_BODY, {"authorization": HOOK_SIG}, "does not match"),
    (SECRET, HOOK_BODY, {}, "missing"),
    (SECRET, HOOK_BODY, {"authorization": " "}, "missing"),
])
def test_bad_signatures_are_refused(secret, body, headers, problem):
    with pytest.raises(SignatureError, match=problem):
        TikTokWebhooks(CATALOG, secret, {"app_key": APP_KEY}).verify(hook(body, headers), now_s=0)


def test_wrong_app_key_does_not_verify():
    with pytest.raises(SignatureError, match="does not match"):
        TikTokWebhooks(CATALOG, SECRET, {"app_key": "other"}).verify(hook(HOOK_BODY, {"authorization": HOOK_SIG}), 0)


def test_missing_app_key_is_not_configured():
    with pytest.raises(NotConfigured, match="app_key"):
        TikTokWebhooks(CATALOG, SECRET, {})
    with pytest.raises(NotConfigured, match="app_key"):
        TikTokStockPusher(CATALOG, {}, CREDENTIALS)


# ---- status mapping --------------------------------------------------------------------------
PLACED = {"order_id": "tiktok:576461413038785752", "channel": "tiktok-us", "buyer_id": "tiktok:7494560109732334",
          "ship_to_region": "", "placed_at": 1795000000000, "lines": [{"sku": "TEE-BLK-M", "qty": 2}]}
LINES = {"create_time": 1795000000, "user_id": "7494560109732334",
         "line_items": [{"seller_sku": "TEE-BLK-M", "quantity": 2, "sku_id": "1729592969712207008"}]}


def event(kind: str, reason: str | None = None) -> dict:
    return {"event_id": f"tiktok:576461413038785752:{kind}", "order_id": "tiktok:576461413038785752", "type": kind,
            "channel": "tiktok-us", "occurred_at": 1795000050000, "warehouse": None, "reason": reason}


def test_awaiting_shipment_with_lines_places_and_pays():
    intake = adapter().intake(hook(status_change("AWAITING_SHIPMENT", **LINES)))
    assert intake.delivery_id == "n-1" and not intake.ignored
    assert values(intake) == [("OrderPlaced", PLACED), ("OrderEvent", event("PAID"))]
    assert [r.key for r in intake.records] == ["tiktok:576461413038785752"] * 2


def test_unpaid_with_lines_places_only():
    assert values(adapter().intake(hook(status_change("UNPAID", **LINES)))) == [("OrderPlaced", PLACED)]


def test_on_hold_is_paid():
    assert values(adapter().intake(hook(status_change("ON_HOLD")))) == [("OrderEvent", event("PAID"))]


def test_awaiting_shipment_without_lines_is_paid_only():
    assert values(adapter().intake(hook(status_change("AWAITING_SHIPMENT")))) == [("OrderEvent", event("PAID"))]


def test_unpaid_without_lines_is_ignored_and_says_why():
    intake = adapter().intake(hook(status_change("UNPAID")))
    assert intake.records == () and "Get Order Detail" in intake.ignored


def test_cancelled_carries_the_reason():
    intake = adapter().intake(hook(status_change("CANCELLED", cancel_reason="Buyer changed mind")))
    assert values(intake) == [("OrderEvent", event("CANCELLED", "Buyer changed mind"))]


@pytest.mark.parametrize("status", ["IN_TRANSIT", "DELIVERED", "COMPLETED"])
def test_shipped_statuses_share_one_event_id(status):
    assert values(adapter().intake(hook(status_change(status)))) == [("OrderEvent", event("SHIPPED"))]


@pytest.mark.parametrize("status", ["AWAITING_COLLECTION", "PARTIALLY_SHIPPING", "SOMETHING_NEW"])
def test_other_statuses_are_ignored(status):
    intake = adapter().intake(hook(status_change(status)))
    assert intake.records == () and status in intake.ignored


def test_other_webhook_types_are_ignored():
    intake = adapter().intake(hook({"type": 4, "tts_notification_id": "n-9", "shop_id": US_SHOP, "data": {}}))
    assert intake == Intake("n-9", (), ignored="webhook type 4 is not an order status change")


def test_delivery_id_without_notification_id_is_order_status_and_time():
    intake = adapter().intake(hook(status_change("CANCELLED", notification=None)))
    assert intake.delivery_id == "576461413038785752:CANCELLED:1795000050"


def test_line_items_without_quantity_are_one_unit_each_and_add_up():
    items = [{"seller_sku": "TEE-BLK-M"}, {"seller_sku": "TEE-BLK-M"}, {"seller_sku": "CAP-RED", "quantity": 3}]
    placed = adapter().intake(hook(status_change("UNPAID", line_items=items))).records[0].value
    assert placed["lines"] == [{"sku": "TEE-BLK-M", "qty": 2}, {"sku": "CAP-RED", "qty": 3}]
    assert placed["buyer_id"] == "tiktok:576461413038785752:buyer" and placed["placed_at"] == 1795000050000


def test_channel_is_chosen_by_shop_id():
    intake = adapter().intake(hook(status_change("CANCELLED", shop=EU_SHOP)))
    assert intake.records[0].value["channel"] == "tiktok-eu"


def test_unknown_shop_is_a_payload_error():
    with pytest.raises(PayloadError, match="no tiktok channel has account"):
        adapter().intake(hook(status_change("CANCELLED", shop="123")))


@pytest.mark.parametrize("body", [
    b"\xff\xfe not utf-8", b"{not json", b"[1, 2]", b"42", b"null", b"[" * 100_000 + b"]" * 100_000,
    {"type": "1", "shop_id": US_SHOP, "data": {}},
    {"type": True, "shop_id": US_SHOP, "data": {}},
    {"type": 1, "shop_id": US_SHOP},
    {"type": 1, "shop_id": US_SHOP, "data": []},
    {"type": 1, "data": {"order_id": "1", "order_status": "CANCELLED", "update_time": 1795000000}},
    {"type": 1, "shop_id": {"id": 1}, "data": {"order_id": "1", "order_status": "CANCELLED", "update_time": 1}},
    status_change("CANCELLED", order_id=None),
    status_change("CANCELLED", order_id=1.5),
    status_change("CANCELLED", order_status=None),
    status_change("CANCELLED", order_status=7),
    status_change("CANCELLED", update_time="1795000050"),
    status_change("CANCELLED", update_time=1795000050000000),
    status_change("UNPAID", line_items={"seller_sku": "TEE-BLK-M"}),
    status_change("UNPAID", line_items=["TEE-BLK-M"]),
    status_change("UNPAID", line_items=[{"seller_sku": "TEE-BLK-M", "quantity": "2"}]),
    status_change("UNPAID", line_items=[{"seller_sku": "TEE-BLK-M", "quantity": 0}]),
    status_change("UNPAID", line_items=[{"seller_sku": "TEE-BLK-M", "quantity": 2**31}]),
    status_change("UNPAID", line_items=[{"quantity": 1}]),
    status_change("UNPAID", line_items=[{"seller_sku": "TEE-BLK-M"}], user_id=["x"]),
    status_change("UNPAID", line_items=[{"seller_sku": "TEE-BLK-M"}], create_time="yesterday"),
])
def test_malformed_bodies_are_payload_errors(body):
    with pytest.raises(PayloadError):
        adapter().intake(hook(body))


# ---- outbound: request shape, signing, grouping ----------------------------------------------
def pusher(**settings) -> TikTokStockPusher:
    return TikTokStockPusher(CATALOG, {**SETTINGS, **settings}, CREDENTIALS)


def push(sku: str, qty: int, channel: str = "tiktok-us") -> StockPush:
    return StockPush(channel, sku, qty)


def test_request_shape_and_known_sign():
    [call] = pusher().build_calls(CATALOG.channels["tiktok-us"], [push("TEE-BLK-M", 37)], now_s=1795000000.7)
    assert call.method == "POST"
    assert call.url == (f"https://open-api.tiktokglobalshop.com/product/202309/products/{TEE}/inventory/update"
                        f"?app_key={APP_KEY}&shop_cipher={US_CIPHER}&sign={API_SIGN}&timestamp=1795000000")
    assert call.headers == {"content-type": "application/json", "x-tts-access-token": TOKEN}
    assert call.body == (b'{"skus":[{"id":"1729592969712207008","inventory":[{"warehouse_id":"7068517275539719942",'
                         b'"quantity":37}]}]}')
    assert call.pushes == (push("TEE-BLK-M", 37),)


def test_api_sign_skips_sign_and_access_token_and_sorts_the_rest():
    params = {"timestamp": "1795000000", "shop_cipher": US_CIPHER, "app_key": APP_KEY, "sign": "x", "access_token": "y"}
    path = f"/product/202309/products/{TEE}/inventory/update"
    body = b'{"skus":[{"id":"1729592969712207008","inventory":[{"warehouse_id":"7068517275539719942","quantity":37}]}]}'
    assert api_sign(SECRET, path, params, body) == API_SIGN


def test_pushes_are_grouped_by_product_and_clamped():
    calls = pusher().build_calls(CATALOG.channels["tiktok-us"], [
        push("TEE-BLK-M", 5), push("CAP-RED", -2), push("TEE-BLK-L", 250_000), push("NOT-LISTED", 9),
        push("TEE-BLK-M", 4)], now_s=1795000000)
    assert [c.url.split("/")[6] for c in calls] == [TEE, CAP]
    tee, cap = (json.loads(c.body) for c in calls)
    assert [(s["id"], s["inventory"][0]["quantity"]) for s in tee["skus"]] == [
        ("1729592969712207008", 4), ("1729592969712207009", 99_999)]  # later push wins; TikTok's cap
    assert cap["skus"][0]["inventory"][0]["quantity"] == 0
    # each SKU once (the sync settles pushes by SKU); the unlisted SKU rides along to be answered
    assert calls[0].pushes == (push("TEE-BLK-M", 4), push("TEE-BLK-L", 250_000), push("NOT-LISTED", 9))
    assert calls[1].pushes == (push("CAP-RED", -2),)


def test_an_unlisted_sku_is_answered_as_a_final_failure_whatever_the_call_did():
    [call] = pusher().build_calls(CATALOG.channels["tiktok-us"], [push("CAP-RED", 1), push("GONE", 2)], 1795000000)
    for status, body in [(200, answer({"code": 0, "message": "Success", "data": {}})), (429, b"")]:
        outcome = pusher().parse_response(call, status, {}, body)
        gone = [r for r in outcome.results if r.push.sku == "GONE"]
        assert [(r.ok, r.retryable) for r in gone] == [(False, False)] and "not listed on tiktok-us" in gone[0].reason
        assert len(outcome.results) == 2


def test_a_product_with_more_skus_than_max_batch_is_split():
    skus = {f"S{i}": {"product_id": "P1", "sku_id": str(1000 + i)} for i in range(101)}
    catalog = catalog_from_dict({"regions": {"US": {}}, "channels": {"tiktok-us": {
        "platform": "tiktok", "region": "US", "account": US_SHOP,
        "connector": {"shop_cipher": US_CIPHER, "skus": skus}}}})
    calls = TikTokStockPusher(catalog, SETTINGS, CREDENTIALS).build_calls(
        catalog.channels["tiktok-us"], [push(s, 1) for s in skus], now_s=1795000000)
    assert [len(c.pushes) for c in calls] == [100, 1]
    assert "warehouse_id" not in calls[1].body.decode()  # the SKU's default warehouse


@pytest.mark.parametrize("connector, problem", [
    ({"skus": SKUS}, "shop_cipher"),
    ({"shop_cipher": US_CIPHER}, "connector.skus"),
    ({"shop_cipher": US_CIPHER, "skus": {"TEE-BLK-M": {"product_id": TEE}}}, "product_id and sku_id"),
])
def test_channel_without_ids_is_not_configured(connector, problem):
    catalog = catalog_from_dict({"regions": {"US": {}}, "channels": {"tiktok-us": {
        "platform": "tiktok", "region": "US", "account": US_SHOP, "connector": connector}}})
    with pytest.raises(NotConfigured, match=f"tiktok-us.*{problem}"):  # when made, never mid-sync
        TikTokStockPusher(catalog, SETTINGS, CREDENTIALS)


def test_stock_pushers_report_the_default_catalog_as_not_configured():
    pushers = stock_pushers(load_catalog(), env={"LOCKSTOCK_TIKTOK_SECRET": SECRET,
                                                 "LOCKSTOCK_TIKTOK_ACCESS_TOKEN": TOKEN})
    assert isinstance(pushers["tiktok"], NotConfigured) and "app_key" in str(pushers["tiktok"])


# ---- outbound: answers -----------------------------------------------------------------------
def two_sku_call() -> ApiCall:
    [call] = pusher().build_calls(CATALOG.channels["tiktok-us"], [push("TEE-BLK-M", 3), push("TEE-BLK-L", 4)],
                                  now_s=1795000000)
    return call


def answer(payload: dict) -> bytes:
    return json.dumps(payload).encode()


def test_success():
    outcome = pusher().parse_response(two_sku_call(), 200, {}, answer({"code": 0, "message": "Success", "data": {}}))
    assert summary(outcome) == [("TEE-BLK-M", True, False), ("TEE-BLK-L", True, False)] and not outcome.throttled


def test_partial_failure_names_the_refused_sku():
    body = answer({"code": 0, "message": "Success", "data": {"errors": [
        {"code": 12052230, "message": "SKU is not live", "detail": {"sku_id": "1729592969712207009"}}]}})
    outcome = pusher().parse_response(two_sku_call(), 200, {}, body)
    assert summary(outcome) == [("TEE-BLK-M", True, False), ("TEE-BLK-L", False, False)]
    assert outcome.results[1].reason == "TikTok Shop code 12052230: SKU is not live"


def test_failed_call_naming_one_sku_retries_the_others():
    body = answer({"code": 12052230, "message": "update failed", "data": {"errors": [
        {"code": 12052230, "message": "SKU is not live", "detail": {"sku_id": "1729592969712207009"}}]}})
    assert summary(pusher().parse_response(two_sku_call(), 200, {}, body)) == [
        ("TEE-BLK-M", False, True), ("TEE-BLK-L", False, False)]


def test_too_many_requests_code_throttles_even_on_http_200():
    body = answer({"code": 36009002, "message": "Too many requests"})
    outcome = pusher().parse_response(two_sku_call(), 200, {}, body)
    assert outcome.throttled and summary(outcome) == [("TEE-BLK-M", False, True), ("TEE-BLK-L", False, True)]


def test_http_429_throttles_with_retry_after():
    outcome = pusher().parse_response(two_sku_call(), 429, {"Retry-After": "3"}, b"")
    assert outcome.throttled and outcome.retry_after_s == 3.0 and all(r.retryable for r in outcome.results)


@pytest.mark.parametrize("status, body, retryable", [
    (500, b"upstream error", True),
    (200, answer({"code": 36009003, "message": "Internal error. Please try again."}), True),
    (200, answer({"code": 105002, "message": "Expired credentials"}), False),
    (401, answer({"code": 106001, "message": "Invalid signature"}), False),
    (200, b"<html>gateway</html>", True),
])
def test_failures(status, body, retryable):
    outcome = pusher().parse_response(two_sku_call(), status, {}, body)
    assert not outcome.throttled
    assert [(r.ok, r.retryable) for r in outcome.results] == [(False, retryable)] * 2


# ---- the fake, over real HTTP ----------------------------------------------------------------
@pytest.fixture
def running():
    gateway = AdapterGateway(adapter()).start()
    budget = TikTokStockPusher(CATALOG, SETTINGS, CREDENTIALS).budget(CATALOG.channels["tiktok-us"])
    fake = FakeTikTok.for_catalog(CATALOG, app_key=APP_KEY, app_secret=SECRET, access_token=TOKEN,
                                  gateway_url=gateway.url, rate_capacity=budget.capacity,
                                  rate_per_s=budget.refill_per_s).start()
    try:
        yield fake, gateway, pusher(base_url=fake.url)
    finally:
        fake.stop()
        gateway.stop()


def test_fake_end_to_end(running):
    fake, gateway, tiktok = running
    channel = CATALOG.channels["tiktok-us"]
    calls = tiktok.build_calls(channel, [push("TEE-BLK-M", 5), push("TEE-BLK-L", 4), push("CAP-RED", 7)], time.time())
    outcomes = [tiktok.parse_response(call, *send(call)) for call in calls]
    assert [r.ok for o in outcomes for r in o.results] == [True, True, True]
    assert fake.quantity == {(US_SHOP, "TEE-BLK-M"): 5, (US_SHOP, "TEE-BLK-L"): 4, (US_SHOP, "CAP-RED"): 7}

    sale = fake.run(lambda: fake.sell(US_SHOP, "TEE-BLK-M", 2, buyer="7494560109732334"))
    assert sale.delivered and fake.quantity[(US_SHOP, "TEE-BLK-M")] == 3
    placed, paid = gateway.intakes[-1].records
    assert placed.value["lines"] == [{"sku": "TEE-BLK-M", "qty": 2}] and placed.value["channel"] == "tiktok-us"
    assert placed.value["order_id"] == f"tiktok:{sale.order_id}" and paid.value["type"] == "PAID"

    assert fake.run(lambda: fake.deliver_event(sale, "CANCELLED"))
    [cancelled] = gateway.intakes[-1].records
    assert (cancelled.value["type"], cancelled.value["order_id"]) == ("CANCELLED", f"tiktok:{sale.order_id}")


def signed_call(base_url: str, product: str, body: bytes, token: str = TOKEN) -> ApiCall:
    """A request signed like the pusher's, with a body the pusher would never build."""
    path = f"/product/202309/products/{product}/inventory/update"
    params = {"app_key": APP_KEY, "shop_cipher": US_CIPHER, "timestamp": str(int(time.time()))}
    params["sign"] = api_sign(SECRET, path, params, body)
    return ApiCall("POST", f"{base_url}{path}?{urlencode(params)}",
                   {"content-type": "application/json", "x-tts-access-token": token}, body, (push("CAP-RED", 2),))


def test_fake_refuses_a_tampered_body_and_reports_unknown_skus(running):
    fake, _, tiktok = running
    [call] = tiktok.build_calls(CATALOG.channels["tiktok-us"], [push("CAP-RED", 2)], time.time())
    call.body = call.body.replace(b'"quantity":2', b'"quantity":20')
    assert send(call)[0] == 401 and fake.counters["bad_signature"] == 1 and fake.quantity == {}

    body = (b'{"skus":[{"id":"1729592969712207100","inventory":[{"quantity":2}]},'
            b'{"id":"999","inventory":[{"quantity":1}]}]}')
    status, _, answer_body = send(signed_call(fake.url, CAP, body))
    assert status == 200 and json.loads(answer_body)["data"]["errors"][0]["detail"]["sku_id"] == "999"
    assert fake.quantity == {(US_SHOP, "CAP-RED"): 2} and fake.counters["unknown_sku"] == 1


def test_fake_refuses_bad_token_and_bad_shape(running):
    fake, _, tiktok = running
    [call] = tiktok.build_calls(CATALOG.channels["tiktok-us"], [push("CAP-RED", 2)], time.time())
    call.headers["x-tts-access-token"] = "stolen"
    status, _, body = send(call)
    assert status == 401 and json.loads(body)["code"] == 105002
    assert [(r.ok, r.retryable) for r in tiktok.parse_response(call, status, {}, body).results] == [(False, False)]
    assert fake.counters["bad_signature"] == 1 and fake.quantity == {}

    body = b'{"skus":[{"id":"1729592969712207100","inventory":[{"quantity":-1}]}]}'
    status, _, answer_body = send(signed_call(fake.url, CAP, body))
    assert status == 400 and "quantity" in json.loads(answer_body)["message"] and fake.counters["bad_shape"] == 1


def test_fake_throttles_a_burst_beyond_the_budget(running):
    fake, _, tiktok = running
    budget = tiktok.budget(CATALOG.channels["tiktok-us"])
    assert (budget.capacity, budget.refill_per_s) == (2.0, 2.0) == fake._rate  # the same numbers on both sides
    channel = CATALOG.channels["tiktok-us"]
    outcomes = [tiktok.parse_response(call, *send(call))
                for call in [tiktok.build_calls(channel, [push("CAP-RED", n)], time.time())[0] for n in range(5)]]
    throttled = [o for o in outcomes if o.throttled]
    assert outcomes[0].results[0].ok and len(throttled) >= 2
    assert all(o.retry_after_s and o.retry_after_s >= 1 and o.results[0].retryable for o in throttled)
    assert fake.counters["throttled"] == len(throttled) and fake.counters["calls"] == 5


def test_fake_webhooks_are_signed_like_tiktok():
    fake = FakeTikTok.for_catalog(CATALOG, app_key=APP_KEY, app_secret=SECRET, access_token=TOKEN,
                                  order_status="UNPAID")
    sale = Sale("576461413038785999", US_SHOP, "CAP-RED", 1, "buyer-1", at=1795000000)
    path, headers, body = fake.order_webhook(sale)
    assert path == "/webhooks/tiktok" and headers["Authorization"] == tiktok_signature(SECRET, APP_KEY, body)
    intake = adapter().intake(hook(body, {"authorization": headers["Authorization"]}))
    assert values(intake) == [("OrderPlaced", {
        "order_id": "tiktok:576461413038785999", "channel": "tiktok-us", "buyer_id": "tiktok:buyer-1",
        "ship_to_region": "", "placed_at": 1795000000000, "lines": [{"sku": "CAP-RED", "qty": 1}]})]
    _, headers, body = fake.status_webhook(sale, "IN_TRANSIT")
    adapter().verify(hook(body, {"authorization": headers["Authorization"]}), 0)
    assert [r.value["type"] for r in adapter().intake(hook(body)).records] == ["SHIPPED"]
