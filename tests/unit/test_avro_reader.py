"""The compiled Avro readers read what fastavro reads, and leave the rest to it."""

from __future__ import annotations

import io

import fastavro
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lockstock.avro_reader import compile_reader, long_at
from lockstock.codec import SchemaSet, SingleObjectCodec
from lockstock.errors import CodecError
from tests.unit.test_avro_writer import LONGS, fastavro_bytes, values
from tests.unit.test_codec import EXAMPLES

SCHEMAS = SchemaSet()
READERS = {n: compile_reader(SCHEMAS.expanded[n]) for n in SCHEMAS.records}  # every record, maps too
CODEC = SingleObjectCodec(SCHEMAS)


def fastavro_value(full: str, body: bytes) -> dict:
    return fastavro.schemaless_reader(io.BytesIO(body), SCHEMAS.readable[full], SCHEMAS.readable[full])


@pytest.mark.parametrize("record", sorted(EXAMPLES))
def test_every_example_reads_back_as_fastavro_reads_it(record):
    full = SCHEMAS.resolve(record)
    body = fastavro_bytes(full, EXAMPLES[record])
    assert READERS[full](b"head" + body, 4) == (fastavro_value(full, body), 4 + len(body))


@pytest.mark.parametrize("full", sorted(SCHEMAS.records))
def test_generated_values_read_back_as_fastavro_reads_them(full):
    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(values(SCHEMAS.expanded[full], {}))
    def check(value):
        body = fastavro_bytes(full, value)
        assert READERS[full](body, 0) == (fastavro_value(full, body), len(body))

    check()


@given(LONGS)
def test_long_at_reads_every_long(n):
    out = io.BytesIO()
    fastavro.schemaless_writer(out, "long", n)
    assert long_at(out.getvalue(), 0) == (n, len(out.getvalue()))


def test_blocks_with_a_byte_size_are_read():
    """Writers may put a block's byte size after a negative count (Avro spec, arrays and maps)."""
    schema = {"type": "record", "name": "B", "namespace": "t", "fields": [
        {"name": "xs", "type": {"type": "array", "items": "long"}},
        {"name": "m", "type": {"type": "map", "values": "string"}}]}
    # xs: a block of -2 items (zigzag 3) of 2 bytes, then 1 and 2, then the end; m: one block of one entry
    body = b"\x03\x04\x02\x04\x00" + b"\x02\x02k\x02v\x00"
    expected = fastavro.schemaless_reader(io.BytesIO(body), fastavro.parse_schema(schema))
    assert expected == {"xs": [1, 2], "m": {"k": "v"}}
    assert compile_reader(schema)(body, 0) == (expected, len(body))


@pytest.mark.parametrize("record", sorted(EXAMPLES))
def test_random_bytes_decode_as_fastavro_decodes_them_or_fail_as_it_fails(record):
    full = SCHEMAS.resolve(record)
    header = SCHEMAS.header[full]

    @settings(max_examples=200, deadline=None)
    @given(st.binary(max_size=120))
    def check(body):
        try:
            expected = fastavro_value(full, body)
            clean = io.BytesIO(body)
            fastavro.schemaless_reader(clean, SCHEMAS.readable[full], SCHEMAS.readable[full])
            whole = clean.tell() == len(body)
        except Exception:  # noqa: BLE001 - fastavro raises many types on garbage
            expected, whole = None, False
        if whole:
            assert CODEC.decode(header + body).value == expected
        else:
            with pytest.raises(CodecError):
                CODEC.decode(header + body)

    check()


def test_a_truncated_body_is_refused_with_fastavros_reason():
    payload = CODEC.encode("OrderPlaced", EXAMPLES["OrderPlaced"])
    with pytest.raises(CodecError, match="OrderPlaced body does not decode"):
        CODEC.decode(payload[:-3])


def test_a_compiled_reader_refuses_a_negative_enum_index():
    schema = {"type": "record", "name": "E", "namespace": "t",
              "fields": [{"name": "e", "type": {"type": "enum", "name": "K", "symbols": ["A", "B"]}}]}
    reader = compile_reader(schema)
    assert reader(b"\x02", 0) == ({"e": "B"}, 1)
    with pytest.raises(IndexError):
        reader(b"\x01", 0)
