"""Mini-program login, the unionid join, sessions, and a member's own data."""

from __future__ import annotations

import asyncio

import pytest

from bot.simulate import event_xml
from bot.worker import job_handlers
from distribution.binding import BindSource
from distribution.ledger import commission_frozen, commission_settled
from distribution.scene import promoter_scene
from sandbox.identities import openid_for, unionid_for
from stores.writes import WriteSet, commit
from tests.order_fixtures import item, paid_order
from tests.test_relations import NOW, add_member


def mini_openid(server, user: str) -> str:
    return openid_for(server.runtime.settings.miniapp_app_id, user)


def oa_openid(server, user: str) -> str:
    return openid_for(server.runtime.settings.wechat_app_id, user)


async def login(server, code: str, **extra) -> dict:
    response = await server.http.post("/api/v1/session", json={"code": code, **extra})
    assert response.status_code == 200, response.text
    return response.json()


def auth(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


async def test_login_creates_a_member_and_a_working_token(server):
    session = await login(server, "alice", profile={"nickname": "爱丽丝", "avatar_url": "https://x/a.png"})
    member = await server.runtime.members.store.by_miniapp_openid(mini_openid(server, "alice"))
    assert session["member"]["id"] == member["_id"] and member["unionid"] == unionid_for("alice")
    assert session["member"]["nickname"] == "爱丽丝"
    assert "session_key" not in str(session) and "session_key" not in member
    assert server.runtime.sealer.open(member["session_key_sealed"])  # kept, but only sealed

    me = await server.http.get("/api/v1/me", headers=auth(session["token"]))
    assert me.status_code == 200 and me.json()["id"] == member["_id"]
    assert me.json()["balances"] == {"frozen_fen": 0, "available_fen": 0, "locked_fen": 0}
    again = await login(server, "alice")
    assert again["member"]["id"] == member["_id"]


async def test_login_with_a_bad_code_or_body_is_a_400(server, sandbox):
    invalid = await server.http.post("/api/v1/session", json={"code": "invalid"})
    assert invalid.status_code == 400 and invalid.json()["error"]["code"] == "invalid_code"
    for body, field in (({}, "code"), ({"code": ""}, "code"), ({"code": "a", "profile": {"avatar_url": "javascript:x"}},
                        "profile.avatar_url"), ({"code": "a", "extra": 1}, "extra"), ({"code": "a" * 200}, "code")):
        response = await server.http.post("/api/v1/session", json=body)
        assert response.status_code == 400 and response.json()["error"]["field"] == field, body
    assert (await server.http.post("/api/v1/session", content=b"{")).status_code == 400
    assert await server.runtime.db.members.count_documents({}) == 0


async def test_logout_revokes_the_token_and_forged_tokens_are_refused(server):
    session = await login(server, "bob")
    headers = auth(session["token"])
    assert (await server.http.delete("/api/v1/session", headers=headers)).status_code == 204
    assert (await server.http.get("/api/v1/me", headers=headers)).status_code == 401
    for token in ("x", "garbage", session["token"][:-2] + "xx"):
        response = await server.http.get("/api/v1/me", headers=auth(token))
        assert response.status_code == 401 and response.json()["error"]["code"] == "unauthorized"


async def test_login_joins_the_official_account_member_by_unionid(server):
    runtime = server.runtime
    await server.push(event_xml(oa_openid(server, "carol"), "subscribe"))
    await runtime.queue.drain("test", job_handlers(runtime))  # the worker learns carol's unionid
    followed = await runtime.members.by_oa_openid(oa_openid(server, "carol"))
    assert followed["unionid"] == unionid_for("carol")

    session = await login(server, "carol")
    assert session["member"]["id"] == followed["_id"]
    joined = await runtime.members.get(followed["_id"])
    assert joined["miniapp_openid"] == mini_openid(server, "carol")
    assert await runtime.db.members.count_documents({}) == 1


async def test_a_bare_mini_program_member_is_folded_into_the_follower(server):
    runtime = server.runtime
    early = await login(server, "dave")  # uses the mini-program first
    promoter = await add_member(runtime)
    await server.push(event_xml(oa_openid(server, "dave"), "subscribe", f"qrscene_{promoter_scene(promoter['_id'])}"))
    await runtime.queue.drain("test", job_handlers(runtime))
    follower = await runtime.members.by_oa_openid(oa_openid(server, "dave"))
    assert follower["miniapp_openid"] == mini_openid(server, "dave") and follower["upline_id"] == promoter["_id"]
    me = await server.http.get("/api/v1/me", headers=auth(early["token"]))  # the old token follows the fold
    assert me.json()["id"] == follower["_id"]


async def test_two_members_with_histories_are_never_merged(server):
    runtime = server.runtime
    promoter = await add_member(runtime)
    await login(server, "erin", scene=promoter_scene(promoter["_id"]))  # bound on the mini-program
    other = await add_member(runtime)
    await server.push(event_xml(oa_openid(server, "erin"), "subscribe", f"qrscene_{promoter_scene(other['_id'])}"))
    await runtime.queue.drain("test", job_handlers(runtime))
    follower = await runtime.members.by_oa_openid(oa_openid(server, "erin"))
    mini = await runtime.members.store.by_miniapp_openid(mini_openid(server, "erin"))
    assert follower["_id"] != mini["_id"] and follower["unionid_conflict"] == mini["_id"]


async def test_a_member_whose_history_is_a_paid_order_is_never_merged(server):
    runtime = server.runtime
    session = await login(server, "olga")
    await paid_order(runtime, "olga-1", await runtime.members.get(session["member"]["id"]), [item(1_000)])
    promoter = await add_member(runtime)
    await server.push(event_xml(oa_openid(server, "olga"), "subscribe", f"qrscene_{promoter_scene(promoter['_id'])}"))
    await runtime.queue.drain("test", job_handlers(runtime))
    follower = await runtime.members.by_oa_openid(oa_openid(server, "olga"))
    assert follower["_id"] != session["member"]["id"] and follower["unionid_conflict"] == session["member"]["id"]


async def test_a_scene_binds_through_the_relations_service(server):
    runtime = server.runtime
    promoter = await add_member(runtime, nickname="推广小李")
    session = await login(server, "frank", scene=promoter_scene(promoter["_id"]))
    assert session["member"]["upline"] == {"nickname": "推广小李"}
    await runtime.relations.apply_follow_ups()
    entry = await runtime.db.bind_log.find_one({"member_id": session["member"]["id"]})
    assert (entry["result"], entry["source"]) == ("bound", "miniapp_scene")
    # a percent-encoded scene, as wx passes it on, binds too
    other = await add_member(runtime)
    encoded = promoter_scene(other["_id"]).replace(":", "%3A")
    new = await login(server, "grace", scene=encoded)
    assert (await runtime.members.get(new["member"]["id"]))["upline_id"] == other["_id"]


async def test_concurrent_first_logins_make_one_member(server):
    sessions = await asyncio.gather(*(login(server, "heidi") for _ in range(10)))
    assert len({s["member"]["id"] for s in sessions}) == 1
    assert await server.runtime.db.members.count_documents({}) == 1


async def test_profile_changes_and_the_phone_is_sealed_and_masked(server):
    session = await login(server, "ivan")
    headers = auth(session["token"])
    changed = await server.http.patch("/api/v1/me", json={"nickname": "伊万", "phone": "13812345678"}, headers=headers)
    assert changed.status_code == 200
    assert changed.json()["nickname"] == "伊万" and changed.json()["phone"] == "138****5678"
    stored = await server.runtime.members.get(session["member"]["id"])
    assert "13812345678" not in str(stored)
    for body, field in (({"phone": "call me"}, "phone"), ({"nickname": "x" * 40}, "nickname"), ({"grade": "gold"}, "grade")):
        response = await server.http.patch("/api/v1/me", json=body, headers=headers)
        assert response.status_code == 400 and response.json()["error"]["field"] == field
    assert (await server.http.patch("/api/v1/me", json={}, headers=headers)).status_code == 400


@pytest.mark.parametrize("depth", ["1", "2"])
async def test_my_team_shows_only_my_levels_with_masked_names(server, depth):
    runtime = server.runtime
    session = await login(server, "judy")
    me = session["member"]["id"]
    direct = await add_member(runtime, nickname="张三丰")
    await runtime.relations.bind(direct, me, BindSource.OA_SCAN, NOW)
    second = await add_member(runtime, nickname="李四")
    await runtime.relations.bind(second, direct["_id"], BindSource.OA_SCAN, NOW)
    stranger = await add_member(runtime, nickname="王五")

    page = (await server.http.get("/api/v1/team", params={"depth": depth}, headers=auth(session["token"]))).json()
    expected = {"1": (direct, "张**"), "2": (second, "李*")}[depth]
    assert [(m["id"], m["nickname"]) for m in page["items"]] == [(expected[0]["_id"], expected[1])]
    assert stranger["_id"] not in str(page)
    bad = await server.http.get("/api/v1/team", params={"depth": "3"}, headers=auth(session["token"]))
    assert bad.status_code == 400


async def test_login_answers_the_members_own_balances(server):
    first = await login(server, "kate")
    writes = WriteSet()
    writes.ledger(commission_frozen(first["member"]["id"], "c-kate", 2_500)
                  + commission_settled(first["member"]["id"], "c-kate", 2_000), NOW)
    await commit(server.runtime.mongo, server.runtime.db, writes)
    again = await login(server, "kate")
    assert again["member"]["balances"] == {"frozen_fen": 500, "available_fen": 2_000, "locked_fen": 0}
