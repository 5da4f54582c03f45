"""A member's data rights (个人信息保护法): the export holds every record about them and nobody else's personal
data; once no money is pending, deletion leaves no personal field of theirs in any collection, and the ledger
still verifies."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from bot.simulate import event_xml
from bot.worker import carry_out_deletions
from distribution.binding import BindingSettings
from distribution.ledger import commission_clawback
from distribution.orders import NewOrder
from distribution.scene import promoter_scene
from sandbox.identities import unionid_for
from stores.writes import WriteSet, commit
from tests.conftest import MERCHANT_TOKEN
from tests.console_fixtures import staff_client
from tests.order_fixtures import assert_ledger_clean, at, create_order, drain, item, send_event
from tests.test_agreement import accept, publish
from tests.test_applications import APPLICATION
from tests.test_miniapp_session import auth, login, mini_openid, oa_openid
from tests.test_withdrawals import NOW, credit, rules, withdraw

MERCHANT = {"Authorization": f"Bearer {MERCHANT_TOKEN}"}
NICKNAME = "王小虎Zq"
PHONE = "13912345678"
BUDDY_NICKNAME = "伙伴阿强Xv"
UPLINE_NICKNAME = "上家老李Wk"


def strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, each in value.items():
            yield key
            yield from strings(each)
    elif isinstance(value, (list, tuple)):
        for each in value:
            yield from strings(each)


async def found_anywhere(db, secrets: list[str]) -> list[tuple[str, str, str]]:
    """(collection, document id, secret) for every string of every document of every collection holding one."""
    found = []
    for collection in await db.list_collection_names():
        async for document in db[collection].find({}):
            for text in strings(document):
                found.extend((collection, str(document.get("_id")), secret) for secret in secrets if secret in text)
    return found


async def sealed_texts(runtime) -> list[str]:
    """Every sealed field of every document, opened."""
    opened = []
    for collection in await runtime.db.list_collection_names():
        async for document in runtime.db[collection].find({}):
            opened.extend(runtime.sealer.open(value) for key, value in _fields(document)
                          if key.endswith("_sealed") and isinstance(value, str))
    return opened


def _fields(value: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, each in value.items():
            yield key, each
            yield from _fields(each)
    elif isinstance(value, list):
        for each in value:
            yield from _fields(each)


@dataclass
class History:
    member_id: str
    headers: dict
    secrets: list[str]  # the person's openids, unionid, phone, nickname and avatar URL
    others: list[str]  # other members' nicknames and openids
    first_upline_id: str
    withdrawal_id: str = ""


async def member_with_a_full_history(server, sandbox) -> History:
    """Followed through a promoter's code, used the mini-program, told their phone, re-bound by the merchant,
    brought a member who bought, bought themselves, earned, applied, accepted the agreement and a subscription,
    got notifications and a poster, and withdrew everything."""
    runtime = server.runtime
    upline = await login(server, "uplinelee", profile={"nickname": UPLINE_NICKNAME})
    second = await login(server, "secondupline")
    # Used the mini-program first (a bare member with a nickname), then followed through the upline's code: the
    # bare member is folded into the follower, keeping what it was given.
    early = await login(server, "victim", profile={"nickname": NICKNAME})
    victim_oa = oa_openid(server, "victim")
    await server.push(event_xml(victim_oa, "subscribe", f"qrscene_{promoter_scene(upline['member']['id'])}"))
    await drain(runtime)
    member = await runtime.members.by_oa_openid(victim_oa)
    member_id = member["_id"]
    headers = auth(early["token"])
    avatar = f"{sandbox.base_url}/mmopen/avatar?user=victim"
    changed = await server.http.patch("/api/v1/me", json={"nickname": NICKNAME, "phone": PHONE, "avatar_url": avatar},
                                      headers=headers)
    assert changed.status_code == 200 and changed.json()["id"] == member_id
    moved = await server.http.post(f"/api/merchant/v1/members/{member_id}/upline",
                                   json={"upline_id": second["member"]["id"], "reason": "客户要求"}, headers=MERCHANT)
    assert moved.status_code == 200, moved.text

    buddy = await login(server, "buddy", scene=promoter_scene(member_id), profile={"nickname": BUDDY_NICKNAME})
    await runtime.relations.apply_follow_ups()  # the bind log and the uplines' notices of new members
    await drain(runtime)
    await create_order(runtime, "DR-1", {"_id": buddy["member"]["id"]}, [item(10_000)])
    await runtime.orders.create(NewOrder.from_dict({"order_no": "DR-2", "buyer": {"oa_openid": victim_oa},
                                                    "items": [item(5_000)]}))
    for order_no in ("DR-1", "DR-2"):
        await send_event(runtime, order_no, f"{order_no}-paid", "paid", at())
        await send_event(runtime, order_no, f"{order_no}-confirmed", "confirmed", at(1))
    await drain(runtime)
    await runtime.commissions.settle_due(at(9))
    await drain(runtime)

    await runtime.merchant_settings.put(BindingSettings.from_dict({"upline_eligibility": "reviewed"}))
    await publish(server)
    assert (await accept(server, headers, 1)).status_code == 200
    applied = await server.http.post("/api/v1/promoter-application", json=APPLICATION, headers=headers)
    assert applied.status_code == 201, applied.text
    approved = await server.http.post(f"/api/merchant/v1/applications/{applied.json()['id']}/approve", headers=MERCHANT)
    assert approved.status_code == 200
    consented = await server.http.post("/api/v1/subscriptions", json={"template_ids": ["tmpl-a"], "accepted": ["tmpl-a"]},
                                       headers=headers)
    assert consented.status_code == 200
    assert (await server.http.get("/api/v1/poster", headers=headers)).status_code == 200
    await drain(runtime)

    available = (await runtime.ledger.balances(member_id))["available_fen"]
    assert available > 0
    await rules(runtime, auto_approve_under_fen=available + 1)
    withdrawal = await server.http.post("/api/v1/withdrawals", json={
        "amount_fen": available, "method": "bank",
        "bank": {"account_name": "王小虎", "account_no": "6225880212345678", "bank_name": "招商银行"}}, headers=headers)
    assert withdrawal.status_code == 201, withdrawal.text
    history = History(member_id, headers,
                      [mini_openid(server, "victim"), victim_oa, unionid_for("victim"), PHONE, NICKNAME, avatar],
                      [UPLINE_NICKNAME, BUDDY_NICKNAME, mini_openid(server, "buddy"), mini_openid(server, "uplinelee")],
                      upline["member"]["id"])
    history.withdrawal_id = withdrawal.json()["id"]
    return history


async def test_the_export_holds_every_record_about_the_member_and_nobody_elses(server, sandbox):
    history = await member_with_a_full_history(server, sandbox)
    db = server.runtime.db
    exported = await server.http.get("/api/v1/me/export", headers=history.headers)
    assert exported.status_code == 200
    data = exported.json()
    member_id = history.member_id

    assert data["profile"]["id"] == member_id and data["profile"]["phone"] == PHONE
    assert data["profile"]["nickname"] == NICKNAME and "phone_sealed" not in data["profile"]
    assert data["relations"]["upline_id"] is not None and len(data["relations"]["direct_member_ids"]) == 1
    for section, collection, field in (("commissions", "commissions", "beneficiary_id"),
                                       ("ledger_entries", "ledger_entries", "account_id"),
                                       ("withdrawals", "withdrawals", "member_id"),
                                       ("orders", "orders", "buyer_id"),
                                       ("notifications", "notifications", "member_id"),
                                       ("bind_log", "bind_log", "member_id"),
                                       ("applications", "applications", "member_id"),
                                       ("agreement_acceptances", "agreement_acceptances", "member_id")):
        stored = sorted([str(each["_id"]) async for each in db[collection].find({field: member_id}, {"_id": 1})])
        assert stored and sorted(str(each["id"]) for each in data[section]) == stored, section
    assert [each["id"] for each in data["subscription_consents"]] == [f"{member_id}:tmpl-a"]
    assert [each["id"] for each in data["buyer_totals"]] == [member_id]
    assert data["applications"][0]["phone"] == APPLICATION["phone"]  # the member's own, opened
    assert "6225880212345678" in data["withdrawals"][0]["bank"]
    assert {each["kind"] for each in data["notifications"]} >= {"commission_arrived", "new_direct_member",
                                                                "application_decided"}
    text = json.dumps(data, ensure_ascii=False)
    assert [other for other in history.others if other in text] == []


async def test_deletion_waits_for_the_money_then_erases_the_person_everywhere(server, sandbox):
    history = await member_with_a_full_history(server, sandbox)
    runtime = server.runtime
    member_id = history.member_id

    assert (await server.http.get("/api/v1/me/deletion", headers=history.headers)).status_code == 404
    requested = await server.http.post("/api/v1/me/deletion", headers=history.headers)
    assert requested.status_code == 200
    assert (requested.json()["status"], requested.json()["blocked_by"]) == ("waiting", ["locked_balance",
                                                                                        "open_withdrawal"])
    again = await server.http.post("/api/v1/me/deletion", headers=history.headers)
    assert again.json()["requested_at"] == requested.json()["requested_at"]  # the same request

    listed = (await server.merchant_get("/api/merchant/v1/deletions", status="waiting")).json()["items"]
    assert [each["member_id"] for each in listed] == [member_id]
    waiting = await server.http.post(f"/api/merchant/v1/deletions/{member_id}/process", headers=MERCHANT)
    assert waiting.status_code == 409 and waiting.json()["error"]["code"] == "money_pending"
    assert (await runtime.members.get(member_id))["nickname"] == NICKNAME  # nothing erased while waiting

    paid = await server.http.post(f"/api/merchant/v1/withdrawals/{history.withdrawal_id}/mark-paid",
                                  json={"reference": "CMB-1"}, headers=MERCHANT)
    assert paid.status_code == 200, paid.text
    shown = (await server.http.get("/api/v1/me/deletion", headers=history.headers)).json()
    assert (shown["status"], shown["blocked_by"]) == ("waiting", [])
    # A bind whose log entry and notice (naming the member) still wait for the worker on the member's document.
    await runtime.merchant_settings.put(BindingSettings())
    moved = await server.http.post(f"/api/merchant/v1/members/{member_id}/upline",
                                   json={"upline_id": history.first_upline_id, "reason": "再次调整"}, headers=MERCHANT)
    assert moved.status_code == 200 and (await runtime.members.get(member_id)).get("binds_to_follow_up")

    # The scan sees the person where their data was copied, before the deletion.
    before = {collection for collection, _, _ in await found_anywhere(runtime.db, history.secrets)}
    assert {"members", "bind_log", "notifications", "orders"} <= before
    assert any(PHONE in opened for opened in await sealed_texts(runtime))
    done = await server.http.post(f"/api/merchant/v1/deletions/{member_id}/process", headers=MERCHANT)
    assert done.status_code == 200 and done.json()["status"] == "done" and done.json()["processed_at"]
    twice = await server.http.post(f"/api/merchant/v1/deletions/{member_id}/process", headers=MERCHANT)
    assert twice.status_code == 200 and twice.json() == done.json()
    await runtime.relations.apply_follow_ups()
    await drain(runtime)

    assert await found_anywhere(runtime.db, history.secrets) == []
    personal = [*history.secrets, APPLICATION["phone"], "6225880212345678"]
    assert [opened for opened in await sealed_texts(runtime) if any(each in opened for each in personal)] == []
    tombstone = await runtime.members.get(member_id)
    assert tombstone["erased_at"] and tombstone["frozen"] and tombstone["nickname"] is None
    assert tombstone["upline_id"] and tombstone["direct_count"] == 1  # relations keep the internal id
    assert await runtime.db.ledger_entries.count_documents({"account_id": member_id}) > 0
    await assert_ledger_clean(runtime)
    assert (await server.http.get("/api/v1/me", headers=history.headers)).status_code == 401  # sessions ended
    assert await runtime.sessions.member_of(history.headers["Authorization"].removeprefix("Bearer ")) is None
    for collection in ("poster_images", "poster_codes"):  # the member's pictures are deleted
        assert [each["_id"] async for each in runtime.db[collection].find({}) if each["_id"].startswith(member_id)] == []


async def test_deletion_requests_are_the_members_own_and_unknown_ones_are_404(server):
    session = await login(server, "quiet")
    headers = auth(session["token"])
    assert (await server.http.post("/api/v1/me/deletion")).status_code == 401
    missing = await server.http.post("/api/merchant/v1/deletions/nobody/process", headers=MERCHANT)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "deletion_not_requested"
    requested = (await server.http.post("/api/v1/me/deletion", headers=headers)).json()
    assert (requested["status"], requested["blocked_by"]) == ("waiting", [])  # nothing pending: ready to process
    done = await server.http.post(f"/api/merchant/v1/deletions/{session['member']['id']}/process", headers=MERCHANT)
    assert done.status_code == 200
    assert (await server.merchant_get("/api/merchant/v1/deletions", status="waiting")).json()["items"] == []
    again = await login(server, "quiet")  # the person may come back: as a new member
    assert again["member"]["id"] != session["member"]["id"]


async def test_the_console_shows_what_a_request_waits_for_and_carries_it_out(server):
    runtime = server.runtime
    owner = await staff_client(server, "owner")
    session = await login(server, "consoled", profile={"nickname": "控制台测试Qp"})
    member_id = session["member"]["id"]
    await credit(runtime, member_id, 500)
    await server.http.post("/api/v1/me/deletion", headers=auth(session["token"]))

    page = await owner.get("/admin/privacy")
    assert f'data-member-id="{member_id}" data-status="waiting"' in page.text and "有可提现余额" in page.text
    waiting = await owner.post(f"/admin/privacy/deletions/{member_id}/process")
    assert waiting.status_code == 409 and "available_balance" in waiting.text
    assert (await runtime.members.get(member_id))["nickname"] == "控制台测试Qp"

    clawback = WriteSet()  # a refund takes the commission back: nothing is pending any more
    clawback.ledger(commission_clawback(member_id, f"test-commission-{member_id}", 500, "refund-1"), NOW)
    await commit(runtime.mongo, runtime.db, clawback)
    done = await owner.post(f"/admin/privacy/deletions/{member_id}/process")
    assert (done.status_code, done.headers["Location"]) == (303, "/admin/privacy?done=processed")
    assert (await runtime.members.get(member_id))["nickname"] is None
    assert f'data-member-id="{member_id}" data-status="done"' in (await owner.get("/admin/privacy")).text
    [audited] = await runtime.db.audit_log.find({"action": "member.delete"}).to_list()
    assert audited["target"] == {"kind": "member", "id": member_id}
    await assert_ledger_clean(runtime)


async def test_the_worker_carries_a_deletion_out_once_the_balance_is_withdrawn(server):
    runtime = server.runtime
    await rules(runtime, auto_approve_under_fen=1_000)
    session = await login(server, "leaving", profile={"nickname": "要走的人Jd"})
    member_id, headers = session["member"]["id"], auth(session["token"])
    await credit(runtime, member_id, 500)
    requested = await server.http.post("/api/v1/me/deletion", headers=headers)
    assert requested.json()["blocked_by"] == ["available_balance"]

    assert await carry_out_deletions(runtime) == 0
    withdrawal = await withdraw(server, headers, 500, "bank", bank={
        "account_name": "王五", "account_no": "6225880212345678", "bank_name": "招商银行"})
    assert withdrawal.status_code == 201, withdrawal.text
    assert await carry_out_deletions(runtime) == 0  # the money is locked in a withdrawal not yet paid
    assert (await runtime.members.get(member_id))["nickname"] == "要走的人Jd"
    shown = (await server.http.get("/api/v1/me/deletion", headers=headers)).json()
    assert (shown["status"], shown["blocked_by"]) == ("waiting", ["locked_balance", "open_withdrawal"])

    paid = await server.http.post(f"/api/merchant/v1/withdrawals/{withdrawal.json()['id']}/mark-paid",
                                  json={"reference": "CMB-9"}, headers=MERCHANT)
    assert paid.status_code == 200, paid.text
    racing = await asyncio.gather(carry_out_deletions(runtime), carry_out_deletions(runtime))
    assert sum(racing) >= 1
    request = await runtime.data_rights.deletion(member_id, NOW)
    assert request["status"] == "done" and request["processed_at"] and request["blocked_by"] == []
    tombstone = await runtime.members.get(member_id)
    assert tombstone["erased_at"] and tombstone["nickname"] is None and "miniapp_openid" not in tombstone
    assert await found_anywhere(runtime.db, ["要走的人Jd", mini_openid(server, "leaving")]) == []
    assert (await server.http.get("/api/v1/me", headers=headers)).status_code == 401
    assert await carry_out_deletions(runtime) == 0  # a done request is not carried out again
    await assert_ledger_clean(runtime)
