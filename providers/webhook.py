"""The generic ``webhook`` provider: an HTTPS POST of each SMS as JSON to an operator's
own sending service, signed ``Lendsms-Signature: t=…,v1=HMAC-SHA256`` with ``secret``.

Request body: ``{"id", "to", "body", "purpose", "client", "template", "template_code",
"params"}`` plus ``Idempotency-Key: <id>``. A 2xx answer is ``sent`` (``{"id": …}`` in
it, when present, is the provider message id); 409 means the receiver already has
the message; 429 and 5xx are retried (502/504 are ambiguous); other 4xx are
permanent. Receipts and replies come back to ``/callbacks/NAME/status|inbound`` signed
the same way: ``{"id", "status": "delivered"|"undelivered"|…, "code"}`` and
``{"from", "to", "text", "id"}``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

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
    Receipt,
    SendResult,
)
from providers.http import HttpProvider, http_status_class, retry_after_seconds
from providers.http import read_limited as _read
from providers.signing import webhook as signature

STATES = {
    "delivered": DeliveryState.DELIVERED,
    "undelivered": DeliveryState.UNDELIVERED,
    "failed": DeliveryState.UNDELIVERED,
}
OK = CallbackReply(b'{"ok": true}', "application/json")


class WebhookProvider(HttpProvider):
    type_name = "webhook"
    options_known = frozenset({"url", "secret", "max_segments"})
    capabilities = Capabilities(free_text=True, max_segments=10, status_query=False)

    def __init__(self, name: str, options: Mapping[str, Any], *, base_dir: Path) -> None:
        super().__init__(name, options, base_dir=base_dir)
        self._secret = self.options.secret("secret")
        segments = int(self.options.number("max_segments", 10, high=100))
        self.capabilities = Capabilities(free_text=True, max_segments=segments)
        self.clock: Callable[[], float] = time.time

    def _default_endpoint(self) -> str | None:
        return self.options.optional_text("url")

    async def _send(self, sms: OutboundSms) -> SendResult:
        body = json.dumps(
            {"id": sms.message_id, "to": sms.to, "body": sms.body, "purpose": sms.purpose,
             "client": sms.client_id, "template": sms.template,
             "template_code": sms.template_code, "params": dict(sms.params)},
            ensure_ascii=False,
        ).encode("utf-8")  # fmt: skip
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": sms.message_id,
            signature.HEADER: signature.sign(self._secret, int(self.clock()), body),
        }
        async with self.session.post(self.endpoint, data=body, headers=headers) as response:
            raw = await _read(response)
            status, retry_after = response.status, retry_after_seconds(response.headers)
        if 200 <= status < 300 or status == 409:
            try:
                data = json.loads(raw) if raw else {}
            except ValueError:
                data = {}
            pmid = data.get("id") if isinstance(data, dict) else None
            code = "duplicate" if status == 409 else "OK"
            return SendResult(Outcome.SENT, str(pmid) if pmid else sms.message_id, code=code)
        return self.result(http_status_class(status), f"http_{status}", retry_after=retry_after)

    def _verified(self, request: CallbackRequest) -> Any:
        header = request.headers.get(signature.HEADER.lower(), "")
        if not signature.verify(self._secret, header, request.body, now=int(self.clock())):
            raise CallbackRejected(f"bad {signature.HEADER}")
        try:
            return json.loads(request.body)
        except ValueError:
            raise CallbackMalformed("not JSON") from None

    def parse_receipts(self, request: CallbackRequest) -> tuple[list[Receipt], CallbackReply]:
        data = self._verified(request)
        items = data if isinstance(data, list) else [data]
        out = []
        for item in items:
            if not isinstance(item, dict) or not item.get("id") or not item.get("status"):
                raise CallbackMalformed("id and status are required")
            state = STATES.get(str(item["status"]), DeliveryState.ACCEPTED)
            code = str(item.get("code") or item["status"])[:64]
            out.append(Receipt(str(item["id"]), state, code))
        return out, OK

    def parse_inbound(self, request: CallbackRequest) -> tuple[list[InboundSms], CallbackReply]:
        data = self._verified(request)
        items = data if isinstance(data, list) else [data]
        out = []
        for item in items:
            if not isinstance(item, dict):
                raise CallbackMalformed("expected objects")
            sender, text = item.get("from"), item.get("text")
            if not isinstance(sender, str) or not isinstance(text, str):
                raise CallbackMalformed("from and text are required")
            to, pmid = item.get("to"), item.get("id")
            out.append(
                InboundSms(sender, text, str(to) if to else None, str(pmid) if pmid else None)
            )
        return out, OK
