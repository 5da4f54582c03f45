"""The official account's menu is refused, its field named, for whatever WeChat's menu/create refuses for its shape
(counts, byte lengths, the fields of each type) and for a click key the conversation does not answer; what it
accepts becomes the body WeChat takes."""

from __future__ import annotations

import pytest

from distribution.oa_menu import OaMenu
from distribution.records import InvalidField

MINIAPP = "wxminiapp12345678"


def click(name: str, key: str = "HELP") -> dict:
    return {"type": "click", "name": name, "key": key}


def with_sub_buttons(*sub_buttons: dict, name: str = "更多") -> dict:
    return {"name": name, "sub_button": list(sub_buttons)}


def mall(**fields: str | None) -> dict:
    return {"type": "miniprogram", "name": "商城", "pagepath": "pages/index/index", "url": "https://shop.example.com/",
            **fields}


def refusal(buttons: list) -> tuple[str, str]:
    with pytest.raises(InvalidField) as refused:
        OaMenu.from_dict({"button": buttons})
    return refused.value.field, refused.value.problem


def test_the_default_menu_asks_for_the_promoters_answers_under_mine_and_help_beside_it():
    assert OaMenu().for_wechat(MINIAPP) == {"button": [
        with_sub_buttons(click("佣金", "MY_COMMISSION"), click("团队", "MY_TEAM"), click("提现", "WITHDRAW"),
                         click("海报", "POSTER"), name="我的"),
        click("帮助", "HELP"),
    ]}


def test_names_are_counted_in_bytes_of_utf8_as_wechat_counts_them():
    OaMenu.from_dict({"button": [click("五个汉字呀"), click("sixteen-letters!")]})  # 15 and 16 bytes
    assert refusal([click("六个汉字的名")]) == (
        "button[0].name", "must be at most 16 bytes of UTF-8 (a Chinese character takes 3); this is 18")
    assert refusal([click("seventeen-letters")])[0] == "button[0].name"
    OaMenu.from_dict({"button": [with_sub_buttons(click("二" * 20))]})  # 60 bytes
    assert refusal([with_sub_buttons(click("帮助"), click("二" * 21))]) == (
        "button[0].sub_button[1].name", "must be at most 60 bytes of UTF-8 (a Chinese character takes 3); this is 63")
    assert refusal([click(" ")])[0] == "button[0].name"
    assert refusal([click("换\n行")])[0] == "button[0].name"


def test_at_most_three_buttons_of_at_most_five_sub_buttons_and_at_least_one_button():
    assert refusal([click("一"), click("二"), click("三"), click("四")]) == ("button", "must have at most 3 entries")
    assert refusal([]) == ("button", "must not be empty")
    assert refusal([with_sub_buttons(*(click(f"子{n}") for n in range(6)))]) == (
        "button[0].sub_button", "must have at most 5 entries")


def test_a_click_key_the_conversation_does_not_answer_is_refused():
    field, problem = refusal([with_sub_buttons(click("签到", "DAILY_SIGN_IN"))])
    assert field == "button[0].sub_button[0].key"
    assert problem == "must be one of 'MY_COMMISSION', 'MY_TEAM', 'WITHDRAW', 'HELP' or 'POSTER'"


@pytest.mark.parametrize("button, field, problem", [
    ({"type": "click", "name": "帮助"}, "button[0].key", "is required on a click button"),
    ({"type": "view", "name": "官网"}, "button[0].url", "is required on a view button"),
    ({"type": "view", "name": "官网", "url": "ftp://shop.example.com/"}, "button[0].url",
     "must be an http:// or https:// address"),
    ({"type": "view", "name": "官网", "url": "https://shop.example.com/" + "页" * 335}, "button[0].url",
     "must be at most 1024 bytes of UTF-8 (a Chinese character takes 3); this is 1030"),
    ({"type": "view", "name": "官网", "url": "https://shop.example.com/", "key": "HELP"}, "button[0].key",
     "is not used on a view button"),
    (mall(url=None), "button[0].url", "is required on a miniprogram button"),
    (mall(pagepath=None), "button[0].pagepath", "is required on a miniprogram button"),
    (mall(pagepath="/pages/index/index"), "button[0].pagepath",
     "must be a mini-program page path such as pages/index/index (no leading /; a query may follow ?)"),
    (mall(appid="gh_0123456789ab"), "button[0].appid", "must be a mini-program app id such as wx1234567890abcdef"),
    ({"name": "更多"}, "button[0].type", "is required on a button without sub-buttons"),
    ({**click("更多"), "sub_button": [click("帮助")]}, "button[0].type",
     "must be null on a button with sub-buttons: tapping it opens them"),
    ({**with_sub_buttons(click("帮助")), "url": "https://shop.example.com/"}, "button[0].url",
     "is not used on a button with sub-buttons, which only opens them"),
    ({"type": "scancode_push", "name": "扫码", "key": "HELP"}, "button[0].type",
     "must be one of 'click', 'view' or 'miniprogram'"),
    ({**click("帮助"), "media_id": "m"}, "button[0].media_id", "is not a known field"),
])
def test_each_type_of_button_takes_its_own_fields(button, field, problem):
    assert refusal([button]) == (field, problem)


def test_a_menu_is_written_as_wechat_writes_one_and_sent_with_this_servers_mini_program():
    written = {"button": [
        with_sub_buttons(mall(), mall(appid="wxother1234567890", pagepath="pages/item/index?id=7")),
        {"type": "view", "name": "活动", "url": "https://shop.example.com/events?from=menu"},
    ]}
    menu = OaMenu.from_dict(written)
    assert menu.to_dict() == written  # what a button does not use is left out, not null
    assert menu.for_wechat(MINIAPP) == {"button": [
        with_sub_buttons(mall(appid=MINIAPP), mall(appid="wxother1234567890", pagepath="pages/item/index?id=7")),
        {"type": "view", "name": "活动", "url": "https://shop.example.com/events?from=menu"},
    ]}
    assert OaMenu.from_dict(menu.to_dict()) == menu
