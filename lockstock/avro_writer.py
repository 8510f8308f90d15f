"""Avro binary encoders compiled from lockstock's record schemas, byte for byte what fastavro writes.

fastavro's ``schemaless_writer`` interprets the schema on every call: it looks up each field's
type by name, validates every union branch and runs logical-type hooks (docs/decisions/0005).
Here each record schema becomes one Python function, generated once, that writes the fields in
order with nothing left to look up. The output is the same bytes:
``tests/unit/test_avro_writer.py`` checks every record against fastavro, on examples and on
generated values. Where it is stricter (fastavro truncates a float given for an int; this
raises), the codec hands the value to fastavro, whose bytes or error stand
(``lockstock.codec.AvroCodec._body``), so callers see fastavro's behaviour, only faster.

Reading is ``lockstock/avro_reader.py``'s; records of older writer schemas are resolved by fastavro.

Supported: every Avro type except unions of more than one non-null branch, which lockstock's
schemas do not use; ``compile_writer`` raises ``SchemaError`` on one rather than guess.
"""

from __future__ import annotations

import datetime
import struct
from typing import Any, Callable, Mapping

from lockstock.avro_compile import SchemaCompiler, build
from lockstock.errors import SchemaError

Writer = Callable[[Mapping[str, Any]], bytes]

_SMALL = [bytes([n]) for n in range(0x80)]  # the varint of a zigzag value below 128: one byte
# Two groups per lookup: _PAIR[x] continues after both bytes, _LAST_PAIR[x] ends with its second.
_PAIR = [bytes([(x & 0x7F) | 0x80, (x >> 7) | 0x80]) for x in range(0x4000)]
_LAST_PAIR = [bytes([(x & 0x7F) | 0x80, x >> 7]) for x in range(0x4000)]
_KEYS: dict[str, bytes] = {}
_KEYS_MAX = 4096
_LONG_MIN, _LONG_MAX = -(1 << 63), (1 << 63) - 1
_FLOAT = struct.Struct("<f").pack
_DOUBLE = struct.Struct("<d").pack
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


def varint(n: int) -> bytes:
    """An Avro int or long: zigzag, then base-128 little-endian groups."""
    z = (n << 1) ^ (n >> 63)
    if 0 <= z < 0x80:
        return _SMALL[z]
    if not _LONG_MIN <= n <= _LONG_MAX:
        raise OverflowError(f"{n} does not fit an Avro long")
    return _groups(z)


def _groups(z: int) -> bytes:
    """Base-128 groups of ``z`` >= 0x80, fourteen bits per table lookup (a timestamp is three)."""
    if z < 0x4000:
        return _LAST_PAIR[z]
    return _PAIR[z & 0x3FFF] + (_SMALL[z >> 14] if z < 0x200000 else _groups(z >> 14))


def timestamp_millis(value: Any) -> bytes:
    """A ``timestamp-millis`` long: lockstock passes ints; a datetime is converted as fastavro does."""
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.timezone.utc)
        delta = value - _EPOCH
        value = (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000
    return varint(value)


def string(value: str) -> bytes:
    data = value.encode()
    return varint(len(data)) + data


def map_key(key: str) -> bytes:
    """A map key: the same few names (regions, counters) again and again, so remembered."""
    try:
        return _KEYS[key]
    except KeyError:
        encoded = string(key)
        if len(_KEYS) < _KEYS_MAX:
            _KEYS[key] = encoded
        return encoded


def raw_bytes(value: bytes | bytearray | memoryview) -> bytes:
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise TypeError(f"expected bytes, got {type(value).__name__}")
    data = bytes(value)
    return varint(len(data)) + data


def fixed(value: bytes, size: int) -> bytes:
    if not isinstance(value, (bytes, bytearray)) or len(value) != size:
        raise ValueError(f"expected {size} bytes for a fixed, got {value!r}")
    return bytes(value)


def boolean(value: Any) -> bytes:
    return b"\x01" if value else b"\x00"


_HELPERS = {
    "varint": varint, "timestamp_millis": timestamp_millis, "string": string, "map_key": map_key, "raw_bytes": raw_bytes,
    "fixed": fixed, "boolean": boolean, "SMALL": _SMALL, "MISSING": object(), "FLOAT": _FLOAT, "DOUBLE": _DOUBLE,
}
_PRIMITIVE_CALLS = {
    "int": "varint", "long": "varint", "string": "string", "bytes": "raw_bytes", "boolean": "boolean",
    "float": "FLOAT", "double": "DOUBLE",
}


class _WriterCompiler(SchemaCompiler):
    """Generates one function per named record, each appending its bytes to ``out``."""

    def record_source(self, function: str, schema: dict, namespace: str | None) -> list[str]:
        lines = [f"def {function}(v, out):", "    get = v.get"]  # out: the parts list's append
        for field in schema.get("fields", []):
            value = self.fresh("f")
            if "default" in field or _nullable(field["type"]):
                lines.append(f"    {value} = get({field['name']!r}, {self.constant(field.get('default'))})")
            else:
                lines.append(f"    {value} = get({field['name']!r}, MISSING)")
                lines.append(f"    if {value} is MISSING: raise ValueError({'no value and no default for ' + field['name']!r})")
            lines.extend(self.write(field["type"], value, namespace, indent=1))
        return lines

    def write(self, schema: Any, value: str, namespace: str | None, indent: int) -> list[str]:
        """Lines (at ``indent``) that append the encoding of expression ``value`` to ``out``."""
        pad = "    " * indent
        if isinstance(schema, str):
            if schema == "null":
                return [f"{pad}if {value} is not None: raise ValueError('expected null, got %r' % ({value},))"]
            if schema in ("int", "long"):  # the one-byte case inline: most counts and sequence numbers
                z = self.fresh("z")
                return [f"{pad}{z} = ({value} << 1) ^ ({value} >> 63)",
                        f"{pad}out(SMALL[{z}] if 0 <= {z} < 128 else varint({value}))"]
            if schema == "string":
                data, size = self.fresh("d"), self.fresh("n")
                return [f"{pad}{data} = {value}.encode()", f"{pad}{size} = len({data})",
                        f"{pad}out(SMALL[{size} << 1] if {size} < 64 else varint({size}))", f"{pad}out({data})"]
            if schema in ("float", "double"):  # as fastavro: float() first, so "NaN" is a float
                return [f"{pad}out({_PRIMITIVE_CALLS[schema]}(float({value})))"]
            if schema in _PRIMITIVE_CALLS:
                return [f"{pad}out({_PRIMITIVE_CALLS[schema]}({value}))"]
            return self.write(self.lookup(schema, namespace), value, namespace, indent)
        if isinstance(schema, list):
            return self.union(schema, value, namespace, indent)
        kind = schema.get("type")
        if kind == "record":
            return [f"{pad}{self.record(schema, namespace)}({value}, out)"]
        if kind == "enum":
            self.define(schema, namespace)
            indexes = self.constant({symbol: varint(i) for i, symbol in enumerate(schema["symbols"])})
            return [f"{pad}out({indexes}[{value}])"]
        if kind == "fixed":
            self.define(schema, namespace)
            return [f"{pad}out(fixed({value}, {int(schema['size'])}))"]
        if kind == "array":
            item = self.fresh("i")
            return [
                f"{pad}if {value}:",
                f"{pad}    out(varint(len({value})))",
                f"{pad}    for {item} in {value}:",
                *self.write(schema["items"], item, namespace, indent + 2),
                f"{pad}out(b'\\x00')",
            ]
        if kind == "map":
            key, item = self.fresh("k"), self.fresh("i")
            return [
                f"{pad}if {value}:",
                f"{pad}    out(varint(len({value})))",
                f"{pad}    for {key}, {item} in {value}.items():",
                f"{pad}        out(map_key({key}))",
                *self.write(schema["values"], item, namespace, indent + 2),
                f"{pad}out(b'\\x00')",
            ]
        if schema.get("logicalType") == "timestamp-millis" and kind == "long":
            return [f"{pad}out(timestamp_millis({value}))"]
        if isinstance(kind, (str, list, dict)):
            return self.write(kind, value, namespace, indent)  # {"type": "long", ...} and the like
        raise SchemaError(f"cannot compile Avro schema {schema!r}")

    def union(self, branches: list, value: str, namespace: str | None, indent: int) -> list[str]:
        pad = "    " * indent
        others = [i for i, b in enumerate(branches) if b != "null"]
        nulls = [i for i, b in enumerate(branches) if b == "null"]
        if len(others) > 1 or len(nulls) > 1:
            raise SchemaError(f"unions of more than one non-null branch are not compiled: {branches!r}")
        if not nulls:
            return [f"{pad}out({varint(others[0])!r})", *self.write(branches[others[0]], value, namespace, indent)]
        if not others:
            return self.write("null", value, namespace, indent)
        return [
            f"{pad}if {value} is None:",
            f"{pad}    out({varint(nulls[0])!r})",
            f"{pad}else:",
            f"{pad}    out({varint(others[0])!r})",
            *self.write(branches[others[0]], value, namespace, indent + 1),
        ]


def _nullable(schema: Any) -> bool:
    return schema == "null" or (isinstance(schema, list) and "null" in schema)


def compile_writer(schema: dict) -> Writer:
    """The encoder of a record ``schema`` (self-contained JSON, as ``SchemaSet.expanded``)."""
    return build(_WriterCompiler(), schema, lambda top: (
        f"def entry(v):\n    parts = []\n    {top}(v, parts.append)\n    return b''.join(parts)\n"), _HELPERS, "avro writer")


__all__ = ["Writer", "compile_writer", "varint"]
