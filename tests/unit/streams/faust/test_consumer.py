"""The eager hand-over of fetched records (streams/consumer.py): a callback that does not wait
runs to completion without a task; one that waits finishes exactly as its task would have; a
suspended flow still goes through Faust's own race."""

from __future__ import annotations

import asyncio

import pytest

from streams.consumer import eager_drain, eager_transport, finish, first_step


async def returns(value):
    return value


def test_a_callback_that_never_waits_completes_in_its_first_step():
    done, result = first_step(returns(42))
    assert (done, result) == (True, 42)


def test_an_error_raised_before_the_first_wait_reaches_the_caller():
    async def fails():
        raise ValueError("bad record")

    with pytest.raises(ValueError, match="bad record"):
        first_step(fails())


def test_a_callback_that_waits_is_finished_as_its_task_would_have_been():
    async def main():
        gate = asyncio.get_running_loop().create_future()
        seen = []

        async def delivery():
            seen.append("decoded")
            value = await gate  # a full stream queue, say
            await asyncio.sleep(0)  # a bare yield on the way
            seen.append(value)
            return "put"

        coroutine = delivery()
        done, waiting_on = first_step(coroutine)
        assert not done and waiting_on is gate and seen == ["decoded"]
        finishing = asyncio.ensure_future(finish(coroutine, waiting_on))
        await asyncio.sleep(0.01)
        assert not finishing.done()
        gate.set_result("room")
        assert await asyncio.wait_for(finishing, 1) == "put"
        assert seen == ["decoded", "room"]

    asyncio.run(main())


def test_cancelling_the_rest_cancels_what_it_waits_on_and_lets_the_callback_clean_up():
    async def main():
        gate = asyncio.get_running_loop().create_future()
        cleaned = []

        async def delivery():
            try:
                await gate
            finally:
                cleaned.append(True)

        coroutine = delivery()
        _, waiting_on = first_step(coroutine)
        finishing = asyncio.ensure_future(finish(coroutine, waiting_on))
        await asyncio.sleep(0)
        finishing.cancel()
        with pytest.raises(asyncio.CancelledError):
            await finishing
        assert gate.cancelled() and cleaned == [True]

    asyncio.run(main())


class FakeFaustConsumer:
    """What ``_hand_over`` uses of Faust's consumer, recording how each delivery went."""

    def __init__(self) -> None:
        self.suspend_flow = asyncio.Event()
        self._stopped = asyncio.Event()
        self._crashed = asyncio.Event()
        self.raced = []

    async def wait_first(self, *coros):
        self.raced.append(len(coros))
        task = asyncio.ensure_future(coros[0])
        for other in coros[1:]:
            other.close()
        return await task


def test_deliveries_run_eagerly_unless_the_flow_is_suspended():
    consumer = eager_drain(FakeFaustConsumer)()
    delivered = []

    async def delivery(n):
        delivered.append(n)

    async def main():
        await consumer._hand_over(delivery(1), consumer.suspend_flow.is_set)
        assert consumer.raced == [] and delivered == [1]  # no task, no race
        consumer.suspend_flow.set()  # a rebalance began: Faust's race against the suspension
        await consumer._hand_over(delivery(2), consumer.suspend_flow.is_set)
        assert consumer.raced == [2] and delivered == [1, 2]

    asyncio.run(main())


def test_a_delivery_that_has_to_wait_still_races_the_flow_suspension():
    consumer = eager_drain(FakeFaustConsumer)()

    async def main():
        gate = asyncio.get_running_loop().create_future()

        async def delivery():
            return await gate

        handing = asyncio.ensure_future(consumer._hand_over(delivery(), consumer.suspend_flow.is_set))
        await asyncio.sleep(0)
        gate.set_result(None)
        await asyncio.wait_for(handing, 1)
        assert consumer.raced == [2]

    asyncio.run(main())


def test_the_transport_keeps_its_base_and_names_its_consumer_for_mode():
    from faust.transport.drivers import aiokafka

    transport = eager_transport(aiokafka.Transport)
    assert issubclass(transport, aiokafka.Transport)
    assert issubclass(transport.Consumer, aiokafka.Consumer)
    assert transport.Consumer.__qualname__ == "EagerDrainConsumer"  # mode keys a service's tasks by it
    assert transport.Consumer._drain_messages is not aiokafka.Consumer._drain_messages
