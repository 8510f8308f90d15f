"""Amazon: SigV4 against AWS's documented vectors, ORDER_CHANGE mapping, the listings pusher, the
fake's listings and SQS endpoints, and the consume loop's delete-only-after-ack behaviour.

SigV4 is checked on both sides: ``sign_request`` (lockstock's, by botocore) and the fake's own
verifier (``canonical_request``, ``signing_key``, ``sigv4_signature`` in connectors/fakes/amazon.py);
more vectors for both are in test_amazon_signing.py.

SigV4 vectors: the IAM ListUsers example of the AWS General Reference (sigv4-create-canonical-
request / sigv4-calculate-signature / sigv4-add-signature-to-request) and three S3 examples of
"Signature Calculations for the Authorization Header" (GET Object, GET Bucket lifecycle, GET
Bucket list). The SQS POST vector was derived independently in a shell: sha256sum over the body
and the canonical request, then the signing-key chain and signature with
`openssl dgst -sha256 -mac HMAC -macopt key:AWS4<secret>` / `-macopt hexkey:<previous>`.
Timestamps expected below were computed with `date -u -d <iso> +%s%3N`."""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
import math
import time
from collections import Counter

import aiohttp
import pytest

from connectors.amazon import (
    AmazonNotifications, AmazonStockPusher, NotificationSource, QueueMessage, SqsError, SqsSource,
    consume_notifications, notification_source, queue_region, sign_request,
)
from connectors.base import REGISTRY, ApiCall, Intake, NotConfigured, PayloadError, RateBudget, StockPush
from connectors.config import stock_pushers, webhook_adapters
from connectors.fakes.amazon import FakeAmazon, canonical_request, signing_key, sigv4_signature, sns_envelope
from connectors.fakes.base import Sale
from lockstock.catalog import catalog_from_dict
from lockstock.errors import SettingsError
from tests.unit.connectors.helpers import execute

US, DE = "ATVPDKIKX0DER", "A1PA6795UKMFR9"
SELLER = "A3TH9S8BH6GOGM"
AKID, SECRET = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"


def make_catalog(**section):
    return catalog_from_dict({
        "regions": {"US": {"warehouses": ["LA"]}, "EU": {"warehouses": ["RTM"]}},
        "channels": {
            "amazon-us": {"platform": "amazon", "region": "US", "account": US, "connector": {"product_type": "SHIRT"}},
            "amazon-eu": {"platform": "amazon", "region": "EU", "account": DE,
                          "connector": {"base_url": "https://sellingpartnerapi-eu.amazon.com"}},
            "shopify": {"platform": "shopify", "region": "US"},
        },
        "connectors": {"amazon": {"seller_id": SELLER, **section}},
    })


CATALOG = make_catalog()


# ---- SigV4 ------------------------------------------------------------------------------------

def test_sigv4_matches_the_documented_iam_example():
    headers = {"content-type": "application/x-www-form-urlencoded; charset=utf-8", "host": "iam.amazonaws.com",
               "x-amz-date": "20150830T123600Z"}
    canonical, signed = canonical_request("GET", "/", "Action=ListUsers&Version=2010-05-08", headers, b"")
    assert signed == "content-type;host;x-amz-date"
    assert hashlib.sha256(canonical.encode()).hexdigest() == \
        "f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59"
    assert signing_key(SECRET, "20150830", "us-east-1", "iam").hex() == \
        "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9"
    signed_headers = sign_request("GET", "https://iam.amazonaws.com/?Action=ListUsers&Version=2010-05-08",
                                  {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}, b"",
                                  access_key=AKID, secret_key=SECRET, region="us-east-1", service="iam",
                                  amz_date="20150830T123600Z")
    assert signed_headers["authorization"] == (
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, "
        "SignedHeaders=content-type;host;x-amz-date, "
        "Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7")


S3_EMPTY = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


@pytest.mark.parametrize("path, query, extra, signature", [
    ("/test.txt", "", {"range": "bytes=0-9"}, "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"),
    ("/", "lifecycle", {}, "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"),
    ("/", "max-keys=2&prefix=J", {}, "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"),
])
def test_sigv4_matches_the_documented_s3_examples(path, query, extra, signature):
    headers = {"Host": "examplebucket.s3.amazonaws.com", "x-amz-content-sha256": S3_EMPTY,
               "x-amz-date": "20130524T000000Z", **extra}
    canonical, _ = canonical_request("GET", path, query, headers, b"")
    assert sigv4_signature("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "20130524T000000Z", "us-east-1", "s3",
                           canonical) == signature


def test_sigv4_of_an_sqs_receive_matches_an_openssl_derivation():
    body = (b'{"QueueUrl":"https://sqs.us-east-1.amazonaws.com/123456789012/lockstock-orders",'
            b'"MaxNumberOfMessages":10,"WaitTimeSeconds":1}')
    headers = sign_request("POST", "https://sqs.us-east-1.amazonaws.com/",
                           {"content-type": "application/x-amz-json-1.0", "x-amz-target": "AmazonSQS.ReceiveMessage"},
                           body, access_key=AKID, secret_key=SECRET, region="us-east-1", service="sqs",
                           amz_date="20260301T120000Z")
    assert headers["host"] == "sqs.us-east-1.amazonaws.com"
    assert headers["authorization"] == (
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260301/us-east-1/sqs/aws4_request, "
        "SignedHeaders=content-type;host;x-amz-date;x-amz-target, "
        "Signature=74d50be5ae9126bc1aa9680b612bde95ee4133a0173efc2e2e685089bafe93e4")
    tampered = sign_request("POST", "https://sqs.us-east-1.amazonaws.com/",
                            {"content-type": "application/x-amz-json-1.0", "x-amz-target": "AmazonSQS.ReceiveMessage"},
                            body.replace(b"10", b"9"), access_key=AKID, secret_key=SECRET, region="us-east-1",
                            service="sqs", amz_date="20260301T120000Z")
    assert tampered["authorization"] != headers["authorization"]


def test_session_tokens_are_signed():
    headers = sign_request("POST", "https://sqs.eu-west-1.amazonaws.com/", {}, b"{}", access_key=AKID,
                           secret_key=SECRET, region="eu-west-1", service="sqs", amz_date="20260301T120000Z",
                           session_token="FwoGZXIvYXdzEXAMPLE")
    assert headers["x-amz-security-token"] == "FwoGZXIvYXdzEXAMPLE"
    assert "SignedHeaders=host;x-amz-date;x-amz-security-token," in headers["authorization"]


@pytest.mark.parametrize("url, region", [
    ("https://sqs.us-east-1.amazonaws.com/123456789012/orders", "us-east-1"),
    ("https://sqs.eu-west-1.amazonaws.com/123456789012/orders", "eu-west-1"),
    ("https://sqs.cn-north-1.amazonaws.com.cn/123456789012/orders", "cn-north-1"),
    ("https://ap-southeast-1.queue.amazonaws.com/123456789012/orders", "ap-southeast-1"),
    ("http://127.0.0.1:9324/000000000000/orders", ""),
])
def test_queue_region(url, region):
    assert queue_region(url) == region


# ---- ORDER_CHANGE -> records ------------------------------------------------------------------

# The example of the OrderChangeNotification schema (selling-partner-api-models), verbatim values.
DOCUMENTED = {
    "NotificationVersion": "1.0", "NotificationType": "ORDER_CHANGE", "PayloadVersion": "1.0",
    "EventTime": "2020-01-11T00:09:53.109Z",
    "Payload": {"OrderChangeNotification": {
        "NotificationLevel": "OrderLevel", "SellerId": SELLER, "AmazonOrderId": "903-8868176-2219830",
        "OrderChangeType": "BuyerRequestedChange",
        "OrderChangeTrigger": {"TimeOfOrderChange": "2022-11-29T19:42:04.284Z",
                               "ChangeReason": "Buyer Requested Cancel"},
        "Summary": {
            "MarketplaceId": US, "OrderStatus": "Unshipped", "PurchaseDate": "2022-07-13T19:42:04.284Z",
            "DestinationPostalCode": "48110", "FulfillmentType": "MFN", "OrderType": "StandardOrder",
            "NumberOfItemsShipped": 0, "NumberOfItemsUnshipped": 10,
            "OrderItems": [{"OrderItemId": "OIID34853450", "SellerSKU": "SellerSKUID1",
                            "SupplySourceId": "d7679e14-031b-4ab3-a81b-ec4fc7a460b3", "OrderItemStatus": "Unshipped",
                            "Quantity": 10, "QuantityShipped": 0, "IsBuyerRequestedCancel": True}],
        }}},
    "NotificationMetadata": {"ApplicationId": "app-id-d0e9e693-c3ad-4373-979f-ed4ec98dd746",
                             "SubscriptionId": "subscription-id-d0e9e693-c3ad-4373-979f-ed4ec98dd746",
                             "PublishTime": "2020-07-13T19:42:04.284Z",
                             "NotificationId": "d0e9e693-c3ad-4373-979f-ed4ec98dd746"},
}
PURCHASED_MS, CHANGED_MS = 1657741324284, 1669750924284
ADAPTER = AmazonNotifications(CATALOG)


def with_status(status: str, **summary) -> dict:
    doc = copy.deepcopy(DOCUMENTED)
    doc["Payload"]["OrderChangeNotification"]["OrderChangeType"] = "OrderStatusChange"
    doc["Payload"]["OrderChangeNotification"]["Summary"].update(OrderStatus=status, **summary)
    return doc


def body(doc) -> bytes:
    return json.dumps(doc).encode()


PLACED = {"order_id": "amazon:903-8868176-2219830", "channel": "amazon-us",
          "buyer_id": "amazon:buyer-of-903-8868176-2219830", "ship_to_region": "", "placed_at": PURCHASED_MS,
          "lines": [{"sku": "SellerSKUID1", "qty": 10}]}


def test_the_documented_example_is_placed_and_paid():
    intake = ADAPTER.intake(body(DOCUMENTED))
    assert intake.delivery_id == "d0e9e693-c3ad-4373-979f-ed4ec98dd746" and intake.ignored == ""
    assert [(e.record, e.key, e.value) for e in intake.records] == [
        ("OrderPlaced", "amazon:903-8868176-2219830", PLACED),
        ("OrderEvent", "amazon:903-8868176-2219830",
         {"event_id": "amazon:903-8868176-2219830:PAID", "order_id": "amazon:903-8868176-2219830", "type": "PAID",
          "channel": "amazon-us", "occurred_at": CHANGED_MS, "warehouse": None, "reason": None}),
    ]


def test_pending_is_placed_only():
    intake = ADAPTER.intake(body(with_status("Pending")))
    assert [(e.record, e.value) for e in intake.records] == [("OrderPlaced", PLACED)]


def test_canceled_releases_with_amazons_reason_and_shipped_ships():
    cancelled = ADAPTER.intake(body(with_status("Canceled"))).records
    shipped = ADAPTER.intake(body(with_status("Shipped"))).records
    assert [e.value for e in cancelled] == [
        {"event_id": "amazon:903-8868176-2219830:CANCELLED", "order_id": "amazon:903-8868176-2219830",
         "type": "CANCELLED", "channel": "amazon-us", "occurred_at": CHANGED_MS, "warehouse": None,
         "reason": "Buyer Requested Cancel"}]
    assert [e.value for e in shipped] == [
        {"event_id": "amazon:903-8868176-2219830:SHIPPED", "order_id": "amazon:903-8868176-2219830",
         "type": "SHIPPED", "channel": "amazon-us", "occurred_at": CHANGED_MS, "warehouse": None, "reason": None}]


def test_event_ids_are_per_order_and_type_so_two_notifications_pay_once():
    again = copy.deepcopy(DOCUMENTED)
    again["NotificationMetadata"]["NotificationId"] = "another-notification"
    first, second = ADAPTER.intake(body(DOCUMENTED)), ADAPTER.intake(body(again))
    assert first.delivery_id != second.delivery_id
    assert first.records[1].value["event_id"] == second.records[1].value["event_id"]


def test_the_eu_marketplace_maps_to_its_channel_and_items_of_one_sku_add_up():
    doc = with_status("Pending", MarketplaceId=DE, OrderItems=[
        {"SellerSKU": "TEE-RED-M", "Quantity": 1}, {"SellerSKU": "TEE-BLU-L", "Quantity": 2},
        {"SellerSKU": "TEE-RED-M", "Quantity": 3}, {"SellerSKU": "MUG", "Quantity": 0}])
    (placed,) = ADAPTER.intake(body(doc)).records
    assert placed.value["channel"] == "amazon-eu"
    assert placed.value["lines"] == [{"sku": "TEE-RED-M", "qty": 4}, {"sku": "TEE-BLU-L", "qty": 2}]


def test_an_sns_envelope_is_unwrapped():
    wrapped = sns_envelope(DOCUMENTED, "arn:aws:sns:us-east-1:123456789012:sp-api")
    assert ADAPTER.intake(body(wrapped)) == ADAPTER.intake(body(DOCUMENTED))


@pytest.mark.parametrize("status", ["PartiallyShipped", "Unfulfillable", "InvoiceUnconfirmed", "PendingAvailability"])
def test_other_statuses_are_ignored_with_the_reason(status):
    intake = ADAPTER.intake(body(with_status(status)))
    assert intake == Intake("d0e9e693-c3ad-4373-979f-ed4ec98dd746", (), f"order 903-8868176-2219830 is {status}; "
                            "lockstock acts on Pending, Unshipped, Canceled, Shipped")


def test_other_notification_types_and_sns_control_messages_are_ignored():
    offer = {"NotificationType": "ANY_OFFER_CHANGED", "NotificationMetadata": {"NotificationId": "n-1"}, "Payload": {}}
    assert ADAPTER.intake(body(offer)) == Intake("n-1", (), "notification type 'ANY_OFFER_CHANGED' is not ORDER_CHANGE")
    confirm = {"Type": "SubscriptionConfirmation", "MessageId": "m-1", "SubscribeURL": "https://sns.example/confirm"}
    assert ADAPTER.intake(body(confirm)).ignored == "SNS message of type 'SubscriptionConfirmation', not a notification"


def test_an_unknown_marketplace_is_a_payload_error():
    with pytest.raises(PayloadError, match="no amazon channel has account 'A1F83G8C2ARO7P'"):
        ADAPTER.intake(body(with_status("Pending", MarketplaceId="A1F83G8C2ARO7P")))


def _malformed():
    def edit(change):
        doc = copy.deepcopy(DOCUMENTED)
        change(doc, doc["Payload"]["OrderChangeNotification"], doc["Payload"]["OrderChangeNotification"]["Summary"])
        return body(doc)

    return {
        "not json": b"{nope",
        "not utf-8": b'{"NotificationType": "\xff\xfe"}',
        "a list": b"[1, 2]",
        "no metadata": edit(lambda d, c, s: d.pop("NotificationMetadata")),
        "notification id a number": edit(lambda d, c, s: d["NotificationMetadata"].update(NotificationId=7)),
        "payload a string": edit(lambda d, c, s: d.update(Payload="x")),
        "no order id": edit(lambda d, c, s: c.pop("AmazonOrderId")),
        "summary a list": edit(lambda d, c, s: c.update(Summary=[])),
        "status missing": edit(lambda d, c, s: s.pop("OrderStatus")),
        "marketplace missing": edit(lambda d, c, s: s.pop("MarketplaceId")),
        "items missing": edit(lambda d, c, s: s.pop("OrderItems")),
        "item a string": edit(lambda d, c, s: s.update(OrderItems=["SellerSKUID1"])),
        "quantity a string": edit(lambda d, c, s: s["OrderItems"][0].update(Quantity="10")),
        "quantity negative": edit(lambda d, c, s: s["OrderItems"][0].update(Quantity=-1)),
        "quantity true": edit(lambda d, c, s: s["OrderItems"][0].update(Quantity=True)),
        "every quantity 0": edit(lambda d, c, s: s["OrderItems"][0].update(Quantity=0)),
        "sku missing": edit(lambda d, c, s: s["OrderItems"][0].pop("SellerSKU")),
        "purchase date garbage": edit(lambda d, c, s: s.update(PurchaseDate="yesterday")),
        "purchase date without zone": edit(lambda d, c, s: s.update(PurchaseDate="2022-07-13T19:42:04")),
        "change time a number": edit(lambda d, c, s: c["OrderChangeTrigger"].update(TimeOfOrderChange=5)),
        "sns message not a string": body({"Type": "Notification", "MessageId": "m", "Message": {"a": 1}}),
        "sns message not json": body({"Type": "Notification", "MessageId": "m", "Message": "{x"}),
    }


@pytest.mark.parametrize("name", sorted(_malformed()))
def test_malformed_notifications_are_payload_errors(name):
    with pytest.raises(PayloadError):
        ADAPTER.intake(_malformed()[name])


def test_amazon_is_not_a_webhook_route():
    assert "amazon" not in webhook_adapters(CATALOG, env={})


# ---- the listings pusher ----------------------------------------------------------------------

def pusher(catalog=CATALOG, token="Atza|token"):
    return AmazonStockPusher(catalog, catalog.connectors["amazon"], {"access_token": token})


def test_the_patch_call_is_the_listings_items_api_shape():
    (call,) = pusher().build_calls(CATALOG.channels["amazon-us"], [StockPush("amazon-us", "TEE/RED M", 7)], 0.0)
    assert call.method == "PATCH"
    assert call.url == ("https://sellingpartnerapi-na.amazon.com/listings/2021-08-01/items/A3TH9S8BH6GOGM/"
                        "TEE%2FRED%20M?marketplaceIds=ATVPDKIKX0DER")
    assert call.headers["x-amz-access-token"] == "Atza|token"
    assert call.headers["content-type"] == "application/json"
    assert json.loads(call.body) == {"productType": "SHIRT", "patches": [{
        "op": "replace", "path": "/attributes/fulfillment_availability",
        "value": [{"fulfillment_channel_code": "DEFAULT", "quantity": 7}]}]}
    assert call.pushes == (StockPush("amazon-us", "TEE/RED M", 7),)


def test_one_sku_per_call_with_the_channels_endpoint_and_default_product_type():
    pushes = [StockPush("amazon-eu", "A", 1), StockPush("amazon-eu", "B", -3)]
    calls = pusher().build_calls(CATALOG.channels["amazon-eu"], pushes, 0.0)
    assert AmazonStockPusher.max_batch == 1 and len(calls) == 2
    assert calls[0].url.startswith("https://sellingpartnerapi-eu.amazon.com/listings/2021-08-01/items/")
    assert calls[0].url.endswith("/A?marketplaceIds=A1PA6795UKMFR9")
    assert json.loads(calls[0].body)["productType"] == "PRODUCT"
    assert json.loads(calls[1].body)["patches"][0]["value"][0]["quantity"] == 0  # never negative


def test_budget_is_the_documented_usage_plan_unless_overridden():
    channel = CATALOG.channels["amazon-us"]
    assert pusher().budget(channel) == RateBudget(capacity=10, refill_per_s=5)
    custom = make_catalog(rate_per_s=2, burst=5)
    assert pusher(custom).budget(custom.channels["amazon-us"]) == RateBudget(capacity=5, refill_per_s=2)


@pytest.mark.parametrize("bad", [0, -1, "5", True, math.nan, None])
def test_rate_overrides_must_be_positive_numbers(bad):
    with pytest.raises(SettingsError, match="connectors.amazon.rate_per_s must be a number > 0"):
        pusher(make_catalog(rate_per_s=bad))


def test_config_builds_the_pusher_from_the_environment_or_says_what_is_missing():
    assert "LOCKSTOCK_AMAZON_ACCESS_TOKEN" in str(stock_pushers(CATALOG, env={})["amazon"])
    built = stock_pushers(CATALOG, env={"LOCKSTOCK_AMAZON_ACCESS_TOKEN": "Atza|env"})["amazon"]
    assert isinstance(built, AmazonStockPusher) and built.credentials == {"access_token": "Atza|env"}
    assert REGISTRY.pushers["amazon"] is AmazonStockPusher


def test_missing_seller_or_marketplace_is_not_configured():
    no_seller = catalog_from_dict({"regions": {"US": {}}, "channels": {
        "amazon-us": {"platform": "amazon", "region": "US", "account": US}}})
    with pytest.raises(NotConfigured, match="connectors.amazon.seller_id"):
        AmazonStockPusher(no_seller, {}, {"access_token": "t"})
    no_account = catalog_from_dict({"regions": {"US": {}},
                                    "channels": {"amazon-us": {"platform": "amazon", "region": "US"}},
                                    "connectors": {"amazon": {"seller_id": SELLER}}})
    with pytest.raises(NotConfigured, match="channel amazon-us has no account"):
        AmazonStockPusher(no_account, {"seller_id": SELLER}, {"access_token": "t"})


def _call() -> ApiCall:
    return pusher().build_calls(CATALOG.channels["amazon-us"], [StockPush("amazon-us", "TEE", 3)], 0.0)[0]


def test_accepted_and_invalid_answers():
    call = _call()
    ok = pusher().parse_response(call, 200, {}, b'{"sku":"TEE","status":"ACCEPTED","submissionId":"f1","issues":[]}')
    assert ok.results[0].ok and not ok.throttled
    invalid = pusher().parse_response(call, 200, {}, json.dumps({"sku": "TEE", "status": "INVALID", "issues": [
        {"code": "90220", "message": "'fulfillment_availability' is required but not supplied.",
         "severity": "ERROR"}]}).encode())
    result = invalid.results[0]
    assert (result.ok, result.retryable) == (False, False)
    assert result.reason == "INVALID: 90220 'fulfillment_availability' is required but not supplied."


def test_a_429_without_retry_after_waits_one_request_of_the_rate_limit():
    outcome = pusher().parse_response(_call(), 429, {"x-amzn-RateLimit-Limit": "5.0"},
                                      b'{"errors":[{"code":"QuotaExceeded","message":"You exceeded your quota"}]}')
    assert outcome.throttled and outcome.retry_after_s == pytest.approx(0.2)
    assert outcome.results[0].retryable


@pytest.mark.parametrize("status, body_, retryable", [
    (403, b'{"errors":[{"code":"Unauthorized"}]}', False),
    (400, b'{"errors":[{"code":"InvalidInput"}]}', False),
    (503, b"unavailable", True),
    (200, b"<html>", True),
    (200, b'{"sku":"OTHER","status":"ACCEPTED"}', True),
])
def test_other_answers(status, body_, retryable):
    (result,) = pusher().parse_response(_call(), status, {}, body_).results
    assert (result.ok, result.retryable) == (False, retryable)


# ---- the fake's listings endpoint -------------------------------------------------------------

def fake_catalog(fake):
    return make_catalog(base_url=fake.url, queue_url=fake.queue_url, sqs_endpoint=fake.url, region="us-east-1")


@pytest.fixture
def fake():
    budget = pusher().budget(CATALOG.channels["amazon-us"])  # the fake limits with the pusher's own numbers
    fake = FakeAmazon(access_token="Atza|token", seller_id=SELLER, aws_access_key_id=AKID, aws_secret_access_key=SECRET,
                      rate_capacity=budget.capacity, rate_per_s=budget.refill_per_s).start()
    yield fake
    fake.stop()


def test_pushes_set_the_fakes_quantity(fake):
    catalog = fake_catalog(fake)
    the_pusher = pusher(catalog)
    channel = catalog.channels["amazon-us"]
    pushes = [StockPush("amazon-us", "TEE/RED M", 7), StockPush("amazon-us", "MUG", 0)]
    calls = the_pusher.build_calls(channel, pushes, 0)
    outcomes = [the_pusher.parse_response(c, *a) for c, a in zip(calls, asyncio.run(execute(calls)))]
    assert all(o.results[0].ok for o in outcomes)
    assert fake.quantity == {(US, "TEE/RED M"): 7, (US, "MUG"): 0}
    assert fake.counters["bad_signature"] == fake.counters["bad_shape"] == fake.counters["throttled"] == 0


def test_the_fake_refuses_a_wrong_token_a_bad_shape_and_reports_invalid_skus(fake):
    catalog = fake_catalog(fake)
    channel = catalog.channels["amazon-us"]
    wrong = pusher(catalog, token="Atza|stolen").build_calls(channel, [StockPush("amazon-us", "TEE", 1)], 0)
    bad = pusher(catalog).build_calls(channel, [StockPush("amazon-us", "TEE", 1)], 0)
    bad[0].body = json.dumps({"productType": "SHIRT", "patches": [{"op": "replace", "path": "/attributes/item_name",
                                                                     "value": [{"value": "x"}]}]}).encode()
    fake.invalid_skus["OLD"] = "'SHIRT' is not the product type of this listing"
    invalid = pusher(catalog).build_calls(channel, [StockPush("amazon-us", "OLD", 1)], 0)
    (denied, shape, refused) = asyncio.run(execute(wrong + bad + invalid))
    assert denied[0] == 403 and shape[0] == 400 and refused[0] == 200
    assert fake.counters["bad_signature"] == 1 and fake.counters["bad_shape"] == 1
    assert not pusher(catalog).parse_response(wrong[0], *denied).results[0].retryable
    result = pusher(catalog).parse_response(invalid[0], *refused).results[0]
    assert not result.ok and not result.retryable and "not the product type" in result.reason
    assert fake.quantity == {}


def test_the_fakes_burst_is_the_budgets_and_its_429_looks_like_sp_apis(fake):
    catalog = fake_catalog(fake)
    the_pusher = pusher(catalog)
    channel = catalog.channels["amazon-us"]
    budget = the_pusher.budget(channel)
    burst = int(budget.capacity)
    # five more than the burst: a 429 follows unless the calls took a whole second (one refill per 0.2 s)
    pushes = [StockPush("amazon-us", f"SKU-{i}", i) for i in range(burst + 5)]
    calls = the_pusher.build_calls(channel, pushes, 0)
    answers = asyncio.run(execute(calls))
    assert [a[0] for a in answers[:burst]] == [200] * burst  # within the burst: never a 429
    first = next(i for i, a in enumerate(answers) if a[0] == 429)
    status, headers, raw = answers[first]
    assert "Retry-After" not in headers and headers["x-amzn-RateLimit-Limit"] == "5"
    outcome = the_pusher.parse_response(calls[first], status, headers, raw)
    assert outcome.throttled and outcome.retry_after_s == pytest.approx(1 / budget.refill_per_s)
    assert fake.counters["throttled"] == sum(a[0] == 429 for a in answers)


# ---- the fake's SQS queue ---------------------------------------------------------------------

def source_for(fake, secret=SECRET):
    catalog = fake_catalog(fake)
    if secret != SECRET:
        return SqsSource(fake.queue_url, "us-east-1", AKID, secret, endpoint=fake.url)
    source = notification_source(catalog, env={"LOCKSTOCK_AWS_ACCESS_KEY_ID": AKID,
                                               "LOCKSTOCK_AWS_SECRET_ACCESS_KEY": SECRET})
    assert isinstance(source, SqsSource)
    return source


async def receive_all(source, wait_s=0):
    try:
        return await source.receive(10, wait_s)
    finally:
        await source.close()


def test_a_sale_reaches_the_adapter_through_the_signed_queue(fake):
    fake.set_quantity(US, "TEE", 5)
    sale = fake.run(lambda: fake.sell(US, "TEE", 2))
    assert sale.delivered and fake.in_queue == 1
    (message,) = asyncio.run(receive_all(source_for(fake)))
    (placed,) = AmazonNotifications(fake_catalog(fake)).intake(message.body).records
    assert placed.record == "OrderPlaced" and placed.value["order_id"] == f"amazon:{sale.order_id}"
    assert placed.value["channel"] == "amazon-us" and placed.value["lines"] == [{"sku": "TEE", "qty": 2}]
    assert fake.quantity[(US, "TEE")] == 3


def test_status_updates_and_sns_envelopes_map_too(fake):
    fake.sns = True
    sale = Sale(order_id="113-0000001-0000001", account=DE, sku="TEE", qty=1, buyer="b", at=1794900000.0)
    fake.run(lambda: fake.enqueue_status(sale, "Canceled", reason="Buyer cancelled"))
    (message,) = asyncio.run(receive_all(source_for(fake)))
    (event,) = AmazonNotifications(fake_catalog(fake)).intake(message.body).records
    assert (event.value["type"], event.value["channel"], event.value["reason"]) == \
        ("CANCELLED", "amazon-eu", "Buyer cancelled")


def test_a_wrong_secret_is_refused_by_the_queue(fake):
    with pytest.raises(SqsError, match="HTTP 403 .*InvalidSignatureException"):
        asyncio.run(receive_all(source_for(fake, secret="not-the-secret")))
    assert fake.counters["bad_signature"] == 1


def test_long_polling_is_bounded():
    fake = FakeAmazon(access_token="t", seller_id=SELLER, aws_access_key_id=AKID, aws_secret_access_key=SECRET,
                      max_wait_s=0.2).start()
    try:
        started = time.monotonic()
        assert asyncio.run(receive_all(source_for(fake), wait_s=20)) == []
        assert time.monotonic() - started < 5
    finally:
        fake.stop()


def test_notification_source_says_why_it_is_off():
    off = notification_source(CATALOG, env={})
    assert isinstance(off, NotConfigured) and "connectors.amazon.queue_url" in str(off)
    queued = make_catalog(queue_url="https://sqs.eu-west-1.amazonaws.com/123456789012/orders")
    missing = notification_source(queued, env={"LOCKSTOCK_AWS_ACCESS_KEY_ID": AKID})
    assert isinstance(missing, NotConfigured) and "LOCKSTOCK_AWS_SECRET_ACCESS_KEY" in str(missing)
    credentials = {"LOCKSTOCK_AWS_ACCESS_KEY_ID": AKID, "LOCKSTOCK_AWS_SECRET_ACCESS_KEY": SECRET}
    source = notification_source(queued, env=credentials)
    assert isinstance(source, SqsSource) and source.region == "eu-west-1"
    assert source.endpoint == "https://sqs.eu-west-1.amazonaws.com/"
    local = make_catalog(queue_url="http://127.0.0.1:9324/000000000000/orders")
    assert "connectors.amazon.region" in str(notification_source(local, env=credentials))


# ---- the consume loop -------------------------------------------------------------------------

def test_consume_deletes_only_after_handle_confirms_and_redelivers_otherwise(fake):
    catalog = fake_catalog(fake)
    sale = Sale(order_id="113-0000001-0000002", account=US, sku="TEE", qty=1, buyer="b", at=1794900000.0)
    fake.run(lambda: fake.enqueue_status(sale, "Unshipped"))
    seen: list[tuple[str, str]] = []

    async def scenario():
        stop = asyncio.Event()

        async def handle(message, intake):
            seen.append((message.message_id, message.receipt))
            if len(seen) == 1:  # the broker did not acknowledge: keep the message
                await asyncio.get_running_loop().run_in_executor(None, lambda: fake.run(fake.make_visible))
                return False
            stop.set()
            return isinstance(intake, Intake) and [r.value["type"] for r in intake.records[1:]] == ["PAID"]

        source = source_for(fake)
        try:
            return await consume_notifications(source, AmazonNotifications(catalog), handle, wait_s=1, stop=stop)
        finally:
            await source.close()

    counts = asyncio.run(scenario())
    assert counts == Counter(received=2, not_acknowledged=1, deleted=1)
    assert seen[0][0] == seen[1][0] and seen[0][1] != seen[1][1]  # same message, new receipt handle
    assert fake.in_queue == 0 and fake.counters["sqs_redelivered"] == 1 and fake.counters["sqs_deleted"] == 1


class ListSource(NotificationSource):
    """In memory: ``fail`` receive errors first; undeleted messages come back on the next receive."""

    def __init__(self, bodies, fail=0, fail_delete=False):
        self.messages = {f"m{i}": b for i, b in enumerate(bodies)}
        self.fail, self.fail_delete, self.receipts, self.deleted = fail, fail_delete, 0, []

    async def receive(self, max_messages, wait_s):
        if self.fail:
            self.fail -= 1
            raise aiohttp.ClientConnectionError("connection reset")
        self.receipts += 1
        return [QueueMessage(mid, b, f"r{self.receipts}") for mid, b in list(self.messages.items())[:max_messages]]

    async def delete(self, message):
        if self.fail_delete:
            raise SqsError("HTTP 500")
        self.deleted.append(message.message_id)
        self.messages.pop(message.message_id)


def run_loop(source, decide, rounds=3):
    handled = []

    async def scenario():
        stop = asyncio.Event()

        async def handle(message, intake):
            handled.append((message.message_id, intake))
            if len(handled) >= rounds:
                stop.set()
            return decide(message, intake)

        return await consume_notifications(source, ADAPTER, handle, stop=stop, backoff_s=0.0)

    return asyncio.run(scenario()), handled


def test_malformed_bodies_reach_handle_as_payload_errors_and_are_deleted_once_dead_lettered():
    source = ListSource([b"[1]", body(DOCUMENTED)])
    counts, handled = run_loop(source, lambda m, i: True, rounds=2)
    assert isinstance(handled[0][1], PayloadError) and isinstance(handled[1][1], Intake)
    assert source.deleted == ["m0", "m1"] and counts["deleted"] == 2


def test_transport_errors_are_retried_and_handle_failures_keep_the_message():
    source = ListSource([body(DOCUMENTED)], fail=2)
    calls = iter([RuntimeError("producer crashed"), False, True])

    def decide(message, intake):
        outcome = next(calls)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    counts, handled = run_loop(source, decide, rounds=3)
    assert counts == Counter(receive_errors=2, received=3, not_acknowledged=2, deleted=1)
    assert source.deleted == ["m0"] and source.messages == {}


def test_a_failed_delete_is_logged_and_the_loop_goes_on():
    source = ListSource([body(DOCUMENTED)], fail_delete=True)
    counts, handled = run_loop(source, lambda m, i: True, rounds=2)
    assert counts["delete_errors"] == 2 and len(handled) == 2 and source.messages  # redelivered, deduped upstream


def test_an_adapter_bug_reaches_handle_as_a_payload_error():
    class Broken(AmazonNotifications):
        def intake(self, body):
            raise KeyError("Summary")

    handled = []

    async def scenario():
        stop = asyncio.Event()

        async def handle(message, intake):
            handled.append(intake)
            stop.set()
            return True

        return await consume_notifications(ListSource([body(DOCUMENTED)]), Broken(CATALOG), handle, stop=stop)

    assert asyncio.run(scenario())["deleted"] == 1
    assert isinstance(handled[0], PayloadError) and "adapter error KeyError" in str(handled[0])
