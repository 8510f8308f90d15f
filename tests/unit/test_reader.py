"""The reader's pure parts without a broker: caught-up bookkeeping, the bad-record policy, and
how a fetched record becomes a Record (decoded, raw, tombstone, undecodable, consumer error)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import pytest

from lockstock.codec import SingleObjectCodec
from lockstock.reader import LOG_EVERY, LOG_FIRST, BadRecord, BadRecords, CatchUp, Reader
from lockstock.topics import Topics

TOPICS = Topics("t")


def test_empty_partitions_are_caught_up_at_once():
    catch_up = CatchUp()
    catch_up.expect({("a", 0): 0, ("a", 1): 0})
    assert catch_up.caught_up and catch_up.total == 0


def test_caught_up_once_every_partition_is_read_to_its_end_at_assignment():
    catch_up = CatchUp()
    catch_up.expect({("a", 0): 2, ("a", 1): 1, ("a", 2): 0})
    catch_up.note("a", 0, 0)
    catch_up.note("a", 1, 0)
    assert not catch_up.caught_up and catch_up.behind == [("a", 0)]
    catch_up.note("a", 0, 1)
    assert catch_up.caught_up and (catch_up.read, catch_up.total) == (3, 3)
    catch_up.note("a", 0, 5)  # past the end at assignment: live, not counted
    catch_up.note("b", 0, 0)  # a partition read from its end: never tracked
    assert catch_up.read == 3
    assert catch_up.within("a", 0, 1) and not catch_up.within("a", 0, 2) and not catch_up.within("b", 0, 0)


def test_a_compacted_partition_is_caught_up_by_the_record_before_its_end():
    catch_up = CatchUp()
    catch_up.expect({("c", 0): 10})
    catch_up.note("c", 0, 3)  # offsets 0-2 and 4-8 compacted away
    assert not catch_up.caught_up
    catch_up.note("c", 0, 9)
    assert catch_up.caught_up


def test_partitions_added_later_must_be_read_again():
    catch_up = CatchUp()
    catch_up.expect({("a", 0): 1})
    catch_up.note("a", 0, 0)
    assert catch_up.caught_up
    catch_up.expect({("b", 0): 1})
    assert not catch_up.caught_up
    catch_up.note("b", 0, 0)
    assert catch_up.caught_up


def bad(topic: str = "t.orders.decisions", offset: int = 7) -> BadRecord:
    return BadRecord(topic, 3, offset, b"k", b"junk", "not Avro single-object encoded")


def test_an_undecodable_record_is_counted_logged_dead_lettered_and_reported(caplog):
    letters: list[BadRecord] = []
    told: list[tuple[str, str]] = []
    policy = BadRecords(on_bad_record=lambda topic, reason: told.append((topic, reason)), dead_letter=letters.append)
    with caplog.at_level(logging.WARNING, logger="lockstock.reader"):
        policy.record(bad())
        policy.record(bad("t.channels.stock"))
    assert policy.undecodable == {"t.orders.decisions": 1, "t.channels.stock": 1}
    assert letters == [bad(), bad("t.channels.stock")]
    assert told[0] == ("t.orders.decisions", "offset 3:7: not Avro single-object encoded")
    message = caplog.records[0].getMessage()
    assert caplog.records[0].levelno == logging.WARNING
    assert "t.orders.decisions[3]@7" in message and "not Avro single-object encoded" in message


def test_a_consumer_error_is_counted_and_logged_but_never_dead_lettered(caplog):
    letters: list[BadRecord] = []
    policy = BadRecords(dead_letter=letters.append)
    with caplog.at_level(logging.WARNING, logger="lockstock.reader"):
        policy.consumer_error(BadRecord("t.orders.decisions", 0, -1, None, None, "Broker: transport failure"))
    assert policy.consumer_errors == {"t.orders.decisions": 1} and not policy.undecodable and not letters
    assert "consumer error" in caplog.text and "transport failure" in caplog.text
    assert policy.last_reason == "consumer error on t.orders.decisions: Broker: transport failure"


def test_a_topic_of_garbage_does_not_flood_the_log(caplog):
    policy = BadRecords()
    with caplog.at_level(logging.WARNING, logger="lockstock.reader"):
        for offset in range(LOG_EVERY):
            policy.record(bad(offset=offset))
    assert policy.undecodable["t.orders.decisions"] == LOG_EVERY
    assert len(caplog.records) == LOG_FIRST + 1  # the first ones, then the thousandth


# -- a fetched record becoming a Record, through stand-ins for the consumer and its messages -------


@dataclass
class Message:
    topic_: str
    offset_: int
    value_: bytes | None
    key_: bytes | None = b"key"
    error_: Any = None
    partition_: int = 0

    def topic(self) -> str:
        return self.topic_

    def partition(self) -> int:
        return self.partition_

    def offset(self) -> int:
        return self.offset_

    def key(self) -> bytes | None:
        return self.key_

    def value(self) -> bytes | None:
        return self.value_

    def error(self) -> Any:
        return self.error_

    def timestamp(self) -> tuple[int, int]:
        return (1, 1234)


class Consumer:
    def __init__(self, messages: list[Message]) -> None:
        self.messages = messages
        self.closed = False

    def poll(self, timeout: float) -> Message | None:
        return self.messages.pop(0) if self.messages else None

    def consume(self, limit: int, timeout: float) -> list[Message]:
        taken, self.messages = self.messages[:limit], self.messages[limit:]
        return taken

    def close(self) -> None:
        self.closed = True


class Kafka:
    """Just what a Reader with nothing assigned yet touches."""

    def __init__(self, consumer: Consumer) -> None:
        self.codec = SingleObjectCodec()
        self.topics = TOPICS
        self._consumer = consumer

    def consumer(self) -> Consumer:
        return self._consumer


@pytest.fixture
def codec() -> SingleObjectCodec:
    return SingleObjectCodec()


def alert(codec: SingleObjectCodec) -> bytes:
    return codec.encode("InventoryAlert", {"alert_id": "a1", "sku": "S", "type": "FLEX_TRANSFER", "message": "m",
                                           "raised_at": 1}, topic=TOPICS.inventory_alerts)


def test_records_are_decoded_raw_or_skipped_as_the_policy_says(codec):
    changelog = "app-stock-changelog"
    consumer = Consumer([
        Message(TOPICS.inventory_alerts, 0, alert(codec)),
        Message(TOPICS.inventory_alerts, 1, b"junk"),
        Message(TOPICS.inventory_alerts, 2, None),  # a tombstone on a decoded topic: skipped, not bad
        Message(changelog, 0, None, key_=b'"S"'),  # on a raw topic: a deleted key, handed over
        Message(changelog, 1, b'{"total": 1}', key_=b'"S"'),
        Message("", -1, None, error_=RuntimeError("Broker: transport failure")),
    ])
    told: list[tuple[str, str]] = []
    reader = Reader(Kafka(consumer), raw=[changelog], on_bad_record=lambda topic, reason: told.append((topic, reason)))
    reader.assigned.append(TOPICS.inventory_alerts)  # stands in for an assignment
    records = reader.poll(0.1, limit=100)
    assert [(r.topic, r.offset, r.value if r.topic == changelog else r.value["alert_id"]) for r in records] == [
        (TOPICS.inventory_alerts, 0, "a1"), (changelog, 0, None), (changelog, 1, b'{"total": 1}')]
    assert records[0].name == "InventoryAlert" and records[0].timestamp == 1234 and records[0].key == b"key"
    assert records[1].schema is None and records[1].name is None
    assert reader.bad.undecodable == {TOPICS.inventory_alerts: 1}
    assert reader.bad.consumer_errors == {"": 1}
    assert told == [(TOPICS.inventory_alerts, "offset 0:1: not Avro single-object encoded (expected C3 01 header, got 6a75)")]
    reader.close()
    assert consumer.closed
