"""One batch's changes to one table, and the one protocol that commits them.

The agents never write a table themselves: their folds read and stage through a
``TableTransaction``, and ``commit`` makes the batch durable in numbered steps (the embedded
broker has no transactions, so the order is the protocol):

  1. stage      the folds read values through the transaction and stage new ones (before commit);
  2. seal       the staged values are encoded as changelog records (heads get the batch's version)
                and become what the next batch reads: the decoded heads go to the cache, the
                encoded records to the store's pending writes, until step 5 writes them;
  3. outputs    the batch's records for other topics are sent and acknowledged: its effects
                (audit, alerts, channel stock, requests), never its answers;
  4. changelog  once the previous batch's store is written (its step 5), the sealed changelog
                records are sent and acknowledged: per partition, a SKU's line records before its head, so the head
                (which carries the batch's version) is the commit point of everything the batch
                changed for that SKU;
  5. store      the local store (RocksDB) is written in one write batch per partition with its
                persisted changelog offset (an offset that goes backwards is refused), and the
                pending writes it covers are dropped;
  6. answers    the records others act on (every decision, and the keeper's lock results:
                streams/topology.py ``after_changelog``) are sent and acknowledged.

Sealing (2) is synchronous, so the next batch can be folded while this one's steps 3-6 wait on
the broker (streams/pipeline.py): it reads the sealed values, never the half-staged ones, and its
changelog follows this one's. Effects go before the changelog: a kill between the two leaves a
changelog that names nothing the topics lack, and the replayed input finds the state without the
batch and repeats it (same ids; consumers dedupe). Answers go after it: an answer is never out for
a batch a kill lost, so no one acts on an answer the replay might give differently; a kill before
they are all sent leaves the batch in the changelog, and the replay repeats its answers (a
replayed lock result is not announced by the keeper: the desk repeats its decision). The changelog
is the state of record and the store never runs ahead of it, so whichever worker recovers a
partition rebuilds the same state. Line records newer than their head (a kill inside step 4) are
read as their ``before`` and written back before the partition's next batch
(``TableStore.activate``). docs/state.md has the whole argument.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Protocol, Sequence

import orjson

from lockstock.errors import LockstockError
from streams.engine.state import MemoryLines, SkuState
from streams.lines import Forgetting, compact, encode_line, line_key, resolve, scan
from streams.tables import StateCache, store_key, write_stores

FORGET_PER_BATCH = 1_000  # records forgotten per batch at most: keeps every batch's size bounded


class OffsetWentBackwards(LockstockError):
    """The changelog offset a store write would persist is not past the one it holds."""


Record = tuple[str, Any, Any, int | None]  # topic, key, value, partition (None: the producer's choice)


class Producer(Protocol):
    async def send_all(self, records: list[Record]) -> list[tuple[int, int]]: ...


@dataclass(slots=True)
class StagedLine:
    partition: int
    sku: str
    kind: str
    after: list | None
    before: list | None
    tombstone: bool = False  # forgotten: a delete the compacted changelog drops


class TableStore:
    """One Faust table as this worker holds it: the local store per partition, the decoded
    values it touched (``StateCache``), and, for the stock table, the line records' forgetting.
    Long-lived; ``begin`` opens each batch's transaction."""

    def __init__(self, table: Any, decode: Callable[[dict[str, Any]], Any], key_field: str,
                 retention_ms: int | None = None) -> None:
        self.table = table
        self.cache = StateCache(table, decode, key_field=key_field, read=self.stored)
        self.key_field = key_field
        self.has_lines = retention_ms is not None
        self.forgetting = Forgetting(retention_ms or 0)
        self.active: set[int] = set()  # partitions repaired and indexed in this assignment
        self.persisted: dict[int, int] = {}
        # Sealed values not yet in the store (commit steps 2-5): store key -> (seal number, value).
        self.pending: dict[bytes, tuple[int, bytes | None]] = {}
        self.seals = 0

    @property
    def name(self) -> str:
        return self.table.name

    def changelog(self) -> str:
        return self.table.changelog_topic.get_topic_name()

    def db(self, partition: int) -> Any:
        return self.table.data._db_for_partition(partition)

    def stored(self, key: bytes, partition: int, db: Any = None) -> bytes | None:
        """``key``'s raw value as the last sealed batch left it: pending, else in the store."""
        held = self.pending.get(key)
        if held is not None:
            return held[1]
        return (db or self.db(partition)).get(key)

    def sync(self, epoch: Any) -> None:
        """Forget everything held for another partition assignment (see StateCache.sync)."""
        if self.cache.sync(epoch):
            if self.pending:  # the agent drains its commits before a new assignment (streams/pipeline.py)
                raise LockstockError(f"{self.name}: {len(self.pending)} sealed values not yet stored at a rebalance")
            self.active.clear()
            self.forgetting.clear()
            self.persisted.clear()

    def begin(self, now: int) -> "TableTransaction":
        return TableTransaction(self, now)


class TableTransaction:
    """A batch's reads and staged writes of one table (see the module docstring for commit)."""

    def __init__(self, store: TableStore, now: int) -> None:
        self.store = store
        self.now = now
        self.heads: dict[str, tuple[int, Any]] = {}  # key -> (partition, value or None to delete)
        self.lines: dict[bytes, StagedLine] = {}
        self.committed: dict[bytes, list | None] = {}  # line values as committed, read this batch
        self._undo: list[tuple] | None = None
        self._saved: tuple[str, int, bytes] | None = None
        self.dbs: dict[int, Any] = {}
        self.seal: int | None = None  # this batch's seal number once sealed
        self.records: list[tuple[str, bytes, bytes | None, int]] = []
        self.entries: list[tuple[int, bytes, bytes | None]] = []

    # -- 1. stage ----------------------------------------------------------------------------

    def read(self, key: str, partition: int) -> Any:
        """``key``'s value as this batch has it: staged, else cached, else stored."""
        staged = self.heads.get(key)
        if staged is not None:
            return staged[1]
        value = self.store.cache.get(key, partition)
        if value is not None and self.store.has_lines:
            self._bind(value, partition)
        return value

    def write(self, key: str, partition: int, value: Any) -> None:
        if self._undo is not None and key not in self.heads:
            self._undo.append(("head", key))
        self.heads[key] = (partition, value)
        if self.store.has_lines and value is not None and not isinstance(value.lines, SkuLines):
            self._bind(value, partition)  # a SKU the batch created: its records so far were in memory

    def _bind(self, state: SkuState, partition: int) -> None:
        legacy = state.lines.records if isinstance(state.lines, MemoryLines) else {}
        state.lines = SkuLines(self, state, partition)
        for (kind, ident), value in legacy.items():  # a head of the first format: its records move out
            if state.lines.get(kind, ident) is None:
                state.lines.put(kind, ident, value)

    def read_line(self, key: bytes, partition: int, head_version: int) -> list | None:
        """The line record under ``key`` as this batch has it: staged, else as committed."""
        staged = self.lines.get(key)
        if staged is not None:
            return staged.after
        try:
            return self.committed[key]
        except KeyError:
            return self._committed(key, partition, head_version)

    def _committed(self, key: bytes, partition: int, head_version: int) -> list | None:
        try:
            return self.committed[key]
        except KeyError:
            value = self.committed[key] = resolve(self.store.stored(key, partition, self._db(partition)), head_version)
            return value

    def _db(self, partition: int) -> Any:
        """The partition's store, looked up once per batch (through Faust, several calls deep)."""
        try:
            return self.dbs[partition]
        except KeyError:
            db = self.dbs[partition] = self.store.db(partition)
            return db

    def stage_line(self, state: SkuState, partition: int, kind: str, key: bytes, value: list | None) -> None:
        staged = self.lines.get(key)
        if self._undo is not None:
            self._undo.append(("line", key, None if staged is None else (staged.after, staged.tombstone)))
        if staged is None:
            before = self._committed(key, partition, state.version)
            self.lines[key] = StagedLine(partition, state.sku, kind, value, before)
        else:
            staged.after, staged.tombstone = value, False
        staged_head = self.heads.get(state.sku)
        if staged_head is None or staged_head[1] is not state:  # staged already: writing it again changes nothing
            self.write(state.sku, partition, state)

    # -- one event's savepoint: a failing event leaves nothing half-applied --------------------

    def begin_event(self, key: str | None) -> None:
        self._undo = []
        staged = self.heads.get(key) if key is not None else None
        self._saved = None if staged is None or staged[1] is None else (key, staged[0], staged[1].to_json())

    def end_event(self) -> None:
        self._undo, self._saved = None, None

    def fail_event(self, key: str | None) -> None:
        """Undo what the failing event staged: its line records, the heads it staged first, and
        the in-place changes to a head staged before it (from the snapshot ``begin_event`` took).
        A head it read but had not staged may have been changed in place: the cache drops it."""
        for entry in reversed(self._undo or []):
            if entry[0] == "head":
                self.heads.pop(entry[1], None)
            elif entry[2] is None:
                self.lines.pop(entry[1], None)
            else:
                self.lines[entry[1]].after, self.lines[entry[1]].tombstone = entry[2]
        if self._saved is not None:
            saved_key, partition, raw = self._saved
            value = self.store.cache.decode(orjson.loads(raw))
            if self.store.has_lines:
                self._bind(value, partition)
            self.heads[saved_key] = (partition, value)
        elif key is not None and key not in self.heads:
            self.store.cache.forget(key)
        self._undo, self._saved = None, None

    # -- taking a partition over, and forgetting by time ---------------------------------------

    def activate(self, partition: int) -> int:
        """Before this worker's first batch on ``partition`` in this assignment: line records a
        killed batch left newer than their head are written back as they were, and every record
        that is forgotten by time is indexed. Returns how many were written back."""
        store = self.store
        if partition in store.active or not store.has_lines:
            return 0
        repaired = 0
        for key, sku, kind, current, before, ahead in scan(store.db(partition)):
            if ahead > 0:
                repaired += 1
                head = self.read(sku, partition)
                if head is None or before is None:
                    self.lines[key] = StagedLine(partition, sku, kind, None, None, tombstone=True)
                else:
                    self.lines[key] = StagedLine(partition, sku, kind, before, before)
                    self.write(sku, partition, head)
            store.forgetting.note(partition, key, kind, current, self.now)
        store.active.add(partition)
        return repaired

    def forget_due(self, limit: int = FORGET_PER_BATCH) -> int:
        """Stage deletes for records whose time came (not those this batch changed)."""
        store, forgotten = self.store, 0
        for partition, key, kind in store.forgetting.due(self.now, limit):
            if key in self.lines:
                continue
            sku = orjson.loads(key)[0]
            head = self.read(sku, partition)
            current = self._committed(key, partition, head.version if head is not None else 0)
            if store.forgetting.still_due(kind, current, self.now):
                self.lines[key] = StagedLine(partition, sku, kind, None, current, tombstone=True)
                forgotten += 1
        return forgotten

    # -- 2. seal, 3-6. commit ---------------------------------------------------------------------

    def seal_batch(self) -> None:
        """Step 2 (module docstring): from here on, the next batch reads what this one staged."""
        store = self.store
        records, entries = self._changelog()
        self.records, self.entries = records, entries
        store.seals += 1
        self.seal = store.seals
        for _, key, value in entries:
            store.pending[key] = (self.seal, value)
        self._update_cache()

    async def commit(self, producer: Producer, outputs: list[Record], after: Awaitable[Any] | None = None,
                     answers: Sequence[Record] = (), stored: asyncio.Future | None = None) -> None:
        """Steps 2-6 (module docstring); ``after``: the previous batch's step 5, which step 4 waits
        for; ``stored`` is resolved once this batch's step 5 is done. Raises if the broker refuses
        anything: the caller must then stop without acknowledging the batch's input."""
        if self.seal is None:
            self.seal_batch()  # 2. seal
        await producer.send_all(outputs)  # 3. outputs
        if after is not None:
            await after
        positions = await producer.send_all(self.records)  # 4. changelog
        self._write_store(self.entries, positions)  # 5. store
        self._settle()
        if stored is not None and not stored.done():
            stored.set_result(None)
        if answers:
            await producer.send_all(list(answers))  # 6. answers

    def _changelog(self) -> tuple[list[tuple[str, bytes, bytes | None, int]], list[tuple[int, bytes, bytes | None]]]:
        topic = self.store.changelog()
        if self.store.has_lines:
            for _, value in self.heads.values():
                if value is not None:
                    value.version += 1
        entries = []  # (partition, key, value) in send order: line records, then heads
        for key, line in self.lines.items():
            if line.tombstone:
                entries.append((line.partition, key, None))
            else:
                entries.append((line.partition, key, encode_line(self._version_of(line.sku), line.after, line.before)))
        for key, (partition, value) in self.heads.items():
            # Compact copies (streams.lines.compact): the entries live until the commit ends.
            entries.append((partition, compact(store_key(key)), None if value is None else compact(value.to_json())))
        return [(topic, key, value, partition) for partition, key, value in entries], entries

    def _version_of(self, sku: str) -> int:
        staged = self.heads.get(sku)
        return staged[1].version if staged is not None and staged[1] is not None else 0

    def _write_store(self, entries: list[tuple[int, bytes, bytes | None]], positions: list[tuple[int, int]]) -> None:
        values: dict[int, list[tuple[bytes, bytes | None]]] = {}
        offsets: dict[int, int] = {}
        for (partition, key, value), (_, offset) in zip(entries, positions):
            items = values.get(partition)
            if items is None:
                items = values[partition] = []
            items.append((key, value))
            if offset > offsets.get(partition, -1):
                offsets[partition] = offset
        for partition, offset in offsets.items():
            last = self.store.persisted.get(partition)
            if last is None:
                held = self.store.db(partition).get(self.store.table.data.offset_key)
                last = int(held) if held is not None else -1
            if offset <= last:
                raise OffsetWentBackwards(
                    f"{self.store.name}[{partition}]: changelog offset {offset} is not past the persisted {last}")
            self.store.persisted[partition] = offset
        if values:
            write_stores(self.store.table, values, offsets)

    def _update_cache(self) -> None:
        cache, forgetting = self.store.cache, self.store.forgetting
        for key, (_, value) in self.heads.items():
            cache.put(key, value)
        if self.store.has_lines:
            for key, line in self.lines.items():
                if not line.tombstone:
                    forgetting.note(line.partition, key, line.kind, line.after, self.now)

    def _settle(self) -> None:
        """The store now holds this batch's values: drop the pending writes no later batch made."""
        pending, seal = self.store.pending, self.seal
        for _, key, _ in self.entries:
            held = pending.get(key)
            if held is not None and held[0] == seal:
                del pending[key]
        self.records, self.entries = [], []
        self._release()

    def _release(self) -> None:
        """Let go of the batch's line records once they are committed. The cached heads still
        reach this transaction (through their ``SkuLines``) until a later batch reads them: held
        here, every batch's records lived as long as the heads it touched, which kept the
        garbage collector walking them. A head read outside a transaction still reads its
        records, from the store."""
        self.lines = {}
        self.committed = {}
        self.dbs = {}  # a later rebalance may close them


class SkuLines:
    """The ``Lines`` of one SKU head within a transaction (streams/engine/state.py)."""

    __slots__ = ("tx", "state", "partition", "keys")

    def __init__(self, tx: TableTransaction, state: SkuState, partition: int) -> None:
        self.tx, self.state, self.partition = tx, state, partition
        # kind -> id -> line key: a lock reads and writes the same records several times. Keyed by
        # strings, not (kind, id) tuples: a tuple per record lived as long as the batch, and that
        # alone made the collector run a full collection more often.
        self.keys: dict[str, dict[str, bytes]] = {}

    def _key(self, kind: str, ident: str) -> bytes:
        by_ident = self.keys.get(kind)
        if by_ident is None:
            by_ident = self.keys[kind] = {}
        key = by_ident.get(ident)
        if key is None:
            key = by_ident[ident] = line_key(self.state.sku, kind, ident)
        return key

    def get(self, kind: str, ident: str) -> list | None:
        return self.tx.read_line(self._key(kind, ident), self.partition, self.state.version)

    def put(self, kind: str, ident: str, value: list | None) -> None:
        self.tx.stage_line(self.state, self.partition, kind, self._key(kind, ident), value)
