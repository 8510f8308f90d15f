"""Avro binary decoders compiled from lockstock's record schemas: the values fastavro reads, faster.

The counterpart of ``lockstock.avro_writer`` for records written with the current schema (the
reader's own): each record schema becomes one generated function that reads its fields in
order, with the one-byte int and short-string cases inline. It returns the value and where the
body ended, so the codec can refuse trailing bytes as before.

Anything it cannot read (garbage, a truncated body, an enum index out of range) raises, and the
codec then asks fastavro, whose value or error stands (``lockstock.codec.AvroCodec._read``):
so what callers see is fastavro's behaviour. Bodies written with an earlier schema version are
read by fastavro directly (schema resolution). ``tests/unit/test_avro_reader.py`` checks every
record against fastavro on examples, generated values and random bytes.

Timestamps stay ints (the codec reads without logical types).
"""

from __future__ import annotations

import struct
from typing import Any, Callable

from lockstock.avro_compile import SchemaCompiler, build
from lockstock.errors import SchemaError

Reader = Callable[[bytes, int], tuple[dict[str, Any], int]]

_FLOAT = struct.Struct("<f").unpack_from
_DOUBLE = struct.Struct("<d").unpack_from


def long_at(data: bytes, i: int) -> tuple[int, int]:
    """An Avro int or long at ``i``: its value and the position after it."""
    byte = data[i]
    z = byte & 0x7F
    shift = 7
    i += 1
    while byte & 0x80:
        byte = data[i]
        z |= (byte & 0x7F) << shift
        shift += 7
        i += 1
        if shift > 70:
            raise ValueError("varint longer than a long")
    return (z >> 1) ^ -(z & 1), i


def string_at(data: bytes, i: int) -> tuple[str, int]:
    size, i = long_at(data, i)
    end = i + size
    if size < 0 or end > len(data):
        raise EOFError("string runs past the end of the body")
    return data[i:end].decode(), end


def bytes_at(data: bytes, i: int) -> tuple[bytes, int]:
    size, i = long_at(data, i)
    end = i + size
    if size < 0 or end > len(data):
        raise EOFError("bytes run past the end of the body")
    return bytes(data[i:end]), end


_HELPERS = {"long_at": long_at, "string_at": string_at, "bytes_at": bytes_at, "FLOAT": _FLOAT, "DOUBLE": _DOUBLE}


class _ReaderCompiler(SchemaCompiler):
    """One function per named record: ``recordN(data, i) -> (value, i)``."""

    def record_source(self, function: str, schema: dict, namespace: str | None) -> list[str]:
        lines = [f"def {function}(data, i):"]
        names = []
        for field in schema.get("fields", []):
            value = self.fresh("f")
            names.append((field["name"], value))
            lines.extend(self.read(field["type"], value, namespace, indent=1))
        fields = ", ".join(f"{name!r}: {value}" for name, value in names)
        lines.append(f"    return {{{fields}}}, i")
        return lines

    def read(self, schema: Any, target: str, namespace: str | None, indent: int) -> list[str]:
        """Lines (at ``indent``) that read one value into ``target`` and advance ``i``."""
        pad = "    " * indent
        if isinstance(schema, str):
            if schema == "null":
                return [f"{pad}{target} = None"]
            if schema in ("int", "long"):
                byte = self.fresh("b")
                return [
                    f"{pad}{byte} = data[i]",
                    f"{pad}if {byte} < 0x80:",
                    f"{pad}    {target} = ({byte} >> 1) ^ -({byte} & 1)",
                    f"{pad}    i += 1",
                    f"{pad}else:",
                    f"{pad}    {target}, i = long_at(data, i)",
                ]
            if schema == "string":
                size, end = self.fresh("n"), self.fresh("e")
                return [
                    f"{pad}{size} = data[i]",
                    f"{pad}if {size} < 0x80 and not {size} & 1:",
                    f"{pad}    {end} = i + 1 + ({size} >> 1)",
                    f"{pad}    if {end} > len(data): raise EOFError('string runs past the end of the body')",
                    f"{pad}    {target} = data[i + 1:{end}].decode()",
                    f"{pad}    i = {end}",
                    f"{pad}else:",
                    f"{pad}    {target}, i = string_at(data, i)",
                ]
            if schema == "bytes":
                return [f"{pad}{target}, i = bytes_at(data, i)"]
            if schema == "boolean":
                return [f"{pad}{target} = data[i] != 0", f"{pad}i += 1"]
            if schema in ("float", "double"):
                unpack, size = ("FLOAT", 4) if schema == "float" else ("DOUBLE", 8)
                return [f"{pad}{target}, = {unpack}(data, i)", f"{pad}i += {size}"]
            return self.read(self.lookup(schema, namespace), target, namespace, indent)
        if isinstance(schema, list):
            return self.union(schema, target, namespace, indent)
        kind = schema.get("type")
        if kind == "record":
            return [f"{pad}{target}, i = {self.record(schema, namespace)}(data, i)"]
        if kind == "enum":
            self.define(schema, namespace)
            symbols, index = self.constant(tuple(schema["symbols"])), self.fresh("x")
            return [
                *self.read("long", index, namespace, indent),
                f"{pad}if {index} < 0: raise IndexError('negative enum index')",
                f"{pad}{target} = {symbols}[{index}]",
            ]
        if kind == "fixed":
            self.define(schema, namespace)
            size = int(schema["size"])
            return [
                f"{pad}if i + {size} > len(data): raise EOFError('fixed runs past the end of the body')",
                f"{pad}{target} = bytes(data[i:i + {size}])",
                f"{pad}i += {size}",
            ]
        if kind in ("array", "map"):
            return self.blocks(schema, target, namespace, indent)
        if isinstance(kind, (str, list, dict)):
            return self.read(kind, target, namespace, indent)
        raise SchemaError(f"cannot compile Avro schema {schema!r}")

    def blocks(self, schema: dict, target: str, namespace: str | None, indent: int) -> list[str]:
        """An array or map: blocks of items, a negative count followed by the block's size, until 0."""
        pad = "    " * indent
        count, item, key, _ = self.fresh("c"), self.fresh("v"), self.fresh("k"), self.fresh("s")
        is_map = schema["type"] == "map"
        lines = [f"{pad}{target} = {{}}" if is_map else f"{pad}{target} = []"]
        lines += self.read("long", count, namespace, indent)
        lines += [
            f"{pad}while {count}:",
            f"{pad}    if {count} < 0:",
            f"{pad}        {count} = -{count}",
            f"{pad}        {_}, i = long_at(data, i)",
            f"{pad}    for _ in range({count}):",
        ]
        if is_map:
            lines += self.read("string", key, namespace, indent + 2)
            lines += self.read(schema["values"], item, namespace, indent + 2)
            lines.append(f"{pad}        {target}[{key}] = {item}")
        else:
            lines += self.read(schema["items"], item, namespace, indent + 2)
            lines.append(f"{pad}        {target}.append({item})")
        lines += [f"    {line}" for line in self.read("long", count, namespace, indent)]
        return lines

    def union(self, branches: list, target: str, namespace: str | None, indent: int) -> list[str]:
        pad = "    " * indent
        index = self.fresh("u")
        lines = self.read("long", index, namespace, indent)
        for position, branch in enumerate(branches):
            keyword = "if" if position == 0 else "elif"
            lines.append(f"{pad}{keyword} {index} == {position}:")
            lines += self.read(branch, target, namespace, indent + 1)
        lines.append(f"{pad}else: raise IndexError('union index out of range')")
        return lines


def compile_reader(schema: dict) -> Reader:
    """The decoder of a record ``schema`` (self-contained JSON, as ``SchemaSet.expanded``):
    ``reader(payload, start) -> (value, end)``, the body starting at ``start`` of ``payload``
    (bytes: the header need not be sliced off)."""
    return build(_ReaderCompiler(), schema, lambda top: f"def entry(data, start):\n    return {top}(data, start)\n",
                 _HELPERS, "avro reader")


__all__ = ["Reader", "compile_reader", "long_at"]
