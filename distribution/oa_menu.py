"""The official account's menu (自定义菜单): the buttons under the chat, as the merchant sets them.

Pure: a `Record` read and replaced through `GET|PUT /api/merchant/v1/settings/oa_menu`, and sent to WeChat's
`cgi-bin/menu/create` by `python -m bot menu install`, the merchant API or the console. It is validated against
WeChat's published limits, so that a menu refused here is never sent and WeChat does not refuse one accepted
here for its shape: 1 to 3 buttons, each with at most 5 sub-buttons; a button's name at most 16 bytes of UTF-8
(5 Chinese characters), a sub-button's 60 (20); a URL at most 1024 bytes. Fields are named as WeChat names them,
so the stored menu reads as WeChat's own documentation describes one.

A click button's key must be one the account's conversation answers (`ClickKey`): a button whose key nothing
answers would be a dead button, so it is refused rather than sent.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Self

from pydantic import AfterValidator, ConfigDict, Field, StringConstraints, model_validator

from distribution.chat import HELP, MY_COMMISSION, MY_TEAM, POSTER, WITHDRAW
from distribution.records import InvalidField, Record, Text, matching

MAX_BUTTONS = 3
MAX_SUB_BUTTONS = 5
BUTTON_NAME_BYTES = 16
SUB_BUTTON_NAME_BYTES = 60
URL_BYTES = 1024
MAX_PAGE_PATH_LENGTH = 1024
CHINESE_CHARACTER_BYTES = 3


class ButtonType(StrEnum):
    CLICK = "click"  # sends its key to the account's conversation, which answers
    VIEW = "view"  # opens a web page
    MINIPROGRAM = "miniprogram"  # opens a page of a mini-program


class ClickKey(StrEnum):
    """The menu keys the account's conversation answers."""

    MY_COMMISSION = MY_COMMISSION
    MY_TEAM = MY_TEAM
    WITHDRAW = WITHDRAW
    HELP = HELP
    POSTER = POSTER


def utf8_at_most(limit: int) -> AfterValidator:
    """A string constraint in bytes of UTF-8, as WeChat counts its limits."""

    def check(text: str) -> str:
        size = len(text.encode())
        if size > limit:
            raise ValueError(f"must be at most {limit} bytes of UTF-8 (a Chinese character takes "
                             f"{CHINESE_CHARACTER_BYTES}); this is {size}")
        return text

    return AfterValidator(check)


Name = Annotated[Text, matching(r"^[^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f][^\x00-\x1f\x7f]*$",
                               "must not be blank nor contain line breaks or control characters")]
ButtonName = Annotated[Name, utf8_at_most(BUTTON_NAME_BYTES)]
SubButtonName = Annotated[Name, utf8_at_most(SUB_BUTTON_NAME_BYTES)]
MenuUrl = Annotated[Text, matching(r"^https?://[^/?#\s]+([/?#]\S*)?$", "must be an http:// or https:// address"),
                    utf8_at_most(URL_BYTES)]
MiniappId = Annotated[Text, matching(r"^wx[0-9A-Za-z]{8,32}$", "must be a mini-program app id such as "
                                                                 "wx1234567890abcdef")]
# A mini-program page as a menu opens it: no leading slash; unlike a mini-program code's page, it may take a query.
MenuPage = Annotated[Text, StringConstraints(max_length=MAX_PAGE_PATH_LENGTH), matching(
    r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_.-]+)*(\?[!-~]*)?$",
    "must be a mini-program page path such as pages/index/index (no leading /; a query may follow ?)",
)]

# Besides its name, the fields each type of button takes, and whether each is required.
TYPE_FIELDS: dict[ButtonType, dict[str, bool]] = {
    ButtonType.CLICK: {"key": True},
    ButtonType.VIEW: {"url": True},
    # WeChat versions without mini-programs open `url` instead: WeChat requires it.
    ButtonType.MINIPROGRAM: {"appid": False, "pagepath": True, "url": True},
}
ACTION_FIELDS = ("key", "url", "appid", "pagepath")


class _Button(Record):
    name: Text
    type: ButtonType | None
    key: ClickKey | None = Field(None, description="click: the key the account's conversation answers.")
    url: MenuUrl | None = Field(
        None, description=f"view: the web page it opens; miniprogram: the page WeChat versions without "
                          f"mini-programs open instead. http:// or https://, at most {URL_BYTES} bytes.")
    appid: MiniappId | None = Field(
        None, description="miniprogram: the mini-program's app id; null: this server's own (MINIAPP_APP_ID).")
    pagepath: MenuPage | None = Field(
        None, description="miniprogram: the page it opens, such as pages/index/index (no leading /; a query may "
                          "follow ?).")

    def _check_the_fields_of_its_type(self) -> None:
        takes = TYPE_FIELDS[self.type] if self.type else {}
        for field in ACTION_FIELDS:
            if getattr(self, field) is None:
                if takes.get(field):
                    raise InvalidField(field, f"is required on a {self.type} button")
            elif field not in takes:
                raise InvalidField(field, f"is not used on a {self.type} button" if self.type else
                                   "is not used on a button with sub-buttons, which only opens them")


class SubButton(_Button):
    """A button in a button's list."""

    name: SubButtonName = Field(
        description=f"At most {SUB_BUTTON_NAME_BYTES} bytes of UTF-8 "
                    f"({SUB_BUTTON_NAME_BYTES // CHINESE_CHARACTER_BYTES} Chinese characters).")
    type: ButtonType = Field(description="click: sends its key to the account's conversation; view: opens a web "
                                         "page; miniprogram: opens a page of the mini-program.")

    @model_validator(mode="after")
    def _takes_the_fields_of_its_type(self) -> Self:
        self._check_the_fields_of_its_type()
        return self


class MenuButton(_Button):
    """A button under the chat: it does something itself (it has a type) or opens its sub-buttons (it has none)."""

    name: ButtonName = Field(
        description=f"At most {BUTTON_NAME_BYTES} bytes of UTF-8 "
                    f"({BUTTON_NAME_BYTES // CHINESE_CHARACTER_BYTES} Chinese characters).")
    type: ButtonType | None = Field(None, description="What tapping it does, as a sub-button's type; null on a "
                                                      "button with sub-buttons.")
    sub_button: Annotated[tuple[SubButton, ...], Field(max_length=MAX_SUB_BUTTONS)] = Field(
        (), description=f"At most {MAX_SUB_BUTTONS}, shown when the button is tapped.")

    @model_validator(mode="after")
    def _a_type_or_sub_buttons(self) -> Self:
        if self.sub_button and self.type is not None:
            raise InvalidField("type", "must be null on a button with sub-buttons: tapping it opens them")
        if not self.sub_button and self.type is None:
            raise InvalidField("type", "is required on a button without sub-buttons")
        self._check_the_fields_of_its_type()
        return self


def _click(name: str, key: ClickKey) -> dict[str, str]:
    return {"type": ButtonType.CLICK, "name": name, "key": key}


def _default_buttons() -> tuple[MenuButton, ...]:
    mine = [_click("佣金", ClickKey.MY_COMMISSION), _click("团队", ClickKey.MY_TEAM),
            _click("提现", ClickKey.WITHDRAW), _click("海报", ClickKey.POSTER)]
    return (MenuButton(name="我的", sub_button=tuple(SubButton(**each) for each in mine)),
            MenuButton(**_click("帮助", ClickKey.HELP)))


class OaMenu(Record):
    """The official account's menu. Saving it changes nothing in WeChat: installing it does (`python -m bot menu
    install`, POST /api/merchant/v1/oa-menu/install, or the console's settings page)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"button": [
        {"name": "我的", "sub_button": [{"type": "click", "name": "佣金", "key": "MY_COMMISSION"},
                                        {"type": "click", "name": "提现", "key": "WITHDRAW"},
                                        {"type": "miniprogram", "name": "商城", "pagepath": "pages/index/index",
                                         "url": "https://shop.example.com/"}]},
        {"type": "view", "name": "活动", "url": "https://shop.example.com/events"},
        {"type": "click", "name": "帮助", "key": "HELP"},
    ]}]})

    button: Annotated[tuple[MenuButton, ...], Field(min_length=1, max_length=MAX_BUTTONS)] = Field(
        default_factory=_default_buttons, description=f"1 to {MAX_BUTTONS} buttons, left to right.")

    def to_dict(self) -> dict[str, Any]:
        """As WeChat's documentation writes a menu: the fields a button does not use are left out."""
        return {"button": [_written(button) for button in super().to_dict()["button"]]}

    def for_wechat(self, miniapp_app_id: str) -> dict[str, Any]:
        """The body `cgi-bin/menu/create` takes: a mini-program button without an app id opens `miniapp_app_id`."""
        return {"button": [_written(button, miniapp_app_id) for button in super().to_dict()["button"]]}


def _written(button: dict[str, Any], miniapp_app_id: str | None = None) -> dict[str, Any]:
    written = {field: value for field, value in button.items() if value is not None and field != "sub_button"}
    if button.get("sub_button"):
        written["sub_button"] = [_written(each, miniapp_app_id) for each in button["sub_button"]]
    if miniapp_app_id and written.get("type") == ButtonType.MINIPROGRAM:
        written.setdefault("appid", miniapp_app_id)
    return written
