"""A frozen member: commissions held, withdrawals refused (requests, approvals, payouts), sessions ended; all
of it lifted by unfreezing."""

from __future__ import annotations

from tests.order_fixtures import assert_ledger_clean, at, balances, chain, drain, item, paid_order, send_event
from tests.test_miniapp_session import auth
from tests.test_withdrawals import MERCHANT, promoter, rules, withdraw


async def freeze(server, member_id: str, frozen: bool = True) -> None:
    action = "freeze" if frozen else "unfreeze"
    answer = await server.http.post(f"/api/merchant/v1/members/{member_id}/{action}", headers=MERCHANT)
    assert answer.status_code == 200, answer.text


async def test_a_frozen_members_commissions_are_posted_but_held_until_unfrozen(server):
    runtime = server.runtime
    upline, buyer = await chain(runtime, 1)
    honest, other_buyer = await chain(runtime, 1)
    await freeze(server, upline["_id"])
    for order_no, who in (("held", buyer), ("paid", other_buyer)):
        await paid_order(runtime, order_no, who, [item(10_000)])
        await send_event(runtime, order_no, f"{order_no}-confirmed", "confirmed", at(1))
    await drain(runtime)

    settled = await runtime.commissions.settle_due(at(30))
    assert settled.members == {honest["_id"]}
    assert await balances(runtime, upline) == (1_000, 0, 0)  # posted, still frozen
    assert await balances(runtime, honest) == (0, 1_000, 0)

    await freeze(server, upline["_id"], frozen=False)
    assert (await runtime.commissions.settle_due(at(31))).members == {upline["_id"]}
    assert await balances(runtime, upline) == (0, 1_000, 0)
    await assert_ledger_clean(runtime)


async def test_a_frozen_member_cannot_ask_to_withdraw_and_their_sessions_end(server):
    runtime = server.runtime
    await rules(runtime)
    session, headers = await promoter(server, "fiona", 10_000)
    second_session = (await server.http.post("/api/v1/session", json={"code": "fiona"})).json()
    member_id = session["member"]["id"]
    await freeze(server, member_id)

    for token in (session["token"], second_session["token"]):
        assert (await server.http.get("/api/v1/me", headers=auth(token))).status_code == 401
    again = (await server.http.post("/api/v1/session", json={"code": "fiona"})).json()
    refused = await withdraw(server, auth(again["token"]), 1_000)
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "member_frozen"
    assert await runtime.db.withdrawals.count_documents({}) == 0
    assert await runtime.ledger.balances(member_id) == {"frozen_fen": 0, "available_fen": 10_000, "locked_fen": 0}


async def test_a_frozen_members_pending_withdrawals_are_neither_approved_nor_paid(server):
    runtime = server.runtime
    await rules(runtime, auto_approve_under_fen=5_000)
    session, headers = await promoter(server, "gus", 30_000)
    member_id = session["member"]["id"]
    reviewed = (await withdraw(server, headers, 10_000)).json()
    approved = (await withdraw(server, headers, 1_000)).json()  # approved at once: its payout is queued
    assert (reviewed["status"], approved["status"]) == ("pending_review", "approved")
    await freeze(server, member_id)

    refused = await server.http.post(f"/api/merchant/v1/withdrawals/{reviewed['id']}/approve", headers=MERCHANT)
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "member_frozen"
    await drain(runtime)
    assert (await runtime.withdrawals.store.get(reviewed["id"]))["status"] == "pending_review"
    assert (await runtime.withdrawals.store.get(approved["id"]))["status"] == "approved"  # no bill made
    assert await runtime.ledger.balances(member_id) == {"frozen_fen": 0, "available_fen": 19_000, "locked_fen": 11_000}
    # Rejecting stays possible: it only gives the money back to available.
    rejected = await server.http.post(f"/api/merchant/v1/withdrawals/{reviewed['id']}/reject", headers=MERCHANT)
    assert rejected.status_code == 200

    await freeze(server, member_id, frozen=False)
    assert await runtime.withdrawals.advance(approved["id"], at()) != "held: the member is frozen"
    assert (await runtime.withdrawals.store.get(approved["id"]))["status"] == "waiting_user_confirm"
    await assert_ledger_clean(runtime)
