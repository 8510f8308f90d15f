"""Test harness: worker subprocesses (started and stopped by PID), producing orders and
commands through the project's own factory and codec, and reading topics with deadlines."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from lockstock.broker.embedded import free_port
from lockstock.kafka import Kafka
from lockstock.settings import Settings

READY_TIMEOUT_S = 60.0


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class WorkerProcess:
    settings: Settings
    log_path: Path
    process: subprocess.Popen | None = None
    started_at: float = 0.0
    ready_after_s: float | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.settings.web_port}"

    def start(self) -> "WorkerProcess":
        env = {**os.environ, **self.settings.as_env(), "PYTHONUNBUFFERED": "1"}
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        self.started_at = time.monotonic()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "lockstock", "worker", "--loglevel", "info"],
            env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
        log.close()
        return self

    def get_json(self, path: str, timeout: float = 2.0) -> tuple[int, Any]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=timeout) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                raise AssertionError(f"worker exited early; log tail:\n{self.log_tail()}")
            try:
                status, body = self.get_json("/ready/", timeout=1.0)
                if status == 200 and body.get("ready"):
                    self.ready_after_s = time.monotonic() - self.started_at
                    return self.ready_after_s
            except (OSError, ValueError):
                pass
            time.sleep(0.1)
        raise AssertionError(f"worker not ready within {timeout}s; log tail:\n{self.log_tail()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks, no final commit, no flush."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self, timeout: float = 30.0) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


@dataclass
class WorkerPool:
    settings: Settings
    log_dir: Path
    started: list[WorkerProcess] = field(default_factory=list)

    def start(self, *, data_dir: Path | None = None, web_port: int | None = None) -> WorkerProcess:
        index = len(self.started)
        settings = self.settings.with_(
            data_dir=data_dir or self.settings.data_dir,
            web_port=web_port or (self.settings.web_port if index == 0 else free_port()),
        )
        worker = WorkerProcess(settings, self.log_dir / f"worker-{index}.log").start()
        self.started.append(worker)
        return worker

    def stop_all(self) -> None:
        for worker in self.started:
            worker.stop()


class Client:
    """Produce and read lockstock topics like an outside service would."""

    def __init__(self, kafka: Kafka) -> None:
        self.kafka = kafka
        self.codec = kafka.codec
        self.topics = kafka.topics
        self.producer = kafka.producer()

    def send(self, topic: str, key: str, record: str, value: dict) -> None:
        self.producer.produce(topic, key=key.encode(), value=self.codec.encode(record, value, topic=topic))
        self.producer.poll(0)

    def send_raw(self, topic: str, key: str, value: bytes) -> None:
        self.producer.produce(topic, key=key.encode(), value=value)

    def flush(self) -> None:
        remaining = self.producer.flush(30)
        assert remaining == 0, f"{remaining} records not delivered"

    def set_stock(self, sku: str, total: int) -> None:
        self.send(self.topics.inventory_commands, sku, "InventoryCommand", {
            "command_id": uuid.uuid4().hex, "sku": sku, "type": "SET_STOCK", "issued_at": now_ms(), "total": total,
        })

    def place_order(self, order_id: str, lines: Iterable[tuple[str, int]], *, channel: str = "tiktok-us",
                    buyer: str = "buyer-1", region: str = "US") -> dict:
        order = {
            "order_id": order_id, "channel": channel, "buyer_id": buyer, "ship_to_region": region,
            "placed_at": now_ms(), "lines": [{"sku": s, "qty": q} for s, q in lines],
        }
        self.send(self.topics.orders_placed, order_id, "OrderPlaced", order)
        return order

    def read_until(self, topics: list[str], done: Callable[[list[tuple[str, Any]]], bool], timeout: float = 60.0) -> list[tuple[str, Any]]:
        """Read topics from the start until done(records) or the deadline; (topic, Decoded) pairs."""
        consumer = self.kafka.consumer()
        consumer.subscribe(topics)
        records: list[tuple[str, Any]] = []
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                for message in consumer.consume(500, 0.5):
                    if message.error() is None:
                        records.append((message.topic(), self.codec.decode(message.value(), topic=message.topic())))
                if done(records):
                    return records
        finally:
            consumer.close()
        raise AssertionError(f"condition not met within {timeout}s after {len(records)} records")

    def decisions(self, expected_orders: set[str], timeout: float = 60.0) -> dict[str, list[dict]]:
        """Every decision per order id, waiting until each expected order has at least one."""
        def all_decided(records: list) -> bool:
            return expected_orders <= {d.value["order_id"] for _, d in records}

        records = self.read_until([self.topics.orders_decisions], all_decided, timeout)
        by_order: dict[str, list[dict]] = {}
        for _, decoded in records:
            by_order.setdefault(decoded.value["order_id"], []).append(decoded.value)
        return by_order
