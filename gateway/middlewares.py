"""Middlewares, in order: request id -> access log + metrics -> problem rendering.
Authentication and body limits are applied by the handlers' helpers
(``gateway.handlers``), since some routes are public."""

from __future__ import annotations

import json
import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from gateway.appkeys import METRICS
from gateway.errors import MethodNotAllowed, NotFound, PayloadTooLarge, Problem
from gateway.logs import message_id, request_id

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
log = logging.getLogger("lendsms.http")
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
PROBLEM_JSON = "application/problem+json"


def problem_response(problem: Problem) -> web.Response:
    response = web.Response(
        status=problem.status,
        text=json.dumps(problem.body(), ensure_ascii=False),
        content_type=PROBLEM_JSON,
        charset="utf-8",
    )
    for name, value in problem.headers.items():
        response.headers[name] = value
    return response


def _route_label(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return "unmatched" if resource is None else resource.canonical  # 404/405 have none


@web.middleware
async def request_context(request: web.Request, handler: Handler) -> web.StreamResponse:
    incoming = request.headers.get("X-Request-Id", "")
    rid = incoming if _REQUEST_ID.fullmatch(incoming) else secrets.token_hex(8)
    rid_token, mid_token = request_id.set(rid), message_id.set(None)
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        response.headers["X-Request-Id"] = rid
        return response
    finally:
        duration = time.perf_counter() - started
        route = _route_label(request)
        request.app[METRICS].observe_http(route, request.method, status, duration)
        if log.isEnabledFor(logging.INFO):  # no record built while the level is off
            log.info(
                "request",
                extra={
                    "method": request.method,
                    "route": route,
                    "status": status,
                    "duration_ms": round(duration * 1000, 3),
                },
            )
        request_id.reset(rid_token)
        message_id.reset(mid_token)


@web.middleware
async def problems(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except Problem as problem:
        response = problem_response(problem)
    except web.HTTPRequestEntityTooLarge:
        response = problem_response(PayloadTooLarge("the body is larger than the limit"))
    except web.HTTPNotFound:
        response = problem_response(NotFound("no such resource"))
    except web.HTTPMethodNotAllowed as exc:
        response = problem_response(MethodNotAllowed())
        response.headers["Allow"] = ",".join(sorted(exc.allowed_methods))
    except web.HTTPException:
        raise
    except Exception:
        log.exception("unhandled error")
        response = problem_response(Problem("an internal error occurred"))
    _security_headers(request, response)
    return response


def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers["Server"] = "lendsms"
    if request.path.startswith("/v1/"):
        response.headers.setdefault("Cache-Control", "no-store")
