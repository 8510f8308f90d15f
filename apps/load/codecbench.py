"""The codec row of ``lockstock bench``: microseconds to encode and decode each record of the lock
path as the codec does it (the compiled writers and readers of ``lockstock.avro_writer`` /
``avro_reader`` where ``compiled``, else fastavro) and with fastavro alone on the same values.

fastavro's figures double as a gauge of the machine: a run where they are twice as slow as
another ran on a machine twice as slow, whatever the other rows say.
"""

from __future__ import annotations

import io
import time
from typing import Any, Callable

import fastavro

from lockstock.codec import AvroCodec

AT = 1_795_000_000_123
_REGIONS = {f"{region}.{count}": 3_000_000 - 7 * i for i, (region, count) in enumerate(
    (r, c) for r in ("US", "EU", "SEA") for c in ("allocation", "locked", "paid", "shipped"))}
_REQUEST = {"order_id": "tiktok-us:7301124577", "sku": "BRZ-FAN-01", "qty": 1, "action": "LOCK", "channel": "tiktok-us",
            "buyer_id": "buyer-418822", "region": "US", "sku_count": 1, "placed_at": AT, "reason": None, "warehouse": None}
_RESULT = {"order_id": "tiktok-us:7301124577", "sku": "BRZ-FAN-01", "qty": 1, "status": "LOCKED", "reason": None,
           "region": "US", "sku_count": 1, "channel": "tiktok-us", "placed_at": AT, "decided_at": AT + 40, "announced": True}

# One record of each kind the lock path writes or reads per order line, as the engine fills them.
LOCK_PATH: dict[str, dict[str, Any]] = {
    "OrderPlaced": {"order_id": "tiktok-us:7301124577", "channel": "tiktok-us", "buyer_id": "buyer-418822",
                    "ship_to_region": "US", "placed_at": AT, "lines": [{"sku": "BRZ-FAN-01", "qty": 1}]},
    "LineLockRequests": {"requests": [_REQUEST] * 8},
    "LineLockResults": {"results": [_RESULT] * 8},
    "OrderDecision": {"order_id": "tiktok-us:7301124577", "status": "LOCKED", "reason": None,
                      "lines": [{"sku": "BRZ-FAN-01", "qty": 1, "region": "US"}], "decided_at": AT + 40,
                      "channel": "tiktok-us", "placed_at": AT},
    "AuditRecord": {"sku": "BRZ-FAN-01", "seq": 418_822, "movement": "LOCK", "ref": "tiktok-us:7301124577", "qty": 1,
                    "region": "US", "detail": "", "at": AT + 40, "prev_hash": "9f" * 32, "hash": "3c" * 32,
                    "balances": {"total": 10_000_000, "flex": 2_000_000, "in_transit": 0, **_REGIONS,
                                 "wh.LA": 1_000_000, "wh.NJ": 999_999}},
    "ChannelStock": {"channel": "tiktok-us", "sku": "BRZ-FAN-01", "sellable": 4_999_210, "available": 4_999_210,
                     "updated_at": AT + 40, "seq": 41_882, "paused": False, "region": "US", "flex": 2_000_000},
}


def _us(call: Callable[[], Any], budget_s: float) -> float:
    """Microseconds per call: the best of five rounds within ``budget_s``."""
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < budget_s / 10:
        call()
        count += 1
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(count):
            call()
        best = min(best, (time.perf_counter() - started) / count)
    return round(best * 1e6, 2)


def codec_row(codec: AvroCodec, budget_s: float = 0.2) -> dict[str, dict[str, Any]]:
    """record -> microseconds to encode and decode it, the codec's way and with fastavro alone."""
    schemas, row = codec.schemas, {}
    for record, value in LOCK_PATH.items():
        full = schemas.resolve(record)
        body = codec._body(full, value)
        parsed, readable = schemas.parsed[full], schemas.readable[full]
        row[record] = {
            "compiled": full in schemas.writers,
            "encode_us": _us(lambda: codec._body(full, value), budget_s),
            "encode_fastavro_us": _us(lambda: fastavro.schemaless_writer(io.BytesIO(), parsed, value), budget_s),
            "decode_us": _us(lambda: codec._read_current(full, body, 0), budget_s),
            "decode_fastavro_us": _us(lambda: fastavro.schemaless_reader(io.BytesIO(body), readable, readable), budget_s),
        }
    return row


__all__ = ["LOCK_PATH", "codec_row"]
