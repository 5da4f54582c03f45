"""The official account's menu in WeChat: install the stored `oa_menu` settings, and read back what WeChat holds."""

from __future__ import annotations

from handlers.merchant import MerchantHandler
from web.models import InstalledMenu
from web.openapi import Reply, operation

OA_MENU_PATH = "/api/merchant/v1/oa-menu"
INSTALL_ACTION = "oa_menu.install"


class OaMenuInstallHandler(MerchantHandler):
    @operation("Send the stored menu (settings/oa_menu) to WeChat, which shows it to every follower",
               description="The stored menu is checked against WeChat's limits and the keys the conversation "
                           "answers first: one that is not valid (stored around the API) is refused with 409 "
                           "`invalid_menu`, its field named, and nothing is sent. WeChat's own refusal (a link's "
                           "domain, a mini-program not linked to the account) is a 409 `menu_refused`. Followers "
                           "see the new menu within minutes.",
               responses={200: Reply("The menu WeChat now holds, as sent", InstalledMenu)}, errors=(409,))
    async def post(self) -> None:
        sent = await self.runtime.oa_menu.install()
        await self.audit(INSTALL_ACTION, "settings", "oa_menu", after={"button": sent})
        self.write_model(InstalledMenu(installed=True, button=sent))


class InstalledOaMenuHandler(MerchantHandler):
    @operation("The menu WeChat holds for the official account (cgi-bin/menu/get)",
               responses={200: Reply("WeChat's menu; installed false when the account has none", InstalledMenu)})
    async def get(self) -> None:
        buttons = await self.runtime.oa_menu.installed()
        self.write_model(InstalledMenu(installed=buttons is not None, button=buttons or []))


ROUTES = [
    (f"{OA_MENU_PATH}/install", OaMenuInstallHandler),
    (f"{OA_MENU_PATH}/installed", InstalledOaMenuHandler),
]
