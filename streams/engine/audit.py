"""The audit trail: every stock movement of a SKU as one link of a SHA-256 hash chain.

Each record carries the hash of the SKU's previous record, and its own hash over its canonical
JSON, so altering, removing or reordering a record breaks the chain where it happened. The
chain's head (seq and hash) lives in the SKU's state, written with the counts it describes; the
agent sends a batch's audit records and has them acknowledged *before* it writes that state,
so a state never points at a record the topic lacks. A redelivered input after a crash finds its
effect in the state and makes no new record; one replayed before its state was written makes
the same record again (its time is the input's Kafka timestamp), which the check skips as a
duplicate. Pure functions: no Kafka here.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping, TypedDict, cast

import orjson

from schemas.records import AuditRecord, InventoryAlert, InventoryCommand, LineLockRequest, LineLockResult
from streams.engine.state import SkuState


class _AuditBody(TypedDict):
    """An AuditRecord without its hash: what the hash is taken over."""
    sku: str
    seq: int
    movement: str
    ref: str
    qty: int
    region: str | None
    detail: str
    balances: dict[str, int]
    at: int
    prev_hash: str

GENESIS = "0" * 64


def balances(state: SkuState | None) -> dict[str, int]:
    """The SKU's counts that a movement changes: what each audit record freezes."""
    if state is None:
        return {}
    values = {"total": state.total, "flex": state.flex,
              "in_transit": sum(t["qty"] for t in state.in_transit.values()) if state.in_transit else 0}
    for name, region in state.regions.items():
        allocation, locked, paid, shipped = _region_keys(name)
        values[allocation] = region.allocation
        values[locked] = region.locked
        values[paid] = region.paid
        values[shipped] = region.shipped
    for name, units in state.warehouses.items():
        values[_warehouse_key(name)] = units
    return values


@functools.lru_cache(maxsize=1024)  # names come from the catalog: formatting them per movement was a third of this
def _region_keys(name: str) -> tuple[str, str, str, str]:
    return f"{name}.allocation", f"{name}.locked", f"{name}.paid", f"{name}.shipped"


@functools.lru_cache(maxsize=1024)
def _warehouse_key(name: str) -> str:
    return f"wh.{name}"


Counts = tuple  # what ``counts`` takes: opaque, only compared


def counts(state: SkuState | None) -> Counts | None:
    """The same counts as ``balances``, in a form that is cheaper to take and to compare: taken
    before every movement, when most movements then need ``balances`` only once, after it."""
    if state is None:
        return None
    regions = {name: (r.allocation, r.locked, r.paid, r.shipped) for name, r in state.regions.items()}
    in_transit = sum(t["qty"] for t in state.in_transit.values()) if state.in_transit else 0
    return state.total, state.flex, in_transit, regions, dict(state.warehouses)


def record_hash(record: dict[str, Any]) -> str:
    """SHA-256 of every field but ``hash``, as UTF-8 JSON with sorted keys and no spaces: the
    bytes of ``json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)``,
    which chains written so far were hashed over, produced by orjson (several times faster;
    a unit test pins the two byte for byte)."""
    body = {k: v for k, v in record.items() if k != "hash"}
    return _body_hash(body)


def _body_hash(body: Mapping[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


def append_movement(state: SkuState, before: dict[str, int], *, movement: str, ref: str, qty: int,
                    region: str | None, detail: str, at: int) -> AuditRecord | None:
    """The audit record of what just changed ``state`` (None if its counts did not change),
    chained to the SKU's previous record; the state's chain head moves to it."""
    after = balances(state)
    if after == before:
        return None
    return _chain(state, after, movement=movement, ref=ref, qty=qty, region=region, detail=detail, at=at)


def append_movement_since(state: SkuState, before: Counts | None, *, movement: str, ref: str, qty: int,
                          region: str | None, detail: str, at: int) -> AuditRecord | None:
    """``append_movement`` given what ``counts`` took before the movement rather than
    ``balances``: the stock keeper's way, which builds the balances once per movement, not twice."""
    if counts(state) == before:
        return None
    return _chain(state, balances(state), movement=movement, ref=ref, qty=qty, region=region, detail=detail, at=at)


def _chain(state: SkuState, after: dict[str, int], *, movement: str, ref: str, qty: int, region: str | None,
           detail: str, at: int) -> AuditRecord:
    seq = state.audit_seq + 1
    body: _AuditBody = {"sku": state.sku, "seq": seq, "movement": movement, "ref": ref, "qty": qty,
                        "region": region, "detail": detail, "balances": after, "at": at, "prev_hash": state.audit_head}
    record = cast(AuditRecord, body)  # the body is the record without its hash, hashed as it is
    record["hash"] = state.audit_head = _body_hash(body)
    state.audit_seq = seq
    return record


def describe_alerts(alerts: Iterable[InventoryAlert]) -> str:
    """The automatic moves an action set off (flex transfers, reallocations), for ``detail``."""
    moved = [a["message"] for a in alerts if a["type"] in ("FLEX_TRANSFER", "REALLOCATION")]
    return "; ".join(moved)


def line_movement(request: LineLockRequest, result: LineLockResult | None, alerts: list[InventoryAlert]) -> dict[str, Any]:
    """How an order line's action reads in the audit trail."""
    detail = [request.get("reason") or "", f"warehouse {request['warehouse']}" if request.get("warehouse") else "",
              describe_alerts(alerts) if alerts else ""]
    return {"movement": request["action"], "ref": request["order_id"], "qty": request["qty"],
            "region": (result.get("region") if result else None) or request.get("region") or None,
            "detail": "; ".join(d for d in detail if d) if any(detail) else ""}


def command_movement(command: InventoryCommand, alerts: list[InventoryAlert]) -> dict[str, Any]:
    """How an operator command reads in the audit trail (RESTOCK of a landed shipment: RECEIVE)."""
    kind, eta = command["type"], command.get("eta")
    received = kind == "RESTOCK" and command.get("transit_id")
    detail = [f"shipment {command['transit_id']} received" if received else "",
              f"to {command['to_region']}" if command.get("to_region") else "",
              f"in transit, ETA {_iso(eta)}" if kind == "RESTOCK" and eta and not received else "",
              command.get("reason") or "", f"by {command['issued_by']}" if command.get("issued_by") else "",
              describe_alerts(alerts)]
    return {"movement": "RECEIVE" if received else kind, "ref": command["command_id"],
            "qty": command.get("quantity") or (command.get("total") if kind == "SET_STOCK" else 0) or 0,
            "region": command.get("region"), "detail": "; ".join(d for d in detail if d)}


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%MZ")


# -- checking a chain ------------------------------------------------------------------------

@dataclass
class Link:
    """A record as read back, with where it was found (for the report)."""

    record: dict[str, Any]
    where: str  # e.g. "partition 2 offset 117"
    error: str | None = None  # set when the record could not even be decoded


@dataclass
class ChainReport:
    sku: str
    records: int = 0
    head_seq: int = 0
    head_hash: str = GENESIS
    duplicates: int = 0  # identical records written twice (a replay after a crash): harmless
    broken: str | None = None  # the first broken link, in words
    broken_seq: int | None = None
    broken_where: str | None = None

    @property
    def ok(self) -> bool:
        return self.broken is None

    def as_dict(self) -> dict[str, Any]:
        return {"sku": self.sku, "ok": self.ok, "records": self.records, "head_seq": self.head_seq,
                "head_hash": self.head_hash, "duplicates": self.duplicates, "broken": self.broken,
                "broken_seq": self.broken_seq, "broken_where": self.broken_where}


@dataclass
class _Walk:
    report: ChainReport
    hashes: dict[int, str] = field(default_factory=dict)  # seq -> hash accepted


def verify_chain(sku: str, links: Iterable[Link], *, state_head: tuple[int, str] | None = None) -> ChainReport:
    """Replay one SKU's records in topic order and report the first broken link: a record whose
    hash does not match its content, whose prev_hash is not its predecessor's hash, whose seq
    skips or repeats with other content (a fork), or, given the engine's own head
    ``state_head`` = (seq, hash), a chain that does not reach it (records missing at the end)."""
    walk = _Walk(ChainReport(sku))
    report = walk.report

    def broken(seq: int | None, where: str | None, why: str) -> ChainReport:
        report.broken, report.broken_seq, report.broken_where = why, seq, where
        return report

    for link in links:
        record, where = link.record, link.where
        if link.error:
            return broken(report.head_seq + 1, where, link.error)
        seq = record.get("seq")
        if record.get("sku") != sku:
            return broken(seq, where, f"record of SKU {record.get('sku')!r} in the chain of {sku!r}")
        if record_hash(record) != record.get("hash"):
            return broken(seq, where, f"seq {seq}: the record's content does not match its hash (altered)")
        if seq in walk.hashes:
            if walk.hashes[seq] == record["hash"]:
                report.duplicates += 1
                continue
            return broken(seq, where, f"seq {seq} appears twice with different content (a forged or forked record)")
        expected_seq = report.head_seq + 1
        if seq != expected_seq:
            return broken(seq, where, f"seq {seq} follows seq {report.head_seq}: "
                                      f"{'records missing' if isinstance(seq, int) and seq > expected_seq else 'out of order'}")
        if record["prev_hash"] != report.head_hash:
            return broken(seq, where, f"seq {seq}: prev_hash does not match the hash of seq {report.head_seq}")
        walk.hashes[seq] = record["hash"]
        report.records += 1
        report.head_seq, report.head_hash = seq, record["hash"]
    if state_head is not None:
        seq, head = state_head
        if seq > report.head_seq:
            return broken(report.head_seq + 1, None,
                          f"the engine's state is at seq {seq} but the topic ends at seq {report.head_seq} (records missing)")
        if walk.hashes.get(seq, GENESIS if seq == 0 else None) != head:
            return broken(seq, None, f"the engine's state holds a different hash for seq {seq} than the topic")
    return report
