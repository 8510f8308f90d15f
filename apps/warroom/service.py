"""The war room as a background service: the feed thread and the HTTP server (its own event loop on
its own thread), started and stopped together. `lockstock up` and `lockstock demo --war-room` use it;
the caller's thread stays free for its own work (supervising workers, playing a stream)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from aiohttp import web

from apps.warroom.feed import WarRoomFeed
from apps.warroom.model import WarRoom
from apps.warroom.server import create_app
from lockstock.catalog import Catalog
from lockstock.errors import LockstockError
from lockstock.kafka import Kafka

START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 10.0


class WarRoomService:
    def __init__(self, kafka: Kafka, catalog: Catalog, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.lock = threading.Lock()
        self.room = WarRoom(catalog)
        self.feed = WarRoomFeed(kafka, self.room, self.lock)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._failure: BaseException | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    def start(self) -> "WarRoomService":
        """Serve, or raise LockstockError (the port is taken, the host does not resolve...)."""
        self._thread = threading.Thread(target=self._serve, name="lockstock-warroom-http", daemon=True)
        self._thread.start()
        if not self._started.wait(START_TIMEOUT_S):
            raise LockstockError(f"the war room did not start on {self.host}:{self.port} within {START_TIMEOUT_S:.0f}s")
        if self._failure is not None:
            raise LockstockError(f"cannot serve the war room on {self.host}:{self.port}: {self._failure}") from None
        self.feed.start()
        return self

    def _serve(self) -> None:
        loop = self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._open())
        except OSError as exc:  # address in use, cannot bind
            self._failure = exc
            if self._runner is not None:
                loop.run_until_complete(self._runner.cleanup())
        finally:
            self._started.set()
        if self._failure is None:
            loop.run_forever()
        loop.close()

    async def _open(self) -> None:
        self._runner = web.AppRunner(create_app(self.room, self.lock, self.feed.status), access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port, shutdown_timeout=2.0).start()

    def stop(self) -> None:
        loop, runner = self._loop, self._runner
        if loop is not None and runner is not None and loop.is_running():
            done = asyncio.run_coroutine_threadsafe(runner.cleanup(), loop)
            try:
                done.result(STOP_TIMEOUT_S)
            except Exception:  # a slow page connection: stop the loop anyway
                pass
            loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(STOP_TIMEOUT_S)
        self.feed.stop()

    def __enter__(self) -> "WarRoomService":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
