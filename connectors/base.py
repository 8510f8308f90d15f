"""The one small interface every marketplace adapter implements.

Inbound (``WebhookAdapter``): verify a webhook over its raw body, then turn it into lockstock
records (``OrderPlaced`` for a new order, ``OrderEvent`` for paid / cancelled / shipped). The
gateway (connectors/gateway.py) does everything else: HTTP, dedupe, producing, dead letters.

Outbound (``StockPusher``): turn coalesced stock pushes into the platform's real API calls
(URL, headers, signature, body) and read the platform's answer back. The sync
(connectors/sync/) decides what to push, when, and within which rate budget.

Adapters never touch Kafka or the network themselves, so both halves are plain functions a unit
test can drive with a platform's documented payloads.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping, Sequence, cast

from lockstock.catalog import Catalog, Channel
from lockstock.errors import LockstockError
from schemas.records import OrderEvent, OrderEventType, OrderLine, OrderPlaced


class PayloadError(LockstockError):
    """The body is signed but not a payload this adapter understands (gateway: 400 + dead letter)."""


class NotConfigured(LockstockError):
    """A platform has no secret / credentials configured (gateway: 503, sync: channel skipped)."""


@dataclass(frozen=True)
class Webhook:
    """One inbound delivery as received: header names lower-cased, the body byte for byte."""

    platform: str
    url: str  # the URL the platform called, scheme://host/path?query (Shopee signs it)
    headers: Mapping[str, str]
    body: bytes
    received_at: int  # epoch ms

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name.lower(), default)

    def body_digest(self) -> str:
        return hashlib.sha256(self.body).hexdigest()[:32]


@dataclass(frozen=True)
class Emit:
    """A record the gateway produces: ``record`` is "OrderPlaced" or "OrderEvent"."""

    record: str
    key: str
    value: OrderPlaced | OrderEvent


@dataclass(frozen=True)
class Intake:
    """What one delivery means for lockstock.

    ``delivery_id`` is the platform's id of this delivery (webhook id, notification id, event id):
    a redelivery carries the same one and is acknowledged without producing again. ``ignored``
    says why a genuine delivery produces nothing (a status lockstock does not act on); the gateway
    counts and logs it, it is never dropped silently.
    """

    delivery_id: str
    records: tuple[Emit, ...] = ()
    ignored: str = ""


class WebhookAdapter(ABC):
    platform: ClassVar[str]  # the route: POST /webhooks/<platform>
    secret_env: ClassVar[str]  # environment variable holding the signing secret

    def __init__(self, catalog: Catalog, secret: str, settings: Mapping[str, Any]) -> None:
        self.catalog = catalog
        self.secret = secret
        self.settings = dict(settings)  # the catalog's connectors.<platform> section

    @abstractmethod
    def verify(self, hook: Webhook, now_s: float) -> None:
        """Raise connectors.signatures.SignatureError unless the platform signed this body."""

    @abstractmethod
    def intake(self, hook: Webhook) -> Intake:
        """The records this (verified) delivery stands for; PayloadError if it is malformed."""


@dataclass(frozen=True)
class StockPush:
    """Set ``sku``'s advertised quantity on ``channel``'s listing (a store channel)."""

    channel: str
    sku: str
    quantity: int
    expected: int | None = None  # what we believe the platform shows now (compare-and-set)
    changed_at: int = 0  # epoch ms of the stock change this push carries (sync lag is from here)


@dataclass
class ApiCall:
    """One HTTP request to a platform, carrying one or more pushes."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes
    pushes: tuple[StockPush, ...]
    cost: float = 1.0  # rate-budget units this call spends (Shopify: query cost points)


@dataclass(frozen=True)
class PushResult:
    push: StockPush
    ok: bool
    retryable: bool = False
    reason: str = ""
    actual: int | None = None  # the platform's own quantity when a compare-and-set was refused


@dataclass(frozen=True)
class CallOutcome:
    results: tuple[PushResult, ...]
    throttled: bool = False  # the platform said 429 / throttled: slow the whole budget down
    retry_after_s: float | None = None


@dataclass(frozen=True)
class RateBudget:
    """A token bucket: ``capacity`` units, refilled at ``refill_per_s``; a call spends its cost."""

    capacity: float
    refill_per_s: float


class StockPusher(ABC):
    platform: ClassVar[str]
    max_batch: ClassVar[int] = 1  # pushes one call may carry
    compare_and_set: ClassVar[bool] = False  # the API refuses a set when ``expected`` is stale
    # credential name -> environment variable; the environment wins over connectors.<platform>
    credential_env: ClassVar[dict[str, str]] = {}

    def __init__(self, catalog: Catalog, settings: Mapping[str, Any], credentials: Mapping[str, str]) -> None:
        self.catalog = catalog
        self.settings = dict(settings)  # connectors.<platform> section (base_url, ids, ...)
        self.credentials = dict(credentials)  # secrets from the environment or the section

    def budget(self, channel: Channel) -> RateBudget:
        """Default: the channel's calls per minute, with a burst of one second's worth (min 1)."""
        per_s = channel.rate_limit_per_min / 60.0
        return RateBudget(capacity=max(1.0, per_s), refill_per_s=per_s)

    @abstractmethod
    def build_calls(self, channel: Channel, pushes: Sequence[StockPush], now_s: float) -> list[ApiCall]:
        """The platform requests that set these pushes (at most ``max_batch`` per call)."""

    @abstractmethod
    def parse_response(self, call: ApiCall, status: int, headers: Mapping[str, str], body: bytes) -> CallOutcome:
        """Per push: accepted, refused (retryable or not, with the platform's reason)."""


ORDER_EVENT_TYPES = ("PAID", "CANCELLED", "SHIPPED")


def order_placed(platform: str, platform_order_id: Any, channel: str, buyer_id: Any, placed_at: int,
                 lines: Sequence[tuple[Any, Any]], ship_to_region: str = "") -> Emit:
    """An OrderPlaced record keyed by the platform-prefixed order id, every field checked."""
    order_id = _order_id(platform, platform_order_id)
    checked: list[OrderLine] = []
    for sku, qty in lines:
        if not isinstance(sku, str) or not sku.strip():
            raise PayloadError(f"order {order_id}: a line has no seller SKU")
        if isinstance(qty, bool) or not isinstance(qty, int) or qty <= 0:
            raise PayloadError(f"order {order_id}: line {sku} has quantity {qty!r}; expected a whole number > 0")
        checked.append({"sku": sku.strip(), "qty": qty})
    if not checked:
        raise PayloadError(f"order {order_id} has no lines")
    # No buyer given (a guest checkout): one bucket per order, so a purchase limit never lumps
    # every anonymous buyer together.
    value: OrderPlaced = {"order_id": order_id, "channel": channel, "buyer_id": str(buyer_id or "") or f"{order_id}:buyer",
                          "ship_to_region": ship_to_region, "placed_at": int(placed_at), "lines": checked}
    return Emit("OrderPlaced", order_id, value)


def order_event(platform: str, platform_order_id: Any, channel: str, kind: str, event_id: str, occurred_at: int,
                warehouse: str | None = None, reason: str | None = None) -> Emit:
    """An OrderEvent (PAID / CANCELLED / SHIPPED); ``event_id`` is stable across redeliveries."""
    if kind not in ORDER_EVENT_TYPES:
        raise PayloadError(f"unknown order event {kind!r}")
    order_id = _order_id(platform, platform_order_id)
    value: OrderEvent = {"event_id": f"{platform}:{event_id}", "order_id": order_id, "type": cast(OrderEventType, kind),
                         "channel": channel, "occurred_at": int(occurred_at), "warehouse": warehouse, "reason": reason}
    return Emit("OrderEvent", order_id, value)


def _order_id(platform: str, platform_order_id: Any) -> str:
    if isinstance(platform_order_id, bool) or platform_order_id is None or str(platform_order_id).strip() == "":
        raise PayloadError(f"{platform} payload has no order id")
    return f"{platform}:{str(platform_order_id).strip()}"


def channel_by_account(catalog: Catalog, platform: str, account: Any) -> str:
    """The catalog channel of ``platform`` whose ``account`` is this shop / marketplace id.
    A single channel of the platform without an account set takes every delivery."""
    candidates = [c for c in catalog.channels.values() if c.platform == platform and not c.store]
    for channel in candidates:
        if channel.account and channel.account == str(account):
            return channel.id
    unaccounted = [c for c in candidates if not c.account]
    if len(unaccounted) == 1:
        return unaccounted[0].id
    raise PayloadError(f"no {platform} channel has account {account!r} (set 'account' in the channels file)")


def status_outcome(call: ApiCall, status: int, headers: Mapping[str, str], body: bytes) -> CallOutcome | None:
    """The shared reading of HTTP statuses: 429 and 5xx are retryable (with Retry-After), other
    non-2xx are final. None for a 2xx, whose body the adapter reads itself."""
    if 200 <= status < 300:
        return None
    retry_after = _retry_after(headers)
    retryable = status == 429 or status >= 500
    reason = f"HTTP {status}: {body[:200].decode('utf-8', 'replace')}"
    return CallOutcome(
        results=tuple(PushResult(p, ok=False, retryable=retryable, reason=reason) for p in call.pushes),
        throttled=status == 429, retry_after_s=retry_after,
    )


def _retry_after(headers: Mapping[str, str]) -> float | None:
    for key, value in headers.items():
        if key.lower() == "retry-after":
            try:
                return max(0.0, float(value))
            except ValueError:
                return None
    return None


@dataclass
class Registry:
    """Adapter classes by platform name (each platform module registers itself)."""

    webhooks: dict[str, type[WebhookAdapter]] = field(default_factory=dict)
    pushers: dict[str, type[StockPusher]] = field(default_factory=dict)


REGISTRY = Registry()


def webhook_adapter(cls: type[WebhookAdapter]) -> type[WebhookAdapter]:
    REGISTRY.webhooks[cls.platform] = cls
    return cls


def stock_pusher(cls: type[StockPusher]) -> type[StockPusher]:
    REGISTRY.pushers[cls.platform] = cls
    return cls
