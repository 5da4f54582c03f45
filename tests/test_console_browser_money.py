"""Money in a real browser: finance reviews withdrawals, and an export's file says what the merchant API says."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from pathlib import Path

import pytest
from playwright.async_api import Dialog, Page

from tests.browser_fixtures import browser, page, screenshots, sign_in  # noqa: F401 (fixtures)
from tests.console_fixtures import STAFF_PASSWORD, add_staff
from tests.order_fixtures import chain, create_order, item, paid_order, put_rules
from tests.test_withdrawals import MERCHANT, awaiting_review

pytestmark = pytest.mark.browser


def accepting(page: Page) -> list[str]:
    """Accepts every confirmation the page asks for; the list of what it asked fills as it does."""
    asked: list[str] = []

    async def accept(dialog: Dialog) -> None:
        asked.append(dialog.message)
        await dialog.accept()

    page.on("dialog", accept)
    return asked


async def withdrawal_of(server, withdrawal_id: str) -> dict:
    listed = (await server.http.get("/api/merchant/v1/withdrawals", headers=MERCHANT)).json()["items"]
    return next(each for each in listed if each["id"] == withdrawal_id)


async def test_finance_approves_one_withdrawal_and_rejects_another_with_a_reason(page: Page, server):
    approving, rejecting = await awaiting_review(server, "wendy", 50_000, 10_000, 12_000)
    assert approving["status"] == rejecting["status"] == "pending_review"
    await add_staff(server, "fiona", "finance")
    await sign_in(page, "fiona", STAFF_PASSWORD)
    asked = accepting(page)

    await page.goto("/admin/withdrawals")
    queued = await page.eval_on_selector_all("[data-withdrawal-id]", "rows => rows.map(row => row.dataset.withdrawalId)")
    assert set(queued) == {approving["id"], rejecting["id"]}
    await screenshots(page, "withdrawals-queue")

    first = page.locator(f"[data-withdrawal-id='{approving['id']}']")
    async with page.expect_navigation():
        await first.locator("[data-action=approve]").click()
    assert len(asked) == 1
    second = page.locator(f"[data-withdrawal-id='{rejecting['id']}']")
    await second.locator("[name=reason]").fill("收款信息与实名不符")
    async with page.expect_navigation():
        await second.locator("[data-action=reject]").click()
    assert len(asked) == 2
    assert await page.locator("[data-withdrawal-id]").count() == 0  # the queue is empty
    await screenshots(page, "withdrawals-decided")

    approved = await withdrawal_of(server, approving["id"])
    rejected = await withdrawal_of(server, rejecting["id"])
    assert approved["status"] == "approved"
    assert (rejected["status"], rejected["note"]) == ("rejected", "收款信息与实名不符")
    entries = await server.runtime.audit.page(target_kind="withdrawal")
    assert {(entry["action"], entry["target"]["id"], entry["actor"]["name"]) for entry in entries} == {
        ("withdrawal.approve", approving["id"], "fiona"), ("withdrawal.reject", rejecting["id"], "fiona")}


async def test_a_dismissed_confirmation_approves_nothing(page: Page, server):
    [waiting] = await awaiting_review(server, "walter", 20_000, 10_000)
    await add_staff(server, "felix", "finance")
    await sign_in(page, "felix", STAFF_PASSWORD)
    await page.goto("/admin/withdrawals")
    asked, posted = [], []
    page.on("dialog", lambda dialog: asked.append(dialog.message) or dialog.dismiss())
    page.on("request", lambda request: request.method == "POST" and posted.append(request.url))
    await page.locator(f"[data-withdrawal-id='{waiting['id']}'] [data-action=approve]").click()
    await page.wait_for_timeout(300)  # time enough for a submission that should not happen to start
    assert len(asked) == 1 and posted == []
    assert page.url == f"{server.base_url}/admin/withdrawals"
    assert (await withdrawal_of(server, waiting["id"]))["status"] == "pending_review"


def yuan_to_fen(text: str) -> int:
    return int(Decimal(text) * 100)


async def test_an_export_downloads_the_rows_the_api_lists(page: Page, server):
    runtime = server.runtime
    await put_rules(runtime, levels=2, level_rates_bp=[1000, 500])
    root, middle, buyer = await chain(runtime, 2)
    for number, paid_fen in enumerate((9_900, 25_000, 1_234)):
        await paid_order(runtime, f"EXP-{number}", buyer, [item(paid_fen)])
    await create_order(runtime, "EXP-unpaid", buyer, [item(5_000)])  # the status filter leaves it out
    await add_staff(server, "flora", "finance")
    await sign_in(page, "flora", STAFF_PASSWORD)

    await page.goto("/admin/exports")
    orders = page.locator("[data-export-kind=orders]")
    await orders.locator("select[name=status]").select_option("paid")
    await screenshots(page, "exports")
    async with page.expect_download() as downloading:
        await orders.locator("[data-export='orders.csv']").click()
    download = await downloading.value
    assert download.suggested_filename.startswith("orders-") and download.suggested_filename.endswith(".csv")
    text = Path(await download.path()).read_text(encoding="utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))

    listed = (await server.merchant_get("/api/merchant/v1/orders", status="paid")).json()["items"]
    assert len(listed) == 3
    assert [(row["订单号"], yuan_to_fen(row["实付金额（元）"]), yuan_to_fen(row["佣金合计（元）"]), row["一级推广员ID"])
            for row in rows] == [(order["order_no"], order["total_fen"], order["commission_fen"],
                                  order["upline_chain"][0]) for order in listed]
    assert {row["状态"] for row in rows} == {"已支付"}
    assert all(order["commission_fen"] > 0 and order["upline_chain"] == [middle["_id"], root["_id"]]
               for order in listed)
