"""Move records from Kafka into the war room's model, on a background thread.

One confluent-kafka consumer with no consumer group (partitions assigned by hand), so every war
room sees every record and the engine's group is never touched. It reads from the beginning:
- the stock table's changelog (the engine's state of record, see lockstock.readback);
- ``orders.decisions``, ``inventory.alerts`` and ``channels.stock``.

Faust creates the changelog when the first worker starts, which may be after the war room: until
it exists the other topics are read alone, and it is added (from its beginning) once it appears,
keeping the others' positions. A record that cannot be decoded is counted in the model and
skipped; nothing a topic holds stops the feed.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable

from lockstock.clock import now_ms
from lockstock.errors import describe_kafka_error
from lockstock.kafka import Kafka
from lockstock.readback import changelog_topic, decode_table_record
from lockstock.warroom.model import WarRoom
from streams.engine.state import SkuState
from streams.lines import is_line_key

logger = logging.getLogger(__name__)

POLL_S = 0.2
BATCH = 500
TOPIC_CHECK_S = 1.0  # how often to look for topics that do not exist yet
RETRY_S = 2.0  # after an unexpected failure, start a new consumer this much later


class WarRoomFeed(threading.Thread):
    """Folds the topics into ``room``, holding ``lock`` while it writes."""

    def __init__(self, kafka: Kafka, room: WarRoom, lock: threading.Lock) -> None:
        super().__init__(name="lockstock-warroom-feed", daemon=True)
        self.kafka, self.room, self.lock = kafka, room, lock
        topics = kafka.topics
        self.changelog = changelog_topic(kafka.settings.app_id, "stock")
        self.topics = [topics.orders_decisions, topics.inventory_alerts, topics.channels_stock]
        self._fold: dict[str, Callable[[dict[str, Any], int], None]] = {
            topics.orders_decisions: lambda value, at: room.on_decision(value, at),
            topics.inventory_alerts: lambda value, at: room.on_alert(value),
            topics.channels_stock: lambda value, at: room.on_channel_stock(value),
        }
        self._stop_event = threading.Event()
        self._status_lock = threading.Lock()
        self._status: dict[str, Any] = {"state": "starting", "records": 0, "last_record_at": None, "error": None,
                                        "assigned": []}

    # -- status, for /health and the page's header ------------------------------------------------------
    def status(self) -> dict[str, Any]:
        with self._status_lock:
            return dict(self._status, assigned=list(self._status["assigned"]))

    def _set(self, **changes: Any) -> None:
        with self._status_lock:
            self._status.update(changes)

    # -- the loop -----------------------------------------------------------------------------------------
    def stop(self, timeout: float = 10.0) -> None:
        self._stop_event.set()
        if self.is_alive():
            self.join(timeout)

    def run(self) -> None:
        while not self._stop_event.is_set():
            try:
                self._consume()
            except Exception as exc:  # the broker went away, metadata failed...: try again shortly
                logger.warning("war room feed failed, retrying: %s", exc, exc_info=logger.isEnabledFor(logging.DEBUG))
                self._set(state="retrying", error=describe_kafka_error(exc))
                self._stop_event.wait(RETRY_S)

    def _consume(self) -> None:
        consumer = self.kafka.consumer()
        try:
            assigned: list[str] = []
            next_check = 0.0
            # A new consumer starts from the beginning again: the model absorbs the repeats
            # (decisions by order id, alerts by alert id, channel stock by seq, state by SKU).
            while not self._stop_event.is_set():
                if len(assigned) < len(self.topics) + 1 and time.monotonic() >= next_check:
                    assigned = self._assign_new(consumer, assigned)
                    next_check = time.monotonic() + TOPIC_CHECK_S
                if not assigned:
                    self._stop_event.wait(POLL_S)
                    continue
                self._apply(consumer.consume(BATCH, POLL_S))
        finally:
            consumer.close()

    def _assign_new(self, consumer: Any, assigned: list[str]) -> list[str]:
        """Assign every wanted topic that exists now (new ones from their beginning), keeping
        the position of the topics already assigned."""
        from confluent_kafka import OFFSET_BEGINNING, TopicPartition

        existing = consumer.list_topics(timeout=5).topics
        wanted = [t for t in [*self.topics, self.changelog] if t in existing and not existing[t].error]
        new = [t for t in wanted if t not in assigned]
        if not new:
            return assigned
        positions = consumer.position(consumer.assignment()) if assigned else []
        partitions = [TopicPartition(tp.topic, tp.partition, tp.offset if tp.offset >= 0 else OFFSET_BEGINNING)
                      for tp in positions]
        partitions += [TopicPartition(t, p, OFFSET_BEGINNING) for t in new for p in existing[t].partitions]
        consumer.assign(partitions)
        missing = [t for t in [*self.topics, self.changelog] if t not in wanted]
        self._set(state="live" if not missing else "waiting", assigned=wanted,
                  error=None if not missing else f"waiting for topic(s) {', '.join(missing)}")
        return wanted

    def _apply(self, messages: list[Any]) -> None:
        """Decode outside the lock, fold under it: the page never waits on Avro."""
        folds: list[tuple[str, Callable[[], None]]] = []
        for message in messages:
            if message.error() is not None:
                self._set(error=str(message.error()))
                continue
            folds.append((message.topic(), self._decode(message)))
        if not folds:
            return
        with self.lock:
            for topic, fold in folds:
                try:
                    fold()
                except (KeyError, TypeError, ValueError) as exc:  # decoded, but not what it should hold
                    self.room.on_undecodable(topic, f"{type(exc).__name__}: {exc}")
        with self._status_lock:
            self._status["records"] += len(folds)
            self._status["last_record_at"] = now_ms()

    def _decode(self, message: Any) -> Callable[[], None]:
        topic, at = message.topic(), _timestamp(message)
        try:
            if topic == self.changelog:
                if is_line_key(message.key()):  # an order line, buyer or command: not the SKU's figures
                    return lambda: None
                sku, value = decode_table_record(message.key(), message.value())
                state = None if value is None else SkuState.from_dict(value)
                return lambda: self.room.on_stock_state(sku, state, at)
            if message.value() is None:  # a tombstone on the compacted channels.stock
                return lambda: None
            value = self.kafka.codec.decode(message.value(), topic=topic).value
            fold = self._fold[topic]
            return lambda: fold(value, at)
        except Exception as exc:  # a poison record: count it, keep going
            error = f"offset {message.partition()}:{message.offset()}: {type(exc).__name__}: {exc}"
            return lambda: self.room.on_undecodable(topic, error)


def _timestamp(message: Any) -> int:
    kind, value = message.timestamp()
    return value if kind and value > 0 else now_ms()
