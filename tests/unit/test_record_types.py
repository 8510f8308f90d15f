"""schemas/records.py is what lockstock/record_types.py generates from the schemas, and its types
name exactly the schemas' records, fields and enum symbols."""

from __future__ import annotations

import typing

from lockstock import record_types
from lockstock.codec import SchemaSet
from schemas import SCHEMA_DIR, records
from streams.engine import audit


def test_the_generated_module_matches_the_schemas():
    generated = record_types.render(record_types.load())
    checked_in = (SCHEMA_DIR / "records.py").read_text()
    assert checked_in == generated, "schemas changed: run python -m lockstock.record_types > schemas/records.py"


def test_every_record_is_a_typed_dict_with_the_schema_s_fields():
    schemas = SchemaSet()
    assert schemas.records
    for full in schemas.records:
        name = full.rsplit(".", 1)[1]
        typed = getattr(records, name)
        fields = schemas.raw[full]["fields"]
        assert list(typed.__annotations__) == [f["name"] for f in fields]
        assert typed.__required_keys__ == frozenset(f["name"] for f in fields if "default" not in f)


def test_every_enum_is_a_literal_of_its_symbols():
    schemas = SchemaSet()
    enums = {full: data for full, data in schemas.raw.items() if data["type"] == "enum"}
    assert enums
    for data in enums.values():
        assert typing.get_args(getattr(records, data["name"])) == tuple(data["symbols"])


def test_types_map_as_documented():
    assert record_types.annotation(["null", "string"]) == "None | str"
    assert record_types.annotation({"type": "long", "logicalType": "timestamp-millis"}) == "int"
    assert record_types.annotation({"type": "map", "values": "long"}) == "dict[str, int]"
    assert record_types.annotation({"type": "array", "items": "io.lockstock.OrderLine"}) == "list[OrderLine]"


def test_the_audit_body_is_the_audit_record_without_its_hash():
    assert list(audit._AuditBody.__annotations__) == [f for f in records.AuditRecord.__annotations__ if f != "hash"]
