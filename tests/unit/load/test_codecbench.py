"""The codec row measures real records of the lock path, which encode as fastavro encodes them."""

from __future__ import annotations

import io

import fastavro

from apps.load.codecbench import LOCK_PATH, codec_row
from lockstock.codec import SingleObjectCodec


def test_the_sample_records_are_valid_and_written_as_fastavro_writes_them():
    codec = SingleObjectCodec()
    for record, value in LOCK_PATH.items():
        full = codec.schemas.resolve(record)
        out = io.BytesIO()
        fastavro.schemaless_writer(out, codec.schemas.parsed[full], value)
        assert codec._body(full, value) == out.getvalue(), record
        assert codec.decode(codec.encode(record, value)).value == value, record


def test_the_row_times_every_record_both_ways():
    row = codec_row(SingleObjectCodec(), budget_s=0.01)
    assert set(row) == set(LOCK_PATH)
    for figures in row.values():
        timings = {k: v for k, v in figures.items() if k != "compiled"}
        assert set(timings) == {"encode_us", "encode_fastavro_us", "decode_us", "decode_fastavro_us"}
        assert all(0 < us < 10_000 for us in timings.values())
    assert row["OrderDecision"]["compiled"] and not row["AuditRecord"]["compiled"]  # maps stay with fastavro
