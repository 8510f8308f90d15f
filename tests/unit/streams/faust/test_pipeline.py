"""Commits in flight (streams/pipeline.py): a batch's events reach the consumer as acknowledged
only once its commit and every earlier batch's are done, in submission order; a batch's changelog
follows the previous batch's commit; a failed commit acknowledges nothing; a stop waits for the
commits in flight. Faust's real Message reference counting, a consumer that records acks."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from faust.types.tuples import ConsumerMessage

from streams.pipeline import Pipeline


class Consumer:
    def __init__(self) -> None:
        self.acked: list[int] = []

    def ack(self, message: ConsumerMessage) -> bool:  # as Faust's Consumer.ack: once per message
        if message.acked:
            return False
        message.acked = True
        self.acked.append(message.offset)
        return True


class Stream:
    def __init__(self) -> None:
        self.out: list[int] = []

    def _on_message_out(self, tp, offset, message) -> None:
        self.out.append(offset)


def events(consumer: Consumer, *offsets: int) -> list[SimpleNamespace]:
    """Faust events as streams.take hands them over: one reference each (the conductor's)."""
    made = []
    for offset in offsets:
        message = ConsumerMessage("t", 0, offset, 0.0, 0, None, b"k", b"v", None)
        message.incref()
        made.append(SimpleNamespace(message=message, ack=lambda message=message: message.ack(consumer)))
    return made


def unexpected(table: str) -> None:
    raise AssertionError(f"a commit of {table} failed")


class Batch:
    """A sealed table transaction whose commit steps are recorded and can be held back."""

    def __init__(self, name: str, log: list[str], fail: bool = False) -> None:
        self.name, self.log, self.fail = name, log, fail
        self.seal = 1
        self.store = SimpleNamespace(name="stock")
        self.release = asyncio.Event()
        self.answered = asyncio.Event()
        self.answered.set()  # unless a test holds the answers back

    async def commit(self, producer, records, after=None, answers=(), stored=None) -> None:
        self.log.append(f"{self.name} outputs")
        if after is not None:
            await after
        await self.release.wait()
        if self.fail:
            raise RuntimeError("broker refused the record")
        self.log.append(f"{self.name} changelog")
        stored.set_result(None)
        await self.answered.wait()
        self.log.append(f"{self.name} answers")


def test_events_are_acknowledged_only_once_their_commit_is_done():
    async def main():
        consumer, stream, log = Consumer(), Stream(), []
        pipeline = Pipeline(producer=None, on_failure=unexpected)
        batch, tx = events(consumer, 0, 1, 2), Batch("b1", log)
        pipeline.submit(tx, [], stream, batch)
        await asyncio.sleep(0.01)
        assert consumer.acked == [] and log == ["b1 outputs"]
        tx.release.set()
        await pipeline.drain()
        assert consumer.acked == [0, 1, 2] and stream.out == [0, 1, 2]

    asyncio.run(main())


def two_batches(on_failure=None, fail_first: bool = False):
    """Two batches submitted one after the other, neither released yet: (consumer, pipeline, log,
    the batches, their events)."""
    consumer, stream, log = Consumer(), Stream(), []
    pipeline = Pipeline(producer=None, on_failure=on_failure or unexpected)
    batches = Batch("b1", log, fail=fail_first), Batch("b2", log)
    batch_events = events(consumer, 0), events(consumer, 1)
    for tx, its_events in zip(batches, batch_events):
        pipeline.submit(tx, [], stream, its_events)
    return consumer, pipeline, log, batches, batch_events


def test_a_batch_s_changelog_waits_for_the_previous_commit_and_outputs_do_not():
    async def main():
        _, pipeline, log, (first, second), _ = two_batches()
        second.release.set()
        await asyncio.sleep(0.01)
        assert log == ["b1 outputs", "b2 outputs"]  # b2's outputs went; its changelog waits for b1
        first.release.set()
        await pipeline.drain()
        assert log == ["b1 outputs", "b2 outputs", "b1 changelog", "b1 answers", "b2 changelog", "b2 answers"]

    asyncio.run(main())


def test_a_batch_s_changelog_does_not_wait_for_the_previous_answers_and_its_events_do():
    async def main():
        consumer, pipeline, log, (first, second), _ = two_batches()
        first.answered.clear()
        first.release.set()
        second.release.set()
        await asyncio.sleep(0.01)
        assert log.index("b1 changelog") < log.index("b2 changelog") < log.index("b2 answers")
        # b2 is done, but acknowledging offset 1 before 0 could let the consumer commit past 0
        # (Faust commits a partition's first run of consecutive acknowledged offsets).
        assert "b1 answers" not in log and consumer.acked == []  # b1 still owes its answers
        first.answered.set()
        await pipeline.drain()
        assert consumer.acked == [0, 1]

    asyncio.run(main())


def test_a_failed_commit_stops_the_worker_and_acknowledges_nothing_after_it():
    async def main():
        failures = []
        consumer, pipeline, log, (first, second), _ = two_batches(
            on_failure=failures.append, fail_first=True)
        first.release.set()
        second.release.set()
        await asyncio.gather(*(batch.commit for batch in pipeline.in_flight), return_exceptions=True)
        assert failures and set(failures) == {"stock"}  # the second fails with the first it waits for
        assert consumer.acked == [] and "b2 changelog" not in log

    asyncio.run(main())


def test_a_stopping_agent_waits_for_the_commits_in_flight():
    async def main():
        consumer, stream, log = Consumer(), Stream(), []
        pipeline = Pipeline(producer=None, on_failure=unexpected)
        tx, batch = Batch("b1", log), events(consumer, 0)

        async def agent():
            try:
                pipeline.submit(tx, [], stream, batch)
                await asyncio.sleep(10)  # waiting for the next batch
            finally:
                await pipeline.drain()

        task = asyncio.ensure_future(agent())
        await asyncio.sleep(0.01)
        task.cancel()  # a graceful stop
        await asyncio.sleep(0.01)
        assert not task.done()  # still waiting for the commit
        tx.release.set()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert log == ["b1 outputs", "b1 changelog", "b1 answers"] and consumer.acked == [0]

    asyncio.run(main())


def test_at_most_limit_commits_are_in_flight():
    async def main():
        consumer, stream = Consumer(), Stream()
        pipeline = Pipeline(producer=None, limit=1, on_failure=unexpected)
        batches = [Batch(f"b{i}", []) for i in range(3)]
        for i, tx in enumerate(batches[:2]):
            pipeline.submit(tx, [], stream, events(consumer, i))
        throttled = asyncio.ensure_future(pipeline.throttle())
        await asyncio.sleep(0.01)
        assert not throttled.done()
        batches[0].release.set()
        await asyncio.wait_for(throttled, 1)
        assert len(pipeline.in_flight) == 1
        batches[1].release.set()
        await pipeline.drain()

    asyncio.run(main())
