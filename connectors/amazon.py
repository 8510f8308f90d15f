"""Amazon Selling Partner API: ORDER_CHANGE notifications from an SQS queue in, listing quantity out.

Amazon has no order webhooks. SP-API publishes notifications to an SQS queue the seller owns;
``SqsSource`` long-polls it with the SQS AWS JSON protocol, signed with Signature Version 4, and
``consume_notifications`` hands each message to the gateway, deleting it only once the gateway
says its records are acknowledged (or dead-lettered). ``AmazonNotifications.intake`` is the pure
part: one notification body in, lockstock records out. There is no HTTP signature to check: only
holders of the AWS credentials can read the queue, and only Amazon can write to it.

Inbound mapping (``Summary.OrderStatus`` of an ORDER_CHANGE, any OrderChangeType):
- ``Pending``   -> OrderPlaced (lines from ``Summary.OrderItems``: SellerSKU x Quantity)
- ``Unshipped`` -> OrderPlaced + OrderEvent PAID (payment authorised). The engine keys orders by
  order_id, so the OrderPlaced is a no-op when the Pending one was already seen ("first sight"
  wins), and lifecycle event ids are ``amazon:<order>:<TYPE>``, so a second notification carrying
  the same status (a BuyerRequestedChange while Unshipped) never pays or cancels twice.
- ``Canceled`` -> CANCELLED (reason: ``OrderChangeTrigger.ChangeReason``); ``Shipped`` -> SHIPPED.
- Any other status (PartiallyShipped, Unfulfillable, InvoiceUnconfirmed, PendingAvailability) and
  any other NotificationType is ignored with the reason. delivery_id = NotificationMetadata.NotificationId.
- Channel: the catalog's amazon channel whose ``account`` is ``Summary.MarketplaceId``.
- buyer_id: ORDER_CHANGE carries no buyer identity (buyer data is restricted, RDT-only), so each
  order is its own buyer ``amazon:buyer-of-<order>``; one shared "anonymous" buyer would make a
  triggered purchase limit reject every Amazon buyer at once.
- SQS may carry the notification as is (SP-API's SQS destination) or inside an SNS envelope
  (``{"Type": "Notification", "Message": "<json>"}``, when the queue is fed by an SNS topic): both accepted.

Outbound: ``patchListingsItem`` (Listings Items API 2021-08-01), one SKU per call:
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

Configuration (``connectors.amazon``): ``queue_url``, ``region`` (else read from the queue URL),
``sqs_endpoint`` (override, for the fake), ``aws_access_key_id`` / ``aws_secret_access_key`` /
``aws_session_token`` (the environment's ``LOCKSTOCK_AWS_ACCESS_KEY_ID`` / ``..._SECRET_ACCESS_KEY``
/ ``..._SESSION_TOKEN`` win), ``seller_id``, ``base_url`` (default the NA endpoint),
``rate_per_s``, ``burst``, ``access_token`` (``LOCKSTOCK_AMAZON_ACCESS_TOKEN`` wins). Per channel:
``account`` = marketplace id (ATVPDKIKX0DER for amazon.com, A1PA6795UKMFR9 for amazon.de, ...),
``connector: {product_type: SHIRT, seller_id: ..., base_url: https://sellingpartnerapi-eu.amazon.com}``
(each optional; EU marketplaces need the EU endpoint).

Followed:
- https://developer-docs.amazon.com/sp-api/docs/tutorial-subscribe-to-order-change-notification and
  the OrderChangeNotification JSON schema (selling-partner-api-models, schemas/notifications).
- https://developer-docs.amazon.com/sp-api/reference/patchlistingsitem (usage plan 5/s, burst 10),
  https://developer-docs.amazon.com/sp-api/docs/listings-items-api-rate-limits,
  https://developer-docs.amazon.com/sp-api/docs/partially-update-a-listing,
  https://developer-docs.amazon.com/sp-api/docs/response-format (x-amzn-RateLimit-Limit).
- https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-making-api-requests-json.html,
  .../sqs-json-api-responses.html, .../APIReference/API_Message.html.
- https://docs.aws.amazon.com/general/latest/gr/sigv4-calculate-signature.html and
  .../sigv4-add-signature-to-request.html (the vectors in tests/unit/connectors/test_amazon.py).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import hmac
import json
import logging
import math
import os
import re
import time
from abc import ABC, abstractmethod
from collections import Counter
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Mapping, Sequence
from urllib.parse import parse_qsl, quote, urlsplit

import aiohttp

from connectors.base import (
    ApiCall, CallOutcome, Emit, Intake, NotConfigured, PayloadError, PushResult, RateBudget, StockPush,
    StockPusher, channel_by_account, order_event, order_placed, status_outcome, stock_pusher,
)
from connectors.config import section
from connectors.payload import is_whole, iso_epoch_ms, required_text, utf8_json_object
from lockstock.catalog import Catalog, Channel
from lockstock.errors import LockstockError, SettingsError

logger = logging.getLogger(__name__)

PLATFORM = "amazon"

# ---- AWS Signature Version 4 ------------------------------------------------------------------
ALGORITHM = "AWS4-HMAC-SHA256"


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def signing_key(secret_key: str, date: str, region: str, service: str) -> bytes:
    """kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, yyyymmdd), region), service), "aws4_request")."""
    key = _hmac(("AWS4" + secret_key).encode(), date)
    for part in (region, service, "aws4_request"):
        key = _hmac(key, part)
    return key


def canonical_request(method: str, path: str, query: str, headers: Mapping[str, str], body: bytes) -> tuple[str, str]:
    """(canonical request, signed header list) over every header given (names lower-cased).
    ``path`` is the request path as sent (percent-encoded); services other than S3 expect it
    encoded once more, which ``quote`` does (S3's plain paths come out the same)."""
    canonical_query = "&".join(
        f"{k}={v}" for k, v in sorted((quote(k, safe="-_.~"), quote(v, safe="-_.~"))
                                      for k, v in parse_qsl(query, keep_blank_values=True)))
    named = {name.lower(): " ".join(str(value).split()) for name, value in headers.items()}
    signed = ";".join(sorted(named))
    lines = "".join(f"{name}:{named[name]}\n" for name in sorted(named))
    text = "\n".join([method.upper(), quote(path or "/", safe="/~"), canonical_query, lines, signed,
                      hashlib.sha256(body).hexdigest()])
    return text, signed


def string_to_sign(amz_date: str, scope: str, canonical: str) -> str:
    return "\n".join([ALGORITHM, amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])


def sigv4_signature(secret_key: str, amz_date: str, region: str, service: str, canonical: str) -> str:
    date = amz_date[:8]
    scope = f"{date}/{region}/{service}/aws4_request"
    key = signing_key(secret_key, date, region, service)
    return hmac.new(key, string_to_sign(amz_date, scope, canonical).encode(), hashlib.sha256).hexdigest()


def sign_request(method: str, url: str, headers: Mapping[str, str], body: bytes, *, access_key: str,
                 secret_key: str, region: str, service: str, amz_date: str, session_token: str = "") -> dict[str, str]:
    """``headers`` plus host, x-amz-date, x-amz-security-token (temporary credentials) and the
    Authorization header; every header returned except Authorization is signed."""
    parts = urlsplit(url)
    signed_headers = {k.lower(): v for k, v in headers.items()}
    signed_headers.setdefault("host", parts.netloc)
    signed_headers["x-amz-date"] = amz_date
    if session_token:
        signed_headers["x-amz-security-token"] = session_token
    canonical, signed = canonical_request(method, parts.path, parts.query, signed_headers, body)
    signature = sigv4_signature(secret_key, amz_date, region, service, canonical)
    scope = f"{amz_date[:8]}/{region}/{service}/aws4_request"
    signed_headers["authorization"] = (f"{ALGORITHM} Credential={access_key}/{scope}, "
                                       f"SignedHeaders={signed}, Signature={signature}")
    return signed_headers


def amz_date(epoch_s: float) -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(epoch_s))


# ---- the SQS transport ------------------------------------------------------------------------
SQS_CONTENT_TYPE = "application/x-amz-json-1.0"


@dataclass(frozen=True)
class QueueMessage:
    message_id: str
    body: bytes
    receipt: str  # the receipt handle of this receive; deleting needs the latest one


class NotificationSource(ABC):
    """Where notifications come from (SQS in production, a fake or a list in tests)."""

    @abstractmethod
    async def receive(self, max_messages: int, wait_s: float) -> list[QueueMessage]:
        """Up to ``max_messages``, waiting up to ``wait_s`` for the first (long poll)."""

    @abstractmethod
    async def delete(self, message: QueueMessage) -> None:
        """Remove a handled message; one not deleted is redelivered after its visibility timeout."""

    async def close(self) -> None:
        return None


class SqsError(LockstockError):
    """SQS answered with an error or something unreadable (a transport error: retried)."""


_SQS_HOST = re.compile(r"^(?:sqs\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?|([a-z0-9-]+)\.queue\.amazonaws\.com)$")


def queue_region(queue_url: str) -> str:
    """The region in an SQS queue URL (https://sqs.us-east-1.amazonaws.com/123456789012/name), or ""."""
    match = _SQS_HOST.match(urlsplit(queue_url).hostname or "")
    return (match.group(1) or match.group(2)) if match else ""


class SqsSource(NotificationSource):
    """ReceiveMessage / DeleteMessage over the AWS JSON protocol, SigV4-signed (service "sqs")."""

    def __init__(self, queue_url: str, region: str, access_key: str, secret_key: str, *, endpoint: str = "",
                 session_token: str = "", clock: Callable[[], float] = time.time) -> None:
        parts = urlsplit(queue_url)
        self.queue_url, self.region = queue_url, region
        self.endpoint = (endpoint or f"{parts.scheme}://{parts.netloc}").rstrip("/") + "/"
        self._credentials = (access_key, secret_key, session_token)
        self._clock = clock
        self._session: aiohttp.ClientSession | None = None

    async def receive(self, max_messages: int, wait_s: float) -> list[QueueMessage]:
        wait = max(0, min(20, math.ceil(wait_s)))  # SQS takes whole seconds, 0..20
        answer = await self._call("ReceiveMessage", {
            "QueueUrl": self.queue_url, "MaxNumberOfMessages": max(1, min(10, int(max_messages))),
            "WaitTimeSeconds": wait}, timeout_s=wait + 15)
        return [m for m in map(self._message, answer.get("Messages") or []) if m is not None]

    async def delete(self, message: QueueMessage) -> None:
        await self._call("DeleteMessage", {"QueueUrl": self.queue_url, "ReceiptHandle": message.receipt}, timeout_s=15)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _message(self, raw: Any) -> QueueMessage | None:
        if not isinstance(raw, dict) or not all(isinstance(raw.get(k), str)
                                                for k in ("MessageId", "ReceiptHandle", "Body")):
            logger.warning("SQS returned a message without MessageId/ReceiptHandle/Body: skipped")
            return None
        body = raw["Body"].encode()
        md5 = raw.get("MD5OfBody")
        if isinstance(md5, str) and md5 != hashlib.md5(body).hexdigest():
            # corrupted in transit: leave it, it comes back after its visibility timeout
            logger.warning("SQS message %s: MD5OfBody does not match its body; left for redelivery", raw["MessageId"])
            return None
        return QueueMessage(raw["MessageId"], body, raw["ReceiptHandle"])

    async def _call(self, action: str, payload: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        body = json.dumps(payload, separators=(",", ":")).encode()
        access_key, secret_key, token = self._credentials
        headers = sign_request("POST", self.endpoint, {"content-type": SQS_CONTENT_TYPE,
                                                       "x-amz-target": f"AmazonSQS.{action}"}, body,
                               access_key=access_key, secret_key=secret_key, region=self.region, service="sqs",
                               amz_date=amz_date(self._clock()), session_token=token)
        if self._session is None:
            self._session = aiohttp.ClientSession()
        async with self._session.post(self.endpoint, data=body, headers=headers,
                                      timeout=aiohttp.ClientTimeout(total=timeout_s)) as response:
            raw = await response.read()
            status = response.status
        try:
            answer = json.loads(raw) if raw else {}
        except ValueError:
            answer = None
        if status != 200:
            error = answer if isinstance(answer, dict) else {}
            raise SqsError(f"SQS {action}: HTTP {status} {error.get('__type', '')}: "
                           f"{error.get('message') or error.get('Message') or raw[:200].decode('utf-8', 'replace')}")
        if not isinstance(answer, dict):
            raise SqsError(f"SQS {action}: the answer is not a JSON object")
        return answer


# credential name in connectors.amazon -> environment variable (which wins); the session token is optional
AWS_CREDENTIAL_ENV = {"aws_access_key_id": "LOCKSTOCK_AWS_ACCESS_KEY_ID",
                      "aws_secret_access_key": "LOCKSTOCK_AWS_SECRET_ACCESS_KEY",
                      "aws_session_token": "LOCKSTOCK_AWS_SESSION_TOKEN"}


def notification_source(catalog: Catalog, env: Mapping[str, str] | None = None) -> NotificationSource | NotConfigured:
    """The configured queue's SqsSource, or why Amazon notifications are off."""
    env = os.environ if env is None else env
    settings = section(catalog, PLATFORM)
    queue_url = str(settings.get("queue_url") or "").strip()
    if not queue_url:
        return NotConfigured("amazon notifications are off: set connectors.amazon.queue_url (the SQS queue "
                             "SP-API publishes ORDER_CHANGE to)")
    found = {name: str(env.get(variable) or settings.get(name) or "").strip()
             for name, variable in AWS_CREDENTIAL_ENV.items()}
    missing = [f"{AWS_CREDENTIAL_ENV[name]} (or connectors.amazon.{name})"
               for name in ("aws_access_key_id", "aws_secret_access_key") if not found[name]]
    if missing:
        return NotConfigured(f"amazon notifications are off: missing {', '.join(missing)}")
    region = str(settings.get("region") or "").strip() or queue_region(queue_url)
    if not region:
        return NotConfigured(f"amazon notifications are off: no region in queue URL {queue_url!r}; "
                             "set connectors.amazon.region")
    return SqsSource(queue_url, region, found["aws_access_key_id"], found["aws_secret_access_key"],
                     endpoint=str(settings.get("sqs_endpoint") or ""), session_token=found["aws_session_token"])


# ---- ORDER_CHANGE notifications -> lockstock records ------------------------------------------
ACTED_ON = ("Pending", "Unshipped", "Canceled", "Shipped")
EVENT_OF_STATUS = {"Unshipped": "PAID", "Canceled": "CANCELLED", "Shipped": "SHIPPED"}


class AmazonNotifications:
    """Turns one SQS message body (an SP-API notification) into an Intake."""

    platform = PLATFORM

    def __init__(self, catalog: Catalog, settings: Mapping[str, Any] | None = None) -> None:
        self.catalog = catalog
        self.settings = dict(settings or {})

    def intake(self, body: bytes) -> Intake:
        doc = utf8_json_object(body, "SQS message body")
        if "Type" in doc and "NotificationType" not in doc:  # an SNS envelope
            if doc.get("Type") != "Notification":
                return Intake(required_text(doc.get("MessageId"), "SNS MessageId"),
                              ignored=f"SNS message of type {doc.get('Type')!r}, not a notification")
            message = doc.get("Message")
            if not isinstance(message, str):
                raise PayloadError("SNS envelope has no Message string")
            doc = utf8_json_object(message.encode(), "SNS Message")
        metadata = _object(doc.get("NotificationMetadata"), "NotificationMetadata")
        delivery_id = required_text(metadata.get("NotificationId"), "NotificationMetadata.NotificationId")
        kind = doc.get("NotificationType")
        if kind != "ORDER_CHANGE":
            return Intake(delivery_id, ignored=f"notification type {kind!r} is not ORDER_CHANGE")
        change = _object(_object(doc.get("Payload"), "Payload").get("OrderChangeNotification"),
                         "Payload.OrderChangeNotification")
        order = required_text(change.get("AmazonOrderId"), "AmazonOrderId")
        summary = _object(change.get("Summary"), f"order {order}: Summary")
        status = required_text(summary.get("OrderStatus"), f"order {order}: Summary.OrderStatus")
        if status not in ACTED_ON:
            return Intake(delivery_id, ignored=f"order {order} is {status}; lockstock acts on {', '.join(ACTED_ON)}")
        marketplace = required_text(summary.get("MarketplaceId"), f"order {order}: Summary.MarketplaceId")
        channel = channel_by_account(self.catalog, PLATFORM, marketplace)
        trigger = change.get("OrderChangeTrigger") if isinstance(change.get("OrderChangeTrigger"), dict) else {}
        records: list[Emit] = []
        if status in ("Pending", "Unshipped"):
            placed_at = _iso_ms(summary.get("PurchaseDate"), f"order {order}: Summary.PurchaseDate")
            records.append(order_placed(PLATFORM, order, channel, f"amazon:buyer-of-{order}", placed_at,
                                        _lines(summary.get("OrderItems"), order)))
        event = EVENT_OF_STATUS.get(status)
        if event is not None:
            reason = None
            if event == "CANCELLED":
                given = trigger.get("ChangeReason")
                reason = given if isinstance(given, str) and given else "Canceled on Amazon"
            records.append(order_event(PLATFORM, order, channel, event, f"{order}:{event}",
                                       _occurred_at(trigger, metadata, doc, order), reason=reason))
        return Intake(delivery_id, tuple(records))


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise PayloadError(f"{what} must be a JSON object, got {type(value).__name__}")
    return value


def _iso_ms(value: Any, what: str) -> int:
    text = required_text(value, what)
    return iso_epoch_ms(text, f"{what} {text!r} is not an ISO-8601 timestamp", f"{what} {text!r} has no time zone")


def _occurred_at(trigger: dict, metadata: dict, doc: dict, order: str) -> int:
    for value, what in ((trigger.get("TimeOfOrderChange"), "OrderChangeTrigger.TimeOfOrderChange"),
                        (metadata.get("PublishTime"), "NotificationMetadata.PublishTime"),
                        (doc.get("EventTime"), "EventTime")):
        if value is not None:
            return _iso_ms(value, f"order {order}: {what}")
    raise PayloadError(f"order {order}: no TimeOfOrderChange, PublishTime or EventTime")


def _lines(items: Any, order: str) -> list[tuple[str, int]]:
    """SellerSKU x Quantity per item; items of one SKU are summed, 0-quantity (cancelled) items skipped."""
    if not isinstance(items, list) or not items:
        raise PayloadError(f"order {order}: Summary.OrderItems must be a non-empty list")
    units: dict[str, int] = {}
    for item in items:
        item = _object(item, f"order {order}: an OrderItems entry")
        sku = required_text(item.get("SellerSKU"), f"order {order}: OrderItems[].SellerSKU")
        qty = item.get("Quantity")
        if not is_whole(qty) or qty < 0:
            raise PayloadError(f"order {order}: item {sku} has Quantity {qty!r}; expected a whole number >= 0")
        if qty:
            units[sku] = units.get(sku, 0) + qty
    return list(units.items())


# ---- the consumer loop ------------------------------------------------------------------------
Handle = Callable[[QueueMessage, "Intake | PayloadError"], Awaitable[bool]]


async def consume_notifications(source: NotificationSource, adapter: AmazonNotifications, handle: Handle, *,
                                batch: int = 10, wait_s: float = 1.0, stop: asyncio.Event,
                                backoff_s: float = 0.5, max_backoff_s: float = 30.0) -> Counter:
    """Receive, let ``handle`` produce (or dead-letter) each message, delete only what it confirmed.

    ``handle(message, intake_or_error)`` returns True once the records are acknowledged by the
    broker (or the malformed body is dead-lettered); False or an exception leaves the message in
    the queue, so SQS redelivers it after its visibility timeout (the gateway's delivery ids make
    that redelivery a duplicate, never a second order). Transport errors are logged and retried
    with bounded exponential backoff; the loop ends only when ``stop`` is set. Returns its counts."""
    counts: Counter = Counter()
    failures = 0
    while not stop.is_set():
        try:
            messages = await source.receive(batch, wait_s)
        except Exception as exc:  # network, SQS errors, timeouts: never fatal
            failures += 1
            counts["receive_errors"] += 1
            delay = min(max_backoff_s, backoff_s * 2 ** min(failures - 1, 20))
            logger.warning("amazon queue receive failed (%s: %s); retrying in %.1fs", type(exc).__name__, exc, delay)
            await _pause(stop, delay)
            continue
        failures = 0
        for message in messages:
            counts["received"] += 1
            try:
                intake_or_error: Intake | PayloadError = adapter.intake(message.body)
            except PayloadError as exc:
                intake_or_error = exc
            except Exception as exc:  # an adapter bug: dead-lettered like the gateway does, never a crash loop
                logger.exception("amazon message %s: the adapter failed", message.message_id)
                intake_or_error = PayloadError(f"adapter error {type(exc).__name__}: {exc}")
            try:
                done = await handle(message, intake_or_error)
            except Exception:
                logger.exception("amazon message %s: handling failed; left for redelivery", message.message_id)
                done = False
            if not done:
                counts["not_acknowledged"] += 1
                continue
            try:
                await source.delete(message)
                counts["deleted"] += 1
            except Exception as exc:  # redelivered later and recognised as a duplicate
                counts["delete_errors"] += 1
                logger.warning("amazon message %s handled but not deleted (%s: %s)", message.message_id,
                               type(exc).__name__, exc)
    return counts


async def _pause(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except asyncio.TimeoutError:
        pass


# ---- outbound: listing quantity ---------------------------------------------------------------
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
    issues = answer.get("issues") if isinstance(answer.get("issues"), list) else []
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
