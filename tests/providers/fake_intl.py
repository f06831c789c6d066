"""Fake Twilio Messages API, AWS SNS / End User Messaging SMS v2 and a webhook receiver,
each checking credentials or signatures the way the real service does."""

from __future__ import annotations

import base64
import hmac
import json
import time
from datetime import UTC, datetime
from urllib.parse import parse_qsl

from aiohttp import web

from providers.signing import aws as sigv4
from providers.signing import webhook as lendsms_sig
from providers.signing.common import same
from tests.providers.fakes import FakeProvider, Reply, new_id

TW_SID, TW_TOKEN = "AC0123456789abcdef0123456789abcdef", "tw-token"
AWS_ID, AWS_SECRET = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
HOOK_SECRET = "hook-secret"


def twilio_error(code: int, status: int = 400) -> Reply:
    return Reply(status, {"code": code, "message": "error", "status": status,
                          "more_info": f"https://www.twilio.com/docs/errors/{code}"})  # fmt: skip


class FakeTwilio(FakeProvider):
    def __init__(self, sid: str = TW_SID, token: str = TW_TOKEN) -> None:
        super().__init__()
        self.sid, self.token = sid, token
        self.statuses: dict[str, str] = {}

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/2010-04-01/Accounts/{sid}/Messages.json", self.create)
        app.router.add_get("/2010-04-01/Accounts/{sid}/Messages/{msid}.json", self.fetch)
        return app

    def _authorized(self, request: web.Request) -> bool:
        expected = "Basic " + base64.b64encode(f"{self.sid}:{self.token}".encode()).decode()
        given = request.headers.get("Authorization", "")
        return hmac.compare_digest(given, expected) and request.match_info["sid"] == self.sid

    async def create(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            self.rejected.append("20003")
            return twilio_error(20003, 401).response()
        form = dict(parse_qsl((await request.read()).decode(), keep_blank_values=True))
        if (
            not form.get("To")
            or "Body" not in form
            or not (form.get("From") or form.get("MessagingServiceSid"))
        ):
            return twilio_error(21604).response()
        self.received.append(form)
        sid = "SM" + new_id() + new_id()

        def take() -> None:
            self.statuses[sid] = "queued"

        def success() -> web.Response:
            return web.json_response({"sid": sid, "status": "queued", "to": form["To"],
                                      "num_segments": "1"}, status=201)  # fmt: skip

        return await self.answer(success, take)

    async def fetch(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return twilio_error(20003, 401).response()
        status = self.statuses.get(request.match_info["msid"])
        if status is None:
            return twilio_error(20404, 404).response()
        return web.json_response({"sid": request.match_info["msid"], "status": status})


def sns_error(code: str, status: int = 400) -> Reply:
    xml = (
        f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code>"
        "<Message>error</Message></Error><RequestId>r-1</RequestId></ErrorResponse>"
    )
    return Reply(status, xml, content_type="text/xml")


def eum_error(kind: str, status: int = 400) -> Reply:
    return Reply(status, {"__type": f"com.amazonaws#{kind}", "message": "error"},
                 content_type="application/x-amz-json-1.0")  # fmt: skip


class FakeAws(FakeProvider):
    def __init__(self, region: str = "us-east-1") -> None:
        super().__init__()
        self.region = region

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/", self.handle)
        return app

    def _check(self, request: web.Request, body: bytes, service: str) -> str | None:
        auth = sigv4.parse_authorization(request.headers.get("Authorization", ""))
        amz_date = request.headers.get("X-Amz-Date", "")
        if auth is None or not amz_date:
            return "MissingAuthenticationToken"
        key_id, _, scope = auth["Credential"].partition("/")
        if key_id != AWS_ID:
            return "InvalidClientTokenId"
        stamp = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        if abs(stamp.timestamp() - time.time()) > 300:
            return "SignatureDoesNotMatch"
        if scope != sigv4.credential_scope(amz_date, self.region, service):
            return "SignatureDoesNotMatch"
        names = auth["SignedHeaders"].split(";")
        if not {"host", "x-amz-date"} <= set(names):
            return "SignatureDoesNotMatch"
        req = sigv4.SigV4Request(request.method, request.path, request.query_string,
                                 {n: request.headers[n] for n in names}, body)  # fmt: skip
        expected = sigv4.signature(AWS_SECRET, req, amz_date, self.region, service)
        return None if same(expected, auth["Signature"]) else "SignatureDoesNotMatch"

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        eum = "X-Amz-Target" in request.headers
        error = self._check(request, body, "sms-voice" if eum else "sns")
        if error is not None:
            self.rejected.append(error)
            return (
                eum_error("AccessDeniedException", 403) if eum else sns_error(error, 403)
            ).response()
        message_id = new_id()
        if eum:
            payload = json.loads(body)
            self.received.append(payload)
            return await self.answer(lambda: web.json_response({"MessageId": message_id}))
        form = dict(parse_qsl(body.decode(), keep_blank_values=True))
        self.received.append(form)
        xml = (f"<PublishResponse><PublishResult><MessageId>{message_id}</MessageId>"
               "</PublishResult><ResponseMetadata><RequestId>r-1</RequestId>"
               "</ResponseMetadata></PublishResponse>")  # fmt: skip
        return await self.answer(lambda: web.Response(text=xml, content_type="text/xml"))


class FakeWebhookReceiver(FakeProvider):
    def __init__(self, secret: str = HOOK_SECRET) -> None:
        super().__init__()
        self.secret = secret
        self.headers: list[dict[str, str]] = []

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/sms", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        header = request.headers.get(lendsms_sig.HEADER, "")
        if not lendsms_sig.verify(self.secret, header, body, now=int(time.time())):
            self.rejected.append("signature")
            return web.json_response({"error": "bad signature"}, status=401)
        self.received.append(json.loads(body))
        self.headers.append(dict(request.headers))
        return await self.answer(lambda: web.json_response({"id": "wh-" + new_id()}))
