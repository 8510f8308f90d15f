"""What the compiled Avro writers and readers share: turning a record schema into generated
Python functions, one per named record (``lockstock.avro_writer``, ``lockstock.avro_reader``)."""

from __future__ import annotations

from typing import Any, Callable

from lockstock.errors import SchemaError


def full_name(name: str, namespace: str | None) -> str:
    return name if "." in name or not namespace else f"{namespace}.{name}"


class SchemaCompiler:
    """Fresh names, constants, named types and the generated source; subclasses emit the code."""

    def __init__(self) -> None:
        self.functions: dict[str, str] = {}  # record full name -> function name
        self.sources: list[str] = []
        self.constants: dict[str, Any] = {}
        self.named: dict[str, Any] = {}  # full name -> schema (enums, fixed, records)
        self.counter = 0

    def fresh(self, stem: str) -> str:
        self.counter += 1
        return f"{stem}{self.counter}"

    def constant(self, value: Any) -> str:
        name = self.fresh("K")
        self.constants[name] = value
        return name

    def define(self, schema: dict, namespace: str | None) -> str:
        """Remember a named type (record, enum, fixed) for later references; its full name."""
        full = full_name(schema["name"], schema.get("namespace", namespace))
        self.named[full] = schema
        return full

    def lookup(self, name: str, namespace: str | None) -> Any:
        """The schema a type name refers to."""
        full = full_name(name, namespace)
        if full not in self.named:
            raise SchemaError(f"unknown Avro type {name!r}")
        return self.named[full]

    def record(self, schema: dict, namespace: str | None) -> str:
        """The name of the function for a record, generated (``record_source``) the first time."""
        full = full_name(schema["name"], schema.get("namespace", namespace))
        if full in self.functions:
            return self.functions[full]
        function = self.functions[full] = self.fresh("record")
        self.define(schema, namespace)
        self.sources.append("\n".join(self.record_source(function, schema, full.rpartition(".")[0] or None)))
        return function

    def record_source(self, function: str, schema: dict, namespace: str | None) -> list[str]:
        raise NotImplementedError


def build(compiler: SchemaCompiler, schema: dict, entry: Callable[[str], str], helpers: dict[str, Any],
          what: str) -> Callable:
    """Compile ``schema`` (a record, self-contained JSON) with ``compiler``; ``entry(top)`` is the
    source of the function returned, named ``entry``, given the top record's function name."""
    if not isinstance(schema, dict) or schema.get("type") != "record":
        raise SchemaError(f"{what} takes a record schema")
    top = compiler.record(schema, None)
    source = "\n\n".join(compiler.sources) + "\n\n" + entry(top)
    namespace: dict[str, Any] = {**helpers, **compiler.constants}
    exec(compile(source, f"<{what} {schema.get('name')}>", "exec"), namespace)  # noqa: S102 - our own schemas
    function = namespace["entry"]
    function.__avro_source__ = source
    return function


__all__ = ["SchemaCompiler", "build", "full_name"]
