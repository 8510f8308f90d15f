"""Webhook signatures per platform against known vectors. The expected values were computed
independently with `openssl dgst -sha256 -hmac KEY [-binary | base64]` over the same bytes."""

from __future__ import annotations

import pytest

from connectors.signatures import (
    SignatureError, verify_generic, verify_shopee, verify_shopify, verify_tiktok,
)

SHOPIFY_BODY = b'{"id":820982911946154508,"email":"jon@example.com"}'
SHOPIFY_SIG = "D0UMXmhjwBRi4y66TmhJrDlhQABD7zI2fm3p6/QLMo8="  # secret "hush"
TIKTOK_BODY = b'{"type":1,"data":{"order_id":"576461413038785752","order_status":"AWAITING_SHIPMENT"}}'
TIKTOK_SIG = "42f4477e5880b3b8ad3aff682baf1b4dccf41537814ed7bbce8b8cc163de70b1"  # secret "tts-secret", app key "app-key-123"
SHOPEE_URL = "https://shop.example.com/webhooks/shopee"
SHOPEE_BODY = b'{"code":3,"shop_id":600001,"data":{"ordersn":"2211250HT8QY5N","status":"READY_TO_SHIP"}}'
SHOPEE_SIG = "bb2e4c9818c6e0de89864d87f4f07f47f208c63d7101530820a734ea4a605075"  # partner key "partner-key"
GENERIC_BODY = b'{"order_id":"site:1001"}'
GENERIC_SIG = "sha256=66c1d39c3cb1e0f8a03935e37bb7a59b79acf496b2c5f4e0903906ad20836434"  # secret "own-site", t=1795000000

CASES = {
    "shopify": lambda secret, headers, body: verify_shopify(secret, headers, body),
    "tiktok": lambda secret, headers, body: verify_tiktok(secret, "app-key-123", headers, body),
    "shopee": lambda secret, headers, body: verify_shopee(secret, SHOPEE_URL, headers, body),
    "generic": lambda secret, headers, body: verify_generic(secret, headers, body, now_s=1_795_000_100),
}
VALID = {
    "shopify": ("hush", {"X-Shopify-Hmac-Sha256": SHOPIFY_SIG}, SHOPIFY_BODY),
    "tiktok": ("tts-secret", {"Authorization": TIKTOK_SIG}, TIKTOK_BODY),
    "shopee": ("partner-key", {"authorization": SHOPEE_SIG}, SHOPEE_BODY),
    "generic": ("own-site", {"X-Lockstock-Signature": GENERIC_SIG, "X-Lockstock-Timestamp": "1795000000"}, GENERIC_BODY),
}


@pytest.mark.parametrize("platform", sorted(CASES))
def test_known_vector_verifies(platform):
    CASES[platform](*VALID[platform])  # raises on failure


@pytest.mark.parametrize("platform", sorted(CASES))
def test_tampered_body_is_refused(platform):
    secret, headers, body = VALID[platform]
    with pytest.raises(SignatureError, match="does not match"):
        CASES[platform](secret, headers, body.replace(b"1", b"2", 1))


@pytest.mark.parametrize("platform", sorted(CASES))
def test_wrong_secret_is_refused(platform):
    _, headers, body = VALID[platform]
    with pytest.raises(SignatureError, match="does not match"):
        CASES[platform]("not-the-secret", headers, body)


@pytest.mark.parametrize("platform", sorted(CASES))
def test_missing_or_empty_signature_header_is_refused(platform):
    secret, headers, body = VALID[platform]
    signature_header = next(k for k in headers if "Timestamp" not in k)
    without = {k: v for k, v in headers.items() if k != signature_header}
    with pytest.raises(SignatureError, match="missing"):
        CASES[platform](secret, without, body)
    with pytest.raises(SignatureError, match="missing"):
        CASES[platform](secret, {**without, signature_header: "  "}, body)


def test_generic_replay_window_and_bad_timestamp():
    secret, headers, body = VALID["generic"]
    with pytest.raises(SignatureError, match="replay window"):
        verify_generic(secret, headers, body, now_s=1_795_000_000 + 301)
    with pytest.raises(SignatureError, match="not unix seconds"):
        verify_generic(secret, {**headers, "X-Lockstock-Timestamp": "yesterday"}, body, now_s=1_795_000_000)
    with pytest.raises(SignatureError, match="does not match"):  # a re-signed timestamp needs the secret
        verify_generic(secret, {**headers, "X-Lockstock-Timestamp": "1795000100"}, body, now_s=1_795_000_100)
