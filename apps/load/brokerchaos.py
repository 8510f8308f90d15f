"""The broker side of `lockstock loadtest --chaos --apache-nodes 3 --broker-kills N`: an Apache
Kafka cluster the run starts itself, and SIGKILLs of its nodes while the orders flow.

Only a cluster of its own: a SIGKILL is aimed at a PID, and the only broker PIDs lockstock may
kill are those of JVMs it started. A cluster someone else runs is never touched.

The plan is pure and seeded, like the worker plan (apps.load.chaos.plan_chaos): each kill
lands early in the traffic, mid-burst, on the leader of one orders.placed partition (so the kill
moves a leadership the orders depend on), and the node is restarted a few seconds later. Worker
kills are planned after the last restart (``worker_kills_from``) and carried out only once the
cluster is whole again: one failure at a time, a broker first, then a worker."""

from __future__ import annotations

import contextlib
import json
import random
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from apps.load.deaths import LOG_TAIL_LINES, death, exit_meaning
from lockstock.broker.apache import ApacheKafka
from lockstock.errors import BrokerError, SettingsError

BROKER_KILL, BROKER_RESTART = "broker-kill", "broker-restart"
BROKER_WINDOW = (0.1, 0.3)  # share of the traffic broker kills land in: mid-burst, with room for worker kills after
MIN_DOWN_S, MAX_DOWN_S = 3.0, 6.0
# A restarted node first waits out its old broker session, then boots and catches up: worker
# kills are planned no sooner than this after the last restart (and wait for it if it is late).
REJOIN_ALLOWANCE_S = 8.0
IN_SYNC_TIMEOUT_S = 60.0  # a rejoined node not in sync by then: the plan goes on (the report says so)
# The run's own cluster replaces a lost leader after 6 s instead of Kafka's 9 s: the stall the
# kill causes stays inside the burst instead of outlasting it.
CLUSTER_OVERRIDES = {"broker.session.timeout.ms": "6000"}
MIN_INSYNC_REPLICAS = 2
PIDS_FILE = "cluster-pids.json"  # node id -> PID, kept current: a harness that had to kill us can stop them


@dataclass(frozen=True)
class BrokerEvent:
    at_s: float  # seconds after the traffic started
    action: str  # BROKER_KILL or BROKER_RESTART
    partition: int  # the orders.placed partition whose leader is killed (its node is known only at run time)


def plan_broker_kills(duration_s: float, kills: int, partitions: int, seed: int) -> list[BrokerEvent]:
    """Kill/restart pairs in BROKER_WINDOW of the traffic, one slot each; ordered by time."""
    if kills < 0:
        raise SettingsError(f"broker kills must be >= 0, got {kills}")
    if not kills:
        return []
    if partitions < 1:
        raise SettingsError(f"broker kills need at least one partition to aim at, got {partitions}")
    start, end = (share * duration_s for share in BROKER_WINDOW)
    slot = (end - start) / kills
    if slot < MIN_DOWN_S:
        raise SettingsError(f"--duration {duration_s:g} is too short for {kills} broker kill(s): each needs "
                            f"{MIN_DOWN_S / (BROKER_WINDOW[1] - BROKER_WINDOW[0]):g} s of traffic")
    rng = random.Random(f"broker-kills-{seed}")  # its own stream: the worker plan of a seed stays as it was
    events: list[BrokerEvent] = []
    for n in range(kills):
        down = rng.uniform(MIN_DOWN_S, min(MAX_DOWN_S, slot))
        at = start + n * slot + rng.uniform(0.0, slot - down)
        partition = rng.randrange(partitions)
        events += [BrokerEvent(round(at, 3), BROKER_KILL, partition),
                   BrokerEvent(round(at + down, 3), BROKER_RESTART, partition)]
    return events


def worker_kills_from(broker_plan: Iterable[BrokerEvent]) -> float:
    """When worker kills may start: after the last broker restart has had time to rejoin."""
    restarts = [e.at_s for e in broker_plan if e.action == BROKER_RESTART]
    return round(max(restarts) + REJOIN_ALLOWANCE_S, 3) if restarts else 0.0


def leader_or_fallback(leaders: dict[int, int], partition: int, nodes: int) -> int:
    """The node leading ``partition``; when metadata has no leader for it, a node picked by the
    partition number, so that the plan still kills someone."""
    leader = leaders.get(partition, -1)
    return leader if 1 <= leader <= nodes else partition % nodes + 1


def fully_replicated(partitions: Iterable[tuple[int, int]]) -> bool:
    """Every (replicas, in-sync replicas) count equal: no partition is still catching up."""
    return all(isrs >= replicas for replicas, isrs in partitions)


def needs_min_isr(configured: dict[str, int], wanted: int) -> list[str]:
    """Topics whose min.insync.replicas is below ``wanted`` (to be set as topic config)."""
    return sorted(topic for topic, value in configured.items() if value < wanted)


@contextlib.contextmanager
def own_cluster(nodes: int, work_dir: Path, log_dir: Path,
                progress: Callable[[str], None] = print) -> Iterator[ApacheKafka]:
    """An Apache Kafka cluster for one run: started here, stopped here by PID (also on an error
    or Ctrl-C), its storage deleted after; its logs stay in ``log_dir``."""
    cluster = ApacheKafka(nodes=nodes, work_dir=work_dir, log_dir=log_dir, progress=progress,
                          overrides=CLUSTER_OVERRIDES)
    try:
        cluster.start()
        record_pids(cluster)
        progress(f"Apache Kafka: {nodes} node(s) on {cluster.bootstrap} (" +
                 ", ".join(f"node {n}: pid {pid}" for n, pid in cluster.pids.items()) + f"); logs in {log_dir}")
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(work_dir, ignore_errors=True)
        progress("Apache Kafka stopped")


def record_pids(cluster: ApacheKafka) -> None:
    cluster.log_dir.mkdir(parents=True, exist_ok=True)
    (cluster.log_dir / PIDS_FILE).write_text(json.dumps(cluster.pids) + "\n")


class ClusterChaos:
    """Carries out broker kills and restarts on a cluster this process started. A restart runs on
    a thread of its own (a node takes seconds to rejoin; the orders keep flowing meanwhile). Also
    a watch (apps.load.deaths): a node that exits without a planned kill, or a restart that
    fails, is a death that ends the run."""

    def __init__(self, cluster: ApacheKafka, admin: Any, topic: str,
                 progress: Callable[[str], None] = print) -> None:
        self.cluster, self.admin, self.topic, self.progress = cluster, admin, topic, progress
        self.events: list[dict[str, Any]] = []
        self.down: int | None = None  # the node killed and not yet back in the cluster
        self.failures: list[dict[str, Any]] = []
        self.reported: set[int] = set()  # PIDs already named as deaths
        self._restart: threading.Thread | None = None
        self._lock = threading.Lock()
        self._started = time.monotonic()

    @property
    def whole(self) -> bool:
        return self.down is None

    def leaders(self) -> dict[int, int]:
        try:
            partitions = self.admin.list_topics(self.topic, timeout=5).topics[self.topic].partitions
        except Exception:  # metadata unavailable right now: the fallback picks a node
            return {}
        return {p: meta.leader for p, meta in partitions.items()}

    def kill(self, event: BrokerEvent, t: float) -> None:
        node = leader_or_fallback(self.leaders(), event.partition, self.cluster.nodes)
        pid = self.cluster.pids.get(node)
        self.cluster.kill_node(node)
        self.down = node
        self._record(t, BROKER_KILL, node, pid=pid, partition=event.partition)

    def restart(self, t: float | None, wait: bool = False) -> None:
        """Start the killed node again (if one is down); returns at once unless ``wait``."""
        node = self.down
        if node is not None and self._restart is None:
            self._record(t, BROKER_RESTART, node)
            self._restart = threading.Thread(target=self._rejoin, args=(node, time.monotonic()),
                                             name=f"broker-{node}-restart", daemon=True)
            self._restart.start()
        if wait:
            self.wait_whole()

    def _rejoin(self, node: int, asked_at: float) -> None:
        try:
            self.cluster.restart_node(node)
        except BrokerError as exc:
            with self._lock:
                self.failures.append(death(f"Apache Kafka node {node}", f"did not rejoin after its restart: {exc}",
                                           log=str(self.cluster.log_path(node)),
                                           log_tail=self.cluster.log_tail(node, LOG_TAIL_LINES)))
        else:
            record_pids(self.cluster)
            caught_up = self._wait_in_sync(time.monotonic() + IN_SYNC_TIMEOUT_S)
            self._record(None, "broker-rejoined", node, pid=self.cluster.pids.get(node),
                         after_s=round(time.monotonic() - asked_at, 1), in_sync=caught_up)
            self.down = None
        finally:
            self._restart = None

    def _wait_in_sync(self, deadline: float) -> bool:
        """Until the restarted node is back in every partition's ISR: another kill before that
        would leave some partitions below min.insync.replicas, which is two failures, not one."""
        while time.monotonic() < deadline:
            try:
                topics = self.admin.list_topics(timeout=5).topics.values()
                if fully_replicated((len(p.replicas), len(p.isrs)) for t in topics for p in t.partitions.values()):
                    return True
            except Exception:  # metadata unavailable for a moment: ask again
                pass
            time.sleep(0.5)
        return False

    def wait_whole(self, timeout_s: float = 150.0) -> bool:
        thread = self._restart
        if thread is not None:
            thread.join(timeout_s)
        return self.whole

    def check(self) -> list[dict[str, Any]]:
        """Nodes that exited on their own, and restarts that failed (each reported once)."""
        found = []
        with self._lock:
            found += self.failures
            self.failures = []
        for node, process in list(self.cluster.processes.items()):
            status = process.poll()
            if status is None or process.pid in self.reported:
                continue
            self.reported.add(process.pid)
            found.append(death(f"Apache Kafka node {node}", exit_meaning(status), pid=process.pid, exit_status=status,
                               log=str(self.cluster.log_path(node)), log_tail=self.cluster.log_tail(node, LOG_TAIL_LINES)))
        return found

    def _record(self, t: float | None, action: str, node: int, **detail: Any) -> None:
        since_start = round(time.monotonic() - self._started, 1)
        at = "" if t is None else f"t={t:5.1f}s  "
        self.progress(f"{at}{action} node {node}" + "".join(f" {k}={v}" for k, v in detail.items() if v is not None))
        self.events.append({"at_s": None if t is None else round(t, 2), "action": action, "node": node,
                            "run_s": since_start, **detail})


def topic_min_isr(admin: Any, topics: Iterable[str], timeout: float = 15.0) -> dict[str, int]:
    """min.insync.replicas in effect per topic (its own config, else the broker's default)."""
    from confluent_kafka.admin import ConfigResource

    resources = [ConfigResource(ConfigResource.Type.TOPIC, name) for name in topics]
    if not resources:
        return {}
    found = {}
    for resource, future in admin.describe_configs(resources, request_timeout=timeout).items():
        entries = future.result(timeout)
        found[resource.name] = int(entries["min.insync.replicas"].value)
    return found


def ensure_min_isr(admin: Any, topics: Iterable[str], wanted: int = MIN_INSYNC_REPLICAS,
                   timeout: float = 15.0) -> dict[str, int]:
    """Every topic's min.insync.replicas at least ``wanted``: set as topic config where the broker
    default gives less (Faust creates its changelogs with defaults). Returns what is in effect."""
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource

    configured = topic_min_isr(admin, topics, timeout)
    low = needs_min_isr(configured, wanted)
    if low:
        entry = ConfigEntry("min.insync.replicas", str(wanted), incremental_operation=AlterConfigOpType.SET)
        resources = [ConfigResource(ConfigResource.Type.TOPIC, name, incremental_configs=[entry]) for name in low]
        for future in admin.incremental_alter_configs(resources, request_timeout=timeout).values():
            future.result(timeout)
        configured = topic_min_isr(admin, configured, timeout)
    short = needs_min_isr(configured, wanted)
    if short:
        raise BrokerError(f"min.insync.replicas is below {wanted} on {', '.join(short)} after setting it")
    return configured
