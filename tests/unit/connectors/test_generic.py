"""Generic (own site) contract: signature vectors, mapping to exact records, malformed bodies,
the stock pusher's signed batches and the fake site end to end.

Signatures were computed independently: printf '%s' "<ts>.<body>" | openssl dgst -sha256 -hmac own-site;
epoch milliseconds with `date -u -d <iso> +%s%3N`."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from connectors.base import REGISTRY, Intake, NotConfigured, PayloadError, StockPush, Webhook
from connectors.config import stock_pushers, webhook_adapters
from connectors.fakes.base import Sale
from connectors.fakes.generic import FakeGenericSite, signed
from connectors.generic import GenericStockPusher, GenericWebhooks
from connectors.signatures import SignatureError
from tests.builders import catalog_of
from tests.unit.connectors.helpers import execute

SECRET = "own-site"
TS = 1795000000
CREATED = (b'{"event_id":"evt-81723","type":"order.created","order":{"id":"1001","buyer_id":"cust-42",'
           b'"placed_at":"2026-11-27T20:15:03.120Z","lines":[{"sku":"TEE-RED-M","qty":2}]}}')
CREATED_SIG = "sha256=65ce3ddd59952844d47e67b857c7d184ce5081ba163685685a1e2495bbcb520c"
PLACED_MS = 1795810503120
RECEIVED_MS = 1795000000500


def make_catalog(*generic_channels: str, **section):
    """Generic-site channels (plus shopify), all in the US, with ``section`` as the generic connector's."""
    channels = {c: {"platform": "generic", "region": "US"} for c in generic_channels}
    channels["shopify"] = {"platform": "shopify", "region": "US"}
    return catalog_of(channels, connectors={"generic": section})


CATALOG = make_catalog("site", base_url="https://shop.example.com/lockstock")
ADAPTER = GenericWebhooks(CATALOG, SECRET, {})


def hook(body: bytes, headers=None) -> Webhook:
    headers = headers or {"x-lockstock-timestamp": str(TS), "x-lockstock-signature": CREATED_SIG}
    return Webhook("generic", "https://gw.example.com/webhooks/generic", headers, body, RECEIVED_MS)


def doc(kind="order.created", **order) -> bytes:
    base = {"id": "1001", "buyer_id": "cust-42", "placed_at": "2026-11-27T20:15:03.120Z",
            "lines": [{"sku": "TEE-RED-M", "qty": 2}]} if kind == "order.created" else {"id": "1001"}
    base.update(order)
    order = {k: v for k, v in base.items() if v is not ...}  # ... leaves a field out
    return json.dumps({"event_id": "evt-1", "type": kind, "order": order}).encode()


# ---- signatures -------------------------------------------------------------------------------

def test_the_documented_example_verifies():
    ADAPTER.verify(hook(CREATED), now_s=TS + 10)


@pytest.mark.parametrize("body, headers, now, message", [
    (CREATED.replace(b'"qty":2', b'"qty":20'), None, TS, "does not match"),
    (CREATED, {"x-lockstock-timestamp": str(TS + 1), "x-lockstock-signature": CREATED_SIG}, TS, "does not match"),
    (CREATED, None, TS + 301, "replay window"),
    (CREATED, {"x-lockstock-timestamp": str(TS)}, TS, "missing"),
])
def test_tampered_stale_or_unsigned_deliveries_are_refused(body, headers, now, message):
    with pytest.raises(SignatureError, match=message):
        ADAPTER.verify(hook(body, headers), now_s=now)


def test_the_adapter_is_registered_and_refused_without_a_secret():
    assert REGISTRY.webhooks["generic"] is GenericWebhooks
    assert "LOCKSTOCK_GENERIC_SECRET" in str(webhook_adapters(CATALOG, env={})["generic"])
    assert isinstance(webhook_adapters(CATALOG, env={"LOCKSTOCK_GENERIC_SECRET": SECRET})["generic"], GenericWebhooks)


# ---- mapping ----------------------------------------------------------------------------------

def test_order_created_is_an_order_placed():
    intake = ADAPTER.intake(hook(CREATED))
    assert intake.delivery_id == "evt-81723"
    assert [(e.record, e.key, e.value) for e in intake.records] == [("OrderPlaced", "generic:1001", {
        "order_id": "generic:1001", "channel": "site", "buyer_id": "generic:cust-42", "ship_to_region": "",
        "placed_at": PLACED_MS, "lines": [{"sku": "TEE-RED-M", "qty": 2}]})]


def test_epoch_ms_named_channels_regions_and_repeated_skus():
    catalog = make_catalog("site-us", "site-eu")
    adapter = GenericWebhooks(catalog, SECRET, {})
    lines = [{"sku": "A", "qty": 1}, {"sku": "B", "qty": 1}, {"sku": "A", "qty": 2}]
    (placed,) = adapter.intake(hook(doc(id=77, channel="site-eu", buyer_id=9, ship_to_region="EU", placed_at=PLACED_MS,
                                        lines=lines))).records
    assert placed.value == {"order_id": "generic:77", "channel": "site-eu", "buyer_id": "generic:9",
                            "ship_to_region": "EU", "placed_at": PLACED_MS,
                            "lines": [{"sku": "A", "qty": 3}, {"sku": "B", "qty": 1}]}


@pytest.mark.parametrize("kind, order, occurred, expected", [
    ("order.paid", {}, None, {"type": "PAID", "occurred_at": RECEIVED_MS, "warehouse": None, "reason": None}),
    ("order.cancelled", {"reason": "buyer changed mind"}, 1795000000123,
     {"type": "CANCELLED", "occurred_at": 1795000000123, "warehouse": None, "reason": "buyer changed mind"}),
    ("order.shipped", {"warehouse": "NJ"}, "2026-11-27T20:15:03.120Z",
     {"type": "SHIPPED", "occurred_at": PLACED_MS, "warehouse": "NJ", "reason": None}),
])
def test_lifecycle_events(kind, order, occurred, expected):
    payload = {"event_id": "evt-9", "type": kind, "order": {"id": "1001", **order}}
    if occurred is not None:
        payload["occurred_at"] = occurred
    intake = ADAPTER.intake(hook(json.dumps(payload).encode()))
    assert intake == Intake("evt-9", (intake.records[0],))
    assert intake.records[0].record == "OrderEvent" and intake.records[0].key == "generic:1001"
    assert intake.records[0].value == {"event_id": "generic:evt-9", "order_id": "generic:1001", "channel": "site",
                                       **expected}


MALFORMED = {
    "not json": b"{",
    "not utf-8": b'{"event_id": "\xff"}',
    "a list": b'[{"event_id": "e"}]',
    "no event id": json.dumps({"type": "order.paid", "order": {"id": "1"}}).encode(),
    "event id a number": json.dumps({"event_id": 5, "type": "order.paid", "order": {"id": "1"}}).encode(),
    "unknown type": json.dumps({"event_id": "e", "type": "order.refunded", "order": {"id": "1"}}).encode(),
    "order a string": json.dumps({"event_id": "e", "type": "order.paid", "order": "1"}).encode(),
    "order id true": doc(id=True),
    "order id empty": doc(id=" "),
    "unknown channel": doc(channel="nope"),
    "channel of another platform": doc(channel="shopify"),
    "channel a number": doc(channel=3),
    "no lines": doc(lines=[]),
    "line a string": doc(lines=["TEE"]),
    "qty a string": doc(lines=[{"sku": "TEE", "qty": "2"}]),
    "qty zero": doc(lines=[{"sku": "TEE", "qty": 0}]),
    "qty a float": doc(lines=[{"sku": "TEE", "qty": 1.5}]),
    "sku missing": doc(lines=[{"qty": 1}]),
    "buyer missing": doc(buyer_id=...),
    "placed_at missing": doc(placed_at=...),
    "placed_at in seconds": doc(placed_at=1795000000),
    "placed_at without zone": doc(placed_at="2026-11-27T20:15:03"),
    "placed_at garbage": doc(placed_at="soon"),
    "unknown region": doc(ship_to_region="MARS"),
    "unknown warehouse": json.dumps({"event_id": "e", "type": "order.shipped",
                                     "order": {"id": "1", "warehouse": "XX"}}).encode(),
    "occurred_at garbage": json.dumps({"event_id": "e", "type": "order.paid", "occurred_at": [1],
                                       "order": {"id": "1"}}).encode(),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_bodies_are_payload_errors(name):
    with pytest.raises(PayloadError):
        ADAPTER.intake(hook(MALFORMED[name]))


def test_the_channel_is_required_unless_the_catalog_has_exactly_one_generic_channel():
    adapter = GenericWebhooks(make_catalog("site-us", "site-eu"), SECRET, {})
    with pytest.raises(PayloadError, match="order.channel is required: the catalog has 2 generic channels"):
        adapter.intake(hook(CREATED))


# ---- the stock pusher -------------------------------------------------------------------------

OUT_BODY = (b'{"updates":[{"sku":"TEE-RED-M","quantity":12,"channel":"site"},{"sku":"TEE-BLU-L","quantity":0,'
            b'"channel":"site"}],"sent_at":"2026-11-18T11:06:40.000Z"}')
OUT_SIG = "sha256=4df4388a39336e12a5b559af81141431b30e5a30de7c85d5fc66473fc06e515f"


def pusher(catalog=CATALOG):
    return GenericStockPusher(catalog, catalog.connectors["generic"], {"secret": SECRET})


def test_a_push_is_one_signed_post_of_the_contracts_shape():
    pushes = [StockPush("site", "TEE-RED-M", 12), StockPush("site", "TEE-BLU-L", -2)]
    (call,) = pusher().build_calls(CATALOG.channels["site"], pushes, float(TS))
    assert (call.method, call.url) == ("POST", "https://shop.example.com/lockstock/stock")
    assert call.body == OUT_BODY
    assert call.headers == {"content-type": "application/json", "x-lockstock-timestamp": str(TS),
                            "x-lockstock-signature": OUT_SIG}
    assert call.pushes == tuple(pushes)


def test_batches_hold_at_most_100_updates():
    pushes = [StockPush("site", f"SKU-{i}", i) for i in range(250)]
    calls = pusher().build_calls(CATALOG.channels["site"], pushes, float(TS))
    assert GenericStockPusher.max_batch == 100
    assert [len(json.loads(c.body)["updates"]) for c in calls] == [100, 100, 50]
    assert [p for c in calls for p in c.pushes] == pushes


def test_config_and_missing_base_url():
    assert "LOCKSTOCK_GENERIC_SECRET" in str(stock_pushers(CATALOG, env={})["generic"])
    assert isinstance(stock_pushers(CATALOG, env={"LOCKSTOCK_GENERIC_SECRET": SECRET})["generic"], GenericStockPusher)
    with pytest.raises(NotConfigured, match="connectors.generic.base_url"):
        pusher(make_catalog("site"))


def _call():
    return pusher().build_calls(CATALOG.channels["site"], [StockPush("site", "A", 1), StockPush("site", "B", 2),
                                                           StockPush("site", "C", 3), StockPush("site", "D", 4)], TS)[0]


def test_accepted_rejected_and_unmentioned_skus():
    answer = {"accepted": ["A"], "rejected": [{"sku": "B", "reason": "unknown sku"},
                                              {"sku": "C", "reason": "locked", "retryable": True}]}
    outcome = pusher().parse_response(_call(), 200, {}, json.dumps(answer).encode())
    assert [(r.push.sku, r.ok, r.retryable, r.reason) for r in outcome.results] == [
        ("A", True, False, ""), ("B", False, False, "unknown sku"), ("C", False, True, "locked"),
        ("D", False, True, "the site's answer does not mention this SKU")]


@pytest.mark.parametrize("status, headers, body, retryable, throttled, retry_after", [
    (429, {"Retry-After": "3"}, b"slow down", True, True, 3.0),
    (500, {}, b"oops", True, False, None),
    (401, {}, b"bad signature", False, False, None),
    (200, {}, b"[]", True, False, None),
    (200, {}, b'{"accepted": "A"}', True, False, None),
])
def test_failed_calls(status, headers, body, retryable, throttled, retry_after):
    outcome = pusher().parse_response(_call(), status, headers, body)
    assert all(not r.ok and r.retryable == retryable for r in outcome.results)
    assert (outcome.throttled, outcome.retry_after_s) == (throttled, retry_after)


# ---- the fake site ----------------------------------------------------------------------------

@pytest.fixture
def site():
    budget = pusher().budget(CATALOG.channels["site"])  # the fake limits with the pusher's own numbers
    fake = FakeGenericSite(secret=SECRET, rate_capacity=budget.capacity, rate_per_s=budget.refill_per_s).start()
    yield fake
    fake.stop()


def fake_catalog(fake):
    return make_catalog("site", base_url=fake.url)


def test_pushes_set_the_sites_quantities_and_rejections_come_back(site):
    catalog = fake_catalog(site)
    site.reject_skus["GONE"] = "unknown sku"
    pushes = [StockPush("site", "TEE", 4), StockPush("site", "GONE", 1)]
    calls = pusher(catalog).build_calls(catalog.channels["site"], pushes, time.time())
    (answer,) = asyncio.run(execute(calls))
    outcome = pusher(catalog).parse_response(calls[0], *answer)
    assert [(r.push.sku, r.ok, r.reason) for r in outcome.results] == \
        [("TEE", True, ""), ("GONE", False, "unknown sku")]
    assert site.quantity == {("site", "TEE"): 4}


def test_the_site_refuses_bad_signatures_stale_timestamps_and_bad_shapes(site):
    catalog = fake_catalog(site)
    the_pusher = pusher(catalog)
    forged = the_pusher.build_calls(catalog.channels["site"], [StockPush("site", "TEE", 4)], time.time())[0]
    forged.body = forged.body.replace(b'"quantity":4', b'"quantity":400')
    stale = the_pusher.build_calls(catalog.channels["site"], [StockPush("site", "TEE", 4)], time.time() - 600)[0]
    # another channel: the refused calls above spent this channel's burst of 2 (the limit is per channel)
    headers, body = signed(SECRET, {"updates": [{"sku": "TEE", "quantity": -1, "channel": "site-2"}], "sent_at": "x"})
    shaped = forged.__class__("POST", forged.url, headers, body, forged.pushes)
    answers = asyncio.run(execute([forged, stale, shaped]))
    assert [a[0] for a in answers] == [401, 401, 400]
    assert site.counters["bad_signature"] == 2 and site.counters["bad_shape"] == 1 and site.quantity == {}
    assert not the_pusher.parse_response(forged, *answers[0]).results[0].retryable


def test_the_sites_burst_is_the_budgets(site):
    catalog = fake_catalog(site)
    the_pusher = pusher(catalog)
    budget = the_pusher.budget(catalog.channels["site"])
    burst = int(budget.capacity)
    calls = [the_pusher.build_calls(catalog.channels["site"], [StockPush("site", f"S{i}", i)], time.time())[0]
             for i in range(burst + 3)]  # a 429 follows unless the calls took 1.5 s (one refill per 0.5 s)
    answers = asyncio.run(execute(calls))
    assert [a[0] for a in answers[:burst]] == [200] * burst
    first = next(i for i, a in enumerate(answers) if a[0] == 429)
    outcome = the_pusher.parse_response(calls[first], *answers[first])
    assert outcome.throttled and outcome.retry_after_s >= 1


def arriving(headers, body) -> Webhook:
    """What the gateway hands the adapter for this request (header names lower-cased)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    return Webhook("generic", "http://gw/webhooks/generic", lowered, body, RECEIVED_MS)


def test_the_sites_order_webhooks_pass_the_adapter(site):
    sale = Sale(order_id="5001", account="site", sku="TEE", qty=2, buyer="cust-7", at=1795000000.25)
    path, headers, body = site.order_webhook(sale)
    incoming = arriving(headers, body)
    ADAPTER.verify(incoming, time.time())
    assert path == "/webhooks/generic"
    assert ADAPTER.intake(incoming).records[0].value == {
        "order_id": "generic:5001", "channel": "site", "buyer_id": "generic:cust-7", "ship_to_region": "",
        "placed_at": 1795000000250, "lines": [{"sku": "TEE", "qty": 2}]}
    path, headers, body = site.event_webhook(sale, "order.shipped", warehouse="LA")
    shipped = arriving(headers, body)
    ADAPTER.verify(shipped, time.time())
    assert ADAPTER.intake(shipped).records[0].value["warehouse"] == "LA"
