"""Envelopes on the internal topics: a batch's lock requests for one partition of lock.requests
travel as one LineLockRequests record, its lock results for one partition of lock.results as one
LineLockResults, in the order they were made. Each Kafka record costs the receiving worker a
fetch, a Faust event and a commit's bookkeeping whatever it carries, so a record per batch and
partition instead of one per line takes most of that cost off the two internal hops.

Readers take both forms: single records written before envelopes (or by a worker not yet
upgraded) still arrive one line each.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Iterator

from lockstock.topics import LOCK_REQUESTS, LOCK_RESULTS, TopicSpec
from streams.folds import Output

# topic -> (the one-line record, the envelope record, the envelope's field holding the lines)
ENVELOPES: dict[TopicSpec, tuple[str, str, str]] = {
    LOCK_REQUESTS: ("LineLockRequest", "LineLockRequests", "requests"),
    LOCK_RESULTS: ("LineLockResult", "LineLockResults", "results"),
}
_OPENED = {envelope: (line, field) for line, envelope, field in ENVELOPES.values()}
MAX_LINES = 1_000  # per envelope: keeps every record far below the broker's size limit

PartitionOf = Callable[[TopicSpec, str], int]


def pack(outputs: Iterable[Output], partition_of: PartitionOf) -> list[Output]:
    """``outputs`` with the lines to an enveloped topic gathered, per partition their key
    routes to, into envelopes of at most MAX_LINES (in order); every other output as it was."""
    packed: list[Output] = []
    open_envelopes: dict[tuple[TopicSpec, int], Output] = {}
    for output in outputs:
        kind = ENVELOPES.get(output.topic)
        if kind is None or output.record != kind[0]:
            packed.append(output)
            continue
        partition = partition_of(output.topic, output.key)
        envelope = open_envelopes.get((output.topic, partition))
        if envelope is None or len(envelope.value[kind[2]]) >= MAX_LINES:
            envelope = Output(output.topic, output.key, kind[1], {kind[2]: []}, partition)
            open_envelopes[(output.topic, partition)] = envelope
            packed.append(envelope)
        envelope.value[kind[2]].append(output.value)
    return packed


def unpack(record: str, value: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """The (record, value) lines a record carries: an envelope's, or the record itself."""
    opened = _OPENED.get(record)
    if opened is None:
        yield record, value
    else:
        line, field = opened
        for item in value[field]:
            yield line, item
