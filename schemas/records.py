"""lockstock's Avro records as Python types. GENERATED from schemas/**/*.avsc by
``python -m lockstock.record_types > schemas/records.py``: do not edit (lockstock/record_types.py
says how each Avro type maps)."""

# No ``from __future__ import annotations``: evaluated annotations let a TypedDict know its
# NotRequired keys at run time (records come after the records their fields name).
from typing import Literal, NotRequired, TypedDict


AlertType = Literal["FLEX_TRANSFER", "PURCHASE_LIMIT_TRIGGERED", "PURCHASE_LIMIT_CLEARED", "REPLENISHMENT", "REALLOCATION", "CHANNEL_PAUSED", "CHANNEL_RESUMED", "SYNC_FAILURE", "UNKNOWN"]


InventoryCommandType = Literal["SET_STOCK", "RESTOCK", "TRANSFER", "ADJUST", "SET_PURCHASE_LIMIT", "CLEAR_PURCHASE_LIMIT", "PAUSE_CHANNEL", "RESUME_CHANNEL", "UNKNOWN"]


LineStatus = Literal["LOCKED", "REJECTED", "RELEASED"]


LockAction = Literal["LOCK", "RELEASE", "COMMIT", "SHIP"]


DecisionStatus = Literal["LOCKED", "REJECTED", "RELEASED"]


OrderEventType = Literal["PAID", "CANCELLED", "SHIPPED", "UNKNOWN"]


class ChannelStock(TypedDict):
    """How many units of a SKU a channel may advertise. Key: channel:sku (compacted topic: latest wins)."""
    channel: str
    sku: str
    sellable: int
    available: int
    updated_at: int
    seq: int
    paused: NotRequired[bool]
    region: NotRequired[str]
    flex: NotRequired[int]


class AuditRecord(TypedDict):
    """One stock movement of a SKU, a link of that SKU's SHA-256 hash chain. Key: sku. hash = SHA-256 of the record's other fields as canonical JSON (sorted keys, no spaces, UTF-8); prev_hash is the hash of the SKU's previous record (64 zeros for the first). `lockstock audit verify` replays the chain."""
    sku: str
    seq: int
    movement: str
    ref: str
    qty: int
    region: NotRequired[None | str]
    detail: str
    balances: dict[str, int]
    at: int
    prev_hash: str
    hash: str


class InventoryAlert(TypedDict):
    """Something an operator or purchasing should know about a SKU. Key: sku."""
    alert_id: str
    sku: str
    type: AlertType
    message: str
    raised_at: int
    region: NotRequired[None | str]
    channel: NotRequired[None | str]
    quantity: NotRequired[None | int]
    details: NotRequired[dict[str, str]]


class InventoryCommand(TypedDict):
    """An operator command on one SKU. Key: sku. Fields beyond sku/type are used by the types that need them."""
    command_id: str
    sku: str
    type: InventoryCommandType
    issued_at: int
    total: NotRequired[None | int]
    regions: NotRequired[dict[str, int]]
    flex_pct: NotRequired[None | float]
    region: NotRequired[None | str]
    to_region: NotRequired[None | str]
    quantity: NotRequired[None | int]
    eta: NotRequired[None | int]
    warehouse: NotRequired[None | str]
    channel: NotRequired[None | str]
    buyer_limit: NotRequired[None | int]
    reason: NotRequired[None | str]
    issued_by: NotRequired[None | str]
    warehouses: NotRequired[dict[str, int]]
    transit_id: NotRequired[None | str]
    proportional: NotRequired[bool]


class LineLockRequest(TypedDict):
    """Internal: an order's units of one SKU, routed to the partition that owns the SKU. Key: sku."""
    order_id: str
    sku: str
    qty: int
    action: LockAction
    channel: str
    buyer_id: str
    region: NotRequired[None | str]
    sku_count: int
    placed_at: int
    reason: NotRequired[None | str]
    warehouse: NotRequired[None | str]


class LineLockRequests(TypedDict):
    """Internal: a batch of LineLockRequests for one partition of lock.requests, in the order they were made (one record instead of one per line). Key: the first request's sku."""
    requests: list[LineLockRequest]


class LineLockResult(TypedDict):
    """Internal: the SKU partition's answer for an order's units of one SKU. Key: order_id."""
    order_id: str
    sku: str
    qty: int
    status: LineStatus
    reason: NotRequired[None | str]
    region: NotRequired[None | str]
    sku_count: int
    channel: str
    placed_at: int
    decided_at: int
    announced: NotRequired[bool]


class LineLockResults(TypedDict):
    """Internal: a batch of LineLockResults for one partition of lock.results, in the order they were made (one record instead of one per line). Key: the first result's order_id."""
    results: list[LineLockResult]


class DeadLetter(TypedDict):
    """A record lockstock could not process, with the reason. Key: the original key."""
    source_topic: str
    source_partition: NotRequired[None | int]
    source_offset: NotRequired[None | int]
    key: NotRequired[None | bytes]
    payload: bytes
    reason: str
    error_type: str
    service: str
    failed_at: int


class LineAllocation(TypedDict):
    """Where one order line's units were locked."""
    sku: str
    qty: int
    region: NotRequired[None | str]


class OrderDecision(TypedDict):
    """The final decision for an order. Key: order_id. A redelivered order yields the same decision again."""
    order_id: str
    status: DecisionStatus
    reason: NotRequired[None | str]
    lines: list[LineAllocation]
    decided_at: int
    channel: NotRequired[None | str]
    placed_at: NotRequired[None | int]


class OrderEvent(TypedDict):
    """A lifecycle event of an order (paid, cancelled, shipped). Key: order_id."""
    event_id: str
    order_id: str
    type: OrderEventType
    channel: str
    occurred_at: int
    warehouse: NotRequired[None | str]
    reason: NotRequired[None | str]


class OrderLine(TypedDict):
    """One line of an order: a SKU and how many units of it."""
    sku: str
    qty: int


class OrderPlaced(TypedDict):
    """An order accepted from a channel, to be locked against the stock pool. Key: order_id."""
    order_id: str
    channel: str
    buyer_id: str
    ship_to_region: str
    placed_at: int
    lines: list[OrderLine]


class OrderTimer(TypedDict):
    """Internal: a due timer for one order (EXPIRE an unpaid lock, FORGET a finished order), sent by the worker's sweeper to the order desk. Key: order_id."""
    order_id: str
    kind: str
    due_at: int
