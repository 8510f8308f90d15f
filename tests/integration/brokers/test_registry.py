"""SCHEMA_REGISTRY_URL against a real Confluent-compatible registry (Apicurio Registry, built
from Maven Central and run by lockstock.registry_server): `lockstock topics create` pins every
lockstock subject to BACKWARD, which is what lets a published schema evolution register under a
registry whose global level is FULL; and a client outside lockstock, with nothing but
confluent-kafka and the registry, reads the decisions a worker writes."""

from __future__ import annotations

import datetime
import json
import time
import uuid
from dataclasses import replace
from typing import Any, Iterator

import pytest
from click.testing import CliRunner
from confluent_kafka import OFFSET_BEGINNING, DeserializingConsumer, TopicPartition
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient, SchemaRegistryError
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import StringDeserializer

from apps.cli import cli, topics  # noqa: F401  (registers `topics create`)
from apps.client import LockstockClient
from apps.supervise import WorkerPool
from lockstock.broker.embedded import free_port
from lockstock.codec import PUBLISHED, SchemaSet
from lockstock.errors import RegistryError
from lockstock.kafka import Kafka
from lockstock.registry_server import BUILD_TIMEOUT_S, ApicurioRegistry
from lockstock.subjects import BACKWARD, Subject, lockstock_subjects
from lockstock.topics import Topics

# The first run builds the registry from Maven Central (bounded by BUILD_TIMEOUT_S).
pytestmark = [pytest.mark.integration, pytest.mark.timeout(BUILD_TIMEOUT_S + 180)]

LINE_LOCK_REQUEST = "io.lockstock.LineLockRequest"


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApicurioRegistry]:
    server = ApicurioRegistry(log_path=tmp_path_factory.mktemp("registry") / "apicurio.log")
    try:
        server.start()
    except RegistryError as exc:  # a failure, not a skip: CI reaches Maven Central
        pytest.fail(f"cannot run Apicurio Registry: {exc}")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def full_by_default(registry: ApicurioRegistry) -> Iterator[SchemaRegistryClient]:
    """The registry's global level set to FULL (as the issue found it on Karapace), restored after."""
    client = SchemaRegistryClient({"url": registry.url})
    before = client.get_compatibility()
    client.set_compatibility(level="FULL")
    try:
        yield client
    finally:
        client.set_compatibility(level=before)


def published_and_current(record: str) -> tuple[Schema, Schema]:
    """The published earlier version of ``record`` (schemas/published/) and the current one."""
    schemas = SchemaSet()
    published = sorted((schemas.directory / PUBLISHED).glob(f"{record.rsplit('.', 1)[-1]}.*.avsc"))
    assert len(published) == 1, published
    assert record in {full for full, _ in schemas.superseded.values()}
    return Schema(published[0].read_text(), "AVRO"), Schema(json.dumps(schemas.expanded[record]), "AVRO")


def test_topics_create_pins_every_subject_to_backward_so_the_published_evolution_registers(
        settings, registry, full_by_default):
    client = full_by_default
    with_registry = replace(settings, schema_registry_url=registry.url)

    result = CliRunner().invoke(cli, ["topics", "create", "--json"], env=with_registry.as_env())

    assert result.exit_code == 0, result.output
    rows = {row["topic"]: row for row in json.loads(result.stdout)}
    subjects = list(lockstock_subjects(settings.topic_prefix))
    for subject in subjects:
        assert rows[subject.topic]["subjects"][subject.name] == BACKWARD
        assert client.get_compatibility(subject.name) == BACKWARD  # what the registry holds
    table = CliRunner().invoke(cli, ["topics", "create"], env=with_registry.as_env())
    assert table.exit_code == 0 and "COMPATIBILITY" in table.stdout and BACKWARD in table.stdout

    older, current = published_and_current(LINE_LOCK_REQUEST)
    subject = Subject(Topics(settings.topic_prefix).lock_requests, LINE_LOCK_REQUEST).name
    assert client.register_schema(subject, older) != client.register_schema(subject, current)
    assert client.get_versions(subject) == [1, 2]


def test_without_the_step_full_refuses_the_published_evolution(full_by_default):
    client = full_by_default
    older, current = published_and_current(LINE_LOCK_REQUEST)
    unpinned = Subject(Topics(f"t{uuid.uuid4().hex[:10]}").lock_requests, LINE_LOCK_REQUEST).name
    client.register_schema(unpinned, older)
    with pytest.raises(SchemaRegistryError) as refused:
        client.register_schema(unpinned, current)
    assert refused.value.http_status_code == 409, refused.value


def test_topics_create_against_a_registry_that_is_down_says_so(settings):
    down = f"http://127.0.0.1:{free_port()}/apis/ccompat/v7"
    result = CliRunner().invoke(cli, ["topics", "create"], env=replace(settings, schema_registry_url=down).as_env())
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    assert "topics are created, but compatibility is not set" in result.stderr
    assert f"{down} did not set {BACKWARD} on subject" in result.stderr
    assert "Traceback" not in result.output


def test_topics_create_with_the_mock_registry_says_it_sets_nothing(settings):
    mock = replace(settings, schema_registry_url="mock://topics")
    result = CliRunner().invoke(cli, ["topics", "create"], env=mock.as_env())
    assert result.exit_code == 0, result.output
    assert "keeps no compatibility levels; none set" in result.stderr
    assert "COMPATIBILITY" not in result.stdout


def test_an_outside_avro_deserializer_reads_the_decisions_a_worker_wrote(settings, registry, tmp_path):
    with_registry = replace(settings, schema_registry_url=registry.url)
    kafka = Kafka.connect(with_registry)
    kafka.create_topics()
    pool = WorkerPool(with_registry, tmp_path / "logs")
    try:
        pool.start().wait_ready()
        client = LockstockClient(kafka)
        client.set_stock("SKU-A", 5, {"US": 5}, flex_pct=0)
        client.flush()
        client.place_order("o-1", [("SKU-A", 2)])
        client.place_order("o-2", [("SKU-Z", 1)])  # never stocked
        client.flush()
        ours = {order: decisions[-1] for order, decisions in client.decisions({"o-1", "o-2"}).items()}
    finally:
        pool.stop_all()
    assert ours["o-1"]["status"] == "LOCKED" and ours["o-2"]["status"] == "REJECTED", ours

    topic = kafka.topics.orders_decisions
    theirs = read_as_an_outside_client(kafka, topic, registry.url, set(ours))

    assert {order: as_epoch_millis(value) for order, value in theirs.items()} == ours
    assert f"{topic}-io.lockstock.OrderDecision" in SchemaRegistryClient({"url": registry.url}).get_subjects()


def read_as_an_outside_client(kafka: Kafka, topic: str, url: str, orders: set[str],
                              timeout: float = 30.0) -> dict[str, dict]:
    """Latest value per key, read with confluent-kafka's own Avro deserializer: the writer schema
    comes from the registry by the id in each record, nothing from lockstock's schemas/."""
    consumer = DeserializingConsumer({
        "bootstrap.servers": kafka.bootstrap,
        "group.id": f"outside-{uuid.uuid4().hex[:12]}",
        "enable.auto.commit": False,
        "key.deserializer": StringDeserializer("utf_8"),
        "value.deserializer": AvroDeserializer(SchemaRegistryClient({"url": url})),
    })
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
    found: dict[str, dict] = {}
    deadline = time.monotonic() + timeout
    try:
        while not orders <= set(found) and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                found[message.key()] = message.value()
    finally:
        consumer.close()
    assert orders <= set(found), f"read {sorted(found)} of {sorted(orders)} within {timeout}s"
    return found


def as_epoch_millis(value: Any) -> Any:
    """confluent-kafka reads timestamp-millis as datetimes; lockstock keeps the epoch millis."""
    if isinstance(value, datetime.datetime):
        return round(value.timestamp() * 1000)
    if isinstance(value, dict):
        return {k: as_epoch_millis(v) for k, v in value.items()}
    if isinstance(value, list):
        return [as_epoch_millis(v) for v in value]
    return value


def test_registry_command_serves_the_confluent_api_and_stops_on_sigterm(registry):
    import os
    import signal
    import subprocess
    import sys
    import urllib.request

    # `registry` (the fixture) has built the app already: the command only starts it.
    process = subprocess.Popen([sys.executable, "-m", "lockstock", "registry"], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True, start_new_session=True)
    try:
        url = None
        deadline = time.monotonic() + 90
        while url is None and time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            if "SCHEMA_REGISTRY_URL=" in line:
                url = line.split("=", 1)[1].strip()
        assert url and url.startswith("http://127.0.0.1:"), url
        with urllib.request.urlopen(url + "/subjects", timeout=5) as response:
            assert response.status == 200 and json.loads(response.read()) == []
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
        with pytest.raises(OSError):  # its JVM went with it
            urllib.request.urlopen(url + "/subjects", timeout=2)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
