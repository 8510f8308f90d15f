"""Broker profiles: the one place that knows which broker lockstock talks to.

``kafka`` (Apache Kafka, Redpanda, any real cluster) adds nothing to client settings.
``embedded`` neutralises the known bugs of the embedded tansu 0.6.0 broker
(shared/notes/tansu.md), each pinned by a test in tests/integration/brokers/test_embedded_broker.py:

1. ListOffsets(latest) returns the newest *batch's* base offset + 1, not the log end, when
   batches hold more than one record. Faust uses it as the changelog highwater, so recovery
   stops early (memory store) or crashes (rocksdb store: persisted offset > highwater).
   Fix: read the true end from a Fetch response's high watermark, which is correct, with one
   small fetch at ``reported_end - 1`` per partition. Only recovery and tools read end
   offsets, so producers keep batching at full speed.
2. aiokafka's InitProducerId is rejected, so no idempotent aiokafka producer and no Faust
   ``exactly_once``. lockstock runs at-least-once everywhere and makes every state change
   idempotent (dedup record and state in one table value), so this profile changes nothing.
3. read_committed shows aborted records: lockstock does not rely on transactions.
4. Group join waits ~session_timeout/2: this profile uses session 3 s / heartbeat 1 s
   (Apache Kafka rejects sessions under its group.min.session.timeout.ms = 6 s, hence not global).
5. A long-poll Fetch is answered only when its max wait expires, even when data arrives
   sooner. Faust hard-codes aiokafka's fetch_max_wait_ms=1500 (1.5 s on every pipeline hop);
   this profile waits at most EMBEDDED_FETCH_MAX_WAIT_MS (docs/decisions/0001).
6. offsets_for_times, CreatePartitions and DeleteRecords are broken: lockstock never calls them.
7. Compaction and retention are never applied and storage is memory only: a broker restart loses
   everything (documented in the README; not a supported scenario).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from lockstock.errors import BrokerError, describe_kafka_error

TANSU_MARKER = "tansu"
EMBEDDED_FETCH_MAX_WAIT_MS = 20


@dataclass(frozen=True)
class BrokerProfile:
    name: str
    consumer: Mapping[str, Any] = field(default_factory=dict)  # librdkafka consumer settings
    faust: Mapping[str, Any] = field(default_factory=dict)  # faust.App settings
    faust_scheme: str = "kafka"  # Faust transport: kafka:// (stock aiokafka) or tansu://

    @property
    def embedded(self) -> bool:
        return self.name == "embedded"

    def faust_broker_url(self, bootstrap: str) -> str:
        return ";".join(f"{self.faust_scheme}://{server}" for server in bootstrap.split(","))

    def end_offsets(self, consumer: Any, partitions: Iterable[Any], bootstrap: str, timeout: float = 10.0) -> dict[tuple[str, int], int]:
        """True log-end offset per (topic, partition), read through a confluent-kafka Consumer.
        A partition whose leader is still being elected (a topic just created) is asked again
        until ``timeout``."""
        from confluent_kafka import KafkaException, TopicPartition

        deadline = time.monotonic() + timeout
        ends: dict[tuple[str, int], int] = {}
        for tp in partitions:
            while True:
                try:
                    _, high = consumer.get_watermark_offsets(TopicPartition(tp.topic, tp.partition),
                                                             timeout=max(0.1, deadline - time.monotonic()))
                    break
                except KafkaException as exc:
                    if not _leader_moving(exc) or time.monotonic() >= deadline:
                        raise
                    time.sleep(0.1)
            ends[(tp.topic, tp.partition)] = high
        if self.embedded:
            ends = correct_end_offsets(bootstrap, ends, timeout)
        return ends


def _leader_moving(exc: Any) -> bool:
    from confluent_kafka import KafkaError

    error = exc.args[0] if exc.args else None
    return isinstance(error, KafkaError) and error.code() in (
        KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE, KafkaError.UNKNOWN_TOPIC_OR_PART)


KAFKA = BrokerProfile("kafka")
EMBEDDED = BrokerProfile(
    "embedded",
    consumer={"session.timeout.ms": 3000, "heartbeat.interval.ms": 1000,
              "fetch.wait.max.ms": EMBEDDED_FETCH_MAX_WAIT_MS},
    faust={"broker_session_timeout": 3.0, "broker_heartbeat_interval": 1.0},
    faust_scheme="tansu",
)
PROFILES = {"kafka": KAFKA, "embedded": EMBEDDED}


def detect(bootstrap: str, requested: str = "auto", timeout: float = 10.0) -> BrokerProfile:
    """The profile asked for, or (``auto``) the one the cluster id reveals."""
    if requested != "auto":
        return PROFILES[requested]
    return EMBEDDED if TANSU_MARKER in cluster_id(bootstrap, timeout) else KAFKA


def cluster_id(bootstrap: str, timeout: float = 10.0) -> str:
    from confluent_kafka.admin import AdminClient

    from lockstock.broker.embedded import _quiet

    admin = AdminClient({"bootstrap.servers": bootstrap, "logger": _quiet})
    try:
        return admin.list_topics(timeout=timeout).cluster_id or ""
    except Exception as exc:
        raise BrokerError(f"cannot reach Kafka at {bootstrap} within {timeout:.0f}s ({describe_kafka_error(exc)})") from None


def correct_end_offsets(bootstrap: str, reported: Mapping[Any, int], timeout: float = 15.0) -> dict:
    """Correct ListOffsets(latest) with the high watermark of one fetch at ``reported - 1``.

    Keys are anything shaped (topic, partition) (tuples, Faust TPs) and come back unchanged.
    Blocking: Faust's recovery calls it in a thread.
    """
    from confluent_kafka import Consumer, TopicPartition

    from lockstock.broker.embedded import _quiet

    todo = {(key[0], key[1]): key for key, end in reported.items() if end and end > 0}
    result = dict(reported)
    if not todo:
        return result
    probe = Consumer({
        "bootstrap.servers": bootstrap, "group.id": "lockstock-end-offset-probe", "enable.auto.commit": False,
        "fetch.wait.max.ms": EMBEDDED_FETCH_MAX_WAIT_MS, "logger": _quiet,
    })
    try:
        probe.assign([TopicPartition(topic, partition, reported[key] - 1) for (topic, partition), key in todo.items()])
        deadline = time.monotonic() + timeout
        while todo and time.monotonic() < deadline:
            message = probe.poll(0.2)
            if message is None or message.error() is not None:
                continue
            key = todo.pop((message.topic(), message.partition()), None)
            if key is not None:
                _, high = probe.get_watermark_offsets(TopicPartition(message.topic(), message.partition()), cached=True)
                result[key] = max(high, reported[key])
    finally:
        probe.close()
    if todo:
        raise BrokerError(f"could not read the end offset of {sorted(todo)} within {timeout:.0f}s")
    return result


def _faust_embedded_transport() -> type:
    """Faust's aiokafka transport with recovery highwaters corrected (tansu:// scheme)."""
    from faust.transport.drivers import aiokafka as faust_aiokafka

    class EmbeddedConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
        def _create_worker_consumer(self, transport):  # type: ignore[override]
            consumer = super()._create_worker_consumer(transport)
            # Faust passes fetch_max_wait_ms=1500; aiokafka reads it when the consumer starts.
            consumer._fetch_max_wait_ms = EMBEDDED_FETCH_MAX_WAIT_MS
            return consumer

        async def _highwaters(self, partitions):  # type: ignore[override]
            reported = await super()._highwaters(partitions)
            if self.consumer.in_transaction:
                return reported
            servers = faust_aiokafka.server_list(self.transport.url, self.transport.default_port)
            return await asyncio.to_thread(correct_end_offsets, ",".join(servers), reported)

    class EmbeddedConsumer(faust_aiokafka.Consumer):
        def _new_consumer_thread(self) -> EmbeddedConsumerThread:
            return EmbeddedConsumerThread(self, loop=self.loop, beacon=self.beacon)

    class EmbeddedTransport(faust_aiokafka.Transport):
        Consumer = EmbeddedConsumer
        driver_version = faust_aiokafka.Transport.driver_version + "+lockstock-embedded"

    return EmbeddedTransport


def __getattr__(name: str) -> Any:
    # Faust imports the transport by entry point (pyproject: faust.transports tansu=...);
    # building it lazily keeps faust out of processes that only produce with confluent-kafka.
    if name == "EmbeddedTransport":
        transport = _faust_embedded_transport()
        globals()["EmbeddedTransport"] = transport
        return transport
    raise AttributeError(name)


__all__ = ["BrokerProfile", "KAFKA", "EMBEDDED", "detect", "cluster_id", "correct_end_offsets"]
