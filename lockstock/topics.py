"""The topic registry: every topic lockstock reads or writes, with its key, value schema(s),
partitions and cleanup policy. Topics and their Avro schemas are lockstock's public interface;
this module is the single place that names them (docs/topics.md is generated from it).

Names are ``<prefix>.<suffix>`` with the prefix from settings (default ``lockstock``).
Faust also creates one changelog topic per table, ``<app_id>-<table>-changelog``, with the
partition count of the table's source topic; ``changelog_topics`` lists those.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True)
class TopicSpec:
    suffix: str
    key: str  # what the record key holds (UTF-8 string)
    value_schemas: tuple[str, ...]  # Avro record names this topic may carry
    cleanup_policy: str  # "delete" or "compact"
    retention_ms: int | None  # None: broker default / forever for compacted; -1: kept forever
    description: str
    internal: bool = False  # written and read only by lockstock workers

    def __hash__(self) -> int:
        # Specs key the envelope and output maps, several lookups per order line; the generated
        # hash hashed every field each time. Equal specs have equal suffixes, so this agrees with ==.
        return hash(self.suffix)

    def name(self, prefix: str) -> str:
        return f"{prefix}.{self.suffix}"

    def config(self) -> dict[str, str]:
        config = {"cleanup.policy": self.cleanup_policy}
        if self.retention_ms is not None:
            config["retention.ms"] = str(self.retention_ms)
        return config


ORDERS_PLACED = TopicSpec(
    "orders.placed", "order_id", ("OrderPlaced",), "delete", 14 * DAY_MS,
    "Orders from every channel, as accepted by connectors; the lock engine's input.",
)
ORDERS_EVENTS = TopicSpec(
    "orders.events", "order_id", ("OrderEvent",), "delete", 14 * DAY_MS,
    "Order lifecycle: paid, cancelled, shipped.",
)
ORDERS_DECISIONS = TopicSpec(
    "orders.decisions", "order_id", ("OrderDecision",), "delete", 30 * DAY_MS,
    "One final LOCKED / REJECTED / RELEASED decision per order (redelivery repeats it unchanged).",
)
INVENTORY_COMMANDS = TopicSpec(
    "inventory.commands", "sku", ("InventoryCommand",), "delete", 30 * DAY_MS,
    "Operator commands: set stock and split, restock, transfer, adjust, purchase limits, pause.",
)
INVENTORY_ALERTS = TopicSpec(
    "inventory.alerts", "sku", ("InventoryAlert",), "delete", 30 * DAY_MS,
    "Flex transfers, purchase-limit triggers, replenishment and reallocation alerts.",
)
INVENTORY_AUDIT = TopicSpec(
    "inventory.audit", "sku", ("AuditRecord",), "delete", -1,
    "Every stock movement per SKU as a SHA-256 hash chain (kept forever; `lockstock audit verify`).",
)
CHANNELS_STOCK = TopicSpec(
    "channels.stock", "channel:sku", ("ChannelStock",), "compact", None,
    "Per-channel sellable quantity, latest per channel:sku; what connectors push to marketplaces.",
)
DEADLETTER = TopicSpec(
    "deadletter", "original key", ("DeadLetter",), "delete", 30 * DAY_MS,
    "Records that could not be processed, byte for byte, with the reason.",
)
LOCK_REQUESTS = TopicSpec(
    "lock.requests", "sku", ("LineLockRequest", "LineLockRequests"), "delete", 7 * DAY_MS,
    "Internal: an order's units of one SKU, routed to the partition that owns the SKU (a batch's "
    "requests for one partition travel as one LineLockRequests).",
    internal=True,
)
LOCK_RESULTS = TopicSpec(
    "lock.results", "order_id", ("LineLockResult", "LineLockResults"), "delete", 7 * DAY_MS,
    "Internal: per-SKU lock outcomes, gathered per order into the final decision (a batch's "
    "results for one partition travel as one LineLockResults).",
    internal=True,
)
ORDER_TIMERS = TopicSpec(
    "order.timers", "order_id", ("OrderTimer",), "delete", 1 * DAY_MS,
    "Internal: due timers (unpaid-lock expiry, forgetting finished orders) for the order desk.",
    internal=True,
)

ALL: tuple[TopicSpec, ...] = (
    ORDERS_PLACED, ORDERS_EVENTS, ORDERS_DECISIONS, INVENTORY_COMMANDS, INVENTORY_ALERTS,
    INVENTORY_AUDIT, CHANNELS_STOCK, DEADLETTER, LOCK_REQUESTS, LOCK_RESULTS, ORDER_TIMERS,
)

# Faust tables (name -> the registry topic whose partitions it follows). streams/tables.py
# creates exactly these; a test keeps the two in step.
TABLES: dict[str, TopicSpec] = {
    "stock": LOCK_REQUESTS,
    "orders": ORDERS_PLACED,
}


class Topics:
    """Resolved topic names for one prefix: ``Topics('lockstock').orders_placed``."""

    def __init__(self, prefix: str = "lockstock") -> None:
        self.prefix = prefix
        self._by_name = {spec.name(prefix): spec for spec in ALL}  # agents look one up per event
        for spec in ALL:
            setattr(self, spec.suffix.replace(".", "_"), spec.name(prefix))

    def __iter__(self) -> Iterator[tuple[str, TopicSpec]]:
        yield from self._by_name.items()

    def spec_of(self, name: str) -> TopicSpec:
        return self._by_name[name]


def changelog_topic(app_id: str, table: str) -> str:
    """The changelog topic of one of the engine's tables, named as Faust names it (the one
    place that spells it)."""
    if table not in TABLES:
        raise ValueError(f"unknown table {table!r}; the engine's tables: {', '.join(TABLES)}")
    return f"{app_id}-{table}-changelog"


def changelog_topics(app_id: str) -> dict[str, TopicSpec]:
    """Faust's changelog topic per table and the registry topic it is co-partitioned with."""
    return {changelog_topic(app_id, table): source for table, source in TABLES.items()}
