"""Whole flows through the engine's folds, batch runner and table transactions, in memory
(streams/memory.py): duplicates, multi-SKU orders, bad records, a failing event on a hot key,
and a kill after every possible record of a commit, restarted from the changelog."""

from __future__ import annotations

import dataclasses
import random
from collections import Counter

import orjson
import pytest

from lockstock.deadletter import PROCESSING_ERROR, UNDECODABLE
from lockstock.topics import (
    CHANNELS_STOCK, DEADLETTER, INVENTORY_COMMANDS, ORDERS_DECISIONS, ORDERS_EVENTS, ORDERS_PLACED, changelog_topic,
)
from streams import folds
from streams.engine.state import SkuState
from streams.lines import is_line_key
from streams.memory import MEMORY_APP_ID, Crashed, MemoryFlow
from tests.builders import CATALOG, inventory_command, order_event, order_placed

NOW = 1_800_000_000_000


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> int:
        return self.now


def new_flow(tmp_path, **kw) -> MemoryFlow:
    kw.setdefault("clock", Clock())
    return MemoryFlow(CATALOG, tmp_path, **kw)


def set_stock(flow: MemoryFlow, sku: str, total: int, regions: dict[str, int] | None = None) -> None:
    flow.send(INVENTORY_COMMANDS, sku, "InventoryCommand", inventory_command(
        "SET_STOCK", f"set-{sku}", sku=sku, issued_at=NOW, total=total, regions=regions or {"US": total}, flex_pct=0.0,
        proportional=False))


def place(flow: MemoryFlow, order_id: str, lines: list[tuple[str, int]], buyer: str = "b", channel: str = "shopify") -> None:
    flow.send(ORDERS_PLACED, order_id, "OrderPlaced", order_placed(
        *lines, order_id=order_id, channel=channel, buyer_id=buyer, ship_to_region="US", placed_at=NOW))


def event(flow: MemoryFlow, order_id: str, kind: str) -> None:
    flow.send(ORDERS_EVENTS, order_id, "OrderEvent", order_event(
        kind, f"{order_id}:{kind}", order_id, channel="shopify", occurred_at=NOW))


def final_decisions(flow: MemoryFlow) -> dict[str, dict]:
    by_order: dict[str, list[dict]] = {}
    for decision in flow.values(ORDERS_DECISIONS):
        by_order.setdefault(decision["order_id"], []).append(decision)
    return {order_id: decisions[-1] for order_id, decisions in by_order.items()}


def held_by_decisions(flow: MemoryFlow) -> Counter:
    held: Counter = Counter()
    for decision in final_decisions(flow).values():
        if decision["status"] == "LOCKED":
            for line in decision["lines"]:
                held[line["sku"]] += line["qty"]
    return held


def head(flow: MemoryFlow, sku: str) -> SkuState:
    return SkuState.from_dict(orjson.loads(flow.tables["stock"].value(sku)))


def test_multi_sku_orders_are_all_or_nothing_and_duplicates_repeat_their_decision(tmp_path):
    flow = new_flow(tmp_path)
    set_stock(flow, "A", 5)
    set_stock(flow, "B", 1)
    place(flow, "o1", [("A", 2), ("B", 1)])
    place(flow, "o2", [("A", 2), ("B", 1)])  # B is gone: A's two units are given back
    place(flow, "o1", [("A", 2), ("B", 1)])  # a duplicate before the decision: asks nothing again
    flow.run()
    place(flow, "o1", [("A", 2), ("B", 1)])  # a duplicate after it: the same decision again
    flow.run()
    decisions = flow.values(ORDERS_DECISIONS)
    o1 = [d for d in decisions if d["order_id"] == "o1"]
    # one decision, repeated: for the duplicate, and for the answers its early duplicate asked again
    assert len(o1) >= 2 and all(d == o1[0] for d in o1) and o1[0]["status"] == "LOCKED"
    assert [(d["status"], d["reason"]) for d in decisions if d["order_id"] == "o2"] == [("REJECTED", "OUT_OF_STOCK")]
    assert (head(flow, "A").regions["US"].locked, head(flow, "A").open_reservations) == (2, 1)
    assert head(flow, "B").regions["US"].locked == 1


def test_bad_records_are_dead_lettered_with_the_reason_and_the_flow_goes_on(tmp_path):
    flow = new_flow(tmp_path)
    set_stock(flow, "A", 5)
    flow.send_raw(ORDERS_PLACED, "junk", b"\x00\x01not avro")
    event(flow, "nobody", "PAID")  # for an order nobody placed
    place(flow, "o1", [("A", 1)])
    flow.run()
    dead = flow.values(DEADLETTER)
    assert {d["error_type"] for d in dead} == {UNDECODABLE, "INVALID_EVENT"}
    assert any("unknown order 'nobody'" in d["reason"] for d in dead)
    assert final_decisions(flow)["o1"]["status"] == "LOCKED"


def test_a_failing_event_on_a_hot_key_leaves_nothing_half_applied(tmp_path, monkeypatch):
    """The SKU is already staged in the batch when the failing event changes it in place and
    raises: the event is undone (counts and its line record), the batch's other events stay."""
    real = folds.fold_stock

    def failing(state, event, catalog, now):
        produced = real(state, event, catalog, now)
        if event.value.get("order_id") == "o-boom":
            raise RuntimeError("boom after the state changed")
        return produced

    monkeypatch.setattr(folds, "fold_stock", failing)
    flow = new_flow(tmp_path)
    flow.agents[1].fold = failing
    set_stock(flow, "HOT", 10)
    for n in range(3):
        place(flow, f"o-{n}", [("HOT", 1)], buyer=f"b{n}")
    place(flow, "o-boom", [("HOT", 2)], buyer="bx")
    place(flow, "o-3", [("HOT", 1)], buyer="b3")
    flow.run()
    state = head(flow, "HOT")
    assert (state.regions["US"].locked, state.open_reservations) == (4, 4)
    assert held_by_decisions(flow)["HOT"] == 4
    assert [d["error_type"] for d in flow.values(DEADLETTER)] == [PROCESSING_ERROR]
    line_keys = [orjson.loads(k)[2] for k, _ in flow.changelog("stock") if is_line_key(k)]
    assert "o-boom" not in line_keys and "bx" not in line_keys


def scenario(flow: MemoryFlow, seed: int) -> None:
    """A hot SKU and a few others: multi-line orders, duplicates, payments and cancellations."""
    rng = random.Random(seed)
    skus = ["HOT", "S1", "S2"]
    set_stock(flow, "HOT", 30, {"US": 30})
    for sku in skus[1:]:
        set_stock(flow, sku, 8, {"US": 8})
    for n in range(60):
        lines = [("HOT", rng.randint(1, 2))] + ([(rng.choice(skus[1:]), 1)] if rng.random() < 0.3 else [])
        place(flow, f"o{n}", lines, buyer=f"b{n % 7}")
        if rng.random() < 0.1:
            place(flow, f"o{n}", lines, buyer=f"b{n % 7}")
    for n in range(0, 60, 5):
        event(flow, f"o{n}", "CANCELLED" if n % 10 else "PAID")


def check_consistent(flow: MemoryFlow) -> None:
    by_order: dict[str, set] = {}
    for decision in flow.values(ORDERS_DECISIONS):
        by_order.setdefault(decision["order_id"], set()).add(decision["status"])
    assert all(len(s) == 1 or s == {"LOCKED", "RELEASED"} for s in by_order.values()), by_order  # never flipped
    held = held_by_decisions(flow)
    for sku in ("HOT", "S1", "S2"):
        state = head(flow, sku)
        us = state.regions["US"]
        assert us.locked + us.paid == held[sku], (sku, us, held[sku])  # no double lock, no lost lock
        assert us.locked + us.paid + us.shipped <= us.allocation  # never oversold


def test_an_uninterrupted_run_is_consistent(tmp_path):
    flow = new_flow(tmp_path)
    scenario(flow, 1)
    flow.run()
    check_consistent(flow)
    assert len(final_decisions(flow)) == 60


def hot_batch_flow(root) -> MemoryFlow:
    """The scenario with every order through the desk, the stock keeper's first batch of the hot
    SKU's partition next."""
    flow = new_flow(root, batch_max=40)
    scenario(flow, 2)
    while flow.step(only="order_desk"):
        pass
    return flow


def records_per_topic(flow: MemoryFlow) -> Counter:
    return Counter({topic: sum(len(r) for r in partitions.values()) for topic, partitions in flow.log.topics.items()})


@pytest.mark.parametrize("fresh_state", [False, True], ids=["same-state-dir", "empty-state-dir"])
def test_a_kill_after_any_record_of_a_commit_loses_and_doubles_nothing(tmp_path, fresh_state):
    """Kill the process after the k-th record of the stock keeper's commit of the hot SKU
    (outputs, then line records, then heads), then restart from the changelog and run on. Without
    the read of line records as of their head (streams/lines.py resolve) this double-locks;
    without the repair when a partition is taken over (TableTransaction.activate) it does too,
    since the replay is batched differently from the killed batch."""
    reference = hot_batch_flow(tmp_path / "reference")
    hot = reference.log.partition_of(b"HOT")
    before = records_per_topic(reference)
    reference.step(only="lock_stock_lines", only_partition=hot)
    sent = records_per_topic(reference) - before
    changelog = sent.pop(changelog_topic(MEMORY_APP_ID, "stock"))
    outputs = sum(sent.values())
    assert outputs > 40 and changelog > 40  # a big batch: results, decisions, audit; line records, heads
    reference.run()
    expected = {order_id: d["status"] for order_id, d in final_decisions(reference).items()}
    for k in sorted({*range(0, outputs, 20), *range(outputs, outputs + changelog + 1, 2)}):
        flow = hot_batch_flow(tmp_path / f"k{k}")
        flow.crash_during_next_commit("lock_stock_lines", k)
        with pytest.raises(Crashed):
            flow.step(only="lock_stock_lines", only_partition=hot)
        flow.restart(fresh_state=fresh_state)
        flow.batch_max = 7  # the replay is batched differently: it rewrites less than the killed batch wrote
        flow.run()
        check_consistent(flow)
        assert {o: d["status"] for o, d in final_decisions(flow).items()} == expected, k


def test_finished_lines_and_buyers_are_forgotten_after_the_retention_and_the_head_is_not(tmp_path):
    catalog = dataclasses.replace(CATALOG, rules=dataclasses.replace(CATALOG.rules, order_retention_s=60))
    clock = Clock()
    flow = MemoryFlow(catalog, tmp_path, clock=clock)
    set_stock(flow, "A", 10)
    place(flow, "o1", [("A", 1)], buyer="b1")
    flow.run()
    event(flow, "o1", "CANCELLED")
    flow.run()
    clock.now += 61_000
    place(flow, "o2", [("A", 1)], buyer="b2")  # a later batch of the partition forgets what is due
    flow.run()
    tombstones = {orjson.loads(k)[2] for k, v in flow.changelog("stock") if v is None}
    assert {"o1", "b1", "set-A"} <= tombstones
    assert "o2" not in tombstones and head(flow, "A").open_reservations == 1
    flow.restart(fresh_state=True)
    place(flow, "o2", [("A", 1)], buyer="b2")  # still remembered: a duplicate, not a second lock
    flow.run()
    assert head(flow, "A").regions["US"].locked == 1


def test_the_largest_changelog_record_does_not_grow_with_open_reservations(tmp_path):
    flow = new_flow(tmp_path)
    set_stock(flow, "HOT", 100_000)
    sizes = []
    for wave in range(3):
        for n in range(2_000):
            place(flow, f"o{wave}-{n}", [("HOT", 1)], buyer=f"b{wave}-{n}")
        flow.run()
        sizes.append(max(len(v or b"") for k, v in flow.changelog("stock") if not is_line_key(k)))
    assert head(flow, "HOT").open_reservations == 6_000
    assert sizes[2] <= sizes[0] + 16 and sizes[2] < 4_096, sizes


def test_a_cancel_after_a_killed_batch_never_flips_the_decision(tmp_path):
    """The stock keeper is killed after any record of its commit; the buyer cancels before it
    restarts (on Apache Kafka a takeover takes seconds). The decisions of the order may repeat and
    end RELEASED, but never go back to LOCKED after RELEASED: the keeper's answers leave only after
    its changelog (streams/transaction.py step 6), so a killed batch's LOCKED is never out for the
    desk to release before the replay answers again."""
    reference = new_flow(tmp_path / "reference")
    set_stock(reference, "A", 5)
    reference.run()
    place(reference, "o1", [("A", 1)])
    reference.step(only="order_desk")
    before = records_per_topic(reference)
    reference.step(only="lock_stock_lines")
    commit_records = sum((records_per_topic(reference) - before).values())
    for k in range(commit_records):  # killed before its k-th record
        flow = new_flow(tmp_path / f"k{k}")
        set_stock(flow, "A", 5)
        flow.run()
        place(flow, "o1", [("A", 1)])
        flow.step(only="order_desk")
        flow.crash_during_next_commit("lock_stock_lines", k)
        with pytest.raises(Crashed):
            flow.step(only="lock_stock_lines")
        flow.log.crash_after = None  # the desk lives on (another worker) while the keeper is down
        event(flow, "o1", "CANCELLED")
        while flow.step(only="order_desk"):
            pass
        flow.restart()
        flow.run()
        statuses = [d["status"] for d in flow.values(ORDERS_DECISIONS) if d["order_id"] == "o1"]
        assert statuses and statuses[-1] == "RELEASED", (k, statuses)
        assert "LOCKED" not in statuses[statuses.index("RELEASED"):], (k, statuses)  # never flipped back
        us = head(flow, "A").regions["US"]
        assert (us.locked, us.paid) == (0, 0), (k, us)  # released once, not twice, and not kept


@pytest.mark.parametrize("lines", [[("A", 1)], [("A", 1), ("B", 1)]], ids=["single-sku", "multi-sku"])
def test_a_killed_desk_batch_never_flips_a_released_order_back(tmp_path, lines):
    """The desk is killed after any record of a batch that releases a locked order. Its replay
    first meets an input it repeats its decision for (a duplicate of the order) while its state
    is still LOCKED: a RELEASED that left before the kill would then be followed by LOCKED. The
    desk's decisions leave only after its changelog, so they never go back; a kill after its
    changelog and before them is followed by a replay that repeats them."""
    commit_records = None
    for k in range(64):
        flow = new_flow(tmp_path / f"k{k}")
        for sku, _ in lines:
            set_stock(flow, sku, 5)
        place(flow, "o1", lines)
        flow.run()
        place(flow, "o1", lines)  # the duplicate, then the cancel: one desk batch
        event(flow, "o1", "CANCELLED")
        before = records_per_topic(flow)
        flow.crash_during_next_commit("order_desk", k)
        try:
            flow.step(only="order_desk")
        except Crashed:
            flow.restart()
        else:  # k was past the commit's last record: it finished
            flow.log.crash_after = None
            commit_records = sum((records_per_topic(flow) - before).values())
        flow.run()
        statuses = [d["status"] for d in flow.values(ORDERS_DECISIONS) if d["order_id"] == "o1"]
        assert statuses[-1] == "RELEASED", (k, statuses)
        assert "LOCKED" not in statuses[statuses.index("RELEASED"):], (k, statuses)  # never flipped back
        for sku, _ in lines:
            us = head(flow, sku).regions["US"]
            assert (us.locked, us.paid) == (0, 0), (k, sku, us)
        if commit_records is not None:
            break
    assert commit_records is not None and commit_records >= 3  # every record of the commit was a kill point


def channel_figures(flow: MemoryFlow, sku: str) -> dict[str, int]:
    """channel -> the latest sellable figure announced for ``sku`` (highest seq)."""
    latest: dict[str, dict] = {}
    for record in flow.values(CHANNELS_STOCK):
        if record["sku"] == sku and record["seq"] > latest.get(record["channel"], {"seq": -1})["seq"]:
            latest[record["channel"]] = record
    return {channel: record["sellable"] for channel, record in latest.items()}


def test_a_hot_sku_announces_its_channels_once_per_interval_and_the_last_figure_always(tmp_path):
    """Batch after batch on one SKU within the interval: one announcement, then the changes wait.
    When the interval passes with no input, a batch without input announces the latest figures;
    a new process (a restart, a takeover) announces what the old one held back."""
    clock = Clock()
    flow = new_flow(tmp_path, clock=clock, batch_max=1)
    set_stock(flow, "HOT", 100)
    flow.run()
    first = len(flow.values(CHANNELS_STOCK))
    for n in range(20):
        place(flow, f"o{n}", [("HOT", 1)], buyer=f"b{n}")
        clock.now += 5  # 20 batches within 100 ms
        flow.run()
    assert len(flow.values(CHANNELS_STOCK)) == first  # all held back: none urgent
    assert channel_figures(flow, "HOT")["shopify"] == 100
    clock.now += CATALOG.rules.channel_stock_interval_ms
    flow.run()  # no input: the owed figures go
    assert channel_figures(flow, "HOT")["shopify"] == 80
    place(flow, "late", [("HOT", 1)], buyer="late")
    clock.now += 1
    flow.run()
    assert channel_figures(flow, "HOT")["shopify"] == 80  # held back again ...
    flow.restart()
    clock.now += CATALOG.rules.channel_stock_interval_ms
    flow.run()  # ... and announced by the next process, which knew nothing of it
    assert channel_figures(flow, "HOT")["shopify"] == 79
    us = head(flow, "HOT").regions["US"]
    assert us.locked == 21 and head(flow, "HOT").published["shopify"][0] == 79
