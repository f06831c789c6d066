"""Alibaba Cloud SMS (dysmsapi 2017-05-25): SendSms with an approved template,
QuerySendDetails for ambiguous attempts, SmsReport / SmsUp HTTP batch pushes.

Signature ``v2`` (RPC, HMAC-SHA1, form body) or ``v3`` (ACS3-HMAC-SHA256 headers,
form body). Parameters always travel in the body, never in the URL, so numbers do not
land in proxy logs. Codes and classes: ``shared/reference/providers.md`` §1.4-1.5, §6.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

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
from providers.signing import aliyun as sign
from providers.signing.common import sha256_hex
from providers.sms_fields import cn_national, digits_only, e164_from, signature_in

VERSION = "2017-05-25"
CHINA = timezone(timedelta(hours=8))
FORM = "application/x-www-form-urlencoded"
_SWITCH, _PERM, _RETRY = Outcome.SWITCH_PROVIDER, Outcome.PERMANENT, Outcome.RETRY

ERRORS = ErrorTable(
    codes={
        # gateway (POP) errors
        "Throttling": _RETRY, "Throttling.User": _RETRY, "Throttling.Api": _RETRY,
        "ServiceUnavailable": _RETRY, "InternalError": AMBIGUOUS,
        "SignatureDoesNotMatch": _SWITCH, "InvalidAccessKeyId.NotFound": _SWITCH,
        "InvalidAccessKeyId.Inactive": _SWITCH, "Forbidden": _SWITCH,
        "Forbidden.RiskControl": _SWITCH, "Forbidden.UserVerification": _SWITCH,
        "MissingParameter": _PERM, "InvalidParameter": _PERM,
        "UnsupportedOperation": _PERM, "NoSuchVersion": _PERM,
        # SMS errors
        "isp.SYSTEM_ERROR": AMBIGUOUS,
        "isv.BUSINESS_LIMIT_CONTROL": Outcome.RETRY_LATER,
        "isv.DAY_LIMIT_CONTROL": _SWITCH, "isv.MONTH_LIMIT_CONTROL": _SWITCH,
        "isv.AMOUNT_NOT_ENOUGH": _SWITCH, "isv.OUT_OF_SERVICE": _SWITCH,
        "isp.RAM_PERMISSION_DENY": _SWITCH, "isv.ACCOUNT_NOT_EXISTS": _SWITCH,
        "isv.ACCOUNT_ABNORMAL": _SWITCH, "isv.PRODUCT_UN_SUBSCRIPT": _SWITCH,
        "isv.PRODUCT_UNSUBSCRIBE": _SWITCH, "isv.DENY_IP_RANGE": _SWITCH,
        # this provider's template or signature is not usable: another provider's may be
        "isv.SMS_TEMPLATE_ILLEGAL": _SWITCH, "isv.SMS_SIGNATURE_ILLEGAL": _SWITCH,
        "isv.SMS_SIGNATURE_SCENE_ILLEGAL": _SWITCH, "isv.SIGN_STATE_ILLEGAL": _SWITCH,
        "isv.MOBILE_NUMBER_ILLEGAL": _PERM, "isv.MOBILE_COUNT_OVER_LIMIT": _PERM,
        "isv.BLACK_KEY_CONTROL_LIMIT": _PERM, "isv.SMS_CONTENT_ILLEGAL": _PERM,
        "isv.TEMPLATE_MISSING_PARAMETERS": _PERM, "isv.INVALID_JSON_PARAM": _PERM,
        "isv.PARAM_LENGTH_LIMIT": _PERM, "isv.PARAM_NOT_SUPPORT_URL": _PERM,
        "isv.INVALID_PARAMETERS": _PERM,
    },
    default=_PERM,
)  # fmt: skip
_LIMIT_WINDOWS = (("分钟", 60.0), ("小时", 3600.0), ("天", 86400.0))
REPLY = CallbackReply(
    json.dumps({"code": 0, "msg": "接收成功"}, ensure_ascii=False).encode("utf-8"),
    "application/json",
)


def _retry_after(code: str, message: str) -> float | None:
    if code != "isv.BUSINESS_LIMIT_CONTROL":
        return None
    return next((seconds for word, seconds in _LIMIT_WINDOWS if word in message), 60.0)


def _json_array(request: CallbackRequest) -> list[Mapping[str, Any]]:
    try:
        data = json.loads(request.body)
    except ValueError:
        raise CallbackMalformed("not JSON") from None
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise CallbackMalformed("expected a JSON array of objects")
    return data


class AliyunProvider(HttpProvider):
    type_name = "aliyun"
    options_known = frozenset(
        {"access_key_id", "access_key_secret", "region", "signature", "sign_name"}
    )
    default_endpoint = "https://dysmsapi.aliyuncs.com"
    capabilities = Capabilities(free_text=False, max_segments=10, status_query=True)

    def __init__(self, name: str, options: Mapping[str, Any], *, base_dir: Path) -> None:
        super().__init__(name, options, base_dir=base_dir)
        self.access_key_id = self.options.secret("access_key_id")
        self._secret = self.options.secret("access_key_secret")
        self.region = self.options.text("region", "cn-hangzhou")
        self.scheme = self.options.choice("signature", "v2", ("v2", "v3"))
        self.sign_name = self.options.optional_text("sign_name")
        self.now: Callable[[], datetime] = lambda: datetime.now(UTC)

    # -- the API call -------------------------------------------------------------------
    async def call(self, action: str, params: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
        """POST one RPC action; ``(HTTP status, JSON body or {})``."""
        stamp = self.now().strftime("%Y-%m-%dT%H:%M:%SZ")
        nonce = uuid.uuid4().hex
        url = self.endpoint.with_path("/")
        headers = {"Content-Type": FORM, "Host": host_header(url)}
        if self.scheme == "v2":
            fields = {
                **sign.v2_common_params(self.access_key_id, nonce=nonce, timestamp=stamp),
                "Action": action, "Version": VERSION, "RegionId": self.region, **params,
            }  # fmt: skip
            body = urlencode(sign.v2_sign(fields, access_key_secret=self._secret)).encode()
        else:
            body = urlencode({"RegionId": self.region, **params}).encode()
            headers.update({
                "x-acs-action": action, "x-acs-version": VERSION, "x-acs-date": stamp,
                "x-acs-signature-nonce": nonce, "x-acs-content-sha256": sha256_hex(body),
            })  # fmt: skip
            signed = {k.lower(): v for k, v in headers.items()}
            headers["Authorization"] = sign.v3_authorization(
                self.access_key_id, self._secret, "POST", "/", {}, signed, sha256_hex(body)
            )
        async with self.session.post(url, data=body, headers=headers) as response:
            raw = await _read(response)
            try:
                data = json.loads(raw) if raw else {}
            except ValueError:
                data = {}
            return response.status, data if isinstance(data, dict) else {}

    async def _send(self, sms: OutboundSms) -> SendResult:
        sign_name = self.sign_name or signature_in(sms.body)
        if not sms.template_code:
            return SendResult(Outcome.SWITCH_PROVIDER, code="no_template_code")
        if sign_name is None:
            return SendResult(Outcome.SWITCH_PROVIDER, code="no_sign_name")
        params = {
            "PhoneNumbers": cn_national(sms.to) or digits_only(sms.to),
            "SignName": sign_name,
            "TemplateCode": sms.template_code,
            "OutId": sms.message_id,
        }
        if sms.params:
            params["TemplateParam"] = json.dumps(dict(sms.params), ensure_ascii=False)
        status, data = await self.call("SendSms", params)
        code = str(data.get("Code") or "")
        if status == 200 and code == "OK":
            biz_id = data.get("BizId")
            return SendResult(Outcome.SENT, str(biz_id) if biz_id else None, code="OK")
        if not code:
            return self.result(http_status_class(status), f"http_{status}")
        cls = ERRORS.classify(code) if code in ERRORS.codes or status < 500 else AMBIGUOUS
        return self.result(cls, code, retry_after=_retry_after(code, str(data.get("Message"))))

    # -- status query -------------------------------------------------------------------
    async def query_sms_status(
        self, sms: OutboundSms, provider_message_id: str | None, attempted_at: datetime
    ) -> StatusResult | None:
        params = {
            "PhoneNumber": cn_national(sms.to) or digits_only(sms.to),
            "SendDate": attempted_at.astimezone(CHINA).strftime("%Y%m%d"),
            "PageSize": "50",
            "CurrentPage": "1",
        }
        if provider_message_id:
            params["BizId"] = provider_message_id
        status, data = await self.call("QuerySendDetails", params)
        if status != 200 or data.get("Code") != "OK":
            raise ProviderError(f"QuerySendDetails: {data.get('Code') or status}")
        holder = data.get("SmsSendDetailDTOs") or {}
        rows = holder.get("SmsSendDetailDTO", []) if isinstance(holder, dict) else holder
        for row in rows if isinstance(rows, list) else []:
            if not isinstance(row, dict) or row.get("OutId") != sms.message_id:
                continue
            state = {3: DeliveryState.DELIVERED, 2: DeliveryState.UNDELIVERED}.get(
                int(row.get("SendStatus") or 1), DeliveryState.ACCEPTED
            )
            return StatusResult(state, provider_message_id)
        return StatusResult(DeliveryState.NOT_FOUND)

    # -- pushes -------------------------------------------------------------------------
    def parse_receipts(self, request: CallbackRequest) -> tuple[list[Receipt], CallbackReply]:
        self.check_callback_token(request)
        out = []
        for item in _json_array(request):
            success = item.get("success")
            if not isinstance(success, bool):
                raise CallbackMalformed("success must be true or false")
            state = DeliveryState.DELIVERED if success else DeliveryState.UNDELIVERED
            biz_id, out_id = item.get("biz_id"), item.get("out_id")
            out.append(
                Receipt(
                    provider_message_id=str(biz_id) if biz_id else None,
                    state=state,
                    code=str(item.get("err_code") or "")[:64] or None,
                    message_id=str(out_id) if out_id else None,
                )
            )
        return out, REPLY

    def parse_inbound(self, request: CallbackRequest) -> tuple[list[InboundSms], CallbackReply]:
        self.check_callback_token(request)
        out = []
        for item in _json_array(request):
            phone, content = item.get("phone_number"), item.get("content")
            if not isinstance(phone, str) or not isinstance(content, str):
                raise CallbackMalformed("phone_number and content are required")
            sequence = item.get("sequence_id")
            out.append(
                InboundSms(
                    sender=e164_from(phone),
                    text=content,
                    recipient=str(item.get("dest_code") or "") or None,
                    provider_message_id=None if sequence is None else str(sequence),
                )
            )
        return out, REPLY
