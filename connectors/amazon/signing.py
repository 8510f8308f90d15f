"""AWS Signature Version 4 for the AWS calls lockstock makes (SQS), by botocore's signer.

``sign_request`` is a function of its arguments only: the signing time is passed in
(``amz_date``) instead of read from the clock, so a request signs the same in a test as on the
wire.

Followed: https://docs.aws.amazon.com/general/latest/gr/sigv4-calculate-signature.html and
.../sigv4-add-signature-to-request.html (the vectors in tests/unit/connectors/test_amazon_signing.py
and test_amazon.py).
"""

from __future__ import annotations

import time
from typing import Any, Mapping
from urllib.parse import urlsplit

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials


class _SigV4AtTime(SigV4Auth):
    """botocore's SigV4Auth, signing at a given time instead of the clock's.

    ``add_auth`` reads the clock, then calls ``_modify_request_before_signing`` before anything
    (X-Amz-Date, the scope, the key) is derived from the time; botocore's own S3 signers extend the
    same hook. The SigV4 vectors in the tests fail if a botocore upgrade changes that order."""

    def __init__(self, credentials: Credentials, service: str, region: str, amz_date: str) -> None:
        super().__init__(credentials, service, region)
        self._amz_date = amz_date

    def _modify_request_before_signing(self, request: Any) -> None:
        request.context["timestamp"] = self._amz_date
        super()._modify_request_before_signing(request)


def sign_request(method: str, url: str, headers: Mapping[str, str], body: bytes, *, access_key: str,
                 secret_key: str, region: str, service: str, amz_date: str, session_token: str = "") -> dict[str, str]:
    """The headers to send: ``headers`` plus host, x-amz-date, x-amz-security-token (temporary
    credentials only) and authorization, every name lower-cased.

    Every header returned is signed except authorization and those AWS never signs (user-agent,
    expect and other hop-by-hop headers: botocore's SIGNED_HEADERS_BLACKLIST). ``host`` defaults to
    the URL's host[:port] and is returned, so the Host sent is the one signed (a fake on a local
    port included). ``amz_date`` is yyyymmddThhmmssZ (UTC; see ``amz_date``)."""
    to_send = {name.lower(): value for name, value in headers.items()}
    to_send.setdefault("host", urlsplit(url).netloc)
    request = AWSRequest(method=method, url=url, headers=to_send, data=body)
    credentials = Credentials(access_key, secret_key, session_token or None)
    _SigV4AtTime(credentials, service, region, amz_date).add_auth(request)
    return {name.lower(): value for name, value in request.headers.items()}


def amz_date(epoch_s: float) -> str:
    """The X-Amz-Date of a Unix time: yyyymmddThhmmssZ in UTC."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(epoch_s))
