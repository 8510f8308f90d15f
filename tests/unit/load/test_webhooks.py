import pytest

from apps.load.webhooks import (
    RETRY_BACKOFF_S, SECRET_ENV, WebhookOrders, answer_kind, retry_pause, shop_domain, shopify_delivery,
)
from connectors.base import NotConfigured, Webhook
from connectors.config import webhook_adapters
from lockstock.catalog import catalog_from_dict, load_catalog
from lockstock.errors import SettingsError

SECRET = "load-test-secret"


def load_order(n: int = 1, placed_at: int = 1_795_000_000_123) -> dict:
    return {"order_id": f"lt1a2b3c-{n}", "channel": "tiktok-us", "buyer_id": "lt1a2b3c-buyer-7", "ship_to_region": "",
            "placed_at": placed_at, "lines": [{"sku": "lt1a2b3c-SKU-0001", "qty": 2}, {"sku": "lt1a2b3c-SKU-0004", "qty": 1}]}


def gateway_reading(delivery) -> dict:
    """What the gateway's own Shopify adapter makes of the delivery: signature checked, then its intake."""
    adapter = webhook_adapters(load_catalog(), {SECRET_ENV: SECRET})["shopify"]
    assert not isinstance(adapter, NotConfigured)
    hook = Webhook("shopify", "http://gateway/webhooks/shopify", {k.lower(): v for k, v in delivery.headers.items()},
                   delivery.body, 0)
    adapter.verify(hook, 0.0)
    intake = adapter.intake(hook)
    assert intake.delivery_id == delivery.delivery_id and len(intake.records) == 1
    return intake.records[0].value


@pytest.mark.parametrize("placed_at", [1_795_000_000_123, 1_795_000_000_000, 1_795_000_000_999])
def test_the_gateway_reads_a_delivery_as_exactly_the_order_the_tally_expects(placed_at):
    channel, shop = shop_domain(load_catalog())
    delivery, placed = shopify_delivery(load_order(placed_at=placed_at), 120000001, channel, shop, SECRET)
    produced = gateway_reading(delivery)
    assert placed["order_id"] == delivery.order_id == produced["order_id"] == "shopify:120000001"
    assert (produced["channel"], produced["buyer_id"]) == (placed["channel"], placed["buyer_id"]) == ("shopify", "shopify:lt1a2b3c-buyer-7")
    assert produced["lines"] == placed["lines"]
    assert abs(produced["placed_at"] - placed["placed_at"]) <= 1  # ISO milliseconds through a float


def test_a_wrong_secret_is_refused_by_the_gateway():
    channel, shop = shop_domain(load_catalog())
    delivery, _ = shopify_delivery(load_order(), 5, channel, shop, "another-secret")
    with pytest.raises(Exception, match="signature"):
        gateway_reading(delivery)


def test_a_catalog_without_one_shopify_store_is_a_settings_error():
    data = load_catalog().to_dict()
    del data["channels"]["shopify"]
    for name in [c for c, spec in data["channels"].items() if spec.get("store") == "shopify"]:
        del data["channels"][name]
    with pytest.raises(SettingsError, match="exactly one shopify store channel"):
        shop_domain(catalog_from_dict(data, "no shopify"))


@pytest.mark.parametrize("status,body,kind", [
    (200, {"status": "accepted"}, "accepted"), (200, {"status": "duplicate"}, "duplicate"),
    (200, {"status": "ignored"}, "refused"), (503, {"error": "retry later"}, "retry"),
    (400, {"error": "bad"}, "refused"), (401, {}, "refused"), (500, "oops", "refused"),
])
def test_only_an_accepted_or_duplicate_2xx_vouches_for_the_order(status, body, kind):
    assert answer_kind(status, body) == kind


def test_retries_back_off_up_to_a_ceiling():
    pauses = [retry_pause(n) for n in range(10)]
    assert pauses == sorted(pauses) and pauses[-1] == RETRY_BACKOFF_S[-1]


class Collect:
    def __init__(self) -> None:
        self.sent = []

    def send(self, delivery) -> None:
        self.sent.append(delivery)


def diverting(share: float, seed: int, orders: int) -> tuple[list, Collect]:
    sender = Collect()
    hooks = WebhookOrders(share, seed, 12, load_catalog(), "http://unused", SECRET, sender=sender)
    return [hooks.divert(load_order(n), twice=n % 10 == 0) for n in range(orders)], sender


def test_a_seeded_share_goes_through_the_gateway_and_a_redelivery_reuses_the_webhook_id():
    taken, sender = diverting(0.2, seed=3, orders=2000)
    diverted = [t for t in taken if t is not None]
    assert 300 <= len(diverted) <= 500
    assert len({t["order_id"] for t in diverted}) == len(diverted)  # each its own Shopify order number
    assert all(t["order_id"].startswith("shopify:12") for t in diverted)
    twice = [n for n, t in enumerate(taken) if t is not None and n % 10 == 0]
    assert len(sender.sent) == len(diverted) + len(twice)
    ids = [d.delivery_id for d in sender.sent]
    assert len(set(ids)) == len(diverted)  # redeliveries reuse the first delivery's id
    again, _ = diverting(0.2, seed=3, orders=2000)
    assert [t is None for t in again] == [t is None for t in taken]


def test_no_share_no_webhooks():
    taken, sender = diverting(0.0, seed=3, orders=200)
    assert taken == [None] * 200 and sender.sent == []
