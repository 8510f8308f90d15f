"""The stream partitions are seeked to their committed offsets while paused, and resumed only
after the seek: nothing can be fetched from the old position and then skipped (streams/recovery.py)."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

from streams.recovery import FETCHING, SeekFirstRecovery


class RecordingConsumer:
    def __init__(self, assignment: set, committed: dict | None = None) -> None:
        self._assignment, self.calls = assignment, []
        self._committed_offset = dict.fromkeys(assignment, 7) if committed is None else committed
        self._thread = self  # Faust's consumer delegates seek_to_beginning to its thread
        self.diag = SimpleNamespace(flags=set(), last_transition={})  # the fetch loop is idle

    def assignment(self) -> set:
        return self._assignment

    def pause_partitions(self, tps) -> None:
        self.calls.append(("pause", frozenset(tps)))

    def resume_partitions(self, tps) -> None:
        self.calls.append(("resume", frozenset(tps)))

    async def perform_seek(self) -> None:
        self.calls.append(("seek-start", None))
        await asyncio.sleep(0)  # the window the fetcher had in faust 0.15.3
        self.calls.append(("seek-done", None))

    async def seek_to_beginning(self, *tps) -> None:
        self.calls.append(("beginning", frozenset((tp.topic, tp.partition) for tp in tps)))


def recovery_with(consumer: RecordingConsumer) -> SimpleNamespace:
    async def wait(coro, timeout=None):
        await coro

    fake = SimpleNamespace(
        app=SimpleNamespace(consumer=consumer, conf=SimpleNamespace(broker_request_timeout=5)),
        log=SimpleNamespace(info=lambda *a, **k: None, warning=lambda *a, **k: None),
        _is_changelog_tp=lambda tp: tp[0].endswith("-changelog"),
        _wait=wait,
    )
    fake._stream_partitions = lambda: SeekFirstRecovery._stream_partitions(fake)
    fake._fetch_cycle_passed = lambda consumer: SeekFirstRecovery._fetch_cycle_passed(fake, consumer)
    return fake


def test_stream_partitions_resume_only_after_the_seek_landed():
    streams = {("orders.placed", 0), ("lock.results", 1)}
    consumer = RecordingConsumer(streams | {("app-orders-changelog", 0)})
    resumed = asyncio.run(SeekFirstRecovery._seek_then_resume(recovery_with(consumer)))
    assert resumed is True
    assert consumer.calls == [("pause", frozenset(streams)), ("seek-start", None), ("seek-done", None),
                              ("resume", frozenset(streams))]


def test_nothing_assigned_means_nothing_to_seek():
    consumer = RecordingConsumer({("app-orders-changelog", 0)})
    assert asyncio.run(SeekFirstRecovery._seek_then_resume(recovery_with(consumer))) is False
    assert consumer.calls == []


def test_partitions_never_committed_go_back_to_their_first_record_before_resuming():
    """aiokafka's seek_to_committed leaves a partition without a committed offset where the
    fetcher left it, possibly past records dropped while it was paused."""
    streams = {("orders.placed", 0), ("lock.results", 1), ("lock.results", 2)}
    consumer = RecordingConsumer(streams, committed={("orders.placed", 0): 12, ("lock.results", 2): 0})
    asyncio.run(SeekFirstRecovery._seek_then_resume(recovery_with(consumer)))
    assert consumer.calls == [("pause", frozenset(streams)), ("seek-start", None), ("seek-done", None),
                              ("beginning", frozenset({("lock.results", 1), ("lock.results", 2)})),
                              ("resume", frozenset(streams))]


def test_the_seek_waits_for_the_batch_the_fetch_loop_already_had_in_hand():
    """Records fetched before the pause are still delivered; each moves Faust's read offset on.
    Seeking before they are out would leave the read offset past the records the seek goes
    back to, and Faust would drop those as already read."""
    streams = {("orders.placed", 0)}
    consumer = RecordingConsumer(streams)
    consumer.diag.flags.add(FETCHING)
    consumer.diag.last_transition[FETCHING] = time.monotonic() - 0.5  # a cycle started before the pause

    async def fetch_loop_finishes_its_batch():
        await asyncio.sleep(0.05)
        consumer.calls.append(("batch delivered", None))
        consumer.diag.flags.discard(FETCHING)

    async def main():
        await asyncio.gather(SeekFirstRecovery._seek_then_resume(recovery_with(consumer)), fetch_loop_finishes_its_batch())

    asyncio.run(main())
    assert [c[0] for c in consumer.calls] == ["pause", "batch delivered", "seek-start", "seek-done", "resume"]


def test_a_fetch_cycle_that_began_after_the_pause_does_not_hold_the_seek():
    streams = {("orders.placed", 0)}
    consumer = RecordingConsumer(streams)
    consumer.diag.flags.add(FETCHING)

    async def main():
        consumer.diag.last_transition[FETCHING] = time.monotonic() + 10  # (a fake clock) began after the pause
        await asyncio.wait_for(SeekFirstRecovery._seek_then_resume(recovery_with(consumer)), 1.0)

    asyncio.run(main())
    assert [c[0] for c in consumer.calls] == ["pause", "seek-start", "seek-done", "resume"]
