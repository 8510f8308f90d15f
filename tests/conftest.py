"""Shared fixtures.

Broker selection for the session (integration tests talk to a real Kafka-protocol broker):
1. KAFKA_BOOTSTRAP_SERVERS set: that cluster;
2. else a Docker engine answers: Apache Kafka in a testcontainer;
3. else the embedded broker (tansu), started here and stopped by PID at the end.
LOCKSTOCK_TEST_REQUIRE_DOCKER=1 turns a missing Docker engine into a failure (for machines
that have one). Every test gets its own topic prefix, app id, data dir and web port.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

from lockstock.broker.embedded import EmbeddedBroker, free_port
from lockstock.kafka import Kafka
from lockstock.settings import Settings
from lockstock.supervise import WorkerPool


@dataclass(frozen=True)
class BrokerUnderTest:
    bootstrap: str
    kind: str  # "external", "testcontainers", "embedded" or "apache"


def _docker_answers() -> bool:
    try:
        import docker

        client = docker.from_env(timeout=3)
        client.ping()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerUnderTest]:
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip()
    if external:
        yield BrokerUnderTest(external, "external")
        return
    if _docker_answers():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer().with_kraft() as container:
            yield BrokerUnderTest(container.get_bootstrap_server(), "testcontainers")
        return
    if os.environ.get("LOCKSTOCK_TEST_REQUIRE_DOCKER") == "1":
        pytest.fail("LOCKSTOCK_TEST_REQUIRE_DOCKER=1 but no Docker engine answers")
    log = tmp_path_factory.mktemp("broker") / "embedded-broker.log"
    with EmbeddedBroker(log_path=log) as running:
        yield BrokerUnderTest(running.bootstrap, "embedded")


@pytest.fixture(scope="session")
def apache_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerUnderTest]:
    """A single-node Apache Kafka (KRaft, local JVM), started only for the tests that ask for it.

    The first run on a machine fetches its jars with Maven (cached after that, see
    lockstock.broker.apache.jars); stopped by PID at the end of the session.
    """
    from lockstock.broker.apache import ApacheKafka

    with ApacheKafka(nodes=1, work_dir=tmp_path_factory.mktemp("apache-kafka")) as running:
        yield BrokerUnderTest(running.bootstrap, "apache")


@pytest.fixture
def settings(broker: BrokerUnderTest, tmp_path: Path) -> Settings:
    """Settings isolated to this test: own topics, consumer group, state and web port."""
    tag = uuid.uuid4().hex[:10]
    return Settings(
        bootstrap_servers=broker.bootstrap,
        data_dir=tmp_path / "state",
        topic_prefix=f"t{tag}",
        app_id=f"lockstock-t{tag}",
        partitions=4,
        web_port=free_port(),
    )


@pytest.fixture
def kafka(settings: Settings) -> Kafka:
    connected = Kafka.connect(settings)
    connected.create_topics()
    return connected


@pytest.fixture
def workers(kafka: Kafka, tmp_path: Path) -> Iterator[WorkerPool]:
    pool = WorkerPool(kafka.settings, tmp_path / "logs")
    try:
        yield pool
    finally:
        pool.stop_all()
