"""The console's doors in a real browser: signing in, the lockout, CSRF and what a role may not see or do."""

from __future__ import annotations

import pytest
from playwright.async_api import Page

from distribution.staff import MAX_FAILED_LOGINS
from tests.browser_fixtures import browser, page, screenshots, sign_in  # noqa: F401 (fixtures)
from tests.console_fixtures import STAFF_PASSWORD, add_staff
from tests.test_withdrawals import MERCHANT, awaiting_review

pytestmark = pytest.mark.browser


async def test_signing_in_lands_on_the_dashboard(page: Page, server):
    await add_staff(server, "olivia", "owner")
    landed = await sign_in(page, "olivia", STAFF_PASSWORD)
    assert landed.status == 200 and page.url == f"{server.base_url}/admin"
    assert await page.inner_text("main h1") == "概况"
    assert await page.inner_text("header .who span") == "olivia · 店主"
    assert await page.get_attribute("nav a.active", "href") == "/admin"
    await screenshots(page, "dashboard-signed-in")


async def test_five_wrong_passwords_lock_even_the_right_one_out(page: Page, server):
    await add_staff(server, "oscar", "owner")
    for _ in range(MAX_FAILED_LOGINS):
        refused = await sign_in(page, "oscar", "not the password at all")
        assert refused.status == 401
        assert await page.inner_text("#login-error") == "用户名或密码错误"
    locked = await sign_in(page, "oscar", STAFF_PASSWORD)
    assert locked.status == 429 and int(locked.headers["retry-after"]) > 0
    assert "锁定" in await page.inner_text("#login-error")
    assert page.url == f"{server.base_url}/admin/login"
    await screenshots(page, "login-locked")
    assert (await page.goto("/admin")).url.startswith(f"{server.base_url}/admin/login")  # still signed out


async def test_a_form_posted_without_its_csrf_token_is_refused(page: Page, server):
    await add_staff(server, "owen", "owner")
    await sign_in(page, "owen", STAFF_PASSWORD)
    # The sign-out form, as a forged one would arrive: everything but the token.
    await page.evaluate("document.querySelector('form.who input[name=_csrf]').remove()")
    async with page.expect_navigation() as navigation:
        await page.click("form.who button[type=submit]")
    refused = await navigation.value
    assert refused.status == 403
    assert await page.get_attribute("[role=alert]", "data-code") == "csrf"
    assert await page.inner_text("[role=alert]") == "页面已过期，请刷新后重试"
    await screenshots(page, "csrf-refused")

    scripted = await page.request.post("/admin/logout", form={"_csrf": "a guess"}, max_redirects=0)
    assert scripted.status == 403 and (await scripted.json())["error"]["code"] == "csrf"
    still = await page.goto("/admin")  # neither request signed the session out
    assert still.status == 200 and page.url == f"{server.base_url}/admin"


async def test_an_operator_gets_403_on_finance_pages_and_actions(page: Page, server):
    [waiting] = await awaiting_review(server, "willa", 30_000, 10_000)
    await add_staff(server, "otto", "operator")
    await sign_in(page, "otto", STAFF_PASSWORD)
    shown = await page.eval_on_selector_all("nav a", "links => links.map(link => link.getAttribute('href'))")
    assert "/admin/promoters" in shown and not {"/admin/withdrawals", "/admin/exports", "/admin/settings"} & set(shown)

    for finance_page in ("/admin/withdrawals", "/admin/exports", "/admin/export/withdrawals.csv"):
        refused = await page.goto(finance_page)
        assert refused.status == 403, finance_page
        assert await page.get_attribute("[role=alert]", "data-code") == "forbidden_role"
    await screenshots(page, "operator-forbidden")

    # The approve button's form, posted with the operator's own valid CSRF token.
    csrf = await page.get_attribute("body", "data-csrf")
    approve = await page.request.post(f"/admin/withdrawals/{waiting['id']}/approve", form={"_csrf": csrf},
                                      max_redirects=0)
    assert approve.status == 403 and (await approve.json())["error"]["code"] == "forbidden_role"
    still = (await server.http.get("/api/merchant/v1/withdrawals", headers=MERCHANT)).json()["items"]
    assert [(each["id"], each["status"]) for each in still] == [(waiting["id"], "pending_review")]
