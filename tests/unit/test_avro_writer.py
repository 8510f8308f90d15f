"""The compiled Avro writers write exactly what fastavro writes, and refuse what it refuses."""

from __future__ import annotations

import datetime
import io
import math

import fastavro
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lockstock.avro_writer import compile_writer, varint
from lockstock.codec import SchemaSet, SingleObjectCodec
from lockstock.errors import SchemaError
from tests.unit.test_codec import EXAMPLES

SCHEMAS = SchemaSet()
WRITERS = {n: compile_writer(SCHEMAS.expanded[n]) for n in SCHEMAS.records}  # every record, maps too
LONGS = st.integers(min_value=-(1 << 63), max_value=(1 << 63) - 1)
INTS = st.integers(min_value=-(1 << 31), max_value=(1 << 31) - 1)


def fastavro_bytes(full: str, value: dict) -> bytes:
    out = io.BytesIO()
    fastavro.schemaless_writer(out, SCHEMAS.parsed[full], value)
    return out.getvalue()


def values(schema, named: dict) -> st.SearchStrategy:
    """Any value of an Avro ``schema`` (expanded JSON), as lockstock passes them."""
    if isinstance(schema, str):
        simple = {
            "null": st.none(), "boolean": st.booleans(), "int": INTS, "long": LONGS,
            "float": st.floats(width=32, allow_nan=False), "double": st.floats(allow_nan=False),
            "string": st.text(max_size=80), "bytes": st.binary(max_size=80),
        }
        return simple[schema] if schema in simple else values(named[schema], named)
    if isinstance(schema, list):
        return st.one_of(*(values(branch, named) for branch in schema))
    kind = schema["type"]
    if kind == "record":
        named[f"{schema['namespace']}.{schema['name']}" if "namespace" in schema else schema["name"]] = schema
        return st.fixed_dictionaries({f["name"]: values(f["type"], named) for f in schema["fields"]})
    if kind == "enum":
        named[f"{schema['namespace']}.{schema['name']}"] = schema
        return st.sampled_from(schema["symbols"])
    if kind == "array":
        return st.lists(values(schema["items"], named), max_size=4)
    if kind == "map":
        return st.dictionaries(st.text(max_size=12), values(schema["values"], named), max_size=4)
    return values(kind, named)


@pytest.mark.parametrize("record", sorted(EXAMPLES))
def test_every_example_is_written_as_fastavro_writes_it(record):
    full = SCHEMAS.resolve(record)
    assert WRITERS[full](EXAMPLES[record]) == fastavro_bytes(full, EXAMPLES[record])


@pytest.mark.parametrize("full", sorted(SCHEMAS.records))
def test_generated_values_are_written_as_fastavro_writes_them(full):
    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(values(SCHEMAS.expanded[full], {}))
    def check(value):
        assert WRITERS[full](value) == fastavro_bytes(full, value)

    check()


@given(LONGS)
def test_varint_matches_fastavro_for_every_long(n):
    out = io.BytesIO()
    fastavro.schemaless_writer(out, "long", n)
    assert varint(n) == out.getvalue()


def test_missing_fields_take_their_default_or_are_refused_like_fastavro():
    full = "io.lockstock.InventoryCommand"
    sparse = {"command_id": "c", "sku": "A", "type": "RESTOCK", "issued_at": 1}  # optional fields left out
    assert WRITERS[full](sparse) == fastavro_bytes(full, sparse)
    with pytest.raises(ValueError, match="no value and no default for sku"):
        WRITERS[full]({"command_id": "c"})


@pytest.mark.parametrize("record, bad", [
    ("OrderLine", {"sku": 5, "qty": 1}),  # a number for a string
    ("OrderLine", {"sku": "A", "qty": "1"}),  # a string for an int
    ("OrderLine", {"sku": "A", "qty": 1 << 64}),  # beyond a long
    ("OrderDecision", {**EXAMPLES["OrderDecision"], "status": "MAYBE"}),  # not an enum symbol
    ("OrderDecision", {**EXAMPLES["OrderDecision"], "lines": [{"sku": "A"}]}),  # an item without its fields
    ("DeadLetter", {**EXAMPLES["DeadLetter"], "payload": "text"}),  # text for bytes
    ("ChannelStock", {**EXAMPLES["ChannelStock"], "sellable": None}),  # null for a non-null field
])
def test_values_fastavro_refuses_are_refused(record, bad):
    full = SCHEMAS.resolve(record)
    with pytest.raises((ValueError, TypeError, KeyError, AttributeError, OverflowError)):
        fastavro_bytes(full, bad)
    with pytest.raises((ValueError, TypeError, KeyError, AttributeError, OverflowError)):
        WRITERS[full](bad)


def test_a_datetime_timestamp_is_written_as_its_epoch_millis():
    at = datetime.datetime(2026, 12, 6, 1, 2, 3, 456000, tzinfo=datetime.timezone.utc)
    value = {"order_id": "o", "kind": "EXPIRE", "due_at": at}
    assert WRITERS["io.lockstock.OrderTimer"](value) == fastavro_bytes("io.lockstock.OrderTimer", value)


def test_special_floats_are_written_as_fastavro_writes_them():
    full = "io.lockstock.InventoryCommand"
    for flex in (math.inf, -0.0, 1e308):
        value = {**EXAMPLES["InventoryCommand"], "flex_pct": flex}
        assert WRITERS[full](value) == fastavro_bytes(full, value)


def test_unions_of_two_types_are_not_guessed():
    schema = {"type": "record", "name": "Two", "fields": [{"name": "x", "type": ["null", "string", "long"]}]}
    with pytest.raises(SchemaError, match="more than one non-null branch"):
        compile_writer(schema)


def test_the_codec_leaves_to_fastavro_what_the_compiled_writer_refuses():
    """fastavro truncates a float given for an int; the compiled writer refuses it, and the codec
    then writes what fastavro writes, so no caller sees a difference."""
    codec = SingleObjectCodec(SCHEMAS)
    value = {"sku": "A", "qty": 1.5}
    with pytest.raises(TypeError):
        WRITERS["io.lockstock.OrderLine"](value)
    assert codec.encode("OrderLine", value)[10:] == fastavro_bytes("io.lockstock.OrderLine", value)
