"""Statements in a real browser: finance approves one waiting for review, and the day's reconciliation shows its
settlement with no difference."""

from __future__ import annotations

import pytest
from playwright.async_api import Page

from distribution.calendar import CHINA
from tests.browser_fixtures import browser, page, screenshots, sign_in  # noqa: F401 (fixtures)
from tests.console_fixtures import STAFF_PASSWORD, add_staff
from tests.test_console_browser_money import accepting
from tests.test_settlement import china, earning_promoter, run_job

pytestmark = pytest.mark.browser


async def test_finance_approves_a_statement_and_its_day_reconciles(page: Page, server):
    runtime = server.runtime
    member, _ = await earning_promoter(server, "browser-earner", {"seen": 30_000}, "monthly")
    await run_job(runtime, china("2026-06-01", "00:05"))
    statement_id = f"{member['_id']}:2026-05-01_2026-06-01"
    await add_staff(server, "fanny", "finance")
    await sign_in(page, "fanny", STAFF_PASSWORD)
    asked = accepting(page)

    await page.goto("/admin/statements")
    async with page.expect_navigation():
        await page.locator(f"[data-statement-id='{statement_id}'] [data-action=approve]").click()
    assert len(asked) == 1 and "¥30.00" in asked[0]
    assert await page.locator("[data-statement-id]").count() == 0  # nothing waits for review any more
    approved = await runtime.statements.get(statement_id)
    assert approved["status"] == "settled"

    day = approved["decided_at"].astimezone(CHINA).date().isoformat()  # the console settles as of its clock
    await page.goto(f"/admin/finance?day={day}")
    assert (await page.locator("#finance-verdict").inner_text()).strip() == "无差异"
    settled = page.locator("[data-figure=settled_fen] td")
    assert [await settled.nth(column).inner_text() for column in (1, 2)] == ["¥30.00", "¥30.00"]
    assert await page.locator(f"[data-promoter='{member['_id']}']").count() == 1
    await screenshots(page, "finance-after-statement")
