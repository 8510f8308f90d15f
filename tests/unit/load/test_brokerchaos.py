import os
import subprocess
import sys

import pytest

from apps.cli.loadtest import cluster_choice
from apps.load.brokerchaos import (
    BROKER_KILL, BROKER_RESTART, BROKER_WINDOW, MAX_DOWN_S, MIN_DOWN_S, REJOIN_ALLOWANCE_S, BrokerEvent,
    fully_replicated, leader_or_fallback, needs_min_isr, plan_broker_kills, worker_kills_from,
)
from apps.load.chaos import KILL, ChaosEvent, delayed, plan_chaos
from lockstock.errors import SettingsError
from lockstock.settings import Settings


@pytest.mark.parametrize("duration,kills,partitions", [(40, 1, 4), (60, 2, 4), (120, 3, 12), (40, 1, 1)])
def test_broker_kills_land_mid_burst_each_restarted_seconds_later(duration, kills, partitions):
    plan = plan_broker_kills(duration, kills, partitions, seed=5)
    assert [e.action for e in plan] == [BROKER_KILL, BROKER_RESTART] * kills  # one node down at a time
    for kill, restart in zip(plan[::2], plan[1::2]):
        assert BROKER_WINDOW[0] * duration <= kill.at_s < restart.at_s <= BROKER_WINDOW[1] * duration + 1e-6
        assert MIN_DOWN_S - 1e-3 <= restart.at_s - kill.at_s <= MAX_DOWN_S + 1e-3
        assert kill.partition == restart.partition and 0 <= kill.partition < partitions
    assert [e.at_s for e in plan] == sorted(e.at_s for e in plan)


def test_broker_plan_replays_per_seed_and_leaves_the_worker_plan_of_a_seed_as_it_was():
    assert plan_broker_kills(40, 2, 4, seed=1) == plan_broker_kills(40, 2, 4, seed=1)
    assert plan_broker_kills(40, 2, 4, seed=1) != plan_broker_kills(40, 2, 4, seed=2)
    assert plan_chaos(40, 2, 3, seed=1, after_s=0.0) == plan_chaos(40, 2, 3, seed=1)


def test_worker_kills_come_after_the_last_broker_restart_has_had_time_to_rejoin():
    brokers = plan_broker_kills(40, 1, 4, seed=5)
    after = worker_kills_from(brokers)
    assert after == pytest.approx(brokers[-1].at_s + REJOIN_ALLOWANCE_S)
    workers = plan_chaos(40, 2, 2, seed=5, after_s=after)
    kills = [e for e in workers if e.action == KILL]
    assert len(kills) == 2 and all(after <= e.at_s < 40 * 0.8 for e in kills)
    assert worker_kills_from([]) == 0.0


@pytest.mark.parametrize("call", [
    lambda: plan_broker_kills(40, -1, 4, seed=1),
    lambda: plan_broker_kills(40, 1, 0, seed=1),
    lambda: plan_broker_kills(10, 3, 4, seed=1),  # no room for three restarts in 2 s of window
    lambda: plan_chaos(20, 2, 2, seed=1, after_s=15.0),  # worker kills would fall past 80 % of the traffic
    lambda: plan_chaos(20, 2, 1, seed=1, after_s=-1.0),
])
def test_plans_that_cannot_fit_are_refused(call):
    with pytest.raises(SettingsError):
        call()


def test_no_broker_kills_no_events():
    assert plan_broker_kills(40, 0, 4, seed=1) == []


def test_a_held_back_kill_delays_the_rest_of_the_plan_with_it():
    plan = [ChaosEvent(20.0, KILL, 0), BrokerEvent(22.5, BROKER_RESTART, 1)]
    assert [e.at_s for e in delayed(plan, 4.25)] == [24.25, 26.75]
    assert delayed(plan, 4.25)[0].worker == 0 and delayed(plan, 4.25)[1].partition == 1


def test_the_leader_of_the_partition_is_killed_or_a_node_named_by_the_partition():
    assert leader_or_fallback({0: 3, 1: 2}, 1, nodes=3) == 2
    assert leader_or_fallback({0: -1}, 0, nodes=3) == 1  # no leader right now
    assert leader_or_fallback({}, 4, nodes=3) == 2


def test_topics_below_the_wanted_min_isr_are_named():
    assert needs_min_isr({"a": 2, "b": 1, "c": 3}, 2) == ["b"]
    assert needs_min_isr({}, 2) == []


EMBEDDED, EXTERNAL = Settings(), Settings(bootstrap_servers="127.0.0.1:9092")


@pytest.mark.parametrize("settings,chaos,nodes,kills,webhooks,message", [
    (EMBEDDED, True, None, "1", "auto", "--broker-kills needs --apache-nodes 3: lockstock SIGKILLs only brokers"),
    (EXTERNAL, True, None, "1", "auto", "--broker-kills needs --apache-nodes 3"),
    (EMBEDDED, True, "1", "1", "auto", "killing the only node"),
    (EMBEDDED, True, "2", "0", "auto", "--apache-nodes must be 1 or 3"),
    (EMBEDDED, True, "5", "0", "auto", "--apache-nodes must be <= 3"),
    (EMBEDDED, True, "x", "0", "auto", "--apache-nodes must be a whole number"),
    (EMBEDDED, True, "3", "9", "auto", "--broker-kills must be <= 5"),
    (EMBEDDED, True, "3", "-1", "auto", "--broker-kills must be >= 0"),
    (EMBEDDED, True, "3", "1", "1.5", "--webhooks must be a share between 0 and 1"),
    (EMBEDDED, True, "3", "1", "some", "--webhooks must be a number"),
    (EMBEDDED, False, "3", "0", "auto", "--apache-nodes apply to a chaos run: add --chaos"),
    (EMBEDDED, False, None, "1", "auto", "--broker-kills apply to a chaos run"),
    (EMBEDDED, False, None, "0", "0.2", "--webhooks apply to a chaos run"),
    (EXTERNAL, True, "3", "1", "auto", "KAFKA_BOOTSTRAP_SERVERS is set (127.0.0.1:9092)"),
])
def test_cluster_options_are_refused_with_a_reason(settings, chaos, nodes, kills, webhooks, message):
    with pytest.raises(SettingsError, match=message.replace("(", r"\(").replace(")", r"\)")):
        cluster_choice(settings, chaos, nodes, kills, webhooks)


def test_cluster_options_accepted_and_webhooks_on_by_default_only_on_the_runs_own_cluster():
    own = cluster_choice(EMBEDDED, True, "3", "1", "auto")
    assert (own.nodes, own.broker_kills, own.webhook_share) == (3, 1, 0.15)
    plain = cluster_choice(EXTERNAL, True, None, "0", "auto")
    assert (plain.nodes, plain.broker_kills, plain.webhook_share) == (None, 0, 0.0)
    assert cluster_choice(EMBEDDED, True, "1", "0", "0.3").webhook_share == 0.3
    assert cluster_choice(EMBEDDED, False, None, "0", "0").webhook_share == 0.0


def test_broker_kills_on_a_cluster_the_run_did_not_start_are_a_one_line_usage_error():
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"}
    result = subprocess.run([sys.executable, "-m", "lockstock", "loadtest", "--chaos", "--broker-kills", "1"],
                            env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "--broker-kills needs --apache-nodes 3" in lines[0], result.stderr


def test_a_cluster_is_whole_again_only_once_no_partition_is_catching_up():
    assert fully_replicated([(3, 3), (3, 3)])
    assert not fully_replicated([(3, 3), (3, 2)])
    assert fully_replicated([])
