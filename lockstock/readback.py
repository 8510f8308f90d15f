"""Read lockstock topics back to their current end, without a consumer group: what the fallback
sheet, the audit check and the war room use to see the engine's state with no worker running.

The stock table's changelog is the state of record (streams/transaction.py writes it before the
local store), so the newest changelog record per key *is* the engine's state: per SKU a head, and
a record per order line, buyer tally and command (streams/lines.py). Its records are Faust's table
format: the key and value JSON-encoded (streams/tables.py), None for a delete.
"""

from __future__ import annotations

import json
import time
from typing import Any, Callable, Iterable, Iterator

from lockstock.errors import BrokerError
from lockstock.kafka import Kafka
from lockstock.topics import changelog_topic  # noqa: F401 - also read from here
from streams.engine.state import SkuState
from streams.lines import is_line_key, resolve

READ_TIMEOUT_S = 60.0


def decode_table_record(key: bytes | None, value: bytes | None) -> tuple[str, Any]:
    """(key, value) of a Faust table changelog record; value None is a deleted key."""
    return json.loads(key or b'""'), (None if value is None else json.loads(value))


def read_to_end(kafka: Kafka, topics: Iterable[str], *, timeout: float = READ_TIMEOUT_S,
                progress: Callable[[int, int], None] | None = None) -> Iterator[Any]:
    """Every record of ``topics`` from the first to the end offset at the call, partition order
    kept; ``progress(read, total)`` now and then. BrokerError if the end is not reached in time."""
    topics = list(topics)
    consumer = kafka.consumer()
    try:
        existing = consumer.list_topics(timeout=10).topics
        missing = [t for t in topics if t not in existing]
        if missing:
            raise BrokerError(f"topic(s) {', '.join(missing)} do not exist on {kafka.bootstrap}")
        ends = kafka.assign_at(consumer, beginning=topics)
        remaining = {tp: end for tp, end in ends.items() if end > 0}
        total, read = sum(remaining.values()), 0
        deadline = time.monotonic() + timeout
        while remaining:
            if time.monotonic() > deadline:
                raise BrokerError(f"could not read {', '.join(topics)} to the end within {timeout:.0f}s "
                                  f"({read} of about {total} records)")
            for message in consumer.consume(1000, 0.2):
                if message.error() is not None:
                    continue
                tp = (message.topic(), message.partition())
                end = remaining.get(tp)
                if end is None or message.offset() >= end:
                    continue
                read += 1
                yield message
                if message.offset() + 1 >= end:
                    del remaining[tp]
            if progress:
                progress(read, total)
    finally:
        consumer.close()


def stock_states(kafka: Kafka, *, timeout: float = READ_TIMEOUT_S,
                 progress: Callable[[int, int], None] | None = None) -> dict[str, SkuState]:
    """The engine's current state of every SKU, heads and line records, from the stock table's
    changelog. Line records a killed batch left ahead of their head read as they were before it."""
    heads: dict[str, Any] = {}
    lines: dict[bytes, bytes | None] = {}
    topic = changelog_topic(kafka.settings.app_id, "stock")
    for message in read_to_end(kafka, [topic], timeout=timeout, progress=progress):
        if is_line_key(message.key()):
            lines[message.key()] = message.value()
        else:
            sku, value = decode_table_record(message.key(), message.value())
            heads[sku] = value
    states = {sku: SkuState.from_dict(value) for sku, value in sorted(heads.items()) if value is not None}
    for key, raw in lines.items():
        sku, kind, ident = json.loads(key)
        state = states.get(sku)
        value = resolve(raw, state.version) if state is not None else None
        if value is not None:
            state.lines.put(kind, ident, value)
    return states

