"""Twilio Programmable Messaging: Messages API (free text), message fetch for ambiguous
attempts, status callbacks and inbound messages checked with ``X-Twilio-Signature``.
Codes and classes: ``shared/reference/providers.md`` §3, §6."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import aiohttp

from providers.base import (
    CallbackMalformed,
    CallbackRejected,
    CallbackReply,
    CallbackRequest,
    Capabilities,
    DeliveryState,
    InboundSms,
    OutboundSms,
    Outcome,
    ProviderConfigError,
    ProviderError,
    Receipt,
    SendResult,
    StatusResult,
)
from providers.http import ErrorTable, HttpProvider, http_status_class, retry_after_seconds
from providers.http import read_limited as _read
from providers.signing import twilio as twilio_sig

API = "/2010-04-01/Accounts"
_PERM, _SWITCH = Outcome.PERMANENT, Outcome.SWITCH_PROVIDER

ERRORS = ErrorTable(
    codes={
        "20429": Outcome.RETRY,  # "never processed ... always safe to retry"
        "20003": _SWITCH, "20404": _SWITCH, "20005": _SWITCH,  # auth, account
        "21211": _PERM, "21610": _PERM, "21612": _PERM, "21614": _PERM, "21408": _PERM,
        "21606": _SWITCH, "21659": _SWITCH,  # this account's sender cannot send there
    },
    default=_PERM,
)  # fmt: skip
STATES = {
    "delivered": DeliveryState.DELIVERED,
    "read": DeliveryState.DELIVERED,
    "undelivered": DeliveryState.UNDELIVERED,
    "failed": DeliveryState.UNDELIVERED,
    "canceled": DeliveryState.UNDELIVERED,
}
EMPTY_TWIML = CallbackReply(b"<Response/>", "text/xml")


class TwilioProvider(HttpProvider):
    type_name = "twilio"
    options_known = frozenset(
        {"account_sid", "auth_token", "from", "messaging_service_sid", "status_callback",
         "public_url"}
    )  # fmt: skip
    default_endpoint = "https://api.twilio.com"
    capabilities = Capabilities(free_text=True, max_segments=10, status_query=True)

    def __init__(self, name: str, options: Mapping[str, Any], *, base_dir: Path) -> None:
        super().__init__(name, options, base_dir=base_dir)
        self.account_sid = self.options.secret("account_sid")
        self._token = self.options.secret("auth_token")
        self.sender = self.options.optional_text("from")
        self.service_sid = self.options.optional_text("messaging_service_sid")
        if (self.sender is None) == (self.service_sid is None):
            raise ProviderConfigError(
                f"providers.{name}: give exactly one of 'from' and 'messaging_service_sid'"
            )
        self.status_callback = self.options.optional_text("status_callback")
        self.public_url = self.options.optional_text("public_url")
        self._auth = {"Authorization": aiohttp.encode_basic_auth(self.account_sid, self._token)}

    async def _send(self, sms: OutboundSms) -> SendResult:
        form = {"To": sms.to, "Body": sms.body}
        if self.sender:
            form["From"] = self.sender
        else:
            form["MessagingServiceSid"] = self.service_sid or ""
        if self.status_callback:
            form["StatusCallback"] = self.status_callback
        url = self.endpoint.with_path(f"{API}/{self.account_sid}/Messages.json")
        async with self.session.post(url, data=form, headers=self._auth) as response:
            data = _json_object(await _read(response))
            if response.status in (200, 201) and data.get("sid"):
                return SendResult(Outcome.SENT, str(data["sid"]), code=str(data.get("status")))
            code = str(data.get("code") or "")
            retry_after = retry_after_seconds(response.headers)
        if code and code in ERRORS.codes:
            return self.result(ERRORS.classify(code), code, retry_after=retry_after)
        cls = http_status_class(response.status)
        return self.result(cls, code or f"http_{response.status}", retry_after=retry_after)

    async def query_status(
        self, message_id: str, provider_message_id: str | None
    ) -> StatusResult | None:
        """A fetch needs the Message SID: an attempt that never got one cannot be asked
        about (None: unknown)."""
        if not provider_message_id:
            return None
        url = self.endpoint.with_path(
            f"{API}/{self.account_sid}/Messages/{provider_message_id}.json"
        )
        async with self.session.get(url, headers=self._auth) as response:
            data = _json_object(await _read(response))
            if response.status == 404:
                return StatusResult(DeliveryState.NOT_FOUND)
            if response.status != 200:
                raise ProviderError(f"message fetch: http_{response.status}")
        state = STATES.get(str(data.get("status")), DeliveryState.ACCEPTED)
        return StatusResult(state, provider_message_id)

    # -- callbacks ----------------------------------------------------------------------
    def _verified_params(self, request: CallbackRequest) -> dict[str, str]:
        url = request.url
        if self.public_url:  # behind a proxy: the URL Twilio requested
            parts = urlsplit(request.url)
            url = (
                self.public_url.rstrip("/")
                + parts.path
                + (f"?{parts.query}" if parts.query else "")
            )
        try:
            pairs = parse_qsl(request.body.decode("utf-8"), keep_blank_values=True)
        except UnicodeDecodeError:
            raise CallbackRejected("body is not UTF-8") from None
        header = request.headers.get("x-twilio-signature", "")
        if not twilio_sig.validate(self._token, url, pairs, header, body=request.body):
            raise CallbackRejected("bad X-Twilio-Signature")
        if dict(pairs).get("AccountSid", self.account_sid) != self.account_sid:
            raise CallbackRejected("another account")
        return dict(pairs)

    def parse_receipts(self, request: CallbackRequest) -> tuple[list[Receipt], CallbackReply]:
        params = self._verified_params(request)
        sid = params.get("MessageSid") or params.get("SmsSid")
        status = params.get("MessageStatus") or params.get("SmsStatus")
        if not sid or not status:
            raise CallbackMalformed("MessageSid and MessageStatus are required")
        state = STATES.get(status, DeliveryState.ACCEPTED)
        code = params.get("ErrorCode") or status
        return [Receipt(sid, state, code[:64])], CallbackReply()

    def parse_inbound(self, request: CallbackRequest) -> tuple[list[InboundSms], CallbackReply]:
        params = self._verified_params(request)
        sender, text = params.get("From"), params.get("Body")
        if not sender or text is None:
            raise CallbackMalformed("From and Body are required")
        sid = params.get("MessageSid") or params.get("SmsSid")
        return [InboundSms(sender, text, params.get("To"), sid)], EMPTY_TWIML


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        data = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
