"""Fake Amazon: the Listings Items patch endpoint and the seller's SQS queue.

Listings (``PATCH /listings/2021-08-01/items/{sellerId}/{sku}?marketplaceIds=...``): throttled
first (per seller and marketplace, 5/s burst 10 unless constructed otherwise: the same numbers
as AmazonStockPusher.budget, which is per channel = per marketplace); a 429 carries
``x-amzn-RateLimit-Limit`` and no Retry-After, as SP-API's does. Then ``x-amz-access-token``
and the seller id (403 Unauthorized, counted ``bad_signature``), then the JSON patch shape (400
InvalidInput, counted ``bad_shape``); an accepted patch sets the marketplace's quantity and
answers 200 ``{"sku", "status": "ACCEPTED", "submissionId", "issues": []}``; SKUs listed in
``invalid_skus`` answer 200 INVALID with an issue, as a product-type mismatch does.

Queue (``POST /`` with ``X-Amz-Target: AmazonSQS.ReceiveMessage | DeleteMessage``, AWS JSON
1.0): every request's SigV4 Authorization is recomputed over the received bytes (403 on any
mismatch, unknown key, wrong scope or a timestamp more than 15 minutes off). ReceiveMessage
long-polls up to WaitTimeSeconds (capped by ``max_wait_s``); a received message is invisible
for ``visibility_timeout_s`` and comes back (new receipt handle) unless deleted with its latest
receipt handle; a stale handle is accepted without deleting, as SQS does.

The signature check is the fake's own, written from AWS's specification (``signing_key``,
``canonical_request``, ``sigv4_signature``), not botocore's: lockstock signs with botocore, and a
check by the same code would pass whatever that code got wrong.

A sale enqueues an ORDER_CHANGE notification (OrderStatus Pending) instead of posting a webhook;
``enqueue_status`` follows up with Unshipped / Canceled / Shipped. ``sns_envelope=True`` wraps
notifications the way an SNS topic feeding the queue would.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Mapping
from urllib.parse import parse_qsl, quote, urlsplit

from aiohttp import web

from connectors.amazon import LISTINGS_PATH, SQS_CONTENT_TYPE
from connectors.fakes.base import FakeMarketplace, Sale

_AUTHORIZATION = re.compile(r"^AWS4-HMAC-SHA256 Credential=([^/,\s]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request,\s*"
                            r"SignedHeaders=([a-z0-9;-]+),\s*Signature=([0-9a-f]{64})$")
MAX_CLOCK_SKEW_S = 15 * 60


# ---- AWS Signature Version 4, the verifier's side ----------------------------------------------
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


def sigv4_signature(secret_key: str, amz_date: str, region: str, service: str, canonical: str) -> str:
    """The hex signature of a canonical request signed at ``amz_date`` (yyyymmddThhmmssZ)."""
    scope = f"{amz_date[:8]}/{region}/{service}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = signing_key(secret_key, amz_date[:8], region, service)
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


# ---- notifications ------------------------------------------------------------------------------
def iso(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def order_change_notification(order_id: str, marketplace_id: str, status: str, items: list[tuple[str, int]], *,
                              seller_id: str, purchased_at: float, changed_at: float | None = None,
                              change_type: str = "OrderStatusChange", reason: str = "",
                              notification_id: str | None = None) -> dict[str, Any]:
    """An SP-API ORDER_CHANGE notification (NotificationVersion 1.0) as SQS delivers it."""
    changed_at = purchased_at if changed_at is None else changed_at
    return {
        "NotificationVersion": "1.0", "NotificationType": "ORDER_CHANGE", "PayloadVersion": "1.0",
        "EventTime": iso(changed_at),
        "Payload": {"OrderChangeNotification": {
            "NotificationLevel": "OrderLevel", "SellerId": seller_id, "AmazonOrderId": order_id,
            "OrderChangeType": change_type,
            "OrderChangeTrigger": {"TimeOfOrderChange": iso(changed_at),
                                   "ChangeReason": reason or "Order status changed"},
            "Summary": {
                "MarketplaceId": marketplace_id, "OrderStatus": status, "PurchaseDate": iso(purchased_at),
                "FulfillmentType": "MFN", "OrderType": "StandardOrder",
                "NumberOfItemsShipped": sum(q for _, q in items) if status == "Shipped" else 0,
                "NumberOfItemsUnshipped": 0 if status == "Shipped" else sum(q for _, q in items),
                "OrderItems": [{"OrderItemId": hashlib.sha1(f"{order_id}/{sku}".encode()).hexdigest()[:14],
                                "SellerSKU": sku,
                                "Quantity": qty, "QuantityShipped": qty if status == "Shipped" else 0,
                                "OrderItemStatus": status} for sku, qty in items],
            },
        }},
        "NotificationMetadata": {
            "ApplicationId": "amzn1.sellerapps.app.lockstock-fake", "SubscriptionId": "fake-subscription",
            "PublishTime": iso(changed_at), "NotificationId": notification_id or str(uuid.uuid4()),
        },
    }


def sns_envelope(notification: dict[str, Any], topic_arn: str) -> dict[str, Any]:
    return {"Type": "Notification", "MessageId": str(uuid.uuid4()), "TopicArn": topic_arn,
            "Message": json.dumps(notification), "Timestamp": iso(time.time()), "SignatureVersion": "1"}


@dataclass
class _Queued:
    message_id: str
    body: str
    visible_at: float = 0.0  # time.monotonic()
    receipt: str = ""
    receives: int = 0


class FakeAmazon(FakeMarketplace):
    platform = "amazon"

    def __init__(self, *, access_token: str, seller_id: str, aws_access_key_id: str, aws_secret_access_key: str,
                 region: str = "us-east-1", account_id: str = "123456789012", queue_name: str = "lockstock-orders",
                 visibility_timeout_s: float = 30.0, max_wait_s: float = 20.0, sns: bool = False,
                 gateway_url: str = "", rate_capacity: float = 10.0, rate_per_s: float = 5.0) -> None:
        super().__init__(gateway_url=gateway_url, rate_capacity=rate_capacity, rate_per_s=rate_per_s)
        self.access_token, self.seller_id = access_token, seller_id
        self.aws_access_key_id, self.aws_secret_access_key = aws_access_key_id, aws_secret_access_key
        self.region = region
        self.account_id, self.queue_name = account_id, queue_name
        self.visibility_timeout_s, self.max_wait_s, self.sns = visibility_timeout_s, max_wait_s, sns
        self.invalid_skus: dict[str, str] = {}  # sku -> issue message: patches answered INVALID
        self._queue: dict[str, _Queued] = {}  # insertion order = arrival order
        self._receipts: dict[str, str] = {}  # every receipt handle issued -> message id
        self._arrived = asyncio.Event()

    @property
    def queue_url(self) -> str:
        return f"{self.url}/{self.account_id}/{self.queue_name}"

    @property
    def in_queue(self) -> int:
        """Messages not yet deleted (visible or in flight)."""
        return len(self._queue)

    def routes(self) -> list[web.RouteDef]:
        return [web.patch(LISTINGS_PATH + "/{seller_id}/{sku}", self._patch_listing), web.post("/", self._sqs)]

    def order_webhook(self, sale: Sale) -> tuple[str, dict[str, str], bytes]:
        raise NotImplementedError("Amazon has no order webhooks: SP-API publishes ORDER_CHANGE notifications to "
                                  "an SQS queue (see deliver / enqueue_status)")

    def next_order_id(self) -> str:
        return f"113-{int(time.time()) % 10**7:07d}-{next(self._ids):07d}"  # Amazon's 3-7-7 shape

    # ---- notifications ---------------------------------------------------------------------
    async def deliver(self, sale: Sale) -> bool:
        await self.enqueue_status(sale, "Pending")
        return True

    async def enqueue_status(self, sale: Sale, status: str, reason: str = "") -> str:
        """Queue the ORDER_CHANGE of ``sale`` reaching ``status`` (on the fake's loop); its NotificationId."""
        notification = order_change_notification(sale.order_id, sale.account, status, [(sale.sku, sale.qty)],
                                                  seller_id=self.seller_id, purchased_at=sale.at,
                                                  changed_at=time.time(), reason=reason)
        topic = f"arn:aws:sns:{self.region}:{self.account_id}:sp-api"
        body = sns_envelope(notification, topic) if self.sns else notification
        await self.enqueue(json.dumps(body))
        return notification["NotificationMetadata"]["NotificationId"]

    async def enqueue(self, body: str) -> str:
        message_id = str(uuid.uuid4())
        self._queue[message_id] = _Queued(message_id, body)
        self._arrived.set()
        return message_id

    async def make_visible(self) -> None:
        """End every in-flight message's visibility timeout now (ChangeMessageVisibility 0)."""
        for queued in self._queue.values():
            queued.visible_at = 0.0
        self._arrived.set()

    # ---- the SQS JSON protocol -------------------------------------------------------------
    async def _sqs(self, request: web.Request) -> web.Response:
        raw = await request.read()
        problem = self._sigv4_problem(request, raw)
        if problem:
            return self._sqs_error("bad_signature", 403, "com.amazon.coral.service#InvalidSignatureException", problem)
        if request.content_type != SQS_CONTENT_TYPE:
            return self._sqs_error("bad_shape", 400, "com.amazon.coral.service#UnknownOperationException",
                                   f"Content-Type must be {SQS_CONTENT_TYPE}")
        try:
            payload = json.loads(raw)
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            return self._sqs_error("bad_shape", 400, "com.amazon.coral.service#SerializationException",
                                   "body is not a JSON object")
        if payload.get("QueueUrl") != self.queue_url:
            return self._sqs_error("bad_shape", 400, "com.amazonaws.sqs#QueueDoesNotExist",
                                   "The specified queue does not exist.", "AWS.SimpleQueueService.NonExistentQueue")
        target = request.headers.get("X-Amz-Target", "")
        if target == "AmazonSQS.ReceiveMessage":
            return await self._receive(payload)
        if target == "AmazonSQS.DeleteMessage":
            return self._delete(payload)
        return self._sqs_error("bad_shape", 400, "com.amazon.coral.service#UnknownOperationException",
                               f"unknown operation {target!r}")

    def _sigv4_problem(self, request: web.Request, raw: bytes) -> str:
        match = _AUTHORIZATION.match(request.headers.get("Authorization", ""))
        if not match:
            return "missing or malformed AWS4-HMAC-SHA256 Authorization header"
        key_id, date, region, service, signed, signature = match.groups()
        if key_id != self.aws_access_key_id:
            return "The security token included in the request is invalid."
        if (region, service) != (self.region, "sqs"):
            return f"Credential should be scoped to {self.region}/sqs, not {region}/{service}"
        stamp = request.headers.get("X-Amz-Date", "")
        try:
            at = datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc).timestamp()
        except ValueError:
            return "X-Amz-Date is missing or not yyyymmddThhmmssZ"
        if not stamp.startswith(date) or abs(time.time() - at) > MAX_CLOCK_SKEW_S:
            return f"Signature expired or not yet current: {stamp}"
        names = signed.split(";")
        if "host" not in names or "x-amz-date" not in names:
            return "SignedHeaders must include host and x-amz-date"
        parts = urlsplit(request.raw_path)
        canonical, _ = canonical_request(request.method, parts.path, parts.query,
                                         {n: request.headers.get(n, "") for n in names}, raw)
        expected = sigv4_signature(self.aws_secret_access_key, stamp, region, service, canonical)
        if not hmac.compare_digest(expected, signature):
            return "The request signature we calculated does not match the signature you provided."
        return ""

    def _sqs_error(self, counter: str, status: int, kind: str, message: str, query_code: str = "") -> web.Response:
        self.counters[counter] += 1
        return web.json_response({"__type": kind, "message": message}, status=status, content_type=SQS_CONTENT_TYPE,
                                 headers={"x-amzn-query-error": f"{query_code or kind.split('#')[-1]};Sender"})

    async def _receive(self, payload: dict[str, Any]) -> web.Response:
        count, wait = payload.get("MaxNumberOfMessages", 1), payload.get("WaitTimeSeconds", 0)
        for name, value, lo, hi in (("MaxNumberOfMessages", count, 1, 10), ("WaitTimeSeconds", wait, 0, 20)):
            if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
                return self._sqs_error("bad_shape", 400, "com.amazonaws.sqs#InvalidParameterValue",
                                       f"Value {value!r} for parameter {name} is invalid. "
                                       f"Must be between {lo} and {hi}.")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + min(wait, self.max_wait_s)
        while True:
            batch = self._take(count)
            remaining = deadline - loop.time()
            if batch or remaining <= 0:
                break
            self._arrived.clear()
            try:  # woken by an arrival; the short cap also notices visibility timeouts ending
                await asyncio.wait_for(self._arrived.wait(), timeout=min(0.05, remaining))
            except asyncio.TimeoutError:
                pass
        self.counters["sqs_received"] += len(batch)
        return web.json_response({"Messages": batch} if batch else {}, content_type=SQS_CONTENT_TYPE)

    def _take(self, count: int) -> list[dict[str, str]]:
        now, batch = time.monotonic(), []
        for queued in self._queue.values():
            if len(batch) >= count:
                break
            if queued.visible_at > now:
                continue
            queued.receives += 1
            if queued.receives > 1:
                self.counters["sqs_redelivered"] += 1
            queued.receipt = secrets.token_urlsafe(32)
            queued.visible_at = now + self.visibility_timeout_s
            self._receipts[queued.receipt] = queued.message_id
            batch.append({"MessageId": queued.message_id, "ReceiptHandle": queued.receipt,
                          "MD5OfBody": hashlib.md5(queued.body.encode()).hexdigest(), "Body": queued.body})
        return batch

    def _delete(self, payload: dict[str, Any]) -> web.Response:
        receipt = payload.get("ReceiptHandle")
        message_id = self._receipts.get(receipt) if isinstance(receipt, str) else None
        if message_id is None:
            return self._sqs_error("bad_shape", 400, "com.amazonaws.sqs#ReceiptHandleIsInvalid",
                                   f"The input receipt handle {receipt!r} is invalid.")
        queued = self._queue.get(message_id)
        if queued is not None and queued.receipt == receipt:  # a stale handle succeeds without deleting
            del self._queue[message_id]
            self.counters["sqs_deleted"] += 1
        return web.json_response({}, content_type=SQS_CONTENT_TYPE)

    # ---- Listings Items --------------------------------------------------------------------
    async def _patch_listing(self, request: web.Request) -> web.Response:
        seller, sku = request.match_info["seller_id"], request.match_info["sku"]
        marketplaces = [m for v in request.query.getall("marketplaceIds", []) for m in v.split(",") if m]
        if self.throttle(f"{seller}:{','.join(marketplaces)}") is not None:
            return web.json_response({"errors": [{"code": "QuotaExceeded", "details": "",
                                                  "message": "You exceeded your quota for the requested resource."}]},
                                     status=429, headers={"x-amzn-RateLimit-Limit": f"{self._rate[1]:g}"})
        token = request.headers.get("x-amz-access-token", "")
        if not hmac.compare_digest(token.encode(), self.access_token.encode()) or seller != self.seller_id:
            return self._sp_error("bad_signature", 403, "Unauthorized",
                                  "Access to requested resource is denied.")
        if len(marketplaces) != 1:
            return self._sp_error("bad_shape", 400, "InvalidInput", "marketplaceIds must name exactly one marketplace")
        problem, quantity = _patch_problem(await request.read())
        if problem:
            return self._sp_error("bad_shape", 400, "InvalidInput", problem)
        submission = uuid.uuid4().hex
        limit = {"x-amzn-RateLimit-Limit": f"{self._rate[1]:g}"}
        if sku in self.invalid_skus:
            self.counters["invalid"] += 1
            return web.json_response({"sku": sku, "status": "INVALID", "submissionId": submission, "issues": [
                {"code": "90220", "message": self.invalid_skus[sku], "severity": "ERROR",
                 "attributeNames": ["fulfillment_availability"]}]}, headers=limit)
        self.set_quantity(marketplaces[0], sku, quantity)
        return web.json_response({"sku": sku, "status": "ACCEPTED", "submissionId": submission, "issues": []},
                                 headers=limit)

    def _sp_error(self, counter: str, status: int, code: str, message: str) -> web.Response:
        self.counters[counter] += 1
        return web.json_response({"errors": [{"code": code, "message": message, "details": ""}]}, status=status)


def _patch_problem(raw: bytes) -> tuple[str, int]:
    """("", quantity) for a well-formed fulfillment_availability patch, else (reason, 0)."""
    try:
        doc = json.loads(raw)
    except ValueError:
        return "body is not JSON", 0
    if not isinstance(doc, dict) or not isinstance(doc.get("productType"), str) or not doc["productType"].strip():
        return "productType is required", 0
    patches = doc.get("patches")
    if not isinstance(patches, list) or len(patches) != 1 or not isinstance(patches[0], dict):
        return "patches must hold exactly one operation (the fake models quantity only)", 0
    patch = patches[0]
    if patch.get("op") not in ("add", "replace", "merge") \
            or patch.get("path") != "/attributes/fulfillment_availability":
        return "expected op replace (or add/merge) on /attributes/fulfillment_availability", 0
    value = patch.get("value")
    if not isinstance(value, list) or len(value) != 1 or not isinstance(value[0], dict):
        return "fulfillment_availability value must be a list of one object", 0
    entry = value[0]
    quantity = entry.get("quantity")
    if entry.get("fulfillment_channel_code") != "DEFAULT":
        return "fulfillment_channel_code must be DEFAULT (seller-fulfilled quantity)", 0
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 0:
        return f"quantity must be a whole number >= 0, got {quantity!r}", 0
    return "", quantity
