"""Applying to promote, and the merchant's review."""

from __future__ import annotations

from datetime import datetime, timezone

from distribution.binding import BindingSettings, BindSource
from tests.conftest import MERCHANT_TOKEN
from tests.test_miniapp_session import auth, login
from tests.test_relations import add_member

MERCHANT = {"Authorization": f"Bearer {MERCHANT_TOKEN}"}
APPLICATION = {"name": "李雷", "phone": "13900001111", "reason": "我有很多朋友"}


async def reviewed_shop(server) -> None:
    await server.runtime.merchant_settings.put(BindingSettings.from_dict({"upline_eligibility": "reviewed"}))


async def test_apply_review_approve_then_the_promoter_may_be_an_upline(server):
    await reviewed_shop(server)
    session = await login(server, "lilei")
    applied = await server.http.post("/api/v1/promoter-application", json=APPLICATION, headers=auth(session["token"]))
    assert applied.status_code == 201 and applied.json()["status"] == "pending"
    assert "13900001111" not in applied.text

    again = await server.http.post("/api/v1/promoter-application", json=APPLICATION, headers=auth(session["token"]))
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_pending"

    pending = (await server.merchant_get("/api/merchant/v1/applications", status="pending")).json()["items"]
    assert [a["id"] for a in pending] == [applied.json()["id"]]

    buyer = await add_member(server.runtime)
    promoter_id = session["member"]["id"]
    refused = await server.runtime.relations.bind(buyer, promoter_id, BindSource.OA_SCAN, datetime.now(timezone.utc))
    assert refused.reason == "ineligible_upline"

    approved = await server.http.post(f"/api/merchant/v1/applications/{applied.json()['id']}/approve", headers=MERCHANT)
    assert approved.status_code == 200 and approved.json()["status"] == "approved"
    assert (await server.runtime.members.get(promoter_id))["promoter_status"] == "approved"
    told = await server.runtime.db.notifications.find_one({"kind": "application_decided", "member_id": promoter_id})
    assert told["data"]["result"] == "已通过"
    bound = await server.runtime.relations.bind(buyer, promoter_id, BindSource.OA_SCAN, datetime.now(timezone.utc))
    assert bound.bound

    twice = await server.http.post(f"/api/merchant/v1/applications/{applied.json()['id']}/reject", headers=MERCHANT)
    assert twice.status_code == 409 and twice.json()["error"]["code"] == "already_decided"


async def test_rejection_is_recorded_with_its_reason(server):
    await reviewed_shop(server)
    session = await login(server, "hanmeimei")
    applied = (await server.http.post("/api/v1/promoter-application", json=APPLICATION,
                                      headers=auth(session["token"]))).json()
    rejected = await server.http.post(f"/api/merchant/v1/applications/{applied['id']}/reject",
                                      json={"reason": "资料不全"}, headers=MERCHANT)
    assert rejected.json()["status"] == "rejected" and rejected.json()["decision_note"] == "资料不全"
    assert (await server.runtime.members.get(session["member"]["id"]))["promoter_status"] == "rejected"
    # a rejected member may apply again
    again = await server.http.post("/api/v1/promoter-application", json=APPLICATION, headers=auth(session["token"]))
    assert again.status_code == 201


async def test_applications_are_refused_where_no_review_is_needed_and_bad_bodies_are_400(server):
    session = await login(server, "polly")
    headers = auth(session["token"])
    not_needed = await server.http.post("/api/v1/promoter-application", json=APPLICATION, headers=headers)
    assert not_needed.status_code == 409 and not_needed.json()["error"]["code"] == "review_not_required"
    await reviewed_shop(server)
    for body, field in (({**APPLICATION, "phone": "abc"}, "phone"), ({"name": "x", "phone": "13900001111"}, "reason"),
                        ({**APPLICATION, "name": ""}, "name")):
        response = await server.http.post("/api/v1/promoter-application", json=body, headers=headers)
        assert response.status_code == 400 and response.json()["error"]["field"] == field
    assert (await server.http.post("/api/v1/promoter-application", json=APPLICATION)).status_code == 401
    assert (await server.http.post("/api/merchant/v1/applications/nope/approve", headers=MERCHANT)).status_code == 404
    bad_status = await server.merchant_get("/api/merchant/v1/applications", status="maybe")
    assert bad_status.status_code == 400
