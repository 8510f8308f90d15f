"""Read lockstock topics back to their current end, without a consumer group: what the fallback
sheet, the audit check and the war room use to see the engine's state with no worker running.

The stock table's changelog is the state of record (streams/transaction.py writes it before the
local store), so the newest changelog record per key *is* the engine's state: per SKU a head, and
a record per order line, buyer tally and command (streams/lines.py). Its records are Faust's table
format: the key and value JSON-encoded (streams/tables.py), None for a delete.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Iterable, Iterator

from lockstock.kafka import Kafka
from lockstock.reader import Record
from lockstock.topics import changelog_topic  # noqa: F401 - also read from here
from streams.engine.state import SkuState
from streams.lines import is_line_key, resolve

READ_TIMEOUT_S = 60.0


def decode_table_record(key: bytes | None, value: bytes | None) -> tuple[str, Any]:
    """(key, value) of a Faust table changelog record; value None is a deleted key."""
    return json.loads(key or b'""'), (None if value is None else json.loads(value))


def read_to_end(kafka: Kafka, topics: Iterable[str], *, timeout: float = READ_TIMEOUT_S,
                progress: Callable[[int, int], None] | None = None) -> Iterator[Record]:
    """Every record of ``topics`` from the first to the end offset at the call, raw (values as
    stored), partition order kept; ``progress(read, total)`` now and then. BrokerError if a
    topic does not exist or the end is not reached in time."""
    topics = list(topics)
    with kafka.reader(beginning=topics, raw=topics) as reader:
        yield from reader.read_to_end(timeout, progress)


def stock_states(kafka: Kafka, *, timeout: float = READ_TIMEOUT_S,
                 progress: Callable[[int, int], None] | None = None) -> dict[str, SkuState]:
    """The engine's current state of every SKU, heads and line records, from the stock table's
    changelog. Line records a killed batch left ahead of their head read as they were before it."""
    heads: dict[str, Any] = {}
    lines: dict[bytes, bytes | None] = {}
    topic = changelog_topic(kafka.settings.app_id, "stock")
    for record in read_to_end(kafka, [topic], timeout=timeout, progress=progress):
        if is_line_key(record.key):
            lines[record.key] = record.value
        else:
            sku, value = decode_table_record(record.key, record.value)
            heads[sku] = value
    states = {sku: SkuState.from_dict(value) for sku, value in sorted(heads.items()) if value is not None}
    for key, raw in lines.items():
        sku, kind, ident = json.loads(key)
        state = states.get(sku)
        value = resolve(raw, state.version) if state is not None else None
        if value is not None:
            state.lines.put(kind, ident, value)
    return states

