"""The chaos schedule of `lockstock loadtest --chaos`, as a pure plan: when to SIGKILL which
worker, how long it stays down, and when the order producer crashes and is replaced.

Kills land at random points of the traffic (seeded: the same seed replays the same schedule),
never while another kill's worker is still down, so with two workers every kill means one
rebalance onto the survivor and one back when the killed worker returns.

On a cluster the run started itself the plan also SIGKILLs brokers (apps.load.brokerchaos),
before any worker: a broker lost mid-burst and restarted, then a worker killed."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

from apps.load.brokerchaos import (
    BROKER_KILL, BROKER_RESTART, MIN_INSYNC_REPLICAS, ClusterChaos, ensure_min_isr, plan_broker_kills,
    worker_kills_from,
)
from apps.load.deaths import PoolWatch, Watchdog
from apps.load.profile import LoadProfile
from apps.load.run import LoadRun
from apps.load.webhooks import WebhookOrders, new_secret, start_gateway
from apps.supervise import ServiceProcess, WorkerPool
from lockstock.broker.apache import ApacheKafka
from lockstock.broker.embedded import free_port
from lockstock.errors import SettingsError
from lockstock.kafka import Kafka
from lockstock.topics import changelog_topics

KILL, RESTART, PRODUCER_RESTART = "kill", "restart", "producer-restart"
MIN_DOWN_S, MAX_DOWN_S = 0.5, 4.0


@dataclass(frozen=True)
class ChaosEvent:
    at_s: float  # seconds after the traffic started
    action: str  # KILL, RESTART or PRODUCER_RESTART
    worker: int = -1  # worker index for KILL / RESTART


def plan_chaos(duration_s: float, workers: int, kills: int, seed: int,
               producer_restarts: int = 1, after_s: float = 0.0) -> list[ChaosEvent]:
    """Kill/restart pairs spread from ``after_s`` (after broker kills, apps.load.brokerchaos)
    to 80 % of the traffic (the rest lets the group settle while orders still flow) plus producer
    crashes; ordered by time."""
    if workers < 1:
        raise SettingsError(f"chaos needs at least one worker, got {workers}")
    if kills < 0 or producer_restarts < 0:
        raise SettingsError("chaos kills and producer restarts must be >= 0")
    rng = random.Random(seed)
    window = duration_s * 0.8
    if after_s < 0:
        raise SettingsError(f"worker kills cannot start before the traffic, got {after_s:g} s")
    if kills and after_s and after_s >= window - MIN_DOWN_S * kills:
        raise SettingsError(f"--duration {duration_s:g} is too short: {kills} worker kill(s) must fit between "
                            f"{after_s:g} s (after the broker kills) and {window:g} s (80 % of the traffic)")
    events: list[ChaosEvent] = []
    if kills:
        slot = (window - after_s) / kills  # one kill per slot keeps downtimes from overlapping
        for n in range(kills):
            down = min(MAX_DOWN_S, max(MIN_DOWN_S, slot * 0.5)) * rng.uniform(0.5, 1.0)
            at = after_s + n * slot + rng.uniform(0.1, 0.9) * max(0.0, slot - down)
            worker = rng.randrange(workers)
            events += [ChaosEvent(round(at, 3), KILL, worker), ChaosEvent(round(at + down, 3), RESTART, worker)]
    for _ in range(producer_restarts):
        events.append(ChaosEvent(round(rng.uniform(0.1, 0.9) * window, 3), PRODUCER_RESTART))
    return sorted(events, key=lambda e: (e.at_s, e.action != RESTART))


def describe(event: Any) -> str:
    """One event of a plan, as the progress line shows it."""
    if event.action == BROKER_KILL:
        return f"{event.action} (leader of orders.placed #{event.partition})@{event.at_s:.1f}s"
    if event.action == BROKER_RESTART:
        return f"{event.action}@{event.at_s:.1f}s"
    return f"{event.action}{'' if event.worker < 0 else ' #' + str(event.worker)}@{event.at_s:.1f}s"


def delayed(events: list[Any], delay_s: float) -> list[Any]:
    """The same events ``delay_s`` later: a kill held back (the cluster was not whole yet) takes
    the rest of the plan with it, so each downtime keeps its planned length and order."""
    return [replace(e, at_s=round(e.at_s + delay_s, 3)) for e in events]


class ChaosRun:
    """A load run with the plan's kills, restarts and producer crashes carried out on workers
    this process started (and alone stops, by PID). Afterwards it checks what the seller is
    promised: every order decided and never flipped, nothing oversold, and the engine's state,
    asked of whichever worker owns each SKU, holding exactly what the decisions say. A worker
    that exits other than by the plan's SIGKILL (on its own, or again after its restart) ends
    the run as a death (apps.load.deaths); the state is then not compared.

    Given ``cluster`` (an ApacheKafka this process started), broker kills come first and worker
    kills only once the cluster is whole again (apps.load.brokerchaos). Given a
    ``webhook_share``, that share of the orders goes through a gateway the run starts, and every
    delivery it answered 2xx must reach the broker (apps.load.webhooks)."""

    def __init__(self, kafka: Kafka, profile: LoadProfile, settle_s: float, workers: int, kills: int,
                 seed: int, log_dir: Path, progress: Callable[[str], None] = print,
                 cluster: ApacheKafka | None = None, broker_kills: int = 0, webhook_share: float = 0.0) -> None:
        self.kafka, self.progress, self.log_dir, self.seed = kafka, progress, log_dir, seed
        if broker_kills and cluster is None:
            raise SettingsError("broker kills need a cluster this run started itself")
        broker_plan = plan_broker_kills(profile.duration_s, broker_kills, kafka.settings.partitions, seed)
        self.plan: list[Any] = broker_plan + plan_chaos(profile.duration_s, workers, kills, seed,
                                                        after_s=worker_kills_from(broker_plan))
        self.plan.sort(key=lambda e: e.at_s)  # stable: a kill still precedes its restart at the same time
        self.pending = list(self.plan)
        self.held_back = False  # the next kill waits for the cluster to be whole
        self.done: list[dict[str, Any]] = []
        self.pool = WorkerPool(kafka.settings, log_dir)
        self.state_root = kafka.settings.data_dir / "chaos-state"
        self.ports = [free_port() for _ in range(workers)]
        self.slots: list[Any] = [None] * workers
        self.brokers = ClusterChaos(cluster, kafka.admin(), kafka.topics.orders_placed, progress) if cluster else None
        self.webhook_share = webhook_share
        self.webhooks: WebhookOrders | None = None
        self.gateway: ServiceProcess | None = None
        # The gateway is watched like a worker: PoolWatch reads any list of started processes.
        self.services = WorkerPool(kafka.settings, log_dir)
        self.watchdog = Watchdog([PoolWatch(self.pool), PoolWatch(self.services), *([self.brokers] if self.brokers else [])])
        self.load = LoadRun(kafka, profile, settle_s, on_tick=self._tick, watchdog=self.watchdog, divert=self._divert)

    def _start(self, slot: int) -> None:
        self.slots[slot] = self.pool.start(data_dir=self.state_root / f"worker-{slot}", web_port=self.ports[slot])

    def _divert(self, order: dict, twice: bool) -> dict | None:
        return self.webhooks.divert(order, twice) if self.webhooks else None

    def run(self) -> dict[str, Any]:
        cluster_view: dict[str, Any] | None = None
        webhooks: dict[str, Any] | None = None
        try:
            for slot in range(len(self.slots)):
                self._start(slot)
            for worker in self.slots:
                worker.wait_ready()
            if self.brokers:
                cluster_view = self._cluster_view()
            if self.webhook_share:
                self._start_gateway()
            self.progress(f"{len(self.slots)} worker(s) ready; chaos plan: " + ", ".join(map(describe, self.plan)))
            with self.watchdog:
                report = self.load.run(before_settle=self._all_up)
                died = bool(report["workers_died"])
                mismatches = None if died else self._state_mismatches()
                stuck = self._consumers() if report["undecided"] else {}
                if self.webhooks and not died:
                    webhooks = self.webhooks.report(self.kafka, self.load.tally)
            report["workers_died"] = self.watchdog.died  # and any death found by the last look
        finally:
            if self.webhooks:
                self.webhooks.finish(0)
            self.services.stop_all()
            self.pool.stop_all()
        report["chaos"] = {"events": self.done, "workers": len(self.slots), "app_id": self.kafka.settings.app_id,
                           "topic_prefix": self.kafka.settings.topic_prefix, "producer_resent": self.load.resent,
                           "state_mismatches": mismatches, "consumers_when_stuck": stuck,
                           "broker_events": self.brokers.events if self.brokers else [], "cluster": cluster_view}
        if self.webhook_share:
            report["webhooks"] = webhooks
        return report

    def _cluster_view(self) -> dict[str, Any]:
        """The cluster as the run uses it; min.insync.replicas checked (and set where the
        broker's default falls short) on every topic of the run, changelogs included."""
        settings, cluster = self.kafka.settings, self.brokers.cluster
        topics = [name for name, _ in self.kafka.topics] + list(changelog_topics(settings.app_id))
        existing = set(self.brokers.admin.list_topics(timeout=15).topics)
        wanted = MIN_INSYNC_REPLICAS if cluster.nodes >= 3 else 1  # what one lost node leaves standing
        min_isr = ensure_min_isr(self.brokers.admin, [t for t in topics if t in existing], wanted)
        self.progress(f"replication factor {settings.replication_factor}, min.insync.replicas "
                      f"{sorted(set(min_isr.values()))} on {len(min_isr)} topic(s)")
        return {"nodes": cluster.nodes, "bootstrap": cluster.bootstrap, "pids": cluster.pids,
                "replication_factor": settings.replication_factor, "min_insync_replicas": min_isr,
                "logs": str(cluster.log_dir)}

    def _start_gateway(self) -> None:
        secret = new_secret()
        self.gateway = start_gateway(self.kafka.settings, self.log_dir, secret)
        self.services.started.append(self.gateway)
        run_number = int(self.load.run_id[2:], 16)  # Shopify order ids are numbers: unique per run
        self.webhooks = WebhookOrders(self.webhook_share, self.seed, run_number, self.kafka.settings.catalog(),
                                      self.gateway.url, secret)
        self.progress(f"gateway ready at {self.gateway.url} (pid {self.gateway.pid}): "
                      f"{self.webhook_share:.0%} of the orders arrive as signed Shopify webhooks")

    def _consumers(self) -> dict[str, Any]:
        """Each worker's /consumer/ view: where it stands when orders are left undecided."""
        views = {}
        for slot, worker in enumerate(self.slots):
            try:
                views[f"worker-{slot}"] = worker.get_json("/consumer/", timeout=5)[1]
            except (OSError, ValueError) as exc:
                views[f"worker-{slot}"] = {"error": str(exc)}
        return views

    def _tick(self, t: float) -> None:
        while self.pending and self.pending[0].at_s <= t:
            event = self.pending[0]
            if event.action in (KILL, BROKER_KILL) and self.brokers and not self.brokers.whole:
                self.held_back = True  # one failure at a time: wait for the node to rejoin
                return
            if self.held_back:
                self.held_back = False
                self.pending = delayed(self.pending, t - event.at_s)
            self.pending.pop(0)
            self._carry_out(event, t)

    def _carry_out(self, event: Any, t: float) -> None:
        if event.action == BROKER_KILL:
            self.brokers.kill(event, t)
            return
        if event.action == BROKER_RESTART:
            self.brokers.restart(t)
            return
        if event.action == KILL:
            self.slots[event.worker].kill()
        elif event.action == RESTART:
            self._start(event.worker)  # not awaited: traffic keeps flowing while it recovers
        else:
            resent = self.load.restart_producer()
            self.progress(f"t={t:5.1f}s  producer crashed and replaced; {resent} unacknowledged order(s) re-sent")
        if event.action != PRODUCER_RESTART:
            self.progress(f"t={t:5.1f}s  {event.action} worker #{event.worker}")
        self.done.append({"at_s": round(t, 2), "action": event.action, "worker": event.worker})

    def _all_up(self) -> None:
        """The traffic is over: bring back what the plan left down (a kill still held back is
        dropped), wait for the cluster and every worker, then for the webhooks' last answers."""
        if self.brokers:
            self.brokers.restart(None, wait=True)
        for event in self.pending:
            if event.action == RESTART and self.slots[event.worker].exit_status is not None:
                self._start(event.worker)
                self.done.append({"at_s": None, "action": RESTART, "worker": event.worker})
            elif event.action in (KILL, BROKER_KILL):
                self.progress(f"{describe(event)} not carried out: the traffic ended first")
        self.pending = []
        for worker in self.slots:
            try:
                worker.wait_ready()
            except AssertionError:
                if worker.exit_status is None:  # alive but never ready: not a death, a hang
                    raise
                return  # it died: the watchdog names it and the run stops
        if self.webhooks and not self.webhooks.finish(self.load.settle_s):
            self.progress("some webhooks were still unanswered when the run stopped waiting")

    def _state_mismatches(self, timeout_s: float = 60.0) -> list[dict[str, Any]]:
        """Per SKU: units locked and orders holding them, as the owning worker serves them, against
        the decisions. Compensating releases may still be landing, so retry until the deadline."""
        held, holders = self.load.tally.holdings()
        skus = self.load.maker.sku_names
        deadline = time.monotonic() + timeout_s
        while True:
            mismatches = []
            for sku in skus:
                try:
                    status, body = self.slots[0].get_json(f"/stock/{sku}/", timeout=10)
                except (OSError, ValueError) as exc:
                    status, body = 0, {"error": str(exc)}
                served = (body.get("locked", 0) + body.get("paid", 0), body.get("open_reservations", 0)) \
                    if status == 200 else None
                if served != (held[sku], holders[sku]):
                    mismatches.append({"sku": sku, "decisions": [held[sku], holders[sku]],
                                       "engine": list(served) if served else body})
            if not mismatches or time.monotonic() >= deadline:
                return mismatches
            time.sleep(0.5)
