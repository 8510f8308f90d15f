"""A batch's effects must be in Kafka before Faust may acknowledge its events (take_events acks
in a finally, even after a failure or a cancellation): Handler.announce finishes the send on a
graceful stop and stops the worker, uncommitted, when the send fails."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from streams import agents


def handler_whose_emit(behaviour) -> agents.Handler:
    handler = agents.Handler.__new__(agents.Handler)  # no wiring, no producer: emit is replaced
    handler.emit = behaviour
    return handler


CACHE = SimpleNamespace(table=SimpleNamespace(name="stock"))  # what announce names in its log


def test_a_cancelled_batch_is_still_announced_before_the_cancellation_goes_on():
    sent = []

    async def slow_emit(outputs, cache, writes):
        await asyncio.sleep(0.05)
        sent.append(len(outputs))

    async def main():
        task = asyncio.ensure_future(handler_whose_emit(slow_emit).announce([1, 2, 3], CACHE, {}))
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

    async def failing_emit(outputs, cache, writes):
        raise RuntimeError("broker refused the record")

    monkeypatch.setattr(agents.os, "_exit", fake_exit)
    with pytest.raises(SystemExit):
        asyncio.run(handler_whose_emit(failing_emit).announce([1], CACHE, {}))
    assert exits == [agents.EXIT_UNANNOUNCED]
