"""Pin the embedded broker's behaviour (shared/notes/tansu.md) so a tansu upgrade that fixes or
changes it is noticed, and check the profile's corrections against it."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest
from confluent_kafka import TopicPartition

from lockstock.broker.embedded import EmbeddedBroker, free_port
from lockstock.broker.profile import EMBEDDED, KAFKA, correct_end_offsets, detect
from lockstock.errors import BrokerError

pytestmark = pytest.mark.integration


@pytest.fixture
def embedded_only(kafka):
    if not kafka.profile.embedded:
        pytest.skip(f"pins the embedded broker's bugs; this run uses {kafka.profile.name}")
    return kafka


def write_batches(kafka, topic: str, batches: int, per_batch: int) -> None:
    producer = kafka.producer(**{"linger.ms": 50, "batch.num.messages": per_batch})
    for _ in range(batches):
        for n in range(per_batch):
            producer.produce(topic, key=b"same-key", value=b"v%d" % n)  # one key: one partition
        producer.flush(10)


def test_latest_offset_is_wrong_for_multi_record_batches_and_the_profile_corrects_it(embedded_only):
    kafka = embedded_only
    topic = kafka.topics.deadletter
    write_batches(kafka, topic, batches=2, per_batch=10)
    consumer = kafka.consumer()
    partitions = [TopicPartition(topic, p) for p in range(kafka.settings.partitions)]
    reported = {tp.partition: consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in partitions}
    written = max(reported, key=reported.get)
    # tansu 0.6.0: newest batch's base offset + 1 (11), not the log end (20). If this fails,
    # tansu fixed ListOffsets: the correction in lockstock.broker.profile may be dropped.
    assert reported[written] == 11, reported
    assert kafka.end_offsets(consumer, partitions)[(topic, written)] == 20
    consumer.close()
    corrected = correct_end_offsets(kafka.bootstrap, {(topic, written): 11})  # what Faust's recovery calls
    assert corrected[(topic, written)] == 20


@pytest.mark.both_brokers
def test_profile_is_detected_from_the_cluster_id(broker, kafka):
    expected = EMBEDDED if broker.kind == "embedded" else KAFKA
    assert detect(kafka.bootstrap) is expected
    assert detect(kafka.bootstrap, "kafka") is KAFKA  # an explicit choice wins
    assert KAFKA.consumer == {} and KAFKA.faust == {}  # on real Kafka the profile adds nothing


def test_unreachable_bootstrap_is_a_clear_error():
    with pytest.raises(BrokerError, match="cannot reach Kafka at 127.0.0.1:1"):
        detect("127.0.0.1:1", timeout=2)


def test_broker_command_serves_kafka_and_stops_on_sigterm(tmp_path):
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "lockstock", "broker", "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        line = process.stdout.readline()
        assert f"embedded broker ready on 127.0.0.1:{port}" in line
        assert detect(f"127.0.0.1:{port}") is EMBEDDED
        process.send_signal(signal.SIGTERM)
        assert process.wait(20) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(5)
    deadline = time.monotonic() + 10
    with EmbeddedBroker(port=port) as again:  # the port was released: nothing left running
        assert again.bootstrap.endswith(str(port))
        assert time.monotonic() < deadline


def produce_to_consume_ms(kafka, topic: str, **consumer_overrides) -> float:
    """Median delay from a delivered produce to its consumption, over a few idle-gap messages."""
    consumer = kafka.consumer(**consumer_overrides)
    consumer.subscribe([topic])
    deadline = time.monotonic() + 15
    while not consumer.assignment() and time.monotonic() < deadline:
        consumer.poll(0.1)
    producer = kafka.producer()
    delays = []
    for n in range(5):
        time.sleep(0.2)  # let the consumer's fetch go idle (long-poll) first
        sent = time.monotonic()
        producer.produce(topic, key=b"k", value=b"%d" % n)
        producer.flush(10)
        while time.monotonic() < sent + 10:
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                delays.append((time.monotonic() - sent) * 1000)
                break
    consumer.close()
    assert len(delays) == 5
    return sorted(delays)[2]


def test_long_poll_fetch_waits_its_full_max_wait_and_the_profile_shortens_it(embedded_only):
    kafka = embedded_only
    # tansu 0.6.0 answers a Fetch when fetch.wait.max.ms expires, not when data arrives. If this
    # fails, tansu fixed it and EMBEDDED_FETCH_MAX_WAIT_MS in the profile can go.
    # A message lands somewhere inside the held Fetch, so it waits out the rest of that second.
    slow = produce_to_consume_ms(kafka, kafka.topics.inventory_alerts, **{"fetch.wait.max.ms": 1000})
    fast = produce_to_consume_ms(kafka, kafka.topics.deadletter)  # profile: 20 ms
    assert slow > 150 and fast < 100 and slow > 3 * fast, (slow, fast)
