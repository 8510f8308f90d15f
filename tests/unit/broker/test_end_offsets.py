"""End offsets of a topic just created: a partition whose leader is still being elected is asked
again (Apache Kafka answers NOT_LEADER_FOR_PARTITION for a moment); other errors, and a leader
that never comes within the timeout, are raised."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from confluent_kafka import KafkaError, KafkaException

from lockstock.broker.profile import KAFKA


class Consumer:
    def __init__(self, failures: list[int]) -> None:
        self.failures, self.asked = list(failures), 0

    def get_watermark_offsets(self, tp, timeout):
        self.asked += 1
        if self.failures:
            raise KafkaException(KafkaError(self.failures.pop(0)))
        return 0, 42


PARTITION = SimpleNamespace(topic="t", partition=0)


def test_a_leader_being_elected_is_asked_again():
    consumer = Consumer([KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE])
    assert KAFKA.end_offsets(consumer, [PARTITION], "unused", timeout=5) == {("t", 0): 42}
    assert consumer.asked == 3


def test_other_errors_are_raised_at_once():
    consumer = Consumer([KafkaError._TIMED_OUT])
    with pytest.raises(KafkaException):
        KAFKA.end_offsets(consumer, [PARTITION], "unused", timeout=5)
    assert consumer.asked == 1


def test_a_leader_that_never_comes_is_raised_after_the_timeout():
    consumer = Consumer([KafkaError.NOT_LEADER_FOR_PARTITION] * 1000)
    with pytest.raises(KafkaException):
        KAFKA.end_offsets(consumer, [PARTITION], "unused", timeout=0.3)
    assert 1 < consumer.asked < 10
