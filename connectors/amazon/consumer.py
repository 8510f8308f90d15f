"""The notification queue, read at least once: a message is deleted only after the gateway says its
records are acknowledged (or dead-lettered).

``NotificationSource`` is the queue (``connectors.amazon.sqs.SqsSource`` in production, a fake or
a list in tests); ``consume_notifications`` is the loop that reads it.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections import Counter
from dataclasses import dataclass
from typing import Awaitable, Callable

from connectors.amazon.intake import AmazonNotifications
from connectors.base import Intake, PayloadError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class QueueMessage:
    message_id: str
    body: bytes
    receipt: str  # the receipt handle of this receive; deleting needs the latest one


class NotificationSource(ABC):
    """Where notifications come from (SQS in production, a fake or a list in tests)."""

    @abstractmethod
    async def receive(self, max_messages: int, wait_s: float) -> list[QueueMessage]:
        """Up to ``max_messages``, waiting up to ``wait_s`` for the first (long poll)."""

    @abstractmethod
    async def delete(self, message: QueueMessage) -> None:
        """Remove a handled message; one not deleted is redelivered after its visibility timeout."""

    async def close(self) -> None:
        return None


Handle = Callable[[QueueMessage, "Intake | PayloadError"], Awaitable[bool]]


async def consume_notifications(source: NotificationSource, adapter: AmazonNotifications, handle: Handle, *,
                                batch: int = 10, wait_s: float = 1.0, stop: asyncio.Event,
                                backoff_s: float = 0.5, max_backoff_s: float = 30.0) -> Counter:
    """Receive, let ``handle`` produce (or dead-letter) each message, delete only what it confirmed.

    ``handle(message, intake_or_error)`` returns True once the records are acknowledged by the
    broker (or the malformed body is dead-lettered); False or an exception leaves the message in
    the queue, so SQS redelivers it after its visibility timeout (the gateway's delivery ids make
    that redelivery a duplicate, never a second order). Transport errors are logged and retried
    with bounded exponential backoff; the loop ends only when ``stop`` is set. Returns its counts."""
    counts: Counter = Counter()
    failures = 0
    while not stop.is_set():
        try:
            messages = await source.receive(batch, wait_s)
        except Exception as exc:  # network, SQS errors, timeouts: never fatal
            failures += 1
            counts["receive_errors"] += 1
            delay = min(max_backoff_s, backoff_s * 2 ** min(failures - 1, 20))
            logger.warning("amazon queue receive failed (%s: %s); retrying in %.1fs", type(exc).__name__, exc, delay)
            await _pause(stop, delay)
            continue
        failures = 0
        for message in messages:
            counts["received"] += 1
            try:
                intake_or_error: Intake | PayloadError = adapter.intake(message.body)
            except PayloadError as exc:
                intake_or_error = exc
            except Exception as exc:  # an adapter bug: dead-lettered like the gateway does, never a crash loop
                logger.exception("amazon message %s: the adapter failed", message.message_id)
                intake_or_error = PayloadError(f"adapter error {type(exc).__name__}: {exc}")
            try:
                done = await handle(message, intake_or_error)
            except Exception:
                logger.exception("amazon message %s: handling failed; left for redelivery", message.message_id)
                done = False
            if not done:
                counts["not_acknowledged"] += 1
                continue
            try:
                await source.delete(message)
                counts["deleted"] += 1
            except Exception as exc:  # redelivered later and recognised as a duplicate
                counts["delete_errors"] += 1
                logger.warning("amazon message %s handled but not deleted (%s: %s)", message.message_id,
                               type(exc).__name__, exc)
    return counts


async def _pause(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except asyncio.TimeoutError:
        pass
