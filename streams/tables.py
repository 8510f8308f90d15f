"""Faust tables. Values are the plain dicts of ``streams.engine`` state objects (JSON in the
changelog); a table value is always reassigned after a change, or Faust writes no changelog."""

from __future__ import annotations

from dataclasses import dataclass

import faust

from lockstock.topics import TABLES


@dataclass
class Tables:
    stock: faust.TableT  # sku -> SkuStock dict; partitioned like lock.requests / inventory.commands
    pending_orders: faust.TableT  # order_id -> PendingOrder dict; partitioned like lock.results


def define_tables(app: faust.App, partitions: int) -> Tables:
    def table(name: str, help: str) -> faust.TableT:
        assert name in TABLES, f"table {name} missing from lockstock.topics.TABLES"
        return app.Table(
            name, partitions=partitions,
            help=help,  # no key/value type: Faust stores str keys and dict values as JSON
        )

    return Tables(
        stock=table("stock", "Stock and reservations per SKU."),
        pending_orders=table("pending_orders", "Per-SKU outcomes gathered per order, and its decision."),
    )
