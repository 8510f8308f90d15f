"""Amazon SigV4, both sides of the seam: ``sign_request`` (connectors/amazon/signing.py, botocore's
signer) and the fake queue's independent verifier (connectors/fakes/amazon.py), each against the
AWS SigV4 test suite, then against each other over the requests lockstock sends.

Vectors: the AWS Signature Version 4 test suite (aws-sig-v4-test-suite: get-vanilla,
get-vanilla-query-order-key-case, post-vanilla, post-x-www-form-urlencoded, post-sts-header-after;
credentials AKIDEXAMPLE, 2015-08-30T12:36:00Z, us-east-1, service "service"), whose expected
signatures several independent SigV4 implementations also pin, and the S3 examples of "Signature
Calculations for the Authorization Header" (also in test_amazon.py, there for the verifier only).
"""

from __future__ import annotations

import hashlib
import string

import pytest
from hypothesis import given, strategies as st

from connectors.amazon import SQS_CONTENT_TYPE, amz_date, sign_request
from connectors.fakes.amazon import canonical_request, sigv4_signature

AKID, SECRET = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
SUITE_DATE = "20150830T123600Z"
SUITE_SCOPE = "AKIDEXAMPLE/20150830/us-east-1/service/aws4_request"
SUITE_TOKEN = ("AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIe"
               "oIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5"
               "VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9"
               "Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==")
FORM = {"Content-Type": "application/x-www-form-urlencoded"}

# name: (method, query, headers besides host and x-amz-date, body, session token,
#        signed headers, SHA-256 of the canonical request (where the suite's is at hand), signature)
SUITE = {
    "get-vanilla": ("GET", "", {}, b"", "", "host;x-amz-date", None,
                    "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
    "get-vanilla-query-order-key-case": ("GET", "Param2=value2&Param1=value1", {}, b"", "", "host;x-amz-date", None,
                                         "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"),
    "post-vanilla": ("POST", "", {}, b"", "", "host;x-amz-date", None,
                     "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"),
    "post-x-www-form-urlencoded": ("POST", "", FORM, b"Param1=value1", "", "content-type;host;x-amz-date",
                                   "42a5e5bb34198acb3e84da4f085bb7927f2bc277ca766e6d19c73c2154021281",
                                   "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"),
    "post-sts-header-after": ("POST", "", {}, b"", SUITE_TOKEN, "host;x-amz-date;x-amz-security-token",
                              "c237e1b440d4c63c32ca95b5b99481081cb7b13c7e40434868e71567c1a882f6",
                              "85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead"),
}


@pytest.mark.parametrize("name", sorted(SUITE))
def test_botocore_signing_matches_the_aws_test_suite(name):
    method, query, headers, body, token, signed, _, signature = SUITE[name]
    url = "https://example.amazonaws.com/" + (f"?{query}" if query else "")
    sent = sign_request(method, url, headers, body, access_key=AKID, secret_key=SECRET, region="us-east-1",
                        service="service", amz_date=SUITE_DATE, session_token=token)
    assert sent["authorization"] == \
        f"AWS4-HMAC-SHA256 Credential={SUITE_SCOPE}, SignedHeaders={signed}, Signature={signature}"
    assert (sent["host"], sent["x-amz-date"]) == ("example.amazonaws.com", SUITE_DATE)
    assert sent.get("x-amz-security-token", "") == token


@pytest.mark.parametrize("name", sorted(SUITE))
def test_the_fakes_verifier_matches_the_aws_test_suite(name):
    method, query, headers, body, token, signed, canonical_sha, signature = SUITE[name]
    received = {"Host": "example.amazonaws.com", "X-Amz-Date": SUITE_DATE, **headers}
    if token:
        received["X-Amz-Security-Token"] = token
    canonical, names = canonical_request(method, "/", query, received, body)
    assert names == signed
    if canonical_sha:
        assert hashlib.sha256(canonical.encode()).hexdigest() == canonical_sha
    assert sigv4_signature(SECRET, SUITE_DATE, "us-east-1", "service", canonical) == signature


S3_EMPTY = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


@pytest.mark.parametrize("path, extra, signature", [
    ("/test.txt", {"Range": "bytes=0-9"}, "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"),
    ("/?lifecycle", {}, "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"),
    ("/?max-keys=2&prefix=J", {}, "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"),
])
def test_botocore_signing_matches_the_documented_s3_examples(path, extra, signature):
    sent = sign_request("GET", f"https://examplebucket.s3.amazonaws.com{path}",
                        {"x-amz-content-sha256": S3_EMPTY, **extra}, b"", access_key="AKIAIOSFODNN7EXAMPLE",
                        secret_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", region="us-east-1", service="s3",
                        amz_date="20130524T000000Z")
    assert sent["authorization"].endswith(f"Signature={signature}")


def test_user_agent_is_sent_but_not_signed():
    """AWS never signs hop-by-hop headers such as User-Agent (proxies rewrite them)."""
    sent = sign_request("POST", "https://sqs.us-east-1.amazonaws.com/", {"User-Agent": "lockstock/0.1"}, b"{}",
                        access_key=AKID, secret_key=SECRET, region="us-east-1", service="sqs", amz_date=SUITE_DATE)
    assert sent["user-agent"] == "lockstock/0.1"
    assert "SignedHeaders=host;x-amz-date," in sent["authorization"]


def test_a_non_default_port_is_signed_and_sent_in_host():
    sent = sign_request("POST", "http://127.0.0.1:9324/", {}, b"{}", access_key=AKID, secret_key=SECRET,
                        region="us-east-1", service="sqs", amz_date=SUITE_DATE)
    assert sent["host"] == "127.0.0.1:9324"


def test_amz_date_is_utc():
    assert amz_date(1440938160) == SUITE_DATE
    assert amz_date(1440938160.999) == SUITE_DATE


# What lockstock sends (an SQS JSON call), signed by botocore, passes the fake's own check; a
# changed byte of the body fails it.
_actions = st.sampled_from(["ReceiveMessage", "DeleteMessage"])
_bodies = st.text(max_size=200).map(str.encode)
_tokens = st.one_of(st.just(""),
                   st.text(alphabet=string.ascii_letters + string.digits + "+/=", min_size=1, max_size=80))
_times = st.integers(0, 4102444799)  # up to the end of 2099
_endpoints = st.sampled_from(["https://sqs.eu-west-1.amazonaws.com/", "http://127.0.0.1:9324/"])


@given(action=_actions, body=_bodies, token=_tokens, at=_times, endpoint=_endpoints)
def test_what_lockstock_signs_the_fake_verifies(action, body, token, at, endpoint):
    stamp = amz_date(at)
    sent = sign_request("POST", endpoint, {"content-type": SQS_CONTENT_TYPE, "x-amz-target": f"AmazonSQS.{action}"},
                        body, access_key=AKID, secret_key=SECRET, region="eu-west-1", service="sqs",
                        amz_date=stamp, session_token=token)
    signed = sent["authorization"].split("SignedHeaders=")[1].split(",")[0]
    received = {name: sent[name] for name in signed.split(";")}
    canonical, _ = canonical_request("POST", "/", "", received, body)
    assert sent["authorization"].endswith("Signature=" + sigv4_signature(SECRET, stamp, "eu-west-1", "sqs", canonical))
    tampered, _ = canonical_request("POST", "/", "", received, body + b" ")
    assert not sent["authorization"].endswith("Signature=" + sigv4_signature(SECRET, stamp, "eu-west-1", "sqs",
                                                                             tampered))
