"""A flash sale on one SKU: 30,000 unpaid orders held at once. Before the per-SKU state was split
into a head and line records (streams/lines.py) the SKU's one table value held every open
reservation; at about 11,000 it passed the broker's record limit and the worker crash-looped.

Now every order is decided, the worker stays up, `stock show` equals the decisions, no stock
changelog record reaches 64 KB, and a worker killed and restarted on the hot partition rebuilds
exactly that state."""

from __future__ import annotations

import time

import pytest

from apps.client import LockstockClient as Client
from apps.readback import changelog_topic, read_to_end

pytestmark = pytest.mark.integration

ORDERS = 30_000
STOCK = 40_000
CANCELLED = 500  # some lines finish too, so finished-line records are in play
RECORD_LIMIT = 64 * 1024
CHANNEL = "shopify"  # the catalog's longest reservation TTL (1 h): nothing expires mid-test


def stock_view(worker, sku: str) -> dict:
    status, body = worker.get_json(f"/stock/{sku}/", timeout=10)
    assert status == 200, body
    return body


def wait_for_view(worker, sku: str, wanted: dict, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    view = stock_view(worker, sku)
    while {k: view[k] for k in wanted} != wanted and time.monotonic() < deadline:
        time.sleep(0.5)
        view = stock_view(worker, sku)
    return view


def test_one_sku_holds_30000_unpaid_orders_and_the_worker_stays_up(kafka, workers):
    client = Client(kafka)
    client.set_stock("HOT", STOCK, {"US": STOCK}, flex_pct=0)
    client.flush()
    worker = workers.start()
    worker.wait_ready()

    orders = {f"hot-{n}" for n in range(ORDERS)}
    for n in range(ORDERS):
        client.place_order(f"hot-{n}", [("HOT", 1)], channel=CHANNEL, buyer=f"buyer-{n}")
    client.flush()
    decisions = client.decisions(orders, timeout=420)
    assert worker.exit_status is None, worker.log_tail()
    statuses = {d[-1]["status"] for d in decisions.values()}
    assert statuses == {"LOCKED"}, statuses

    for n in range(CANCELLED):
        client.order_event(f"hot-{n}", "CANCELLED", channel=CHANNEL)
    client.flush()
    held = ORDERS - CANCELLED
    wanted = {"locked": held, "open_reservations": held, "available": STOCK - held, "total": STOCK}
    view = wait_for_view(worker, "HOT", wanted, timeout=120)
    assert {k: view[k] for k in wanted} == wanted
    assert worker.exit_status is None, worker.log_tail()

    sizes = [len(r.value or b"") for r in read_to_end(kafka, [changelog_topic(kafka.settings.app_id, "stock")], timeout=120)]
    assert len(sizes) > ORDERS  # a record per line, not one value rewritten
    assert max(sizes) < RECORD_LIMIT, max(sizes)

    # The hot partition recovered from the changelog alone holds exactly the same.
    worker.kill()
    restarted = workers.start()
    restarted.wait_ready(timeout=180)
    assert {k: stock_view(restarted, "HOT")[k] for k in wanted} == wanted
    # A redelivered order repeats its decision and locks nothing twice; a cancelled one stays released.
    client.place_order("hot-9999", [("HOT", 1)], channel=CHANNEL, buyer="buyer-9999")
    client.place_order("hot-0", [("HOT", 1)], channel=CHANNEL, buyer="buyer-0")
    client.place_order("hot-new", [("HOT", 1)], channel=CHANNEL, buyer="buyer-new")
    client.flush()
    again = client.decisions({"hot-9999", "hot-0", "hot-new"}, timeout=120)
    assert again["hot-new"][-1]["status"] == "LOCKED"
    assert again["hot-9999"][-1]["status"] == "LOCKED" and again["hot-0"][-1]["status"] == "RELEASED"
    wanted.update(locked=held + 1, open_reservations=held + 1, available=STOCK - held - 1)
    assert {k: v for k, v in wait_for_view(restarted, "HOT", wanted, 60).items() if k in wanted} == wanted
