"""Shared fixtures.

Broker selection (integration tests talk to a real Kafka-protocol broker):
1. KAFKA_BOOTSTRAP_SERVERS set: every test runs once, on that cluster;
2. else a test marked ``both_brokers`` runs twice, on the embedded broker (tansu) and on Apache
   Kafka (a testcontainer when a Docker engine answers, else a local KRaft JVM started from
   Maven Central jars), and its id names the broker (``[embedded]``, ``[apache]``);
3. every other test runs once, on Apache Kafka in a testcontainer when Docker answers, else on
   the embedded broker.
Each broker is started once per session when a test first needs it and stopped by PID at the
end. LOCKSTOCK_TEST_REQUIRE_DOCKER=1 turns a missing Docker engine into a failure (for machines
that have one). Every test gets its own topic prefix, app id, data dir and web port.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

from apps.supervise import WorkerPool
from lockstock.broker.embedded import EmbeddedBroker, free_port
from lockstock.kafka import Kafka
from lockstock.settings import Settings


@dataclass(frozen=True)
class BrokerUnderTest:
    bootstrap: str
    kind: str  # "external", "embedded" or "apache"


def _docker_answers() -> bool:
    try:
        import docker

        client = docker.from_env(timeout=3)
        client.ping()
        return True
    except Exception:
        return False


EXTERNAL, EMBEDDED, APACHE = "external", "embedded", "apache"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test marked ``both_brokers`` gets one ``broker`` parameter per broker (module docstring)."""
    if "broker" not in metafunc.fixturenames or not metafunc.definition.get_closest_marker("both_brokers"):
        return
    if not os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip():
        metafunc.parametrize("broker", [EMBEDDED, APACHE], indirect=True, scope="session")


def _default_kind() -> str:
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip():
        return EXTERNAL
    return APACHE if _docker_answers() else EMBEDDED


@pytest.fixture(scope="session")
def broker(request: pytest.FixtureRequest) -> BrokerUnderTest:
    kind = getattr(request, "param", None) or _default_kind()
    if kind == EXTERNAL:
        return BrokerUnderTest(os.environ["KAFKA_BOOTSTRAP_SERVERS"].strip(), EXTERNAL)
    return request.getfixturevalue(f"{kind}_broker")


@pytest.fixture(scope="session")
def embedded_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerUnderTest]:
    log = tmp_path_factory.mktemp("broker") / "embedded-broker.log"
    with EmbeddedBroker(log_path=log) as running:
        yield BrokerUnderTest(running.bootstrap, EMBEDDED)


@pytest.fixture(scope="session")
def apache_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerUnderTest]:
    """Apache Kafka: in a testcontainer where Docker answers, else a single-node KRaft JVM.

    The first run on a machine fetches the broker's jars with Maven (cached after that, see
    lockstock.broker.apache.jars).
    """
    if _docker_answers():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer().with_kraft() as container:
            yield BrokerUnderTest(container.get_bootstrap_server(), APACHE)
        return
    if os.environ.get("LOCKSTOCK_TEST_REQUIRE_DOCKER") == "1":
        pytest.fail("LOCKSTOCK_TEST_REQUIRE_DOCKER=1 but no Docker engine answers")
    from lockstock.broker.apache import ApacheKafka

    with ApacheKafka(nodes=1, work_dir=tmp_path_factory.mktemp("apache-kafka")) as running:
        yield BrokerUnderTest(running.bootstrap, APACHE)


@pytest.fixture(scope="session")
def apache_kafka(apache_broker: BrokerUnderTest) -> BrokerUnderTest:
    """Apache Kafka for the tests that are about it alone (tests/integration/brokers/test_apache_kafka.py)."""
    return apache_broker


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
