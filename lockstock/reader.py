"""The one group-less reader of lockstock topics (``Kafka.reader``), and its threaded variant.

A ``Reader`` assigns every partition of its topics by hand, no consumer group, so it never
touches anyone's offsets and every reader sees every record. A topic is read from its beginning
or from its end as of the assignment. The reader is *caught up* once every partition read from
its beginning has been read to the end offset it had when assigned (an empty one at once).

Values are decoded with the project's codec, except for ``raw`` topics (the engine's changelogs
hold JSON) whose bytes are handed over as they are. A tombstone on a decoded topic has nothing to
decode and is skipped; on a raw topic it is handed over (value None: a deleted key).

Bad records have one policy (``BadRecords``): an undecodable record, or an error the consumer
reports, is counted per topic, logged, handed to the owner's ``on_bad_record`` and, where the
owner asked for it (``dead_letter_service``), dead-lettered. The reader goes on; it never drops
a record silently and never dies of one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Mapping

from lockstock import deadletter
from lockstock.errors import BrokerError, CodecError, LockstockError, describe_kafka_error
from lockstock.kafka import take

if TYPE_CHECKING:
    from lockstock.kafka import Kafka

logger = logging.getLogger(__name__)

Place = tuple[str, int]  # (topic, partition)

BATCH = 500
ASSIGN_TIMEOUT_S = 10.0
TOPIC_CHECK_S = 1.0  # how often a reader waiting for topics looks for them
LOG_FIRST = 10  # bad records logged one by one per topic; after that every LOG_EVERY-th
LOG_EVERY = 1000


@dataclass(frozen=True, slots=True)
class Record:
    """One record as a reader hands it over. ``value`` is the decoded value (``schema`` its Avro
    full name), or for a raw topic the bytes as stored (None: a tombstone, ``schema`` None)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    timestamp: int | None  # epoch ms, None when the record carries none
    value: Any
    schema: str | None = None

    @property
    def name(self) -> str | None:
        """Short Avro record name, e.g. ``OrderDecision``."""
        return self.schema.rsplit(".", 1)[-1] if self.schema else None


@dataclass(frozen=True, slots=True)
class BadRecord:
    """A record the reader could not hand over (``offset`` -1 for a consumer error)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    payload: bytes | None
    reason: str


class CatchUp:
    """Which partitions read from their beginning are not yet read to the end offset they had
    when assigned. Pure bookkeeping: fed every record's place, it answers ``caught_up``."""

    def __init__(self) -> None:
        self._ends: dict[Place, int] = {}
        self._left: set[Place] = set()
        self.read = 0  # records read below their partition's end

    def expect(self, ends: Mapping[Place, int]) -> None:
        """Track more partitions, each to be read up to (not including) its end offset."""
        for place, end in ends.items():
            self._ends[place] = end
            if end > 0:
                self._left.add(place)
            else:
                self._left.discard(place)

    def within(self, topic: str, partition: int, offset: int) -> bool:
        """True for a record a tracked partition held when it was assigned."""
        return offset < self._ends.get((topic, partition), 0)

    def note(self, topic: str, partition: int, offset: int) -> None:
        place = (topic, partition)
        end = self._ends.get(place)
        if end is None or offset >= end:
            return
        self.read += 1
        if offset + 1 >= end:
            self._left.discard(place)

    @property
    def caught_up(self) -> bool:
        return not self._left

    @property
    def total(self) -> int:
        """Records to read before caught up (about: compaction leaves gaps in the offsets)."""
        return sum(self._ends.values())

    @property
    def behind(self) -> list[Place]:
        return sorted(self._left)


class BadRecords:
    """The bad-record policy: count per topic, log (the first ``LOG_FIRST`` per topic, then every
    ``LOG_EVERY``-th, so a topic of garbage cannot flood the log), tell the owner
    (``on_bad_record(topic, reason)``), and dead-letter undecodable ones through ``dead_letter``
    when one is given. Consumer errors are counted apart and never dead-lettered."""

    def __init__(self, on_bad_record: Callable[[str, str], None] | None = None,
                 dead_letter: Callable[[BadRecord], None] | None = None) -> None:
        self.on_bad_record = on_bad_record
        self.dead_letter = dead_letter
        self.undecodable: Counter[str] = Counter()
        self.consumer_errors: Counter[str] = Counter()
        self.last_reason: str | None = None

    def record(self, bad: BadRecord) -> None:
        """An undecodable record."""
        self.undecodable[bad.topic] += 1
        self._log("undecodable record", bad, self.undecodable[bad.topic])
        if self.dead_letter is not None:
            self.dead_letter(bad)
        if self.on_bad_record is not None:
            self.on_bad_record(bad.topic, f"offset {bad.partition}:{bad.offset}: {bad.reason}")

    def consumer_error(self, bad: BadRecord) -> None:
        """An error the consumer reported instead of a record."""
        self.consumer_errors[bad.topic] += 1
        self._log("consumer error", bad, self.consumer_errors[bad.topic])

    def _log(self, what: str, bad: BadRecord, count: int) -> None:
        self.last_reason = f"{what} on {bad.topic or '?'}: {bad.reason}"
        if count <= LOG_FIRST or count % LOG_EVERY == 0:
            logger.warning("%s on %s[%d]@%d (%d on this topic): %s", what, bad.topic or "?", bad.partition,
                           bad.offset, count, bad.reason)


class DeadLetters:
    """Writes undecodable records to the dead-letter topic, byte for byte, for a reader whose
    owner owns the topics it reads. The producer is made on the first bad record."""

    def __init__(self, kafka: "Kafka", service: str) -> None:
        self.kafka, self.service = kafka, service
        self._producer: Any = None

    def __call__(self, bad: BadRecord) -> None:
        topic = self.kafka.topics.deadletter
        letter = deadletter.dead_letter(source_topic=bad.topic, payload=bad.payload, reason=bad.reason,
                                        error_type=deadletter.UNDECODABLE, service=self.service, key=bad.key,
                                        partition=bad.partition, offset=bad.offset)
        if self._producer is None:
            self._producer = self.kafka.producer()
        self._producer.produce(topic, key=bad.key, value=self.kafka.codec.encode("DeadLetter", letter, topic=topic))
        self._producer.poll(0)

    def close(self, timeout: float = 10.0) -> None:
        if self._producer is not None and (left := self._producer.flush(timeout)):
            logger.error("%d dead letter(s) from %s not acknowledged within %.0fs", left, self.service, timeout)


class Reader:
    """Reads ``beginning`` topics from their first record and ``end`` topics from now on, with no
    consumer group (module docstring). A topic that does not exist is a BrokerError, unless
    ``wait_for_topics``: then it is assigned once it appears (looked for every ``TOPIC_CHECK_S``
    while polling), and ``pending`` names it meanwhile. ``raw`` topics are handed over undecoded;
    ``on_bad_record`` and ``dead_letter_service`` are the bad-record policy's (module docstring);
    ``bad`` is a policy to count into instead (a thread's successive readers share one);
    ``timeout`` bounds each metadata and offset request. Not thread-safe: one thread polls."""

    def __init__(self, kafka: "Kafka", *, beginning: Iterable[str] = (), end: Iterable[str] = (),
                 raw: Iterable[str] = (), wait_for_topics: bool = False,
                 on_bad_record: Callable[[str, str], None] | None = None, dead_letter_service: str | None = None,
                 bad: BadRecords | None = None, timeout: float = ASSIGN_TIMEOUT_S) -> None:
        self.kafka, self.codec, self.timeout = kafka, kafka.codec, timeout
        self.raw = frozenset(raw)
        self.wait_for_topics = wait_for_topics
        self._dead_letters = DeadLetters(kafka, dead_letter_service) if dead_letter_service else None
        self.bad = bad or BadRecords(on_bad_record)
        if self._dead_letters is not None:
            self.bad.dead_letter = self._dead_letters
        self.catch_up = CatchUp()
        self.assigned: list[str] = []
        self.pending: dict[str, bool] = {}  # topic -> from its beginning; waiting for it to exist
        self._next_check = 0.0
        self.consumer = kafka.consumer()
        try:
            self.add(beginning=beginning, end=end)
        except BaseException:
            self.close()
            raise

    # -- assignment ---------------------------------------------------------------------------------
    def add(self, *, beginning: Iterable[str] = (), end: Iterable[str] = ()) -> None:
        """Assign more topics, keeping the positions of those already assigned."""
        wanted = {**{t: False for t in end}, **{t: True for t in beginning}}
        wanted = {t: b for t, b in wanted.items() if t not in self.assigned}
        existing = self._existing(wanted)
        missing = [t for t in wanted if t not in existing]
        if missing and not self.wait_for_topics:
            raise BrokerError(f"topic(s) {', '.join(missing)} do not exist on {self.kafka.bootstrap}")
        self.pending.update({t: wanted[t] for t in missing})
        now = [t for t in wanted if t in existing]
        if not now:
            return
        ends = self.kafka.assign_at(self.consumer, beginning=[t for t in now if wanted[t]],
                                    end=[t for t in now if not wanted[t]], timeout=self.timeout, incremental=True)
        self.catch_up.expect(ends)
        self.assigned.extend(now)
        for topic in now:
            self.pending.pop(topic, None)

    def _existing(self, topics: Iterable[str]) -> set[str]:
        topics = list(topics)
        if not topics:
            return set()
        found = self.consumer.list_topics(timeout=self.timeout).topics
        return {t for t in topics if t in found and found[t].error is None and found[t].partitions}

    def _assign_appeared(self) -> None:
        if not self.pending or time.monotonic() < self._next_check:
            return
        self._next_check = time.monotonic() + TOPIC_CHECK_S
        pending = dict(self.pending)
        self.add(beginning=[t for t, b in pending.items() if b], end=[t for t, b in pending.items() if not b])

    # -- reading ------------------------------------------------------------------------------------
    @property
    def caught_up(self) -> bool:
        """Every partition read from its beginning is read to its end at assignment. A topic still
        pending is not caught up."""
        return self.catch_up.caught_up and not any(self.pending.values())

    def poll(self, timeout: float, limit: int = BATCH) -> list[Record]:
        """Up to ``limit`` records: waits at most ``timeout`` for the first, then takes only what
        is already fetched (``take``)."""
        self._assign_appeared()
        if not self.assigned:
            time.sleep(timeout)
            return []
        records = []
        for message in take(self.consumer, limit, timeout):
            record = self._record(message)
            if record is not None:
                records.append(record)
        return records

    def read_to_end(self, timeout: float, progress: Callable[[int, int], None] | None = None) -> Iterator[Record]:
        """The records the ``beginning`` topics held at assignment, partition order kept;
        ``progress(read, total)`` now and then. BrokerError if they are not read in time."""
        deadline = time.monotonic() + timeout
        while not self.caught_up:
            if time.monotonic() > deadline:
                topics = ", ".join(sorted({t for t, _ in self.catch_up.behind} | set(self.pending)))
                raise BrokerError(f"could not read {topics} to the end within {timeout:.0f}s "
                                  f"({self.catch_up.read} of about {self.catch_up.total} records)")
            for record in self.poll(0.2, 1000):
                if self.catch_up.within(record.topic, record.partition, record.offset):
                    yield record
            if progress:
                progress(self.catch_up.read, self.catch_up.total)

    def _record(self, message: Any) -> Record | None:
        topic, partition, offset = message.topic(), message.partition(), message.offset()
        error = message.error()
        if error is not None:
            reason = error.str() if hasattr(error, "str") else str(error)
            self.bad.consumer_error(BadRecord(topic or "", partition or 0, -1, None, None, reason))
            return None
        self.catch_up.note(topic, partition, offset)
        kind, stamp = message.timestamp()
        timestamp = stamp if kind and stamp > 0 else None
        value, schema = message.value(), None
        if topic not in self.raw:
            if value is None:  # a tombstone: nothing to decode, nothing wrong
                return None
            try:
                decoded = self.codec.decode(value, topic=topic)
            except CodecError as exc:
                self.bad.record(BadRecord(topic, partition, offset, message.key(), value, str(exc)))
                return None
            value, schema = decoded.value, decoded.schema
        return Record(topic, partition, offset, message.key(), timestamp, value, schema)

    # -- life ---------------------------------------------------------------------------------------
    def close(self) -> None:
        try:
            self.consumer.close()
        finally:
            if self._dead_letters is not None:
                self._dead_letters.close()

    def __enter__(self) -> "Reader":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class ReaderThread:
    """A Reader's loop on a daemon thread: each batch goes to ``deliver(records, caught_up)``,
    called for every non-empty batch and once, possibly empty, when the reader first catches up.

    An exception in the loop (the broker went away, ``deliver`` failed) is logged, kept in
    ``failure`` and passed to ``on_failure``; with ``retry_s`` a new reader (from the start
    positions again) is opened that much later, else the thread ends. ``failure`` is cleared once
    a new reader is reading. ``options`` are the Reader's; bad-record counts span the readers."""

    def __init__(self, kafka: "Kafka", deliver: Callable[[list[Record], bool], None], *,
                 name: str = "lockstock-reader", poll_s: float = 0.05, batch: int = BATCH,
                 retry_s: float | None = None, on_failure: Callable[[BaseException], None] | None = None,
                 on_bad_record: Callable[[str, str], None] | None = None, **options: Any) -> None:
        self.kafka, self.deliver, self.options = kafka, deliver, options
        self.poll_s, self.batch, self.retry_s, self.on_failure = poll_s, batch, retry_s, on_failure
        self.bad = BadRecords(on_bad_record)
        self.reader: Reader | None = None
        self.failure: BaseException | None = None
        self.failures = 0
        self._caught_up = False
        self._stop = threading.Event()
        self._ready = threading.Event()  # a reader is assigned, or the first one failed
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    @property
    def caught_up(self) -> bool:
        """True once a reader of this thread caught up (module docstring); stays true."""
        return self._caught_up

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def start(self) -> "ReaderThread":
        self._thread.start()
        return self

    def wait_ready(self, timeout: float) -> "ReaderThread":
        """Return once the reader owns its partitions (no later record is missed); BrokerError if
        it failed first or did not within ``timeout``."""
        if not self._ready.wait(timeout):
            raise BrokerError(f"{self._thread.name}: no partitions assigned within {timeout:.0f}s")
        if self.reader is None and self.failure is not None:
            raise BrokerError(f"{self._thread.name}: {describe_kafka_error(self.failure)}") from self.failure
        return self

    def stop(self, timeout: float = 10.0) -> bool:
        """Stop and wait at most ``timeout`` for the loop to close its consumer; True if it did."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._read()
                return
            except Exception as exc:
                from confluent_kafka import KafkaException

                self.failure, self.failures = exc, self.failures + 1
                retrying = self.retry_s is not None
                # The broker going away is expected and said in one line; anything else is a bug
                # whose traceback is needed.
                expected = isinstance(exc, (LockstockError, KafkaException))
                logger.log(logging.WARNING if retrying else logging.ERROR, "%s failed%s: %s", self._thread.name,
                           ", retrying" if retrying else "", describe_kafka_error(exc), exc_info=not expected)
                self._ready.set()
                if self.on_failure is not None:
                    try:
                        self.on_failure(exc)
                    except Exception:
                        logger.exception("%s: on_failure failed", self._thread.name)
                if self.retry_s is None:
                    return
                self._stop.wait(self.retry_s)

    def _read(self) -> None:
        reader = Reader(self.kafka, bad=self.bad, **self.options)
        try:
            self.reader, self.failure = reader, None
            self._ready.set()
            announced = False
            while not self._stop.is_set():
                records = reader.poll(self.poll_s, self.batch)
                caught_up = reader.caught_up
                self._caught_up = self._caught_up or caught_up
                if records or (caught_up and not announced):
                    announced = announced or caught_up
                    self.deliver(records, caught_up)
        finally:
            self.reader = None
            reader.close()
