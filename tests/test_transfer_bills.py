"""WeChat-balance payouts through WeChat Pay's transfer bills, end to end over real HTTP: the server signs,
the sandbox verifies, makes the bill, and calls back signed and encrypted; every bill state, every repeat,
every forgery, lost jobs and lost callbacks, and bank payouts by the merchant's hand."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta, timezone

import pytest

from distribution.withdrawals import WithdrawalRules
from sandbox import Fault
from sandbox.pay import CANCEL_BILL_ENDPOINT, CREATE_BILL_ENDPOINT, QUERY_BILL_ENDPOINT
from sandbox.wechat_pay import SANDBOX_MCH_CERT_SERIAL
from services.withdrawals import RECONCILE_AFTER, SWEEP_AFTER
from settings import SettingsError
from stores.job_queue import RetryLater
from tests.conftest import MERCHANT_TOKEN, start_server
from tests.test_miniapp_session import auth, login
from tests.test_withdrawals import balances, credit, drain, promoter, withdraw

MERCHANT = {"Authorization": f"Bearer {MERCHANT_TOKEN}"}
NOTIFY = "/wechatpay/notify/transfer"
LOCKED = {"frozen_fen": 0, "available_fen": 4_000, "locked_fen": 1_000}
RETURNED = {"frozen_fen": 0, "available_fen": 5_000, "locked_fen": 0}
PAID = {"frozen_fen": 0, "available_fen": 4_000, "locked_fen": 0}


def now() -> datetime:
    return datetime.now(timezone.utc)


@pytest.fixture
async def paying(server, sandbox):
    """The server, WeChat Pay's callbacks delivered to it, and withdrawals approved at once."""
    sandbox.state.pay.deliver_to = server.base_url
    await server.runtime.merchant_settings.put(WithdrawalRules.from_dict({"min_distinct_paying_buyers": 0}))
    return server


async def waiting(server, name: str = "payee", amount: int = 1_000) -> tuple[str, str]:
    """A promoter with 5,000 fen whose withdrawal of `amount` waits for them to accept it: (member, withdrawal)."""
    session, headers = await promoter(server, name, 5_000)
    withdrawal = (await withdraw(server, headers, amount)).json()
    await drain(server.runtime)
    assert (await status(server, withdrawal["id"])) == "waiting_user_confirm"
    return session["member"]["id"], withdrawal["id"]


async def status(server, withdrawal_id: str) -> str:
    return (await server.runtime.withdrawals.store.get(withdrawal_id))["status"]


async def clean(server) -> None:
    assert (await server.runtime.ledger.verify()).clean


async def test_a_bill_the_promoter_never_accepts_is_cancelled_and_the_money_returned(paying, sandbox):
    member, withdrawal = await waiting(paying)
    assert await paying.runtime.withdrawals.advance(withdrawal, now()) == "still waiting_user_confirm"
    confirm_by = (await paying.runtime.withdrawals.store.get(withdrawal))["confirm_by"]
    assert timedelta(hours=22) < confirm_by - now() <= timedelta(hours=23)  # before WeChat Pay's own 24 h
    assert await paying.runtime.withdrawals.advance(withdrawal, confirm_by + timedelta(seconds=1)) == "returned"
    assert sandbox.state.pay.bills[withdrawal].state == "CANCELLED"
    assert len(sandbox.state.calls.received(CANCEL_BILL_ENDPOINT)) == 1
    await sandbox.state.pay.settle()  # WeChat Pay's callback of the cancel changes nothing more
    stored = await paying.runtime.withdrawals.store.get(withdrawal)
    assert [h["status"] for h in stored["history"]] == ["approved", "waiting_user_confirm", "failed", "returned"]
    assert stored["note"] == "WeChat Pay transfer CANCELLED" and stored["next_check_at"] is None
    assert await balances(paying.runtime, member) == RETURNED
    await clean(paying)


async def test_freezing_a_member_cancels_the_transfer_waiting_for_them_and_returns_the_money(paying, sandbox):
    member, withdrawal = await waiting(paying)
    _, other_withdrawal = await waiting(paying, "other")
    answer = await paying.http.post(f"/api/merchant/v1/members/{member}/freeze", headers=MERCHANT)
    assert answer.status_code == 200 and answer.json()["frozen"] is True
    await drain(paying.runtime)
    assert sandbox.state.pay.bills[withdrawal].state == "CANCELLED"
    await sandbox.state.pay.settle()
    assert await status(paying, withdrawal) == "returned"
    assert await balances(paying.runtime, member) == RETURNED  # held in the frozen member's balance
    assert await status(paying, other_withdrawal) == "waiting_user_confirm"  # another promoter's is left alone
    assert len(sandbox.state.calls.received(CANCEL_BILL_ENDPOINT)) == 1
    await clean(paying)


async def test_a_slow_cancel_goes_through_cancelling(paying, sandbox):
    member, withdrawal = await waiting(paying)
    sandbox.state.pay.cancel_takes_time = True
    later = now() + timedelta(hours=23, minutes=1)
    assert await paying.runtime.withdrawals.advance(withdrawal, later) == "cancelling"
    assert await balances(paying.runtime, member) == LOCKED
    await sandbox.state.pay.finish_cancel(withdrawal)
    assert await status(paying, withdrawal) == "returned"
    assert await balances(paying.runtime, member) == RETURNED


async def test_a_cancel_that_comes_too_late_finds_the_promoter_accepted(paying, sandbox):
    member, withdrawal = await waiting(paying)
    await sandbox.state.pay.confirm(withdrawal, finish=False)  # accepted, still transferring
    assert await paying.runtime.withdrawals.advance(withdrawal, now() + timedelta(hours=24)) == "transferring"
    assert sandbox.state.pay.bills[withdrawal].state == "TRANSFERING"
    assert await balances(paying.runtime, member) == LOCKED
    sandbox.state.pay.move(withdrawal, "SUCCESS")
    await sandbox.state.pay.notify(withdrawal)
    assert await status(paying, withdrawal) == "paid"
    assert await balances(paying.runtime, member) == PAID
    await clean(paying)


@pytest.mark.parametrize("ending", ["cancel", "fail"])
async def test_a_cancelled_or_failed_bill_returns_the_money_once_however_often_it_is_told(paying, sandbox, ending):
    member, withdrawal = await waiting(paying)
    control = await paying.http.post(f"{sandbox.base_url}/_sandbox/transfer-bills/{withdrawal}/{ending}")
    assert control.json()["notices_sent"] == [200]
    assert await sandbox.state.pay.notify(withdrawal, times=2) == [200, 200]
    assert await paying.runtime.withdrawals.advance(withdrawal, now()) == "nothing to pay"
    stored = await paying.runtime.withdrawals.store.get(withdrawal)
    assert (stored["status"], stored["bill_state"]) == ("returned", "FAIL" if ending == "fail" else "CANCELLED")
    assert await balances(paying.runtime, member) == RETURNED
    unlocked = await paying.runtime.db.ledger_entries.count_documents({"ref": withdrawal, "kind": "withdrawal_unlocked"})
    assert unlocked == 2  # locked -1000, available +1000: once
    assert await paying.runtime.db.notifications.count_documents({"kind": "withdrawal_returned"}) == 1
    await clean(paying)


async def test_the_callback_delivered_three_times_pays_once(paying, sandbox):
    member, withdrawal = await waiting(paying)
    await sandbox.state.pay.confirm(withdrawal, deliver=False)
    assert await sandbox.state.pay.notify(withdrawal, times=3) == [200, 200, 200]
    assert await balances(paying.runtime, member) == PAID
    paid = await paying.runtime.db.ledger_entries.count_documents({"ref": withdrawal, "kind": "withdrawal_paid"})
    assert paid == 1
    assert await paying.runtime.db.notifications.count_documents({"kind": "withdrawal_paid"}) == 1
    await clean(paying)


async def test_forged_stale_replayed_or_undecryptable_callbacks_change_nothing(paying, sandbox):
    member, withdrawal = await waiting(paying)
    await sandbox.state.pay.confirm(withdrawal, deliver=False)
    pay = sandbox.state.pay
    assert await pay.notify(withdrawal, forge="signature") == [401]
    assert await pay.notify(withdrawal, forge="timestamp") == [401]
    assert await pay.notify(withdrawal, forge="apiv3_key") == [400]
    unsigned = await paying.http.post(NOTIFY, content=pay.notice(pay.bills[withdrawal]).body)
    assert unsigned.status_code == 401 and unsigned.json()["code"] == "FAIL"
    assert await status(paying, withdrawal) == "waiting_user_confirm"
    assert await balances(paying.runtime, member) == LOCKED

    assert await pay.notify(withdrawal) == [200]
    assert await pay.send(pay.last_delivery) == 400  # the very same callback again: its nonce was seen
    assert await balances(paying.runtime, member) == PAID
    await clean(paying)


async def test_a_create_that_times_out_is_found_by_the_query_and_never_made_twice(paying, sandbox):
    session, headers = await promoter(paying, "slow", 5_000)
    withdrawal = (await withdraw(paying, headers, 1_000)).json()["id"]
    sandbox.state.faults.add(Fault(CREATE_BILL_ENDPOINT, delay_seconds=1.0))  # made, but answered too late
    paying.runtime.withdrawals.bills.client.timeout = 0.3
    await paying.runtime.withdrawals.advance(withdrawal, now())
    assert await status(paying, withdrawal) == "waiting_user_confirm"
    creates = sandbox.state.calls.received(CREATE_BILL_ENDPOINT)
    assert [call.body["out_bill_no"] for call in creates] == [withdrawal, withdrawal]  # the package asked again
    assert len(sandbox.state.calls.received(QUERY_BILL_ENDPOINT)) == 1
    assert list(sandbox.state.pay.bills) == [withdrawal]
    mine = (await paying.http.get(f"/api/v1/withdrawals/{withdrawal}", headers=headers)).json()
    assert mine["confirm"]["package"] == sandbox.state.pay.bills[withdrawal].package_info


async def test_a_lost_callback_is_found_by_reconciliation(paying, sandbox):
    member, withdrawal = await waiting(paying)
    await sandbox.state.pay.confirm(withdrawal, deliver=False)  # WeChat Pay's callback never arrives
    runtime = paying.runtime
    assert await runtime.withdrawals.requeue_due(now()) == 0  # not due yet
    assert await runtime.withdrawals.requeue_due(now() + RECONCILE_AFTER + timedelta(seconds=1)) == 1
    await drain(runtime)
    assert await status(paying, withdrawal) == "paid"
    assert await balances(runtime, member) == PAID
    await clean(paying)


async def test_a_lost_payout_job_is_queued_again_by_the_sweep(paying, sandbox, monkeypatch):
    runtime = paying.runtime
    session, _ = await promoter(paying, "lost", 5_000)
    member = await runtime.members.get(session["member"]["id"])

    async def redis_is_down(*_args, **_kwargs):
        raise ConnectionError("the queue is unreachable")

    with monkeypatch.context() as patched:
        patched.setattr(runtime.withdrawals.queue, "enqueue", redis_is_down)
        with pytest.raises(ConnectionError):
            await runtime.withdrawals.request(member, 1_000, "wechat_balance", None, now())
    (withdrawal,) = await runtime.withdrawals.page(member["_id"], "approved", 10, None)
    assert await drain(runtime) == 0  # the job was never queued: the money is locked, nothing pays it
    assert await runtime.withdrawals.requeue_due(now() + SWEEP_AFTER + timedelta(seconds=1)) == 1
    await drain(runtime)
    await sandbox.state.pay.confirm(withdrawal["_id"])
    assert await status(paying, withdrawal["_id"]) == "paid"
    assert await balances(runtime, member["_id"]) == PAID
    await clean(paying)


async def test_fifty_concurrent_approvals_and_retries_make_one_bill(paying, sandbox):
    runtime = paying.runtime
    await runtime.merchant_settings.put(WithdrawalRules.from_dict({"min_distinct_paying_buyers": 0,
                                                                   "auto_approve_under_fen": 500}))
    session, headers = await promoter(paying, "rush", 5_000)
    withdrawal = (await withdraw(paying, headers, 1_000)).json()["id"]
    approvals = await asyncio.gather(*(paying.http.post(f"/api/merchant/v1/withdrawals/{withdrawal}/approve",
                                                        headers=MERCHANT) for _ in range(50)))
    assert sorted(response.status_code for response in approvals) == [200] + [409] * 49
    outcomes = await asyncio.gather(*(runtime.withdrawals.advance(withdrawal, now()) for _ in range(50)),
                                    drain(runtime), return_exceptions=True)
    assert not [each for each in outcomes if isinstance(each, BaseException)]
    for _ in range(3):  # whatever a lock sent away is taken up by the sweep
        await runtime.withdrawals.requeue_due(now() + timedelta(hours=1))
        await drain(runtime)
    assert list(sandbox.state.pay.bills) == [withdrawal]
    assert len(sandbox.state.calls.received(CREATE_BILL_ENDPOINT)) == 1
    await sandbox.state.pay.confirm(withdrawal)
    assert await balances(runtime, session["member"]["id"]) == PAID
    await clean(paying)


async def test_a_signature_refused_by_wechat_pay_is_a_configuration_error(paying, sandbox, caplog):
    runtime = paying.runtime
    session, headers = await promoter(paying, "misconfigured", 5_000)
    withdrawal = (await withdraw(paying, headers, 1_000)).json()["id"]
    sandbox.state.pay.merchants.clear()  # WeChat Pay no longer knows the merchant's certificate
    with caplog.at_level(logging.ERROR), pytest.raises(RetryLater):
        await runtime.withdrawals.advance(withdrawal, now())
    assert "WECHAT_PAY_CERT_SERIAL" in caplog.text
    stored = await runtime.withdrawals.store.get(withdrawal)
    assert stored["status"] == "approved" and stored["last_error"].startswith("configuration: SIGN_ERROR")
    assert stored["attempts"] == 0  # not an attempt that counts towards giving up
    assert await balances(runtime, session["member"]["id"]) == LOCKED
    sandbox.state.pay.merchants[(sandbox.state.pay.mch_id, SANDBOX_MCH_CERT_SERIAL)] = \
        sandbox.state.pay.merchant_key.public_key()
    assert await runtime.withdrawals.advance(withdrawal, now()) == "waiting_user_confirm"


async def test_a_real_name_goes_encrypted_when_wechat_pay_wants_it(paying, sandbox):
    runtime = paying.runtime
    await runtime.merchant_settings.put(WithdrawalRules.from_dict({
        "min_distinct_paying_buyers": 0, "auto_approve_under_fen": 500_000, "daily_amount_cap_fen": 1_000_000}))
    session, headers = await promoter(paying, "big", 300_000)
    nameless = await withdraw(paying, headers, 250_000)
    assert nameless.status_code == 400 and nameless.json()["error"]["field"] == "real_name"
    bank_name = await withdraw(paying, headers, 1_000, "bank", real_name="王五",
                               bank={"account_name": "王五", "account_no": "6225880212345678", "bank_name": "招商银行"})
    assert bank_name.status_code == 400 and bank_name.json()["error"]["field"] == "real_name"
    withdrawal = (await withdraw(paying, headers, 250_000, real_name="王五")).json()["id"]
    await drain(runtime)
    assert sandbox.state.pay.bills[withdrawal].user_name == "王五"
    (create,) = sandbox.state.calls.received(CREATE_BILL_ENDPOINT)
    assert "王五" not in create.raw_body
    assert "王五" not in str(await runtime.withdrawals.store.get(withdrawal))  # sealed at rest


async def test_bank_withdrawals_are_read_audited_and_marked_by_the_merchant(paying):
    runtime = paying.runtime
    session, headers = await promoter(paying, "banked", 5_000)
    bank = {"account_name": "李雷", "account_no": "6225880212345678", "bank_name": "招商银行杭州分行"}
    paid = (await withdraw(paying, headers, 1_000, "bank", bank=bank)).json()["id"]
    failed = (await withdraw(paying, headers, 1_500, "bank", bank=bank)).json()["id"]
    assert await runtime.withdrawals.advance(paid, now()) == "nothing to pay"  # the worker leaves bank ones alone

    url = f"/api/merchant/v1/withdrawals/{paid}"
    assert (await paying.http.get(f"{url}/bank-account", headers=headers)).status_code == 401  # a promoter's token
    assert (await paying.http.get(f"{url}/bank-account", headers=MERCHANT)).json() == bank
    readings = await runtime.withdrawals.store.readings(paid)
    assert [reading["action"] for reading in readings] == ["bank_account_read"]

    marked = await paying.http.post(f"{url}/mark-paid", json={"reference": "CMB-20250101-0001"}, headers=MERCHANT)
    assert (marked.json()["status"], marked.json()["reference"]) == ("paid", "CMB-20250101-0001")
    again = await paying.http.post(f"{url}/mark-failed", json={"reason": "wrong account"}, headers=MERCHANT)
    assert again.status_code == 409 and again.json()["error"]["code"] == "not_approved"
    refused = await paying.http.post(f"/api/merchant/v1/withdrawals/{failed}/mark-failed",
                                     json={"reason": "户名不符"}, headers=MERCHANT)
    assert (refused.json()["status"], refused.json()["note"]) == ("returned", "户名不符")
    assert (await paying.http.post(f"{url}/mark-paid", json={}, headers=MERCHANT)).status_code == 400
    assert await balances(runtime, session["member"]["id"]) == {"frozen_fen": 0, "available_fen": 4_000,
                                                                "locked_fen": 0}
    await clean(paying)


async def test_a_wechat_balance_payout_is_not_marked_by_hand(paying):
    _, withdrawal = await waiting(paying)
    marked = await paying.http.post(f"/api/merchant/v1/withdrawals/{withdrawal}/mark-paid", json={"reference": "x"},
                                    headers=MERCHANT)
    assert marked.status_code == 409 and marked.json()["error"]["code"] == "not_bank"
    assert (await paying.http.get(f"/api/merchant/v1/withdrawals/{withdrawal}/bank-account",
                                  headers=MERCHANT)).status_code == 409


NO_WECHAT_PAY = {name: "" for name in ("WECHAT_PAY_MCH_ID", "WECHAT_PAY_APIV3_KEY", "WECHAT_PAY_PRIVATE_KEY_FILE",
                                       "WECHAT_PAY_CERT_SERIAL", "WECHAT_PAY_PUBLIC_KEY_FILE",
                                       "WECHAT_PAY_PUBLIC_KEY_ID")}


async def test_without_wechat_pay_a_wechat_balance_withdrawal_is_refused_clearly(make_settings):
    async for server in start_server(make_settings(**NO_WECHAT_PAY)):
        session = await login(server, "unpayable")
        await credit(server.runtime, session["member"]["id"], 5_000)
        await server.runtime.merchant_settings.put(WithdrawalRules.from_dict({"min_distinct_paying_buyers": 0}))
        refused = await withdraw(server, auth(session["token"]), 1_000)
        assert refused.status_code == 409 and refused.json()["error"]["code"] == "wechat_pay_not_configured"
        assert await balances(server.runtime, session["member"]["id"]) == RETURNED
        assert (await server.http.post(NOTIFY, content=b"{}")).status_code == 401


def test_wechat_pay_settings_come_together_and_name_what_is_wrong(make_settings, tmp_path):
    def problem(**overrides: str) -> str:
        with pytest.raises(SettingsError) as error:
            make_settings(**overrides)
        return error.value.name

    assert problem(WECHAT_PAY_APIV3_KEY="") == "WECHAT_PAY_APIV3_KEY"
    assert problem(WECHAT_PAY_APIV3_KEY="short") == "WECHAT_PAY_APIV3_KEY"
    assert problem(WECHAT_PAY_PRIVATE_KEY_FILE=str(tmp_path / "missing.pem")) == "WECHAT_PAY_PRIVATE_KEY_FILE"
    (tmp_path / "garbage.pem").write_text("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    assert problem(WECHAT_PAY_PRIVATE_KEY_FILE=str(tmp_path / "garbage.pem")) == "WECHAT_PAY_PRIVATE_KEY_FILE"
    assert problem(WECHAT_PAY_PUBLIC_KEY_FILE=str(tmp_path / "garbage.pem")) == "WECHAT_PAY_PUBLIC_KEY_FILE"
    assert problem(WECHAT_PAY_PUBLIC_KEY_ID="") == "WECHAT_PAY_PUBLIC_KEY_ID"
    assert problem(WECHAT_PAY_PUBLIC_KEY_ID="not-a-key-id") == "WECHAT_PAY_PUBLIC_KEY_ID"
    assert problem(WECHAT_PAY_CERT_SERIAL="not hex") == "WECHAT_PAY_CERT_SERIAL"
    assert problem(PUBLIC_BASE_URL="") == "PUBLIC_BASE_URL"
    assert problem(WECHAT_PAY_TRANSFER_REPORT='{"岗位类型": "推广员"}') == "WECHAT_PAY_TRANSFER_REPORT"
    assert problem(WECHAT_PAY_TRANSFER_SCENE_ID="1000") == "WECHAT_PAY_TRANSFER_REPORT"
    certificate_mode = make_settings(WECHAT_PAY_PUBLIC_KEY_FILE="", WECHAT_PAY_PUBLIC_KEY_ID="")
    assert certificate_mode.wechat_pay.public_key_pem is None and certificate_mode.wechat_pay.mch_id == "1900000109"
    assert make_settings(**NO_WECHAT_PAY).wechat_pay is None


async def test_a_server_in_certificate_mode_pays_too(make_settings, sandbox):
    sandbox.state.pay.signs_with = "certificate"
    async for server in start_server(make_settings(WECHAT_PAY_PUBLIC_KEY_FILE="", WECHAT_PAY_PUBLIC_KEY_ID="")):
        sandbox.state.pay.deliver_to = server.base_url
        await server.runtime.merchant_settings.put(WithdrawalRules.from_dict({"min_distinct_paying_buyers": 0}))
        member, withdrawal = await waiting(server)
        await sandbox.state.pay.confirm(withdrawal)
        assert await status(server, withdrawal) == "paid"
        assert await balances(server.runtime, member) == PAID
