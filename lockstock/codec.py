"""The one Avro codec used by streams, connectors and tools.

Two wire formats, chosen by settings:

* default: Avro **single-object encoding** (spec: ``C3 01``, the writer schema's CRC-64-AVRO
  fingerprint as 8 little-endian bytes, then the binary body). Any Avro library can decode it
  from the files in ``schemas/`` alone, and one topic can carry several record types.
* ``SCHEMA_REGISTRY_URL`` set: the Confluent wire format (``00``, 4-byte big-endian schema id,
  binary body) with schemas registered through confluent-kafka's schema-registry client,
  subject ``<topic>-<record full name>`` (TopicRecordNameStrategy, since a topic may carry
  more than one record type).

Timestamps (``timestamp-millis``) travel as plain ints of epoch milliseconds in Python: the
codec reads with the logical types stripped, which changes nothing on the wire and avoids a
datetime round trip per field on the hot path.
"""

from __future__ import annotations

import io
import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

import fastavro
from fastavro.schema import fingerprint as _fingerprint
from fastavro.schema import to_parsing_canonical_form

from lockstock.avro_reader import compile_reader
from lockstock.avro_writer import compile_writer
from lockstock.errors import CodecError, SchemaError, WrongRecordError
from schemas import NAMESPACE, SCHEMA_DIR

SINGLE_OBJECT_MAGIC = b"\xc3\x01"
PUBLISHED = "published"  # schemas/published/: earlier versions of records, for reading old data
CONFLUENT_MAGIC = b"\x00"
_HEADER = struct.Struct("<Q")
_REGISTRY_HEADER = struct.Struct(">bI")
_ENCODE_ERRORS = (ValueError, TypeError, KeyError, AttributeError, OverflowError, struct.error)


@dataclass(frozen=True)
class Decoded:
    """A decoded record: its Avro full name (``io.lockstock.OrderPlaced``) and value."""

    schema: str
    value: dict[str, Any]

    @property
    def name(self) -> str:
        """Short record name, e.g. ``OrderPlaced``."""
        return self.schema.rsplit(".", 1)[-1]


def _full_name(name: str, namespace: str | None = NAMESPACE) -> str:
    return name if "." in name else f"{namespace or NAMESPACE}.{name}"


def _strip_logical_types(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _strip_logical_types(v) for k, v in node.items() if k != "logicalType"}
    if isinstance(node, list):
        return [_strip_logical_types(v) for v in node]
    return node


class SchemaSet:
    """Every named type under ``schemas/``, parsed once, with fingerprints of the records."""

    def __init__(self, directory: Path = SCHEMA_DIR) -> None:
        self.directory = Path(directory)
        raw: dict[str, dict] = {}
        for path in sorted(self.directory.rglob("*.avsc")):
            if PUBLISHED in path.relative_to(self.directory).parts:
                continue
            try:
                data = json.loads(path.read_text())
            except ValueError as exc:
                raise SchemaError(f"{path}: not valid JSON ({exc})") from None
            if not isinstance(data, dict) or "name" not in data:
                raise SchemaError(f"{path}: must hold exactly one named Avro type")
            if data["name"] != path.stem:
                raise SchemaError(f"{path}: file name must be the type name {data['name']!r}")
            full = _full_name(data["name"], data.get("namespace"))
            if full in raw:
                raise SchemaError(f"{path}: type {full} is defined twice")
            raw[full] = data
        if not raw:
            raise SchemaError(f"no .avsc files under {self.directory}")
        self.raw = raw
        self._named: dict[str, Any] = {}
        for full in raw:
            self._parse(full, set())
        self.records = {n for n, d in raw.items() if d.get("type") == "record"}
        # Expanded (self-contained) JSON per record: what registries and other libraries get.
        self.expanded: dict[str, dict] = {n: _inline(raw[n], raw, set()) for n in self.records}
        self.parsed = {n: fastavro.parse_schema(self.expanded[n]) for n in self.records}
        self.readable = {n: fastavro.parse_schema(_strip_logical_types(self.expanded[n])) for n in self.records}
        # fastavro's bytes and values, faster; except for records with a map, where fastavro's loop in C
        # beats a loop in Python (an audit record's 17 balances: lockstock bench's codec row).
        compiled = [n for n in self.records if not _has_map(self.expanded[n])]
        self.writers = {n: compile_writer(self.expanded[n]) for n in compiled}
        self.readers = {n: compile_reader(self.expanded[n]) for n in compiled}
        self.canonical = {n: to_parsing_canonical_form(self.parsed[n]) for n in self.records}
        # fastavro's hex string is already the little-endian byte order the header carries
        # (checked against the spec's reference algorithm in tests/unit/test_codec.py).
        self.fingerprints = {n: bytes.fromhex(_fingerprint(self.canonical[n], "CRC-64-AVRO")) for n in self.records}
        self.header = {n: SINGLE_OBJECT_MAGIC + fp for n, fp in self.fingerprints.items()}
        self.by_header = {h: n for n, h in self.header.items()}
        self.superseded = self._load_superseded()

    def _load_superseded(self) -> dict[bytes, tuple[str, Any]]:
        """Header -> (record, writer schema) of every earlier version of a record, kept under
        ``published/`` (self-contained JSON), so single-object data written before a schema
        change still decodes: during a rolling upgrade, or replayed from a topic's start."""
        superseded = {}
        for path in sorted((self.directory / PUBLISHED).glob("*.avsc")):
            try:
                data = json.loads(path.read_text())
                parsed = fastavro.parse_schema(data, _write_hint=False)
            except Exception as exc:
                raise SchemaError(f"{path}: not a self-contained Avro schema ({exc})") from None
            full = _full_name(data["name"], data.get("namespace"))
            if full not in self.records:
                raise SchemaError(f"{path}: {full} is not a current record")
            fp = bytes.fromhex(_fingerprint(to_parsing_canonical_form(parsed), "CRC-64-AVRO"))
            superseded[SINGLE_OBJECT_MAGIC + fp] = (full, fastavro.parse_schema(_strip_logical_types(data)))
        return superseded

    def _parse(self, full: str, visiting: set[str]) -> None:
        """Parse named types in dependency order (a type may reference types in other files)."""
        if full in self._named:
            return
        if full in visiting:
            raise SchemaError(f"schema {full} references itself through other files")
        visiting.add(full)
        for ref in _references(self.raw[full]):
            ref_full = _full_name(ref)
            if ref_full not in self.raw:
                raise SchemaError(f"schema {full} references unknown type {ref_full}")
            self._parse(ref_full, visiting)
        fastavro.parse_schema(self.raw[full], self._named)

    def resolve(self, name: str) -> str:
        full = _full_name(name)
        if full not in self.records:
            raise CodecError(f"unknown record type {name!r}; known: {', '.join(sorted(self.records))}")
        return full


_PRIMITIVES = {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}


def _inline(node: Any, raw: dict[str, dict], defined: set[str], namespace: str | None = None) -> Any:
    """``node`` with every named type it references written out where first used (later uses
    keep the full name, as Avro requires), however deep: fastavro's own expansion leaves the
    references of a referenced record as names, which no library outside this set can read."""
    if isinstance(node, str):
        if node in _PRIMITIVES:
            return node
        full = _full_name(node, namespace)
        if full in defined or full not in raw:
            return full
        return _inline(raw[full], raw, defined)
    if isinstance(node, list):
        return [_inline(item, raw, defined, namespace) for item in node]
    if not isinstance(node, dict):
        return node
    kind = node.get("type")
    if kind in ("record", "enum", "fixed"):
        full = _full_name(node["name"], node.get("namespace", namespace))
        defined.add(full)
        node = {**node, "name": full.rsplit(".", 1)[-1], "namespace": full.rsplit(".", 1)[0]}
        if kind == "record":
            inner = full.rsplit(".", 1)[0]
            node["fields"] = [{**f, "type": _inline(f["type"], raw, defined, inner)} for f in node.get("fields", [])]
        return node
    if kind == "array":
        return {**node, "items": _inline(node["items"], raw, defined, namespace)}
    if kind == "map":
        return {**node, "values": _inline(node["values"], raw, defined, namespace)}
    return {**node, "type": _inline(kind, raw, defined, namespace)}


def _has_map(node: Any) -> bool:
    if isinstance(node, list):
        return any(_has_map(item) for item in node)
    if not isinstance(node, dict):
        return False
    if node.get("type") == "map":
        return True
    return any(_has_map(node.get(k)) for k in ("type", "items", "values")) or any(
        _has_map(f["type"]) for f in node.get("fields", []))


def _references(node: Any) -> Iterable[str]:
    if isinstance(node, str):
        if node not in _PRIMITIVES:
            yield node
    elif isinstance(node, list):
        for item in node:
            yield from _references(item)
    elif isinstance(node, dict):
        kind = node.get("type")
        if kind == "record":
            for f in node.get("fields", []):
                yield from _references(f["type"])
        elif kind == "array":
            yield from _references(node["items"])
        elif kind == "map":
            yield from _references(node["values"])
        elif kind not in ("enum", "fixed"):
            yield from _references(kind)


class AvroCodec:
    """Encode/decode lockstock records. Subclasses differ only in the header."""

    wire_format = "abstract"

    def __init__(self, schemas: SchemaSet | None = None) -> None:
        self.schemas = schemas or SchemaSet()
        self._wanted: dict[tuple[str, ...], frozenset[str]] = {}  # decode_as's records, resolved

    def _body(self, full: str, value: Mapping[str, Any]) -> bytes:
        writer = self.schemas.writers.get(full)
        if writer is not None:
            try:
                return writer(value)
            except _ENCODE_ERRORS:
                pass  # fastavro decides what the compiled writer refused: the same bytes, or the error
        out = io.BytesIO()
        try:
            fastavro.schemaless_writer(out, self.schemas.parsed[full], value)
        except _ENCODE_ERRORS as exc:
            raise CodecError(f"cannot encode {full.rsplit('.', 1)[-1]}: {exc}") from None
        return out.getvalue()

    def _read_current(self, full: str, payload: bytes, start: int) -> dict[str, Any]:
        """A body written with the current schema of ``full``, from ``start`` of ``payload``."""
        reader = self.schemas.readers.get(full)
        if reader is None:
            return self._read(full, memoryview(payload)[start:])
        data = payload if type(payload) is bytes else bytes(payload)
        try:
            value, end = reader(data, start)
        except Exception:  # noqa: BLE001 - fastavro below decides what the compiled reader refused
            pass
        else:
            if end == len(data):
                return value
        return self._read(full, memoryview(data)[start:])

    def _read(self, full: str, body: memoryview | bytes, writer: Any = None) -> dict[str, Any]:
        stream = io.BytesIO(body)
        try:
            value = fastavro.schemaless_reader(stream, writer or self.schemas.readable[full], self.schemas.readable[full])
        except Exception as exc:  # fastavro raises many types on garbage input; all mean the same
            raise CodecError(f"{full.rsplit('.', 1)[-1]} body does not decode: {type(exc).__name__}: {exc}") from None
        if stream.tell() != len(body):
            raise CodecError(
                f"{full.rsplit('.', 1)[-1]} body has {len(body) - stream.tell()} trailing bytes (wrong schema?)"
            )
        return value

    def encode(self, record: str, value: Mapping[str, Any], *, topic: str | None = None) -> bytes:
        raise NotImplementedError

    def decode(self, payload: bytes | None, *, topic: str | None = None) -> Decoded:
        raise NotImplementedError

    def decode_as(self, payload: bytes | None, *records: str, topic: str | None = None) -> Decoded:
        """Decode and require one of ``records``; anything else is a CodecError (-> dead letter)."""
        decoded = self.decode(payload, topic=topic)
        wanted = self._wanted.get(records)
        if wanted is None:
            wanted = self._wanted[records] = frozenset(self.schemas.resolve(r) for r in records)
        if decoded.schema not in wanted:
            raise WrongRecordError(
                f"expected {' or '.join(sorted(r.rsplit('.', 1)[-1] for r in wanted))}, got {decoded.name}"
            )
        return decoded


class SingleObjectCodec(AvroCodec):
    """Avro single-object encoding; schemas identified by CRC-64-AVRO fingerprint."""

    wire_format = "avro-single-object"

    def encode(self, record: str, value: Mapping[str, Any], *, topic: str | None = None) -> bytes:
        full = self.schemas.resolve(record)
        return self.schemas.header[full] + self._body(full, value)

    def decode(self, payload: bytes | None, *, topic: str | None = None) -> Decoded:
        if payload is None:
            raise CodecError("empty payload (null value)")
        if len(payload) < 10 or payload[:2] != SINGLE_OBJECT_MAGIC:
            raise CodecError(
                f"not Avro single-object encoded (expected C3 01 header, got {bytes(payload[:2]).hex() or 'nothing'})"
            )
        header = bytes(payload[:10])
        full = self.schemas.by_header.get(header)
        if full is not None:
            return Decoded(full, self._read_current(full, payload, 10))
        if header in self.schemas.superseded:
            full, writer = self.schemas.superseded[header]
            return Decoded(full, self._read(full, memoryview(payload)[10:], writer))
        fp = _HEADER.unpack(payload[2:10])[0]
        raise CodecError(f"unknown schema fingerprint {fp:016x}; not one of the schemas in schemas/")


class RegistryCodec(AvroCodec):
    """Confluent wire format through confluent-kafka's schema-registry client."""

    wire_format = "confluent-schema-registry"

    def __init__(self, url: str, schemas: SchemaSet | None = None, client: Any = None) -> None:
        super().__init__(schemas)
        from confluent_kafka.schema_registry import SchemaRegistryClient

        self.client = client or SchemaRegistryClient.new_client({"url": url})
        self._ids: dict[tuple[str, str], int] = {}
        self._writers: dict[int, tuple[str, Any]] = {}

    def schema_id(self, topic: str, full: str) -> int:
        key = (topic, full)
        if key not in self._ids:
            from confluent_kafka.schema_registry import Schema

            schema = Schema(json.dumps(self.schemas.expanded[full]), "AVRO")
            try:
                self._ids[key] = self.client.register_schema(f"{topic}-{full}", schema)
            except Exception as exc:  # registry down or schema incompatible: both stop the writer
                raise CodecError(f"schema registry refused {full} for {topic}: {exc}") from None
        return self._ids[key]

    def encode(self, record: str, value: Mapping[str, Any], *, topic: str | None = None) -> bytes:
        if topic is None:
            raise CodecError("the schema-registry wire format needs the topic to encode")
        full = self.schemas.resolve(record)
        return _REGISTRY_HEADER.pack(0, self.schema_id(topic, full)) + self._body(full, value)

    def _writer(self, schema_id: int) -> tuple[str, Any]:
        if schema_id not in self._writers:
            try:
                text = self.client.get_schema(schema_id).schema_str
            except Exception as exc:
                raise CodecError(f"schema id {schema_id} not found in the registry: {exc}") from None
            data = json.loads(text)
            full = _full_name(data["name"], data.get("namespace"))
            if full not in self.schemas.records:
                raise CodecError(f"schema id {schema_id} is {full}, not a lockstock record")
            self._writers[schema_id] = (full, fastavro.parse_schema(_strip_logical_types(data)))
        return self._writers[schema_id]

    def decode(self, payload: bytes | None, *, topic: str | None = None) -> Decoded:
        if payload is None:
            raise CodecError("empty payload (null value)")
        if len(payload) < 5 or payload[:1] != CONFLUENT_MAGIC:
            raise CodecError("not in the Confluent wire format (expected magic byte 00 and a schema id)")
        schema_id = _REGISTRY_HEADER.unpack(payload[:5])[1]
        full, writer = self._writer(schema_id)
        return Decoded(full, self._read(full, memoryview(payload)[5:], writer))


def codec_for(schema_registry_url: str | None) -> AvroCodec:
    """The codec the settings ask for: single-object by default, registry when a URL is set."""
    return RegistryCodec(schema_registry_url) if schema_registry_url else SingleObjectCodec()
