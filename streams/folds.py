"""The lock engine's per-event glue as pure folds: (state, event) -> outputs, with the state
changes staged on the state the fold is handed. No Kafka and no Faust here: the agents
(streams/agents.py) hand each decoded record in as an ``Event`` and a table transaction as the
``State``; streams/memory.py hands in dicts and runs whole flows in memory.

Outputs name their topic by its registry entry (lockstock.topics), never by a resolved name, so
the same fold serves any topic prefix. A fold that cannot apply an event says why (``Problem``):
the driver dead-letters the event with that reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Protocol

from lockstock.catalog import Catalog
from lockstock.deadletter import INVALID_COMMAND, INVALID_EVENT
from lockstock.topics import (
    CHANNELS_STOCK, INVENTORY_ALERTS, INVENTORY_AUDIT, LOCK_REQUESTS, LOCK_RESULTS, ORDER_TIMERS, ORDERS_DECISIONS,
    TopicSpec,
)
from streams.engine import audit
from streams.engine import orders as desk
from streams.engine.channels import channel_stock_updates
from streams.engine.commands import CommandError, apply_command
from streams.engine.state import SkuState
from streams.engine.stock import apply_line_request


# Events and outputs are never changed once made, but not frozen: a frozen dataclass costs
# several times as much to make, several times per order line (docs/decisions/0006).
@dataclass(slots=True)
class Event:
    """One input record as a fold sees it."""

    partition: int
    offset: int
    timestamp_ms: int | None
    name: str  # the Avro record name
    value: dict[str, Any]


@dataclass(slots=True)
class Output:
    topic: TopicSpec
    key: str
    record: str  # the Avro record name
    value: dict[str, Any]
    partition: int | None = None  # None: the key's partition (streams/envelopes.py sets one)


@dataclass(frozen=True)
class Problem:
    reason: str
    error_type: str


Folded = tuple[list[Output], Problem | None]


class State(Protocol):
    """Reads and stages one table's values for the partition an event came from."""

    def read(self, key: str, partition: int) -> Any: ...

    def write(self, key: str, partition: int, value: Any) -> None: ...


ORDER_KEY, STOCK_KEY = "order_id", "sku"  # the input field naming each table's key

_DESK_STEPS = {
    "OrderPlaced": desk.on_order_placed, "LineLockResult": desk.on_line_result,
    "OrderEvent": desk.on_order_event, "OrderTimer": desk.on_timer,
}


def fold_order(state: State, event: Event, catalog: Catalog, now: int) -> Folded:
    """The order desk: one event of an order -> lock requests and decisions."""
    order_id = event.value[ORDER_KEY]
    step = _DESK_STEPS[event.name](state.read(order_id, event.partition), event.value, catalog, now)
    outputs = [Output(LOCK_REQUESTS, r["sku"], "LineLockRequest", r) for r in step.requests]
    outputs += [Output(ORDERS_DECISIONS, d["order_id"], "OrderDecision", d) for d in step.decisions]
    if step.changed:
        state.write(order_id, event.partition, step.record)
    return outputs, Problem(step.problem, INVALID_EVENT) if step.problem else None


def fold_stock(state: State, event: Event, catalog: Catalog, now: int) -> Folded:
    """The stock keeper: a line request or an operator command on one SKU -> its answer, the
    decision of a single-SKU order, alerts and the audit record of the movement."""
    value, sku = event.value, event.value[STOCK_KEY]
    sku_state: SkuState | None = state.read(sku, event.partition)
    before = audit.counts(sku_state)
    outputs: list[Output] = []
    if event.name == "LineLockRequest":
        sku_state, result, alerts = apply_line_request(sku_state, value, catalog, now)
        if result is not None:
            outputs.append(Output(LOCK_RESULTS, result["order_id"], "LineLockResult", result))
            if desk.decided_by_stock_keeper(result):
                outputs.append(Output(ORDERS_DECISIONS, result["order_id"], "OrderDecision",
                                      desk.single_line_decision(result)))
        movement = audit.line_movement(value, result, alerts)
    else:
        try:
            sku_state, applied, alerts = apply_command(sku_state, value, catalog, now)
        except CommandError as exc:
            return [], Problem(str(exc), INVALID_COMMAND)
        if not applied:
            return [], None
        movement = audit.command_movement(value, alerts)
    if sku_state is None:
        return outputs, None
    record = audit.append_movement_since(sku_state, before, at=event.timestamp_ms or now, **movement)
    if record is not None:
        outputs.append(Output(INVENTORY_AUDIT, sku, "AuditRecord", record))
    outputs += [Output(INVENTORY_ALERTS, a["sku"], "InventoryAlert", a) for a in alerts]
    state.write(sku, event.partition, sku_state)
    return outputs, None


class Staged(State, Protocol):
    """A batch's table transaction as the finish of a batch sees it: what the batch staged."""

    heads: dict[str, tuple[int, Any]]  # key -> (partition, value or None)

    def activate(self, partition: int) -> int: ...


class ChannelStockDue:
    """Announces each changed SKU's per-channel quantities at the end of a batch, at most once
    per ``rules.channel_stock_interval_ms`` per SKU (urgent changes at once): the topic is
    compacted and a marketplace only needs the latest figure, so the values a hot SKU passes
    through within milliseconds are not worth a record each.

    Changes held back are owed: ``finish`` announces them in the first batch after their interval,
    and ``next_due`` tells the agent when to run one without input. What is owed lives in this
    worker's memory only; after an assignment (a restart, a rebalance) ``owe_all`` owes every SKU
    this worker then holds, so changes the previous owner held back are announced too (a SKU
    whose published figures are current announces nothing)."""

    def __init__(self, catalog: Catalog) -> None:
        self.interval_ms = catalog.rules.channel_stock_interval_ms
        self.catalog = catalog
        self.owed: dict[str, tuple[int, int]] = {}  # sku -> (partition, announce at, ms)

    def finish(self, tx: Staged, now: int) -> list[Output]:
        outputs: list[Output] = []
        for sku, (partition, state) in list(tx.heads.items()):
            if state is not None:
                self._announce(state, partition, now, outputs)
        for sku, (partition, due) in list(self.owed.items()):
            if due > now or sku in tx.heads:
                continue
            tx.activate(partition)  # a head written must not validate line records a killed batch left
            state = tx.read(sku, partition)
            if state is None:
                del self.owed[sku]
            elif self._announce(state, partition, now, outputs):
                tx.write(sku, partition, state)
        return outputs

    def _announce(self, state: SkuState, partition: int, now: int, outputs: list[Output]) -> bool:
        updates = channel_stock_updates(state, self.catalog, now, interval_ms=self.interval_ms)
        if updates is None:
            self.owed[state.sku] = (partition, state.announced_at + self.interval_ms)
            return False
        self.owed.pop(state.sku, None)
        outputs += [Output(CHANNELS_STOCK, f"{u['channel']}:{u['sku']}", "ChannelStock", u) for u in updates]
        return bool(updates)

    def next_due(self, now: int) -> float | None:
        """Seconds until the first owed announcement is due (0 if one is), None if none is owed."""
        if not self.owed:
            return None
        return max(0, min(due for _, due in self.owed.values()) - now) / 1000

    def owe_all(self, skus: Iterable[tuple[str, int]], now: int) -> None:
        """Forget what was owed, and owe every (sku, partition) given, due now."""
        self.owed = {sku: (partition, now) for sku, partition in skus}


def due_timer(order_id: str, record: desk.OrderRecord | None, catalog: Catalog, now: int) -> Output | None:
    """The timer the sweeper sends for an order whose deadline passed, if it still needs one."""
    kind = desk.due_timer(record, catalog, now) if record is not None else None
    if kind is None:
        return None
    return Output(ORDER_TIMERS, order_id, "OrderTimer", {"order_id": order_id, "kind": kind, "due_at": now})
