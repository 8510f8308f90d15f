"""Prometheus metrics of the worker, the gateway and the sync (docs/metrics.md lists them).

Each process builds its own ``CollectorRegistry`` rather than using prometheus_client's global
one: tests run several gateways, syncs and metric sets in one interpreter, and a global registry
would refuse the second registration of a name. What is cheap to read off live state (consumer
lag, sync queues, per-lane counters) is computed by a collector when Prometheus scrapes, so the
hot paths only count what exists nowhere else, once per batch where they can.
"""

from __future__ import annotations

import re

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest

# A label value that is not a short machine code (free text, an id) is folded into OTHER: one
# bad producer must not be able to create a time series per record.
_CODE = re.compile(r"^[A-Za-z0-9_.:-]{1,48}$")
OTHER = "OTHER"


def code_label(value: str | None, none: str = "none") -> str:
    """A low-cardinality label value for a reason or status code."""
    if value is None or value == "":
        return none
    return value if _CODE.match(value) else OTHER


def exposition(registry: CollectorRegistry) -> tuple[bytes, str]:
    """The registry in Prometheus' text format, and the content type to serve it with."""
    return generate_latest(registry), CONTENT_TYPE_LATEST


def aiohttp_handler(registry: CollectorRegistry):
    """An aiohttp route handler serving ``registry`` (the gateway's and the sync's /metrics)."""
    from aiohttp import web

    async def metrics(request: web.Request) -> web.Response:
        body, content_type = exposition(registry)
        # aiohttp refuses a charset inside content_type=; the header carries it whole.
        return web.Response(body=body, headers={"Content-Type": content_type})

    return metrics


def dead_letters_counter(registry: CollectorRegistry) -> Counter:
    return Counter("lockstock_dead_letters", "Records dead-lettered by this process, by DeadLetter.error_type "
                   "(lockstock/deadletter.py).", ["reason"], registry=registry)
