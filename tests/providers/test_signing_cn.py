"""Known-answer tests for the Chinese providers' signing schemes, with the published
vectors quoted in ``shared/reference/providers.md``: Alibaba Cloud RPC V2 (HMAC-SHA1)
and V3 (ACS3-HMAC-SHA256), Tencent Cloud TC3-HMAC-SHA256."""

from __future__ import annotations

import json

import pytest

from providers.signing import aliyun, tencent
from providers.signing.common import sha256_hex

# -- Aliyun RPC V2 (providers.md §1.7) ---------------------------------------------------

VECTOR_A = {
    "AccessKeyId": "testId",
    "Action": "SendSms",
    "Format": "XML",
    "OutId": "123",
    "PhoneNumbers": "15300000001",
    "RegionId": "cn-hangzhou",
    "SignName": "阿里云短信测试专用",
    "SignatureMethod": "HMAC-SHA1",
    "SignatureNonce": "45e25e9b-0a6f-4070-8c85-2956eda1b466",
    "SignatureVersion": "1.0",
    "TemplateCode": "SMS_71390007",
    "TemplateParam": '{"customer":"test"}',
    "Timestamp": "2017-07-12T02:42:19Z",
    "Version": "2017-05-25",
}
VECTOR_A_QUERY = (
    "AccessKeyId=testId&Action=SendSms&Format=XML&OutId=123&PhoneNumbers=15300000001"
    "&RegionId=cn-hangzhou&SignName=%E9%98%BF%E9%87%8C%E4%BA%91%E7%9F%AD%E4%BF%A1%E6%B5%8B"
    "%E8%AF%95%E4%B8%93%E7%94%A8&SignatureMethod=HMAC-SHA1"
    "&SignatureNonce=45e25e9b-0a6f-4070-8c85-2956eda1b466&SignatureVersion=1.0"
    "&TemplateCode=SMS_71390007&TemplateParam=%7B%22customer%22%3A%22test%22%7D"
    "&Timestamp=2017-07-12T02%3A42%3A19Z&Version=2017-05-25"
)
VECTOR_A_STRING = (
    "GET&%2F&AccessKeyId%3DtestId%26Action%3DSendSms%26Format%3DXML%26OutId%3D123"
    "%26PhoneNumbers%3D15300000001%26RegionId%3Dcn-hangzhou%26SignName%3D%25E9%2598%25BF"
    "%25E9%2587%258C%25E4%25BA%2591%25E7%259F%25AD%25E4%25BF%25A1%25E6%25B5%258B%25E8%25AF"
    "%2595%25E4%25B8%2593%25E7%2594%25A8%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce"
    "%3D45e25e9b-0a6f-4070-8c85-2956eda1b466%26SignatureVersion%3D1.0%26TemplateCode"
    "%3DSMS_71390007%26TemplateParam%3D%257B%2522customer%2522%253A%2522test%2522%257D"
    "%26Timestamp%3D2017-07-12T02%253A42%253A19Z%26Version%3D2017-05-25"
)


def test_aliyun_v2_vector_a_trace() -> None:
    assert aliyun.v2_canonical_query(VECTOR_A) == VECTOR_A_QUERY
    assert aliyun.v2_string_to_sign("GET", VECTOR_A) == VECTOR_A_STRING
    assert aliyun.v2_signature("testSecret", "GET", VECTOR_A) == "zJDF+Lrzhj/ThnlvIToysFRq6t4="


def test_aliyun_v2_vector_a_variants() -> None:
    # key case matters; the method is signed ([derived] POST value)
    assert aliyun.v2_signature("testsecret", "GET", VECTOR_A) == "EpROzuoKhdewdxdmVWhll2qdKbk="
    assert aliyun.v2_signature("testSecret", "POST", VECTOR_A) == "Xvhv7fPXrPkLVSnlt0jIr08o8NQ="
    # an existing Signature parameter is never part of what is signed
    signed = aliyun.v2_sign(VECTOR_A, access_key_secret="testSecret", method="GET")
    assert signed["Signature"] == "zJDF+Lrzhj/ThnlvIToysFRq6t4="
    assert aliyun.v2_signature("testSecret", "GET", signed) == signed["Signature"]


VECTOR_B = {
    "AccessKeyId": "testid",
    "Action": "DescribeDedicatedHosts",
    "Format": "JSON",
    "RegionId": "cn-beijing",
    "SignatureMethod": "HMAC-SHA1",
    "SignatureNonce": "edb2b34af0af9a6d14deaf7c1a5315eb",
    "SignatureVersion": "1.0",
    "Timestamp": "2023-03-13T08:34:30Z",
    "Version": "2014-05-26",
}


def test_aliyun_v2_vector_b() -> None:
    assert aliyun.v2_string_to_sign("GET", VECTOR_B) == (
        "GET&%2F&AccessKeyId%3Dtestid%26Action%3DDescribeDedicatedHosts%26Format%3DJSON"
        "%26RegionId%3Dcn-beijing%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce"
        "%3Dedb2b34af0af9a6d14deaf7c1a5315eb%26SignatureVersion%3D1.0%26Timestamp"
        "%3D2023-03-13T08%253A34%253A30Z%26Version%3D2014-05-26"
    )
    assert aliyun.v2_signature("testsecret", "GET", VECTOR_B) == "9NaGiOspFP5UPcwX8Iwt2YJXXuk="
    assert aliyun.v2_signature("testsecret", "POST", VECTOR_B) == "ZvQ9xGiFnquSJRvj+WE6kdSpTwU="


@pytest.mark.parametrize(
    ("stamp_name", "expected"),
    [("Timestamp", "OLeaidS1JvxuMvnyHOwuJ+uX5qY="), ("TimeStamp", "CT9X0VtwR86fNWSnsc6v8YGOjuE=")],
)
def test_aliyun_v2_vector_c(stamp_name: str, expected: str) -> None:
    params = {
        "AccessKeyId": "testid",
        "Action": "DescribeRegions",
        "Format": "XML",
        "SignatureMethod": "HMAC-SHA1",
        "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf",
        "SignatureVersion": "1.0",
        "Version": "2014-05-26",
        stamp_name: "2016-02-23T12:46:24Z",
    }
    assert aliyun.v2_signature("testsecret", "GET", params) == expected


def test_aliyun_percent_encoding_rules() -> None:
    params = {"a": "x y*z~", "b": "+/="}
    assert aliyun.v2_canonical_query(params) == "a=x%20y%2Az~&b=%2B%2F%3D"


# -- Aliyun V3 (providers.md §1.8) ----------------------------------------------------------

V3_HEADERS = {
    "host": "ecs.cn-shanghai.aliyuncs.com",
    "x-acs-action": "RunInstances",
    "x-acs-version": "2014-05-26",
    "x-acs-date": "2023-10-26T10:22:32Z",
    "x-acs-signature-nonce": "3156853299f313e23d1673dc12e1703d",
    "x-acs-content-sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
}
V3_QUERY = {
    "ImageId": "win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd",
    "RegionId": "cn-shanghai",
}


def test_aliyun_v3_official_vector() -> None:
    empty = sha256_hex(b"")
    request, _ = aliyun.v3_canonical_request("POST", "/", V3_QUERY, V3_HEADERS, empty)
    assert request == (
        "POST\n/\n"
        "ImageId=win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd&RegionId=cn-shanghai\n"
        "host:ecs.cn-shanghai.aliyuncs.com\nx-acs-action:RunInstances\n"
        "x-acs-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
        "x-acs-date:2023-10-26T10:22:32Z\nx-acs-signature-nonce:3156853299f313e23d1673dc12e1703d\n"
        "x-acs-version:2014-05-26\n\n"
        "host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version\n"
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )
    assert aliyun.v3_string_to_sign(request) == (
        "ACS3-HMAC-SHA256\n7ea06492da5221eba5297e897ce16e55f964061054b7695beedaac1145b1e259"
    )
    header = aliyun.v3_authorization(
        "YourAccessKeyId", "YourAccessKeySecret", "POST", "/", V3_QUERY, V3_HEADERS
    )
    assert header == (
        "ACS3-HMAC-SHA256 Credential=YourAccessKeyId,SignedHeaders=host;x-acs-action;"
        "x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,"
        "Signature=06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0"
    )
    parsed = aliyun.parse_v3_authorization(header)
    assert parsed is not None and parsed["Credential"] == "YourAccessKeyId"
    assert aliyun.parse_v3_authorization("Bearer x") is None


# -- Tencent TC3 (providers.md §2.4) ----------------------------------------------------------

CVM_BODY = json.dumps(
    {"Limit": 1, "Filters": [{"Values": ["未命名"], "Name": "instance-name"}]}
).encode()
CVM_TS = 1551113065
CT = "application/json; charset=utf-8"


def cvm_request(with_action: bool) -> tencent.Tc3Request:
    headers = {"content-type": CT, "host": "cvm.tencentcloudapi.com"}
    if with_action:
        headers["x-tc-action"] = "DescribeInstances"
    return tencent.Tc3Request("POST", "/", "", headers, CVM_BODY)


def test_tencent_payload_hash() -> None:
    assert CVM_BODY == (
        b'{"Limit": 1, "Filters": [{"Values": ["\\u672a\\u547d\\u540d"], "Name": "instance-name"}]}'
    )
    assert sha256_hex(CVM_BODY) == (
        "35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"
    )


def test_tencent_t1_trace() -> None:
    req = cvm_request(False)
    text, _ = tencent.canonical_request(req)
    assert text == (
        "POST\n/\n\ncontent-type:application/json; charset=utf-8\nhost:cvm.tencentcloudapi.com\n"
        "\ncontent-type;host\n35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"
    )
    assert tencent.string_to_sign(req, CVM_TS, "cvm") == (
        "TC3-HMAC-SHA256\n1551113065\n2019-02-25/cvm/tc3_request\n"
        "5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031"
    )
    header = tencent.authorization(
        "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE", "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE", req, CVM_TS,
        "cvm",
    )  # fmt: skip
    assert header == (
        "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE/2019-02-25/cvm/"
        "tc3_request, SignedHeaders=content-type;host, "
        "Signature=72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"
    )


@pytest.mark.parametrize(
    ("with_action", "key", "expected"),
    [
        (False, "Gu5t9xGARNpq86cd98joQYCN3*******",
         "2230eefd229f582d8b1b891af7107b91597240707d778ab3738f756258d7652c"),
        (True, "Gu5t9xGARNpq86cd98joQYCN3*******",
         "be4f67d323c78ab9acb7395e43c0dbcf822a9cfac32fea2449a7bc7726b770a3"),
        (True, "*" * 32, "10b1a37a7301a02ca19a647ad722d5e43b4b3cff309d421d85b46093f6ab6c4f"),
    ],
    ids=["T2", "T3", "T4"],
)  # fmt: skip
def test_tencent_t2_t3_t4(with_action: bool, key: str, expected: str) -> None:
    assert tencent.signature(key, cvm_request(with_action), CVM_TS, "cvm") == expected


def test_tencent_t4_intermediates() -> None:
    req = cvm_request(True)
    text, _ = tencent.canonical_request(req)
    assert "x-tc-action:describeinstances\n" in text  # values are lower-cased too
    assert sha256_hex(text) == "7019a55be8395899b900fb5564e4200d984910f34794a27cb3fb7d10ff6a1e84"
    key = tencent.signing_key("*" * 32, "2019-02-25", "cvm")
    assert key.hex() == "b596b923aad85185e2d1f6659d2a062e0a86731226e021e61bfe06f7ed05f5af"


SMS_BODY = json.dumps(
    {"SmsSdkAppId": "1400006666", "SignName": "腾讯云", "TemplateId": "1234",
     "TemplateParamSet": ["12345"], "PhoneNumberSet": ["+8618511122266"],
     "SessionContext": "test"}
).encode()  # fmt: skip


@pytest.mark.parametrize(
    ("with_action", "canonical_hash", "expected"),
    [
        (False, "cc43f6e4ebb64e062dafbaf083d3ca3a26a52571baa14e8553ba8d0d435a3d2d",
         "d3d466c8305efc1f47fdd925185c2239353373a207dfead57e16016577cdf1b6"),
        (True, "c1c09c3bbbed55dc30f0b46d42361b440df84f229ad97c083a23a6ae17257ca4",
         "6a32104004f7db230ef6f9c5990faed271c79fb9f5ee25a8851fcfb4354c6e13"),
    ],
)  # fmt: skip
def test_tencent_derived_sendsms_fixture(
    with_action: bool, canonical_hash: str, expected: str
) -> None:
    assert sha256_hex(SMS_BODY) == (
        "cbd7dc0174ee2f6079d5b7c7faf57d7175be362c4cf6821e7494763a1d943136"
    )
    headers = {"content-type": CT, "host": "sms.tencentcloudapi.com"}
    if with_action:
        headers["x-tc-action"] = "SendSms"
    req = tencent.Tc3Request("POST", "/", "", headers, SMS_BODY)
    assert sha256_hex(tencent.canonical_request(req)[0]) == canonical_hash
    assert tencent.signature("Gu5t9xGARNpq86cd98joQYCN3*******", req, CVM_TS, "sms") == expected


def test_tencent_credential_date_is_utc() -> None:
    assert tencent.credential_date(1551113065) == "2019-02-25"
    assert tencent.credential_date(1551052799) == "2019-02-24"  # 23:59:59 UTC, not local time
