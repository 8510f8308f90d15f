"""Read lockstock topics in the background the way a downstream consumer does, noting when each
record arrived: how the demo (and the load test) measure order -> decision latency and check the
engine's result independently of the engine's own state."""

from __future__ import annotations

import threading
import time
from typing import Any, Callable

from lockstock.clock import now_ms
from lockstock.kafka import Kafka, take

ASSIGN_TIMEOUT_S = 30.0


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile: always a value that really occurred."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


class TopicWatcher(threading.Thread):
    """Consume topics from the start on a thread; ``records`` holds (topic, value, received_ms)."""

    def __init__(self, kafka: Kafka, topics: list[str], on_record: Callable[[str, dict, int], None] | None = None):
        super().__init__(name="lockstock-watcher", daemon=True)
        self.kafka, self.topics, self.on_record = kafka, topics, on_record
        self.records: list[tuple[str, dict[str, Any], int]] = []
        self.errors: list[str] = []
        self._stop_event = threading.Event()
        self._assigned = threading.Event()
        self._lock = threading.Lock()

    def start_and_wait(self) -> "TopicWatcher":
        """Start, and return once the consumer owns its partitions (so no record is missed)."""
        self.start()
        if not self._assigned.wait(ASSIGN_TIMEOUT_S):
            self.stop()
            raise TimeoutError(f"consumer for {self.topics} got no partitions within {ASSIGN_TIMEOUT_S:.0f}s")
        return self

    def run(self) -> None:
        consumer = self.kafka.consumer()
        consumer.subscribe(self.topics, on_assign=lambda c, parts: self._assigned.set())
        codec = self.kafka.codec
        try:
            while not self._stop_event.is_set():
                for message in take(consumer, 500, 0.1):
                    if message.error() is not None:
                        self.errors.append(str(message.error()))
                        continue
                    received = now_ms()
                    value = codec.decode(message.value(), topic=message.topic()).value
                    with self._lock:
                        self.records.append((message.topic(), value, received))
                    if self.on_record:
                        self.on_record(message.topic(), value, received)
        finally:
            consumer.close()

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
        self._stop_event.set()
        if self.is_alive():
            self.join(10)
