"""AWS: SNS ``Publish`` to a phone number (Query protocol, form body) or End User
Messaging SMS v2 ``SendTextMessage`` (awsJson 1.0), both signed with SigV4.

Neither has a per-message status query or a per-message webhook (delivery events go to
configuration-set destinations), so an ambiguous attempt ends ``ambiguous_timeout``.
Codes and classes: ``shared/reference/providers.md`` §4, §6.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from providers.base import Capabilities, OutboundSms, Outcome, SendResult
from providers.http import ErrorTable, HttpProvider, host_header, http_status_class
from providers.http import read_limited as _read
from providers.signing import aws as sigv4

FORM = "application/x-www-form-urlencoded; charset=utf-8"
AMZ_JSON = "application/x-amz-json-1.0"
TARGET = "PinpointSMSVoiceV2.SendTextMessage"
_RETRY, _SWITCH, _PERM = Outcome.RETRY, Outcome.SWITCH_PROVIDER, Outcome.PERMANENT

ERRORS = ErrorTable(
    codes={
        "Throttled": _RETRY, "Throttling": _RETRY, "ThrottlingException": _RETRY,
        "InternalError": _RETRY, "InternalFailure": _RETRY, "InternalServerException": _RETRY,
        "ServiceUnavailable": _RETRY,
        "AuthorizationError": _SWITCH, "AccessDeniedException": _SWITCH,
        "InvalidClientTokenId": _SWITCH, "SignatureDoesNotMatch": _SWITCH,
        "UnrecognizedClientException": _SWITCH, "ServiceQuotaExceededException": _SWITCH,
        "ResourceNotFoundException": _SWITCH, "KMSAccessDenied": _SWITCH,
        "InvalidParameter": _PERM, "InvalidParameterValue": _PERM,
        "ValidationException": _PERM, "ConflictException": _PERM,
    },
    default=_PERM,
)  # fmt: skip
# The Query protocol answers in a fixed, tiny XML shape; reading two elements with a
# pattern avoids an XML parser (and its entity expansion) on provider input.
_XML_ELEMENT = r"<{0}>([^<]{{1,256}})</{0}>"


def _xml_text(raw: bytes, tag: str) -> str | None:
    found = re.search(_XML_ELEMENT.format(tag), raw.decode("utf-8", "replace"))
    return found.group(1).strip() if found else None


def _json_error(raw: bytes, headers: Mapping[str, str]) -> str | None:
    kind = headers.get("x-amzn-ErrorType", "")
    if not kind:
        try:
            data = json.loads(raw) if raw else {}
        except ValueError:
            data = {}
        kind = str(data.get("__type") or data.get("code") or "") if isinstance(data, dict) else ""
    kind = kind.split(":", 1)[0].rsplit("#", 1)[-1]
    return kind or None


class AwsProvider(HttpProvider):
    type_name = "aws"
    options_known = frozenset(
        {"access_key_id", "secret_access_key", "region", "api", "origination_identity",
         "message_type", "configuration_set"}
    )  # fmt: skip
    capabilities = Capabilities(free_text=True, max_segments=10, status_query=False)

    def __init__(self, name: str, options: Mapping[str, Any], *, base_dir: Path) -> None:
        super().__init__(name, options, base_dir=base_dir)
        self.access_key_id = self.options.secret("access_key_id")
        self._secret = self.options.secret("secret_access_key")
        self.region = self.options.text("region", "us-east-1")
        self.api = self.options.choice("api", "sns", ("sns", "sms-voice"))
        self.message_type = self.options.choice(
            "message_type", "transactional", ("transactional", "promotional")
        )
        self.origination = self.options.optional_text("origination_identity")
        self.configuration_set = self.options.optional_text("configuration_set")
        self.now: Callable[[], datetime] = lambda: datetime.now(UTC)

    def _default_endpoint(self) -> str:
        api = self.options.choice("api", "sns", ("sns", "sms-voice"))
        return f"https://{api}.{self.options.text('region', 'us-east-1')}.amazonaws.com"

    def _signed_headers(
        self, body: bytes, content_type: str, extra: dict[str, str]
    ) -> dict[str, str]:
        url = self.endpoint.with_path("/")
        amz_date = self.now().strftime("%Y%m%dT%H%M%SZ")
        headers = {"Host": host_header(url), "X-Amz-Date": amz_date,
                   "Content-Type": content_type, **extra}  # fmt: skip
        req = sigv4.SigV4Request("POST", "/", "", headers, body)
        headers["Authorization"] = sigv4.authorization(
            self.access_key_id, self._secret, req, amz_date, self.region, self.api
        )
        return headers

    async def _send(self, sms: OutboundSms) -> SendResult:
        if self.api == "sns":
            return await self._publish(sms)
        return await self._send_text(sms)

    async def _publish(self, sms: OutboundSms) -> SendResult:
        form = {
            "Action": "Publish", "Version": "2010-03-31", "PhoneNumber": sms.to,
            "Message": sms.body,
            "MessageAttributes.entry.1.Name": "AWS.SNS.SMS.SMSType",
            "MessageAttributes.entry.1.Value.DataType": "String",
            "MessageAttributes.entry.1.Value.StringValue": self.message_type.capitalize(),
        }  # fmt: skip
        body = urlencode(form).encode("utf-8")
        headers = self._signed_headers(body, FORM, {})
        async with self.session.post(self.endpoint.with_path("/"), data=body, headers=headers) as r:
            raw = await _read(r)
            status = r.status
        message_id = _xml_text(raw, "MessageId")
        if status == 200 and message_id:
            return SendResult(Outcome.SENT, message_id, code="OK")
        return self._mapped(_xml_text(raw, "Code"), status)

    async def _send_text(self, sms: OutboundSms) -> SendResult:
        payload: dict[str, Any] = {
            "DestinationPhoneNumber": sms.to, "MessageBody": sms.body,
            "MessageType": self.message_type.upper(), "Context": {"lendsms_id": sms.message_id},
        }  # fmt: skip
        if self.origination:
            payload["OriginationIdentity"] = self.origination
        if self.configuration_set:
            payload["ConfigurationSetName"] = self.configuration_set
        body = json.dumps(payload).encode("utf-8")
        headers = self._signed_headers(body, AMZ_JSON, {"X-Amz-Target": TARGET})
        async with self.session.post(self.endpoint.with_path("/"), data=body, headers=headers) as r:
            raw = await _read(r)
            status, response_headers = r.status, dict(r.headers)
        if status == 200:
            try:
                data = json.loads(raw)
            except ValueError:
                data = {}
            if isinstance(data, dict) and data.get("MessageId"):
                return SendResult(Outcome.SENT, str(data["MessageId"]), code="OK")
        return self._mapped(_json_error(raw, response_headers), status)

    def _mapped(self, code: str | None, status: int) -> SendResult:
        if code and code in ERRORS.codes:
            return self.result(ERRORS.classify(code), code)
        return self.result(http_status_class(status), code or f"http_{status}")
