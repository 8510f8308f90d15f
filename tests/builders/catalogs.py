"""Catalogs for tests: the repo's own catalog, the same with other rules, and small ones built
from a channels mapping."""

from __future__ import annotations

import dataclasses
from typing import Any

from lockstock.catalog import Catalog, catalog_from_dict, load_catalog

CATALOG = load_catalog()
"""The repo's catalog (channels.yaml): regions US, EU and SEA, nine channels."""

QUIET_RULES = {"limit_min_units": 10**9, "realloc_min_units": 10**9}
"""Rules under which locks set no automatic purchase limit and trigger no reallocation."""

US_AND_EU = {"US": {"warehouses": ["LA", "NJ"]}, "EU": {"warehouses": ["RTM"]}}
"""Two regions, the US with warehouses LA and NJ, the EU with RTM."""


def with_rules(catalog: Catalog = CATALOG, **changes: Any) -> Catalog:
    """``catalog`` (default: the repo's) with the given ``Rules`` fields changed."""
    return dataclasses.replace(catalog, rules=dataclasses.replace(catalog.rules, **changes))


def quiet(catalog: Catalog = CATALOG, **changes: Any) -> Catalog:
    """``catalog`` (default: the repo's) under ``QUIET_RULES``, plus any other rule ``changes``."""
    return with_rules(catalog, **QUIET_RULES, **changes)


def catalog_of(channels: dict[str, dict], *, connectors: dict[str, dict] | None = None,
               regions: dict[str, dict] = US_AND_EU) -> Catalog:
    """A catalog of ``channels`` (id -> channel entry) in ``regions`` (default: ``US_AND_EU``),
    with the given per-platform ``connectors`` sections (default: none)."""
    data: dict[str, Any] = {"regions": regions, "channels": channels}
    if connectors is not None:
        data["connectors"] = connectors
    return catalog_from_dict(data)
