"""The chaos schedule of `lockstock loadtest --chaos`, as a pure plan: when to SIGKILL which
worker, how long it stays down, and when the order producer crashes and is replaced.

Kills land at random points of the traffic (seeded: the same seed replays the same schedule),
never while another kill's worker is still down, so with two workers every kill means one
rebalance onto the survivor and one back when the killed worker returns."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from lockstock.broker.embedded import free_port
from lockstock.errors import SettingsError
from lockstock.kafka import Kafka
from lockstock.load.deaths import PoolWatch, Watchdog
from lockstock.load.profile import LoadProfile
from lockstock.load.run import LoadRun
from lockstock.supervise import WorkerPool

KILL, RESTART, PRODUCER_RESTART = "kill", "restart", "producer-restart"
MIN_DOWN_S, MAX_DOWN_S = 0.5, 4.0


@dataclass(frozen=True)
class ChaosEvent:
    at_s: float  # seconds after the traffic started
    action: str  # KILL, RESTART or PRODUCER_RESTART
    worker: int = -1  # worker index for KILL / RESTART


def plan_chaos(duration_s: float, workers: int, kills: int, seed: int,
               producer_restarts: int = 1) -> list[ChaosEvent]:
    """Kill/restart pairs spread over the first 80 % of the traffic (the rest lets the group
    settle while orders still flow) plus producer crashes; ordered by time."""
    if workers < 1:
        raise SettingsError(f"chaos needs at least one worker, got {workers}")
    if kills < 0 or producer_restarts < 0:
        raise SettingsError("chaos kills and producer restarts must be >= 0")
    rng = random.Random(seed)
    window = duration_s * 0.8
    events: list[ChaosEvent] = []
    if kills:
        slot = window / kills  # one kill per slot keeps downtimes from overlapping
        for n in range(kills):
            down = min(MAX_DOWN_S, max(MIN_DOWN_S, slot * 0.5)) * rng.uniform(0.5, 1.0)
            at = n * slot + rng.uniform(0.1, 0.9) * max(0.0, slot - down)
            worker = rng.randrange(workers)
            events += [ChaosEvent(round(at, 3), KILL, worker), ChaosEvent(round(at + down, 3), RESTART, worker)]
    for _ in range(producer_restarts):
        events.append(ChaosEvent(round(rng.uniform(0.1, 0.9) * window, 3), PRODUCER_RESTART))
    return sorted(events, key=lambda e: (e.at_s, e.action != RESTART))


class ChaosRun:
    """A load run with the plan's kills, restarts and producer crashes carried out on workers
    this process started (and alone stops, by PID). Afterwards it checks what the seller is
    promised: every order decided and never flipped, nothing oversold, and the engine's state,
    asked of whichever worker owns each SKU, holding exactly what the decisions say. A worker
    that exits other than by the plan's SIGKILL (on its own, or again after its restart) ends
    the run as a death (lockstock.load.deaths); the state is then not compared."""

    def __init__(self, kafka: Kafka, profile: LoadProfile, settle_s: float, workers: int, kills: int,
                 seed: int, log_dir: Path, progress: Callable[[str], None] = print) -> None:
        self.kafka, self.progress = kafka, progress
        self.plan = plan_chaos(profile.duration_s, workers, kills, seed)
        self.pending = list(self.plan)
        self.done: list[dict[str, Any]] = []
        self.pool = WorkerPool(kafka.settings, log_dir)
        self.state_root = kafka.settings.data_dir / "chaos-state"
        self.ports = [free_port() for _ in range(workers)]
        self.slots: list[Any] = [None] * workers
        self.watchdog = Watchdog([PoolWatch(self.pool)])
        self.load = LoadRun(kafka, profile, settle_s, on_tick=self._tick, watchdog=self.watchdog)

    def _start(self, slot: int) -> None:
        self.slots[slot] = self.pool.start(data_dir=self.state_root / f"worker-{slot}", web_port=self.ports[slot])

    def run(self) -> dict[str, Any]:
        try:
            for slot in range(len(self.slots)):
                self._start(slot)
            for worker in self.slots:
                worker.wait_ready()
            self.progress(f"{len(self.slots)} worker(s) ready; chaos plan: " +
                          ", ".join(f"{e.action}{'' if e.worker < 0 else ' #' + str(e.worker)}@{e.at_s:.1f}s" for e in self.plan))
            with self.watchdog:
                report = self.load.run(before_settle=self._all_up)
                died = bool(report["workers_died"])
                mismatches = None if died else self._state_mismatches()
                stuck = self._consumers() if report["undecided"] else {}
            report["workers_died"] = self.watchdog.died  # and any death found by the last look
        finally:
            self.pool.stop_all()
        report["chaos"] = {"events": self.done, "workers": len(self.slots), "app_id": self.kafka.settings.app_id,
                           "topic_prefix": self.kafka.settings.topic_prefix, "producer_resent": self.load.resent,
                           "state_mismatches": mismatches, "consumers_when_stuck": stuck}
        return report

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
            event = self.pending.pop(0)
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
        """The traffic is over: carry out what is left of the plan, and wait for every worker."""
        for event in self.pending:
            if event.action == RESTART:
                self._start(event.worker)
                self.done.append({"at_s": None, "action": RESTART, "worker": event.worker})
        self.pending = []
        for worker in self.slots:
            try:
                worker.wait_ready()
            except AssertionError:
                if worker.exit_status is None:  # alive but never ready: not a death, a hang
                    raise
                return  # it died: the watchdog names it and the run stops

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
