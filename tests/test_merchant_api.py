"""The merchant API's first doors, /healthz, /metrics and /openapi.json."""

import asyncio

from bot.app import API_ROUTES
from bot.simulate import event_xml
from web.openapi import openapi_path
from tests.conftest import MERCHANT_TOKEN, start_server


async def test_merchant_api_needs_the_bearer_token(server):
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {MERCHANT_TOKEN}"}):
        response = await server.http.get("/api/merchant/v1/members", params={"openid": "x"}, headers=headers)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "unauthorized"


async def test_member_by_openid_and_by_id(server):
    await server.push(event_xml("o_merchant", "subscribe"))
    response = await server.merchant_get("/api/merchant/v1/members", openid="o_merchant")
    assert response.status_code == 200
    member = response.json()
    assert member["oa_openid"] == "o_merchant" and member["subscribed"] is True
    assert member["upline_id"] is None and member["ancestor_ids"] == [] and member["direct_count"] == 0

    by_id = await server.merchant_get(f"/api/merchant/v1/members/{member['id']}")
    assert by_id.json() == member


async def test_unknown_members_and_paths_are_json_404s(server):
    for path, params in (("/api/merchant/v1/members", {"openid": "nobody"}),
                         ("/api/merchant/v1/members/0123456789abcdef01234567", {}),
                         ("/api/merchant/v1/nothing-here", {})):
        response = await server.merchant_get(path, **params)
        assert response.status_code == 404 and response.json()["error"]["message"]
    nobody_yet = await server.merchant_get("/api/merchant/v1/members")
    assert nobody_yet.status_code == 200 and nobody_yet.json() == {"items": [], "next_cursor": None}


async def test_openapi_describes_every_api_route(server):
    document = (await server.http.get("/openapi.json")).json()
    assert document["openapi"].startswith("3.")
    assert set(document["paths"]) == {openapi_path(pattern) for pattern, _ in API_ROUTES}
    assert "/api/merchant/v1/members/{member_id}" in document["paths"]
    assert document["components"]["securitySchemes"]["merchantToken"]["scheme"] == "bearer"


async def test_healthz_reports_each_store(server, make_settings):
    await server.runtime.queue.beat("a-worker")  # a worker works (tests/test_worker_liveness.py: when none does)
    response = await server.http.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"mongo": "ok", "redis": "ok", "worker": "ok"})

    async for broken in start_server(make_settings(REDIS_URL="redis://127.0.0.1:1/0")):
        response = await broken.http.get("/healthz")
        assert response.status_code == 503
        assert response.json()["mongo"] == "ok" and response.json()["redis"].startswith("down")
        assert response.json()["worker"].startswith("down")


async def test_metrics_count_requests_and_pushes(server):
    await asyncio.gather(server.push(event_xml("o_m", "subscribe")), server.http.get("/healthz"))
    text = (await server.http.get("/metrics")).text
    assert 'http_requests_total{method="POST",route="WeChatPushHandler",status="200"} 1.0' in text
    assert 'wechat_push_seconds_count{kind="subscribe"} 1.0' in text
