"""Apache Kafka (KRaft) as local JVMs: one node for clients, three nodes that lose one and recover.

The first run on a machine resolves the jars from Maven Central (bounded by
jars.RESOLVE_TIMEOUT); an unreachable Maven Central fails here with Maven's own output.
"""

from __future__ import annotations

import time
import uuid

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from lockstock.broker.apache import ApacheKafka
from lockstock.broker.embedded import _quiet
from lockstock.broker.profile import KAFKA, detect
from lockstock.kafka import Kafka
from lockstock.processes import alive
from lockstock.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]


def create_topic(admin: AdminClient, topic: str, partitions: int, replicas: int, **config: str) -> None:
    futures = admin.create_topics([NewTopic(topic, partitions, replicas, config=config)], request_timeout=30)
    futures[topic].result(30)


def produce(bootstrap: str, topic: str, values: list[bytes], **overrides: object) -> None:
    """Every value acknowledged, or the first delivery error raised."""
    errors: list[object] = []
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                         "message.timeout.ms": 60000, "logger": _quiet, **overrides})
    for value in values:
        producer.produce(topic, value=value, on_delivery=lambda err, _msg: err and errors.append(err))
    assert producer.flush(90) == 0, "records still unacknowledged after 90 s"
    assert not errors, errors


def consume_all(bootstrap: str, topic: str, expected: int, timeout: float = 30.0) -> list[bytes]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"g-{uuid.uuid4().hex[:8]}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False, "logger": _quiet})
    consumer.subscribe([topic])
    values: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while len(values) < expected and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                values.append(message.value())
    finally:
        consumer.close()
    return values


def wait_until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f}s")
        time.sleep(0.5)


def test_a_single_node_serves_clients_reads_as_real_kafka_and_stops_by_pid(tmp_path):
    kafka = ApacheKafka(nodes=1, work_dir=tmp_path / "kafka")
    with kafka:
        pid = kafka.pid
        assert pid and alive(pid)
        assert detect(kafka.bootstrap) is KAFKA  # the cluster id has no embedded-broker marker
        admin = AdminClient({"bootstrap.servers": kafka.bootstrap, "logger": _quiet})
        create_topic(admin, "greetings", partitions=2, replicas=1)
        sent = [b"hello-%d" % n for n in range(5)]
        produce(kafka.bootstrap, "greetings", sent)
        assert sorted(consume_all(kafka.bootstrap, "greetings", len(sent))) == sent
    assert not alive(pid)
    assert kafka.processes == {}


def test_the_session_fixture_runs_lockstock_topics(apache_kafka, tmp_path):
    settings = Settings(bootstrap_servers=apache_kafka.bootstrap, data_dir=tmp_path, topic_prefix="apache")
    connected = Kafka.connect(settings)
    assert connected.profile is KAFKA
    created = [name for name, _spec, _status in connected.create_topics()]
    assert created and set(connected.admin().list_topics(timeout=10).topics) >= set(created)


@pytest.mark.cluster
def test_three_nodes_keep_acknowledging_writes_when_one_is_lost_and_take_it_back(tmp_path):
    kafka = ApacheKafka(nodes=3, work_dir=tmp_path / "kafka")
    with kafka:
        pids = kafka.pids
        admin = AdminClient({"bootstrap.servers": kafka.bootstrap, "logger": _quiet})
        assert len(admin.describe_cluster(request_timeout=10).result(10).nodes) == 3
        create_topic(admin, "orders", partitions=3, replicas=3, **{"min.insync.replicas": "2"})
        produce(kafka.bootstrap, "orders", [b"before-%d" % n for n in range(10)])

        victim = admin.list_topics("orders", timeout=10).topics["orders"].partitions[0].leader
        kafka.kill_node(victim)
        assert not alive(pids[victim])
        # Two in-sync replicas left: acks=all still succeeds (leaders move off the lost node).
        produce(kafka.bootstrap, "orders", [b"after-%d" % n for n in range(10)])

        kafka.restart_node(victim)
        assert len(admin.describe_cluster(request_timeout=10).result(10).nodes) == 3

        def back_in_sync() -> bool:
            partitions = admin.list_topics("orders", timeout=10).topics["orders"].partitions.values()
            return all(len(p.isrs) == 3 for p in partitions)

        wait_until(back_in_sync, 60, f"node {victim} back in every partition's ISR")
        values = consume_all(kafka.bootstrap, "orders", 20)
        assert len(values) == 20 and len(set(values)) == 20
        running = kafka.pids
    assert not any(alive(pid) for pid in running.values())


def test_the_latest_offset_is_the_log_end_even_after_a_multi_record_batch(apache_kafka):
    """What the embedded broker gets wrong (profile.py, bug 1) and the kafka profile relies on."""
    admin = AdminClient({"bootstrap.servers": apache_kafka.bootstrap, "logger": _quiet})
    create_topic(admin, "offsets-probe", partitions=1, replicas=1)
    produce(apache_kafka.bootstrap, "offsets-probe", [b"a", b"b", b"c"], **{"linger.ms": 50})
    consumer = Consumer({"bootstrap.servers": apache_kafka.bootstrap, "group.id": "probe", "logger": _quiet})
    try:
        low, high = consumer.get_watermark_offsets(TopicPartition("offsets-probe", 0), timeout=10)
    finally:
        consumer.close()
    assert (low, high) == (0, 3)  # a multi-record batch: the log end, not the batch's base + 1
