"""Avro in, Faust worker, Avro out, over the Kafka protocol on a real broker."""

from __future__ import annotations

import pytest

from apps.client import LockstockClient as Client

pytestmark = [pytest.mark.integration, pytest.mark.both_brokers]


def test_orders_lock_or_reject_and_bad_payloads_are_dead_lettered(kafka, workers):
    worker = workers.start()
    worker.wait_ready()
    client = Client(kafka)
    client.set_stock("SKU-A", 5, {"US": 5}, flex_pct=0)
    client.set_stock("SKU-B", 1, {"US": 1}, flex_pct=0)
    client.flush()
    client.place_order("o-1", [("SKU-A", 3)])
    # Two multi-line orders race for the last SKU-B: orders are keyed by order id, so which one
    # reaches SKU-B's partition first is up to the broker; exactly one may win, all or nothing.
    client.place_order("o-2", [("SKU-A", 1), ("SKU-B", 1)])
    client.place_order("o-3", [("SKU-A", 1), ("SKU-B", 1)])
    client.place_order("o-4", [("SKU-A", 0)])  # invalid quantity
    client.place_order("o-5", [("SKU-Z", 1)])  # never stocked
    client.flush()
    first = client.decisions({"o-1", "o-2", "o-3", "o-4", "o-5"})
    assert all(len(ds) == 1 for ds in first.values()), first
    client.send_raw(kafka.topics.orders_placed, "junk-1", b"not avro at all")
    client.send(kafka.topics.orders_placed, "wrong-1", "OrderEvent", {  # valid Avro, wrong record
        "event_id": "e1", "order_id": "wrong-1", "type": "PAID", "channel": "x", "occurred_at": 0,
    })
    client.flush()
    client.place_order("o-6", [("SKU-A", 1)])  # the worker keeps going after bad input; the
    # loser's compensation has freed one unit of SKU-A by the time its decision was out
    client.flush()

    decisions = client.decisions({"o-1", "o-2", "o-3", "o-4", "o-5", "o-6"})
    final = {order_id: ds[-1] for order_id, ds in decisions.items()}
    assert final["o-1"]["status"] == "LOCKED"
    winner, loser = sorted(["o-2", "o-3"], key=lambda o: final[o]["status"] != "LOCKED")
    assert final[winner]["status"] == "LOCKED", decisions
    assert [(line["sku"], line["qty"], line["region"]) for line in final[winner]["lines"]] == [
        ("SKU-A", 1, "US"), ("SKU-B", 1, "US")]
    assert final[loser]["status"] == "REJECTED" and final[loser]["reason"] == "OUT_OF_STOCK", decisions
    assert all(line["region"] is None for line in final[loser]["lines"])
    assert final["o-4"]["status"] == "REJECTED" and final["o-4"]["reason"] == "INVALID_QUANTITY"
    assert final["o-5"]["status"] == "REJECTED" and final["o-5"]["reason"] == "UNKNOWN_SKU"
    assert final["o-6"]["status"] == "LOCKED"
    assert final["o-1"]["placed_at"] <= final["o-1"]["decided_at"]

    dead = client.read_until(
        [kafka.topics.deadletter], lambda records: len(records) >= 2, timeout=30
    )
    by_key = {d.value["key"]: d.value for _, d in dead}
    assert by_key[b"junk-1"]["error_type"] == "UNDECODABLE"
    assert "C3 01" in by_key[b"junk-1"]["reason"]
    assert by_key[b"junk-1"]["payload"] == b"not avro at all"
    assert by_key[b"wrong-1"]["error_type"] == "WRONG_RECORD"
    assert "expected OrderPlaced, got OrderEvent" in by_key[b"wrong-1"]["reason"]

    # The loser's SKU-A lock was compensated: A holds 3 + 1 + 1 (o-1, the winner, o-6).
    status, stock_a = worker.get_json("/stock/SKU-A/")
    assert status == 200
    assert {k: stock_a[k] for k in ("sku", "total", "locked", "available", "open_reservations")} == {
        "sku": "SKU-A", "total": 5, "locked": 5, "available": 0, "open_reservations": 3}
    assert stock_a["regions"]["US"] == {"allocation": 5, "locked": 5, "paid": 0, "shipped": 0, "free": 0, "in_transit": 0}
    status, stock_b = worker.get_json("/stock/SKU-B/")
    assert stock_b["locked"] == 1 and stock_b["available"] == 0
    assert worker.get_json("/stock/SKU-Z/")[0] == 404
    status, order = worker.get_json("/orders/o-1/")
    assert status == 200 and order["status"] == "LOCKED" and order["lines"] == {"SKU-A": 3}
    status, catalog = worker.get_json("/catalog/")
    assert status == 200 and catalog["channels"]["tiktok-us"]["region"] == "US" and catalog["rules"]["flex_chunk"] == 200
