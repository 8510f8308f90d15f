"""`lockstock gateway`: the webhook intake of every marketplace.

``POST /webhooks/<platform>``:
- 404: no adapter for that platform; 503: the platform has no secret configured (refused, never
  accepted unsigned); 401: the signature over the raw body does not verify;
- 400 with the reason: signed but malformed; the body is also dead-lettered (byte for byte);
- 200 ``accepted``: the records are on the broker (acks=all, idempotent producer) — answered only
  after the acknowledgement; 200 ``duplicate``: this delivery id was already accepted, nothing is
  produced again; 200 ``ignored``: a genuine delivery lockstock does not act on (counted, logged);
- 503 when the broker cannot take the records: the platform retries, nothing is lost.

``GET /metrics``: Prometheus metrics (lockstock/metrics/gateway.py); ``/health``, ``/stats``: JSON.

Amazon has no webhooks: when configured, its SQS queue is consumed by the same process and each
notification takes the same path (deleted from the queue only after the acknowledgement).

Duplicates: the ledger here remembers accepted delivery ids (bounded by count and age); a
delivery still being produced makes its concurrent duplicates wait for its outcome. Past a restart
the engine is the backstop: it keys orders by order_id and lifecycle events by event_id, so a
redelivery never locks or releases twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from aiohttp import web

from connectors.base import Emit, Intake, NotConfigured, PayloadError, Webhook, WebhookAdapter
from connectors.signatures import SignatureError
from lockstock import deadletter
from lockstock.acked import AckedProducer
from lockstock.catalog import Catalog
from lockstock.clock import now_ms
from lockstock.errors import BrokerError, CodecError
from lockstock.kafka import Kafka
from lockstock.metrics.gateway import GatewayMetrics
from lockstock.stats import percentile

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 1 << 20  # the largest order webhook is a few tens of KB
DELIVERY_HEADER = "lockstock-delivery"


class DeliveryLedger:
    """Accepted delivery ids, bounded by count and age, with in-flight deliveries shared."""

    def __init__(self, max_entries: int = 200_000, ttl_s: float = 24 * 3600) -> None:
        self.max_entries, self.ttl_s = max_entries, ttl_s
        self._done: OrderedDict[str, float] = OrderedDict()
        self._running: dict[str, asyncio.Future] = {}

    def __len__(self) -> int:
        return len(self._done)

    def seen(self, key: str, now: float) -> bool:
        at = self._done.get(key)
        if at is None:
            return False
        if now - at > self.ttl_s:
            del self._done[key]
            return False
        return True

    async def once(self, key: str, produce: Callable[[], Awaitable[Any]]) -> tuple[bool, Any]:
        """(duplicate, result): run ``produce`` unless ``key`` was accepted or is being accepted.
        A failed attempt is forgotten, so the platform's retry can succeed."""
        if self.seen(key, time.monotonic()):
            return True, None
        running = self._running.get(key)
        if running is not None:
            await asyncio.shield(running)  # raises if the first attempt failed: the duplicate fails too
            return True, None
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        self._running[key] = future
        try:
            result = await produce()
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning when nobody waits
            raise
        finally:
            self._running.pop(key, None)
        future.set_result(None)
        self._done[key] = time.monotonic()
        while len(self._done) > self.max_entries:
            self._done.popitem(last=False)
        return False, result


@dataclass
class GatewayStats:
    counts: Counter = field(default_factory=Counter)  # (platform, outcome) -> n
    ack_ms: deque = field(default_factory=lambda: deque(maxlen=5000))  # recent only: the gateway runs for weeks

    def count(self, platform: str, outcome: str) -> None:
        self.counts[(platform, outcome)] += 1

    def to_dict(self) -> dict[str, Any]:
        platforms: dict[str, dict[str, int]] = {}
        for (platform, outcome), n in sorted(self.counts.items()):
            platforms.setdefault(platform, {})[outcome] = n
        recent = list(self.ack_ms)
        return {"platforms": platforms,
                "ack_ms": {"p50": round(percentile(recent, 50), 2), "p99": round(percentile(recent, 99), 2),
                           "samples": len(recent)} if recent else {}}


class Gateway:
    """Verification, normalisation, dedupe and acknowledged producing, independent of HTTP."""

    def __init__(self, kafka: Kafka, catalog: Catalog, adapters: dict[str, WebhookAdapter | NotConfigured],
                 producer: AckedProducer | None = None) -> None:
        self.kafka, self.catalog, self.adapters = kafka, catalog, adapters
        self.topics = kafka.topics
        self.producer = producer or AckedProducer(kafka)
        self.ledger = DeliveryLedger()
        self.stats = GatewayStats()
        self.metrics = GatewayMetrics.for_gateway(self)
        self._topic_of = {"OrderPlaced": self.topics.orders_placed, "OrderEvent": self.topics.orders_events}

    async def accept(self, platform: str, intake: Intake) -> dict[str, Any]:
        """Produce the intake's records once per delivery id; the answer for the platform."""
        if intake.ignored and not intake.records:
            self.stats.count(platform, "ignored")
            logger.info("%s delivery %s ignored: %s", platform, intake.delivery_id, intake.ignored)
            return {"status": "ignored", "reason": intake.ignored}
        key = f"{platform}:{intake.delivery_id}"
        started = time.perf_counter()
        duplicate, positions = await self.ledger.once(key, lambda: self._produce(key, intake.records))
        if duplicate:
            self.stats.count(platform, "duplicate")
            return {"status": "duplicate", "delivery_id": intake.delivery_id}
        acked_s = time.perf_counter() - started
        self.stats.ack_ms.append(acked_s * 1000)
        self.metrics.acknowledged(acked_s)
        self.stats.count(platform, "accepted")
        return {"status": "accepted", "delivery_id": intake.delivery_id, "records": positions}

    async def _produce(self, delivery: str, records: tuple[Emit, ...]) -> list[dict[str, Any]]:
        headers = [(DELIVERY_HEADER, delivery.encode())]
        sends = []
        for emit in records:
            topic = self._topic_of[emit.record]
            value = self.kafka.codec.encode(emit.record, emit.value, topic=topic)
            sends.append((topic, emit.key, self.producer.send(topic, emit.key, value, headers)))
        acked = await asyncio.gather(*(send for _, _, send in sends))
        return [{"topic": t, "key": k, "partition": p, "offset": o} for (t, k, _), (p, o) in zip(sends, acked)]

    async def dead_letter(self, platform: str, body: bytes, reason: str, error_type: str, key: str = "") -> None:
        record = deadletter.dead_letter(
            source_topic=f"webhooks/{platform}", payload=body, reason=reason, error_type=error_type,
            service="gateway", key=key.encode() or None,
        )
        topic = self.topics.deadletter
        await self.producer.send(topic, key or platform, self.kafka.codec.encode("DeadLetter", record, topic=topic))
        self.metrics.dead_lettered(error_type)

    async def receive(self, hook: Webhook) -> tuple[int, dict[str, Any]]:
        """(HTTP status, JSON answer) for one webhook delivery."""
        platform = hook.platform
        adapter = self.adapters.get(platform)
        if adapter is None:
            self.stats.count(platform, "unknown_platform")
            return 404, {"error": f"no webhook route for platform {platform!r}; known: {', '.join(sorted(self.adapters))}"}
        if isinstance(adapter, NotConfigured):
            self.stats.count(platform, "not_configured")
            return 503, {"error": str(adapter)}
        try:
            adapter.verify(hook, time.time())
        except SignatureError as exc:
            self.stats.count(platform, "bad_signature")
            return 401, {"error": str(exc)}
        try:
            intake = adapter.intake(hook)
        except PayloadError as exc:
            return await self._malformed(hook, str(exc), deadletter.UNDECODABLE)
        except Exception as exc:  # an adapter bug must not become a 5xx loop on the platform's side
            logger.exception("%s adapter failed on a signed delivery", platform)
            return await self._malformed(hook, f"adapter error {type(exc).__name__}: {exc}", deadletter.PROCESSING_ERROR)
        try:
            return 200, await self.accept(platform, intake)
        except CodecError as exc:
            return await self._malformed(hook, f"record does not fit the schema: {exc}", deadletter.UNDECODABLE)
        except BrokerError as exc:
            self.stats.count(platform, "broker_error")
            return 503, {"error": f"not accepted, retry later: {exc}"}

    async def receive_notification(self, platform: str, body: bytes, intake: Intake | Exception) -> bool:
        """A queue-delivered notification (Amazon via SQS): True once it may be deleted from the
        queue (accepted, a duplicate, ignored, or dead-lettered as malformed); False keeps it
        for redelivery (the broker could not take it)."""
        if isinstance(intake, Exception):
            return await self._dead_lettered(platform, body, str(intake), deadletter.UNDECODABLE)
        try:
            await self.accept(platform, intake)
            return True
        except CodecError as exc:
            return await self._dead_lettered(platform, body, f"record does not fit the schema: {exc}", deadletter.UNDECODABLE)
        except BrokerError as exc:
            logger.warning("%s notification %s not accepted yet: %s", platform, intake.delivery_id, exc)
            return False

    async def _dead_lettered(self, platform: str, body: bytes, reason: str, error_type: str) -> bool:
        status, _ = await self._malformed(Webhook(platform, "queue", {}, body, now_ms()), reason, error_type)
        return status == 400

    async def _malformed(self, hook: Webhook, reason: str, error_type: str) -> tuple[int, dict[str, Any]]:
        self.stats.count(hook.platform, "malformed")
        try:
            await self.dead_letter(hook.platform, hook.body, reason, error_type)
        except BrokerError as exc:
            self.stats.count(hook.platform, "broker_error")
            return 503, {"error": f"malformed ({reason}) and the dead letter could not be written: {exc}"}
        return 400, {"error": reason}


def make_app(gateway: Gateway) -> web.Application:
    async def webhook(request: web.Request) -> web.Response:
        body = await request.read()
        hook = Webhook(platform=request.match_info["platform"], url=str(request.url),
                       headers={k.lower(): v for k, v in request.headers.items()}, body=body, received_at=now_ms())
        status, answer = await gateway.receive(hook)
        gateway.metrics.answered(hook.platform, status)
        return web.json_response(answer, status=status)

    async def health(request: web.Request) -> web.Response:
        platforms = {p: ("ready" if not isinstance(a, NotConfigured) else str(a)) for p, a in gateway.adapters.items()}
        return web.json_response({"status": "ok", "platforms": platforms, "remembered_deliveries": len(gateway.ledger)})

    async def stats(request: web.Request) -> web.Response:
        return web.json_response(gateway.stats.to_dict())

    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app.add_routes([web.post("/webhooks/{platform}", webhook), web.get("/health", health), web.get("/stats", stats),
                    web.get("/metrics", gateway.metrics.handler)])
    return app


async def serve(gateway: Gateway, host: str, port: int, stop: asyncio.Event,
                on_ready: Callable[[str], None] | None = None) -> None:
    """Serve webhooks (and consume Amazon's queue when configured) until ``stop`` is set."""
    runner = web.AppRunner(make_app(gateway), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    consumers = [asyncio.create_task(task) for task in notification_consumers(gateway, stop)]
    if on_ready:
        on_ready(f"http://{host}:{port}")
    try:
        await stop.wait()
    finally:
        for task in consumers:
            task.cancel()
        await asyncio.gather(*consumers, return_exceptions=True)
        await runner.cleanup()
        gateway.producer.close()


def notification_consumers(gateway: Gateway, stop: asyncio.Event) -> list[Awaitable[None]]:
    """Queue-delivered platforms (Amazon SP-API notifications via SQS), when configured."""
    from connectors import amazon

    source = amazon.notification_source(gateway.catalog)
    if isinstance(source, NotConfigured):
        logger.info("%s", source)
        return []
    adapter = amazon.AmazonNotifications(gateway.catalog)

    async def handle(message: Any, intake: Intake | Exception) -> bool:
        return await gateway.receive_notification("amazon", message.body, intake)

    async def consume() -> None:
        try:
            await amazon.consume_notifications(source, adapter, handle, stop=stop)
        finally:
            await source.close()

    return [consume()]
