"""The per-SKU state the lock engine keeps: a small head per SKU plus one record per order line,
buyer tally and applied command, kept beside it (``Lines``).

Accounting (units are conserved; tests check these invariants on random streams):
  total == flex + sum(region.allocation)
  region.locked + region.paid + region.shipped <= region.allocation   (never oversold)
A region's allocation counts every unit it was given during the stream, including those already
shipped, so ``free = allocation - locked - paid - shipped`` is what it can still lock. Flex units
belong to no region until moved.

The head holds only counts, flags and sequence numbers: nothing in it grows with the orders,
buyers or history of a sale, so a hot SKU costs the same per line at its 200,000th open order as
at its first. What does grow (a line's hold or its outcome, a buyer's units, a command's id) is a
record of its own under the SKU, written only when it changes and forgotten by time
(``Catalog.rules.order_retention_s``). How the head and its records are committed together on a
broker without transactions is the storage layer's business (streams/transaction.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator, Protocol

import orjson

# Kinds of record kept beside a SKU's head, and their values (plain JSON lists):
LINE = "o"  # order id -> [HELD, qty, region, buyer, channel, paid] or [DONE, outcome, finished_at]
BUYER = "b"  # buyer id -> [units held or shipped, last change at]
COMMAND = "c"  # command id -> [applied at]
HELD, DONE = "H", "F"


@dataclass
class RegionStock:
    allocation: int = 0
    locked: int = 0  # reserved, not paid
    paid: int = 0  # paid, not shipped
    shipped: int = 0
    baseline_share: float = 0.0  # share of the allocations when stock was set (reallocation baseline)
    above_flex_threshold: bool = False  # hysteresis of the automatic flex transfer
    hot: bool = False  # hysteresis of velocity reallocation

    @property
    def used(self) -> int:
        return self.locked + self.paid + self.shipped

    @property
    def free(self) -> int:
        return self.allocation - self.locked - self.paid - self.shipped  # not via ``used``: read on every lock

    def to_list(self) -> list:
        return [self.allocation, self.locked, self.paid, self.shipped, self.baseline_share,
                self.above_flex_threshold, self.hot]

    @classmethod
    def from_list(cls, values: list) -> "RegionStock":
        return cls(*values)


class Lines(Protocol):
    """The records kept beside one SKU's head, by (kind, id). Values are plain JSON lists; None
    means no record. The engine reads and writes through this and nothing else, so the same
    functions run over a dict in tests and over the staged store of a batch in the worker."""

    def get(self, kind: str, ident: str) -> list | None: ...

    def put(self, kind: str, ident: str, value: list | None) -> None: ...


class MemoryLines:
    """``Lines`` over a dict: unit tests, and a SKU read back from its changelog."""

    def __init__(self, records: dict[tuple[str, str], list] | None = None) -> None:
        self.records: dict[tuple[str, str], list] = dict(records or {})

    def get(self, kind: str, ident: str) -> list | None:
        return self.records.get((kind, ident))

    def put(self, kind: str, ident: str, value: list | None) -> None:
        if value is None:
            self.records.pop((kind, ident), None)
        else:
            self.records[(kind, ident)] = value

    def of_kind(self, kind: str) -> Iterator[tuple[str, list]]:
        return ((ident, value) for (k, ident), value in self.records.items() if k == kind)

    def __deepcopy__(self, memo: dict) -> "MemoryLines":
        return MemoryLines({key: list(value) for key, value in self.records.items()})

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MemoryLines) and other.records == self.records


@dataclass
class Reservation:
    qty: int
    region: str
    buyer: str
    channel: str
    paid: bool = False

    def to_record(self) -> list:
        return [HELD, self.qty, self.region, self.buyer, self.channel, self.paid]

    @classmethod
    def from_record(cls, values: list) -> "Reservation":
        return cls(*values[1:6])


@dataclass
class SkuState:
    sku: str
    total: int = 0
    flex: int = 0
    regions: dict[str, RegionStock] = field(default_factory=dict)
    warehouses: dict[str, int] = field(default_factory=dict)  # warehouse -> physical on-hand
    in_transit: dict[str, dict[str, Any]] = field(default_factory=dict)  # transit id -> {qty, region, warehouse, eta}
    open_reservations: int = 0  # lines holding units (locked or paid), each a LINE record
    buyer_limit: int | None = None
    limit_source: str | None = None  # "operator" or "auto"
    paused: list[str] = field(default_factory=list)  # channels that may not lock this SKU
    sales: list[list] = field(default_factory=list)  # [[bucket_start_ms, {region: units}], ...] newest last
    low_stock: bool = False  # hysteresis of the replenishment alert
    alert_seq: int = 0  # numbers alerts, so a replayed alert carries the same id
    published: dict[str, list] = field(default_factory=dict)  # channel -> [sellable, available, paused, flex] last sent
    seq: int = 0  # ChannelStock sequence for this SKU
    announced_at: int = 0  # when ChannelStock of this SKU was last sent (ms)
    ship_shortfall: int = 0  # units shipped that no warehouse's count covered (count is off)
    audit_seq: int = 0  # the SKU's audit chain head (streams.engine.audit): last record's seq
    audit_head: str = "0" * 64  # ... and its hash (64 zeros: no record yet)
    version: int = 0  # the storage layer's commit number for this SKU (streams/transaction.py)
    lines: Lines = field(default_factory=MemoryLines, compare=False, repr=False)
    # Per region, the units ``sales`` holds (streams.engine.automation keeps it up to date). Derived,
    # never stored: None until first needed, rebuilt from ``sales`` after every load.
    sales_in_window: dict[str, int] | None = field(default=None, init=False, compare=False, repr=False)

    @property
    def available(self) -> int:
        """Units that can still be locked anywhere: every region's free units plus the flex pool."""
        units = self.flex
        for r in self.regions.values():  # inlined ``free``: this runs several times per lock
            units += r.allocation - r.locked - r.paid - r.shipped
        return units

    def region(self, name: str) -> RegionStock:
        if name not in self.regions:
            self.regions[name] = RegionStock()
        return self.regions[name]

    # -- the records beside the head -----------------------------------------------------------

    def line(self, order_id: str) -> list | None:
        """The order line's record: ``[HELD, ...]`` while it holds units, ``[DONE, ...]`` once
        finished (while remembered), None if unknown. Read once where both matter."""
        return self.lines.get(LINE, order_id)

    def held(self, order_id: str) -> Reservation | None:
        record = self.lines.get(LINE, order_id)
        return Reservation.from_record(record) if record is not None and record[0] == HELD else None

    def outcome(self, order_id: str) -> str | None:
        """A finished line's "STATUS[:DETAIL]" while it is remembered."""
        record = self.lines.get(LINE, order_id)
        return record[1] if record is not None and record[0] == DONE else None

    def hold(self, order_id: str, reservation: Reservation) -> None:
        record = self.lines.get(LINE, order_id)
        if record is None or record[0] != HELD:
            self.open_reservations += 1
        self.lines.put(LINE, order_id, reservation.to_record())

    def finish(self, order_id: str, outcome: str, now: int) -> None:
        """The line holds nothing (any more): remember its outcome so a redelivery repeats it."""
        record = self.lines.get(LINE, order_id)
        if record is not None and record[0] == HELD:
            self.open_reservations -= 1
        self.lines.put(LINE, order_id, [DONE, outcome, now])

    def buyer_units(self, buyer: str) -> int:
        record = self.lines.get(BUYER, buyer)
        return record[0] if record is not None else 0

    def add_buyer_units(self, buyer: str, qty: int, now: int) -> None:
        self.lines.put(BUYER, buyer, [max(0, self.buyer_units(buyer) + qty), now])

    def command_applied(self, command_id: str) -> bool:
        return self.lines.get(COMMAND, command_id) is not None

    def note_command(self, command_id: str, now: int) -> None:
        self.lines.put(COMMAND, command_id, [now])

    # -- what a MemoryLines holds, by kind (tests and read-back; a worker's store has no such walk)

    @property
    def reservations(self) -> dict[str, Reservation]:
        return {i: Reservation.from_record(v) for i, v in self._memory().of_kind(LINE) if v[0] == HELD}

    @property
    def history(self) -> dict[str, str]:
        return {i: v[1] for i, v in self._memory().of_kind(LINE) if v[0] == DONE}

    @property
    def buyers(self) -> dict[str, int]:
        return {i: v[0] for i, v in self._memory().of_kind(BUYER) if v[0] > 0}

    @property
    def applied_commands(self) -> set[str]:
        return {i for i, _ in self._memory().of_kind(COMMAND)}

    def _memory(self) -> MemoryLines:
        if not isinstance(self.lines, MemoryLines):
            raise TypeError("only a SKU state read into memory can list its records")
        return self.lines

    # -- the head as a table value -------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "sku": self.sku, "total": self.total, "flex": self.flex,
            "regions": {k: v.to_list() for k, v in self.regions.items()},
            "warehouses": self.warehouses, "in_transit": self.in_transit,
            "open_reservations": self.open_reservations, "buyer_limit": self.buyer_limit,
            "limit_source": self.limit_source, "paused": self.paused, "sales": self.sales,
            "low_stock": self.low_stock, "alert_seq": self.alert_seq, "published": self.published, "seq": self.seq,
            "announced_at": self.announced_at,
            "ship_shortfall": self.ship_shortfall, "audit_seq": self.audit_seq, "audit_head": self.audit_head,
            "version": self.version,
        }

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, data: dict[str, Any], lines: Lines | None = None) -> "SkuState":
        """The head from its table value. A value written before lines had records of their own
        (it holds "reservations", "history", "buyers", "applied_commands") is read too: its
        records go to ``lines`` and ``legacy_records`` names them, for the storage layer to write
        out."""
        data = dict(data)
        legacy = {key: data.pop(key) for key in _LEGACY if key in data}
        state = cls(**{k: v for k, v in data.items() if k != "regions"})
        state.regions = {k: RegionStock.from_list(v) for k, v in data.get("regions", {}).items()}
        state.lines = lines if lines is not None else MemoryLines()
        if legacy:
            records = _legacy_records(legacy)
            state.open_reservations = sum(1 for (kind, _), v in records.items() if kind == LINE and v[0] == HELD)
            for (kind, ident), value in records.items():
                if state.lines.get(kind, ident) is None:
                    state.lines.put(kind, ident, value)
        return state

    def public_view(self) -> dict[str, Any]:
        """What operators, `stock show` and the war room see (no dedup bookkeeping)."""
        return {
            "sku": self.sku, "total": self.total, "available": self.available, "flex": self.flex,
            "locked": sum(r.locked for r in self.regions.values()),
            "paid": sum(r.paid for r in self.regions.values()),
            "shipped": sum(r.shipped for r in self.regions.values()),
            "regions": {
                name: {"allocation": r.allocation, "locked": r.locked, "paid": r.paid, "shipped": r.shipped,
                       "free": r.free, "in_transit": sum(t["qty"] for t in self.in_transit.values() if t["region"] == name)}
                for name, r in sorted(self.regions.items())
            },
            "warehouses": dict(sorted(self.warehouses.items())),
            "in_transit": [{"id": k, **v} for k, v in sorted(self.in_transit.items())],
            "buyer_limit": self.buyer_limit, "limit_source": self.limit_source,
            "paused_channels": sorted(self.paused), "open_reservations": self.open_reservations,
            "low_stock": self.low_stock, "ship_shortfall": self.ship_shortfall,
            "audit": {"seq": self.audit_seq, "head": self.audit_head},
        }


_LEGACY = ("reservations", "history", "buyers", "applied_commands")


def _legacy_records(legacy: dict[str, Any]) -> dict[tuple[str, str], list]:
    """The records a head of the first table format kept inline. That format kept no times: they
    are stamped None, which the forgetting (streams/expiry.py) reads as "seen now"."""
    records: dict[tuple[str, str], list] = {}
    for order_id, outcome in (legacy.get("history") or {}).items():
        records[(LINE, order_id)] = [DONE, outcome, None]
    for order_id, values in (legacy.get("reservations") or {}).items():
        records[(LINE, order_id)] = [HELD, *values[:5]]
    for buyer, units in (legacy.get("buyers") or {}).items():
        records[(BUYER, buyer)] = [units, None]
    for command_id in legacy.get("applied_commands") or ():
        records[(COMMAND, command_id)] = [None]
    return records
