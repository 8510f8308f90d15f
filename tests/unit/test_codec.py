"""The one codec: every schema round-trips; single-object encoding matches the Avro spec as
computed independently (the `avro` package and the spec's reference CRC-64-AVRO algorithm);
the registry wire format works through confluent-kafka's client; garbage fails clearly."""

from __future__ import annotations

import io
import json
import struct
from pathlib import Path

import avro.io
import avro.schema
import fastavro
import pytest

from lockstock.codec import RegistryCodec, SchemaSet, SingleObjectCodec, _strip_logical_types
from lockstock.errors import CodecError, SchemaError

T = 1_795_000_000_123  # a timestamp-millis value

EXAMPLES = {
    "OrderLine": {"sku": "BRZ-FAN-01", "qty": 2},
    "OrderPlaced": {
        "order_id": "shopify:820982911946154508", "channel": "shopify", "buyer_id": "buyer-7",
        "ship_to_region": "EU", "placed_at": T, "lines": [{"sku": "BRZ-FAN-01", "qty": 2}, {"sku": "BRZ-CASE", "qty": 1}],
    },
    "LineAllocation": {"sku": "BRZ-FAN-01", "qty": 2, "region": "EU"},
    "OrderDecision": {
        "order_id": "o-1", "status": "REJECTED", "reason": "OUT_OF_STOCK",
        "lines": [{"sku": "BRZ-FAN-01", "qty": 2, "region": None}], "decided_at": T, "channel": "tiktok-us", "placed_at": T - 5,
    },
    "OrderEvent": {"event_id": "e-1", "order_id": "o-1", "type": "SHIPPED", "channel": "amazon-eu", "occurred_at": T,
                   "warehouse": "DE-FRA", "reason": None},
    "InventoryCommand": {
        "command_id": "c-1", "sku": "BRZ-FAN-01", "type": "SET_STOCK", "issued_at": T, "total": 3000,
        "regions": {"US": 1200, "EU": 1000, "SEA": 800}, "flex_pct": 20.0, "region": None, "to_region": None,
        "quantity": None, "eta": None, "warehouse": None, "channel": None, "buyer_limit": None, "reason": None, "issued_by": "ops",
        "warehouses": {"LA": 700, "NJ": 500}, "transit_id": None, "proportional": True,
    },
    "OrderTimer": {"order_id": "o-1", "kind": "EXPIRE", "due_at": T},
    "LineLockRequest": {"order_id": "o-1", "sku": "A", "qty": 1, "action": "LOCK", "channel": "tiktok-us", "buyer_id": "b",
                        "region": "US", "sku_count": 2, "placed_at": T, "reason": None, "warehouse": None},
    "LineLockResult": {"order_id": "o-1", "sku": "A", "qty": 1, "status": "LOCKED", "reason": None, "region": "US",
                       "sku_count": 2, "channel": "tiktok-us", "placed_at": T, "decided_at": T + 3, "announced": False},
    "LineLockRequests": {"requests": [
        {"order_id": "o-1", "sku": "A", "qty": 1, "action": "LOCK", "channel": "tiktok-us", "buyer_id": "b", "region": "US",
         "sku_count": 2, "placed_at": T, "reason": None, "warehouse": None},
        {"order_id": "o-2", "sku": "B", "qty": 3, "action": "RELEASE", "channel": "shopify", "buyer_id": "c", "region": None,
         "sku_count": 1, "placed_at": T, "reason": "CANCELLED", "warehouse": None}]},
    "LineLockResults": {"results": [
        {"order_id": "o-1", "sku": "A", "qty": 1, "status": "LOCKED", "reason": None, "region": "US", "sku_count": 2,
         "channel": "tiktok-us", "placed_at": T, "decided_at": T + 3, "announced": False}]},
    "InventoryAlert": {"alert_id": "a-1", "sku": "A", "type": "FLEX_TRANSFER", "message": "moved 200 units to US",
                       "raised_at": T, "region": "US", "channel": None, "quantity": 200, "details": {"from": "flex"}},
    "ChannelStock": {"channel": "tiktok-us", "sku": "A", "sellable": 40, "available": 50, "updated_at": T, "seq": 17, "paused": False,
                     "region": "US", "flex": 10},
    "AuditRecord": {"sku": "A", "seq": 3, "movement": "LOCK", "ref": "o-1", "qty": 2, "region": "US",
                    "detail": "", "balances": {"total": 100, "flex": 10, "US.locked": 2}, "at": T,
                    "prev_hash": "0" * 64, "hash": "ab" * 32},
    "DeadLetter": {"source_topic": "lockstock.orders.placed", "source_partition": 3, "source_offset": 42, "key": b"k",
                   "payload": b"\x00\xff", "reason": "not Avro", "error_type": "UNDECODABLE", "service": "streams", "failed_at": T},
}

SCHEMAS = SchemaSet()
SINGLE = SingleObjectCodec(SCHEMAS)


def test_every_record_schema_has_an_example():
    assert {n.rsplit(".", 1)[-1] for n in SCHEMAS.records} == set(EXAMPLES)


@pytest.mark.parametrize("record", sorted(EXAMPLES))
def test_single_object_round_trip(record):
    payload = SINGLE.encode(record, EXAMPLES[record])
    assert payload[:2] == b"\xc3\x01"
    decoded = SINGLE.decode(payload)
    assert decoded.name == record
    assert decoded.value == EXAMPLES[record]


@pytest.mark.parametrize("record", sorted(EXAMPLES))
def test_registry_round_trip(record):
    codec = RegistryCodec("mock://codec-test", SCHEMAS)
    payload = codec.encode(record, EXAMPLES[record], topic="lockstock.any")
    assert payload[0] == 0 and len(payload) > 5
    assert codec.decode(payload).value == EXAMPLES[record]
    # Subject per topic and record (a topic may carry several record types).
    assert f"lockstock.any-io.lockstock.{record}" in codec.client.get_subjects()


def crc64_avro(data: bytes) -> int:
    """The reference algorithm from the Avro specification ("Schema Fingerprints")."""
    empty = 0xC15D213AA4D7A795
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (empty & -(fp & 1))
        table.append(fp & 0xFFFFFFFFFFFFFFFF)
    fp = empty
    for byte in data:
        fp = (fp >> 8) ^ table[(fp ^ byte) & 0xFF]
    return fp


def test_single_object_encoding_matches_independent_avro_implementation():
    full = "io.lockstock.OrderPlaced"
    # The avro package renders {"type":"long","logicalType":...} as {"type":"long"} in its
    # canonical form, against the spec's PRIMITIVES rule; logical types are not part of the
    # canonical form anyway, so strip them before asking it.
    schema = avro.schema.parse(json.dumps(_strip_logical_types(SCHEMAS.expanded[full])))
    fingerprint_le = schema.fingerprint("CRC-64-AVRO")
    assert fingerprint_le == struct.pack("<Q", crc64_avro(schema.canonical_form.encode()))
    body = io.BytesIO()
    avro.io.DatumWriter(schema).write(EXAMPLES["OrderPlaced"], avro.io.BinaryEncoder(body))
    expected = b"\xc3\x01" + fingerprint_le + body.getvalue()
    assert SINGLE.encode("OrderPlaced", EXAMPLES["OrderPlaced"]) == expected
    # and the avro package reads our bytes back
    reader = avro.io.DatumReader(schema)
    assert reader.read(avro.io.BinaryDecoder(io.BytesIO(expected[10:]))) == EXAMPLES["OrderPlaced"]


def test_known_vector_for_a_small_record():
    """A vector fixed in the test: header C3 01 + CRC-64-AVRO('"OrderLine" canonical') LE + body."""
    canonical = '{"name":"io.lockstock.OrderLine","type":"record","fields":[{"name":"sku","type":"string"},{"name":"qty","type":"int"}]}'
    assert SCHEMAS.canonical["io.lockstock.OrderLine"] == canonical
    payload = SINGLE.encode("OrderLine", {"sku": "A", "qty": 2})
    assert payload == b"\xc3\x01" + struct.pack("<Q", crc64_avro(canonical.encode())) + b"\x02A\x04"


@pytest.mark.parametrize(
    "payload, message",
    [
        (None, "empty payload"),
        (b"", "not Avro single-object encoded"),
        (b"{\"order_id\": 1}", "not Avro single-object encoded"),
        (b"\xc3\x01" + b"\x00" * 8 + b"\x02", "unknown schema fingerprint"),
    ],
)
def test_garbage_is_a_clear_codec_error(payload, message):
    with pytest.raises(CodecError, match=message):
        SINGLE.decode(payload)


def test_truncated_and_padded_bodies_are_rejected():
    good = SINGLE.encode("OrderPlaced", EXAMPLES["OrderPlaced"])
    with pytest.raises(CodecError, match="does not decode"):
        SINGLE.decode(good[:-3])
    with pytest.raises(CodecError, match="trailing bytes"):
        SINGLE.decode(good + b"\x00")


def test_decode_as_rejects_the_wrong_record():
    payload = SINGLE.encode("OrderLine", EXAMPLES["OrderLine"])
    with pytest.raises(CodecError, match="expected OrderPlaced, got OrderLine"):
        SINGLE.decode_as(payload, "OrderPlaced")


def test_encode_rejects_values_that_do_not_fit_the_schema():
    with pytest.raises(CodecError, match="no value and no default for channel"):
        SINGLE.encode("OrderPlaced", {"order_id": "x"})
    with pytest.raises(CodecError, match="unknown record type"):
        SINGLE.encode("NoSuchRecord", {})


def test_registry_codec_rejects_single_object_payloads():
    codec = RegistryCodec("mock://codec-test-2", SCHEMAS)
    with pytest.raises(CodecError, match="Confluent wire format"):
        codec.decode(SINGLE.encode("OrderLine", EXAMPLES["OrderLine"]))


def test_schema_files_follow_the_layout(tmp_path):
    for path in SCHEMAS.directory.rglob("*.avsc"):
        if "published" in path.parts:
            continue
        data = json.loads(path.read_text())
        assert data["name"] == path.stem and data["namespace"] == "io.lockstock" and data.get("doc"), path
    (tmp_path / "Wrong.avsc").write_text(json.dumps({"type": "record", "name": "Other", "fields": []}))
    with pytest.raises(SchemaError, match="file name must be the type name"):
        SchemaSet(tmp_path)


def test_new_optional_fields_stay_backward_compatible():
    """Every field added after a record's first version needs a default (BACKWARD evolution):
    here, at least every nullable field must default to null."""
    for full, data in SCHEMAS.raw.items():
        for field in data.get("fields", []):
            if isinstance(field["type"], list) and "null" in field["type"]:
                assert field.get("default", "missing") is None, f"{full}.{field['name']} needs default null"


BASELINE = SchemaSet(Path(__file__).parent / "schema_baseline")  # the schemas as first published


@pytest.mark.parametrize("record", sorted(n.rsplit(".", 1)[-1] for n in BASELINE.records))
def test_schemas_stay_backward_compatible_with_the_first_published_version(record):
    """Data written with the first published schema is read by the current one (new fields have
    defaults, enums only gain symbols): the topics' consumers can upgrade before producers."""
    full = f"io.lockstock.{record}"
    assert full in SCHEMAS.records, f"{record} was removed"
    old_fields = {f["name"] for f in BASELINE.expanded[full]["fields"]}
    example = {k: v for k, v in EXAMPLES[record].items() if k in old_fields}
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, BASELINE.expanded[full], example)
    buffer.seek(0)
    read = fastavro.schemaless_reader(buffer, BASELINE.expanded[full], SCHEMAS.expanded[full])
    for name, value in example.items():
        assert read[name] == value or (isinstance(value, int) and name.endswith("_at")), name
    for field in SCHEMAS.expanded[full]["fields"]:
        if field["name"] not in old_fields:
            assert "default" in field, f"{record}.{field['name']} is new and has no default"


def test_every_earlier_version_of_a_record_is_kept_and_still_decodes():
    """Single-object data names its writer schema by fingerprint only: a record written before a
    schema change (by a worker not yet upgraded, or replayed from a topic's start) decodes only
    if that version is kept in schemas/published/. The first published versions must all be."""
    for full in BASELINE.records:
        header = BASELINE.header[full]
        assert header in SCHEMAS.by_header or header in SCHEMAS.superseded, f"{full}: first version not kept"
    for header, (full, writer) in SCHEMAS.superseded.items():
        name = full.rsplit(".", 1)[-1]
        old_fields = {f["name"] for f in writer["fields"]}
        example = {k: v for k, v in EXAMPLES[name].items() if k in old_fields}
        body = io.BytesIO()
        fastavro.schemaless_writer(body, writer, example)
        decoded = SINGLE.decode(header + body.getvalue())
        assert decoded.schema == full
        assert {k: decoded.value[k] for k in example} == example
        for field in SCHEMAS.expanded[full]["fields"]:
            if field["name"] not in old_fields:
                assert decoded.value[field["name"]] == field["default"]
