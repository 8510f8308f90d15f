"""Stopping the child processes lockstock starts (brokers, registry, workers), by PID only."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from typing import Iterable


def terminate(processes: Iterable[subprocess.Popen], timeout: float) -> None:
    """SIGTERM every running one at once (each shuts down cleanly in parallel), then SIGKILL what
    is still running when ``timeout`` is up."""
    running = [p for p in processes if p.poll() is None]
    for process in running:
        process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for process in running:
        try:
            process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def alive(pid: int) -> bool:
    """Whether a process with this PID exists (a zombie still counts until reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
