"""The dead-letter record: what any lockstock component writes when it cannot process a record.
Streams send it through Faust, connectors through confluent-kafka; both build it here."""

from __future__ import annotations

from lockstock.clock import now_ms

# Stable machine-readable failure classes (DeadLetter.error_type).
UNDECODABLE = "UNDECODABLE"  # not Avro, unknown fingerprint, or a body that does not decode
WRONG_RECORD = "WRONG_RECORD"  # decodes, but is not a record this topic carries
INVALID_COMMAND = "INVALID_COMMAND"  # decodes, but asks for something impossible
INVALID_EVENT = "INVALID_EVENT"  # a lifecycle event that cannot apply to its order (unknown, already shipped)
SYNC_FAILED = "SYNC_FAILED"  # a stock push a marketplace kept refusing (connectors' sync)
PROCESSING_ERROR = "PROCESSING_ERROR"  # unexpected failure while handling a valid record


def dead_letter(
    *, source_topic: str, payload: bytes | None, reason: str, error_type: str, service: str,
    key: bytes | None = None, partition: int | None = None, offset: int | None = None,
) -> dict:
    return {
        "source_topic": source_topic, "source_partition": partition, "source_offset": offset,
        "key": key, "payload": payload or b"", "reason": reason, "error_type": error_type,
        "service": service, "failed_at": now_ms(),
    }
