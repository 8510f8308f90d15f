"""Read lockstock topics in the background the way a downstream consumer does, noting when each
record arrived: how the demo (and the load test) measure order -> decision latency and check the
engine's result independently of the engine's own state."""

from __future__ import annotations

import threading
import time
from typing import Any, Callable

from lockstock.clock import now_ms
from lockstock.errors import BrokerError
from lockstock.kafka import Kafka
from lockstock.reader import Record

ASSIGN_TIMEOUT_S = 30.0


class TopicWatcher:
    """Reads topics from their start on a thread (group-less: lockstock.reader); ``records``
    holds (topic, value, received_ms). Undecodable records are counted on ``bad`` and logged."""

    def __init__(self, kafka: Kafka, topics: list[str], on_record: Callable[[str, dict, int], None] | None = None):
        self.kafka, self.topics, self.on_record = kafka, topics, on_record
        self.records: list[tuple[str, dict[str, Any], int]] = []
        self._lock = threading.Lock()
        self._thread = kafka.reader_thread(self._deliver, beginning=topics, name="lockstock-watcher")
        self.bad = self._thread.bad

    def start_and_wait(self) -> "TopicWatcher":
        """Start, and return once the reader owns its partitions (so no record is missed)."""
        self._thread.start()
        try:
            self._thread.wait_ready(ASSIGN_TIMEOUT_S)
        except BrokerError:
            self.stop()
            raise
        return self

    def _deliver(self, records: list[Record], caught_up: bool) -> None:
        received = now_ms()
        with self._lock:
            self.records.extend((r.topic, r.value, received) for r in records)
        if self.on_record:
            for record in records:
                self.on_record(record.topic, record.value, received)

    @property
    def failure(self) -> BaseException | None:
        """Why the reading stopped, if it did (logged as it happened)."""
        return self._thread.failure

    def snapshot(self, topic: str | None = None) -> list[tuple[str, dict[str, Any], int]]:
        with self._lock:
            return [r for r in self.records if topic is None or r[0] == topic]

    def wait_for(self, done: Callable[[], bool], timeout: float, what: str) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if done():
                return True
            time.sleep(0.1)
        return done()

    def stop(self) -> None:
        self._thread.stop(10)
