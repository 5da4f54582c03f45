"""The products page in a real browser: a product created with two SKUs (prices in yuan, one with its own
commission rule), found in the list, then taken off sale."""

from __future__ import annotations

import pytest

from distribution.commission_rules import CommissionRules
from tests.browser_fixtures import browser, page, screenshots, sign_in  # noqa: F401 (fixtures)
from tests.console_fixtures import STAFF_PASSWORD, add_staff

pytestmark = pytest.mark.browser


async def test_an_owner_creates_a_product_with_two_skus_and_sees_it_listed(server, page):
    await add_staff(server, "owner1", "owner")
    await sign_in(page, "owner1", STAFF_PASSWORD)
    await page.click("nav a[href='/admin/products']")
    await page.click("#new-product")
    await page.fill("input[name=title]", "龙井茶礼盒")
    await page.fill("input[name=category]", "drinks")
    for row, (code, title, price, stock) in enumerate((("tea-250", "250 克", "99", "10"),
                                                       ("tea-500", "500 克", "188.50", "4"))):
        await page.fill(f"input[name='skus[{row}].sku']", code)
        await page.fill(f"input[name='skus[{row}].title']", title)
        await page.fill(f"input[name='skus[{row}].price']", price)
        await page.fill(f"input[name='skus[{row}].stock']", stock)
    await page.select_option("select[name='skus[1].commission_kind']", "rate_bp")
    await page.fill("input[name='skus[1].commission']", "800, 400")
    async with page.expect_navigation():
        await page.click("#save-product")
    assert await page.text_content(".notice") == "商品已创建"
    assert await page.text_content("[data-stock='tea-500']") == "4"
    await screenshots(page, "product")

    await page.click("nav a[href='/admin/products']")
    row = page.locator("#products tbody tr").first
    assert "龙井茶礼盒" in await row.text_content()
    assert "¥99.00 – ¥188.50" in await row.text_content()
    assert await row.locator("td.num").nth(1).text_content() == "14"
    await screenshots(page, "products")
    rules = await server.runtime.merchant_settings.stored(CommissionRules)
    assert rules.to_dict()["sku_rules"] == {"tea-500": {"rate_bp": [800, 400]}}

    await row.locator("a").click()
    page.once("dialog", lambda dialog: dialog.accept())
    async with page.expect_navigation():
        await page.click("#toggle-sale")
    assert await page.text_content("#sale-state") == "已下架"
    assert (await server.http.get("/api/v1/products")).json()["items"] == []
