"""The 安装到公众号 button of the menu's settings page: the stored menu sent to WeChat, as the merchant API's install
sends it."""

from __future__ import annotations

from distribution.staff import Permission
from handlers.console.base import ConsoleHandler
from handlers.console.shop_settings import INSTALLED, SETTINGS_PAGE
from handlers.oa_menu import INSTALL_ACTION

OA_MENU = "oa_menu"


class OaMenuInstallHandler(ConsoleHandler):
    permission = Permission.SETTINGS

    async def post(self) -> None:
        sent = await self.runtime.oa_menu.install()
        await self.audit(INSTALL_ACTION, "settings", OA_MENU, after={"button": sent})
        # Shown by a GET, so that reloading the page does not install the menu again.
        self.redirect(f"{SETTINGS_PAGE}/{OA_MENU}?{INSTALLED}=1", status=303)


ROUTES = [
    (rf"{SETTINGS_PAGE}/{OA_MENU}/install", OaMenuInstallHandler),
]
