"""Listing quantity out: ``patchListingsItem`` (Listings Items API 2021-08-01), one SKU per call.

``PATCH {base_url}/listings/2021-08-01/items/{sellerId}/{sku}?marketplaceIds={channel.account}``
with header ``x-amz-access-token`` (an LWA access token, refreshed outside lockstock) and body
``{"productType": ..., "patches": [{"op": "replace", "path": "/attributes/fulfillment_availability",
"value": [{"fulfillment_channel_code": "DEFAULT", "quantity": N}]}]}``. The answer is 200
``{"sku", "status": "ACCEPTED" | "INVALID", "submissionId", "issues": [...]}``; INVALID is final.
JSON_LISTINGS_FEED would carry up to thousands of SKUs per request, but feeds are processed
asynchronously (minutes, and a second call to learn the result), far too slow for a live stream
that sells out in seconds, so lockstock patches SKU by SKU within the per-call rate limit.

Rate: patchListingsItem's usage plan is 5 requests/s with a burst of 10 per selling-partner account
(API reference); the newer rate-limit table lists a burst of 5, so ``connectors.amazon.burst: 5``
is the cautious setting. A 429 carries no Retry-After, only ``x-amzn-RateLimit-Limit`` (requests/s);
the retry delay is read from that.

Configuration (``connectors.amazon``): ``seller_id``, ``base_url`` (default the NA endpoint),
``rate_per_s``, ``burst``, ``access_token`` (``LOCKSTOCK_AMAZON_ACCESS_TOKEN`` wins). Per channel:
``account`` = marketplace id (ATVPDKIKX0DER for amazon.com, A1PA6795UKMFR9 for amazon.de, ...),
``connector: {product_type: SHIRT, seller_id: ..., base_url: https://sellingpartnerapi-eu.amazon.com}``
(each optional; EU marketplaces need the EU endpoint).

Followed: https://developer-docs.amazon.com/sp-api/reference/patchlistingsitem (usage plan 5/s, burst 10),
https://developer-docs.amazon.com/sp-api/docs/listings-items-api-rate-limits,
https://developer-docs.amazon.com/sp-api/docs/partially-update-a-listing,
https://developer-docs.amazon.com/sp-api/docs/response-format (x-amzn-RateLimit-Limit).
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any, Mapping, Sequence
from urllib.parse import quote

from connectors.amazon.intake import PLATFORM
from connectors.base import (
    ApiCall, CallOutcome, NotConfigured, PushResult, RateBudget, StockPush, StockPusher, status_outcome, stock_pusher,
)
from lockstock.catalog import Catalog, Channel
from lockstock.errors import SettingsError

LISTINGS_PATH = "/listings/2021-08-01/items"
DEFAULT_BASE_URL = "https://sellingpartnerapi-na.amazon.com"


@stock_pusher
class AmazonStockPusher(StockPusher):
    platform = PLATFORM
    max_batch = 1  # patchListingsItem sets one SKU; JSON_LISTINGS_FEED is the (slow, async) bulk path
    credential_env = {"access_token": "LOCKSTOCK_AMAZON_ACCESS_TOKEN"}

    def __init__(self, catalog: Catalog, settings: Mapping[str, Any], credentials: Mapping[str, str]) -> None:
        super().__init__(catalog, settings, credentials)
        self.rate_per_s = _positive(self.settings.get("rate_per_s", 5), "connectors.amazon.rate_per_s")
        self.burst = _positive(self.settings.get("burst", 10), "connectors.amazon.burst")
        for channel in catalog.channels.values():
            if channel.platform == PLATFORM and not channel.store:
                self._target(channel)  # every amazon channel must be pushable: fail at start, not mid-stream

    def budget(self, channel: Channel) -> RateBudget:
        """Amazon limits per selling-partner account; the budget is per channel, which is the same
        while each amazon channel is its own account or regional endpoint (NA, EU). Channels that
        share one seller on one endpoint (amazon.de + amazon.fr) share the limit: divide rate_per_s."""
        return RateBudget(capacity=self.burst, refill_per_s=self.rate_per_s)

    def _target(self, channel: Channel) -> tuple[str, str, str]:
        """(base URL, seller id, product type) of a channel; NotConfigured when one is missing."""
        connector = channel.connector or {}
        seller = str(connector.get("seller_id") or self.settings.get("seller_id") or "").strip()
        if not seller:
            raise NotConfigured(f"amazon stock pushes are off: set connectors.amazon.seller_id (or channel "
                                f"{channel.id}'s connector.seller_id)")
        if not channel.account:
            raise NotConfigured(f"amazon stock pushes are off: channel {channel.id} has no account "
                                "(its marketplace id, e.g. ATVPDKIKX0DER)")
        product_type = connector.get("product_type", "PRODUCT")
        if not isinstance(product_type, str) or not product_type.strip():
            raise NotConfigured(f"channel {channel.id}: connector.product_type must be an Amazon product type name")
        base = str(connector.get("base_url") or self.settings.get("base_url") or DEFAULT_BASE_URL).rstrip("/")
        return base, seller, product_type.strip()

    def build_calls(self, channel: Channel, pushes: Sequence[StockPush], now_s: float) -> list[ApiCall]:
        base, seller, product_type = self._target(channel)
        calls = []
        for push in pushes:
            body = json.dumps({"productType": product_type, "patches": [{
                "op": "replace", "path": "/attributes/fulfillment_availability",
                "value": [{"fulfillment_channel_code": "DEFAULT", "quantity": max(0, int(push.quantity))}]}]},
                separators=(",", ":")).encode()
            url = (f"{base}{LISTINGS_PATH}/{quote(seller, safe='')}/{quote(push.sku, safe='')}"
                   f"?marketplaceIds={quote(channel.account, safe='')}")
            headers = {"x-amz-access-token": self.credentials["access_token"], "content-type": "application/json",
                       "accept": "application/json", "user-agent": "lockstock/0.1 (Language=Python)"}
            calls.append(ApiCall("PATCH", url, headers, body, (push,)))
        return calls

    def parse_response(self, call: ApiCall, status: int, headers: Mapping[str, str], body: bytes) -> CallOutcome:
        failed = status_outcome(call, status, headers, body)
        if failed is not None:
            if status == 429 and failed.retry_after_s is None:
                failed = dataclasses.replace(failed, retry_after_s=_rate_limit_wait(headers))
            return failed
        try:
            answer = json.loads(body)
        except ValueError:
            answer = None
        results = []
        for push in call.pushes:
            if not isinstance(answer, dict) or answer.get("status") not in ("ACCEPTED", "INVALID"):
                results.append(PushResult(push, ok=False, retryable=True,
                                          reason=f"unreadable answer: {body[:200].decode('utf-8', 'replace')}"))
            elif answer.get("sku") not in (None, push.sku):
                results.append(PushResult(push, ok=False, retryable=True,
                                          reason=f"answer is for SKU {answer.get('sku')!r}, not {push.sku!r}"))
            elif answer["status"] == "ACCEPTED":
                results.append(PushResult(push, ok=True))
            else:
                results.append(PushResult(push, ok=False, retryable=False, reason="INVALID: " + _issues(answer)))
        return CallOutcome(tuple(results))


def _issues(answer: dict) -> str:
    given = answer.get("issues")
    issues: list[Any] = given if isinstance(given, list) else []
    described = [f"{i.get('code', '?')} {i.get('message', '')}".strip() for i in issues if isinstance(i, dict)]
    return "; ".join(described) or "no issues given"


def _rate_limit_wait(headers: Mapping[str, str]) -> float | None:
    """SP-API's 429 has no Retry-After; x-amzn-RateLimit-Limit (requests/s) gives one request's spacing."""
    for key, value in headers.items():
        if key.lower() == "x-amzn-ratelimit-limit":
            try:
                rate = float(value)
            except ValueError:
                return None
            return 1.0 / rate if rate > 0 else None
    return None


def _positive(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise SettingsError(f"{where} must be a number > 0, got {value!r}")
    return float(value)
