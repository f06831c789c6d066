"""Reading request bodies with a size limit and a deadline.

aiohttp limits the size (``client_max_size``) but not the time a client may
take to send a body, so a slowloris-style client trickling bytes would hold a
handler forever. Every body read goes through :func:`read_body`."""

from __future__ import annotations

import asyncio

from aiohttp import web

from gateway.appkeys import SETTINGS
from gateway.errors import PayloadTooLarge, RequestTimeout


async def read_body(request: web.Request) -> bytes:
    server = request.app[SETTINGS].server
    limit = server.max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"the body must be at most {limit} bytes")
    try:
        if request.content.is_eof():  # it came with the headers: no wait, so no timer
            return await request.read()
        async with asyncio.timeout(server.body_timeout):
            return await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise PayloadTooLarge(f"the body must be at most {limit} bytes") from None
    except TimeoutError:
        raise RequestTimeout(
            f"the body did not arrive within {server.body_timeout:g} seconds",
            headers={"Connection": "close"},
        ) from None
