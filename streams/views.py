"""Web views over live table state (Faust web): what `lockstock stock show` and health checks read.

``/stock/{sku}/`` is routed by Faust to the worker that owns the SKU's partition, so the answer
is the live state, never a copy.
"""

from __future__ import annotations

import faust
from faust.web import Request, Response, View

from streams.app import Wiring
from streams.engine.stock import SkuStock


def define_views(app: faust.App, wiring: Wiring) -> None:
    stock_table = wiring.tables.stock

    def ready() -> bool:
        return bool(app.tables.actives_ready) and not app.rebalancing

    @app.page("/ready/")
    async def readiness(web: View, request: Request) -> Response:
        """200 once the worker owns partitions and has recovered its tables; 503 before."""
        body = {"ready": ready(), "rebalancing": bool(app.rebalancing), "in_recovery": bool(app.in_recovery)}
        return web.json(body, status=200 if body["ready"] else 503)

    @app.page("/stock/{sku}/")
    @app.table_route(table=stock_table, match_info="sku")
    async def stock_of(web: View, request: Request, sku: str) -> Response:
        if not ready():
            return web.json({"error": "worker is recovering its state; retry shortly"}, status=503)
        raw = stock_table.get(sku)
        if raw is None:
            return web.json({"error": f"unknown SKU {sku!r}"}, status=404)
        return web.json(SkuStock.from_dict(raw).public_view())

    @app.page("/stock/")
    async def local_stock(web: View, request: Request) -> Response:
        """Every SKU held by this worker's active partitions (all SKUs when one worker runs)."""
        if not ready():
            return web.json({"error": "worker is recovering its state; retry shortly"}, status=503)
        items = sorted(stock_table.items(), key=lambda kv: kv[0])
        return web.json({"skus": [SkuStock.from_dict(v).public_view() for _, v in items]})
