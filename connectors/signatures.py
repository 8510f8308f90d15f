"""Webhook signatures of each platform, verified over the raw request body.

Every check is constant-time (``hmac.compare_digest``) and fails with ``SignatureError`` saying
what was wrong (missing header, malformed header, mismatch, stale timestamp) without echoing
the expected value. The gateway maps SignatureError to 401.

- Shopify: ``X-Shopify-Hmac-SHA256`` = base64(HMAC-SHA256(app secret, raw body)).
- TikTok Shop: ``Authorization`` = hex(HMAC-SHA256(app secret, app_key + raw body)).
- Shopee Open Platform v2 push: ``Authorization`` = hex(HMAC-SHA256(partner key, url + "|" + raw body)).
- Generic (own site): ``X-Lockstock-Signature`` = "sha256=" + hex(HMAC-SHA256(secret,
  timestamp + "." + raw body)) with ``X-Lockstock-Timestamp`` (unix seconds) inside a replay window.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Mapping

from lockstock.errors import LockstockError

REPLAY_WINDOW_S = 300


class SignatureError(LockstockError):
    """The request is not signed by the platform (or not recently)."""


def _mac(secret: str, message: bytes) -> bytes:
    return hmac.new(secret.encode(), message, hashlib.sha256).digest()


def _header(headers: Mapping[str, str], name: str) -> str:
    for key, value in headers.items():  # HTTP header names are case-insensitive
        if key.lower() == name.lower():
            if not value.strip():
                break
            return value.strip()
    raise SignatureError(f"missing {name} header")


def _compare(given: str, expected: str, platform: str) -> None:
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise SignatureError(f"{platform} signature does not match the body")


def shopify_signature(secret: str, body: bytes) -> str:
    return base64.b64encode(_mac(secret, body)).decode()


def verify_shopify(secret: str, headers: Mapping[str, str], body: bytes) -> None:
    _compare(_header(headers, "X-Shopify-Hmac-SHA256"), shopify_signature(secret, body), "Shopify")


def tiktok_signature(secret: str, app_key: str, body: bytes) -> str:
    return _mac(secret, app_key.encode() + body).hex()


def verify_tiktok(secret: str, app_key: str, headers: Mapping[str, str], body: bytes) -> None:
    _compare(_header(headers, "Authorization").lower(), tiktok_signature(secret, app_key, body), "TikTok Shop")


def shopee_signature(partner_key: str, url: str, body: bytes) -> str:
    return _mac(partner_key, url.encode() + b"|" + body).hex()


def verify_shopee(partner_key: str, url: str, headers: Mapping[str, str], body: bytes) -> None:
    """``url`` is the push URL exactly as registered with Shopee (scheme, host, path)."""
    _compare(_header(headers, "Authorization").lower(), shopee_signature(partner_key, url, body), "Shopee")


def generic_signature(secret: str, timestamp: int, body: bytes) -> str:
    return "sha256=" + _mac(secret, str(timestamp).encode() + b"." + body).hex()


def verify_generic(secret: str, headers: Mapping[str, str], body: bytes, now_s: float,
                   window_s: int = REPLAY_WINDOW_S) -> None:
    raw_ts = _header(headers, "X-Lockstock-Timestamp")
    try:
        timestamp = int(raw_ts)
    except ValueError:
        raise SignatureError(f"X-Lockstock-Timestamp {raw_ts!r} is not unix seconds") from None
    _compare(_header(headers, "X-Lockstock-Signature"), generic_signature(secret, timestamp, body), "generic webhook")
    if abs(now_s - timestamp) > window_s:
        raise SignatureError(f"timestamp {timestamp} is outside the {window_s}s replay window")
