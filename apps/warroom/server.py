"""The war room over HTTP (aiohttp):

- ``GET /``: the page; ``GET /static/...``: its script, style and the vendored chart library;
- ``GET /api/snapshot``: the whole picture as JSON (``WarRoom.snapshot`` plus the feed's status);
- ``GET /api/events``: server-sent events, one ``snapshot`` event when something changed (at most
  every ``push_interval_s``) and at least every ``refresh_s`` (countdowns and velocity move with
  the clock), a comment line as keep-alive otherwise;
- ``GET /health``: 200 with the feed's status.

The snapshot is built at most once per interval however many pages are open: it is cached with
the model version it was built from.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any, Callable

import orjson
from aiohttp import web

from apps.warroom.model import WarRoom
from lockstock.clock import now_ms

STATIC_DIR = Path(__file__).parent / "static"
PUSH_INTERVAL_S = 0.5
REFRESH_S = 2.0
KEEPALIVE_S = 15.0

ROOM: web.AppKey["Snapshots"] = web.AppKey("snapshots")
CLOSING: web.AppKey[asyncio.Event] = web.AppKey("closing")
SETTINGS: web.AppKey[dict[str, float]] = web.AppKey("settings")


class Snapshots:
    """The model's snapshot as JSON bytes, rebuilt only when the model changed or it is stale."""

    def __init__(self, room: WarRoom, lock: threading.Lock, feed_status: Callable[[], dict[str, Any]] | None,
                 max_age_s: float) -> None:
        self.room, self.lock, self.feed_status, self.max_age_s = room, lock, feed_status, max_age_s
        self._cached: tuple[int, float, bytes] | None = None  # (model version, built at, body)

    def current(self) -> tuple[tuple[int, float], bytes]:
        """(a tag that changes whenever the body does, the body)."""
        with self.lock:
            version = self.room.version
            cached = self._cached
            if cached is None or cached[0] != version or time.monotonic() - cached[1] >= self.max_age_s:
                snapshot = self.room.snapshot(now_ms())
                snapshot["feed"] = self.feed_status() if self.feed_status else {"state": "none"}
                cached = self._cached = (version, time.monotonic(), orjson.dumps(snapshot))
        return (cached[0], cached[1]), cached[2]


def create_app(room: WarRoom, lock: threading.Lock, feed_status: Callable[[], dict[str, Any]] | None = None, *,
               push_interval_s: float = PUSH_INTERVAL_S, refresh_s: float = REFRESH_S) -> web.Application:
    app = web.Application()
    app[ROOM] = Snapshots(room, lock, feed_status, max_age_s=refresh_s)
    app[CLOSING] = asyncio.Event()
    app[SETTINGS] = {"push_interval_s": push_interval_s, "refresh_s": refresh_s}

    async def closing(app: web.Application) -> None:
        app[CLOSING].set()  # ends every open event stream, so shutdown does not wait on them

    app.on_shutdown.append(closing)
    app.router.add_get("/", index)
    app.router.add_get("/health", health)
    app.router.add_get("/api/snapshot", snapshot)
    app.router.add_get("/api/events", events)
    app.router.add_static("/static/", STATIC_DIR, follow_symlinks=False)
    return app


async def index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})


async def health(request: web.Request) -> web.Response:
    snapshots = request.app[ROOM]
    status = snapshots.feed_status() if snapshots.feed_status else {"state": "none"}
    return web.json_response({"ok": True, "feed": status})


async def snapshot(request: web.Request) -> web.Response:
    _, body = request.app[ROOM].current()
    return web.Response(body=body, content_type="application/json", headers={"Cache-Control": "no-store"})


async def events(request: web.Request) -> web.StreamResponse:
    snapshots, closing, settings = request.app[ROOM], request.app[CLOSING], request.app[SETTINGS]
    response = web.StreamResponse(headers={
        "Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no",
    })
    await response.prepare(request)
    sent_tag, last_write = None, 0.0
    try:
        while not closing.is_set():
            tag, body = snapshots.current()
            if tag != sent_tag:
                await response.write(b"event: snapshot\ndata: " + body + b"\n\n")
                sent_tag, last_write = tag, time.monotonic()
            elif time.monotonic() - last_write >= KEEPALIVE_S:
                await response.write(b": keep-alive\n\n")
                last_write = time.monotonic()
            try:
                await asyncio.wait_for(closing.wait(), settings["push_interval_s"])
            except asyncio.TimeoutError:
                pass
    except ConnectionResetError:
        pass  # the page went away
    return response
