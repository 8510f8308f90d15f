"""Faust's message drain without four asyncio tasks per record.

faust-streaming 0.15.3 hands every fetched record to the conductor with
``await self.wait_first(callback(message), self.suspend_flow.wait())``: per record that creates
four tasks (the callback, the flow-suspension wait and the service's stopped and crashed waits),
an ``asyncio.wait`` and three cancellations. The callback itself almost never waits: it decodes
the record and puts it on its stream's queue (docs/decisions/0002).

``EagerDrainConsumer`` runs the callback's first step at once, as a task's first step would have
run (and as Python 3.12's eager tasks do). Only when the callback has to wait (flow control
suspended for a rebalance, a full stream queue, the producer buffer over its limit) is the rest
of it handed to Faust's ``wait_first`` with the same flow-suspension race as before, so a
rebalance still interrupts a blocked hand-over exactly as it did. Everything else about the
loop (read offsets, gap bookkeeping, commits, the fetching flag recovery waits on) is Faust's.
"""

from __future__ import annotations

import asyncio
from typing import Any, Coroutine

from faust.transport.consumer import CONSUMER_FETCHING


def first_step(coroutine: Coroutine) -> tuple[bool, Any]:
    """Run a coroutine until it first waits: (True, its result) if it finished, else (False,
    what it waits on), to be passed on to ``finish``."""
    try:
        waiting_on = coroutine.send(None)
    except StopIteration as stop:
        return True, stop.value
    return False, waiting_on


async def finish(coroutine: Coroutine, waiting_on: Any) -> Any:
    """Drive the rest of a coroutine whose first step ``first_step`` ran, as its task would
    have: wait for what it waits on, resume it, and pass a cancellation on to both."""
    while True:
        try:
            if waiting_on is None:  # a bare yield (asyncio.sleep(0)): just give the loop a turn
                await asyncio.sleep(0)
            else:
                waiting_on._asyncio_future_blocking = False  # as Task.__step does before waiting
                await asyncio.wait([waiting_on])
        except BaseException as exc:  # cancelled while waiting: the coroutine decides what follows
            if waiting_on is not None:
                waiting_on.cancel()
            try:
                waiting_on = coroutine.throw(exc)
            except StopIteration as stop:
                return stop.value
            continue
        try:
            waiting_on = coroutine.send(None)
        except StopIteration as stop:
            return stop.value


class EagerDrain:
    """Mixed in before a Faust transport's Consumer (``eager_drain``)."""

    async def _drain_messages(self, fetcher: Any) -> None:  # pragma: no cover - Faust's loop
        # Faust's own loop (faust/transport/consumer.py, Consumer._drain_messages), changed
        # only where the record is handed to the callback.
        callback = self.callback
        getmany = self.getmany
        consumer_should_stop = self._stopped.is_set
        fetcher_should_stop = fetcher._stopped.is_set
        flow_suspended = self.suspend_flow.is_set
        get_read_offset = self._read_offset.__getitem__
        set_read_offset = self._read_offset.__setitem__
        set_flag = self.diag.set_flag
        unset_flag = self.diag.unset_flag
        commit_every = self._commit_every
        acks_enabled_for = self.app.topics.acks_enabled_for
        yield_every = 100
        num_since_yield = 0
        sleep = asyncio.sleep
        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                set_flag(CONSUMER_FETCHING)
                ait = getmany(timeout=1.0)
                await self.sleep(0)
                if not self.should_stop:
                    async for tp, message in ait:
                        num_since_yield += 1
                        if num_since_yield > yield_every:
                            await sleep(0)
                            num_since_yield = 0
                        offset = message.offset
                        r_offset = get_read_offset(tp)
                        if r_offset is None or offset >= r_offset:
                            gap = offset - (r_offset or 0)
                            if gap > 1 and r_offset and acks_enabled_for(message.topic):
                                await self._add_gap(tp, r_offset + 1, offset)
                            if commit_every is not None and self._n_acked >= commit_every:
                                self._n_acked = 0
                                await self.commit()
                            await self._hand_over(callback(message), flow_suspended)
                            set_read_offset(tp, offset)
                        else:
                            self.log.dev("DROPPED MESSAGE ROFF %r: k=%r v=%r", offset, message.key, message.value)
                    unset_flag(CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                self.log.info("Broker stopped consumer, shutting down...")
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                self.log.info("Consumer shutting down for user cancel.")
                return
            raise
        except Exception as exc:
            self.log.exception("Drain messages raised: %r", exc)
            raise
        finally:
            unset_flag(CONSUMER_FETCHING)

    async def _hand_over(self, delivery: Coroutine, flow_suspended: Any) -> None:
        if flow_suspended() or self._stopped.is_set() or self._crashed.is_set():
            await self.wait_first(delivery, self.suspend_flow.wait())  # Faust's way, unchanged
            return
        done, waiting_on = first_step(delivery)
        if not done:
            await self.wait_first(finish(delivery, waiting_on), self.suspend_flow.wait())


def eager_drain(consumer_class: type) -> type:
    """``consumer_class`` (a Faust transport's Consumer) with the eager message hand-over."""

    # A name of its own: mode registers a service's tasks under its module and qualified name.
    name = f"EagerDrain{consumer_class.__name__}"
    return type(name, (EagerDrain, consumer_class), {"__module__": __name__, "__qualname__": name})


def eager_transport(transport_class: type) -> type:
    """A Faust transport whose consumer hands records over eagerly (``eager_drain``)."""
    name = f"EagerDrain{transport_class.__name__}"
    return type(name, (transport_class,), {
        "Consumer": eager_drain(transport_class.Consumer), "__module__": __name__, "__qualname__": name,
    })


__all__ = ["eager_drain", "eager_transport", "first_step", "finish"]
