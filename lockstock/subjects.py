"""lockstock's schema-registry subjects and the compatibility level they need.

With ``SCHEMA_REGISTRY_URL`` set, RegistryCodec registers each record a topic carries under
``<topic>-<record full name>``. lockstock's schemas evolve BACKWARD (a new reader reads old
data: fields are added with defaults, enum symbols are added), so that is the level each subject
must have; left unset, a subject inherits the registry's global level, and under FORWARD or FULL
the registry refuses the next published evolution (an added enum symbol is not forward
compatible), and an upgraded worker stops writing that record.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator
from urllib.parse import urlparse

from lockstock.codec import SchemaSet
from lockstock.errors import RegistryError
from lockstock.topics import Topics

BACKWARD = "BACKWARD"
REQUEST_TIMEOUT_S = 10


@dataclass(frozen=True)
class Subject:
    topic: str
    record: str  # full name, e.g. io.lockstock.LineLockRequest

    @property
    def name(self) -> str:
        # RegistryCodec.schema_id's naming; tests/integration/brokers/test_registry.py pins the two together.
        return f"{self.topic}-{self.record}"


def lockstock_subjects(prefix: str, schemas: SchemaSet | None = None) -> Iterator[Subject]:
    """Every subject lockstock may register under this topic prefix, topic by topic."""
    schemas = schemas or SchemaSet()
    for topic, spec in Topics(prefix):
        for record in spec.value_schemas:
            yield Subject(topic, schemas.resolve(record))


def is_mock(url: str) -> bool:
    """confluent-kafka's in-process mock registry keeps no compatibility levels at all."""
    return urlparse(url).scheme == "mock"


def registry_client(url: str) -> Any:
    from confluent_kafka.schema_registry import SchemaRegistryClient

    # Bounded: an operator command should fail within seconds, not retry into minutes.
    return SchemaRegistryClient({"url": url, "timeout": REQUEST_TIMEOUT_S, "max.retries": 1})


def set_backward(url: str, prefix: str, client: Any = None) -> dict[str, str]:
    """Set BACKWARD on every lockstock subject (before any schema exists is fine); returns
    subject -> the level the registry now reports. RegistryError if it refuses or is down."""
    if is_mock(url):
        return {}
    client = client or registry_client(url)
    levels = {}
    for subject in lockstock_subjects(prefix):
        try:
            answer = client.set_compatibility(subject_name=subject.name, level=BACKWARD)
        except Exception as exc:  # connection refused, timeout, HTTP error: the same for an operator
            raise RegistryError(
                f"schema registry {url} did not set {BACKWARD} on subject {subject.name}: {exc}"
            ) from None
        # The client returns the response body ({"compatibility": ...}) despite its str annotation.
        levels[subject.name] = answer.get("compatibility", "") if isinstance(answer, dict) else str(answer)
    return levels
