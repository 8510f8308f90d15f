"""Web views over live table state (Faust web): what `lockstock stock show` and health checks read.

``/stock/{sku}/`` is routed by Faust to the worker that owns the SKU's partition, so the answer
is the live state, never a copy. Routing goes by the *input topic's* key (``topic_route``): the
table's own route hashes the JSON-encoded key, a different partition than the raw key the
SKU's lock requests carry, and landed on a worker holding only a standby copy.
"""

from __future__ import annotations

import faust
from faust.web import Request, Response, View

from lockstock.metrics import exposition
from lockstock.metrics.worker import WorkerMetrics
from streams.app import Wiring
from streams.engine.orders import OrderRecord
from streams.engine.state import SkuState
from streams.tables import heads, table_value


def define_views(app: faust.App, wiring: Wiring) -> None:
    stock_table, orders_table = wiring.tables.stock, wiring.tables.orders

    def ready() -> bool:
        return bool(app.tables.actives_ready) and not app.rebalancing

    def recovering(web: View) -> Response:
        return web.json({"error": "worker is recovering its state; retry shortly"}, status=503)

    @app.page("/ready/")
    async def readiness(web: View, request: Request) -> Response:
        """200 once the worker owns partitions and has recovered its tables; 503 before."""
        body = {"ready": ready(), "rebalancing": bool(app.rebalancing), "in_recovery": bool(app.in_recovery)}
        return web.json(body, status=200 if body["ready"] else 503)

    @app.page("/stock/{sku}/")
    @app.topic_route(topic=wiring.lock_requests, match_info="sku")
    async def stock_of(web: View, request: Request, sku: str) -> Response:
        if not ready():
            return recovering(web)
        raw = table_value(stock_table.get(sku))
        if raw is None:
            return web.json({"error": f"unknown SKU {sku!r}"}, status=404)
        return web.json(SkuState.from_dict(raw).public_view())

    @app.page("/stock/")
    async def local_stock(web: View, request: Request) -> Response:
        """Every SKU held by this worker's active partitions (all SKUs when one worker runs)."""
        if not ready():
            return recovering(web)
        items = sorted(heads(stock_table), key=lambda kv: kv[0])
        return web.json({"skus": [SkuState.from_dict(table_value(v)).public_view() for _, v in items]})

    @app.page("/orders/{order_id}/")
    @app.topic_route(topic=wiring.orders_placed, match_info="order_id")
    async def order_of(web: View, request: Request, order_id: str) -> Response:
        """An order's lifecycle status, lines and decision, from the worker that owns it."""
        if not ready():
            return recovering(web)
        raw = table_value(orders_table.get(order_id))
        if raw is None:
            return web.json({"error": f"unknown order {order_id!r}"}, status=404)
        return web.json(OrderRecord.from_dict(raw).public_view())

    @app.page("/consumer/")
    async def consumer_state(web: View, request: Request) -> Response:
        """Where this worker's consumer stands per partition (for on-call: a partition that does
        not move is paused, buffered, or not assigned)."""
        consumer = app.consumer

        def names(tps) -> list[str]:
            return sorted(f"{tp.topic}[{tp.partition}]" for tp in tps or ())

        def offsets(mapping) -> dict[str, int | None]:
            return {f"{tp.topic}[{tp.partition}]": offset for tp, offset in sorted(mapping.items())}

        return web.json({
            "assigned": names(consumer.assignment()),
            "active": names(consumer._active_partitions),
            "paused": names(consumer._paused_partitions),
            "buffered": names(consumer._buffered_partitions),
            "read_offsets": offsets(consumer._read_offset),
            "committed_offsets": offsets(consumer._committed_offset),
            "flow_active": consumer.flow_active,
            "queues": {str(agent.name): agent.channel.queue.qsize() for agent in app.agents.values()},
            "fetcher": _fetcher_state(consumer),
        })

    metrics = WorkerMetrics.of(app)
    metrics.watch_consumer(lambda: app.consumer, lambda: frozenset(
        name for agent in app.agents.values() for name in agent.channel.topics))

    @app.page("/metrics")
    async def prometheus(web: View, request: Request) -> Response:
        """Prometheus metrics of this worker (docs/metrics.md)."""
        body, content_type = exposition(metrics.registry)
        return web.bytes(body, headers={"Content-Type": content_type})

    @app.page("/catalog/")
    async def catalog(web: View, request: Request) -> Response:
        """The regions, channels and rules this worker runs with."""
        return web.json({"source": wiring.catalog.source, **wiring.catalog.to_dict()})


def _fetcher_state(consumer) -> dict:
    """aiokafka's own view per partition: position, pause, pending records, fetches in flight."""
    try:
        client = consumer._thread._ensure_consumer()
        fetcher, assignment = client._fetcher, client._subscription.subscription.assignment
    except Exception as exc:  # another transport, or not started
        return {"unavailable": repr(exc)}
    state = {}
    for tp in assignment.tps:
        tp_state = assignment.state_value(tp)
        state[f"{tp.topic}[{tp.partition}]"] = {
            "position": tp_state._position, "paused": tp_state.paused,
            "awaiting_reset": tp_state.awaiting_reset, "buffered_records": tp in fetcher._records,
        }
    return {"partitions": state, "in_flight_nodes": sorted(map(str, fetcher._in_flight))}
