"""Python types of lockstock's Avro records, generated from ``schemas/**/*.avsc``.

Records travel as plain dicts (the codec's input and output), so a misspelt or missing field in
code that builds one shows only when the record is encoded, at run time. ``schemas/records.py``
declares each record as a ``TypedDict`` and each enum as a ``Literal``, so mypy finds those
mistakes where the dict is built (``make test`` type-checks the engine and the connector adapters
against it: tests/unit/test_typecheck.py).

That file is generated, never edited: ``python -m lockstock.record_types > schemas/records.py``.
tests/unit/test_record_types.py fails when it and the schemas disagree.

Mapping: string -> str, int/long (timestamp-millis too) -> int, float/double -> float,
boolean -> bool, bytes -> bytes, null -> None, a union -> ``A | B``, array -> list, map ->
dict[str, ...], enum -> ``Literal`` of its symbols, record -> its TypedDict. A field with a
default is ``NotRequired`` (a writer may leave it out; the codec fills the default in).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Iterable

from schemas import NAMESPACE, SCHEMA_DIR

_PRIMITIVES = {"string": "str", "int": "int", "long": "int", "float": "float", "double": "float",
               "boolean": "bool", "bytes": "bytes", "null": "None"}

HEADER = '''"""lockstock's Avro records as Python types. GENERATED from schemas/**/*.avsc by
``python -m lockstock.record_types > schemas/records.py``: do not edit (lockstock/record_types.py
says how each Avro type maps)."""

# No ``from __future__ import annotations``: evaluated annotations let a TypedDict know its
# NotRequired keys at run time (records come after the records their fields name).
from typing import Literal, NotRequired, TypedDict
'''


def load(directory: Path = SCHEMA_DIR) -> dict[str, dict[str, Any]]:
    """Every current named type: short name -> its schema, in file order (the codec's own
    reading of the schema files, earlier published versions left out)."""
    from lockstock.codec import SchemaSet

    return {schema["name"]: schema for schema in SchemaSet(directory).raw.values()}


def short(name: str) -> str:
    prefix = NAMESPACE + "."
    return name[len(prefix):] if name.startswith(prefix) else name


def annotation(node: Any) -> str:
    """The Python type of an Avro type (named types by name)."""
    if isinstance(node, str):
        return _PRIMITIVES.get(node, short(node))
    if isinstance(node, list):
        return " | ".join(annotation(branch) for branch in node)
    kind = node["type"]
    if kind == "array":
        return f"list[{annotation(node['items'])}]"
    if kind == "map":
        return f"dict[str, {annotation(node['values'])}]"
    if kind in ("record", "enum", "fixed"):
        raise ValueError(f"named type {node.get('name')!r} defined inline: give it a file of its own")
    return annotation(kind)  # a primitive with a logical type


def render(named: dict[str, dict[str, Any]]) -> str:
    blocks = [HEADER]
    enums = [schema for schema in named.values() if schema["type"] == "enum"]
    records = [schema for schema in named.values() if schema["type"] == "record"]
    for schema in enums:
        symbols = ", ".join(json.dumps(symbol) for symbol in schema["symbols"])
        blocks.append(f"{schema['name']} = Literal[{symbols}]\n")
    for schema in _dependency_order(records):
        lines = [f"class {schema['name']}(TypedDict):"]
        if schema.get("doc"):
            lines.append(f"    {_docstring(schema['doc'])}")
        for field in schema["fields"]:
            kind = annotation(field["type"])
            lines.append(f"    {field['name']}: {f'NotRequired[{kind}]' if 'default' in field else kind}")
        blocks.append("\n".join(lines) + "\n")
    return "\n\n".join(blocks)


def _dependency_order(records: list[dict[str, Any]]) -> Iterable[dict[str, Any]]:
    """Records after the records their fields name: the module's annotations are evaluated."""
    by_name = {schema["name"]: schema for schema in records}
    done: set[str] = set()

    def visit(schema: dict[str, Any]) -> Iterable[dict[str, Any]]:
        if schema["name"] in done:
            return
        done.add(schema["name"])
        for field in schema["fields"]:
            for name in _names(field["type"]):
                if name in by_name:
                    yield from visit(by_name[name])
        yield schema

    for schema in records:
        yield from visit(schema)


def _names(node: Any) -> Iterable[str]:
    if isinstance(node, str):
        yield short(node)
    elif isinstance(node, list):
        for branch in node:
            yield from _names(branch)
    elif isinstance(node, dict):
        yield from _names(node.get("items", node.get("values", "")))


def _docstring(doc: str) -> str:
    text = doc.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    return f'"""{text}"""'


def main() -> int:
    sys.stdout.write(render(load()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
