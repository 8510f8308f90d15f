"""The files an Apache Kafka node runs with, built as plain data (tested without a JVM).

Every node is a combined KRaft broker + controller on 127.0.0.1. The quorum is static
(``controller.quorum.voters``): its members live in the config, not in the metadata log, so a
data dir formatted once can be started again on other ports (a free port is picked per run).
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

from lockstock.broker.embedded import free_port
from lockstock.broker.profile import TANSU_MARKER

HOST = "127.0.0.1"


@dataclass(frozen=True)
class NodePorts:
    client: int  # PLAINTEXT: clients and replication between brokers
    controller: int  # CONTROLLER: the KRaft quorum


def node_ids(nodes: int) -> range:
    return range(1, nodes + 1)


def pick_ports(nodes: int, first_client: int = 0, host: str = HOST) -> list[NodePorts]:
    """Distinct free ports: a client and a controller port per node (``first_client`` if given)."""
    ports = [first_client] if first_client else []
    while len(ports) < nodes * 2:  # the kernel may hand out a just-released port twice
        port = free_port(host)
        if port not in ports:
            ports.append(port)
    clients, controllers = ports[:nodes], ports[nodes:]
    return [NodePorts(client, controller) for client, controller in zip(clients, controllers)]


def quorum_voters(ports: Sequence[NodePorts], host: str = HOST) -> str:
    return ",".join(f"{node_id}@{host}:{p.controller}" for node_id, p in zip(node_ids(len(ports)), ports))


def cluster_defaults(nodes: int) -> dict[str, str]:
    """Replication that survives one lost node on three, and what a single node can satisfy."""
    replicas = "3" if nodes >= 3 else "1"
    min_isr = "2" if nodes >= 3 else "1"
    return {
        "default.replication.factor": replicas,
        "min.insync.replicas": min_isr,
        "offsets.topic.replication.factor": replicas,
        "transaction.state.log.replication.factor": replicas,
        "transaction.state.log.min.isr": min_isr,
        # Share groups (KIP-932) are on in 4.x; their state topic would otherwise want 3 replicas.
        "share.coordinator.state.topic.replication.factor": replicas,
        "share.coordinator.state.topic.min.isr": min_isr,
        # A first consumer group would otherwise wait 3 s for more members before assigning.
        "group.initial.rebalance.delay.ms": "0",
    }


def server_properties(node_id: int, ports: Sequence[NodePorts], data_dir: Path, host: str = HOST) -> dict[str, str]:
    """server.properties of one node of a cluster of ``len(ports)`` combined nodes."""
    own = ports[node_id - 1]
    return {
        "process.roles": "broker,controller",
        "node.id": str(node_id),
        "controller.quorum.voters": quorum_voters(ports, host),
        "listeners": f"PLAINTEXT://{host}:{own.client},CONTROLLER://{host}:{own.controller}",
        "advertised.listeners": f"PLAINTEXT://{host}:{own.client}",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "inter.broker.listener.name": "PLAINTEXT",
        "controller.listener.names": "CONTROLLER",
        "log.dirs": str(data_dir),
        **cluster_defaults(len(ports)),
    }


def render_properties(properties: Mapping[str, str]) -> str:
    """Java .properties text; only backslashes need escaping in our values (paths)."""
    lines = ["# Written by lockstock (lockstock/broker/apache/config.py); rewritten at every start."]
    lines += [f"{key}={value.replace(chr(92), chr(92) * 2)}" for key, value in properties.items()]
    return "\n".join(lines) + "\n"


def new_cluster_id() -> str:
    """A Kafka cluster id (base64url of a random UUID, 22 chars), as ``kafka-storage random-uuid``.

    It must not contain the marker profile.detect() reads as the embedded broker, and, as in
    Kafka's Uuid.randomUuid(), must not start with "-" (it would read as a command-line flag).
    """
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if TANSU_MARKER not in text.lower() and not text.startswith("-"):
            return text


# Console only: each node's stdout and stderr go to its log file (JVM errors included).
LOG4J2_PROPERTIES = """\
status = warn
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.stdout.ref = STDOUT
# One line per partition and replica on every topic creation: too much for a test log.
logger.state.name = state.change.logger
logger.state.level = warn
logger.request.name = kafka.request.logger
logger.request.level = warn
"""


def java_command(java: str, jars: Path, log4j: Path, main: str, *args: str, heap: str = "512m",
                 short_lived: bool = False) -> list[str]:
    """A Kafka JVM sized for a shared 2-core machine: a bounded heap and the serial collector
    (no parallel GC threads competing with the workers under test)."""
    options = [f"-Xmx{heap}", "-XX:+UseSerialGC", "-XX:+ExitOnOutOfMemoryError", "-Djava.awt.headless=true"]
    if short_lived:
        options.append("-XX:TieredStopAtLevel=1")  # a one-shot tool: JIT warm-up would cost more than it saves
    return [java, *options, f"-Dlog4j2.configurationFile={log4j}", "-cp", f"{jars}/*", main, *args]
