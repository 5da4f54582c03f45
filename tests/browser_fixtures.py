"""The console in a real headless Chromium: Debian's `chromium` driven by Playwright, never a downloaded browser.

The browser runs on the test's own event loop, the one the `server` fixture serves on: Playwright's async objects
belong to the loop that made them, and the loop is one per test, so each test starts its own browser (about a
second). A browser that cannot start fails the test: CI must run these, so they are never skipped."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import AsyncIterator

import pytest
from playwright.async_api import Browser, Page, Response, async_playwright

SCREENSHOTS = Path(__file__).resolve().parents[1] / "artifacts" / "screenshots"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


def chromium_path() -> str:
    found = os.environ.get("CHROMIUM") or shutil.which("chromium")
    if not found:
        pytest.fail("no Chromium for the console's browser tests: run scripts/ensure-chromium "
                    "(Debian's chromium), or set CHROMIUM to its path", pytrace=False)
    return found


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        # Playwright starts Chromium with --no-sandbox unless asked otherwise: needed as root and in containers.
        launched = await playwright.chromium.launch(executable_path=chromium_path())
        yield launched
        await launched.close()


@pytest.fixture
async def page(browser: Browser, server) -> AsyncIterator[Page]:
    """A fresh tab, with no cookies, on the test's server: relative paths go there."""
    context = await browser.new_context(base_url=server.base_url, viewport=DESKTOP, locale="zh-CN",
                                        timezone_id="Asia/Shanghai", accept_downloads=True)
    context.set_default_timeout(10_000)
    opened = await context.new_page()
    yield opened
    await context.close()


async def sign_in(page: Page, username: str, password: str) -> Response:
    """Fills and sends the sign-in form; the answer the browser ends on (the page signed in to, or the form again
    with its error and status)."""
    await page.goto("/admin/login")
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", password)
    async with page.expect_navigation() as navigation:
        await page.click("form[action='/admin/login'] button[type=submit]")
    return await navigation.value


async def screenshots(page: Page, name: str) -> None:
    """The page as it is now, whole, on a desktop and on a 390 px phone: artifacts/screenshots/<name>-*.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=SCREENSHOTS / f"{name}-desktop.png", full_page=True)
    await page.set_viewport_size(PHONE)
    try:
        await page.screenshot(path=SCREENSHOTS / f"{name}-390.png", full_page=True)
    finally:
        await page.set_viewport_size(DESKTOP)
