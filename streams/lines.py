"""The records kept beside each SKU's head in the stock table (streams/engine/state.py ``Lines``):
how they are keyed and encoded, how a partition is repaired when this worker takes it over, and
how they are forgotten by time. docs/state.md gives the argument for why this is safe on a
broker without transactions.

A line record's key is the JSON list ``[sku, kind, id]``; a head's key is the JSON string
``sku``, so a store lists every head before every line record (``"`` sorts before ``[``). Its
value is ``[version, after, before]``: the record as the batch numbered ``version`` of its SKU
left it, and as it was before that batch. A batch sends its line records before its heads, so a
worker killed in between leaves records newer than their head; ``resolve`` reads those as their
``before`` and ``repair`` writes them back so, before any new batch of the partition runs.
"""

from __future__ import annotations

import heapq
from typing import Any, Iterator

import orjson

from streams.engine.state import BUYER, COMMAND, DONE, LINE

HEAD_PREFIX, LINE_PREFIX = b'"', b"["


def is_line_key(key: bytes | None) -> bool:
    return key is not None and key[:1] == LINE_PREFIX


def compact(data: bytes) -> bytes:
    """A copy of ``data`` that takes no more memory than it needs, for bytes kept beyond the
    next allocation: what orjson.dumps returns pins a much larger allocation while it lives
    (github.com/ijl/orjson/issues/483; docs/decisions/0006). A batch keeps its keys and records
    until its commit."""
    return b"%b" % data


def line_key(sku: str, kind: str, ident: str) -> bytes:
    return compact(orjson.dumps([sku, kind, ident]))


def encode_line(version: int, after: list | None, before: list | None) -> bytes:
    return compact(orjson.dumps([version, after, before]))


def resolve(raw: bytes | None, head_version: int) -> list | None:
    """A line record's value as of its head's committed ``version``."""
    if raw is None:
        return None
    version, after, before = orjson.loads(raw)
    return after if version <= head_version else before


def stamp(kind: str, value: list | None) -> int | None | bool:
    """When a record was last changed, for forgetting it; False for one that is never forgotten
    (a line still holding units). None: a record from the first table format, time unknown."""
    if value is None:
        return False
    if kind == LINE:
        return value[2] if value[0] == DONE else False
    if kind == BUYER:
        return value[1]
    if kind == COMMAND:
        return value[0]
    return False


def heads_in(db: Any) -> Iterator[tuple[str, bytes]]:
    """(sku, raw head) of every SKU in one partition's store, without walking its line records:
    heads sort before them."""
    for key, value in db.items(from_key=HEAD_PREFIX):
        if key[:1] != HEAD_PREFIX:
            break
        yield orjson.loads(key), value


def scan(db: Any) -> Iterator[tuple[bytes, str, str, list | None, list | None, int]]:
    """Every line record of one partition's store: (key, sku, kind, as read now, before, the
    version of its head). Heads are read first (they sort first), so each record is judged
    against its own head."""
    versions: dict[str, int] = {}
    for key, value in db.items(from_key=HEAD_PREFIX):
        if key[:1] == HEAD_PREFIX:
            versions[orjson.loads(key)] = orjson.loads(value).get("version", 0)
        elif key[:1] == LINE_PREFIX:
            sku, kind, _ = orjson.loads(key)
            version, after, before = orjson.loads(value)
            head = versions.get(sku, 0)
            yield key, sku, kind, (after if version <= head else before), before, version - head
        else:
            break  # past the line records: Faust's own keys


class Forgetting:
    """Which line records of this worker's active partitions are due to be forgotten, and when:
    finished lines, buyer tallies and command ids ``retention_ms`` after their last change.
    A min-heap of (due, partition, key); an entry whose record changed since is skipped when it
    comes up (the change pushed a later entry)."""

    def __init__(self, retention_ms: int) -> None:
        self.retention_ms = retention_ms
        self.heap: list[tuple[int, int, bytes, str]] = []

    def clear(self) -> None:
        self.heap = []

    def note(self, partition: int, key: bytes, kind: str, value: list | None, now: int) -> None:
        at = stamp(kind, value)
        if at is not False:
            heapq.heappush(self.heap, ((now if at is None else at) + self.retention_ms, partition, key, kind))

    def due(self, now: int, limit: int) -> list[tuple[int, bytes, str]]:
        """Up to ``limit`` (partition, key, kind) whose time came, soonest first."""
        out = []
        while self.heap and self.heap[0][0] <= now and len(out) < limit:
            _, partition, key, kind = heapq.heappop(self.heap)
            out.append((partition, key, kind))
        return out

    def still_due(self, kind: str, value: list | None, now: int) -> bool:
        at = stamp(kind, value)
        return at is not False and (at is None or at + self.retention_ms <= now)
