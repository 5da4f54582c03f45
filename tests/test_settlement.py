"""Settlement periods and statements: each policy over a month end and a week end, refunds before and after a
statement, the review threshold, rejection, carry-over below the minimum, and racing runs of the job."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta

import pytest

from bot.worker import settle_due_commissions
from distribution.calendar import CHINA
from distribution.settlement import SettlementPolicy, SettlementSettings
from tests.conftest import MERCHANT_TOKEN
from tests.console_fixtures import staff_client
from tests.order_fixtures import add_member, assert_ledger_clean, balances, chain, drain, item, paid_order, send_event
from tests.test_miniapp_session import auth, login
from tests.test_withdrawals import rules, withdraw

MERCHANT = {"Authorization": f"Bearer {MERCHANT_TOKEN}"}
SECOND = timedelta(seconds=1)


def china(day: str, clock: str = "00:00") -> datetime:
    return datetime.fromisoformat(f"{day}T{clock}").replace(tzinfo=CHINA)


async def settle_by(runtime, policy: str, **values) -> None:
    await runtime.merchant_settings.put(SettlementSettings(policy=SettlementPolicy(policy), **values))


async def confirm(runtime, order_no: str, when: datetime) -> None:
    """The buyer confirms at `when`: the commissions are due 7 days later (the default freeze)."""
    await send_event(runtime, order_no, f"{order_no}-confirmed", "confirmed", when)
    await drain(runtime)


async def refund(runtime, order_no: str, event_id: str, fen: int, when: datetime) -> None:
    await send_event(runtime, order_no, event_id, "refunded", when, [{"sku": "tea", "refund_fen": fen}])
    await drain(runtime)


async def run_job(runtime, now: datetime) -> int:
    settled = await settle_due_commissions(runtime, now)
    await drain(runtime)
    return settled


async def statements_of(runtime, member: dict) -> list[tuple[str, str, int, list[tuple[str, int]]]]:
    """(id, status, amount, [(commission, fen)]) of the member's statements, oldest first."""
    found = await runtime.db["statements"].find({"member_id": member["_id"]}).sort("created_at", 1).to_list()
    return [(each["_id"], each["status"], each["amount_fen"],
             [(line["commission_id"], line["amount_fen"]) for line in each["lines"]]) for each in found]


async def assert_reproducible(runtime) -> None:
    """Every settled statement's amount is what the ledger's entries naming it add up to."""
    async for statement in runtime.db["statements"].find({"status": "settled"}):
        assert await runtime.statements.ledger_fen(statement["_id"]) == statement["amount_fen"], statement["_id"]


async def touched_days(runtime) -> list[date]:
    """The China days of every ledger entry, settlement, reversal and withdrawal step the test made."""
    db = runtime.db
    moments = [entry["at"] async for entry in db["ledger_entries"].find({}, {"at": 1})]
    async for commission in db["commissions"].find({}, {"settled_at": 1, "reversals": 1}):
        moments += [commission.get("settled_at"), *(each["at"] for each in commission.get("reversals", []))]
    async for withdrawal in db["withdrawals"].find({}, {"history": 1}):
        moments += [step["at"] for step in withdrawal["history"]]
    return sorted({moment.astimezone(CHINA).date() for moment in moments if moment is not None})


async def assert_reconciled(runtime) -> None:
    """`ledger reconcile` (the finance service the CLI reads) is clean for every day the test touched."""
    days = await touched_days(runtime)
    assert days
    for day in days:
        report = await runtime.finance.day_report(day)
        assert report.clean, (day, [str(each) for each in report.differences])


async def assert_books_clean(runtime) -> None:
    """`ledger verify` and `ledger reconcile` clean, and every statement reproducible from the ledger."""
    await assert_ledger_clean(runtime)
    await assert_reproducible(runtime)
    await assert_reconciled(runtime)


# The period the Sunday 2026-05-31 (a month's and a week's last day) is in, and the one the Monday after is in.
PERIODS = {
    "daily": (("2026-05-31", "2026-06-01"), ("2026-06-01", "2026-06-02")),
    "weekly": (("2026-05-25", "2026-06-01"), ("2026-06-01", "2026-06-08")),
    "monthly": (("2026-05-01", "2026-06-01"), ("2026-06-01", "2026-07-01")),
}


@pytest.mark.parametrize("policy", sorted(PERIODS))
async def test_each_policy_settles_a_period_once_it_closes_with_refunds_before_and_after(server, policy):
    runtime = server.runtime
    await settle_by(runtime, policy)
    a, b, buyer = await chain(runtime, 2)  # b earns 10%, a 5%
    await paid_order(runtime, "sun", buyer, [item(9_999)], when=china("2026-05-20", "12:00"))
    await paid_order(runtime, "mon", buyer, [item(20_000)], when=china("2026-05-20", "12:00"))
    await confirm(runtime, "sun", china("2026-05-24", "12:00"))  # due Sunday 31 May, 12:00
    await confirm(runtime, "mon", china("2026-05-25", "12:00"))  # due Monday 1 June, 12:00
    # Before the statement: a third of "sun" refunded cancels a third of its commissions (999 -> 666, 499 -> 333).
    await refund(runtime, "sun", "sun-r1", 3_333, china("2026-05-30", "09:00"))

    assert await run_job(runtime, china("2026-05-31", "12:00")) == 0  # due, but its period has not closed
    assert await run_job(runtime, china("2026-06-01") - SECOND) == 0
    assert await balances(runtime, b) == (666 + 2_000, 0, 0)

    (first_start, first_end), (second_start, second_end) = PERIODS[policy]
    assert await run_job(runtime, china("2026-06-01")) == 2  # one commission each for b and a
    first_b, first_a = f"{b['_id']}:{first_start}_{first_end}", f"{a['_id']}:{first_start}_{first_end}"
    assert await statements_of(runtime, b) == [(first_b, "settled", 666, [("sun:0:1", 666)])]
    assert await statements_of(runtime, a) == [(first_a, "settled", 333, [("sun:0:2", 333)])]
    assert await balances(runtime, b) == (2_000, 666, 0)
    assert await balances(runtime, a) == (1_000, 333, 0)

    # After the statement: another third clawed back out of available; the statement stays what it settled.
    await refund(runtime, "sun", "sun-r2", 3_333, china("2026-06-01", "08:00"))
    assert await balances(runtime, b) == (2_000, 333, 0)
    assert await run_job(runtime, china("2026-06-01", "09:00")) == 0  # built once per period

    second_close = china(second_end)
    assert await run_job(runtime, second_close - SECOND) == 0
    assert await run_job(runtime, second_close) == 2
    second_b = f"{b['_id']}:{second_start}_{second_end}"
    assert (await statements_of(runtime, b))[1] == (second_b, "settled", 2_000, [("mon:0:1", 2_000)])
    assert await balances(runtime, b) == (0, 2_333, 0)
    assert await balances(runtime, a) == (0, 333 - 166 + 1_000, 0)
    await assert_books_clean(runtime)


async def test_per_commission_settles_each_at_its_own_time_without_statements(server):
    runtime = server.runtime
    _, b, buyer = await chain(runtime, 2)
    await paid_order(runtime, "own", buyer, [item(10_000)], when=china("2026-05-20", "12:00"))
    await confirm(runtime, "own", china("2026-05-24", "12:00"))
    assert await run_job(runtime, china("2026-05-31", "12:00")) == 2
    assert await balances(runtime, b) == (0, 1_000, 0)
    assert await runtime.db["statements"].count_documents({}) == 0
    await assert_books_clean(runtime)


async def test_below_the_minimum_the_amount_carries_to_the_next_period(server):
    runtime = server.runtime
    await settle_by(runtime, "daily", minimum_fen=1_000)
    _, b, buyer = await chain(runtime, 2)
    await paid_order(runtime, "small", buyer, [item(9_990)], when=china("2026-05-20", "12:00"))
    await paid_order(runtime, "more", buyer, [item(5_000)], when=china("2026-05-20", "12:00"))
    await confirm(runtime, "small", china("2026-05-24", "12:00"))  # 999 due on 31 May
    await confirm(runtime, "more", china("2026-05-25", "12:00"))  # 500 due on 1 June
    assert await run_job(runtime, china("2026-06-01", "00:10")) == 0
    assert await statements_of(runtime, b) == []
    assert await run_job(runtime, china("2026-06-02", "00:10")) == 2
    assert await statements_of(runtime, b) == [
        (f"{b['_id']}:2026-06-01_2026-06-02", "settled", 1_499, [("small:0:1", 999), ("more:0:1", 500)])]
    assert await balances(runtime, b) == (0, 1_499, 0)
    await assert_books_clean(runtime)


async def test_two_concurrent_runs_build_one_statement_and_move_the_money_once(server):
    runtime = server.runtime
    await settle_by(runtime, "weekly")
    a, b, buyer = await chain(runtime, 2)
    for number in range(3):
        await paid_order(runtime, f"race-{number}", buyer, [item(10_000)], when=china("2026-05-20", "12:00"))
        await confirm(runtime, f"race-{number}", china("2026-05-24", "12:00"))
    now = china("2026-06-01", "00:01")
    first, second = await asyncio.gather(runtime.statements.build_due(now), runtime.statements.build_due(now))
    assert sorted(first.statements + second.statements) == sorted([f"{b['_id']}:2026-05-25_2026-06-01",
                                                                   f"{a['_id']}:2026-05-25_2026-06-01"])
    assert first.settled + second.settled == 6
    assert [(status, fen) for _, status, fen, _ in await statements_of(runtime, b)] == [("settled", 3_000)]
    assert await balances(runtime, b) == (0, 3_000, 0)
    assert await balances(runtime, a) == (0, 1_500, 0)
    await assert_books_clean(runtime)


async def earning_promoter(server, name: str, orders: dict[str, int], policy: str) -> tuple[dict, dict]:
    """Under `policy`, with statements above 10 yuan reviewed: a promoter who logged in to the mini-program (and
    their auth headers), earning 10% of `orders` (order number -> fen) bought by a member below them, confirmed
    on 24 May: due on Sunday 31 May."""
    runtime = server.runtime
    await settle_by(runtime, policy, review_above_fen=1_000)
    session = await login(server, name)
    member = await runtime.db["members"].find_one({"_id": session["member"]["id"]})
    member.setdefault("ancestor_ids", [])
    buyer = await add_member(runtime, member)
    for order_no, fen in orders.items():
        await paid_order(runtime, order_no, buyer, [item(fen)], when=china("2026-05-20", "12:00"))
        await confirm(runtime, order_no, china("2026-05-24", "12:00"))
    return member, auth(session["token"])


async def test_a_statement_above_the_threshold_is_unwithdrawable_until_approved(server):
    runtime = server.runtime
    await rules(runtime)
    member, headers = await earning_promoter(server, "big-earner", {"big": 50_000, "gone": 20_000}, "daily")
    assert await run_job(runtime, china("2026-06-01", "00:05")) == 0
    statement_id = f"{member['_id']}:2026-05-31_2026-06-01"
    assert await statements_of(runtime, member) == [
        (statement_id, "awaiting_review", 7_000, [("big:0:1", 5_000), ("gone:0:1", 2_000)])]
    assert await balances(runtime, member) == (7_000, 0, 0)
    refused = await withdraw(server, headers, 5_000)
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "insufficient_balance"
    # The next runs, per commission or by period, leave a held commission alone.
    assert await run_job(runtime, china("2026-06-03", "00:05")) == 0

    # While it waits: one order refunded in full, a fifth of the other.
    await refund(runtime, "gone", "gone-r", 20_000, china("2026-06-01", "10:00"))
    await refund(runtime, "big", "big-r", 10_000, china("2026-06-01", "10:00"))
    listed = await server.http.get("/api/merchant/v1/statements", params={"status": "awaiting_review"},
                                   headers=MERCHANT)
    assert [each["id"] for each in listed.json()["items"]] == [statement_id]
    detail = (await server.http.get(f"/api/merchant/v1/statements/{statement_id}", headers=MERCHANT)).json()
    assert (detail["amount_fen"], detail["ledger_fen"], detail["period_start"]) == (
        7_000, 0, "2026-05-30T16:00:00+00:00")

    approved = await server.http.post(f"/api/merchant/v1/statements/{statement_id}/approve", headers=MERCHANT)
    assert approved.status_code == 200, approved.text
    body = approved.json()
    assert (body["status"], body["amount_fen"], body["built_fen"], body["ledger_fen"]) == ("settled", 4_000, 7_000,
                                                                                           4_000)
    assert [(line["commission_id"], line["amount_fen"]) for line in body["lines"]] == [("big:0:1", 4_000)]
    assert await balances(runtime, member) == (0, 4_000, 0)
    audit = await runtime.audit.page(target_kind="statement", target_id=statement_id)
    assert [(each["action"], each["before"], each["after"]) for each in audit] == [
        ("statement.approve", {"status": "awaiting_review", "amount_fen": 7_000},
         {"status": "settled", "amount_fen": 4_000})]
    again = await server.http.post(f"/api/merchant/v1/statements/{statement_id}/approve", headers=MERCHANT)
    assert again.status_code == 409 and again.json()["error"]["code"] == "not_awaiting_review"

    paid_out = await withdraw(server, headers, 4_000)
    assert paid_out.status_code == 201, paid_out.text
    mine = await server.http.get("/api/v1/me/statements", headers=headers)
    assert [(each["id"], each["status"], each["amount_fen"]) for each in mine.json()["items"]] == [
        (statement_id, "settled", 4_000)]
    ledger = (await server.http.get("/api/v1/ledger", headers=headers)).json()["items"]
    named = {(each["kind"], each["bucket"], each["statement_id"]) for each in ledger if each["ref"] == "big:0:1"}
    assert named == {("commission_frozen", "frozen", None), ("commission_cancelled", "frozen", None),
                     ("commission_settled", "frozen", statement_id), ("commission_settled", "available", statement_id)}
    await assert_books_clean(runtime)


async def test_a_rejected_statement_returns_its_commissions_to_the_next_period(server):
    runtime = server.runtime
    member, _ = await earning_promoter(server, "rejected-earner", {"held": 50_000}, "daily")
    await run_job(runtime, china("2026-06-01", "00:05"))
    first = f"{member['_id']}:2026-05-31_2026-06-01"
    unexplained = await server.http.post(f"/api/merchant/v1/statements/{first}/reject", json={}, headers=MERCHANT)
    assert unexplained.status_code == 400 and unexplained.json()["error"]["field"] == "reason"
    rejected = await server.http.post(f"/api/merchant/v1/statements/{first}/reject", json={"reason": "核对订单"},
                                      headers=MERCHANT)
    assert (rejected.status_code, rejected.json()["status"], rejected.json()["reason"]) == (200, "rejected", "核对订单")
    assert await balances(runtime, member) == (5_000, 0, 0)

    assert await run_job(runtime, china("2026-06-01", "09:00")) == 0  # not twice for the same period
    assert len(await statements_of(runtime, member)) == 1
    await run_job(runtime, china("2026-06-02", "00:05"))
    second = f"{member['_id']}:2026-06-01_2026-06-02"
    assert (await statements_of(runtime, member))[1] == (second, "awaiting_review", 5_000, [("held:0:1", 5_000)])
    missing = await server.http.post("/api/merchant/v1/statements/nobody:2026-06-01_2026-06-02/approve",
                                     headers=MERCHANT)
    assert missing.status_code == 404
    await runtime.statements.approve(second, china("2026-06-02", "09:00"))
    assert await balances(runtime, member) == (0, 5_000, 0)
    await assert_books_clean(runtime)


async def test_finance_reviews_statements_in_the_console(server):
    runtime = server.runtime
    member, _ = await earning_promoter(server, "console-earner", {"c1": 30_000}, "monthly")
    await run_job(runtime, china("2026-06-01", "00:05"))
    statement_id = f"{member['_id']}:2026-05-01_2026-06-01"
    console = await staff_client(server, "finance")
    page = await console.get("/admin/statements")
    assert page.status_code == 200 and f'data-statement-id="{statement_id}"' in page.text
    assert 'href="/admin/statements"' in page.text and 'data-action="approve"' in page.text
    approved = await console.post(f"/admin/statements/{statement_id}/approve", {"back_status": "awaiting_review"})
    assert approved.status_code == 303, approved.text
    assert (await runtime.statements.get(statement_id))["status"] == "settled"
    assert await balances(runtime, member) == (0, 3_000, 0)
    refused = await console.post(f"/admin/statements/{statement_id}/reject", {"reason": "晚了"})
    assert refused.status_code == 409 and "这张结算单已不在待复核状态" in refused.text
    await console.aclose()
    operator = await staff_client(server, "operator")
    assert (await operator.get("/admin/statements")).status_code == 403
    await operator.aclose()


async def test_a_frozen_promoters_commissions_wait_for_a_statement_after_unfreezing(server):
    runtime = server.runtime
    member, _ = await earning_promoter(server, "frozen-earner", {"cold": 50_000}, "daily")
    await run_job(runtime, china("2026-06-01", "00:05"))
    held = f"{member['_id']}:2026-05-31_2026-06-01"
    frozen = await server.http.post(f"/api/merchant/v1/members/{member['_id']}/freeze", headers=MERCHANT)
    assert frozen.status_code == 200, frozen.text
    refused = await server.http.post(f"/api/merchant/v1/statements/{held}/approve", headers=MERCHANT)
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "member_frozen"
    await server.http.post(f"/api/merchant/v1/statements/{held}/reject", json={"reason": "冻结"}, headers=MERCHANT)
    await run_job(runtime, china("2026-06-02", "00:05"))  # frozen: no statement for this period
    assert [status for _, status, _, _ in await statements_of(runtime, member)] == ["rejected"]

    unfrozen = await server.http.post(f"/api/merchant/v1/members/{member['_id']}/unfreeze", headers=MERCHANT)
    assert unfrozen.status_code == 200, unfrozen.text
    await run_job(runtime, china("2026-06-03", "00:05"))
    assert (await statements_of(runtime, member))[1][1:] == ("awaiting_review", 5_000, [("cold:0:1", 5_000)])
    assert await balances(runtime, member) == (5_000, 0, 0)
    await assert_books_clean(runtime)
