"""The daily finance report against the ledger and WeChat Pay's bills, its CLI, its exports, and the tax
figures: a day with settlements, a transfer-bill payout, a bank payout, a claw-back into debt and a
cancellation, reconciled to the fen; then tampering caught."""

from __future__ import annotations

import asyncio
import csv
import io
import os
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import openpyxl
import pytest

from distribution.calendar import CHINA
from distribution.ledger import commission_frozen, commission_settled
from distribution.tax import TaxSettings
from bot.worker import remind_tax_declarations
from stores.writes import WriteSet, commit
from tests.conftest import MERCHANT_TOKEN, REDIS_URL, production_environ
from tests.console_fixtures import staff_client
from tests.order_fixtures import add_member, assert_ledger_clean, create_order, drain, item, send_event
from tests.test_miniapp_session import auth, login
from tests.test_withdrawals import rules, withdraw

ROOT = Path(__file__).resolve().parent.parent
MERCHANT = {"Authorization": f"Bearer {MERCHANT_TOKEN}"}
BANK = {"account_name": "李雷", "account_no": "6225880212345678", "bank_name": "招商银行杭州分行"}
TAX_ID = "91330106MA2XXXXX1K"


def now() -> datetime:
    return datetime.now(timezone.utc)


@pytest.fixture
async def day(server, sandbox):
    """Today (China) for one promoter: two orders settled (2,000 + 1,000 fen), a transfer-bill payout of 1,500
    (fee 15) and a bank payout of 500 (fee 5), the first order then refunded in full after settlement
    (claw-back 2,000: a debt of 1,000) and a third order refunded in part before settlement (200 cancelled)."""
    runtime = server.runtime
    sandbox.state.pay.deliver_to = server.base_url
    await rules(runtime, fee_bp=100)
    session = await login(server, "finance-promoter")
    promoter = {**await runtime.members.get(session["member"]["id"]), "ancestor_ids": []}
    buyer = await add_member(runtime, promoter)
    long_ago = now() - timedelta(days=30)
    for order_no, paid_fen in (("fin-1", 20_000), ("fin-2", 10_000), ("fin-3", 10_000)):
        await create_order(runtime, order_no, buyer, [item(paid_fen)])
        await send_event(runtime, order_no, f"{order_no}-paid", "paid", long_ago)
        if order_no != "fin-3":
            await send_event(runtime, order_no, f"{order_no}-confirmed", "confirmed", long_ago)
    await drain(runtime)
    assert (await runtime.commissions.settle_due(now())).settled_fen == 3_000

    headers = auth(session["token"])
    wechat = (await withdraw(server, headers, 1_500)).json()["id"]
    await drain(runtime)
    await sandbox.state.pay.confirm(wechat)
    bank = (await withdraw(server, headers, 500, "bank", bank=BANK)).json()["id"]
    marked = await server.http.post(f"/api/merchant/v1/withdrawals/{bank}/mark-paid", json={"reference": "CMB-1"},
                                    headers=MERCHANT)
    assert marked.json()["status"] == "paid"
    await send_event(runtime, "fin-1", "fin-1-refund", "refunded", now())
    await send_event(runtime, "fin-3", "fin-3-refund", "refunded", now(), [{"sku": "tea", "refund_fen": 2_000}])
    await drain(runtime)
    for order_no in ("fin-1", "fin-3"):
        await runtime.orders.apply_pending(order_no)
    assert (await runtime.ledger.balances(promoter["_id"]))["available_fen"] == -1_000
    await assert_ledger_clean(runtime)
    return {"promoter": promoter["_id"], "wechat": wechat, "bank": bank, "day": datetime.now(CHINA).date()}


async def cli(runtime, tmp_path: Path, sandbox, *args: str) -> tuple[int, str]:
    """(exit status, output) of `python -m bot ...`, run without blocking the loop the sandbox answers on."""
    settings = runtime.settings
    environ = {**os.environ, "MONGODB_URI": settings.mongodb_uri, "MONGODB_DB": settings.mongodb_db,
               "REDIS_URL": REDIS_URL, "REDIS_PREFIX": settings.redis_prefix, "VAR_DIR": str(settings.var_dir),
               **production_environ(settings.wechat_api_base),
               **sandbox.state.pay.merchant_environ(tmp_path / "cli-wechatpay")}
    process = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot", *args, cwd=ROOT, env=environ,
                                                   stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    output, _ = await asyncio.wait_for(process.communicate(), 120)
    return process.returncode, output.decode()


async def test_the_day_reconciles_to_the_fen_and_tampering_is_caught(server, sandbox, day, tmp_path):
    runtime = server.runtime
    report = await runtime.finance.day_report(day["day"])
    assert report.clean, [str(each) for each in report.differences]
    figures = report.figures
    assert (figures.settled_fen, figures.cancelled_fen, figures.clawed_back_fen) == (3_000, 200, 2_000)
    assert (figures.paid_fen, figures.fee_fen) == (1_485 + 495, 20)
    assert figures.paid_by_method == {"wechat_balance": 1_485, "bank": 495}
    assert report.ledger == figures
    assert report.debt_fen == 1_000 and report.bills_checked == 1
    (row,) = report.promoters
    assert (row.promoter_id, row.debt_fen, row.figures) == (day["promoter"], 1_000, figures)

    answer = await server.http.get("/api/merchant/v1/finance/reconciliation",
                                   params={"day": day["day"].isoformat()}, headers=MERCHANT)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["clean"] and body["figures"]["settled_fen"] == 3_000 and body["debt_fen"] == 1_000

    status, output = await cli(runtime, tmp_path, sandbox, "ledger", "reconcile", "--day", day["day"].isoformat())
    assert status == 0, output
    assert "money in: settled 30.00 [30.00]" in output and "reconcile clean" in output
    assert "transfer bills checked with WeChat Pay: 1" in output

    # A settlement booked with no commission behind it (the ledger itself still balances), and WeChat Pay's
    # bill saying another amount than was paid.
    writes = WriteSet()
    writes.ledger(commission_frozen(day["promoter"], "ghost", 700) + commission_settled(day["promoter"], "ghost", 700),
                  now())
    await commit(runtime.mongo, runtime.db, writes)
    sandbox.state.pay.bills[day["wechat"]].transfer_amount = 1_400
    await assert_ledger_clean(runtime)

    status, output = await cli(runtime, tmp_path, sandbox, "ledger", "reconcile", "--day", day["day"].isoformat())
    assert status == 1, output
    assert "settled ghost of" in output and "without a business record" in output
    assert f"bill {day['wechat']}" in output and "another amount" in output
    assert "NOT BALANCED" in output and "2 differences" in output
    report = await runtime.finance.day_report(day["day"])
    assert {(each.what, each.ref, each.ours_fen, each.theirs_fen) for each in report.differences} == {
        ("settled", "ghost", None, 700), ("bill", day["wechat"], 1_485, 1_400)}


async def test_a_bill_wechat_pay_does_not_call_paid_is_a_difference(server, sandbox, day):
    sandbox.state.pay.bills[day["wechat"]].state = "FAIL"
    report = await server.runtime.finance.day_report(day["day"])
    (difference,) = report.differences
    assert difference.what == "bill" and "FAIL" in difference.problem
    assert report.promoters[0].differences == [difference]


async def test_the_reconciliation_exports_as_csv_and_xlsx(server, day):
    first = day["day"].isoformat()
    answer = await server.http.get("/api/merchant/v1/finance/reconciliation/csv", params={"from": first, "to": first},
                                   headers=MERCHANT)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "text/csv; charset=utf-8"
    rows = list(csv.DictReader(io.StringIO(answer.content.decode("utf-8-sig"))))
    assert [row["推广员ID"] for row in rows] == [day["promoter"], "合计（业务记录）", "合计（账本）"]
    mine = rows[0]
    assert (mine["结算佣金（元）"], mine["取消佣金（元）"], mine["追回佣金（元）"]) == ("30.00", "2.00", "20.00")
    assert (mine["打款·微信零钱（元）"], mine["打款·银行卡（元）"], mine["手续费（元）"]) == ("14.85", "4.95", "0.20")
    assert (mine["日终欠款（元）"], mine["差异"]) == ("10.00", "")
    assert rows[1]["差异"] == "无差异" and rows[2]["结算佣金（元）"] == "30.00"

    answer = await server.http.get("/api/merchant/v1/finance/reconciliation/xlsx", params={"from": first},
                                   headers=MERCHANT)
    assert answer.status_code == 200, answer.text
    sheet = openpyxl.load_workbook(io.BytesIO(answer.content), read_only=True).active
    header, *values = [list(row) for row in sheet.iter_rows(values_only=True)]
    assert header[:4] == ["日期", "推广员ID", "推广员昵称", "结算佣金（元）"]
    assert values[0][1] == day["promoter"] and values[0][3] == 30 and values[0][9] == 10

    too_long = await server.http.get("/api/merchant/v1/finance/reconciliation/csv",
                                     params={"from": "2026-01-01", "to": "2026-03-01"}, headers=MERCHANT)
    assert too_long.status_code == 400 and too_long.json()["error"]["field"] == "from"


async def test_a_promoter_above_the_threshold_is_listed_and_told_once(server, day):
    runtime = server.runtime
    year = day["day"].year
    await runtime.merchant_settings.put(TaxSettings(declare_threshold_fen=1_999))
    assert (await server.http.get("/api/merchant/v1/settings/tax", headers=MERCHANT)).json() == {
        "declare_threshold_fen": 1_999}
    listed = (await server.http.get("/api/merchant/v1/tax/annual", params={"year": str(year)},
                                    headers=MERCHANT)).json()
    (mine,) = listed["items"]
    assert (mine["member_id"], mine["income_fen"], mine["fee_fen"], mine["net_fen"], mine["payouts"]) == (
        day["promoter"], 2_000, 20, 1_980, 2)
    assert mine["above_threshold"] and listed["above_count"] == 1 and mine["kind"] == "person"

    # Two workers at once, then the next hour's run: the promoter is told once.
    assert sorted(await asyncio.gather(remind_tax_declarations(runtime), remind_tax_declarations(runtime))) == [0, 1]
    assert await remind_tax_declarations(runtime) == 0
    told = await runtime.db["notifications"].find({"kind": "tax_declare_reminder"}).to_list()
    assert [(each["member_id"], each["data"]["year"], each["data"]["amount"]) for each in told] == [
        (day["promoter"], str(year), "20.00元")]

    await runtime.merchant_settings.put(TaxSettings())  # 100,000 yuan: nobody is above it
    listed = (await server.http.get("/api/merchant/v1/tax/annual", headers=MERCHANT)).json()
    assert listed["above_count"] == 0 and not listed["items"][0]["above_threshold"]
    assert (await server.http.get("/api/merchant/v1/tax/annual", params={"year": "1999"},
                                  headers=MERCHANT)).status_code == 400


async def test_a_company_keeps_its_tax_id_sealed_and_masked(server, day, caplog):
    runtime, promoter = server.runtime, day["promoter"]
    url = f"/api/merchant/v1/members/{promoter}/tax_profile"
    assert (await server.http.get(url, headers=MERCHANT)).json()["kind"] == "person"
    refused = await server.http.put(url, json={"kind": "company"}, headers=MERCHANT)
    assert refused.status_code == 400 and refused.json()["error"]["field"] == "tax_id"
    bad = await server.http.put(url, json={"kind": "company", "tax_id": "not-a-code"}, headers=MERCHANT)
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "tax_id"
    missing = await server.http.put("/api/merchant/v1/members/nobody/tax_profile", json={"kind": "person"},
                                    headers=MERCHANT)
    assert missing.status_code == 404

    stored = await server.http.put(url, json={"kind": "company", "tax_id": TAX_ID}, headers=MERCHANT)
    assert stored.status_code == 200, stored.text
    assert (stored.json()["kind"], stored.json()["tax_id_masked"]) == ("company", "91330106******XX1K")
    document = await runtime.db["tax_profiles"].find_one({"_id": promoter})
    assert TAX_ID not in str(document) and runtime.sealer.open(document["tax_id_sealed"]) == TAX_ID
    audit = await runtime.db["audit_log"].find({"action": "member.tax_profile"}).to_list()
    assert audit and TAX_ID not in str(audit)

    listed = (await server.http.get("/api/merchant/v1/tax/annual", headers=MERCHANT)).json()["items"][0]
    assert (listed["kind"], listed["tax_id_masked"]) == ("company", "91330106******XX1K")
    answer = await server.http.get("/api/merchant/v1/tax/annual/xlsx", headers=MERCHANT)
    assert answer.status_code == 200, answer.text
    sheet = openpyxl.load_workbook(io.BytesIO(answer.content), read_only=True).active
    header, row = [list(each) for each in sheet.iter_rows(values_only=True)]
    record = dict(zip(header, row))
    assert (record["推广员ID"], record["类型"], record["税号（脱敏）"]) == (promoter, "企业", "91330106******XX1K")
    assert (record["年度收入（元）"], record["实收（元）"], record["超过申报提示线"]) == (20, 19.8, "否")
    assert TAX_ID not in str(row) and TAX_ID not in caplog.text


async def test_the_console_shows_the_report_the_tax_list_and_their_exports(server, sandbox, day):
    finance = await staff_client(server, "finance")
    operator = await staff_client(server, "operator")
    try:
        sandbox.state.pay.bills[day["wechat"]].transfer_amount = 1
        page = await finance.get("/admin/finance", day=day["day"].isoformat())
        assert page.status_code == 200, page.text
        assert 'href="/admin/finance"' in page.text and 'href="/admin/tax"' in page.text
        assert "1 处差异" in page.text and f'data-ref="{day["wechat"]}"' in page.text
        assert f'<tr class="error" data-promoter="{day["promoter"]}">' in page.text
        assert "¥30.00" in page.text and "¥10.00" in page.text  # settled; the day's debt
        exported = await finance.get("/admin/export/reconciliation.csv", **{"from": day["day"].isoformat()})
        assert exported.status_code == 200 and "another amount" in exported.content.decode("utf-8-sig")

        tax = await finance.get("/admin/tax", year=str(day["day"].year))
        assert tax.status_code == 200 and f'data-promoter="{day["promoter"]}"' in tax.text and "¥20.00" in tax.text
        statement = await finance.get("/admin/export/income_statement.xlsx")
        assert statement.status_code == 200 and statement.headers["content-type"].endswith("spreadsheetml.sheet")
        forms = (await finance.get("/admin/exports")).text
        assert 'data-export-kind="reconciliation"' in forms and 'data-export-kind="income_statement"' in forms
        actions = {entry["action"] async for entry in server.runtime.db["audit_log"].find({"target.kind": "export"})}
        assert {"export.reconciliation", "export.income_statement"} <= actions

        assert (await operator.get("/admin/finance")).status_code == 403
        assert (await finance.get("/admin/finance", day="someday")).status_code == 400
    finally:
        await finance.aclose()
        await operator.aclose()
