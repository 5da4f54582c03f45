"""Merchant API over relations and binding settings."""

from __future__ import annotations

from distribution.binding import BindSource
from tests.conftest import MERCHANT_TOKEN
from tests.test_relations import NOW, add_chain, add_member

AUTH = {"Authorization": f"Bearer {MERCHANT_TOKEN}"}


async def test_team_pages_newest_first_at_depth_one_and_all(server):
    runtime = server.runtime
    chain = await add_chain(runtime, 2)  # root <- m1 <- m2
    root = chain[0]["_id"]
    for _ in range(4):
        buyer = await add_member(runtime)
        await runtime.relations.bind(buyer, root, BindSource.OA_SCAN, NOW)

    seen, cursor = [], None
    while True:
        params = {"depth": "1", "limit": "2", **({"cursor": cursor} if cursor else {})}
        page = (await server.merchant_get(f"/api/merchant/v1/members/{root}/team", **params)).json()
        seen += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == 5 and all(m["upline_id"] == root for m in seen)
    assert [m["bound_at"] for m in seen] == sorted((m["bound_at"] for m in seen), reverse=True)
    assert len({m["id"] for m in seen}) == 5

    everyone = (await server.merchant_get(f"/api/merchant/v1/members/{root}/team", depth="all", limit="100")).json()
    assert len(everyone["items"]) == 6 and everyone["next_cursor"] is None


async def test_team_rejects_bad_parameters(server):
    root = await add_member(server.runtime)
    for params in ({"depth": "2"}, {"limit": "0"}, {"limit": "1000"}, {"cursor": "%%%"}, {"cursor": "YQ=="}):
        response = await server.merchant_get(f"/api/merchant/v1/members/{root['_id']}/team", **params)
        assert response.status_code == 400, params
        assert response.json()["error"]["field"] in params
    assert (await server.merchant_get("/api/merchant/v1/members/nobody/team")).status_code == 404


async def test_admin_rebind_is_audited_and_refusals_are_409(server):
    runtime = server.runtime
    chain = await add_chain(runtime, 1)
    other = await add_member(runtime)
    path = f"/api/merchant/v1/members/{chain[1]['_id']}/upline"
    missing_reason = await server.http.post(path, json={"upline_id": other["_id"]}, headers=AUTH)
    assert missing_reason.status_code == 400 and missing_reason.json()["error"]["field"] == "reason"
    bad_id = await server.http.post(path, json={"upline_id": "x", "reason": "r"}, headers=AUTH)
    assert bad_id.status_code == 400 and bad_id.json()["error"]["field"] == "upline_id"
    assert (await server.http.post(path, content=b"{nope", headers=AUTH)).status_code == 400
    assert (await server.http.post(path, json=[1], headers=AUTH)).status_code == 400

    moved = await server.http.post(path, json={"upline_id": other["_id"], "reason": "ticket 42"}, headers=AUTH)
    assert moved.status_code == 200 and moved.json()["upline_id"] == other["_id"]
    cycle = await server.http.post(f"/api/merchant/v1/members/{other['_id']}/upline",
                                   json={"upline_id": chain[1]["_id"], "reason": "oops"}, headers=AUTH)
    assert cycle.status_code == 409 and cycle.json()["error"]["code"] == "cycle"

    log = (await server.merchant_get(f"/api/merchant/v1/members/{chain[1]['_id']}/binds")).json()["items"]
    assert [(e["source"], e["result"]) for e in log] == [("admin", "bound"), ("oa_scan", "bound")]
    assert log[0]["note"] == "ticket 42" and log[0]["previous_upline_id"] == chain[0]["_id"]


async def test_freeze_and_unfreeze(server):
    promoter, buyer = await add_member(server.runtime), await add_member(server.runtime)
    frozen = await server.http.post(f"/api/merchant/v1/members/{promoter['_id']}/freeze", headers=AUTH)
    assert frozen.json()["frozen"] is True
    refused = await server.http.post(f"/api/merchant/v1/members/{buyer['_id']}/upline",
                                     json={"upline_id": promoter["_id"], "reason": "r"}, headers=AUTH)
    assert refused.json()["error"]["code"] == "frozen_upline"
    thawed = await server.http.post(f"/api/merchant/v1/members/{promoter['_id']}/unfreeze", headers=AUTH)
    assert thawed.json()["frozen"] is False
    assert (await server.http.post("/api/merchant/v1/members/nobody/freeze", headers=AUTH)).status_code == 404


async def test_binding_settings_round_trip_and_validation(server):
    path = "/api/merchant/v1/settings/binding"
    defaults = (await server.merchant_get(path)).json()
    assert defaults["bind_mode"] == "first_bind" and defaults["upline_eligibility"] == "everyone"
    stored = await server.http.put(path, json={"bind_mode": "expiring", "bind_expiry_days": 14}, headers=AUTH)
    assert stored.status_code == 200 and stored.json()["bind_expiry_days"] == 14
    assert (await server.merchant_get(path)).json()["bind_mode"] == "expiring"
    for body, field in (({"bind_mode": "sometimes"}, "bind_mode"), ({"bind_expiry_days": 0}, "bind_expiry_days"),
                        ({"surprise": 1}, "surprise"), ({"spend_threshold_fen": 1.5}, "spend_threshold_fen")):
        response = await server.http.put(path, json=body, headers=AUTH)
        assert response.status_code == 400 and response.json()["error"]["field"] == field
    assert (await server.merchant_get("/api/merchant/v1/settings/nothing")).status_code == 404
