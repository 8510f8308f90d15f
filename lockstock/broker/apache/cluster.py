"""Apache Kafka (KRaft) nodes as local JVM processes that this object started and alone stops."""

from __future__ import annotations

import atexit
import json
import logging
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import IO, Iterable, Mapping

from lockstock.broker.apache.config import (
    HOST, LOG4J2_PROPERTIES, NodePorts, java_command, new_cluster_id, node_ids, pick_ports, render_properties,
    server_properties,
)
from lockstock.broker.apache.jars import KAFKA_VERSION, Progress, resolve_jars
from lockstock.broker.embedded import _quiet, port_in_use
from lockstock.errors import BrokerError
from lockstock.processes import terminate

logger = logging.getLogger(__name__)

READY_TIMEOUT = 90.0
STOP_TIMEOUT = 20.0
FORMAT_TIMEOUT = 60.0
CLUSTER_FILE = "cluster.json"  # what the data dir was formatted for: node count and cluster id

# Nodes run in their own sessions and outlive us: a caller that forgets stop() (an exception
# outside a with block) must not leave 512 MB JVMs behind on a shared machine.
_started: set["ApacheKafka"] = set()


@atexit.register
def _stop_forgotten_clusters() -> None:
    for cluster in list(_started):
        cluster.stop()


class ApacheKafka:
    """``nodes`` (1 or 3) combined broker+controller nodes on 127.0.0.1.

    Storage lives in ``work_dir`` (a temporary dir, removed at stop, when not given). A dir
    formatted before is started again as it is (topics and data kept), never reformatted.
    Node ids are Kafka's: 1..nodes (as in metadata, partition leaders and replicas).
    ``overrides`` are extra server.properties for every node (e.g. a shorter
    broker.session.timeout.ms, so that a killed leader is replaced sooner than Kafka's 9 s).
    """

    host = HOST

    def __init__(self, nodes: int = 1, work_dir: Path | None = None, log_dir: Path | None = None,
                 port: int = 0, heap: str = "512m", progress: Progress | None = None,
                 overrides: Mapping[str, str] | None = None) -> None:
        if nodes not in (1, 3):
            raise BrokerError(f"an Apache Kafka cluster here has 1 or 3 nodes, not {nodes}")
        self.nodes = nodes
        self._owns_work_dir = work_dir is None
        self.work_dir = Path(work_dir) if work_dir else Path(tempfile.mkdtemp(prefix="lockstock-kafka-"))
        self.log_dir = Path(log_dir) if log_dir else self.work_dir / "logs"
        self.requested_port = port
        self.heap = heap
        self.overrides = dict(overrides or {})
        self.progress = progress or logger.info
        self.ports: list[NodePorts] = []
        self.processes: dict[int, subprocess.Popen] = {}
        self.cluster_id = ""
        self._logs: dict[int, IO] = {}
        self._jars: Path | None = None
        self._java = ""

    # -- what callers read -------------------------------------------------------------
    @property
    def bootstrap(self) -> str:
        return ",".join(f"{self.host}:{p.client}" for p in self.ports)

    @property
    def pid(self) -> int | None:
        """The first node's PID (the shape of EmbeddedBroker); ``pids`` has them all."""
        process = self.processes.get(1)
        return process.pid if process else None

    @property
    def pids(self) -> dict[int, int]:
        return {node_id: process.pid for node_id, process in self.processes.items()}

    def node_bootstrap(self, node_id: int) -> str:
        return f"{self.host}:{self.ports[node_id - 1].client}"

    def log_path(self, node_id: int) -> Path:
        return self.log_dir / f"node-{node_id}.log"

    def log_tail(self, node_id: int, lines: int = 25) -> str:
        try:
            text = self.log_path(node_id).read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    # -- lifecycle ---------------------------------------------------------------------
    def start(self, timeout: float = READY_TIMEOUT) -> "ApacheKafka":
        try:
            self._jars = resolve_jars(progress=self.progress)
            self._java = java_binary()
            self.cluster_id = self._cluster_id()
            _started.add(self)
            # A free port can be taken between our probe and the JVM's bind: then try new ones.
            attempts = 1 if self.requested_port else 2
            for attempt in range(attempts):
                self.ports = self._pick_ports()
                self._write_configs()
                self._format_storage()
                started = time.monotonic()
                for node_id in node_ids(self.nodes):
                    self._spawn(node_id)
                try:
                    self._wait_for_brokers(self.bootstrap, time.monotonic() + timeout)
                except BrokerError as exc:
                    if attempt == attempts - 1 or "Address already in use" not in str(exc):
                        raise
                    self._stop_processes(STOP_TIMEOUT)
                    continue
                self.progress(f"Apache Kafka {KAFKA_VERSION}: {self.nodes} node(s) ready on {self.bootstrap} "
                              f"in {time.monotonic() - started:.1f}s")
                return self
        except BaseException:
            self.stop()
            raise
        raise AssertionError("unreachable")

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        self._stop_processes(timeout)
        _started.discard(self)
        if self._owns_work_dir:
            shutil.rmtree(self.work_dir, ignore_errors=True)

    def kill_node(self, node_id: int, timeout: float = 10.0) -> None:
        """SIGKILL one node, as a crashed machine: no controlled shutdown, no leader hand-over."""
        process = self.processes.pop(node_id, None)
        if process is None:
            raise BrokerError(f"node {node_id} is not running")
        process.kill()
        process.wait(timeout)
        self._close_log(node_id)

    def restart_node(self, node_id: int, timeout: float = READY_TIMEOUT) -> None:
        """Start a stopped node again on its ports and storage; return once it has rejoined
        (it answers on its own port and the cluster counts every node again)."""
        if node_id in self.processes and self.processes[node_id].poll() is None:
            raise BrokerError(f"node {node_id} is still running")
        self._spawn(node_id)
        try:
            self._wait_for_brokers(self.node_bootstrap(node_id), time.monotonic() + timeout)
        except BrokerError:
            self.kill_node(node_id)
            raise

    def __enter__(self) -> "ApacheKafka":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the steps ---------------------------------------------------------------------
    def _cluster_id(self) -> str:
        return recorded_cluster_id(self.work_dir, self.nodes)

    def _pick_ports(self) -> list[NodePorts]:
        if self.requested_port and port_in_use(self.host, self.requested_port):
            raise BrokerError(f"port {self.requested_port} on {self.host} is already in use")
        return pick_ports(self.nodes, self.requested_port, self.host)

    def _node_dir(self, node_id: int) -> Path:
        return self.work_dir / f"node-{node_id}"

    def _write_configs(self) -> None:
        (self.work_dir / "log4j2.properties").write_text(LOG4J2_PROPERTIES)
        for node_id in node_ids(self.nodes):
            node_dir = self._node_dir(node_id)
            node_dir.mkdir(parents=True, exist_ok=True)
            properties = {**server_properties(node_id, self.ports, node_dir / "data"), **self.overrides}
            (node_dir / "server.properties").write_text(render_properties(properties))

    def _format_storage(self) -> None:
        """kafka-storage format, in parallel, for the nodes never formatted (meta.properties absent)."""
        todo = [n for n in node_ids(self.nodes) if not (self._node_dir(n) / "data" / "meta.properties").exists()]
        if not todo:
            return
        self.progress(f"formatting KRaft storage of {len(todo)} node(s) in {self.work_dir} (cluster id {self.cluster_id})")
        running = {
            node_id: subprocess.Popen(
                self._java_command("kafka.tools.StorageTool", "format", "--cluster-id", self.cluster_id,
                                   "--config", str(self._node_dir(node_id) / "server.properties"),
                                   "--ignore-formatted", heap="256m", short_lived=True),
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            )
            for node_id in todo
        }
        failures = []
        try:
            for node_id, process in running.items():
                try:
                    output, _ = process.communicate(timeout=FORMAT_TIMEOUT)
                except subprocess.TimeoutExpired:
                    process.kill()
                    output, _ = process.communicate()
                if process.returncode != 0:
                    tail = "\n".join(output.decode(errors="replace").splitlines()[-15:])
                    failures.append(f"node {node_id} (exit {process.returncode}):\n{tail}")
        finally:  # interrupted (Ctrl-C): leave no tool running
            for process in running.values():
                if process.poll() is None:
                    process.kill()
                    process.wait()
        if failures:
            raise BrokerError("kafka-storage format failed for " + "\n".join(failures))

    def _java_command(self, main: str, *args: str, heap: str | None = None, short_lived: bool = False) -> list[str]:
        assert self._jars is not None
        return java_command(self._java, self._jars, self.work_dir / "log4j2.properties", main, *args,
                            heap=heap or self.heap, short_lived=short_lived)

    def _spawn(self, node_id: int) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._close_log(node_id)
        log = self._logs[node_id] = open(self.log_path(node_id), "ab")
        self.processes[node_id] = subprocess.Popen(
            self._java_command("kafka.Kafka", str(self._node_dir(node_id) / "server.properties")),
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C in a terminal reaches us, and we stop the nodes in order
        )

    def _wait_for_brokers(self, bootstrap: str, deadline: float) -> None:
        """Until every node is an unfenced broker in the metadata that ``bootstrap`` serves."""
        from confluent_kafka.admin import AdminClient

        admin = AdminClient({"bootstrap.servers": bootstrap, "logger": _quiet})
        expected = set(node_ids(self.nodes))
        seen: set[int] = set()
        while True:
            self._raise_if_exited(self.processes)
            try:
                metadata = admin.list_topics(timeout=max(0.1, min(2.0, deadline - time.monotonic())))
                seen = set(metadata.brokers)
                if seen >= expected:
                    return
            except Exception:
                pass
            if time.monotonic() >= deadline:
                break
            time.sleep(0.2)
        tails = "\n".join(f"--- node {n} ({self.log_path(n)}):\n{self.log_tail(n)}" for n in sorted(self.processes))
        raise BrokerError(f"Apache Kafka on {bootstrap} did not show brokers {sorted(expected)} in time "
                          f"(saw {sorted(seen) or 'none'}):\n{tails}")

    def _raise_if_exited(self, processes: dict[int, subprocess.Popen]) -> None:
        for node_id, process in processes.items():
            if process.poll() is not None:
                raise BrokerError(f"Apache Kafka node {node_id} exited with code {process.returncode} "
                                  f"({self.log_path(node_id)}):\n{self.log_tail(node_id)}")

    def _stop_processes(self, timeout: float) -> None:
        """SIGTERM every node at once (a controlled shutdown each), SIGKILL what outlives ``timeout``."""
        processes, self.processes = self.processes, {}
        terminate(processes.values(), timeout)
        for node_id in list(self._logs):
            self._close_log(node_id)

    def _close_log(self, node_id: int) -> None:
        log = self._logs.pop(node_id, None)
        if log:
            log.close()


def recorded_cluster_id(work_dir: Path, nodes: int) -> str:
    """The id ``work_dir`` was formatted with, or a new one recorded there; a dir holds one shape."""
    work_dir.mkdir(parents=True, exist_ok=True)
    described = work_dir / CLUSTER_FILE
    if described.exists():
        recorded = json.loads(described.read_text())
        if recorded["nodes"] != nodes:
            raise BrokerError(f"{work_dir} holds a {recorded['nodes']}-node cluster, not {nodes}: "
                              "use another data dir, or delete this one to start empty")
        return recorded["cluster_id"]
    cluster_id = new_cluster_id()
    described.write_text(json.dumps({"nodes": nodes, "cluster_id": cluster_id, "kafka": KAFKA_VERSION}) + "\n")
    return cluster_id


def java_binary() -> str:
    java_home = os.environ.get("JAVA_HOME", "").strip()
    candidates: Iterable[str | None] = (
        str(Path(java_home) / "bin" / "java") if java_home else None,
        shutil.which("java"),
    )
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise BrokerError("Apache Kafka needs Java 17 or newer (`java` on PATH or JAVA_HOME); "
                      "Debian: apt-get install openjdk-17-jre-headless")
