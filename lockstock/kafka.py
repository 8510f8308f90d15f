"""The one factory of Kafka clients (confluent-kafka) and of topic provisioning.

Every producer built here uses the murmur2 partitioner, the hash Faust/aiokafka and the Java
client use, so a key lands on the same partition whoever writes it: inventory state keyed by
SKU is then owned by exactly one partition's worker. Producers are idempotent with acks=all.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

from aiokafka.partitioner import murmur2

from lockstock.broker.profile import BrokerProfile, detect
from lockstock.codec import AvroCodec, codec_for
from lockstock.errors import BrokerError, describe_kafka_error
from lockstock.settings import Settings
from lockstock.topics import ALL, TopicSpec, Topics

if TYPE_CHECKING:
    from lockstock.reader import Reader, ReaderThread

logger = logging.getLogger(__name__)
librdkafka_logger = logging.getLogger("librdkafka")

PARTITIONER = "murmur2_random"


def take(consumer: Any, limit: int, timeout: float) -> list[Any]:
    """Up to ``limit`` records from a confluent-kafka Consumer: waits at most ``timeout`` for the
    first, then takes only what is already fetched. ``consume(limit, timeout)`` instead waits until
    it holds ``limit`` records or the timeout passed, which added up to the whole timeout to every
    record a live reader (the load test's latency, the stock sync's lag) saw."""
    first = consumer.poll(timeout)
    if first is None:
        return []
    return [first, *consumer.consume(limit - 1, 0)] if limit > 1 else [first]


def key_partition(key: bytes, partitions: int) -> int:
    """The partition ``PARTITIONER`` (and Faust, and the Java client) sends a keyed record to,
    for a writer that must name the partition itself (streams/envelopes.py)."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


@dataclass
class Kafka:
    """A resolved connection: settings, bootstrap servers, broker profile, codec, topic names."""

    settings: Settings
    profile: BrokerProfile
    codec: AvroCodec

    @classmethod
    def connect(cls, settings: Settings, timeout: float = 10.0) -> "Kafka":
        if settings.bootstrap_servers is None:
            raise BrokerError("no KAFKA_BOOTSTRAP_SERVERS: start the embedded broker first (see embedded_kafka)")
        profile = detect(settings.bootstrap_servers, settings.broker_profile, timeout)
        return cls(settings, profile, codec_for(settings.schema_registry_url))

    @property
    def bootstrap(self) -> str:
        assert self.settings.bootstrap_servers is not None
        return self.settings.bootstrap_servers

    @functools.cached_property
    def topics(self) -> Topics:
        return Topics(self.settings.topic_prefix)

    def _base(self) -> dict[str, Any]:
        return {"bootstrap.servers": self.bootstrap, "logger": librdkafka_logger}

    def producer_config(self, **overrides: Any) -> dict[str, Any]:
        config = {
            **self._base(),
            "partitioner": PARTITIONER,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
            "compression.type": "lz4",
            "client.id": f"{self.settings.app_id}-producer",
        }
        config.update(overrides)
        return config

    def producer(self, **overrides: Any):
        from confluent_kafka import Producer

        return Producer(self.producer_config(**overrides))

    def consumer(self, group_id: str | None = None, **overrides: Any):
        """A consumer; without group_id a throwaway group that commits nothing (for tools/tests)."""
        from confluent_kafka import Consumer

        config = {
            **self._base(),
            "group.id": group_id or f"{self.settings.app_id}-tool-{uuid.uuid4().hex[:12]}",
            "enable.auto.commit": group_id is not None,
            "auto.offset.reset": "earliest",
            "partition.assignment.strategy": "cooperative-sticky",
            **self.profile.consumer,
        }
        config.update(overrides)
        return Consumer(config)

    def admin(self):
        from confluent_kafka.admin import AdminClient

        return AdminClient(self._base())

    def end_offsets(self, consumer: Any, partitions: Iterable[Any], timeout: float = 10.0) -> dict[tuple[str, int], int]:
        return self.profile.end_offsets(consumer, partitions, self.bootstrap, timeout)

    def assign_at(self, consumer: Any, *, beginning: Iterable[str] = (), end: Iterable[str] = (),
                  timeout: float = 10.0, incremental: bool = False) -> dict[tuple[str, int], int]:
        """Assign every partition of ``beginning`` topics from their first record and of ``end``
        topics from now on (true end offsets: the embedded broker's are corrected). No group
        join. ``incremental`` adds them to the consumer's assignment (none of them may be in it
        yet) instead of replacing it. Returns the end offsets of the ``beginning`` topics, to
        tell when they are read."""
        from confluent_kafka import OFFSET_BEGINNING, TopicPartition

        def partitions(topic: str) -> list[Any]:
            found = consumer.list_topics(topic, timeout=timeout).topics[topic].partitions
            return [TopicPartition(topic, p) for p in found]

        start = [tp for topic in beginning for tp in partitions(topic)]
        later = [tp for topic in end for tp in partitions(topic)]
        later_ends = self.end_offsets(consumer, later, timeout)
        assign = consumer.incremental_assign if incremental else consumer.assign
        assign([TopicPartition(tp.topic, tp.partition, OFFSET_BEGINNING) for tp in start]
               + [TopicPartition(tp.topic, tp.partition, later_ends[(tp.topic, tp.partition)]) for tp in later])
        return self.end_offsets(consumer, start, timeout)

    def reader(self, **options: Any) -> "Reader":
        """A group-less reader of topics (lockstock.reader.Reader; ``options`` are its own)."""
        from lockstock.reader import Reader

        return Reader(self, **options)

    def reader_thread(self, deliver: Callable[[list[Any], bool], None], **options: Any) -> "ReaderThread":
        """A Reader's loop on a daemon thread, not started (lockstock.reader.ReaderThread)."""
        from lockstock.reader import ReaderThread

        return ReaderThread(self, deliver, **options)

    def create_topics(self, specs: Iterable[TopicSpec] = ALL, timeout: float = 30.0) -> list[tuple[str, TopicSpec, str]]:
        """Create missing topics; check existing ones. Idempotent. Returns (name, spec, status)."""
        from confluent_kafka import KafkaError
        from confluent_kafka.admin import NewTopic

        admin = self.admin()
        prefix, partitions = self.settings.topic_prefix, self.settings.partitions
        wanted = {spec.name(prefix): spec for spec in specs}
        existing = _list_topics(admin, timeout)
        results: list[tuple[str, TopicSpec, str]] = []
        to_create = [
            NewTopic(name, partitions, self.settings.replication_factor, config=spec.config())
            for name, spec in wanted.items()
            if name not in existing
        ]
        futures = admin.create_topics(to_create, request_timeout=timeout) if to_create else {}
        for name, future in futures.items():
            try:
                future.result(timeout)
            except Exception as exc:
                error = exc.args[0] if exc.args else None
                if getattr(error, "code", lambda: None)() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise BrokerError(f"cannot create topic {name}: {describe_kafka_error(exc)}") from None
        existing = _visible_topics(admin, set(wanted), timeout)
        for name, spec in wanted.items():
            found = existing.get(name)
            if found is None:
                raise BrokerError(f"topic {name} does not exist after creation")
            if found != partitions:
                # Co-partitioning is how one worker owns a SKU; a silent mismatch would break it.
                raise BrokerError(
                    f"topic {name} has {found} partitions, settings say {partitions}; "
                    "use the existing count (LOCKSTOCK_PARTITIONS) or a new topic prefix"
                )
            results.append((name, spec, "created" if any(t.topic == name for t in to_create) else "exists"))
        return results


def _visible_topics(admin: Any, names: set[str], timeout: float) -> dict[str, int]:
    """The topics' partition counts once metadata shows every one of ``names``: Apache Kafka
    answers CreateTopics before every broker's metadata holds the new topics."""
    deadline = time.monotonic() + timeout
    existing = _list_topics(admin, timeout)
    while not names <= existing.keys() and time.monotonic() < deadline:
        time.sleep(0.1)
        existing = _list_topics(admin, timeout)
    return existing


def _list_topics(admin: Any, timeout: float) -> dict[str, int]:
    try:
        metadata = admin.list_topics(timeout=timeout)
    except Exception as exc:
        raise BrokerError(f"cannot list topics: {describe_kafka_error(exc)}") from None
    return {name: len(t.partitions) for name, t in metadata.topics.items() if t.error is None}


@contextlib.contextmanager
def kafka_for(settings: Settings, *, log_dir: Any = None) -> Iterator[Kafka]:
    """Connect to the configured cluster, or start the embedded broker for the duration."""
    if not settings.embedded:
        yield Kafka.connect(settings)
        return
    from lockstock.broker.embedded import EmbeddedBroker

    import tempfile
    from pathlib import Path

    log_path = (settings.data_dir / "embedded-broker.log") if log_dir is None else log_dir
    # The embedded broker keeps nothing past its run, so neither may the workers' state stores:
    # RocksDB offsets from an earlier run would be ahead of the new, empty changelogs.
    with tempfile.TemporaryDirectory(prefix="lockstock-state-") as state, EmbeddedBroker(log_path=log_path) as broker:
        logger.info("no KAFKA_BOOTSTRAP_SERVERS: started the embedded broker on %s", broker.bootstrap)
        yield Kafka.connect(settings.with_(bootstrap_servers=broker.bootstrap, broker_profile="embedded",
                                           data_dir=Path(state)))
