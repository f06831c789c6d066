"""Known-answer tests for Twilio's X-Twilio-Signature and AWS SigV4 with the published
vectors quoted in ``shared/reference/providers.md``, and round trips of lendsms's own
``t=…,v1=…`` webhook signature."""

from __future__ import annotations

import pytest

from providers.signing import aws, twilio, webhook
from providers.signing.common import sha256_hex

# -- Twilio (providers.md §3.4) ------------------------------------------------------------

TWILIO_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
TWILIO_PARAMS = [
    ("CallSid", "CA1234567890ABCDE"),
    ("Caller", "+14158675309"),
    ("Digits", "1234"),
    ("From", "+14158675309"),
    ("To", "+18005551212"),
]


def test_twilio_vector() -> None:
    assert twilio.signing_string(TWILIO_URL, TWILIO_PARAMS) == (
        "https://mycompany.com/myapp.php?foo=1&bar=2CallSidCA1234567890ABCDECaller+14158675309"
        "Digits1234From+14158675309To+18005551212"
    )
    assert twilio.signature("12345", TWILIO_URL, TWILIO_PARAMS) == "RSOYDt4T1cUTdK1PDd93/VVr8B8="


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://mycompany.com:443/myapp.php?foo=1&bar=2", "kvajT1Ptam85bY51eRf/AJRuM3w="),
        ("http://mycompany.com:80/myapp.php?foo=1&bar=2", "0ZXoZLH/DfblKGATFgpif+LLRf4="),
        ("http://mycompany.com:1234/myapp.php?foo=1&bar=2", "Zmvh+3yNM1Phv2jhDCwEM3q5ebU="),
    ],
)
def test_twilio_ports(url: str, expected: str) -> None:
    assert twilio.signature("12345", url, TWILIO_PARAMS) == expected


def test_twilio_validate_tries_the_url_with_and_without_the_default_port() -> None:
    assert twilio.validate("12345", TWILIO_URL, TWILIO_PARAMS, "RSOYDt4T1cUTdK1PDd93/VVr8B8=")
    assert twilio.validate("12345", TWILIO_URL, TWILIO_PARAMS, "kvajT1Ptam85bY51eRf/AJRuM3w=")
    assert not twilio.validate("12345", TWILIO_URL, TWILIO_PARAMS, "0ZXoZLH/DfblKGATFgpif+LLRf4=")
    assert not twilio.validate("54321", TWILIO_URL, TWILIO_PARAMS, "RSOYDt4T1cUTdK1PDd93/VVr8B8=")
    fewer = TWILIO_PARAMS[:-1]
    assert not twilio.validate("12345", TWILIO_URL, fewer, "RSOYDt4T1cUTdK1PDd93/VVr8B8=")
    assert not twilio.validate("12345", TWILIO_URL, TWILIO_PARAMS, "")


def test_twilio_repeated_keys() -> None:
    params = [("Sid", "CA123"), ("SidAccount", "AC123"), ("Digits", "5678"), ("Digits", "1234")]
    assert twilio.signature("12345", TWILIO_URL, params) == "IK+Dwps556ElfBT0I3Rgjkr1wJU="


def test_twilio_json_body() -> None:
    body = b'{"property": "value", "boolean": true}'
    body_hash = "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620"
    assert sha256_hex(body) == body_hash
    url = f"{TWILIO_URL}&bodySHA256={body_hash}"
    assert twilio.signature("12345", url) == "a9nBmqA0ju/hNViExpshrM61xv4="
    assert twilio.validate("12345", url, [], "a9nBmqA0ju/hNViExpshrM61xv4=", body=body)
    assert not twilio.validate("12345", url, [], "a9nBmqA0ju/hNViExpshrM61xv4=", body=body + b" ")


def test_twilio_older_doc_vector() -> None:
    params = [(k, "+12349013030" if k in ("Caller", "From") else v) for k, v in TWILIO_PARAMS]
    assert twilio.signature("12345", TWILIO_URL, params) == "0/KCTR6DLpKmkAf8muzZqo1nDgQ="


# -- AWS SigV4 (providers.md §4.1) --------------------------------------------------------------

AKID, SECRET = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
AMZ = "20150830T123600Z"
HOST = {"Host": "example.amazonaws.com", "X-Amz-Date": AMZ}


def sigv4(method: str, query: str = "", extra: dict[str, str] | None = None,
          body: bytes = b"") -> aws.SigV4Request:  # fmt: skip
    return aws.SigV4Request(method, "/", query, {**HOST, **(extra or {})}, body)


def test_aws_get_vanilla_trace() -> None:
    req = sigv4("GET")
    text, _ = aws.canonical_request(req)
    assert text == (
        "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n"
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )
    assert aws.string_to_sign(req, AMZ, "us-east-1", "service") == (
        "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n"
        "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63"
    )
    assert aws.authorization(AKID, SECRET, req, AMZ, "us-east-1", "service") == (
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
        "SignedHeaders=host;x-amz-date, "
        "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
    )


def test_aws_post_vanilla() -> None:
    req = sigv4("POST")
    assert sha256_hex(aws.canonical_request(req)[0]) == (
        "553f88c9e4d10fc9e109e2aeb65f030801b70c2f6468faca261d401ae622fc87"
    )
    assert aws.signature(SECRET, req, AMZ, "us-east-1", "service") == (
        "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"
    )


def test_aws_post_form_urlencoded() -> None:
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    req = sigv4("POST", extra=form, body=b"Param1=value1")
    text, signed = aws.canonical_request(req)
    assert signed == "content-type;host;x-amz-date"
    assert text.endswith("9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e")
    assert aws.string_to_sign(req, AMZ, "us-east-1", "service").endswith(
        "42a5e5bb34198acb3e84da4f085bb7927f2bc277ca766e6d19c73c2154021281"
    )
    assert aws.signature(SECRET, req, AMZ, "us-east-1", "service") == (
        "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"
    )
    charset = {"Content-Type": "application/x-www-form-urlencoded; charset=utf8"}
    req2 = sigv4("POST", extra=charset, body=b"Param1=value1")
    assert aws.signature(SECRET, req2, AMZ, "us-east-1", "service") == (
        "1a72ec8f64bd914b0e42e42607c7fbce7fb2c7465f63e3092b3b0d39fa77a6fe"
    )


def test_aws_post_form_urlencoded_aws_c_auth_edition() -> None:
    body = b"Param1=value1"
    extra = {
        "Content-Type": "application/x-www-form-urlencoded",
        "Content-Length": str(len(body)),
        "X-Amz-Content-Sha256": sha256_hex(body),
    }
    req = sigv4("POST", extra=extra, body=body)
    assert aws.canonical_request(req)[1] == (
        "content-length;content-type;host;x-amz-content-sha256;x-amz-date"
    )
    assert aws.string_to_sign(req, AMZ, "us-east-1", "service").endswith(
        "b1edd1d03544c25390e32085d55b57acc9a3961bb59415ff86c45c3d89d16cfb"
    )
    assert aws.signature(SECRET, req, AMZ, "us-east-1", "service") == (
        "d3875051da38690788ef43de4db0d8f280229d82040bfac253562e56c3f20e0b"
    )


@pytest.mark.parametrize(
    ("method", "query", "expected"),
    [
        ("GET", "Param2=value2&Param1=value1",
         "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"),
        ("POST", "Param1=value1",
         "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11"),
    ],
    ids=["get-vanilla-query-order-key-case", "post-vanilla-query"],
)  # fmt: skip
def test_aws_query_vectors(method: str, query: str, expected: str) -> None:
    assert aws.signature(SECRET, sigv4(method, query), AMZ, "us-east-1", "service") == expected


# -- lendsms's own webhook signature ------------------------------------------------------


def test_webhook_signature_round_trip() -> None:
    body = b'{"id":"msg_1","status":"delivered"}'
    header = webhook.sign("whsec", 1700000000, body)
    assert header.startswith("t=1700000000,v1=")
    assert webhook.verify("whsec", header, body, now=1700000100)
    assert not webhook.verify("other", header, body, now=1700000100)
    assert not webhook.verify("whsec", header, body + b" ", now=1700000100)
    assert not webhook.verify("whsec", header, body, now=1700000000 + 301)  # replayed late
    assert not webhook.verify("whsec", "v1=abc", body, now=1700000000)
    assert not webhook.verify("whsec", "t=1700000000,t=1700000001," + header, body, now=1700000000)
    # a receiver may roll secrets: any matching v1 passes
    rolled = header + ",v1=" + "0" * 64
    assert webhook.verify("whsec", rolled, body, now=1700000000)


def test_webhook_signature_known_value() -> None:
    # computed independently: HMAC-SHA256(key="secret", msg="1.{}")
    import hashlib
    import hmac

    mac = hmac.new(b"secret", b"1.{}", hashlib.sha256).hexdigest()
    assert webhook.sign("secret", 1, b"{}") == f"t=1,v1={mac}"
