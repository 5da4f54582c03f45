"""The console's money pages: the withdrawals review queue with each promoter's history and risk signals,
every action on a withdrawal (approve, reject, retry, open a bank account, mark paid or failed) and the
applications review — each done through the API's services, audited, refused clearly, and only by the
roles allowed."""

from __future__ import annotations

import html
import re
from datetime import datetime, timedelta, timezone

from distribution.binding import BindingSettings
from sandbox.faults import Fault
from sandbox.pay import CREATE_BILL_ENDPOINT
from tests.console_fixtures import staff_client
from tests.test_miniapp_session import auth, login
from tests.test_withdrawals import awaiting_review, balances, drain, promoter, rules, withdraw
from tests.test_withdrawals import paying  # noqa: F401 (fixtures)

NOW = datetime.now(timezone.utc)
BANK = {"account_name": "李雷", "account_no": "6225880212345678", "bank_name": "招商银行杭州分行"}
_CARDS = re.compile(r'<article class="card (?:withdrawal|application)" data-(?:withdrawal|application)-id="([^"]+)" '
                    r'data-status="([^"]+)">(.*?)</article>', re.S)
_RISKS = re.compile(r'data-risk="([^"]+)"')
_ERROR = re.compile(r'id="action-error">([^<]*)<')
_NOTICE = re.compile(r'<p class="notice" role="status">([^<]*)</p>')


def cards(page) -> dict[str, tuple[str, str]]:
    """Each card on the page by id: (status, its text)."""
    assert page.status_code == 200, page.text
    return {key: (status, re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", body))))
            for key, status, body in _CARDS.findall(page.text)}


def card_of(page, key: str) -> str:
    return next(body for found, _, body in _CARDS.findall(page.text) if found == key)


def risks(page, withdrawal_id: str) -> list[str]:
    return _RISKS.findall(card_of(page, withdrawal_id))


async def entries(server, kind: str, target: str) -> list[tuple[str, dict | None, dict | None, str | None, str]]:
    """(action, before, after, reason, who) of the target's audit entries, oldest first."""
    found = await server.runtime.audit.page(target_kind=kind, target_id=target)
    return [(entry["action"], entry["before"], entry["after"], entry.get("reason"), entry["actor"]["name"])
            for entry in reversed(found)]


async def status(server, withdrawal_id: str) -> str:
    return (await server.runtime.withdrawals.get(withdrawal_id))["status"]


# --- the queue ---------------------------------------------------------------------------------------


async def test_the_queue_shows_waiting_requests_with_the_promoters_history_and_risks(server):
    runtime = server.runtime
    await rules(runtime, auto_approve_under_fen=0)
    session, veteran = await promoter(server, "veteran", 100_000)
    await runtime.db["members"].update_one({"_id": session["member"]["id"]}, {
        "$set": {"nickname": "老王", "direct_count": 4, "created_at": NOW - timedelta(days=90, hours=1)}})
    first = (await withdraw(server, veteran, 1_000, "bank", bank=BANK)).json()["id"]
    await runtime.withdrawals.review(first, True, None, NOW)
    await runtime.withdrawals.mark_bank_paid(first, "CMB-1", NOW)
    large = (await withdraw(server, veteran, 5_000)).json()["id"]
    _, newcomer = await promoter(server, "newcomer", 3_000)
    fresh = (await withdraw(server, newcomer, 2_000)).json()["id"]
    console = await staff_client(server, "finance")

    page = await console.get("/admin/withdrawals")
    queue = cards(page)
    assert list(queue) == [fresh, large]  # waiting for review only, newest first
    assert queue[large][0] == "pending_review" and "¥50.00" in queue[large][1] and "老王" in queue[large][1]
    assert "已提现 1 笔 · ¥10.00" in queue[large][1] and "累计佣金 ¥1,000.00" in queue[large][1]
    assert "注册 90 天" in queue[large][1] and "直推成员 4" in queue[large][1]
    assert risks(page, large) == ["above_usual"]
    assert risks(page, fresh) == ["first_withdrawal", "new_account"]
    assert "首次提现" in queue[fresh][1] and "已提现 0 笔" in queue[fresh][1]

    assert list(cards(await console.get("/admin/withdrawals", status="paid"))) == [first]
    assert list(cards(await console.get("/admin/withdrawals", status="all"))) == [fresh, large, first]
    refused = await console.get("/admin/withdrawals", status="lost")
    assert refused.status_code == 400 and 'data-field="status"' in refused.text
    await console.aclose()


async def test_the_queue_pages_through_many_requests(server):
    await rules(server.runtime, auto_approve_under_fen=0, daily_count_cap=30, daily_amount_cap_fen=1_000_000)
    _, headers = await promoter(server, "busy", 100_000)
    made = [(await withdraw(server, headers, 100 + number)).json()["id"] for number in range(23)]
    console = await staff_client(server, "owner")
    first = await console.get("/admin/withdrawals")
    assert list(cards(first)) == made[:2:-1]
    following = html.unescape(re.search(r'<a href="([^"]+)" rel="next">', first.text).group(1))
    assert list(cards(await console.http.get(following, headers={"Accept": "text/html"}))) == made[2::-1]
    await console.aclose()


# --- review -----------------------------------------------------------------------------------------


async def test_finance_approves_and_rejects_each_audited_and_a_repeat_or_a_missing_reason_is_refused(server):
    runtime = server.runtime
    await rules(runtime, auto_approve_under_fen=0)
    session, headers = await promoter(server, "reviewed", 30_000)
    approving = (await withdraw(server, headers, 10_000)).json()["id"]
    rejecting = (await withdraw(server, headers, 12_000)).json()["id"]
    console = await staff_client(server, "finance")

    approved = await console.post(f"/admin/withdrawals/{approving}/approve", {"back_status": "pending_review"})
    assert approved.status_code == 303
    assert approved.headers["Location"] == "/admin/withdrawals?status=pending_review&done=approve"
    landing = await console.http.get(approved.headers["Location"], headers={"Accept": "text/html"})
    assert _NOTICE.search(landing.text).group(1) == "已通过提现" and list(cards(landing)) == [rejecting]
    assert await status(server, approving) == "approved"
    assert await entries(server, "withdrawal", approving) == [
        ("withdrawal.approve", {"status": "pending_review"}, {"status": "approved"}, None, "finance1")]

    again = await console.post(f"/admin/withdrawals/{approving}/approve")
    assert again.status_code == 409 and _ERROR.search(again.text).group(1) == "这笔提现已不在待审核状态，不能再审核"
    for reason in (None, "   "):
        unexplained = await console.post(f"/admin/withdrawals/{rejecting}/reject",
                                         {} if reason is None else {"reason": reason})
        assert unexplained.status_code == 400 and _ERROR.search(unexplained.text).group(1) == "请填写原因（最多 500 字）"
    assert await status(server, rejecting) == "pending_review"
    assert len(await entries(server, "withdrawal", approving)) == 1

    rejected = await console.post(f"/admin/withdrawals/{rejecting}/reject", {"reason": "收款信息与实名不符"})
    assert rejected.status_code == 303
    assert (await runtime.withdrawals.get(rejecting))["note"] == "收款信息与实名不符"
    assert await entries(server, "withdrawal", rejecting) == [
        ("withdrawal.reject", {"status": "pending_review"}, {"status": "rejected"}, "收款信息与实名不符", "finance1")]
    assert await balances(runtime, session["member"]["id"]) == {"frozen_fen": 0, "available_fen": 20_000,
                                                                "locked_fen": 10_000}  # the rejected one unlocked

    forged = await console.post(f"/admin/withdrawals/{rejecting}/approve", csrf=False)
    assert forged.status_code == 403
    unknown = await console.post("/admin/withdrawals/000000000000000000000000/approve")
    assert unknown.status_code == 404 and _ERROR.search(unknown.text).group(1) == "找不到这笔提现"
    await console.aclose()


async def test_an_operator_may_neither_see_nor_act_on_withdrawals(server):
    waiting = (await awaiting_review(server, "guarded", 20_000, 10_000))[0]["id"]
    console = await staff_client(server, "operator")
    page = await console.get("/admin/withdrawals")
    assert page.status_code == 403 and 'data-code="forbidden_role"' in page.text
    for action, data in (("approve", {}), ("reject", {"reason": "x"}), ("retry", {}),
                         ("mark-paid", {"reference": "x"})):
        assert (await console.post(f"/admin/withdrawals/{waiting}/{action}", data)).status_code == 403
    assert (await console.post(f"/admin/withdrawals/{waiting}/bank-account")).status_code == 403
    assert await status(server, waiting) == "pending_review"
    assert 'href="/admin/withdrawals"' not in (await console.get("/admin/orders")).text  # not in the navigation
    await console.aclose()


# --- payouts ----------------------------------------------------------------------------------------


async def test_a_stalled_payout_is_retried_now_once_and_audited(paying, sandbox):
    server, runtime = paying, paying.runtime
    await rules(runtime)
    _, headers = await promoter(server, "stalled", 5_000)
    withdrawal = (await withdraw(server, headers, 1_000)).json()["id"]
    sandbox.state.faults.add(Fault(CREATE_BILL_ENDPOINT, errcode=500))
    await drain(runtime)  # the payout's first attempt fails; its job waits out a backoff
    stalled = await runtime.withdrawals.get(withdrawal)
    assert (stalled["status"], stalled["attempts"]) == ("approved", 1) and stalled["last_error"]
    console = await staff_client(server, "finance")
    page = await console.get("/admin/withdrawals", status="approved")
    assert 'data-action="retry"' in card_of(page, withdrawal) and "data-last-error" in page.text

    retried = await console.post(f"/admin/withdrawals/{withdrawal}/retry", {"back_status": "approved"})
    assert retried.status_code == 303 and retried.headers["Location"].endswith("?status=approved&done=retry")
    await drain(runtime)
    assert await status(server, withdrawal) == "waiting_user_confirm"
    assert (await console.post(f"/admin/withdrawals/{withdrawal}/retry")).status_code == 303  # harmless again
    await drain(runtime)
    assert len(sandbox.state.calls.received(endpoint=CREATE_BILL_ENDPOINT)) == 2  # the failed one and the bill
    assert list(sandbox.state.pay.bills) == [withdrawal]
    await sandbox.state.pay.confirm(withdrawal)
    assert await status(server, withdrawal) == "paid"
    done = await console.post(f"/admin/withdrawals/{withdrawal}/retry")
    assert done.status_code == 409 and _ERROR.search(done.text).group(1) == "这笔提现没有进行中的打款，无需重试"
    assert [entry[:2] for entry in await entries(server, "withdrawal", withdrawal)] == [
        ("withdrawal.retry", {"status": "approved"}), ("withdrawal.retry", {"status": "waiting_user_confirm"})]
    assert (await runtime.ledger.verify()).clean
    await console.aclose()


async def test_a_bank_withdrawal_is_opened_and_marked_paid_or_failed_by_finance(server):
    runtime = server.runtime
    await rules(runtime)
    session, headers = await promoter(server, "banked", 5_000)
    paid = (await withdraw(server, headers, 1_000, "bank", bank=BANK)).json()["id"]
    failed = (await withdraw(server, headers, 1_500, "bank", bank=BANK)).json()["id"]
    console = await staff_client(server, "finance")
    queue = await console.get("/admin/withdrawals", status="approved")
    assert {'data-action="bank_account"', 'data-action="mark_paid"', 'data-action="mark_failed"'} <= set(
        re.findall(r'data-action="[a-z_]+"', card_of(queue, paid)))
    assert BANK["account_no"] not in queue.text  # the account stays sealed until someone opens it

    opened = await console.post(f"/admin/withdrawals/{paid}/bank-account")
    assert opened.status_code == 200 and BANK["account_no"] in opened.text and "招商银行杭州分行" in opened.text
    assert [entry[0] for entry in await entries(server, "withdrawal", paid)] == ["withdrawal.bank_account"]
    assert [reading["action"] for reading in await runtime.withdrawals.store.readings(paid)] == ["bank_account_read"]

    nameless = await console.post(f"/admin/withdrawals/{paid}/mark-paid", {"back_status": "approved"})
    assert nameless.status_code == 400 and _ERROR.search(nameless.text).group(1) == "请填写银行转账流水号（最多 128 字）"
    marked = await console.post(f"/admin/withdrawals/{paid}/mark-paid", {"reference": "CMB-20260501-0001"})
    assert marked.status_code == 303 and await status(server, paid) == "paid"
    assert (await entries(server, "withdrawal", paid))[-1] == (
        "withdrawal.mark_paid", {"status": "approved"}, {"status": "paid", "reference": "CMB-20260501-0001"}, None,
        "finance1")
    twice = await console.post(f"/admin/withdrawals/{paid}/mark-failed", {"reason": "户名不符"})
    assert twice.status_code == 409 and "只有已通过、待打款的银行卡提现" in twice.text

    returned = await console.post(f"/admin/withdrawals/{failed}/mark-failed", {"reason": "户名不符"})
    assert returned.status_code == 303 and await status(server, failed) == "returned"
    assert await entries(server, "withdrawal", failed) == [
        ("withdrawal.mark_failed", {"status": "approved"}, {"status": "returned"}, "户名不符", "finance1")]
    assert await balances(runtime, session["member"]["id"]) == {"frozen_fen": 0, "available_fen": 4_000,
                                                                "locked_fen": 0}
    wechat = (await withdraw(server, headers, 500)).json()["id"]
    not_bank = await console.post(f"/admin/withdrawals/{wechat}/bank-account")
    assert not_bank.status_code == 409 and _ERROR.search(not_bank.text).group(1) == "这笔提现不是银行卡提现"
    await console.aclose()


# --- applications ---------------------------------------------------------------------------------


async def apply(server, name: str, phone: str) -> tuple[str, str]:
    """(member, application) of a new member asking to promote."""
    session = await login(server, name)
    applied = await server.http.post("/api/v1/promoter-application", headers=auth(session["token"]),
                                     json={"name": name, "phone": phone, "reason": "朋友多"})
    assert applied.status_code == 201, applied.text
    return session["member"]["id"], applied.json()["id"]


async def test_an_operator_reviews_applications_with_the_applicants_details(server):
    runtime = server.runtime
    await runtime.merchant_settings.put(BindingSettings.from_dict({"upline_eligibility": "reviewed"}))
    lilei, approving = await apply(server, "李雷", "13900001111")
    _, rejecting = await apply(server, "韩梅梅", "13800002222")
    console = await staff_client(server, "operator")

    page = await console.get("/admin/applications")
    queue = cards(page)
    assert list(queue) == [rejecting, approving]
    assert "139****1111" in queue[approving][1] and "朋友多" in queue[approving][1] and "13900001111" not in page.text

    approved = await console.post(f"/admin/applications/{approving}/approve", {"back_status": "pending"})
    assert approved.status_code == 303
    assert approved.headers["Location"] == "/admin/applications?status=pending&done=approve"
    assert (await runtime.members.get(lilei))["promoter_status"] == "approved"
    assert await entries(server, "application", approving) == [
        ("application.approve", {"status": "pending"}, {"status": "approved"}, None, "operator1")]
    again = await console.post(f"/admin/applications/{approving}/reject", {"reason": "重复"})
    assert again.status_code == 409 and _ERROR.search(again.text).group(1) == "这份申请已经处理过了"

    unexplained = await console.post(f"/admin/applications/{rejecting}/reject")
    assert unexplained.status_code == 400 and _ERROR.search(unexplained.text).group(1) == "请填写原因（最多 500 字）"
    rejected = await console.post(f"/admin/applications/{rejecting}/reject", {"reason": "资料不全"})
    assert rejected.status_code == 303
    assert await entries(server, "application", rejecting) == [
        ("application.reject", {"status": "pending"}, {"status": "rejected"}, "资料不全", "operator1")]
    assert list(cards(await console.get("/admin/applications"))) == []
    decided = cards(await console.get("/admin/applications", status="all"))
    assert {key: value[0] for key, value in decided.items()} == {rejecting: "rejected", approving: "approved"}
    assert "资料不全" in decided[rejecting][1]
    await console.aclose()


async def test_finance_may_not_review_applications(server):
    await server.runtime.merchant_settings.put(BindingSettings.from_dict({"upline_eligibility": "reviewed"}))
    _, waiting = await apply(server, "路人", "13700003333")
    console = await staff_client(server, "finance")
    assert (await console.get("/admin/applications")).status_code == 403
    assert (await console.post(f"/admin/applications/{waiting}/approve")).status_code == 403
    assert (await server.runtime.applications.applications.get(waiting))["status"] == "pending"
    await console.aclose()
