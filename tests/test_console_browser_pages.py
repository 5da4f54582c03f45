"""The console's pages in a real browser: the dashboard against the API, finding a promoter, re-binding one into
the audit log, and the settings form, saved and refused."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from playwright.async_api import Page

from services.stats import BIND_LAG
from tests.browser_fixtures import browser, page, screenshots, sign_in  # noqa: F401 (fixtures)
from tests.console_fixtures import STAFF_PASSWORD, add_staff
from tests.order_fixtures import add_member, drain, item, paid_order, put_rules
from tests.test_applications import APPLICATION, reviewed_shop
from tests.test_miniapp_session import auth, login
from tests.test_share_link_bind import oa_openid, open_link
from tests.test_withdrawals import MERCHANT, promoter, rules, withdraw

pytestmark = pytest.mark.browser


async def a_busy_day(server) -> None:
    """Today: two visitors bound through a promoter's share link, one of them buying twice, a promoter's
    withdrawal and someone's application waiting for review."""
    runtime = server.runtime
    await reviewed_shop(server)
    await put_rules(runtime, levels=1, level_rates_bp=[1000])
    await rules(runtime, auto_approve_under_fen=0)
    shop_promoter = await add_member(runtime, nickname="店长小王", promoter_status="approved")
    for visitor in ("vera", "vince"):
        assert (await open_link(server, shop_promoter["_id"], visitor)).status_code == 200
    buyer = await runtime.members.by_oa_openid(oa_openid(server, "vera"))
    now = datetime.now(timezone.utc)
    await paid_order(runtime, "DASH-1", buyer, [item(19_900)], when=now)
    await paid_order(runtime, "DASH-2", buyer, [item(5_000)], when=now)
    _, headers = await promoter(server, "wanda", 50_000)
    assert (await withdraw(server, headers, 10_000)).status_code == 201
    applicant = await login(server, "carol")
    applied = await server.http.post("/api/v1/promoter-application", json=APPLICATION,
                                     headers=auth(applicant["token"]))
    assert applied.status_code == 201, applied.text
    await runtime.relations.apply_follow_ups()
    await drain(runtime)
    # The worker's count of the bind log once its lag is over (bind log ids tell time in whole seconds).
    assert await runtime.stats.count_binds(datetime.now(timezone.utc) + BIND_LAG + timedelta(seconds=1)) == 2
    assert await runtime.stats.count_totals() > 0  # the worker's, every second


def metric(overview: dict, name: str) -> int:
    """A metric of the API's overview by the page's name for it: `funnel.binds` is overview["funnel"]["binds"]."""
    value = overview
    for part in name.split("."):
        value = value[part]
    return value


async def shown_metrics(page: Page) -> dict[str, int]:
    pairs = await page.eval_on_selector_all(
        "[data-metric]", "elements => elements.map(element => [element.dataset.metric, element.dataset.value])")
    return {name: int(value) for name, value in pairs}


async def test_the_dashboard_shows_the_apis_numbers_and_draws_its_charts(page: Page, server):
    await a_busy_day(server)
    await add_staff(server, "olga", "owner")
    await sign_in(page, "olga", STAFF_PASSWORD)

    for quick_range, days in ((None, "7"), ("1", "1"), ("30", "30")):
        if quick_range:
            async with page.expect_navigation():
                await page.click(f"#quick-ranges [data-range='{quick_range}']")
        overview = (await server.merchant_get("/api/merchant/v1/stats/overview", days=days)).json()
        shown = await shown_metrics(page)
        assert {"sales_fen", "commission_fen", "binds", "pending_withdrawals", "funnel.visits"} <= set(shown)
        assert shown == {name: metric(overview, name) for name in shown}, days
        # Not zero equal to zero: today's orders, binds and visits, and what waits for review, are all in.
        assert (shown["sales_fen"], shown["frozen_fen"], shown["binds"], shown["new_promoters"], shown["funnel.visits"],
                shown["funnel.buyers"], shown["pending_withdrawals"], shown["pending_applications"]) \
            == (24_900, 2_490, 2, 1, 2, 1, 1, 1)
        ranked = await page.eval_on_selector_all("#top-promoters tr[data-member-id]",
                                                 "rows => rows.map(row => row.dataset.memberId)")
        assert ranked == [each["member_id"] for each in overview["top_promoters"]] and len(ranked) == 1

    drawn = page.locator("[data-chart][data-drawn=true]")
    await drawn.first.wait_for()  # ECharts, served by our own server, has drawn
    assert await drawn.count() == await page.locator("[data-chart]").count() == 2
    assert await page.locator("[data-chart='trend-chart'] canvas").count() >= 1
    await screenshots(page, "dashboard-30-days")


async def member_with_phone(server, code: str, nickname: str, phone: str) -> str:
    """A mini-program user who gave a nickname and a phone, as the mini-program sends them."""
    session = await login(server, code, profile={"nickname": nickname})
    changed = await server.http.patch("/api/v1/me", json={"phone": phone}, headers=auth(session["token"]))
    assert changed.status_code == 200, changed.text
    return session["member"]["id"]


async def test_a_promoter_is_found_by_the_last_four_digits_of_their_phone(page: Page, server):
    wanted = await member_with_phone(server, "ada", "阿达", "13812345678")
    await member_with_phone(server, "bo", "阿博", "13987654321")
    await add_staff(server, "otis", "operator")
    await sign_in(page, "otis", STAFF_PASSWORD)

    await page.goto("/admin/promoters")
    await page.fill("input[name=phone_tail]", "5678")
    async with page.expect_navigation():
        await page.click("#promoter-search button[type=submit]")
    found = page.locator("[data-member-id]")
    assert await found.count() == 1
    assert await found.get_attribute("data-member-id") == wanted
    assert "阿达" in await found.inner_text() and "138****5678" in await found.inner_text()
    await screenshots(page, "promoters-by-phone-tail")


async def test_an_upline_changed_with_a_reason_shows_in_the_audit_log(page: Page, server):
    runtime = server.runtime
    old_upline = await add_member(runtime, nickname="老店长")
    new_upline = await add_member(runtime, nickname="新店长")
    member = await add_member(runtime, old_upline, nickname="小明")
    await add_staff(server, "oona", "owner")
    await sign_in(page, "oona", STAFF_PASSWORD)
    page.on("dialog", lambda dialog: dialog.accept())

    await page.goto(f"/admin/promoters/{member['_id']}")
    assert await page.locator("#promoter-chain li").get_attribute("data-member-id") == old_upline["_id"]
    rebind = page.locator("form[data-action=upline]")
    await rebind.locator("input[name=upline_id]").fill(new_upline["_id"])
    await rebind.locator("textarea[name=reason]").fill("顾客搬家，改由新店长服务")
    async with page.expect_navigation():
        await rebind.locator("button[type=submit]").click()
    assert await page.locator(".notice").inner_text() == "已更换上级"
    assert await page.locator("#promoter-chain li").get_attribute("data-member-id") == new_upline["_id"]
    await screenshots(page, "promoter-rebound")
    api = (await server.merchant_get(f"/api/merchant/v1/members/{member['_id']}")).json()
    assert api["upline_id"] == new_upline["_id"]

    await page.goto("/admin/audit")
    entry = page.locator("#audit-log tr[data-action='member.upline']")
    assert await entry.count() == 1
    text = await entry.inner_text()
    assert all(part in text for part in ("oona", "修改上级", member["_id"], "顾客搬家，改由新店长服务",
                                         old_upline["_id"], new_upline["_id"])), text
    await screenshots(page, "audit-log")


async def commission_settings(server) -> dict:
    answer = await server.http.get("/api/merchant/v1/settings/commission", headers=MERCHANT)
    assert answer.status_code == 200
    return answer.json()


async def test_commission_settings_are_saved_through_the_form(page: Page, server):
    await add_staff(server, "odette", "owner")
    await sign_in(page, "odette", STAFF_PASSWORD)
    await page.goto("/admin/settings/commission")
    form = page.locator("#settings-form")
    await form.locator("input[name=levels]").fill("3")
    await form.locator("input[name=level_rates_bp]").fill("1200, 600, 200")
    await form.locator("input[name=freeze_days]").fill("10")
    await form.locator("input[name=self_purchase]").check()
    await form.locator("select[name=trigger]").select_option("confirmed")
    async with page.expect_navigation() as navigation:
        await page.click("#save-button")
    assert (await navigation.value).status == 200
    assert await page.locator(".notice").inner_text() == "已保存"
    await screenshots(page, "settings-commission-saved")

    saved = await commission_settings(server)
    assert (saved["levels"], saved["level_rates_bp"], saved["freeze_days"], saved["self_purchase"], saved["trigger"]) \
        == (3, [1200, 600, 200], 10, True, "confirmed")
    await page.reload()  # the form shows what is stored
    assert await form.locator("input[name=level_rates_bp]").input_value() == "1200, 600, 200"
    assert await form.locator("input[name=self_purchase]").is_checked()


async def test_an_invalid_commission_form_is_refused_naming_the_field(page: Page, server):
    await add_staff(server, "ophelia", "owner")
    await sign_in(page, "ophelia", STAFF_PASSWORD)
    before = await commission_settings(server)
    await page.goto("/admin/settings/commission")
    form = page.locator("#settings-form")
    await form.locator("input[name=level_rates_bp]").fill("2500, 1000")  # 35% in all, above the 30% cap
    async with page.expect_navigation() as navigation:
        await page.click("#save-button")
    assert (await navigation.value).status == 400
    error = page.locator(".field-error[data-field=level_rates_bp]")
    assert await error.count() == 1 and "3000" in await error.inner_text()
    assert await form.locator("input[name=level_rates_bp]").evaluate("input => input.classList.contains('invalid')")
    assert await form.locator("input[name=level_rates_bp]").input_value() == "2500, 1000"  # kept to correct
    await screenshots(page, "settings-commission-refused")
    assert await commission_settings(server) == before
