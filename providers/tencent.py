"""Tencent Cloud SMS (API 2021-01-11): SendSms with an approved template,
PullSmsSendStatusByPhoneNumber for ambiguous attempts, status and reply pushes.

Signed with TC3-HMAC-SHA256 over ``content-type;host;x-tc-action``. Codes and classes:
``shared/reference/providers.md`` §2.2-2.3, §6.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from providers.base import (
    CallbackMalformed,
    CallbackReply,
    CallbackRequest,
    Capabilities,
    DeliveryState,
    InboundSms,
    OutboundSms,
    Outcome,
    ProviderError,
    Receipt,
    SendResult,
    StatusResult,
)
from providers.http import AMBIGUOUS, ErrorTable, HttpProvider, host_header, http_status_class
from providers.http import read_limited as _read
from providers.signing import tencent as tc3
from providers.sms_fields import e164_from, signature_in

VERSION = "2021-01-11"
SERVICE = "sms"
JSON_TYPE = "application/json; charset=utf-8"
CHINA = timezone(timedelta(hours=8))
RECEIPT_WAIT = 600.0  # seconds a receipt may take before "not listed" counts as unknown
_SWITCH, _PERM, _LATER = Outcome.SWITCH_PROVIDER, Outcome.PERMANENT, Outcome.RETRY_LATER

ERRORS = ErrorTable(
    codes={
        "RequestLimitExceeded": Outcome.RETRY,
        "InternalError.RequestTimeException": Outcome.RETRY,  # clock skew: fresh timestamp
        "LimitExceeded.PhoneNumberThirtySecondLimit": _LATER,
        "LimitExceeded.PhoneNumberOneHourLimit": _LATER,
        "LimitExceeded.PhoneNumberDailyLimit": _LATER,
        "LimitExceeded.PhoneNumberSameContentDailyLimit": _LATER,
        "LimitExceeded.DeliveryFrequencyLimit": _LATER,
        "FailedOperation.MarketingSendTimeConstraint": _LATER,
        "LimitExceeded.AppDailyLimit": _SWITCH, "LimitExceeded.DailyLimit": _SWITCH,
        "FailedOperation.InsufficientBalanceInSmsPackage": _SWITCH,
        # this provider's template or signature is not usable: another provider's may be
        "FailedOperation.SignatureIncorrectOrUnapproved": _SWITCH,
        "FailedOperation.TemplateIncorrectOrUnapproved": _SWITCH,
        "LimitExceeded.PhoneNumberCountLimit": _PERM,
        "InvalidParameterValue.IncorrectPhoneNumber": _PERM,
        "FailedOperation.PhoneNumberInBlacklist": _PERM,
        "FailedOperation.PhoneNumberOnBlacklist": _PERM,
        "FailedOperation.ContainSensitiveWord": _PERM,
        "InvalidParameter.DirtyWordFound": _PERM,
        "InvalidParameter": _PERM, "MissingParameter": _PERM,
    },
    prefixes={
        "RequestLimitExceeded.": Outcome.RETRY,
        "InternalError": AMBIGUOUS,  # Timeout, SendAndRecvFail, ...: may have been sent
        "AuthFailure.": _SWITCH,
        "UnauthorizedOperation.": _SWITCH,
        "InvalidParameterValue.": _PERM,
        "UnsupportedOperation.": _PERM,
    },
    default=_PERM,
)  # fmt: skip
_WINDOWS = {
    "LimitExceeded.PhoneNumberThirtySecondLimit": 30.0,
    "LimitExceeded.PhoneNumberOneHourLimit": 3600.0,
    "LimitExceeded.PhoneNumberDailyLimit": 86400.0,
    "LimitExceeded.PhoneNumberSameContentDailyLimit": 86400.0,
    "LimitExceeded.DeliveryFrequencyLimit": 60.0,
}
REPLY = CallbackReply(b'{"result": 0, "errmsg": "OK"}', "application/json")


def _until_eight(now: datetime) -> float:
    """Seconds until the next 08:00 in China (marketing window)."""
    local = now.astimezone(CHINA)
    eight = local.replace(hour=8, minute=0, second=0, microsecond=0)
    if local >= eight:
        eight += timedelta(days=1)
    return (eight - local).total_seconds()


def _json(request: CallbackRequest) -> Any:
    try:
        return json.loads(request.body)
    except ValueError:
        raise CallbackMalformed("not JSON") from None


class TencentProvider(HttpProvider):
    type_name = "tencent"
    options_known = frozenset({"secret_id", "secret_key", "sdk_app_id", "region", "sign_name"})
    default_endpoint = "https://sms.tencentcloudapi.com"
    capabilities = Capabilities(free_text=False, max_segments=10, status_query=True)

    def __init__(self, name: str, options: Mapping[str, Any], *, base_dir: Path) -> None:
        super().__init__(name, options, base_dir=base_dir)
        self.secret_id = self.options.secret("secret_id")
        self._secret_key = self.options.secret("secret_key")
        self.sdk_app_id = self.options.text("sdk_app_id")
        self.region = self.options.text("region", "ap-guangzhou")
        self.sign_name = self.options.optional_text("sign_name")
        self.clock: Callable[[], float] = time.time

    async def call(self, action: str, payload: Mapping[str, Any]) -> tuple[int, dict[str, Any]]:
        """POST one action; ``(HTTP status, the "Response" object or {})``."""
        body = json.dumps(payload).encode("utf-8")
        url = self.endpoint.with_path("/")
        stamp = int(self.clock())
        host = host_header(url)
        req = tc3.Tc3Request(
            "POST", "/", "", {"content-type": JSON_TYPE, "host": host, "x-tc-action": action}, body
        )
        headers = {
            "Content-Type": JSON_TYPE, "Host": host, "X-TC-Action": action,
            "X-TC-Version": VERSION, "X-TC-Timestamp": str(stamp), "X-TC-Region": self.region,
            "Authorization": tc3.authorization(self.secret_id, self._secret_key, req, stamp,
                                               SERVICE),
        }  # fmt: skip
        async with self.session.post(url, data=body, headers=headers) as response:
            raw = await _read(response)
            try:
                data = json.loads(raw) if raw else {}
            except ValueError:
                data = {}
            inner = data.get("Response") if isinstance(data, dict) else None
            return response.status, inner if isinstance(inner, dict) else {}

    async def _send(self, sms: OutboundSms) -> SendResult:
        sign_name = self.sign_name or signature_in(sms.body)
        if not sms.template_code:
            return SendResult(Outcome.SWITCH_PROVIDER, code="no_template_code")
        payload: dict[str, Any] = {
            "PhoneNumberSet": [sms.to],
            "SmsSdkAppId": self.sdk_app_id,
            "TemplateId": sms.template_code,
            "SessionContext": sms.message_id,
        }
        if sign_name:
            payload["SignName"] = sign_name
        if sms.params:
            payload["TemplateParamSet"] = list(sms.params.values())  # placeholder order
        status, data = await self.call("SendSms", payload)
        error = data.get("Error")
        if isinstance(error, dict):
            return self._mapped(str(error.get("Code") or f"http_{status}"))
        statuses = data.get("SendStatusSet")
        if status != 200 or not isinstance(statuses, list) or not statuses:
            return self.result(http_status_class(status), f"http_{status}")
        first = statuses[0] if isinstance(statuses[0], dict) else {}
        code = str(first.get("Code") or "")
        if code == "Ok":
            serial = first.get("SerialNo")
            return SendResult(Outcome.SENT, str(serial) if serial else None, code="Ok")
        return self._mapped(code or "no_code")

    def _mapped(self, code: str) -> SendResult:
        retry_after = _WINDOWS.get(code)
        if code == "FailedOperation.MarketingSendTimeConstraint":
            retry_after = _until_eight(datetime.fromtimestamp(self.clock(), UTC))
        return self.result(ERRORS.classify(code), code, retry_after=retry_after)

    async def query_sms_status(
        self, sms: OutboundSms, provider_message_id: str | None, attempted_at: datetime
    ) -> StatusResult | None:
        """Only reports that already carry a receipt are listed: a message the provider
        took but has no receipt for yet is not listed either, so "not listed" cannot
        prove it was never sent. Found: its state. Not found within RECEIPT_WAIT of the
        attempt: ProviderError (still unknown: the dispatcher asks again after its
        lease). Later: None (unknown for good; the message fails ambiguous_timeout)."""
        begin = int(attempted_at.timestamp()) - 60
        payload = {
            "BeginTime": begin, "EndTime": int(self.clock()) + 60, "Offset": 0, "Limit": 100,
            "PhoneNumber": sms.to, "SmsSdkAppId": self.sdk_app_id,
        }  # fmt: skip
        status, data = await self.call("PullSmsSendStatusByPhoneNumber", payload)
        rows = data.get("PullSmsSendStatusSet")
        if status != 200 or "Error" in data or not isinstance(rows, list):
            raise ProviderError("PullSmsSendStatusByPhoneNumber failed")
        for row in rows:
            if not isinstance(row, dict):
                continue
            serial = row.get("SerialNo")
            if row.get("SessionContext") == sms.message_id or (
                provider_message_id and serial == provider_message_id
            ):
                ok = row.get("ReportStatus") == "SUCCESS"
                state = DeliveryState.DELIVERED if ok else DeliveryState.UNDELIVERED
                return StatusResult(state, str(serial) if serial else provider_message_id)
        if self.clock() - attempted_at.timestamp() < RECEIPT_WAIT:
            raise ProviderError("no receipt yet")
        return None

    def parse_receipts(self, request: CallbackRequest) -> tuple[list[Receipt], CallbackReply]:
        self.check_callback_token(request)
        data = _json(request)
        if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
            raise CallbackMalformed("expected a JSON array of objects")
        out = []
        for item in data:
            report = item.get("report_status")
            if report not in ("SUCCESS", "FAIL") or not item.get("sid"):
                raise CallbackMalformed("report_status and sid are required")
            state = DeliveryState.DELIVERED if report == "SUCCESS" else DeliveryState.UNDELIVERED
            code = str(item.get("errmsg") or "")[:64] or None
            out.append(Receipt(str(item["sid"]), state, code))
        return out, REPLY

    def parse_inbound(self, request: CallbackRequest) -> tuple[list[InboundSms], CallbackReply]:
        self.check_callback_token(request)
        data = _json(request)
        items = data if isinstance(data, list) else [data]
        out = []
        for item in items:
            if not isinstance(item, dict):
                raise CallbackMalformed("expected a JSON object")
            mobile, text = item.get("mobile"), item.get("text")
            if not isinstance(mobile, str) or not isinstance(text, str):
                raise CallbackMalformed("mobile and text are required")
            stamp = item.get("time")
            out.append(
                InboundSms(
                    sender=e164_from(mobile, str(item.get("nationcode") or "") or None),
                    text=text,
                    received_at=datetime.fromtimestamp(stamp, UTC)
                    if isinstance(stamp, int) else None,
                )
            )  # fmt: skip
        return out, REPLY
