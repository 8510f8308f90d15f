"""The seller's SQS queue, which SP-API publishes ORDER_CHANGE notifications to: ReceiveMessage /
DeleteMessage over the AWS JSON 1.0 protocol, SigV4-signed (service "sqs"), on aiohttp.

Configuration (``connectors.amazon``): ``queue_url``, ``region`` (else read from the queue URL),
``sqs_endpoint`` (override, for the fake), ``aws_access_key_id`` / ``aws_secret_access_key`` /
``aws_session_token`` (the environment's ``LOCKSTOCK_AWS_ACCESS_KEY_ID`` / ``..._SECRET_ACCESS_KEY``
/ ``..._SESSION_TOKEN`` win).

Followed: https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-making-api-requests-json.html,
.../sqs-json-api-responses.html, .../APIReference/API_Message.html.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import time
from typing import Any, Callable, Mapping
from urllib.parse import urlsplit

import aiohttp

from connectors.amazon.consumer import NotificationSource, QueueMessage
from connectors.amazon.intake import PLATFORM
from connectors.amazon.signing import amz_date, sign_request
from connectors.base import NotConfigured
from connectors.config import section
from lockstock.catalog import Catalog
from lockstock.errors import LockstockError

logger = logging.getLogger(__name__)

SQS_CONTENT_TYPE = "application/x-amz-json-1.0"

# credential name in connectors.amazon -> environment variable (which wins); the session token is optional
AWS_CREDENTIAL_ENV = {"aws_access_key_id": "LOCKSTOCK_AWS_ACCESS_KEY_ID",
                      "aws_secret_access_key": "LOCKSTOCK_AWS_SECRET_ACCESS_KEY",
                      "aws_session_token": "LOCKSTOCK_AWS_SESSION_TOKEN"}


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
