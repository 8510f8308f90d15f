"""The audit trail on a real broker: every stock movement the worker makes lands on
`inventory.audit` as one link of the SKU's hash chain, `lockstock audit verify` finds the chains
intact and anchored to the engine's state, and catches a tampered copy and a forged record."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter

import pytest

from apps.client import LockstockClient as Client
from apps.readback import read_to_end
from lockstock.kafka import Kafka
from streams.engine.audit import record_hash

pytestmark = [pytest.mark.integration, pytest.mark.both_brokers, pytest.mark.timeout(300)]


def verify(kafka: Kafka, *args: str, **settings) -> tuple[int, dict]:
    env = {**os.environ, **kafka.settings.with_(**settings).as_env()}
    result = subprocess.run([sys.executable, "-m", "lockstock", "audit", "verify", "--json", *args],
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.stdout.strip(), result.stderr[-3000:]
    return result.returncode, json.loads(result.stdout)


def audit_records(kafka: Kafka) -> list[dict]:
    topic = kafka.topics.inventory_audit
    return [kafka.codec.decode(r.value, topic=topic).value for r in read_to_end(kafka, [topic])]


def wait_for_view(worker, sku: str, done, timeout: float = 60.0) -> dict:
    deadline, view = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        status, view = worker.get_json(f"/stock/{sku}/")
        if status == 200 and done(view):
            return view
        time.sleep(0.2)
    raise AssertionError(f"{sku} never reached the expected state: {view}")


def test_every_movement_is_chained_and_tampering_is_caught(kafka, workers):
    worker = workers.start()
    worker.wait_ready()
    client = Client(kafka)
    client.set_stock("AU-A", 60, {"US": 30, "EU": 30}, flex_pct=0)
    client.set_stock("AU-B", 10, {"US": 5, "EU": 5}, flex_pct=0)
    client.flush()
    orders = [f"au-{i}" for i in range(12)]
    for i, order_id in enumerate(orders):
        client.place_order(order_id, [("AU-A", 2)] + ([("AU-B", 1)] if i < 4 else []),
                           region="US" if i % 2 else "EU", buyer=f"buyer-{i}")
    client.place_order("au-too-many", [("AU-B", 50)], region="US")  # rejected: moves nothing
    client.flush()
    decided = client.decisions(set(orders) | {"au-too-many"})
    assert all(ds[-1]["status"] == "LOCKED" for o, ds in decided.items() if o != "au-too-many")
    for order_id in orders[:6]:
        client.order_event(order_id, "PAID")
    for order_id in orders[:3]:
        client.order_event(order_id, "SHIPPED")
    for order_id in orders[9:]:
        client.order_event(order_id, "CANCELLED")
    client.command("AU-A", "RESTOCK", quantity=20, region="US", eta=int(time.time() * 1000) + 36 * 3600_000,
                   command_id="au-restock")
    client.command("AU-A", "TRANSFER", quantity=4, region="US", to_region="EU")
    client.command("AU-A", "ADJUST", quantity=-1, region="EU", reason="damaged in returns")
    client.flush()
    client.command("AU-A", "RESTOCK", transit_id="au-restock")  # the shipment lands
    client.flush()
    view = wait_for_view(worker, "AU-A", lambda v: v["shipped"] == 6 and v["total"] == 79 and not v["in_transit"])
    wait_for_view(worker, "AU-B", lambda v: v["shipped"] == 3)

    records = audit_records(kafka)
    by_sku = Counter(r["sku"] for r in records)
    movements = Counter(r["movement"] for r in records if r["sku"] == "AU-A")
    assert movements == {"SET_STOCK": 1, "LOCK": 12, "COMMIT": 6, "SHIP": 3, "RELEASE": 3, "RESTOCK": 1,
                         "TRANSFER": 1, "ADJUST": 1, "RECEIVE": 1}, movements
    assert view["audit"]["seq"] == by_sku["AU-A"] == 29
    last = [r for r in records if r["sku"] == "AU-A"][-1]
    assert last["hash"] == view["audit"]["head"] and last["balances"]["total"] == 79

    code, report = verify(kafka)
    assert code == 0 and report["ok"] and report["anchored_to_state"], report
    assert {s["sku"]: s["head_seq"] for s in report["skus"]} == {"AU-A": 29, "AU-B": by_sku["AU-B"]}

    # A tampered copy (a backup restored with one record's quantity changed) under another prefix.
    copy_kafka = Kafka.connect(kafka.settings.with_(topic_prefix=kafka.settings.topic_prefix + "-copy"))
    copy_kafka.create_topics()
    tampered = Client(copy_kafka)
    for record in records:
        if record["sku"] == "AU-A" and record["seq"] == 7:
            record = {**record, "qty": record["qty"] + 5}
        tampered.send(copy_kafka.topics.inventory_audit, record["sku"], "AuditRecord", record)
    tampered.flush()
    code, report = verify(kafka, topic_prefix=copy_kafka.settings.topic_prefix)
    broken = {s["sku"]: s for s in report["skus"] if not s["ok"]}
    assert code == 1 and set(broken) == {"AU-A"}, report
    assert broken["AU-A"]["broken_seq"] == 7 and "does not match its hash" in broken["AU-A"]["broken"]

    # A forged record appended to the live topic, well chained to seq 2 and rehashed: a fork.
    forged = {**[r for r in records if r["sku"] == "AU-A" and r["seq"] == 3][0], "detail": "nothing happened"}
    forged["hash"] = record_hash(forged)
    client.send(kafka.topics.inventory_audit, "AU-A", "AuditRecord", forged)
    client.flush()
    code, report = verify(kafka, "AU-A")
    assert code == 1 and report["skus"][0]["broken_seq"] == 3, report
    assert "appears twice with different content" in report["skus"][0]["broken"]
    code, report = verify(kafka, "AU-B")
    assert code == 0 and report["ok"]
