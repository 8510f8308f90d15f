"""Run lock-engine workers as child processes that this process started and alone stops,
by PID: used by `lockstock demo`, the load test's chaos mode and the integration tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lockstock.broker.embedded import free_port
from lockstock.processes import terminate
from lockstock.settings import Settings

READY_TIMEOUT_S = 60.0


def fetch_json(url: str, timeout: float = 2.0) -> tuple[int, Any]:
    """GET a worker web view: (HTTP status, JSON body), error statuses included. OSError when no
    worker answers; ValueError when the answer is not JSON."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


@dataclass
class ServiceProcess:
    """A `lockstock <args>` child process with an HTTP health endpoint, stopped by its PID."""

    settings: Settings
    log_path: Path
    args: tuple[str, ...] = ()
    port: int = 0
    ready_path: str = "/health"
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen | None = None
    started_at: float = 0.0
    ready_after_s: float | None = None
    # The signal this object sent on purpose (kill: SIGKILL, stop: SIGTERM): an exit it caused is
    # not a death (apps.load.deaths tells the two apart).
    deliberate_signal: int | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "lockstock", *self.args]

    def start(self) -> "ServiceProcess":
        env = {**os.environ, **self.settings.as_env(), **self.env, "PYTHONUNBUFFERED": "1"}
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        self.started_at = time.monotonic()
        self.process = subprocess.Popen(self.command(), env=env, stdout=log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL)
        log.close()
        return self

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    @property
    def exit_status(self) -> int | None:
        """None while it runs; else its exit status (-N: killed by signal N)."""
        return self.process.poll() if self.process else None

    def get_json(self, path: str, timeout: float = 2.0) -> tuple[int, Any]:
        return fetch_json(self.url + path, timeout)

    def is_ready(self) -> bool:
        status, _ = self.get_json(self.ready_path, timeout=1.0)
        return status == 200

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> float:
        name = " ".join(self.args[:1]) or "process"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                raise AssertionError(f"{name} exited early; log tail:\n{self.log_tail()}")
            try:
                if self.is_ready():
                    self.ready_after_s = time.monotonic() - self.started_at
                    return self.ready_after_s
            except (OSError, ValueError):
                pass
            time.sleep(0.1)
        raise AssertionError(f"{name} not ready within {timeout}s; log tail:\n{self.log_tail()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks, no final commit, no flush."""
        if self.process and self.process.poll() is None:
            self.deliberate_signal = signal.SIGKILL  # before the signal: a watcher may see the exit at once
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self, timeout: float = 30.0) -> None:
        if self.process and self.process.poll() is None:
            self.deliberate_signal = signal.SIGTERM
            terminate([self.process], timeout)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


@dataclass
class WorkerProcess(ServiceProcess):
    """A lock-engine worker; ready once its /ready/ view says so."""

    def __post_init__(self) -> None:
        self.port = self.settings.web_port
        self.args = ("worker", "--loglevel", os.environ.get("LOCKSTOCK_WORKER_LOGLEVEL", "info"))

    def is_ready(self) -> bool:
        status, body = self.get_json("/ready/", timeout=1.0)
        return status == 200 and bool(body.get("ready"))


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
