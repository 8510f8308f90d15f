"""Batches in flight: a batch's commit waits on the broker while the agent folds the next one.

A commit (streams/transaction.py, steps 3-6) is acknowledged sends and a store write; the
folding of a batch is CPU. Done one after the other, every batch's records also waited for the
previous batch's acknowledgements, which put most of an order's latency on the commit path
(docs/decisions/0004). Here the agent seals a batch (step 2), hands its commit to the
pipeline and takes the next batch at once.

What keeps that safe:

- **No offset past an uncommitted batch.** The agent takes its batches straight from its
  channel (streams/take.py), which acknowledges nothing: the conductor's reference to each
  event's message is released (``Stream.ack``) only once the batch's commit is done, and batches
  are acknowledged in the order they were submitted, so the consumer never holds an
  acknowledged offset above one still in flight on the same partition (Faust commits a
  partition's first run of consecutive acknowledged offsets, and a run that starts past an
  unacknowledged one would skip it). A rebalance waits for unacknowledged messages (Faust's
  ``stream_wait_empty``), so it waits for the commits in flight.
- **The changelog in fold order.** Each commit's changelog send waits until the previous commit
  has written its store (``TableTransaction.commit``'s ``after`` and ``stored``), so a partition's
  changelog and store follow the order the batches were folded in, and the store never runs ahead
  of the changelog. It does not wait for the previous commit's answers: an order's answers in two
  batches (a lock, then its release) are produced in batch order anyway, since the release is
  asked for only once the lock's answer was out.
- **A failed commit stops the worker** at once (exit 70) without acknowledging anything: the
  batches in flight are replayed on restart, as after a kill.
- **Bounded.** At most ``limit`` commits are in flight; the agent waits for the oldest beyond that.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable

from streams.transaction import Producer, TableTransaction

logger = logging.getLogger(__name__)
EXIT_UNANNOUNCED = 70  # the worker's exit status when a batch could not be committed (EX_SOFTWARE)
IN_FLIGHT = 3  # commits in flight per agent


@dataclass(frozen=True)
class InFlight:
    commit: asyncio.Future
    stream: Any
    events: list


class Pipeline:
    """One agent's commits in flight, oldest first."""

    def __init__(self, producer: Producer, limit: int = IN_FLIGHT,
                 on_failure: Callable[[str], None] | None = None) -> None:
        self.producer = producer
        self.limit = limit
        self.on_failure = on_failure or stop_worker
        self.in_flight: deque[InFlight] = deque()
        self.stored: asyncio.Future | None = None  # the newest commit's step 5 (its store written)
        self.failed = False

    def submit(self, tx: TableTransaction, records: list, stream: Any, events: list, answers: list | None = None) -> None:
        """Commit ``tx`` (sealed here if it is not yet) with its output ``records`` and
        ``answers`` (TableTransaction.commit) after the commits in flight; ``events`` (Faust's,
        each still holding the conductor's reference) are acknowledged once it and every batch
        submitted before it are done."""
        if tx.seal is None:
            tx.seal_batch()
        previous, self.stored = self.stored, asyncio.get_running_loop().create_future()
        commit = asyncio.ensure_future(self._commit(tx, records, answers, previous, self.stored))
        self.in_flight.append(InFlight(commit, stream, events))
        commit.add_done_callback(self._done)

    async def _commit(self, tx: TableTransaction, records: list, answers: list | None, previous: asyncio.Future | None,
                      stored: asyncio.Future) -> None:
        try:
            await tx.commit(self.producer, records, after=previous, answers=answers or (), stored=stored)
        except asyncio.CancelledError:
            if not stored.done():
                stored.cancel()
            raise  # the worker is stopping: nothing acknowledged, the batch is replayed
        except Exception as exc:
            if not stored.done():
                stored.set_exception(exc)  # the commits after it fail too, acknowledging nothing
                stored.exception()  # retrieved: no "never retrieved" warning when none waits on it
            logger.critical("could not commit a batch of %s; stopping without acknowledging it", tx.store.name,
                            exc_info=True)
            self.on_failure(tx.store.name)
            raise

    def _done(self, _: asyncio.Future | None = None) -> None:
        """Acknowledge the events of the oldest commits that are done, in submission order; after
        a failed or cancelled commit, nothing more."""
        while self.in_flight and self.in_flight[0].commit.done():
            batch = self.in_flight.popleft()
            if batch.commit.cancelled() or batch.commit.exception() is not None:
                self.failed = True
            if self.failed:
                continue
            on_message_out = batch.stream._on_message_out
            for event in batch.events:
                if event.ack():  # the last reference: the consumer may now commit its offset
                    message = event.message
                    on_message_out(message.tp, message.offset, message)

    async def throttle(self) -> None:
        """Wait while more than ``limit`` commits are in flight."""
        while len(self.in_flight) > self.limit:
            await asyncio.shield(self.in_flight[0].commit)
            self._done()  # its done callback may not have run yet

    async def drain(self) -> None:
        """Wait for every commit in flight."""
        while self.in_flight:
            oldest = self.in_flight[0].commit
            try:
                await asyncio.shield(oldest)
            except asyncio.CancelledError:
                if not oldest.done():
                    raise  # this task was cancelled, not the commit
            self._done()


def stop_worker(table: str) -> None:
    """Exit without committing anything more: what is in Kafka is the truth, and the batches in
    flight are replayed on restart. ``os._exit`` skips the usual flush, hence the handlers'."""
    for handler in logging.getLogger().handlers:
        handler.flush()
    os._exit(EXIT_UNANNOUNCED)
