"""Test helpers the platform tests share: a stand-in gateway the fakes deliver to, two ways of sending
an adapter's ApiCall to a fake over real HTTP, and the short views of intakes and outcomes that the
assertions compare."""

from __future__ import annotations

import time
import urllib.error
import urllib.request

import aiohttp
from aiohttp import web

from connectors.base import ApiCall, CallOutcome, Intake, PayloadError, Webhook, WebhookAdapter
from connectors.fakes.base import FakeMarketplace, Sale
from connectors.signatures import SignatureError


class AdapterGateway(FakeMarketplace):
    """A stand-in gateway: POST /webhooks/<platform> verified and read by the real adapter."""

    platform = "gateway"

    def __init__(self, adapter: WebhookAdapter) -> None:
        super().__init__()
        self.adapter, self.intakes = adapter, []

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/webhooks/{platform}", self.receive)]

    def order_webhook(self, sale: Sale):
        raise NotImplementedError

    async def receive(self, request: web.Request) -> web.Response:
        hook = Webhook(request.match_info["platform"], str(request.url),
                       {k.lower(): v for k, v in request.headers.items()}, await request.read(), received_at=0)
        try:
            self.adapter.verify(hook, time.time())
            self.intakes.append(self.adapter.intake(hook))
        except SignatureError as exc:
            return web.json_response({"error": str(exc)}, status=401)
        except PayloadError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response({"status": "accepted"})


def send(call: ApiCall) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of ``call`` sent from the test's thread; an HTTP error is an answer too."""
    request = urllib.request.Request(call.url, data=call.body, headers=call.headers, method=call.method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


async def execute(calls: list[ApiCall]) -> list[tuple[int, dict[str, str], bytes]]:
    """``send`` for tests already on an event loop: the calls one after another, in order."""
    answers = []
    async with aiohttp.ClientSession() as session:
        for call in calls:
            async with session.request(call.method, call.url, data=call.body, headers=call.headers) as response:
                answers.append((response.status, dict(response.headers), await response.read()))
    return answers


def values(intake: Intake) -> list[tuple[str, dict]]:
    """(record name, record value) of each record an intake produced."""
    return [(r.record, r.value) for r in intake.records]


def summary(outcome: CallOutcome) -> list[tuple[str, bool, bool]]:
    """(sku, ok, retryable) of each push result."""
    return [(r.push.sku, r.ok, r.retryable) for r in outcome.results]
