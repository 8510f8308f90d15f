"""The order desk as pure functions: one ``OrderRecord`` per order, keyed by order_id.

The desk validates an order and splits it into per-SKU lock requests, gathers the SKUs'
answers into one all-or-nothing decision (compensating what was locked when any line is
rejected), drives the lifecycle (paid -> commit, cancelled -> release, shipped -> ship, unpaid
past the channel's TTL -> release) and remembers finished orders for a while so a duplicate
order gets the same decision. Every function returns a ``DeskStep``: what to store and send.
"""

from __future__ import annotations

import heapq
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable

import orjson

from lockstock.catalog import Catalog
from schemas.records import (
    LineLockRequest, LineLockResult, LockAction, OrderDecision, OrderEvent, OrderPlaced, OrderTimer,
)
from streams.engine.stock import LOCKED, REJECTED, RELEASED, SHIPPED

PENDING, PAID = "PENDING", "PAID"
HOLDING = (LOCKED, PAID)  # statuses in which the order holds units
FINISHED = (REJECTED, RELEASED, SHIPPED)

EMPTY_ORDER = "EMPTY_ORDER"
INVALID_QUANTITY = "INVALID_QUANTITY"
INVALID_SKU = "INVALID_SKU"
UNKNOWN_CHANNEL = "UNKNOWN_CHANNEL"
UNKNOWN_REGION = "UNKNOWN_REGION"
COMPENSATION = "COMPENSATION"  # another line of the same order was rejected
CANCELLED = "CANCELLED"
PAYMENT_TIMEOUT = "PAYMENT_TIMEOUT"
EXPIRE, FORGET = "EXPIRE", "FORGET"
EVENT_MEMORY = 20  # lifecycle event ids remembered per order (redelivery guard)


@dataclass
class OrderRecord:
    order_id: str
    sku_count: int
    channel: str
    placed_at: int
    buyer_id: str = ""
    region: str | None = None
    skus: dict[str, int] = field(default_factory=dict)  # sku -> units
    outcomes: dict[str, dict[str, Any]] = field(default_factory=dict)  # sku -> {status, reason, region}
    status: str = PENDING
    reason: str | None = None
    decision: OrderDecision | None = None  # the OrderDecision last published; repeated on redelivery
    expires_at: int | None = None  # an unpaid lock is released at this time
    finished_at: int | None = None
    events: list[str] = field(default_factory=list)
    early_events: list[OrderEvent] = field(default_factory=list)  # lifecycle before the decision

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> bytes:
        """The table value as JSON, the shape ``to_dict`` gives (orjson walks dataclasses
        natively: several times faster than ``asdict``, and this runs once per order per hop)."""
        return orjson.dumps(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "OrderRecord":
        return cls(**data)

    def public_view(self) -> dict[str, Any]:
        """What operators see of an order (no dedup bookkeeping)."""
        return {"order_id": self.order_id, "status": self.status, "reason": self.reason, "channel": self.channel,
                "region": self.region, "lines": self.skus, "expires_at": self.expires_at, "decision": self.decision}


@dataclass
class DeskStep:
    record: OrderRecord | None  # what to store (None: forget the order)
    requests: list[LineLockRequest] = field(default_factory=list)
    decisions: list[OrderDecision] = field(default_factory=list)
    changed: bool = True  # False: nothing to store
    problem: str | None = None  # the event cannot apply: dead-letter it with this reason


def validate_order(order: OrderPlaced, catalog: Catalog) -> str | None:
    """The reason an order cannot be locked at all, or None if it is well formed."""
    lines = order.get("lines") or []
    if not lines:
        return EMPTY_ORDER
    for line in lines:
        if not line["sku"].strip():
            return INVALID_SKU
        if line["qty"] <= 0:
            return INVALID_QUANTITY
    if order["channel"] not in catalog.channels:
        return UNKNOWN_CHANNEL
    if (order.get("ship_to_region") or None) is not None and order["ship_to_region"] not in catalog.regions:
        return UNKNOWN_REGION
    return None


def units_per_sku(order: OrderPlaced) -> dict[str, int]:
    """An order's units grouped by SKU (two lines of one SKU lock as one request)."""
    units: dict[str, int] = {}
    for line in order["lines"]:
        units[line["sku"]] = units.get(line["sku"], 0) + line["qty"]
    return units


def _request(record: OrderRecord, sku: str, action: LockAction, reason: str | None = None,
             warehouse: str | None = None) -> LineLockRequest:
    return {
        "order_id": record.order_id, "sku": sku, "qty": record.skus.get(sku, 0), "action": action,
        "channel": record.channel, "buyer_id": record.buyer_id, "region": record.region,
        "sku_count": record.sku_count, "placed_at": record.placed_at, "reason": reason, "warehouse": warehouse,
    }


def _decision(record: OrderRecord, now: int) -> OrderDecision:
    held = record.status in HOLDING or record.status == RELEASED
    return {
        "order_id": record.order_id, "status": RELEASED if record.status == RELEASED else (
            REJECTED if record.status == REJECTED else LOCKED),
        "reason": record.reason,
        "lines": [{"sku": sku, "qty": qty, "region": (record.outcomes.get(sku) or {}).get("region") if held else None}
                  for sku, qty in sorted(record.skus.items())],
        "decided_at": now, "channel": record.channel, "placed_at": record.placed_at,
    }


def decided_by_stock_keeper(result: LineLockResult) -> bool:
    """A single-SKU order is decided by its one answer: the stock keeper announces that decision
    itself (one hop sooner than through the desk) and the desk only records it. Replayed answers
    are not announced by the keeper (see ``apply_line_request``); the desk announces those."""
    return bool(result.get("announced"))


def single_line_decision(result: LineLockResult) -> OrderDecision:
    """The decision a single-SKU order's answer makes: what ``_decision`` gives once the desk
    has that answer, timed at the answer (so desk and keeper hold the same record)."""
    locked = result["status"] == LOCKED
    return {
        "order_id": result["order_id"], "status": LOCKED if locked else REJECTED,
        "reason": None if locked else (result["reason"] or REJECTED),
        "lines": [{"sku": result["sku"], "qty": result["qty"], "region": result["region"] if locked else None}],
        "decided_at": result["decided_at"], "channel": result["channel"], "placed_at": result["placed_at"],
    }


def _finish(record: OrderRecord, status: str, reason: str | None, now: int) -> None:
    record.status, record.reason, record.expires_at = status, reason, None
    record.finished_at = now


def on_order_placed(record: OrderRecord | None, order: OrderPlaced, catalog: Catalog, now: int) -> DeskStep:
    """A new order: lock requests per SKU, or an immediate rejection. A duplicate repeats the
    decision, or (still undecided) re-asks the SKUs that have not answered."""
    if record is not None:
        if not record.buyer_id and record.status == PENDING:  # known only from early results so far
            _fill_from_order(record, order, catalog)
        if record.decision is not None:
            return DeskStep(record, decisions=[record.decision], changed=False)
        missing = [sku for sku in record.skus if sku not in record.outcomes]
        return DeskStep(record, requests=[_request(record, sku, "LOCK") for sku in missing], changed=bool(missing))
    units = units_per_sku(order) if order.get("lines") else {}
    record = OrderRecord(order["order_id"], len(units), order["channel"], order["placed_at"])
    invalid = validate_order(order, catalog)
    if invalid:
        record.skus = {line["sku"]: line["qty"] for line in order.get("lines") or []}
        _finish(record, REJECTED, invalid, now)
        record.decision = _decision(record, now)
        return DeskStep(record, decisions=[record.decision])
    _fill_from_order(record, order, catalog, units)
    return DeskStep(record, requests=[_request(record, sku, "LOCK") for sku in record.skus])


def _fill_from_order(record: OrderRecord, order: OrderPlaced, catalog: Catalog,
                     units: dict[str, int] | None = None) -> None:
    record.skus = units if units is not None else units_per_sku(order)
    record.sku_count = len(record.skus)
    record.buyer_id = order["buyer_id"]
    if order["channel"] in catalog.channels:
        record.region = catalog.region_of_order(order["channel"], order.get("ship_to_region") or None)


def on_line_result(record: OrderRecord | None, result: LineLockResult, catalog: Catalog, now: int) -> DeskStep:
    """One SKU answered. When all have: LOCKED if every line locked, else REJECTED with the
    locked lines compensated. Answers after the decision are redeliveries: a late LOCKED for an
    order that is not holding is released, and a decision the keeper announced with it that
    contradicts the desk's is answered with the desk's again; anything else repeats nothing."""
    if record is None:  # the answer overtook its order after a restart: start from the answer
        record = OrderRecord(result["order_id"], result["sku_count"], result["channel"], result["placed_at"])
    sku = result["sku"]
    if record.status != PENDING:
        step = DeskStep(record, changed=False)
        if result["status"] == LOCKED and record.status not in HOLDING and record.status != SHIPPED:
            step.requests = [_request(record, sku, "RELEASE", COMPENSATION)]
        if decided_by_stock_keeper(result) and record.decision is not None and \
                single_line_decision(result)["status"] != record.decision["status"]:
            # The keeper lost a batch it had announced and answered the replay afresh, after the
            # desk had moved on: the desk's decision must be the last.
            step.decisions = [record.decision]
        elif not decided_by_stock_keeper(result) and record.decision is not None:
            # A replayed answer: the decision it completed, or the keeper's own announcement of a
            # single-SKU order, may not have left (a kill between a changelog and its answers),
            # so the desk repeats its latest decision.
            step.decisions = [record.decision]
        return step
    record.skus.setdefault(sku, result["qty"])
    record.outcomes[sku] = {"status": result["status"], "reason": result["reason"], "region": result["region"]}
    if len(record.outcomes) < record.sku_count:
        return DeskStep(record)
    rejected = [o for _, o in sorted(record.outcomes.items()) if o["status"] != LOCKED]
    if rejected:
        _finish(record, REJECTED, rejected[0]["reason"] or REJECTED, now)
        requests = [_request(record, s, "RELEASE", COMPENSATION) for s, o in sorted(record.outcomes.items())
                    if o["status"] == LOCKED]
    else:
        record.status, requests = LOCKED, []
        record.expires_at = now + catalog.ttl_ms(record.channel) if record.channel in catalog.channels else None
    if decided_by_stock_keeper(result) and record.sku_count == 1:
        record.decision = single_line_decision(result)
        step = DeskStep(record, requests=requests)  # the stock keeper announced it
    else:
        record.decision = _decision(record, now)
        step = DeskStep(record, requests=requests, decisions=[record.decision])
    early, record.early_events = record.early_events, []
    for event in early:
        later = on_order_event(record, event, catalog, now)
        step.requests += later.requests
        step.decisions += later.decisions
        step.problem = "; ".join(p for p in (step.problem, later.problem) if p) or None
    return step


def on_order_event(record: OrderRecord | None, event: OrderEvent, catalog: Catalog, now: int) -> DeskStep:
    """Lifecycle: PAID commits the lock, CANCELLED releases it, SHIPPED takes the units out of a
    warehouse. Events for undecided orders wait for the decision; impossible ones are problems."""
    kind = event["type"]
    if record is None:
        return DeskStep(None, changed=False, problem=f"{kind} for unknown order {event['order_id']!r}")
    if event["event_id"] in record.events:  # redelivered: the RELEASED a cancel made may not have left
        repeat = [record.decision] if kind == "CANCELLED" and record.decision is not None else []
        return DeskStep(record, changed=False, decisions=repeat)
    if kind not in ("PAID", "CANCELLED", "SHIPPED"):
        return DeskStep(record, changed=False, problem=f"order event type {kind} is not one lockstock handles")
    if record.status == PENDING:
        record.early_events.append(event)
        return DeskStep(record)
    record.events = (record.events + [event["event_id"]])[-EVENT_MEMORY:]
    step = DeskStep(record)
    if kind == "PAID":
        if record.status == LOCKED:
            record.status, record.expires_at = PAID, None
            step.requests = [_request(record, sku, "COMMIT") for sku in record.skus]
        elif record.status in (REJECTED, RELEASED):
            step.problem = f"order {record.order_id} was paid but holds no stock ({record.status} {record.reason}): refund it"
    elif kind == "CANCELLED":
        if record.status in HOLDING:
            _finish(record, RELEASED, event.get("reason") or CANCELLED, now)
            step.requests = [_request(record, sku, "RELEASE", record.reason) for sku in record.skus]
            record.decision = _decision(record, now)
            step.decisions = [record.decision]
        elif record.status == SHIPPED:
            step.problem = f"order {record.order_id} was cancelled after it shipped: handle it as a return"
    elif kind == "SHIPPED":
        if record.status in HOLDING:
            _finish(record, SHIPPED, None, now)
            step.requests = [_request(record, sku, "SHIP", warehouse=event.get("warehouse")) for sku in record.skus]
        elif record.status in (REJECTED, RELEASED):
            step.problem = f"order {record.order_id} shipped but holds no stock ({record.status} {record.reason})"
    return step


def on_timer(record: OrderRecord | None, timer: OrderTimer, catalog: Catalog, now: int) -> DeskStep:
    """EXPIRE releases an unpaid lock past its TTL (RELEASED, PAYMENT_TIMEOUT); FORGET drops a
    finished order after the retention period. Both are no-ops when no longer due."""
    if record is None:
        return DeskStep(None, changed=False)
    if timer["kind"] == EXPIRE and record.status == LOCKED and record.expires_at is not None and now >= record.expires_at:
        _finish(record, RELEASED, PAYMENT_TIMEOUT, now)
        record.decision = _decision(record, now)
        return DeskStep(record, requests=[_request(record, sku, "RELEASE", PAYMENT_TIMEOUT) for sku in record.skus],
                        decisions=[record.decision])
    if timer["kind"] == FORGET and _forgettable(record, catalog, now):
        return DeskStep(None)
    if timer["kind"] == EXPIRE and record.status == RELEASED and record.decision is not None:
        # redelivered: the RELEASED it made may not have left (a kill between a changelog and its answers)
        return DeskStep(record, changed=False, decisions=[record.decision])
    return DeskStep(record, changed=False)


def _forgettable(record: OrderRecord, catalog: Catalog, now: int) -> bool:
    return record.status in FINISHED and record.finished_at is not None and \
        now >= record.finished_at + catalog.rules.order_retention_s * 1000


def next_due_at(record: OrderRecord, catalog: Catalog) -> int | None:
    """When the order next needs a timer (TTL expiry, or forgetting it), if ever."""
    if record.status == LOCKED and record.expires_at is not None:
        return record.expires_at
    if record.status in FINISHED and record.finished_at is not None:
        return record.finished_at + catalog.rules.order_retention_s * 1000
    return None


class Deadlines:
    """order id -> when the sweeper must next look at it (``next_due_at``), so a sweep reads only
    the orders whose deadline passed, in time order from a heap (not a scan of every open order,
    which a hot SKU's 200,000 unpaid locks made a tenth of the worker). ``generation`` names the
    partition assignment it was built for: after a rebalance it is rebuilt from the orders this
    worker then owns."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog: Catalog = catalog
        self.due: dict[str, int] = {}
        self.heap: list[tuple[int, str]] = []  # (when, order id); entries ``due`` no longer names are skipped
        self.generation: Any = None

    def note(self, order_id: str, record: OrderRecord | None) -> None:
        when = next_due_at(record, self.catalog) if record is not None else None
        if when is None:
            self.due.pop(order_id, None)
        else:
            self._set(order_id, when)

    def _set(self, order_id: str, when: int) -> None:
        if self.due.get(order_id) == when:
            return
        self.due[order_id] = when
        heapq.heappush(self.heap, (when, order_id))
        if len(self.heap) > 2 * len(self.due) + 1024:  # superseded entries: drop them
            self.heap = [(w, o) for o, w in self.due.items()]
            heapq.heapify(self.heap)

    def forget(self, order_id: str) -> None:
        self.due.pop(order_id, None)

    def passed(self, now: int) -> list[str]:
        """The orders whose deadline passed. Each is listed again at every later sweep until a
        write notes it anew (the desk re-checks every timer, and a lost one is sent again)."""
        heap, due, passed = self.heap, self.due, []
        while heap and heap[0][0] <= now:
            when, order_id = heapq.heappop(heap)
            if due.get(order_id) == when:
                passed.append(order_id)
        for order_id in passed:
            self._set(order_id, now + 1)
        return passed

    def rebuild(self, generation: Any, records: Iterable[tuple[str, OrderRecord]]) -> None:
        self.due, self.heap, self.generation = {}, [], generation
        for order_id, record in records:
            when = next_due_at(record, self.catalog)
            if when is not None:
                self.due[order_id] = when
        self.heap = [(when, order_id) for order_id, when in self.due.items()]
        heapq.heapify(self.heap)


def due_timer(record: OrderRecord, catalog: Catalog, now: int) -> str | None:
    """The timer an order needs now, if any (the sweeper sends it; the desk re-checks)."""
    if record.status == LOCKED and record.expires_at is not None and now >= record.expires_at:
        return EXPIRE
    if _forgettable(record, catalog, now):
        return FORGET
    return None
