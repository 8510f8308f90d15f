"""A batch's effects must be in Kafka before Faust may acknowledge its events (take_events acks
in a finally, even after a failure or a cancellation): Handler.announce finishes the send on a
graceful stop and stops the worker, uncommitted, when the send fails."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from streams import agents


def handler() -> agents.Handler:
    handler = agents.Handler.__new__(agents.Handler)  # no wiring: the transaction's commit is replaced
    handler.producer = None
    return handler


def transaction_whose_commit(behaviour) -> SimpleNamespace:
    """A batch transaction (streams/transaction.py) as announce uses it: commit, and a name to log."""
    return SimpleNamespace(commit=behaviour, store=SimpleNamespace(name="stock"))


def test_a_cancelled_batch_is_still_announced_before_the_cancellation_goes_on():
    sent = []

    async def slow_commit(producer, records):
        await asyncio.sleep(0.05)
        sent.append(len(records))

    async def main():
        task = asyncio.ensure_future(handler().announce(transaction_whose_commit(slow_commit), [1, 2, 3]))
        await asyncio.sleep(0.01)
        task.cancel()  # what a graceful stop does to the agent
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert sent == [3]


def test_a_batch_that_cannot_be_sent_stops_the_worker_without_committing(monkeypatch):
    exits = []

    def fake_exit(status):
        exits.append(status)
        raise SystemExit(status)

    async def failing_commit(producer, records):
        raise RuntimeError("broker refused the record")

    monkeypatch.setattr(agents.os, "_exit", fake_exit)
    with pytest.raises(SystemExit):
        asyncio.run(handler().announce(transaction_whose_commit(failing_commit), [1]))
    assert exits == [agents.EXIT_UNANNOUNCED]
