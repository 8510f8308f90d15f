"""Workers that die during a load run (loadtest, chaos, bench): found while the run goes on, so the
run stops and says so, with the worker's last log lines, instead of waiting out its settle time
and reporting the orders the dead worker never decided as "undecided".

Three watches, each judging by a pure function below:
- ``PoolWatch``: workers this process started (apps.supervise). Any exit it did not cause is
  a death; a deliberate SIGKILL (the chaos plan) or a stop is not. A restarted worker that exits
  again is a second death (a crash loop shows as one entry per incarnation, each with its log).
- ``UrlWatch``: a worker someone else runs, through its web view ``/ready/``: silent (no HTTP
  answer at all; a 503 while it rebalances is an answer) for ``grace_s`` in a row = gone. Works
  on every broker, within seconds, but sees only the worker at that address.
- ``GroupWatch``: every worker of the app's consumer group, by membership: a member present at the
  start and missing from a settled group twice in a row = gone. It sees workers on any host, but
  only after the broker's session timeout, and only on a broker that reports members (Apache
  Kafka does; the embedded tansu broker answers DescribeGroups with none, so it is skipped there).

A ``Watchdog`` polls its watches on a thread of its own, so a slow answer never holds up the
traffic, and collects the deaths in ``died`` (JSON-ready dicts)."""

from __future__ import annotations

import signal
import threading
import time
from typing import Any, Callable, Iterable, Protocol

from apps.supervise import WorkerPool, fetch_json
from lockstock.errors import SettingsError

LOG_TAIL_LINES = 40
UNANSWERED_GRACE_S = 10.0  # a loaded worker's event loop may stall a few seconds; a dead one never answers
SETTLED_GROUP_STATES = ("STABLE", "EMPTY")  # mid-rebalance member lists are partial: not judged

# Exit statuses a lockstock worker gives itself, and what they mean to an operator.
EXIT_MEANINGS = {
    1: "the worker stopped on an error",
    70: "could not announce a batch: the broker refused its outputs or changelog (streams/pipeline.py EXIT_UNANNOUNCED)",
}


def unexpected_exit(exit_status: int | None, deliberate_signal: int | None) -> bool:
    """Whether a worker's exit is a death: it exited, and not from the signal sent on purpose. A
    worker asked to stop (SIGTERM) may end any way it likes; one SIGKILLed on purpose that shows
    another status had died on its own before the signal landed."""
    if exit_status is None:
        return False
    if deliberate_signal is None:
        return True
    if deliberate_signal == signal.SIGKILL:
        return exit_status != -signal.SIGKILL
    return False


def exit_meaning(exit_status: int) -> str:
    if exit_status < 0:
        try:
            name = signal.Signals(-exit_status).name
        except ValueError:
            name = f"signal {-exit_status}"
        return f"killed by {name} (not by this run)"
    meaning = EXIT_MEANINGS.get(exit_status, "exited on its own")
    return f"exit status {exit_status}: {meaning}"


def silent_too_long(last_answer_at: float, now: float, grace_s: float = UNANSWERED_GRACE_S) -> bool:
    return now - last_answer_at >= grace_s


def lost_members(at_start: Iterable[str], now: Iterable[str], state: str) -> set[str]:
    """Members of the group at the start that a settled group no longer holds."""
    if state.upper().rsplit(".", 1)[-1] not in SETTLED_GROUP_STATES:
        return set()
    return set(at_start) - set(now)


def death(worker: str, how: str, *, pid: int | None = None, exit_status: int | None = None,
          log: str | None = None, log_tail: str | None = None) -> dict[str, Any]:
    return {"worker": worker, "pid": pid, "exit_status": exit_status, "how": how, "log": log, "log_tail": log_tail}


def death_lines(died: list[dict[str, Any]]) -> list[str]:
    """What a person reads under the report's table: each death, then its log tail."""
    lines = []
    for entry in died:
        lines.append(f"FAILURE: worker {entry['worker']} died during the run ({entry['how']})")
        if entry.get("log_tail") is not None:
            lines.append(f"--- last {LOG_TAIL_LINES} lines of {entry['log']} ---")
            lines += [f"    {line}" for line in entry["log_tail"].splitlines()]
            lines.append("---")
        else:
            lines.append("    (not started by this run: its log is wherever it was started)")
    return lines


class Watch(Protocol):
    def check(self) -> list[dict[str, Any]]: ...


class PoolWatch:
    """Workers this process started: poll each process, report each unexpected exit once."""

    def __init__(self, pool: WorkerPool) -> None:
        self.pool = pool
        self.reported: set[int] = set()

    def check(self) -> list[dict[str, Any]]:
        found = []
        for index, worker in enumerate(list(self.pool.started)):
            status = worker.exit_status
            if index in self.reported or not unexpected_exit(status, worker.deliberate_signal):
                continue
            self.reported.add(index)
            found.append(death(f"pid {worker.pid}", exit_meaning(status), pid=worker.pid, exit_status=status,
                               log=str(worker.log_path), log_tail=worker.log_tail(LOG_TAIL_LINES)))
        return found


class UrlWatch:
    """A worker someone else started, by its web view: gone once silent for ``grace_s``."""

    def __init__(self, url: str, grace_s: float = UNANSWERED_GRACE_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.url, self.grace_s, self.clock = url.rstrip("/"), grace_s, clock
        self.last_answer_at = clock()
        self.gone = False

    def check(self) -> list[dict[str, Any]]:
        if self.gone:
            return []
        try:
            fetch_json(self.url + "/ready/", timeout=2.0)
            self.last_answer_at = self.clock()
        except ValueError:  # something answered, if not with JSON
            self.last_answer_at = self.clock()
        except OSError:
            if silent_too_long(self.last_answer_at, self.clock(), self.grace_s):
                self.gone = True
                return [death(self.url, f"{self.url}/ready/ stopped answering for {self.grace_s:g} s")]
        return []


class GroupWatch:
    """Every worker of a consumer group, by membership (needs a broker that reports members)."""

    def __init__(self, admin: Any, group: str, at_start: dict[str, str]) -> None:
        self.admin, self.group = admin, group
        self.at_start = at_start  # member id -> client id @ host
        self.suspects: set[str] = set()
        self.reported: set[str] = set()

    def check(self) -> list[dict[str, Any]]:
        try:
            state, members = describe_group(self.admin, self.group)
        except Exception:  # the broker is busy or restarting: judge next time
            return []
        lost = lost_members(set(self.at_start) - self.reported, members, state)
        confirmed, self.suspects = lost & self.suspects, lost  # twice in a row: not a passing rebalance
        self.reported |= confirmed
        return [death(self.at_start[m], f"left consumer group {self.group} (member {m})") for m in sorted(confirmed)]


def describe_group(admin: Any, group: str, timeout: float = 5.0) -> tuple[str, dict[str, str]]:
    """(state, member id -> client id @ host) of a consumer group."""
    description = admin.describe_consumer_groups([group], request_timeout=timeout)[group].result(timeout)
    members = {m.member_id: f"{m.client_id}@{m.host}" for m in description.members}
    return str(description.state), members


class Watchdog:
    """Polls its watches on a thread of its own; ``died`` collects what they found, in order."""

    def __init__(self, watches: Iterable[Watch], interval_s: float = 0.5) -> None:
        self.watches = list(watches)
        self.interval_s = interval_s
        self.died: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def check_now(self) -> list[dict[str, Any]]:
        """One round of every watch (also the last word before the workers are stopped)."""
        with self._lock:
            for watch in self.watches:
                self.died.extend(watch.check())
            return list(self.died)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.check_now()

    def __enter__(self) -> "Watchdog":
        if self.watches:
            self._thread = threading.Thread(target=self._loop, name="worker-watchdog", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        self.check_now()


def external_watches(kafka: Any, worker_url: str | None, default_url: str,
                     say: Callable[[str], None] = print) -> list[Watch]:
    """Watches over workers this run did not start: the worker at ``worker_url`` (else at the
    address `stock show` reads, if one answers there now) and the app's consumer group, if the
    broker reports its members. Says what it watches, or that it cannot. An explicit
    ``worker_url`` nobody answers at is a SettingsError: the run could not watch it."""
    watches: list[Watch] = []
    url = (worker_url or default_url).rstrip("/")
    try:
        fetch_json(url + "/ready/", timeout=2.0)
        watches.append(UrlWatch(url))
    except ValueError:
        watches.append(UrlWatch(url))
    except OSError as exc:
        if worker_url:
            raise SettingsError(f"--worker-url: no worker answers at {url} ({getattr(exc, 'reason', exc)})") from None
    admin, group = kafka.admin(), kafka.settings.app_id
    try:
        _, members = describe_group(admin, group)
    except Exception:
        members = {}
    if members:
        watches.append(GroupWatch(admin, group, members))
    watched = ([f"the worker at {url}"] if any(isinstance(w, UrlWatch) for w in watches) else []) + \
              ([f"consumer group {group} ({len(members)} member(s))"] if members else [])
    if watched:
        say(f"watching {' and '.join(watched)} for a worker that dies")
    else:
        say(f"cannot watch the workers: none answers at {url} (pass --worker-url) and the broker reports no "
            f"members of {group}; a worker that dies shows only as undecided orders")
    return watches
