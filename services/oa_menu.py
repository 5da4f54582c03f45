"""The official account's menu in WeChat: the stored `oa_menu` settings installed with `cgi-bin/menu/create`, and
what WeChat holds read back with `cgi-bin/menu/get`."""

from __future__ import annotations

from typing import Any

from distribution.errors import Conflict, Refused
from distribution.oa_menu import OaMenu
from distribution.records import InvalidField
from services.merchant_settings import MerchantSettings
from wechat import WeChatClient, WeChatError
from wechat.api.menu import MENU_NOT_SET, MENU_REFUSALS


class InvalidStoredMenu(Conflict):
    code = "invalid_menu"


class MenuRefused(Refused):
    code = "menu_refused"


class OaMenuService:
    def __init__(self, merchant_settings: MerchantSettings, oa: WeChatClient, miniapp_app_id: str):
        self.merchant_settings = merchant_settings
        self.oa = oa
        self.miniapp_app_id = miniapp_app_id

    async def install(self) -> list[dict[str, Any]]:
        """Send the stored menu to WeChat; its buttons as sent. A stored menu that is not valid (written around
        the API, or by a version that answered other keys) is refused, naming the field, before any call."""
        try:
            menu = await self.merchant_settings.stored(OaMenu)
        except InvalidField as invalid:
            raise InvalidStoredMenu(f"the stored menu is not valid, so nothing was sent to WeChat: {invalid}; "
                                    f"correct it with PUT /api/merchant/v1/settings/oa_menu",
                                    field=invalid.field) from None
        body = menu.for_wechat(self.miniapp_app_id)
        try:
            await self.oa.menu.create(body)
        except WeChatError as error:
            if error.errcode in MENU_REFUSALS:
                raise MenuRefused(f"WeChat refused the menu ({error.errcode}: {error.errmsg})") from None
            raise
        return body["button"]

    async def installed(self) -> list[dict[str, Any]] | None:
        """The buttons of the menu WeChat holds, as it answers them; None when the account has no menu."""
        try:
            answer = await self.oa.menu.get()
        except WeChatError as error:
            if error.errcode == MENU_NOT_SET:
                return None
            raise
        return answer.get("menu", {}).get("button", [])
