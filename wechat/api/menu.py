from __future__ import annotations

from typing import Any

from .base import ApiGroup

MENU_NOT_SET = 46003  # menu/get: the account has no menu
# What menu/create answers for a menu it refuses: too many or too few buttons or sub-buttons, a name, key or URL
# too long, a type it does not know, a link's domain it does not accept, a mini-program page or app id that is
# not valid, a mini-program not linked to the account.
MENU_REFUSALS = frozenset({40016, 40017, 40018, 40019, 40020, 40022, 40023, 40024, 40025, 40026, 40027, 40054,
                           40055, 40165, 40166, 85005})


class MenuApi(ApiGroup):
    """The official account's menu (自定义菜单), shown under the chat."""

    async def create(self, menu: dict[str, Any]) -> dict[str, Any]:
        """Replace the menu with `menu`, {"button": [...]} as WeChat documents it."""
        return await self._call_for_json("POST", "cgi-bin/menu/create", json=menu)

    async def get(self) -> dict[str, Any]:
        """{"menu": {"button": [...]}, "conditionalmenu"?: [...]}; MENU_NOT_SET is raised when there is none."""
        return await self._call_for_json("GET", "cgi-bin/menu/get")
