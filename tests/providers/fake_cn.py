"""Fake Alibaba Cloud and Tencent Cloud SMS APIs that verify signatures like the real
ones (RPC V2 / ACS3 V3; TC3-HMAC-SHA256) and keep what they accepted, so their status
queries can answer for it."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from providers.signing import aliyun as ali_sig
from providers.signing import tencent as tc3
from providers.signing.common import same, sha256_hex
from tests.providers.fakes import FakeProvider, Reply, new_id

V3_REQUIRED = {"host", "x-acs-action", "x-acs-content-sha256", "x-acs-date",
               "x-acs-signature-nonce", "x-acs-version"}  # fmt: skip


ALI_ID, ALI_SECRET = "ak-id", "ak-secret"
TC_ID, TC_KEY = "AKIDtest", "tc-secret"


def aliyun_error(code: str, status: int = 200, message: str = "error") -> Reply:
    return Reply(status, {"Code": code, "Message": message, "RequestId": new_id("req-")})


class FakeAliyun(FakeProvider):
    def __init__(self, access_key_id: str = ALI_ID, secret: str = ALI_SECRET) -> None:
        super().__init__()
        self.access_key_id, self.secret = access_key_id, secret
        self.nonces: set[str] = set()
        self.send_status = 1  # what QuerySendDetails reports: 1 waiting, 2 failed, 3 ok
        self.records: list[dict[str, str]] = []

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/", self.handle)
        return app

    def _check_v2(self, params: dict[str, str], method: str) -> tuple[str | None, str]:
        given = params.pop("Signature", "")
        if params.get("AccessKeyId") != self.access_key_id:
            return "InvalidAccessKeyId.NotFound", ""
        if params.get("SignatureMethod") != "HMAC-SHA1" or params.get("SignatureVersion") != "1.0":
            return "InvalidParameter", ""
        stamp = datetime.strptime(params.get("Timestamp", ""), "%Y-%m-%dT%H:%M:%SZ")
        if abs(stamp.replace(tzinfo=UTC) - datetime.now(UTC)) > timedelta(minutes=15):
            return "InvalidTimeStamp.Expired", ""
        if not same(ali_sig.v2_signature(self.secret, method, params), given):
            return "SignatureDoesNotMatch", ""
        return self._nonce(params.get("SignatureNonce", "")), params.get("Action", "")

    def _check_v3(self, request: web.Request, body: bytes) -> tuple[str | None, str]:
        auth = ali_sig.parse_v3_authorization(request.headers["Authorization"])
        if auth is None or auth["Credential"] != self.access_key_id:
            return "InvalidAccessKeyId.NotFound", ""
        names = auth["SignedHeaders"].split(";")
        if not set(names) >= V3_REQUIRED or request.headers.get(
            "x-acs-content-sha256"
        ) != sha256_hex(body):
            return "SignatureDoesNotMatch", ""
        headers = {n: request.headers[n] for n in names}
        expected = ali_sig.v3_authorization(
            self.access_key_id, self.secret, request.method, request.path, dict(request.query),
            headers, sha256_hex(body),
        )  # fmt: skip
        if not same(expected, request.headers["Authorization"]):
            return "SignatureDoesNotMatch", ""
        return self._nonce(request.headers["x-acs-signature-nonce"]), request.headers[
            "x-acs-action"
        ]

    def _nonce(self, nonce: str) -> str | None:
        if not nonce or nonce in self.nonces:
            return "SignatureNonceUsed"
        self.nonces.add(nonce)
        return None

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        params = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
        if "Authorization" in request.headers:
            error, action = self._check_v3(request, body)
        else:
            error, action = self._check_v2(params, request.method)
        if error is not None:
            self.rejected.append(error)
            return aliyun_error(error, 403 if error == "SignatureDoesNotMatch" else 400).response()
        if action == "QuerySendDetails":
            return self._query(params)
        if action != "SendSms" or not {"PhoneNumbers", "SignName", "TemplateCode"} <= set(params):
            return aliyun_error("MissingParameter", 400).response()
        self.received.append(params)

        biz_id = f"{int(time.time() * 1000)}{new_id()}^0"

        def take() -> None:
            self.records.append({"phone": params["PhoneNumbers"], "out_id": params.get("OutId", ""),
                                 "biz_id": biz_id})  # fmt: skip

        def success() -> web.Response:
            return web.json_response(
                {"Code": "OK", "Message": "OK", "BizId": biz_id, "RequestId": new_id("req-")}
            )

        return await self.answer(success, take)

    def _query(self, params: dict[str, str]) -> web.Response:
        rows = [
            {"PhoneNum": r["phone"], "SendStatus": self.send_status, "OutId": r["out_id"],
             "ErrCode": "DELIVERED", "TemplateCode": "SMS_1"}
            for r in self.records
            if r["phone"] == params.get("PhoneNumber")
            and params.get("BizId") in (None, r["biz_id"])
        ]  # fmt: skip
        return web.json_response(
            {
                "Code": "OK",
                "Message": "OK",
                "RequestId": new_id("req-"),
                "TotalCount": len(rows),
                "SmsSendDetailDTOs": {"SmsSendDetailDTO": rows},
            }
        )


def tencent_error(code: str, status: int = 200) -> Reply:
    return Reply(status, {"Response": {"Error": {"Code": code, "Message": "error"},
                                       "RequestId": new_id("req-")}})  # fmt: skip


def tencent_number_error(code: str) -> Reply:
    row = {"SerialNo": "", "PhoneNumber": "+8613812345678", "Fee": 0, "Code": code,
           "Message": "failed", "IsoCode": "CN"}  # fmt: skip
    return Reply(200, {"Response": {"SendStatusSet": [row], "RequestId": new_id("req-")}})


class FakeTencent(FakeProvider):
    def __init__(self, secret_id: str = TC_ID, secret_key: str = TC_KEY) -> None:
        super().__init__()
        self.secret_id, self.secret_key = secret_id, secret_key
        self.records: list[dict[str, Any]] = []
        self.report_status: str | None = None  # set: PullSmsSendStatus lists the records

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/", self.handle)
        return app

    def _check(self, request: web.Request, body: bytes) -> str | None:
        auth = tc3.parse_authorization(request.headers.get("Authorization", ""))
        stamp = request.headers.get("X-TC-Timestamp", "")
        if auth is None or not stamp.isdigit():
            return "AuthFailure.SignatureFailure"
        secret_id, _, scope = auth["Credential"].partition("/")
        if secret_id != self.secret_id:
            return "AuthFailure.SecretIdNotFound"
        if abs(int(stamp) - time.time()) > 300:
            return "AuthFailure.SignatureExpire"
        if scope != f"{tc3.credential_date(int(stamp))}/sms/tc3_request":
            return "AuthFailure.SignatureFailure"
        names = auth["SignedHeaders"].split(";")
        if not {"content-type", "host"} <= set(names):
            return "AuthFailure.SignatureFailure"
        req = tc3.Tc3Request(request.method, request.path, request.query_string,
                             {n: request.headers[n] for n in names}, body)  # fmt: skip
        if not same(tc3.signature(self.secret_key, req, int(stamp), "sms"), auth["Signature"]):
            return "AuthFailure.SignatureFailure"
        return None

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        error = self._check(request, body)
        if error is not None:
            self.rejected.append(error)
            return tencent_error(error).response()
        payload = json.loads(body)
        action = request.headers.get("X-TC-Action")
        if action == "PullSmsSendStatusByPhoneNumber":
            return self._pull(payload)
        if action != "SendSms" or not {"PhoneNumberSet", "SmsSdkAppId", "TemplateId"} <= set(
            payload
        ):
            return tencent_error("MissingParameter").response()
        self.received.append(payload)

        serial, phone = f"5000:{new_id()}", payload["PhoneNumberSet"][0]

        def take() -> None:
            self.records.append({"serial": serial, "phone": phone,
                                 "context": payload.get("SessionContext", "")})  # fmt: skip

        def success() -> web.Response:
            row = {"SerialNo": serial, "PhoneNumber": phone, "Fee": 1, "Code": "Ok",
                   "Message": "send success", "SessionContext": payload.get("SessionContext"),
                   "IsoCode": "CN"}  # fmt: skip
            return web.json_response({"Response": {"SendStatusSet": [row], "RequestId": new_id()}})

        return await self.answer(success, take)

    def _pull(self, payload: dict[str, Any]) -> web.Response:
        rows = [
            {"SerialNo": r["serial"], "PhoneNumber": r["phone"], "CountryCode": "86",
             "ReportStatus": self.report_status, "Description": "", "SessionContext": r["context"],
             "UserReceiveTime": int(time.time())}
            for r in self.records
            if self.report_status and r["phone"] == payload.get("PhoneNumber")
        ]  # fmt: skip
        return web.json_response(
            {"Response": {"PullSmsSendStatusSet": rows, "RequestId": new_id()}}
        )
