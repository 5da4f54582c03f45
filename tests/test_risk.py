"""Risk controls end to end: each rule fires on its scenario and stays quiet on its honest twin (two different
people, devices and addresses); each action does what it says, through the ledger; the merchant's review queue
clears and voids."""

from __future__ import annotations

import pytest

from distribution.risk import RiskSettings
from distribution.scene import promoter_scene
from distribution.withdrawals import WithdrawalRules
from tests.conftest import MERCHANT_TOKEN, start_server
from tests.order_fixtures import assert_ledger_clean, at, balances, create_order, drain, item, send_event
from tests.test_miniapp_session import auth, mini_openid

MERCHANT = {"Authorization": f"Bearer {MERCHANT_TOKEN}"}


@pytest.fixture
async def proxied(make_settings):
    """A server behind a trusted proxy, so that each test user may come from an address of their own."""
    async for running in start_server(make_settings(TRUSTED_PROXIES="127.0.0.1")):
        yield running


async def login(server, code: str, ip: str, device: str | None = None, upline: dict | None = None) -> dict:
    body = {"code": code, **({"device_id": device} if device else {}),
            **({"scene": promoter_scene(upline["id"])} if upline else {})}
    answer = await server.http.post("/api/v1/session", json=body, headers={"X-Forwarded-For": ip})
    assert answer.status_code == 200, answer.text
    session = answer.json()
    return {**session["member"], "token": session["token"], "_id": session["member"]["id"]}


async def put_risk(server, **values) -> None:
    answer = await server.http.put("/api/merchant/v1/settings/risk", json=values, headers=MERCHANT)
    assert answer.status_code == 200, answer.text


async def flags(server, **query) -> list[dict]:
    answer = await server.http.get("/api/merchant/v1/risk/flags", params=query, headers=MERCHANT)
    assert answer.status_code == 200, answer.text
    return answer.json()["items"]


async def decide(server, flag_id: str, decision: str, reason: str = "looked into it"):
    return await server.http.post(f"/api/merchant/v1/risk/flags/{flag_id}/{decision}", json={"reason": reason},
                                  headers=MERCHANT)


async def buy(server, order_no: str, buyer: dict, fen: int = 10_000, confirm: bool = True) -> None:
    runtime = server.runtime
    await create_order(runtime, order_no, buyer, [item(fen)])
    await send_event(runtime, order_no, f"{order_no}-paid", "paid", at())
    if confirm:
        await send_event(runtime, order_no, f"{order_no}-confirmed", "confirmed", at(1))
    await drain(runtime)


async def withdraw(server, member: dict, fen: int):
    return await server.http.post("/api/v1/withdrawals", json={"amount_fen": fen, "method": "wechat_balance"},
                                  headers={**auth(member["token"]), "X-Forwarded-For": "10.9.9.9"})


async def pair(server, second_account: bool) -> tuple[dict, dict]:
    """Alice, and a buyer bound through her code: her own second account (her phone, her address), or Bob."""
    alice = await login(server, "alice", "10.0.0.1", "device-alice")
    if second_account:
        return alice, await login(server, "alice-2", "10.0.0.1", "device-alice", upline=alice)
    return alice, await login(server, "bob", "10.0.0.2", "device-bob", upline=alice)


async def test_a_second_account_buying_through_its_own_code_ends_in_a_hold_and_a_flag_not_a_payout(proxied):
    server, runtime = proxied, proxied.runtime
    alice, second = await pair(server, second_account=True)
    await buy(server, "second-1", second)
    [flag] = await flags(server, rule="self_referral")
    assert (flag["member_id"], flag["buyer_id"], flag["action"]) == (alice["_id"], second["_id"], "flag")
    assert flag["evidence"]["shared"] == ["device", "login_ip"] and flag["evidence"]["second_account"] is True
    assert "device-alice" not in str(flag) and "10.0.0.1" not in str(flag)  # hashes only
    alerts = await runtime.db.notifications.count_documents({"kind": "fraud_flag"})
    assert alerts == len(runtime.settings.merchant_admin_openids)

    await runtime.commissions.settle_due(at(30))
    assert await balances(runtime, alice["_id"]) == (0, 1_000, 0)
    answer = await withdraw(server, alice, 1_000)
    assert answer.status_code == 201, answer.text
    withdrawal = answer.json()
    assert withdrawal["status"] == "pending_review"  # below auto-approval, yet held
    [hold] = await flags(server, rule="unlinked_buyers")
    assert hold["withdrawal_id"] == withdrawal["id"] and hold["evidence"]["linked_buyers"] == 1
    approve = await server.http.post(f"/api/merchant/v1/withdrawals/{withdrawal['id']}/approve", headers=MERCHANT)
    assert approve.status_code == 409 and approve.json()["error"]["code"] == "risk_hold"
    await drain(runtime)
    assert (await runtime.withdrawals.get(withdrawal["id"]))["status"] == "pending_review"
    assert await balances(runtime, alice["_id"]) == (0, 0, 1_000)  # locked, not paid

    voided = await decide(server, hold["id"], "void", "her own second account")
    assert voided.status_code == 200 and voided.json()["status"] == "voided"
    assert (await runtime.withdrawals.get(withdrawal["id"]))["status"] == "rejected"
    assert await balances(runtime, alice["_id"]) == (0, 1_000, 0)  # returned
    again = await decide(server, hold["id"], "clear")
    assert again.status_code == 409 and again.json()["error"]["code"] == "flag_decided"
    await assert_ledger_clean(runtime)


async def test_a_different_person_bound_through_the_same_code_raises_nothing_and_is_paid(proxied):
    server, runtime = proxied, proxied.runtime
    alice, bob = await pair(server, second_account=False)
    await buy(server, "honest-1", bob)
    await runtime.commissions.settle_due(at(30))
    answer = await withdraw(server, alice, 1_000)
    assert answer.status_code == 201 and answer.json()["status"] == "approved"
    assert await flags(server) == []


async def test_a_held_self_referral_commission_never_settles_and_a_void_cancels_it_through_the_ledger(proxied):
    server, runtime = proxied, proxied.runtime
    await put_risk(server, self_referral={"action": "hold"})
    alice, second = await pair(server, second_account=True)
    await buy(server, "held-1", second)
    [flag] = await flags(server, status="open")
    assert flag["held_commission_ids"] == ["held-1:0:1"]
    assert (await runtime.commissions.settle_due(at(30))).settled == 0
    assert await balances(runtime, alice["_id"]) == (1_000, 0, 0)

    assert (await decide(server, flag["id"], "void")).status_code == 200
    commission = await runtime.db.commissions.find_one({"_id": "held-1:0:1"})
    assert (commission["status"], commission["cancelled_fen"]) == ("cancelled", 1_000)
    assert await balances(runtime, alice["_id"]) == (0, 0, 0)
    await assert_ledger_clean(runtime)
    audit = await runtime.db.audit_log.find_one({"action": "risk_flag.void"})
    assert audit["target"] == {"kind": "risk_flag", "id": flag["id"]}


async def test_a_cleared_hold_lets_the_commission_settle(proxied):
    server, runtime = proxied, proxied.runtime
    await put_risk(server, self_referral={"action": "hold"})
    alice, second = await pair(server, second_account=True)
    await buy(server, "cleared-1", second)
    [flag] = await flags(server)
    assert (await decide(server, flag["id"], "clear", "her husband, really")).json()["status"] == "cleared"
    assert (await runtime.commissions.settle_due(at(30))).settled == 1
    assert await balances(runtime, alice["_id"]) == (0, 1_000, 0)
    await assert_ledger_clean(runtime)


async def test_a_rejected_self_referral_commission_is_not_posted(proxied):
    server, runtime = proxied, proxied.runtime
    await put_risk(server, self_referral={"action": "reject"})
    alice, second = await pair(server, second_account=True)
    await buy(server, "rejected-1", second)
    [flag] = await flags(server)
    assert flag["rejected_commissions"] == [{"beneficiary_id": alice["_id"], "item_index": 0, "level": 1,
                                             "amount_fen": 1_000}]
    assert await runtime.db.commissions.count_documents({"order_no": "rejected-1"}) == 0
    assert await balances(runtime, alice["_id"]) == (0, 0, 0)
    await assert_ledger_clean(runtime)


async def test_binds_from_one_device_past_the_limit_are_refused_and_flagged_once(proxied):
    server, runtime = proxied, proxied.runtime
    await put_risk(server, bind_velocity={"action": "reject", "max_binds": 2, "window_seconds": 3600})
    alice = await login(server, "alice", "10.0.0.1", "device-alice")
    farm = [await login(server, f"farm-{n}", f"10.1.0.{n}", "device-farm", upline=alice) for n in range(4)]
    assert [bool(member["upline"]) for member in farm] == [True, True, False, False]
    refused = await runtime.db.bind_log.find({"result": "refused"}).to_list()
    assert {entry["reason"] for entry in refused} == {"risk:bind_velocity"}
    [flag] = await flags(server, rule="bind_velocity", member_id=alice["_id"])
    assert flag["evidence"]["binds"] == 3

    honest = [await login(server, f"fan-{n}", f"10.2.0.{n}", f"device-fan-{n}", upline=alice) for n in range(4)]
    assert all(member["upline"] for member in honest)
    assert len(await flags(server)) == 1


async def test_a_promoter_whose_buyers_refund_most_is_flagged_and_one_refund_in_many_is_not(proxied):
    server, runtime = proxied, proxied.runtime
    await put_risk(server, refund_rate={"action": "flag", "max_refund_bp": 3_000, "min_paid_fen": 10_000})
    alice, bob = await pair(server, second_account=False)
    for n in range(4):
        await buy(server, f"kept-{n}", bob, confirm=False)
    await send_event(runtime, "kept-0", "kept-0-refund", "refunded", at(0, 60))
    await drain(runtime)
    assert await flags(server) == []  # a quarter refunded

    await send_event(runtime, "kept-1", "kept-1-refund", "refunded", at(0, 120))
    await drain(runtime)
    [flag] = await flags(server, rule="refund_rate")
    assert flag["member_id"] == alice["_id"] and flag["evidence"]["rate_bp"] == 5_000


async def test_a_day_far_above_the_promoter_s_baseline_is_held(proxied):
    server, runtime = proxied, proxied.runtime
    await put_risk(server, commission_spike={"action": "hold", "baseline_days": 7, "multiple": 5, "min_fen": 5_000})
    alice, bob = await pair(server, second_account=False)
    await buy(server, "usual-1", bob, fen=10_000)  # 1,000 fen today: under the floor
    assert await flags(server) == []
    await buy(server, "spike-1", bob, fen=100_000)  # 11,000 fen today against no baseline
    [flag] = await flags(server, rule="commission_spike")
    assert flag["held_commission_ids"] == ["spike-1:0:1"]
    assert (await runtime.commissions.settle_due(at(30))).settled == 1  # the usual one only
    assert await balances(runtime, alice["_id"]) == (10_000, 1_000, 0)


async def test_wechat_s_risk_rank_flags_a_first_withdrawal_and_holds_it(proxied, sandbox):
    server, runtime = proxied, proxied.runtime
    await put_risk(server, wechat_risk_rank={"action": "hold", "min_rank": 3})
    alice, bob = await pair(server, second_account=False)
    await buy(server, "ranked-1", bob)
    await runtime.commissions.settle_due(at(30))
    sandbox.state.risk_ranks.set(mini_openid(server, "alice"), 4)
    withdrawal = (await withdraw(server, alice, 1_000)).json()
    assert withdrawal["status"] == "pending_review"
    [flag] = await flags(server, rule="wechat_risk_rank")
    assert flag["evidence"]["rank"] == 4 and flag["withdrawal_id"] == withdrawal["id"]
    cleared = await decide(server, flag["id"], "clear")
    assert cleared.status_code == 200
    approve = await server.http.post(f"/api/merchant/v1/withdrawals/{withdrawal['id']}/approve", headers=MERCHANT)
    assert approve.status_code == 200 and approve.json()["status"] == "approved"


async def test_daily_caps_hold_withdrawals_past_them(proxied):
    server, runtime = proxied, proxied.runtime
    await runtime.merchant_settings.put(WithdrawalRules(min_distinct_paying_buyers=0))
    await put_risk(server, daily_withdrawal_cap=1)
    alice, bob = await pair(server, second_account=False)
    await buy(server, "capped-1", bob)
    await runtime.commissions.settle_due(at(30))
    first = (await withdraw(server, alice, 400)).json()
    second = (await withdraw(server, alice, 400)).json()
    assert (first["status"], second["status"]) == ("approved", "pending_review")
    [flag] = await flags(server, rule="daily_withdrawal_cap")
    assert flag["withdrawal_id"] == second["id"]


async def test_the_settings_and_the_list_refuse_what_is_out_of_range(server):
    bad = await server.http.put("/api/merchant/v1/settings/risk", json={"refund_rate": {"max_refund_bp": 10_001}},
                                headers=MERCHANT)
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "refund_rate.max_refund_bp"
    assert (await server.merchant_get("/api/merchant/v1/settings/risk")).json() == RiskSettings().to_dict()
    wrong = await server.merchant_get("/api/merchant/v1/risk/flags", rule="nonsense")
    assert wrong.status_code == 400
    missing = await decide(server, "nope", "void")
    assert missing.status_code == 404


async def test_a_bind_of_a_user_wechat_ranks_risky_is_refused_and_a_clean_one_binds(proxied, sandbox):
    server, runtime = proxied, proxied.runtime
    await put_risk(server, wechat_risk_rank={"action": "reject", "min_rank": 3})
    alice = await login(server, "alice", "10.0.0.1", "device-alice")
    sandbox.state.risk_ranks.set(mini_openid(server, "farmed"), 4)
    farmed = await login(server, "farmed", "10.0.0.5", "device-farmed", upline=alice)
    clean = await login(server, "clean", "10.0.0.6", "device-clean", upline=alice)
    assert (farmed["upline"], bool(clean["upline"])) == (None, True)
    [flag] = await flags(server, rule="wechat_risk_rank")
    assert flag["member_id"] == alice["_id"] and flag["subject"] == f"bind:{farmed['_id']}:{alice['_id']}"
    refused = await runtime.db.bind_log.find_one({"member_id": farmed["_id"]})
    assert refused["reason"] == "risk:wechat_risk_rank"


async def test_bind_velocity_counts_on_redis_s_clock_so_servers_with_skewed_clocks_share_one_window(
        server, monkeypatch):
    store = server.runtime.risk.store
    assert [await store.count_bind("alice", "device-hash", 3600) for _ in range(2)] == [1, 2]
    monkeypatch.setattr("time.time", lambda: 1e10)  # a server whose clock is centuries ahead
    assert await store.count_bind("alice", "device-hash", 3600) == 3
    assert await store.count_bind("bob", "device-hash", 3600) == 1
