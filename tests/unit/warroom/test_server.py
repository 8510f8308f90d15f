"""The war room's HTTP side without Kafka: page and assets served locally, the snapshot as JSON,
server-sent events that push news, and a clear error when the port is taken."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import threading
from typing import Any, Awaitable, Callable

import pytest
from aiohttp.test_utils import TestClient, TestServer

from apps.warroom.model import WarRoom
from apps.warroom.server import STATIC_DIR, create_app
from apps.warroom.service import WarRoomService
from lockstock.catalog import load_catalog
from lockstock.errors import LockstockError
from lockstock.kafka import Kafka
from lockstock.settings import Settings

EVENT_TIMEOUT_S = 5.0


def serve(test: Callable[[TestClient, WarRoom, threading.Lock], Awaitable[Any]]) -> Any:
    room, lock = WarRoom(load_catalog(None)), threading.Lock()

    async def run() -> Any:
        app = create_app(room, lock, lambda: {"state": "live", "error": None}, push_interval_s=0.05, refresh_s=60)
        async with TestClient(TestServer(app)) as client:
            return await test(client, room, lock)

    return asyncio.run(run())


async def next_event(stream) -> tuple[str, dict]:
    """The next complete server-sent event (keep-alive comments skipped), bounded in time."""
    name, data = None, b""
    while True:
        line = await asyncio.wait_for(stream.readline(), EVENT_TIMEOUT_S)
        if line.startswith(b"event: "):
            name = line[7:].strip().decode()
        elif line.startswith(b"data: "):
            data += line[6:].strip()
        elif line == b"\n" and name:
            return name, json.loads(data)


def test_the_page_and_its_assets_come_from_this_server_only():
    async def test(client, room, lock):
        page = await client.get("/")
        html = await page.text()
        assert page.status == 200 and "war room" in html
        references = re.findall(r'(?:src|href)="([^"]+)"', html)
        assert references and all(r.startswith("/static/") or r.startswith("data:") for r in references), references
        for path in references:
            if path.startswith("/static/"):
                asset = await client.get(path)
                assert asset.status == 200, path
        for name in ("app.js", "style.css"):
            text = (STATIC_DIR / name).read_text()
            assert not re.search(r"https?://", text), f"{name} refers to another host"
        chart = await client.get("/static/vendor/chart.umd.min.js")
        assert chart.status == 200 and "Chart.js v4" in await chart.text()
        assert (STATIC_DIR / "vendor" / "chart.js.LICENSE.md").read_text().startswith("The MIT License")
        assert (await client.get("/static/../server.py")).status in (403, 404)

    serve(test)


def test_snapshot_and_health_answer_json():
    async def test(client, room, lock):
        with lock:
            room.on_alert({"alert_id": "a1", "sku": "S", "type": "FLEX_TRANSFER", "message": "moved", "raised_at": 1})
        snapshot = await (await client.get("/api/snapshot")).json()
        assert snapshot["alerts"][0]["alert_id"] == "a1" and snapshot["feed"]["state"] == "live"
        health = await client.get("/health")
        assert health.status == 200 and (await health.json())["feed"]["state"] == "live"

    serve(test)


def test_events_push_the_snapshot_and_then_each_change():
    async def test(client, room, lock):
        response = await client.get("/api/events")
        assert response.status == 200 and response.headers["Content-Type"].startswith("text/event-stream")
        name, first = await next_event(response.content)
        assert name == "snapshot" and first["alerts"] == []
        with lock:
            room.on_alert({"alert_id": "a1", "sku": "S", "type": "REPLENISHMENT", "message": "low", "raised_at": 1})
        name, second = await next_event(response.content)
        assert second["version"] > first["version"] and second["alerts"][0]["message"] == "low"
        response.close()

    serve(test)


def test_a_taken_port_is_a_clear_error():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        kafka = Kafka(Settings(bootstrap_servers="127.0.0.1:9"), profile=None, codec=None)  # never connected
        service = WarRoomService(kafka, load_catalog(None), "127.0.0.1", port)
        with pytest.raises(LockstockError, match=f"cannot serve the war room on 127.0.0.1:{port}"):
            service.start()
        service.stop()
        assert not service.feed.is_alive()
