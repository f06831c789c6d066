"""/openapi.json describes the routes the service really serves."""

from __future__ import annotations

from typing import Any

from aiohttp import web


async def test_openapi_matches_router(start_gateway: Any) -> None:
    gw = await start_gateway(dispatch=False)
    r = await gw.http.get("/openapi.json")
    assert r.status == 200
    doc = await r.json()
    assert doc["openapi"].startswith("3.1")
    served: set[tuple[str, str]] = set()
    for route in gw.app.router.routes():
        resource = route.resource
        if resource is None or route.method in ("HEAD", "*"):
            continue
        if isinstance(resource, web.StaticResource):
            continue
        if resource.canonical == "/review" or resource.canonical.startswith("/review/"):
            continue  # the reviewers' HTML pages are for people, not part of the API
        served.add((resource.canonical, route.method.lower()))
    documented = {(path, method) for path, item in doc["paths"].items() for method in item}
    assert served == documented


async def test_openapi_lists_every_status_the_send_endpoint_gives(start_gateway: Any) -> None:
    gw = await start_gateway(dispatch=False)
    doc = await (await gw.http.get("/openapi.json")).json()
    responses = doc["paths"]["/v1/messages"]["post"]["responses"]
    for status in ("202", "400", "401", "403", "409", "413", "415", "422", "429", "503"):
        assert status in responses
    send_schema = doc["components"]["schemas"]["SendRequest"]
    assert set(send_schema["required"]) == {"to", "borrower_id", "purpose"}
    assert "recipient_role" in send_schema["properties"]
