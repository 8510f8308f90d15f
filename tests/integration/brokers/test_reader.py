"""The group-less reader (lockstock/reader.py) against a real broker: read to the end with the
caught-up signal, from-end reading, the bad-record policy, topics added later, the thread."""

from __future__ import annotations

import logging
import threading
import time

import pytest
from confluent_kafka.admin import NewTopic

from apps.client import LockstockClient
from lockstock.errors import BrokerError
from lockstock.reader import Record
from schemas.records import OrderDecision
from tests.builders import order_decision

pytestmark = pytest.mark.integration


def decision(order_id: str) -> OrderDecision:
    """A small valid OrderDecision: rejected, out of stock, no lines, placed at 1 ms and decided at 2."""
    return order_decision(order_id, "REJECTED", reason="OUT_OF_STOCK", placed_at=1, decided_at=2)


def send_decisions(client: LockstockClient, order_ids: list[str]) -> None:
    for order_id in order_ids:
        client.send(client.topics.orders_decisions, order_id, "OrderDecision", decision(order_id))
    client.flush()


def test_reads_to_the_end_skipping_what_it_cannot_decode(kafka, caplog):
    client = LockstockClient(kafka)
    topic = kafka.topics.orders_decisions
    send_decisions(client, [f"r-{i}" for i in range(10)])
    client.send_raw(topic, "r-junk", b"not avro at all")
    send_decisions(client, ["r-10"])  # after the bad one: it must not stop the reader

    with caplog.at_level(logging.WARNING, logger="lockstock.reader"), \
            kafka.reader(beginning=[topic], end=[kafka.topics.channels_stock]) as reader:
        assert not reader.caught_up
        seen: list[tuple[int, int]] = []
        records = list(reader.read_to_end(30, progress=lambda read, total: seen.append((read, total))))
        assert reader.caught_up
        assert sorted(r.value["order_id"] for r in records) == sorted([f"r-{i}" for i in range(11)])
        assert all(r.topic == topic and r.name == "OrderDecision" and r.timestamp for r in records)
        assert reader.bad.undecodable == {topic: 1}
        assert seen[-1] == (12, 12)  # the bad record is read (and counted) too
        send_decisions(client, ["r-late"])  # after the end at assignment: not part of read_to_end
        assert list(reader.read_to_end(5)) == []
    assert any("undecodable record" in r.getMessage() and topic in r.getMessage() for r in caplog.records)


def test_empty_topics_are_caught_up_at_once_and_a_missing_one_is_an_error(kafka):
    with kafka.reader(beginning=[kafka.topics.inventory_alerts]) as reader:
        assert reader.caught_up
    with pytest.raises(BrokerError, match="no-such-topic"):
        kafka.reader(beginning=[f"{kafka.settings.topic_prefix}.no-such-topic"])


def test_from_the_end_sees_only_new_records(kafka):
    client = LockstockClient(kafka)
    send_decisions(client, ["old-1", "old-2"])
    with kafka.reader(end=[kafka.topics.orders_decisions]) as reader:
        assert reader.caught_up  # nothing to read from a beginning
        send_decisions(client, ["new-1"])
        got: list[Record] = []
        deadline = time.monotonic() + 20
        while not got and time.monotonic() < deadline:
            got += reader.poll(0.5)
        time.sleep(0.5)
        got += reader.poll(0.5)
        assert [r.value["order_id"] for r in got] == ["new-1"]
        assert got[0].key == b"new-1"


def test_topics_added_later_keep_the_positions_of_those_already_read(kafka):
    client = LockstockClient(kafka)
    send_decisions(client, ["a-1"])
    late = f"{kafka.settings.topic_prefix}.late-raw"
    with kafka.reader(beginning=[kafka.topics.orders_decisions, late], raw=[late], wait_for_topics=True) as reader:
        assert reader.pending == {late: True} and not reader.caught_up
        first: list[Record] = []
        deadline = time.monotonic() + 20
        while not first and time.monotonic() < deadline:
            first += reader.poll(0.2)
        assert [r.value["order_id"] for r in first] == ["a-1"]

        admin = kafka.admin()  # held: the creation is answered through it
        admin.create_topics([NewTopic(late, 1, 1)])[late].result(20)
        client.send_raw(late, "k", b'{"raw": true}')
        client.flush()
        got: list[Record] = []
        deadline = time.monotonic() + 30
        while not any(r.topic == late for r in got) and time.monotonic() < deadline:
            got += reader.poll(0.2)
        assert [(r.topic, r.value) for r in got if r.topic == late] == [(late, b'{"raw": true}')]
        assert not reader.pending
        # a-1 was read before the late topic came: not read again
        assert [r for r in got if r.topic == kafka.topics.orders_decisions] == []


def test_the_thread_delivers_batches_says_caught_up_and_stops_in_time(kafka):
    client = LockstockClient(kafka)
    topic = kafka.topics.orders_decisions
    send_decisions(client, ["t-1", "t-2"])
    client.send_raw(topic, "t-junk", b"\x00junk")
    client.flush()
    batches: list[tuple[list[Record], bool]] = []
    arrived = threading.Event()

    def deliver(records: list[Record], caught_up: bool) -> None:
        batches.append((records, caught_up))
        if any(r.value["order_id"] == "t-3" for r in records):
            arrived.set()

    thread = kafka.reader_thread(deliver, beginning=[topic], name="test-reader").start().wait_ready(30)
    try:
        send_decisions(client, ["t-3"])
        assert arrived.wait(20)
        assert thread.caught_up and thread.is_alive() and thread.failure is None
        assert sorted(r.value["order_id"] for records, _ in batches for r in records) == ["t-1", "t-2", "t-3"]
        assert batches[-1][1] is True
        assert thread.bad.undecodable == {topic: 1}
    finally:
        started = time.monotonic()
        assert thread.stop(timeout=5)
        assert time.monotonic() - started < 5
    assert not thread.is_alive()


def test_a_failing_deliver_is_recorded_not_silent(kafka):
    client = LockstockClient(kafka)
    send_decisions(client, ["f-1"])
    failures: list[BaseException] = []

    def deliver(records: list[Record], caught_up: bool) -> None:
        if records:
            raise ValueError("owner bug")

    thread = kafka.reader_thread(deliver, beginning=[kafka.topics.orders_decisions],
                                 on_failure=failures.append).start().wait_ready(30)
    deadline = time.monotonic() + 20
    while thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not thread.is_alive()  # no retry_s: the loop ends, and says why
    assert isinstance(thread.failure, ValueError) and failures == [thread.failure] and thread.failures == 1


def test_undecodable_records_are_dead_lettered_when_the_owner_asks(kafka):
    client = LockstockClient(kafka)
    topic = kafka.topics.orders_decisions
    client.send_raw(topic, "d-junk", b"garbage")
    client.flush()
    with kafka.reader(beginning=[topic], dead_letter_service="reader-test") as reader:
        assert list(reader.read_to_end(20)) == []
        assert reader.bad.undecodable == {topic: 1}
    with kafka.reader(beginning=[kafka.topics.deadletter]) as letters:
        dead = [r.value for r in letters.read_to_end(20)]
    assert len(dead) == 1
    assert dead[0]["source_topic"] == topic and dead[0]["key"] == b"d-junk" and dead[0]["payload"] == b"garbage"
    assert dead[0]["error_type"] == "UNDECODABLE" and dead[0]["service"] == "reader-test"
    assert "C3 01" in dead[0]["reason"]
