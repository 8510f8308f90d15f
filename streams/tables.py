"""Faust tables. Values are the plain dicts of ``streams.engine`` state objects (JSON in the
changelog); a table value is always reassigned after a change, or Faust writes no changelog."""

from __future__ import annotations

from dataclasses import dataclass

import faust

from lockstock.topics import TABLES


@dataclass
class Tables:
    stock: faust.TableT  # sku -> SkuState dict; partitioned like lock.requests / inventory.commands
    orders: faust.TableT  # order_id -> OrderRecord dict; partitioned like every order-keyed topic


def define_tables(app: faust.App, partitions: int) -> Tables:
    def table(name: str, help: str) -> faust.TableT:
        assert name in TABLES, f"table {name} missing from lockstock.topics.TABLES"
        return app.Table(
            name, partitions=partitions,
            help=help,  # no key/value type: Faust stores str keys and dict values as JSON
        )

    return Tables(
        stock=table("stock", "Per SKU: allocations, flex pool, reservations, limits and alert state."),
        orders=table("orders", "Per order: its lines' outcomes, decision and lifecycle status."),
    )
