"""`lockstock sync`: keeps every marketplace listing at its lease.

One consumer reads ``channels.stock`` (from the beginning: compacted, latest per channel:sku),
``orders.placed`` and ``orders.decisions`` (from now on) into ``SyncState``; each changed SKU is
re-planned (connectors/sync/leases.py) and its pushes queued per listing, latest wins. Each
listing has a lane: its platform's rate budget (a token bucket shared by all the listing's calls),
its queue ordered decreases first, then by stock-out risk (fewest units first), batched as the
platform's API allows. A lane that is throttled, failing or slow never holds up another.

Failures: 429 / 5xx / network errors are retried with exponential backoff and full jitter,
never sooner than the platform's Retry-After (a 429 also empties the lane's bucket). A push
that still fails after ``max_attempts`` (or is refused for good) is dead-lettered with the
reason, announced as a SYNC_FAILURE alert, and that listing+SKU rests for ``cooldown_s`` before
the next attempt.

Sync lag per listing is the time from the stock change reaching Kafka (record timestamp) to the
platform accepting the push; ``GET /status`` serves it with every counter, ``GET /metrics`` for
Prometheus (lockstock/metrics/sync.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from connectors.base import ApiCall, CallOutcome, NotConfigured, PushResult, StockPush, StockPusher
from connectors.ratelimit import TokenBucket
from connectors.sync.leases import Push
from connectors.sync.state import SyncState
from lockstock import deadletter
from lockstock.acked import AckedProducer
from lockstock.catalog import Catalog, Channel
from lockstock.clock import now_ms
from lockstock.errors import BrokerError
from lockstock.kafka import Kafka
from lockstock.metrics.sync import SyncMetrics
from lockstock.reader import Record, ReaderThread
from lockstock.stats import percentile

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SyncOptions:
    settle_ms: int = 500
    max_attempts: int = 6
    backoff_base_s: float = 0.2
    backoff_cap_s: float = 30.0
    cooldown_s: float = 60.0
    request_timeout_s: float = 10.0
    # Spend at most this share of a platform's budget: requests sent evenly can still arrive
    # bunched (one waits on a connection, the next does not), and the platform counts arrivals.
    budget_headroom: float = 0.9


@dataclass
class Retry:
    attempts: int = 0
    not_before: float = 0.0


@dataclass
class Lane:
    """One listing: its pusher, rate budget, queue (sku -> latest push) and counters."""

    channel: Channel
    pusher: StockPusher
    bucket: TokenBucket
    queue: dict[str, tuple[Push, int]] = field(default_factory=dict)  # sku -> (push, changed_at)
    retries: dict[str, Retry] = field(default_factory=dict)
    resting: dict[str, float] = field(default_factory=dict)  # sku -> monotonic time it may push again
    blocked_until: float = 0.0
    counts: Counter = field(default_factory=Counter)
    lags_ms: deque = field(default_factory=lambda: deque(maxlen=20_000))

    def status(self) -> dict[str, Any]:
        lags = list(self.lags_ms)
        return {
            "platform": self.channel.platform, "queued": len(self.queue), **dict(self.counts),
            "lag_ms": {"p50": round(percentile(lags, 50), 1), "p99": round(percentile(lags, 99), 1),
                       "max": round(max(lags), 1), "samples": len(lags)} if lags else {},
        }


class SyncService:
    def __init__(self, kafka: Kafka, catalog: Catalog, pushers: dict[str, StockPusher | NotConfigured],
                 options: SyncOptions = SyncOptions()) -> None:
        self.kafka, self.catalog, self.options = kafka, catalog, options
        self.topics = kafka.topics
        self.state = SyncState(catalog, settle_ms=options.settle_ms)
        self.lanes: dict[str, Lane] = {}
        self.disabled: dict[str, str] = {}  # listing -> why it is not pushed
        for name, listing in self.state.listings.items():
            pusher = pushers.get(listing.platform)
            if not isinstance(pusher, StockPusher):
                self.disabled[name] = str(pusher or f"no pusher for {listing.platform}")
                continue
            channel = catalog.channels[name]
            budget = pusher.budget(channel)
            share = options.budget_headroom
            bucket = TokenBucket(max(1.0, budget.capacity * share), budget.refill_per_s * share)
            self.lanes[name] = Lane(channel, pusher, bucket)
        self.state.exact = {name for name, lane in self.lanes.items() if lane.pusher.compare_and_set}
        self.dirty: set[str] = set()
        self.inbox: asyncio.Queue = asyncio.Queue()
        self.wake = asyncio.Event()
        self.records = Counter()
        self.caught_up = False
        self._tasks: set[asyncio.Task] = set()
        self.metrics = SyncMetrics(self)

    # ---- Kafka in ------------------------------------------------------------------------
    def _reader(self, loop: asyncio.AbstractEventLoop) -> ReaderThread:
        """The reader thread, handing its batches to ``loop``. Stock is compacted: read it all.
        Orders before our start are settled by now or soon; only new ones are in flight."""
        return self.kafka.reader_thread(
            lambda records, caught_up: loop.call_soon_threadsafe(self._deliver, records, caught_up),
            beginning=[self.topics.channels_stock], end=[self.topics.orders_placed, self.topics.orders_decisions],
            name="sync-consumer", poll_s=0.05, batch=500,
            on_failure=lambda exc: loop.call_soon_threadsafe(self._deliver, None, False))

    def _deliver(self, records: list[Record] | None, caught_up: bool) -> None:
        """A batch (None: the reader failed) for the main loop, in the order the reader read."""
        self.inbox.put_nowait(records)
        self.caught_up = self.caught_up or caught_up
        self.wake.set()

    def _apply(self, records: list[Record] | None) -> None:
        if records is None:
            raise BrokerError("the sync's Kafka consumer failed; see the log")
        now = now_ms()
        for record in records:
            topic, value, at = record.topic, record.value, record.timestamp
            self.records[topic] += 1
            if topic == self.topics.channels_stock:
                sku = self.state.on_stock(value, at or now)
                if sku:
                    self.dirty.add(sku)
            elif topic == self.topics.orders_placed:
                self.dirty |= self.state.on_placed(value, at or now, seen_at=now)
            elif topic == self.topics.orders_decisions:
                self.state.on_decision(value, now)

    # ---- planning and pushing -------------------------------------------------------------
    def _replan(self) -> None:
        self.dirty |= self.state.settle(now_ms())
        rested = time.monotonic()
        for lane in self.lanes.values():
            for sku in [s for s, until in lane.resting.items() if until <= rested]:
                del lane.resting[sku]  # rested: try again
                self.dirty.add(sku)
        now = now_ms()
        margins = self.state.race_margins(now) if self.dirty else {}
        for sku in self.dirty:
            wanted = {p.listing: p for p in self.state.plan(sku, now, margins)}
            changed_at = self.state.pools[sku].changed_at if sku in self.state.pools else now_ms()
            for name, lane in self.lanes.items():
                push = wanted.get(name)
                if push is None:
                    lane.queue.pop(sku, None)  # no longer wanted (or waiting for an answer)
                elif lane.resting.get(sku, 0) <= time.monotonic():
                    lane.queue[sku] = (push, changed_at)
        self.dirty.clear()

    def _dispatch(self, session: aiohttp.ClientSession, producer: AckedProducer) -> float:
        """Send what budgets allow; the seconds until the next lane could send (bounded)."""
        now = time.monotonic()
        next_wake = 0.5
        for name, lane in self.lanes.items():
            if not lane.queue:
                continue
            if lane.blocked_until > now:
                next_wake = min(next_wake, lane.blocked_until - now)
                continue
            ready = [(push, at) for sku, (push, at) in lane.queue.items() if lane.retries.get(sku, Retry()).not_before <= now]
            if not ready:
                next_wake = min(next_wake, min(lane.retries[s].not_before for s in lane.queue if s in lane.retries) - now)
                continue
            ready.sort(key=lambda item: (not item[0].decrease, item[0].quantity))  # decreases, then nearest stock-out
            batch = ready[: lane.pusher.max_batch]
            stock_pushes = [StockPush(name, p.sku, p.quantity, p.expected if lane.pusher.compare_and_set else None, at)
                            for p, at in batch]
            try:
                calls = lane.pusher.build_calls(lane.channel, stock_pushes, time.time())
            except Exception as exc:  # an adapter bug fails this batch, never the loop
                logger.exception("%s pusher could not build calls", lane.channel.platform)
                calls, unsendable = [], stock_pushes
                self._fail_unsent(producer, name, lane, unsendable, f"pusher error: {exc}")
                continue
            carried = {p.sku for call in calls for p in call.pushes}
            unsendable = [p for p in stock_pushes if p.sku not in carried]
            if unsendable:
                self._fail_unsent(producer, name, lane, unsendable, "the pusher built no request for it")
            for call in calls:
                wait = lane.bucket.take(call.cost)
                if wait > 0:
                    next_wake = min(next_wake, wait)
                    break
                for stock_push in call.pushes:
                    push, _ = lane.queue.pop(stock_push.sku)
                    self.state.sent(push)
                task = asyncio.create_task(self._send(session, producer, name, lane, call))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        return max(0.005, next_wake)

    def _fail_unsent(self, producer: AckedProducer, name: str, lane: Lane, pushes: list[StockPush], reason: str) -> None:
        for stock_push in pushes:
            push, _ = lane.queue.pop(stock_push.sku)
            self.state.sent(push)
            outcome = CallOutcome((PushResult(stock_push, ok=False, retryable=False, reason=reason),))
            task = asyncio.create_task(self._settle_push(producer, name, lane, outcome.results[0], outcome, time.monotonic()))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _send(self, session: aiohttp.ClientSession, producer: AckedProducer, name: str, lane: Lane, call: ApiCall) -> None:
        lane.counts["calls"] += 1
        started = time.monotonic()
        try:
            async with session.request(call.method, call.url, headers=call.headers, data=call.body,
                                       timeout=aiohttp.ClientTimeout(total=self.options.request_timeout_s)) as response:
                body = await response.read()
                outcome = lane.pusher.parse_response(call, response.status, dict(response.headers), body)
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            outcome = CallOutcome(tuple(PushResult(p, ok=False, retryable=True, reason=reason) for p in call.pushes))
        except Exception as exc:  # an adapter bug: that call fails, the lane goes on
            logger.exception("%s pusher failed", lane.channel.platform)
            outcome = CallOutcome(tuple(PushResult(p, ok=False, retryable=False, reason=f"pusher error: {exc}") for p in call.pushes))
        now = time.monotonic()
        self.state.pushed(name, (now - started) * 1000)
        if outcome.throttled:
            lane.counts["throttled"] += 1
            lane.bucket.drain()
            lane.blocked_until = max(lane.blocked_until, now + (outcome.retry_after_s or 1.0 / lane.bucket.refill_per_s))
        for result in outcome.results:
            await self._settle_push(producer, name, lane, result, outcome, now)
        self.wake.set()

    async def _settle_push(self, producer: AckedProducer, name: str, lane: Lane, result: PushResult,
                           outcome: CallOutcome, now: float) -> None:
        push = Push(name, result.push.sku, result.push.quantity, result.push.expected, decrease=False)
        sku = push.sku
        self.dirty.add(sku)
        if result.ok:
            self.state.answered(push, True)
            lane.retries.pop(sku, None)
            lane.counts["accepted"] += 1
            lag_ms = max(0, now_ms() - result.push.changed_at)
            lane.lags_ms.append(lag_ms)
            self.metrics.accepted(name, lag_ms)
            return
        if result.actual is not None:  # compare-and-set refused: we now know what it shows
            self.state.answered(push, False, result.actual)
            lane.counts["compare_refused"] += 1
            return
        self.state.answered(push, False)
        retry = lane.retries.setdefault(sku, Retry())
        retry.attempts += 1
        if result.retryable and retry.attempts < self.options.max_attempts:
            lane.counts["retries"] += 1
            backoff = random.uniform(0, min(self.options.backoff_cap_s, self.options.backoff_base_s * 2 ** retry.attempts))
            retry.not_before = now + max(backoff, outcome.retry_after_s or 0.0)
            return
        lane.counts["failed"] += 1
        lane.retries.pop(sku, None)
        lane.resting[sku] = now + self.options.cooldown_s
        await self._report_failure(producer, lane, result, retry.attempts)

    async def _report_failure(self, producer: AckedProducer, lane: Lane, result: PushResult, attempts: int) -> None:
        push, channel = result.push, lane.channel
        reason = f"pushing {push.quantity} x {push.sku} to {channel.id} ({channel.platform}) failed after {attempts} attempt(s): {result.reason}"
        logger.error("%s", reason)
        payload = json.dumps({"channel": channel.id, "sku": push.sku, "quantity": push.quantity,
                              "expected": push.expected, "attempts": attempts}).encode()
        letter = deadletter.dead_letter(source_topic=self.topics.channels_stock, payload=payload, reason=reason,
                                        error_type=deadletter.SYNC_FAILED, service="sync",
                                        key=f"{channel.id}:{push.sku}".encode())
        alert = {"alert_id": f"sync-{channel.id}-{push.sku}-{now_ms()}", "sku": push.sku, "type": "SYNC_FAILURE",
                 "message": reason, "raised_at": now_ms(), "region": channel.region, "channel": channel.id,
                 "quantity": push.quantity, "details": {"reason": result.reason[:500], "attempts": str(attempts),
                                                        "platform": channel.platform}}
        codec = self.kafka.codec
        try:
            await asyncio.gather(
                producer.send(self.topics.deadletter, f"{channel.id}:{push.sku}",
                              codec.encode("DeadLetter", letter, topic=self.topics.deadletter)),
                producer.send(self.topics.inventory_alerts, push.sku,
                              codec.encode("InventoryAlert", alert, topic=self.topics.inventory_alerts)),
            )
            lane.counts["dead_lettered"] += 1
        except BrokerError as exc:
            logger.error("could not dead-letter a failed push (%s): %s", reason, exc)

    # ---- status and the main loop ----------------------------------------------------------
    def status(self) -> dict[str, Any]:
        lags = [lag for lane in self.lanes.values() for lag in lane.lags_ms]
        return {
            "caught_up": self.caught_up,
            "records": dict(self.records),
            "orders_in_flight": len(self.state.orders),
            "stale_in_flight": self.state.stale_in_flight,
            "channels": {name: lane.status() for name, lane in self.lanes.items()},
            "disabled": self.disabled,
            "lag_ms": {"p50": round(percentile(lags, 50), 1), "p99": round(percentile(lags, 99), 1),
                       "max": round(max(lags), 1), "samples": len(lags)} if lags else {},
            "listings": {sku: {name: {"shown": s.shown, "pushing": s.pushing} for name, s in known.items()}
                         for sku, known in sorted(self.state.known.items())},
        }

    async def run(self, stop: asyncio.Event, *, host: str = "127.0.0.1", port: int = 0,
                  progress_every_s: float = 10.0) -> None:
        loop = asyncio.get_running_loop()
        reader = self._reader(loop).start()
        try:
            await loop.run_in_executor(None, reader.wait_ready, 30)
        except BrokerError:
            reader.stop(10)
            raise
        runner = None
        if port:
            runner = web.AppRunner(self._web_app(), access_log=None)
            await runner.setup()
            await web.TCPSite(runner, host, port).start()
        producer = AckedProducer(self.kafka)
        last_progress = time.monotonic()
        try:
            async with aiohttp.ClientSession() as session:
                while not stop.is_set():
                    while not self.inbox.empty():
                        self._apply(self.inbox.get_nowait())
                    if self.caught_up:  # plan only once the compacted stock topic is read through
                        self._replan()
                        delay = self._dispatch(session, producer)
                    else:
                        delay = 0.05
                    if time.monotonic() - last_progress >= progress_every_s:
                        last_progress = time.monotonic()
                        logger.info("sync: records %s, orders in flight %d, queued %d",
                                    dict(self.records), len(self.state.orders),
                                    sum(len(lane.queue) for lane in self.lanes.values()))
                    self.wake.clear()
                    try:
                        await asyncio.wait_for(self.wake.wait(), timeout=min(delay, 0.2 if self.state.orders else delay))
                    except asyncio.TimeoutError:
                        pass
                if self._tasks:
                    await asyncio.wait(self._tasks, timeout=self.options.request_timeout_s)
        finally:
            reader.stop(10)
            producer.close()
            if runner is not None:
                await runner.cleanup()

    def _web_app(self) -> web.Application:
        async def status(request: web.Request) -> web.Response:
            return web.json_response(self.status())

        async def health(request: web.Request) -> web.Response:
            return web.json_response({"status": "ok" if self.caught_up else "catching up"}, status=200 if self.caught_up else 503)

        app = web.Application()
        app.add_routes([web.get("/status", status), web.get("/health", health), web.get("/metrics", self.metrics.handler)])
        return app
