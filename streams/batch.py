"""One batch of events through a fold, inside the batch's table transaction: what the Faust
agents (streams/agents.py) and the in-memory runner (streams/memory.py) both do between taking a
batch and committing it. No Kafka and no Faust here."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from lockstock.catalog import Catalog
from lockstock.deadletter import PROCESSING_ERROR
from streams.folds import Event, Folded, Output, Problem, State
from streams.transaction import TableTransaction

logger = logging.getLogger(__name__)

Fold = Callable[[State, Event, Catalog, int], Folded]
Finish = Callable[[TableTransaction], list[Output]]


@dataclass
class BatchResult:
    outputs: list[Output] = field(default_factory=list)
    dead: list[tuple[Any, Problem]] = field(default_factory=list)  # (the source record, why)


def run_batch(tx: TableTransaction, items: Iterable[tuple[Any, Event | Problem]], fold: Fold, catalog: Catalog,
              clock: Callable[[], int], finish: Finish | None = None) -> BatchResult:
    """Fold each event in order. ``items`` pairs each source record (handed back with its
    dead letter) with its decoded ``Event``, or the ``Problem`` that kept it from decoding.
    A fold that raises is undone (``TableTransaction.fail_event``) and its event dead-lettered;
    every other event goes on. ``finish`` adds what depends only on the batch's end state; then
    records due to be forgotten are staged."""
    result = BatchResult()
    key_field = tx.store.key_field
    for source, item in items:
        if isinstance(item, Problem):
            result.dead.append((source, item))
            continue
        repaired = tx.activate(item.partition)
        if repaired:
            logger.warning("%s[%d]: wrote back %d line records a killed batch had left ahead of their head",
                           tx.store.name, item.partition, repaired)
        key = item.value.get(key_field)
        tx.begin_event(key)
        try:
            produced, problem = fold(tx, item, catalog, clock())
        except Exception as exc:
            logger.exception("handling %s failed", item.name)
            tx.fail_event(key)
            result.dead.append((source, Problem(f"{type(exc).__name__}: {exc}", PROCESSING_ERROR)))
            continue
        tx.end_event()
        result.outputs += produced
        if problem is not None:
            result.dead.append((source, problem))
    if finish is not None:
        result.outputs += finish(tx)
    tx.forget_due()
    return result
