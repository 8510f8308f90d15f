"""Envelopes on the internal topics (streams/envelopes.py): one record per partition and batch,
lines in the order they were made; readers take both forms."""

from __future__ import annotations

from lockstock.topics import LOCK_REQUESTS, LOCK_RESULTS, ORDERS_DECISIONS
from streams import envelopes
from streams.envelopes import pack, unpack
from streams.folds import Output


def request(order_id: str, sku: str) -> Output:
    return Output(LOCK_REQUESTS, sku, "LineLockRequest", {"order_id": order_id, "sku": sku})


def by_sku(topic, key: str) -> int:
    return {"A": 0, "B": 1, "C": 0}[key] if topic is LOCK_REQUESTS else 3


def test_lines_are_gathered_per_partition_in_order_and_other_outputs_pass():
    decision = Output(ORDERS_DECISIONS, "o1", "OrderDecision", {"order_id": "o1"})
    outputs = [request("o1", "A"), decision, request("o2", "B"), request("o3", "C"),
               Output(LOCK_RESULTS, "o1", "LineLockResult", {"order_id": "o1"})]
    packed = pack(outputs, by_sku)
    assert [(o.topic, o.record, o.partition) for o in packed] == [
        (LOCK_REQUESTS, "LineLockRequests", 0), (ORDERS_DECISIONS, "OrderDecision", None),
        (LOCK_REQUESTS, "LineLockRequests", 1), (LOCK_RESULTS, "LineLockResults", 3)]
    assert [r["order_id"] for r in packed[0].value["requests"]] == ["o1", "o3"]
    assert packed[0].key == "A"  # named after its first line
    assert list(unpack("LineLockRequests", packed[0].value)) == [
        ("LineLockRequest", {"order_id": "o1", "sku": "A"}), ("LineLockRequest", {"order_id": "o3", "sku": "C"})]


def test_an_envelope_holds_at_most_max_lines(monkeypatch):
    monkeypatch.setattr(envelopes, "MAX_LINES", 2)
    packed = pack([request(f"o{n}", "A") for n in range(5)], by_sku)
    assert [len(o.value["requests"]) for o in packed] == [2, 2, 1]
    assert [r["order_id"] for o in packed for r in o.value["requests"]] == [f"o{n}" for n in range(5)]


def test_a_single_record_reads_as_itself():
    assert list(unpack("LineLockResult", {"order_id": "o1"})) == [("LineLockResult", {"order_id": "o1"})]
