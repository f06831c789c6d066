"""The aws adapter (SNS Publish and End User Messaging SendTextMessage) against a fake
that checks SigV4 like AWS."""

from __future__ import annotations

import json
from typing import Any

import pytest

from providers.aws import ERRORS
from providers.base import Outcome, ProviderError
from providers.http import AMBIGUOUS
from tests.providers.conftest import FREE_TEXT, closed_port_url
from tests.providers.fake_intl import AWS_ID, AWS_SECRET, FakeAws, eum_error, sns_error
from tests.providers.fakes import Delay, Reply


def options(fake: FakeAws, **extra: Any) -> dict[str, Any]:
    return {"endpoint": fake.url, "access_key_id": AWS_ID, "secret_access_key": AWS_SECRET,
            "timeout": 0.5, **extra}  # fmt: skip


async def test_sns_publish(fakes: Any, adapters: Any) -> None:
    fake = await fakes(FakeAws())
    sns = await adapters("aws", options(fake))
    result = await sns.send(FREE_TEXT)
    assert result.outcome is Outcome.SENT and result.provider_message_id
    form = fake.received[0]
    assert (form["Action"], form["PhoneNumber"], form["Message"]) == (
        "Publish", "+12015550123", FREE_TEXT.body,
    )  # fmt: skip
    assert form["MessageAttributes.entry.1.Value.StringValue"] == "Transactional"
    assert not sns.capabilities.status_query


async def test_end_user_messaging(fakes: Any, adapters: Any) -> None:
    fake = await fakes(FakeAws())
    eum = await adapters("aws", options(fake, api="sms-voice", origination_identity="pool-1"))
    result = await eum.send(FREE_TEXT)
    assert result.outcome is Outcome.SENT
    assert fake.received[0] == {
        "DestinationPhoneNumber": "+12015550123", "MessageBody": FREE_TEXT.body,
        "MessageType": "TRANSACTIONAL", "Context": {"lendsms_id": "msg_0002"},
        "OriginationIdentity": "pool-1",
    }  # fmt: skip


@pytest.mark.parametrize("api", ["sns", "sms-voice"])
async def test_a_wrong_secret_is_refused(fakes: Any, adapters: Any, api: str) -> None:
    fake = await fakes(FakeAws())
    bad = await adapters("aws", {**options(fake, api=api), "secret_access_key": "nope"})
    result = await bad.send(FREE_TEXT)
    assert result.outcome is Outcome.SWITCH_PROVIDER and fake.rejected


async def test_a_wrong_region_is_refused(fakes: Any, adapters: Any) -> None:
    fake = await fakes(FakeAws(region="eu-west-1"))
    sns = await adapters("aws", options(fake, region="us-east-1"))
    assert (await sns.send(FREE_TEXT)).outcome is Outcome.SWITCH_PROVIDER


@pytest.mark.parametrize(("code", "expected"), sorted(ERRORS.codes.items()))
@pytest.mark.parametrize("api", ["sns", "sms-voice"])
async def test_every_mapped_code(
    fakes: Any, adapters: Any, code: str, expected: object, api: str
) -> None:
    fake = await fakes(FakeAws())
    aws = await adapters("aws", options(fake, api=api))
    status = 429 if code.startswith("Thrott") else 500 if "Internal" in code else 400
    fake.script = [sns_error(code, status) if api == "sns" else eum_error(code, status)]
    result = await aws.send(FREE_TEXT)
    assert (result.outcome, result.code) == (expected, code)


async def test_error_type_header(fakes: Any, adapters: Any) -> None:
    fake = await fakes(FakeAws())
    eum = await adapters("aws", options(fake, api="sms-voice"))
    fake.script = [Reply(400, "", headers={"x-amzn-ErrorType": "ThrottlingException:http://x"},
                         content_type="text/plain")]  # fmt: skip
    assert (await eum.send(FREE_TEXT)).outcome is Outcome.RETRY


@pytest.mark.parametrize(
    ("reply", "expected"),
    [(Reply(500, "", content_type="text/plain"), Outcome.RETRY),
     (Reply(504, "", content_type="text/plain"), AMBIGUOUS),
     (Reply(200, "<PublishResponse/>", content_type="text/xml"), Outcome.PERMANENT)],
)  # fmt: skip
async def test_server_errors(fakes: Any, adapters: Any, reply: Reply, expected: object) -> None:
    fake = await fakes(FakeAws())
    sns = await adapters("aws", options(fake))
    fake.script = [reply]
    if expected == AMBIGUOUS:
        with pytest.raises(ProviderError):
            await sns.send(FREE_TEXT)
    else:
        assert (await sns.send(FREE_TEXT)).outcome is expected


async def test_timeouts_and_refused_connections(fakes: Any, adapters: Any) -> None:
    fake = await fakes(FakeAws())
    sns = await adapters("aws", options(fake, timeout=0.2))
    fake.script = [Delay(1.0)]
    with pytest.raises(ProviderError):
        await sns.send(FREE_TEXT)
    down = await adapters("aws", {**options(fake), "endpoint": closed_port_url()}, name="d")
    assert (await down.send(FREE_TEXT)).outcome is Outcome.RETRY


def test_default_endpoint_follows_region_and_api(tmp_path: Any) -> None:
    from providers.aws import AwsProvider

    opts = {"access_key_id": AWS_ID, "secret_access_key": AWS_SECRET, "region": "ap-south-1"}
    assert str(AwsProvider("a", opts, base_dir=tmp_path).endpoint) == (
        "https://sns.ap-south-1.amazonaws.com"
    )
    eum = AwsProvider("a", {**opts, "api": "sms-voice"}, base_dir=tmp_path)
    assert str(eum.endpoint) == "https://sms-voice.ap-south-1.amazonaws.com"
    assert json.dumps(repr(eum)).find(AWS_SECRET) == -1
