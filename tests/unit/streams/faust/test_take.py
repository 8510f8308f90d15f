"""Batches straight from an agent's channel queue (streams/take.py), over mode's real queue and
Faust's real message reference counting: a batch is what is queued (at most max_events), its
messages are tracked as unacknowledged and nothing is acknowledged; an event fetched before the
current rebalance is skipped and acknowledged; the end of the channel ends the batches."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from faust.types.tuples import ConsumerMessage
from mode.utils.queues import FlowControlEvent, ThrowableQueue

from streams.take import take_batches

TOPIC = "lockstock.orders.placed"


class Consumer:
    def __init__(self) -> None:
        self._unacked_messages: set = set()
        self.acked: list[int] = []

    def ack(self, message: ConsumerMessage) -> bool:  # as Faust's Consumer.ack: once per message
        if message.acked:
            return False
        message.acked = True
        self._unacked_messages.discard(message)
        self.acked.append(message.offset)
        return True


def agent_stream(generation: int = 2):
    consumer = Consumer()
    flow_control = FlowControlEvent(initially_suspended=False)
    app = SimpleNamespace(consumer=consumer, flow_control=flow_control, consumer_generation_id=generation,
                          topics=SimpleNamespace(_acking_topics={TOPIC}))
    sensed: dict[str, list[int]] = {"in": [], "out": []}
    stream = SimpleNamespace(
        app=app, channel=SimpleNamespace(queue=ThrowableQueue(maxsize=100, flow_control=flow_control)),
        should_stop=False,
        _on_message_in=lambda tp, offset, message: sensed["in"].append(offset),
        _on_message_out=lambda tp, offset, message: sensed["out"].append(offset),
    )
    return stream, consumer, sensed


def put(stream, consumer: Consumer, offset: int, generation: int = 2) -> None:
    """An event as the conductor queues it: its message holds the conductor's one reference."""
    message = ConsumerMessage(TOPIC, 0, offset, 0.0, 0, None, b"k", b"v", None, generation_id=generation)
    message.incref()
    stream.channel.queue.put_nowait(SimpleNamespace(message=message, ack=lambda: message.ack(consumer)))


def test_a_batch_is_what_is_queued_tracked_and_not_acknowledged():
    async def main():
        stream, consumer, sensed = agent_stream()
        for offset in range(5):
            put(stream, consumer, offset)
        batches = take_batches(stream, 3)
        first = await batches.__anext__()
        second = await batches.__anext__()
        assert [e.message.offset for e in first] == [0, 1, 2]
        assert [e.message.offset for e in second] == [3, 4]
        assert {m.offset for m in consumer._unacked_messages} == {0, 1, 2, 3, 4}
        assert sensed["in"] == [0, 1, 2, 3, 4] and consumer.acked == []
        await batches.aclose()

    asyncio.run(main())


def test_an_event_of_an_earlier_generation_is_skipped_and_acknowledged():
    async def main():
        stream, consumer, sensed = agent_stream(generation=2)
        put(stream, consumer, 0, generation=1)
        put(stream, consumer, 1, generation=2)
        batches = take_batches(stream, 10)
        batch = await batches.__anext__()
        assert [e.message.offset for e in batch] == [1]
        assert consumer.acked == [0] and sensed["out"] == [0]
        assert {m.offset for m in consumer._unacked_messages} == {1}
        await batches.aclose()

    asyncio.run(main())


def test_events_queued_while_flow_is_suspended_are_skipped():
    async def main():
        stream, consumer, _ = agent_stream()
        put(stream, consumer, 0)
        stream.app.flow_control.suspend()
        put(stream, consumer, 1)
        batches = asyncio.ensure_future(take_batches(stream, 10).__anext__())
        await asyncio.sleep(0.01)
        assert not batches.done() and consumer.acked == [0, 1]  # both skipped; still waiting for events
        batches.cancel()

    asyncio.run(main())


def test_the_end_of_the_channel_ends_the_batches():
    async def main():
        stream, consumer, _ = agent_stream()
        collected = []

        async def agent():
            async for batch in take_batches(stream, 10):
                collected.append(len(batch))

        task = asyncio.ensure_future(agent())
        put(stream, consumer, 0)
        await asyncio.sleep(0.01)
        stream.channel.queue._throw(StopAsyncIteration())  # what Faust does to a stopping stream's channel
        await asyncio.wait_for(task, 1)  # ends, without "async generator raised StopAsyncIteration"
        assert collected == [1]

    asyncio.run(main())


def test_with_work_due_by_time_an_empty_batch_comes_when_no_event_came_in_time():
    async def main():
        stream, consumer, _ = agent_stream()
        due = [0.01]
        batches = take_batches(stream, 10, lambda: due[0])
        assert await asyncio.wait_for(batches.__anext__(), 1) == []  # nothing queued: woken, empty
        put(stream, consumer, 0)
        assert [e.message.offset for e in await batches.__anext__()] == [0]  # queued events go first
        due[0] = None  # nothing due: waits for events
        waiting = asyncio.ensure_future(batches.__anext__())
        await asyncio.sleep(0.05)
        assert not waiting.done()
        put(stream, consumer, 1)
        assert [e.message.offset for e in await asyncio.wait_for(waiting, 1)] == [1]
        await batches.aclose()

    asyncio.run(main())
