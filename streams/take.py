"""Batches of events straight from an agent's channel queue, without Faust's per-event stream.

``Stream.take_events`` hands a batch over through Faust's per-event machinery: a passive
drainer task iterates the stream one event at a time, runs each through a processor that appends
it to a buffer, and wakes the agent when the buffer is full or its wait ran out: a large share
of the worker, for records the conductor had already decoded and queued (docs/decisions/0003).

``take_batches`` reads the same queue (the stream's channel: the conductor still does the
delivery, the flow control and the backpressure), and does per event only what Faust's stream
iterator does for lockstock's agents (faust/_cython/streams.pyx, ``StreamIterator``):

- an event fetched before the current rebalance, or while flow is suspended, is skipped and
  acknowledged, as Faust skips and acknowledges it;
- every other event's message is tracked as unacknowledged (``Consumer.track_message``, inlined
  there as here) and reported to the sensors (``on_message_in``), so a rebalance waits for it
  (``stream_wait_empty``) and the consumer commits no offset past it until it is acknowledged.

It acknowledges nothing it hands over: the conductor's reference to each message is released by
the batch's commit (streams/pipeline.py), and only then may the consumer commit its offset. The
stream-level sensors (``on_stream_event_in``/``out``: per-stream event timings in Faust's
Monitor) are not called; lockstock's own metrics count batches (lockstock/metrics/worker.py).

A batch is what the queue holds when the agent asks, up to ``max_events``: the fetcher hands a
whole fetch over at once, so a batch follows the fetches, small under light load and full under
heavy load, and no event waits for a batch to fill. An agent with work due by time may ask for an
empty batch when no event came in time (``wake_in``). When the worker stops, Faust ends the
channel (``StopAsyncIteration`` in its queue): the batches end, as its own iterator ends.
"""

from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator, Callable

from faust.types import EventT


async def take_batches(stream: Any, max_events: int,
                       wake_in: Callable[[], float | None] | None = None) -> AsyncIterator[list[EventT]]:
    """Batches of at most ``max_events``. ``wake_in``: seconds after which, with no event
    waiting, an empty batch is handed over (None: wait for events), for work that is due by
    time rather than by input (streams/folds.py ``ChannelStockDue``)."""
    app = stream.app
    queue = stream.channel.queue
    get, get_nowait, empty = queue.get, queue.get_nowait, queue.empty
    is_active = app.flow_control.is_active
    consumer = app.consumer
    track = consumer._unacked_messages.add
    acking_topics = app.topics._acking_topics
    on_message_in = stream._on_message_in
    on_message_out = stream._on_message_out
    try:
        while not stream.should_stop:
            timeout = wake_in() if wake_in is not None and empty() else None
            if timeout is None:
                taken = [await get()]
            else:
                try:
                    taken = [await asyncio.wait_for(get(), timeout)]
                except asyncio.TimeoutError:
                    yield []
                    continue
            while len(taken) < max_events and not empty():
                taken.append(get_nowait())
            generation = app.consumer_generation_id
            active = is_active()
            events = []
            for event in taken:
                message = event.message
                if not active or message.generation_id != generation:
                    if event.ack():  # skipped, and acknowledged, as Faust's stream does
                        on_message_out(message.tp, message.offset, message)
                    continue
                if not message.tracked and message.topic in acking_topics:
                    message.tracked = True
                    track(message)
                    on_message_in(message.tp, message.offset, message)
                events.append(event)
            if events:
                yield events
    except StopAsyncIteration:
        return  # the channel stopped (the worker is stopping): no more batches, as Faust's iterator ends


__all__ = ["take_batches"]
