"""Shared test builders: Avro record dicts (records.py), catalogs (catalogs.py) and SKU states
made with the engine's pure functions (stock.py). Import from ``tests.builders``."""

from tests.builders.catalogs import CATALOG, QUIET_RULES, US_AND_EU, catalog_of, quiet, with_rules
from tests.builders.records import (
    NOW, inventory_command, line_lock_request, line_lock_result, order_decision, order_event, order_placed,
)
from tests.builders.stock import commanded, lock_line, locked, stocked

__all__ = [
    "CATALOG", "NOW", "QUIET_RULES", "US_AND_EU", "catalog_of", "commanded", "inventory_command", "line_lock_request",
    "line_lock_result", "lock_line", "locked", "order_decision", "order_event", "order_placed", "quiet", "stocked",
    "with_rules",
]
