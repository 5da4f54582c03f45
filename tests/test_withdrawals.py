"""Withdrawals: rules, review, cancel, payout and its failures; never an overdraft."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import pytest

from bot.worker import job_handlers
from distribution.ledger import commission_frozen, commission_settled
from distribution.withdrawals import WithdrawalRules
from sandbox.faults import Fault
from sandbox.pay import CREATE_BILL_ENDPOINT
from services.withdrawals import WithdrawalNotFound
from stores.job_queue import RetryLater
from stores.writes import WriteSet, commit
from tests.conftest import MERCHANT_TOKEN
from tests.test_miniapp_session import auth, login

MERCHANT = {"Authorization": f"Bearer {MERCHANT_TOKEN}"}
NOW = datetime.now(timezone.utc)


async def credit(runtime, member_id: str, fen: int) -> None:
    """A settled commission of `fen`, through the ledger like any other."""
    ref = f"test-commission-{member_id}"
    writes = WriteSet()
    writes.ledger(commission_frozen(member_id, ref, fen) + commission_settled(member_id, ref, fen), NOW)
    await commit(runtime.mongo, runtime.db, writes)


async def rules(runtime, **values) -> None:
    await runtime.merchant_settings.put(WithdrawalRules.from_dict({"min_distinct_paying_buyers": 0, **values}))


async def promoter(server, name: str, balance_fen: int) -> tuple[dict, dict]:
    session = await login(server, name)
    await credit(server.runtime, session["member"]["id"], balance_fen)
    return session, auth(session["token"])


async def withdraw(server, headers, amount_fen: int, method: str = "wechat_balance", **extra):
    return await server.http.post("/api/v1/withdrawals", json={"amount_fen": amount_fen, "method": method, **extra},
                                  headers=headers)


async def awaiting_review(server, name: str, balance_fen: int, *amounts_fen: int) -> list[dict]:
    """Withdrawals of `amounts_fen` asked for by `name`, a promoter credited `balance_fen`, each left waiting for
    review."""
    await rules(server.runtime, auto_approve_under_fen=0)
    _, headers = await promoter(server, name, balance_fen)
    return [(await withdraw(server, headers, amount_fen)).json() for amount_fen in amounts_fen]


async def balances(runtime, member_id: str) -> dict:
    return await runtime.ledger.balances(member_id)


async def drain(runtime) -> int:
    return await runtime.queue.drain("test", job_handlers(runtime))


@pytest.fixture
def paying(server, sandbox):
    """The server, with WeChat Pay's callbacks delivered to it."""
    sandbox.state.pay.deliver_to = server.base_url
    return server


async def test_a_small_withdrawal_is_approved_accepted_paid_and_told(paying, sandbox):
    server, runtime = paying, paying.runtime
    await rules(runtime, fee_bp=100, auto_approve_under_fen=20_000)
    session, headers = await promoter(server, "wanda", 50_000)
    member_id = session["member"]["id"]
    response = await withdraw(server, headers, 10_000)
    assert response.status_code == 201
    withdrawal = response.json()
    assert (withdrawal["status"], withdrawal["fee_fen"], withdrawal["net_fen"]) == ("approved", 100, 9_900)
    assert await balances(runtime, member_id) == {"frozen_fen": 0, "available_fen": 40_000, "locked_fen": 10_000}

    await drain(runtime)  # the transfer bill is made: it waits for the promoter
    mine = (await server.http.get(f"/api/v1/withdrawals/{withdrawal['id']}", headers=headers)).json()
    openid = (await runtime.members.get(member_id))["miniapp_openid"]
    bill = sandbox.state.pay.bills[withdrawal["id"]]
    assert (mine["status"], mine["bill_state"]) == ("waiting_user_confirm", "WAIT_USER_CONFIRM")
    assert mine["confirm"] == {"mchId": "1900000109", "appId": runtime.settings.miniapp_app_id,
                               "package": bill.package_info, "openId": openid}
    assert (bill.transfer_amount, bill.openid, bill.scene_id) == (9_900, openid, "1005")
    assert bill.notify_url == "https://shop.example.test/wechatpay/notify/transfer"

    assert (await sandbox.state.pay.confirm(withdrawal["id"])).notices_sent == [200]  # accepted in WeChat
    paid = (await server.http.get(f"/api/v1/withdrawals/{withdrawal['id']}", headers=headers)).json()
    assert (paid["status"], paid["bill_state"], paid["confirm"]) == ("paid", "SUCCESS", None)
    assert paid["transfer_bill_no"] == bill.transfer_bill_no
    assert await balances(runtime, member_id) == {"frozen_fen": 0, "available_fen": 40_000, "locked_fen": 0}
    assert len(sandbox.state.calls.received(endpoint=CREATE_BILL_ENDPOINT)) == 1
    assert (await runtime.ledger.verify()).clean
    told = await runtime.db.notifications.find_one({"kind": "withdrawal_paid", "member_id": member_id})
    assert told is not None

    mine = (await server.http.get("/api/v1/withdrawals", headers=headers)).json()["items"]
    assert [(w["id"], w["status"]) for w in mine] == [(withdrawal["id"], "paid")]


async def test_a_large_withdrawal_waits_for_review_then_reject_unlocks_and_approve_pays(server):
    runtime = server.runtime
    await rules(runtime, auto_approve_under_fen=5_000)
    session, headers = await promoter(server, "xavier", 30_000)
    member_id = session["member"]["id"]
    first = (await withdraw(server, headers, 10_000)).json()
    second = (await withdraw(server, headers, 12_000)).json()
    assert first["status"] == second["status"] == "pending_review"
    listed = (await server.http.get("/api/merchant/v1/withdrawals", params={"status": "pending_review"},
                                    headers=MERCHANT)).json()["items"]
    assert {w["id"] for w in listed} == {first["id"], second["id"]}

    rejected = await server.http.post(f"/api/merchant/v1/withdrawals/{first['id']}/reject",
                                      json={"reason": "信息不符"}, headers=MERCHANT)
    assert rejected.json()["status"] == "rejected" and rejected.json()["note"] == "信息不符"
    assert await balances(runtime, member_id) == {"frozen_fen": 0, "available_fen": 18_000, "locked_fen": 12_000}

    approved = await server.http.post(f"/api/merchant/v1/withdrawals/{second['id']}/approve", headers=MERCHANT)
    assert approved.json()["status"] == "approved"
    await drain(runtime)
    assert (await runtime.withdrawals.store.get(second["id"]))["status"] == "waiting_user_confirm"
    again = await server.http.post(f"/api/merchant/v1/withdrawals/{second['id']}/reject", headers=MERCHANT)
    assert again.status_code == 409
    assert (await runtime.ledger.verify()).clean


async def test_cancel_only_my_own_and_only_while_pending(server):
    runtime = server.runtime
    await rules(runtime, auto_approve_under_fen=1_000)
    session, headers = await promoter(server, "yolanda", 10_000)
    pending = (await withdraw(server, headers, 5_000)).json()
    _, stranger = await promoter(server, "zack", 100)
    assert (await server.http.post(f"/api/v1/withdrawals/{pending['id']}/cancel", headers=stranger)).status_code == 404
    cancelled = await server.http.post(f"/api/v1/withdrawals/{pending['id']}/cancel", headers=headers)
    assert cancelled.json()["status"] == "cancelled"
    assert (await balances(runtime, session["member"]["id"]))["available_fen"] == 10_000
    twice = await server.http.post(f"/api/v1/withdrawals/{pending['id']}/cancel", headers=headers)
    assert twice.status_code == 409 and twice.json()["error"]["code"] == "not_pending"


@pytest.mark.parametrize(
    "setup, amount, code",
    [
        ({"min_fen": 500}, 499, "below_minimum"),
        ({}, 20_001, "insufficient_balance"),
        ({"daily_count_cap": 1}, 100, "daily_count_cap"),
        ({"daily_amount_cap_fen": 1_000}, 600, "daily_amount_cap"),
        ({"min_distinct_paying_buyers": 2}, 100, "too_few_buyers"),
    ],
)
async def test_each_rule_refuses_with_its_reason(server, setup, amount, code):
    runtime = server.runtime
    await rules(runtime, **setup)
    _, headers = await promoter(server, "rules", 20_000)
    if code in ("daily_count_cap", "daily_amount_cap"):
        assert (await withdraw(server, headers, 500)).status_code == 201
    response = await withdraw(server, headers, amount)
    assert response.status_code == 409 and response.json()["error"]["code"] == code


async def test_distinct_paying_buyers_count_from_the_orders_chain(server):
    runtime = server.runtime
    await runtime.merchant_settings.put(WithdrawalRules.from_dict({"min_distinct_paying_buyers": 2}))
    session, headers = await promoter(server, "seller", 5_000)
    me = session["member"]["id"]
    for number, buyer in enumerate(("b1", "b1", "b2")):
        await runtime.db.orders.insert_one({"_id": f"o{number}", "buyer_id": buyer, "upline_chain": [me], "paid_at": NOW})
    assert (await withdraw(server, headers, 1_000)).status_code == 201


async def test_fifty_concurrent_withdrawals_never_overdraw(contended_server):
    server = contended_server
    runtime = server.runtime
    await rules(runtime, daily_count_cap=100, daily_amount_cap_fen=10_000_000, auto_approve_under_fen=0)
    session, headers = await promoter(server, "rush", 10_000)
    responses = await asyncio.gather(*(withdraw(server, headers, 700) for _ in range(50)))
    accepted = [r for r in responses if r.status_code == 201]
    assert len(accepted) == 10_000 // 700  # 14: every fen that could be locked, and not one more
    assert {r.json()["error"]["code"] for r in responses if r.status_code != 201} == {"insufficient_balance"}
    assert await balances(runtime, session["member"]["id"]) == {"frozen_fen": 0, "available_fen": 10_000 - 14 * 700,
                                                               "locked_fen": 14 * 700}
    assert (await runtime.ledger.verify()).clean


async def test_a_temporary_payout_failure_is_retried_with_the_same_number(paying, sandbox):
    server, runtime = paying, paying.runtime
    await rules(runtime)
    session, headers = await promoter(server, "retry", 5_000)
    withdrawal = (await withdraw(server, headers, 1_000)).json()
    sandbox.state.faults.add(Fault(CREATE_BILL_ENDPOINT, errcode=500))
    with pytest.raises(RetryLater):  # unclear, and the query finds no bill: tried again later
        await runtime.withdrawals.advance(withdrawal["id"], NOW)
    assert (await runtime.withdrawals.store.get(withdrawal["id"]))["attempts"] == 1
    assert await runtime.withdrawals.advance(withdrawal["id"], NOW) == "waiting_user_confirm"
    await sandbox.state.pay.confirm(withdrawal["id"])
    assert await runtime.withdrawals.advance(withdrawal["id"], NOW) == "nothing to pay"  # a repeated job pays once
    creates = sandbox.state.calls.received(endpoint=CREATE_BILL_ENDPOINT)
    assert [call.body["out_bill_no"] for call in creates] == [withdrawal["id"]] * 2
    assert (await runtime.withdrawals.store.get(withdrawal["id"]))["status"] == "paid"
    assert (await runtime.ledger.verify()).clean


async def test_a_final_payout_refusal_returns_the_money(server, sandbox):
    runtime = server.runtime
    await rules(runtime)
    session, headers = await promoter(server, "refused", 5_000)
    withdrawal = (await withdraw(server, headers, 1_000)).json()
    sandbox.state.faults.add(Fault(CREATE_BILL_ENDPOINT, errcode=403))
    assert (await runtime.withdrawals.advance(withdrawal["id"], NOW)).startswith("returned")
    returned = await runtime.withdrawals.store.get(withdrawal["id"])
    assert returned["status"] == "returned" and [h["status"] for h in returned["history"]] == ["approved", "failed",
                                                                                               "returned"]
    assert await balances(runtime, session["member"]["id"]) == {"frozen_fen": 0, "available_fen": 5_000, "locked_fen": 0}
    assert (await runtime.ledger.verify()).clean


async def test_bad_withdrawal_bodies_are_400s(server):
    _, headers = await promoter(server, "bodies", 5_000)
    for body, field in (({"amount_fen": 0, "method": "wechat_balance"}, "amount_fen"),
                        ({"amount_fen": 1.5, "method": "wechat_balance"}, "amount_fen"),
                        ({"amount_fen": 100, "method": "alipay"}, "method"),
                        ({"amount_fen": 100, "method": "bank"}, "bank"),
                        ({"amount_fen": 100, "method": "bank", "bank": {"account_name": "x"}}, "bank.account_no")):
        response = await server.http.post("/api/v1/withdrawals", json=body, headers=headers)
        assert response.status_code == 400 and response.json()["error"]["field"] == field, body
    assert await server.runtime.db.withdrawals.count_documents({}) == 0


async def test_me_shows_the_ledger_balances(server):
    _, headers = await promoter(server, "balances", 12_345)
    me = (await server.http.get("/api/v1/me", headers=headers)).json()
    assert me["balances"] == {"frozen_fen": 0, "available_fen": 12_345, "locked_fen": 0}


async def test_subscription_consents_are_counted_per_template(server):
    _, headers = await promoter(server, "consents", 0)
    body = {"template_ids": ["tpl_a", "tpl_b"], "accepted": ["tpl_a"]}
    first = await server.http.post("/api/v1/subscriptions", json=body, headers=headers)
    assert first.json() == {"consents": {"tpl_a": 1, "tpl_b": 0}}
    second = await server.http.post("/api/v1/subscriptions", json=body, headers=headers)
    assert second.json()["consents"]["tpl_a"] == 2
    for bad, field in (({"template_ids": ["a"], "accepted": ["b"]}, "accepted"), ({"template_ids": "a", "accepted": []},
                       "template_ids"), ({"template_ids": [""], "accepted": []}, "template_ids[0]")):
        response = await server.http.post("/api/v1/subscriptions", json=bad, headers=headers)
        assert response.status_code == 400 and response.json()["error"]["field"] == field


async def test_my_commissions_and_ledger_are_mine_and_paged(server):
    session, headers = await promoter(server, "ledger_reader", 3_000)
    await promoter(server, "someone_else", 9_999)
    seen, cursor = [], None
    while True:
        params = {"limit": "1", **({"cursor": cursor} if cursor else {})}
        page = (await server.http.get("/api/v1/ledger", params=params, headers=headers)).json()
        seen += page["items"]
        if not (cursor := page["next_cursor"]):
            break
    assert sorted((e["bucket"], e["amount_fen"]) for e in seen) == [("available", 3_000), ("frozen", -3_000),
                                                                    ("frozen", 3_000)]
    assert (await server.http.get("/api/v1/commissions", headers=headers)).json() == {"items": [], "next_cursor": None}
    bad = await server.http.get("/api/v1/commissions", params={"status": "lost"}, headers=headers)
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "status"
    assert (await server.http.get("/api/v1/ledger", params={"cursor": "bad"}, headers=headers)).status_code == 400


async def test_withdrawals_are_paged_by_member_and_status_and_unknown_ones_are_not_found(server):
    runtime = server.runtime
    await rules(runtime, auto_approve_under_fen=2_000)
    members = []
    for name in ("paging-a", "paging-b"):
        session, _ = await promoter(server, name, 20_000)
        members.append(await runtime.members.get(session["member"]["id"]))
    made = [await runtime.withdrawals.request(member, amount, "bank", None, NOW)
            for member in members for amount in (1_000, 5_000, 1_500)]
    ids = [each["_id"] for each in made]
    first, second = members[0]["_id"], members[1]["_id"]
    assert [w["_id"] for w in await runtime.withdrawals.page(first, None, 10, None)] == ids[2::-1]
    assert [w["_id"] for w in await runtime.withdrawals.page(first, None, 2, ids[2])] == ids[1::-1]
    assert [w["_id"] for w in await runtime.withdrawals.page(None, "pending_review", 10, None)] == [ids[4], ids[1]]
    assert [w["_id"] for w in await runtime.withdrawals.page(second, "approved", 1, None)] == [ids[5]]
    with pytest.raises(WithdrawalNotFound) as stranger:
        await runtime.withdrawals.cancel(second, ids[1], NOW)
    assert stranger.value.code == "withdrawal_not_found"
    with pytest.raises(WithdrawalNotFound):
        await runtime.withdrawals.review("nope", True, None, NOW)
