"""Move records from Kafka into the war room's model, on a background thread.

One group-less reader (lockstock.reader), so every war room sees every record and the engine's
group is never touched. It reads from the beginning:
- the stock table's changelog (the engine's state of record, see apps.readback), raw: JSON;
- ``orders.decisions``, ``inventory.alerts`` and ``channels.stock``.

Faust creates the changelog when the first worker starts, which may be after the war room: until
it exists the other topics are read alone, and the reader adds it (from its beginning) once it
appears, keeping the others' positions. A record that cannot be decoded (or decodes to
something the model cannot fold) is counted in the model and skipped; nothing a topic holds
stops the feed. If the reader fails (the broker went away...), a new one starts shortly.
"""

from __future__ import annotations

import threading
from typing import Any, Callable

from apps.readback import changelog_topic, decode_table_record
from apps.warroom.model import WarRoom
from lockstock.clock import now_ms
from lockstock.errors import describe_kafka_error
from lockstock.kafka import Kafka
from lockstock.reader import Record
from streams.engine.state import SkuState
from streams.lines import is_line_key

POLL_S = 0.2
BATCH = 500
RETRY_S = 2.0  # after an unexpected failure, start a new reader this much later


class WarRoomFeed:
    """Folds the topics into ``room``, holding ``lock`` while it writes, on a reader thread."""

    def __init__(self, kafka: Kafka, room: WarRoom, lock: threading.Lock) -> None:
        self.kafka, self.room, self.lock = kafka, room, lock
        topics = kafka.topics
        self.changelog = changelog_topic(kafka.settings.app_id, "stock")
        self.topics = [topics.orders_decisions, topics.inventory_alerts, topics.channels_stock]
        self._fold: dict[str, Callable[[dict[str, Any], int], None]] = {
            topics.orders_decisions: lambda value, at: room.on_decision(value, at),
            topics.inventory_alerts: lambda value, at: room.on_alert(value),
            topics.channels_stock: lambda value, at: room.on_channel_stock(value),
        }
        # A new reader (after a failure) starts from the beginning again: the model absorbs the
        # repeats (decisions by order id, alerts by alert id, channel stock by seq, state by SKU).
        self._reader = kafka.reader_thread(
            self._apply, beginning=[*self.topics, self.changelog], raw=[self.changelog], wait_for_topics=True,
            on_bad_record=self._undecodable, name="lockstock-warroom-feed", poll_s=POLL_S, batch=BATCH,
            retry_s=RETRY_S)
        self._status_lock = threading.Lock()
        self._counts: dict[str, Any] = {"records": 0, "last_record_at": None}

    # -- status, for /health and the page's header ------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """state: starting, waiting (for topics not created yet), live or retrying (the reader
        failed; a new one follows), with the reason in ``error``; ``failures`` counts them."""
        reader, failure = self._reader.reader, self._reader.failure
        assigned = list(reader.assigned) if reader is not None else []
        pending = list(reader.pending) if reader is not None else []
        if failure is not None:
            state, error = "retrying", describe_kafka_error(failure)
        elif reader is None:
            state, error = "starting", None
        elif pending:
            state, error = "waiting", f"waiting for topic(s) {', '.join(pending)}"
        else:
            state, error = "live", None
        with self._status_lock:
            return {"state": state, **self._counts, "error": error, "assigned": assigned,
                    "failures": self._reader.failures}

    # -- the loop -----------------------------------------------------------------------------------------
    def start(self) -> None:
        self._reader.start()

    def is_alive(self) -> bool:
        return self._reader.is_alive()

    def stop(self, timeout: float = 10.0) -> None:
        self._reader.stop(timeout)

    def _undecodable(self, topic: str, reason: str) -> None:
        with self.lock:
            self.room.on_undecodable(topic, reason)

    def _apply(self, records: list[Record], caught_up: bool) -> None:
        """Decode outside the lock, fold under it: the page never waits on JSON."""
        folds = [(record.topic, self._fold_of(record)) for record in records]
        if not folds:
            return
        with self.lock:
            for topic, fold in folds:
                try:
                    fold()
                except (KeyError, TypeError, ValueError) as exc:  # decoded, but not what it should hold
                    self.room.on_undecodable(topic, f"{type(exc).__name__}: {exc}")
        with self._status_lock:
            self._counts["records"] += len(folds)
            self._counts["last_record_at"] = now_ms()

    def _fold_of(self, record: Record) -> Callable[[], None]:
        topic, at = record.topic, record.timestamp or now_ms()
        if topic != self.changelog:
            fold, value = self._fold[topic], record.value
            return lambda: fold(value, at)
        if is_line_key(record.key):  # an order line, buyer or command: not the SKU's figures
            return lambda: None
        try:
            sku, value = decode_table_record(record.key, record.value)
            state = None if value is None else SkuState.from_dict(value)
        except Exception as exc:  # not a table record the engine wrote: count it, keep going
            error = f"offset {record.partition}:{record.offset}: {type(exc).__name__}: {exc}"
            return lambda: self.room.on_undecodable(topic, error)
        return lambda: self.room.on_stock_state(sku, state, at)
