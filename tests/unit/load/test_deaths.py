"""Telling a worker's death from the exits a run causes on purpose, as plain functions."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from apps.load.deaths import (
    EXIT_MEANINGS, GroupWatch, PoolWatch, UrlWatch, Watchdog, death, death_lines, exit_meaning, lost_members, silent_too_long,
    unexpected_exit,
)
from apps.supervise import WorkerPool, WorkerProcess
from lockstock.settings import Settings

KILL, TERM = signal.SIGKILL, signal.SIGTERM


@pytest.mark.parametrize("status, deliberate, dead", [
    (None, None, False),  # still running
    (None, KILL, False),
    (70, None, True),  # could not announce a batch: exited on its own
    (0, None, True),  # a worker is never supposed to end by itself, not even cleanly
    (-KILL, None, True),  # SIGKILLed by someone else (the OOM killer, an operator)
    (-KILL, KILL, False),  # the chaos plan's own kill
    (70, KILL, True),  # died on its own just before the plan's kill landed
    (-TERM, TERM, False), (0, TERM, False), (1, TERM, False),  # asked to stop: however it ends
])
def test_only_exits_the_run_did_not_cause_are_deaths(status, deliberate, dead):
    assert unexpected_exit(status, deliberate) is dead


def test_the_engine_s_own_exit_status_has_its_meaning():
    from streams.pipeline import EXIT_UNANNOUNCED  # the meanings must follow the engine if it changes

    assert "could not announce a batch" in EXIT_MEANINGS[EXIT_UNANNOUNCED]


def test_exit_meanings_name_the_cause():
    assert "could not announce a batch" in exit_meaning(70) and "70" in exit_meaning(70)
    assert "SIGKILL" in exit_meaning(-9) and "SIGSEGV" in exit_meaning(-11)
    assert "exit status 3" in exit_meaning(3)


def test_silence_counts_only_once_it_lasts():
    assert not silent_too_long(100.0, 105.0, grace_s=10)
    assert silent_too_long(100.0, 110.0, grace_s=10)


@pytest.mark.parametrize("state, lost", [
    ("ConsumerGroupState.STABLE", {"b"}), ("EMPTY", {"a", "b"}),
    ("ConsumerGroupState.PREPARING_REBALANCE", set()), ("COMPLETING_REBALANCE", set()),
])
def test_members_are_lost_only_from_a_settled_group(state, lost):
    now = [] if "EMPTY" in state else ["a", "c"]
    assert lost_members({"a", "b"}, now, state) == lost


def test_death_lines_carry_the_log_tail_or_say_where_it_is():
    ours = death("pid 7", exit_meaning(70), pid=7, exit_status=70, log="/l/worker-0.log", log_tail="one\ntwo")
    theirs = death("http://w:6066", "stopped answering")
    text = "\n".join(death_lines([ours, theirs]))
    assert "FAILURE: worker pid 7 died" in text and "/l/worker-0.log" in text and "    one\n    two" in text
    assert "FAILURE: worker http://w:6066 died" in text and "its log is wherever it was started" in text


def test_url_watch_reports_a_worker_silent_past_the_grace_once():
    clock = [0.0]
    watch = UrlWatch("http://127.0.0.1:9", grace_s=5, clock=lambda: clock[0])  # port 9: nothing answers
    assert watch.check() == []
    clock[0] = 6.0
    [gone] = watch.check()
    assert gone["worker"] == "http://127.0.0.1:9" and "stopped answering" in gone["how"] and gone["pid"] is None
    assert watch.check() == []


class FakeAdmin:
    """describe_consumer_groups as confluent-kafka answers it: a future per group."""

    def __init__(self, answers):
        self.answers = answers

    def describe_consumer_groups(self, groups, request_timeout):
        state, members = self.answers.pop(0)

        class Member:
            def __init__(self, member_id):
                self.member_id, self.client_id, self.host = member_id, "faust", "/10.0.0.1"

        class Description:
            pass

        description = Description()
        description.state, description.members = state, [Member(m) for m in members]

        class Future:
            def result(self, timeout):
                return description

        return {groups[0]: Future()}


def test_group_watch_needs_a_member_missing_twice_from_a_settled_group():
    admin = FakeAdmin([("STABLE", ["a"]), ("PREPARING_REBALANCE", []), ("STABLE", ["a"]), ("STABLE", ["a"]), ("STABLE", [])])
    watch = GroupWatch(admin, "app", {"a": "faust@/10.0.0.1", "b": "faust@/10.0.0.2"})
    assert watch.check() == []  # b missing once: maybe a passing rebalance
    assert watch.check() == []  # mid-rebalance: not judged, and the suspicion is dropped
    assert watch.check() == []
    [gone] = watch.check()
    assert gone["worker"] == "faust@/10.0.0.2" and "left consumer group app" in gone["how"]
    assert watch.check() == []  # a missing once now; b not reported again


def test_pool_watch_reports_a_child_that_exits_by_itself_with_its_log(tmp_path: Path):
    pool = WorkerPool(Settings(bootstrap_servers="127.0.0.1:9"), tmp_path)
    log = tmp_path / "worker-0.log"
    log.write_text("\n".join(f"line {n}" for n in range(100)) + "\nCRITICAL could not announce a batch of stock\n")
    ended = WorkerProcess(pool.settings, log, process=subprocess.Popen([sys.executable, "-c", "raise SystemExit(70)"]))
    killed = WorkerProcess(pool.settings, tmp_path / "worker-1.log",
                           process=subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]))
    pool.started += [ended, killed]
    ended.process.wait(10)
    killed.kill()  # on purpose: not a death
    with Watchdog([PoolWatch(pool)], interval_s=0.05) as watchdog:
        pass
    [dead] = watchdog.died
    assert dead["pid"] == ended.pid and dead["exit_status"] == 70 and "could not announce a batch" in dead["how"]
    tail = dead["log_tail"].splitlines()
    assert len(tail) == 40 and tail[-1] == "CRITICAL could not announce a batch of stock"
    assert PoolWatch(pool).check()[0]["pid"] == ended.pid and len(watchdog.check_now()) == 1  # once per watch
