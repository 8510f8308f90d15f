"""Faust's table recovery with the stream seek made before the stream partitions resume.

faust-streaming 0.15.3 ends recovery (``Recovery.on_recovery_completed`` and
``_resume_streams``) by *resuming* the stream partitions and only then seeking them to their
committed offsets. The consumer's flow is already running for the changelogs, so records fetched
in between are delivered from the old position while the seek is in flight. When the seek lands,
Faust resets its read offset, the records after it look like a jump, and its gap bookkeeping
(meant for transaction markers) marks the offsets in between as done: the next commit skips
records no agent ever processed. Seen as lost orders after a worker restart under load
(tests/integration/engine/test_recovery.py); it is independent of the broker.

Seeking while the partitions are still paused, then resuming them, closes the window: nothing
is fetched from a stream partition before its position is the committed offset.

A partition with *no* committed offset needs one more step. aiokafka's ``seek_to_committed``
leaves such a partition (and one committed at 0) where it is, and while recovery reads the
changelogs the fetcher already returns stream records, which Faust drops because the partition
is paused: its position ends up past records no agent saw, with nothing committed to go back
to. Seen when a worker was killed before its first commit: the restarted worker skipped every
record its predecessor had not finished (tests/integration/engine/test_recovery.py). Those partitions
are sent back to their first record, which ``auto_offset_reset=earliest`` promises.

And the seek waits for the batch Faust's fetch loop already had in hand when the partitions were
paused (``_fetch_cycle_passed``): delivered after the seek, those records move the read offset
past the records the seek went back to, which Faust then drops as already read. Seen as orders
lost at a rebalance in chaos runs (docs/benchmarks.md, chaos finding 5).

Installed with ``faust.App(TableManager=...)``; everything else is Faust's own code path.
"""

from __future__ import annotations

import asyncio
import time

from aiokafka import TopicPartition  # what Faust's aiokafka consumer thread takes
from faust.transport.consumer import CONSUMER_FETCHING as FETCHING

from faust.tables.manager import TableManager
from faust.tables.recovery import Recovery


class SeekFirstRecovery(Recovery):
    def _stream_partitions(self) -> set:
        return {tp for tp in self.app.consumer.assignment() if not self._is_changelog_tp(tp)}

    async def _seek_then_resume(self) -> bool:
        """Seek paused stream partitions to their committed offsets, then resume them. False when
        there was nothing assigned."""
        consumer = self.app.consumer
        streams = self._stream_partitions()
        if not streams:
            return False
        consumer.pause_partitions(streams)
        await self._fetch_cycle_passed(consumer)
        self.log.info("Seek stream partitions to committed offsets.")
        await self._wait(consumer.perform_seek(), timeout=self.app.conf.broker_request_timeout)
        never_committed = uncommitted(streams, consumer._committed_offset)
        if never_committed:
            self.log.info("Seek %d stream partitions without a committed offset to their beginning.", len(never_committed))
            await self._wait(consumer._thread.seek_to_beginning(*(TopicPartition(tp[0], tp[1]) for tp in never_committed)),
                             timeout=self.app.conf.broker_request_timeout)
        consumer.resume_partitions(streams)
        return True

    async def _fetch_cycle_passed(self, consumer) -> None:
        """Wait until the fetch loop has handed on what it fetched before the pause. Faust pauses
        by leaving partitions out of its next ``getmany``; records of the batch already in hand
        are still delivered, and each moves Faust's read offset on even though the stream skips
        it (an earlier generation). Arriving after the seek, they put the read offset ahead of
        the records the seek goes back to, which Faust then drops as already read, and for a
        partition with no committed offset nothing stops the next commit from passing them:
        lost orders in chaos runs. Bounded; a new fetch cycle started after the pause is enough."""
        paused_at = time.monotonic()
        deadline = paused_at + self.app.conf.broker_request_timeout
        diag = consumer.diag
        while FETCHING in diag.flags and diag.last_transition.get(FETCHING, 0.0) <= paused_at:
            if time.monotonic() > deadline:
                self.log.warning("The fetch loop kept one batch for %.0f s; seeking anyway.", deadline - paused_at)
                return
            await asyncio.sleep(0.005)

    async def on_recovery_completed(self, generation_id: int = 0) -> None:
        self.log.info("Restore complete!")
        await self.app.on_rebalance_complete.send()
        self._set_recovery_ended()
        await asyncio.gather(*(table.on_recovery_completed(self.actives_for_table[table], self.standbys_for_table[table])
                               for table in self.tables.values()))
        if self.app.consumer_generation_id != generation_id:
            self.log.warning("Recovery rebalancing again app id %s param %s",
                             self.app.consumer_generation_id, generation_id)
            return
        await self._seek_then_resume()
        await self._finish_resume()
        if not self.app.assignor.assigned_standbys():
            self.tables.on_standbys_ready()
        self.app.on_rebalance_end()
        self.log.info("Worker ready")

    async def _resume_streams(self, generation_id: int = 0) -> None:
        await self.app.on_rebalance_complete.send()
        if self.app.consumer_generation_id != generation_id:
            self.log.warning("Recovery rebalancing again")
            return
        if not await self._seek_then_resume():
            self.log.info("Resuming streams with empty assignment")
        await self._finish_resume()
        self.tables.on_standbys_ready()
        self.app.on_rebalance_end()
        self.log.info("Worker ready")

    async def _finish_resume(self) -> None:
        self.completed.set()
        self.app.flow_control.resume()
        self.app.consumer.resume_flow()
        await self.app._fetcher.maybe_start()  # type: ignore[attr-defined]
        self.tables.on_actives_ready()


def uncommitted(partitions: set, committed: dict) -> list:
    """The partitions aiokafka's seek_to_committed leaves in place: nothing (or 0) committed."""
    return sorted((tp for tp in partitions if not committed.get(tp)), key=lambda tp: (tp[0], tp[1]))


class SeekFirstTableManager(TableManager):
    @property
    def recovery(self) -> Recovery:
        if self._recovery is None:
            self._recovery = SeekFirstRecovery(self.app, self, beacon=self.beacon, loop=self.loop)
        return self._recovery

