import pytest

from apps.load.chaos import KILL, PRODUCER_RESTART, RESTART, plan_chaos
from lockstock.errors import SettingsError


@pytest.mark.parametrize("duration,workers,kills", [(20, 2, 3), (60, 1, 5), (5, 3, 1), (300, 2, 20)])
def test_every_kill_is_restarted_before_the_next_and_inside_the_traffic(duration, workers, kills):
    plan = plan_chaos(duration, workers, kills, seed=3)
    deaths = [e for e in plan if e.action in (KILL, RESTART)]
    assert [e.action for e in deaths] == [KILL, RESTART] * kills  # never two workers down at once
    for kill, restart in zip(deaths[::2], deaths[1::2]):
        assert kill.worker == restart.worker and 0 <= kill.worker < workers
        assert 0 <= kill.at_s < restart.at_s <= duration * 0.8
    assert sum(e.action == PRODUCER_RESTART for e in plan) == 1
    assert [e.at_s for e in plan] == sorted(e.at_s for e in plan)


def test_same_seed_same_schedule_and_another_seed_differs():
    assert plan_chaos(30, 2, 4, seed=1) == plan_chaos(30, 2, 4, seed=1)
    assert plan_chaos(30, 2, 4, seed=1) != plan_chaos(30, 2, 4, seed=2)


def test_no_chaos_asked_no_events():
    assert plan_chaos(30, 2, 0, seed=1, producer_restarts=0) == []


@pytest.mark.parametrize("workers,kills,restarts", [(0, 1, 1), (2, -1, 1), (2, 1, -1)])
def test_bad_numbers_are_refused(workers, kills, restarts):
    with pytest.raises(SettingsError):
        plan_chaos(30, workers, kills, seed=1, producer_restarts=restarts)
