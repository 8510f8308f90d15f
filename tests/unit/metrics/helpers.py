"""Reading a registry back as Prometheus would: through the text format."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from lockstock.metrics import exposition


def samples(registry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """(sample name, sorted labels) -> value, parsed from the exposition text."""
    body, _ = exposition(registry)
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(body.decode()) for s in family.samples}


def value(registry, name: str, **labels: str) -> float | None:
    return samples(registry).get((name, tuple(sorted(labels.items()))))
