"""The promoter agreement (电子协议): versions published by the merchant, accepted by members, and what needs it."""

from __future__ import annotations

from bot.conversation import AGREEMENT_REQUIRED
from tests.conftest import MERCHANT_TOKEN
from tests.console_fixtures import staff_client
from tests.test_applications import APPLICATION, reviewed_shop
from tests.test_miniapp_session import auth, login
from tests.test_posters import ask
from tests.test_withdrawals import promoter, rules, withdraw

MERCHANT = {"Authorization": f"Bearer {MERCHANT_TOKEN}"}


async def publish(server, title: str = "推广员服务协议", body: str = "一、如实宣传……") -> dict:
    response = await server.http.post("/api/merchant/v1/agreements", json={"title": title, "body": body},
                                      headers=MERCHANT)
    assert response.status_code == 201, response.text
    return response.json()


async def accept(server, headers: dict, version: int):
    return await server.http.post("/api/v1/agreement/accept", json={"version": version}, headers=headers)


async def test_versions_count_up_and_list_newest_first_with_their_acceptances(server):
    _, headers = await promoter(server, "reader", 0)
    none_yet = await server.http.get("/api/v1/agreement", headers=headers)
    assert none_yet.status_code == 404 and none_yet.json()["error"]["code"] == "no_agreement"

    first = await publish(server, body="第一版")
    second = await publish(server, title="推广员服务协议（修订）", body="第二版")
    assert (first["version"], second["version"]) == (1, 2)

    shown = (await server.http.get("/api/v1/agreement", headers=headers)).json()
    assert (shown["version"], shown["body"], shown["accepted"]) == (2, "第二版", False)
    accepted = await accept(server, headers, 2)
    assert accepted.status_code == 200 and accepted.json()["version"] == 2
    assert (await accept(server, headers, 2)).status_code == 200  # accepting again is the same acceptance
    assert (await server.http.get("/api/v1/agreement", headers=headers)).json()["accepted"] is True

    listed = (await server.merchant_get("/api/merchant/v1/agreements")).json()
    assert [(v["version"], v["accepted_count"]) for v in listed["items"]] == [(2, 1), (1, 0)]
    paged = (await server.merchant_get("/api/merchant/v1/agreements", limit="1")).json()
    rest = (await server.merchant_get("/api/merchant/v1/agreements", cursor=paged["next_cursor"])).json()
    assert [v["version"] for v in paged["items"] + rest["items"]] == [2, 1]
    assert (await server.runtime.db.agreements.find_one({"_id": 1}))["body"] == "第一版"  # kept as published


async def test_accepting_another_version_than_the_current_is_a_409_and_records_nothing(server):
    _, headers = await promoter(server, "late", 0)
    await publish(server)
    await publish(server)
    old = await accept(server, headers, 1)
    assert old.status_code == 409 and old.json()["error"]["code"] == "agreement_not_current"
    assert old.json()["error"]["field"] == "version"
    future = await accept(server, headers, 3)
    assert future.status_code == 409
    assert await server.runtime.db.agreement_acceptances.count_documents({}) == 0
    for body in ({"version": 0}, {"version": "2"}, {}, {"version": 2, "extra": 1}):
        assert (await server.http.post("/api/v1/agreement/accept", json=body, headers=headers)).status_code == 400


async def test_applying_needs_the_current_version_accepted(server):
    await reviewed_shop(server)
    session = await login(server, "applicant")
    headers = auth(session["token"])
    await publish(server)
    refused = await server.http.post("/api/v1/promoter-application", json=APPLICATION, headers=headers)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "agreement_required"
    assert await server.runtime.db.applications.count_documents({}) == 0

    assert (await accept(server, headers, 1)).status_code == 200
    applied = await server.http.post("/api/v1/promoter-application", json=APPLICATION, headers=headers)
    assert applied.status_code == 201


async def test_sharing_needs_an_acceptance_and_goes_on_under_an_older_one(server):
    _, headers = await promoter(server, "sharer", 0)
    assert (await server.http.get("/api/v1/poster", headers=headers)).status_code == 200  # none published: free
    await publish(server)
    refused = await server.http.get("/api/v1/poster", headers=headers)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "agreement_required"

    await accept(server, headers, 1)
    assert (await server.http.get("/api/v1/poster", headers=headers)).status_code == 200
    await publish(server)
    assert (await server.http.get("/api/v1/poster", headers=headers)).status_code == 200


async def test_a_follower_asking_for_a_poster_in_chat_is_told_to_accept_the_agreement(server):
    await publish(server)
    assert (await ask(server, "o_unsigned")).content == AGREEMENT_REQUIRED


async def test_a_new_version_needs_a_new_acceptance_before_the_next_withdrawal(server):
    await rules(server.runtime)
    session, headers = await promoter(server, "earner", 10_000)
    assert (await withdraw(server, headers, 1_000)).status_code == 201  # none published: no requirement
    await publish(server)
    await accept(server, headers, 1)
    assert (await withdraw(server, headers, 1_000)).status_code == 201

    await publish(server, body="新版本")
    refused = await withdraw(server, headers, 1_000)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "agreement_required"
    assert (await server.runtime.ledger.balances(session["member"]["id"]))["locked_fen"] == 2_000

    await accept(server, headers, 2)
    assert (await withdraw(server, headers, 1_000)).status_code == 201


async def test_publishing_is_for_the_merchant_and_checks_the_text(server):
    refused = await server.http.post("/api/merchant/v1/agreements", json={"title": "协议", "body": "x"})
    assert refused.status_code == 401
    blank = await server.http.post("/api/merchant/v1/agreements", json={"title": "协议", "body": " "},
                                   headers=MERCHANT)
    assert blank.status_code == 400 and blank.json()["error"]["field"] == "body"
    await publish(server)
    audited = await server.runtime.db.audit_log.find_one({"action": "agreement.publish"})
    assert audited["target"] == {"kind": "agreement", "id": "1"}


async def test_the_console_publishes_a_version_and_shows_each_ones_acceptances(server):
    owner = await staff_client(server, "owner")
    _, headers = await promoter(server, "consoler", 0)
    refused = await owner.post("/admin/privacy/agreements", {"title": "推广员协议", "body": ""})
    assert refused.status_code == 400 and 'data-field="body"' in refused.text
    assert await server.runtime.db.agreements.count_documents({}) == 0

    published = await owner.post("/admin/privacy/agreements", {"title": "推广员协议", "body": "第一条……"})
    assert (published.status_code, published.headers["Location"]) == (303, "/admin/privacy?done=published")
    await accept(server, headers, 1)
    page = await owner.get("/admin/privacy")
    assert page.status_code == 200 and '<tr data-version="1">' in page.text and "<td data-accepted>1</td>" in page.text
    operator = await staff_client(server, "operator")
    assert (await operator.get("/admin/privacy")).status_code == 403
