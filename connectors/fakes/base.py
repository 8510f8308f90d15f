"""What every fake marketplace shares: listings with their own advertised quantity, a rate
limiter that answers 429 with Retry-After, counters a test asserts on, selling on its own
(decrement, then deliver the platform's signed webhook to the gateway, retrying like the
platforms do), and an aiohttp server run on its own event-loop thread at a free port.

All state is touched only on the fake's loop, so a sale and an inventory update never interleave
half-way: exactly the atomicity a real platform's inventory row has.
"""

from __future__ import annotations

import asyncio
import itertools
import socket
import threading
import time
from abc import ABC, abstractmethod
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

import aiohttp
from aiohttp import web

from connectors.ratelimit import TokenBucket  # the fakes limit with the sync's own arithmetic


@dataclass
class Sale:
    order_id: str  # the platform's own id (the gateway prefixes it with the platform)
    account: str
    sku: str
    qty: int
    buyer: str
    at: float = field(default_factory=time.time)
    delivered: bool = False  # the gateway answered 2xx


class FakeMarketplace(ABC):
    platform: str = ""

    def __init__(self, *, gateway_url: str = "", rate_capacity: float = 2.0, rate_per_s: float = 2.0) -> None:
        self.gateway_url = gateway_url.rstrip("/")
        self.quantity: dict[tuple[str, str], int] = {}  # (account, sku) -> advertised units
        self.sales: list[Sale] = []
        self.counters: Counter[str] = Counter()  # calls, throttled, bad_signature, bad_shape, updates, ...
        self.updates: list[tuple[float, str, str, int]] = []  # (time, account, sku, quantity) accepted
        self._rate = (rate_capacity, rate_per_s)
        self._limiters: dict[str, TokenBucket] = {}  # per account (shop / seller / app)
        self._ids = itertools.count(1)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.url = ""
        self._session: aiohttp.ClientSession | None = None

    # ---- what each platform fills in -------------------------------------------------------
    @abstractmethod
    def routes(self) -> list[web.RouteDef]:
        """The platform API routes this fake serves (inventory update, token, queue, ...)."""

    @abstractmethod
    def order_webhook(self, sale: Sale) -> tuple[str, dict[str, str], bytes]:
        """(gateway path, headers, body) of the platform's signed 'order created' delivery."""

    def deliver(self, sale: Sale) -> Awaitable[bool] | None:
        """A platform whose deliveries are not webhooks (Amazon's SQS) overrides this."""
        return None

    # ---- shared behaviour ------------------------------------------------------------------
    def throttle(self, account: str, cost: float = 1.0) -> web.Response | None:
        """A 429 with Retry-After when ``account`` is over its rate limit (counted), else None."""
        self.counters["calls"] += 1
        limiter = self._limiters.setdefault(account, TokenBucket(*self._rate))
        wait = limiter.take(cost)
        if wait <= 0:
            return None
        self.counters["throttled"] += 1
        return web.json_response({"error": "rate limited"}, status=429,
                                 headers={"Retry-After": f"{max(1, round(wait + 0.5))}"})

    def refuse(self, counter: str, status: int, message: str) -> web.Response:
        self.counters[counter] += 1
        return web.json_response({"error": message}, status=status)

    def set_quantity(self, account: str, sku: str, quantity: int) -> None:
        self.quantity[(account, sku)] = quantity
        self.updates.append((time.time(), account, sku, quantity))
        self.counters["updates"] += 1

    def sold(self, sku: str | None = None) -> int:
        return sum(s.qty for s in self.sales if sku is None or s.sku == sku)

    def next_order_id(self) -> str:
        return f"{int(time.time() * 1000)}{next(self._ids):06d}"

    async def sell(self, account: str, sku: str, qty: int = 1, buyer: str = "buyer") -> Sale | None:
        """Sell if this listing shows enough, then deliver the order to the gateway.
        Runs on the fake's loop (``run``) so it is atomic against inventory updates."""
        if qty <= 0 or self.quantity.get((account, sku), 0) < qty:
            self.counters["sale_refused"] += 1
            return None
        self.quantity[(account, sku)] -= qty
        sale = Sale(self.next_order_id(), account, sku, qty, buyer)
        self.sales.append(sale)
        custom = self.deliver(sale)
        sale.delivered = await custom if custom is not None else await self._post_webhook(sale)
        return sale

    async def _post_webhook(self, sale: Sale, attempts: int = 8) -> bool:
        path, headers, body = self.order_webhook(sale)
        return await self.post_to_gateway(path, headers, body, attempts)

    async def post_to_gateway(self, path: str, headers: dict[str, str], body: bytes, attempts: int = 8) -> bool:
        """POST one webhook delivery to the gateway, retrying with backoff like the platforms do
        (non-2xx answers and unreachable gateways are counted); True once answered 2xx."""
        assert self._session is not None, "start() first"
        for attempt in range(attempts):
            try:
                async with self._session.post(self.gateway_url + path, data=body, headers=headers) as response:
                    await response.read()
                    if 200 <= response.status < 300:
                        return True
                    self.counters[f"webhook_{response.status}"] += 1
            except aiohttp.ClientError:
                self.counters["webhook_unreachable"] += 1
            await asyncio.sleep(min(2.0, 0.05 * 2 ** attempt))  # platforms retry with backoff
        return False

    # ---- serving ---------------------------------------------------------------------------
    def start(self, host: str = "127.0.0.1") -> "FakeMarketplace":
        """Serve on a free port on a daemon thread; ``url`` is then set."""
        ready = threading.Event()
        port = _free_port(host)
        self.url = f"http://{host}:{port}"

        def serve() -> None:
            self.loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self.loop)
            app = web.Application()
            app.add_routes(self.routes())
            runner = web.AppRunner(app, access_log=None)
            self.loop.run_until_complete(runner.setup())
            self.loop.run_until_complete(web.TCPSite(runner, host, port).start())
            self._session = self.loop.run_until_complete(_client_session())  # aiohttp wants a running loop
            self._runner = runner
            ready.set()
            self.loop.run_forever()

        self._thread = threading.Thread(target=serve, name=f"fake-{self.platform}", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError(f"fake {self.platform} did not start")
        return self

    def run(self, make: Callable[[], Awaitable[Any]], timeout: float = 30.0) -> Any:
        """Run a coroutine on the fake's loop from another thread and wait for it."""
        assert self.loop is not None, "start() first"

        async def call() -> Any:
            return await make()

        return asyncio.run_coroutine_threadsafe(call(), self.loop).result(timeout)

    def stop(self) -> None:
        if self.loop is None:
            return

        async def close() -> None:
            if self._session is not None:
                await self._session.close()
            await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop = None


async def _client_session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]
