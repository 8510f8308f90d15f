"""An asyncio face on the idempotent confluent-kafka producer: ``await send(...)`` returns only
once the broker acknowledged the record (acks=all), or raises. Services that answer a caller
"accepted" (the gateway) answer only after this returns, so nothing accepted is ever lost.

librdkafka's delivery callbacks run on whichever thread calls ``poll``; a dedicated poll thread
hands each result to the event loop with ``call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from typing import Any

from lockstock.errors import BrokerError, describe_kafka_error
from lockstock.kafka import Kafka


class AckedProducer:
    def __init__(self, kafka: Kafka, **overrides: Any) -> None:
        self.kafka = kafka
        # linger 2 ms: webhooks arrive one by one; batching them a little is cheap and an ack is fast.
        self.producer = kafka.producer(**{"linger.ms": 2, **overrides})
        self._stop = threading.Event()
        self._poller = threading.Thread(target=self._poll, name="acked-producer-poll", daemon=True)
        self._poller.start()

    def _poll(self) -> None:
        while not self._stop.is_set():
            self.producer.poll(0.05)

    async def send(self, topic: str, key: str, value: bytes, headers: list[tuple[str, bytes]] | None = None) -> tuple[int, int]:
        """(partition, offset) once acknowledged; BrokerError when the broker refused or timed out."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future = loop.create_future()

        def delivered(error: Any, message: Any) -> None:
            result = (error, None if error else (message.partition(), message.offset()))
            loop.call_soon_threadsafe(_settle, done, result)

        try:
            self.producer.produce(topic, key=key.encode(), value=value, headers=headers or None, on_delivery=delivered)
        except BufferError:
            raise BrokerError("producer queue is full; try again") from None
        except Exception as exc:  # KafkaException: unknown topic, message too large, ...
            raise BrokerError(describe_kafka_error(exc)) from None
        return await done

    async def send_all(self, records: list[tuple[str, bytes | None, bytes | None, int | None]]) -> list[tuple[int, int]]:
        """Send (topic, key, value, partition or None) records; once the broker acknowledged
        every one, their (partition, offset) in order. One wake-up of the event loop per call,
        not per record: this is the hot path of the lock engine's batches."""
        if not records:
            return []
        loop = asyncio.get_running_loop()
        done: asyncio.Future = loop.create_future()
        positions: list[Any] = [None] * len(records)
        waiting = [len(records), None]  # records not yet acknowledged, first error

        def delivered(index: int, error: Any, message: Any) -> None:  # runs on the poll thread only
            if error is not None and waiting[1] is None:
                waiting[1] = error
            else:
                positions[index] = (message.partition(), message.offset())
            waiting[0] -= 1
            if waiting[0] == 0:
                loop.call_soon_threadsafe(_settle, done, (waiting[1], positions))

        for index, (topic, key, value, partition) in enumerate(records):
            callback = functools.partial(delivered, index)
            while True:
                try:
                    if partition is None:
                        self.producer.produce(topic, key=key, value=value, on_delivery=callback)
                    else:
                        self.producer.produce(topic, key=key, value=value, partition=partition, on_delivery=callback)
                    break
                except BufferError:  # the local queue is full: let the poll thread drain it
                    await asyncio.sleep(0.005)
                except Exception as exc:
                    raise BrokerError(describe_kafka_error(exc)) from None
        return await done

    def close(self, timeout: float = 10.0) -> int:
        """Deliver what is queued (bounded); returns how many records were still undelivered."""
        remaining = self.producer.flush(timeout)
        self._stop.set()
        self._poller.join(2)
        return remaining


def _settle(future: asyncio.Future, result: tuple[Any, Any]) -> None:
    if future.done():
        return
    error, position = result
    if error is not None:
        future.set_exception(BrokerError(f"broker refused the record: {error.str() if hasattr(error, 'str') else error}"))
    else:
        future.set_result(position)
