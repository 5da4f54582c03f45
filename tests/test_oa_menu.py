"""The official account's menu reaches WeChat (the sandbox, over real HTTP) from `python -m bot menu install`, the
merchant API and the console's button; a stored menu WeChat would refuse is refused first, naming the field,
and nothing is sent; what WeChat holds is read back with menu/get. The sandbox refuses menus as WeChat does, and
every key a button may send is one the conversation's router answers."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
from wechatpy import parse_message

from bot.conversation import build_router
from bot.router import Push
from bot.simulate import event_xml
from distribution.oa_menu import ClickKey, OaMenu
from sandbox import Fault
from settings import SANDBOX_MINIAPP_APP_ID, SANDBOX_OA_APP_ID
from tests.conftest import MERCHANT_TOKEN, REDIS_URL, production_environ
from tests.console_fixtures import staff_client
from tests.test_console_settings import FormReader
from wechat import WeChatError

ROOT = Path(__file__).resolve().parent.parent
MERCHANT = {"Authorization": f"Bearer {MERCHANT_TOKEN}"}
CREATE = "cgi-bin/menu/create"
SETTINGS = "/api/merchant/v1/settings/oa_menu"
INSTALL = "/api/merchant/v1/oa-menu/install"
INSTALLED = "/api/merchant/v1/oa-menu/installed"
DEFAULT_SENT = OaMenu().for_wechat(SANDBOX_MINIAPP_APP_ID)
SHOP_MENU = {"button": [
    {"name": "我的", "sub_button": [{"type": "click", "name": "佣金", "key": "MY_COMMISSION"},
                                   {"type": "miniprogram", "name": "提现", "pagepath": "pages/withdraw/index",
                                    "url": "https://shop.example.test/withdraw"}]},
    {"type": "view", "name": "活动", "url": "https://shop.example.test/events"},
]}
SHOP_MENU_SENT = {"button": [
    {"name": "我的", "sub_button": [{"type": "click", "name": "佣金", "key": "MY_COMMISSION"},
                                   {"type": "miniprogram", "name": "提现", "pagepath": "pages/withdraw/index",
                                    "url": "https://shop.example.test/withdraw", "appid": SANDBOX_MINIAPP_APP_ID}]},
    {"type": "view", "name": "活动", "url": "https://shop.example.test/events"},
]}
FOUR_BUTTONS = {"button": [{"type": "click", "name": name, "key": "HELP"} for name in ("一", "二", "三", "四")]}
LONG_NAME = {"button": [{"type": "click", "name": "欢迎关注本店公众号随时查看佣金团队与提现", "key": "HELP"}]}


async def store_around_the_api(server, menu: dict) -> None:
    """A menu the API would refuse, as an older version or a hand-edited database may have left it."""
    await server.runtime.merchant_settings.store.put("oa_menu", menu, datetime.now(timezone.utc))


def as_wechat_answers(sent: dict) -> list[dict]:
    """menu/get's buttons: each with its list of sub-buttons, empty or not."""
    return [{**button, "sub_button": [{**each, "sub_button": []} for each in button.get("sub_button", [])]}
            for button in sent["button"]]


BUTTON_FIELDS = ("type", "name", "key", "url", "appid", "pagepath", "media_id", "article_id")


def as_api_answers(buttons: list[dict]) -> list[dict]:
    """The API's buttons: every field WeChat documents, null when WeChat has none."""
    return [{**{field: button.get(field) for field in BUTTON_FIELDS},
             "sub_button": as_api_answers(button.get("sub_button", []))} for button in buttons]


async def run_menu_command(server, action: str) -> tuple[int, str, str]:
    settings = server.runtime.settings
    environ = {**os.environ, "MONGODB_URI": settings.mongodb_uri, "MONGODB_DB": settings.mongodb_db,
               "REDIS_URL": REDIS_URL, "REDIS_PREFIX": settings.redis_prefix, "VAR_DIR": str(settings.var_dir),
               **production_environ(settings.wechat_api_base)}
    # Not subprocess.run: the sandbox answering the command runs on this test's loop.
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "menu", action, cwd=ROOT, env=environ, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 60)
    return process.returncode, out.decode(), err.decode()


@pytest.mark.parametrize("key", list(ClickKey))
async def test_every_key_a_button_may_send_is_one_the_conversation_answers(key):
    router = build_router()
    route = await router.resolve(Push(parse_message(event_xml("o_member", "CLICK", key)), runtime=None))
    nothing = await router.resolve(Push(parse_message(event_xml("o_member", "CLICK", "NOT_A_KEY")), runtime=None))
    assert route is not nothing


# --- the command ---------------------------------------------------------------------------------


async def test_the_command_installs_the_stored_menu_and_shows_what_wechat_holds(server, sandbox):
    code, out, err = await run_menu_command(server, "show")
    assert (code, json.loads(out)) == (0, {"installed": False, "button": []}), err

    code, out, err = await run_menu_command(server, "install")
    assert code == 0, err
    assert json.loads(out) == {"installed": True, **DEFAULT_SENT}
    [call] = sandbox.state.calls.received(CREATE)
    assert call.body == DEFAULT_SENT
    assert "我的" in call.raw_body  # Chinese as UTF-8: WeChat refuses \u escapes in a menu
    assert sandbox.state.menus[SANDBOX_OA_APP_ID] == DEFAULT_SENT

    code, out, err = await run_menu_command(server, "show")
    assert (code, json.loads(out)) == (0, {"installed": True, "button": as_wechat_answers(DEFAULT_SENT)}), err


@pytest.mark.parametrize("menu, field, problem", [
    (FOUR_BUTTONS, "button", "must have at most 3 entries"),
    (LONG_NAME, "button[0].name", "must be at most 16 bytes of UTF-8 (a Chinese character takes 3); this is 60"),
], ids=["four buttons", "a 20-character name"])
async def test_the_command_refuses_an_invalid_menu_before_any_call(server, sandbox, menu, field, problem):
    await store_around_the_api(server, menu)
    sandbox.state.calls.clear()
    code, out, err = await run_menu_command(server, "install")
    assert (code, out) == (1, "")
    assert f"refused: the stored menu is not valid, so nothing was sent to WeChat: {field}: {problem}" in err
    assert sandbox.state.calls.received() == []  # not even an access token was asked for
    assert sandbox.state.menus == {}


# --- the merchant API ----------------------------------------------------------------------------


async def test_the_api_stores_installs_and_reads_back_the_menu(server, sandbox):
    http = server.http
    assert OaMenu.from_dict((await server.merchant_get(SETTINGS)).json()) == OaMenu()
    assert (await server.merchant_get(INSTALLED)).json() == {"installed": False, "button": []}

    refused = await http.put(SETTINGS, json=LONG_NAME, headers=MERCHANT)
    assert refused.status_code == 400
    assert refused.json()["error"]["field"] == "button[0].name"
    stored = await http.put(SETTINGS, json=SHOP_MENU, headers=MERCHANT)
    assert stored.status_code == 200, stored.text
    assert sandbox.state.calls.received(CREATE) == []  # saving is not installing

    installed = await http.post(INSTALL, headers=MERCHANT)
    assert installed.status_code == 200, installed.text
    assert installed.json() == {"installed": True, "button": as_api_answers(SHOP_MENU_SENT["button"])}
    [call] = sandbox.state.calls.received(CREATE)
    assert call.body == SHOP_MENU_SENT
    assert (await server.merchant_get(INSTALLED)).json() == {"installed": True,
                                                            "button": as_api_answers(SHOP_MENU_SENT["button"])}
    [entry] = await server.runtime.db["audit_log"].find({"action": "oa_menu.install"}).to_list()
    assert entry["actor"]["kind"] == "api"
    assert (entry["target"], entry["after"]) == ({"kind": "settings", "id": "oa_menu"}, SHOP_MENU_SENT)

    assert (await http.post(INSTALL)).status_code == 401
    assert (await http.get(INSTALLED)).status_code == 401
    assert len(sandbox.state.calls.received(CREATE)) == 1


async def test_the_api_refuses_an_invalid_stored_menu_before_any_call(server, sandbox):
    await store_around_the_api(server, FOUR_BUTTONS)
    sandbox.state.calls.clear()
    refused = await server.http.post(INSTALL, headers=MERCHANT)
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "invalid_menu"
    assert refused.json()["error"]["field"] == "button"
    assert sandbox.state.calls.received() == []
    assert await server.runtime.db["audit_log"].count_documents({"action": "oa_menu.install"}) == 0


async def test_wechat_refusing_the_menu_or_not_answering_is_told_apart(server, sandbox):
    sandbox.state.faults.add(Fault(CREATE, errcode=85005))  # the mini-program is not linked to the account
    refused = await server.http.post(INSTALL, headers=MERCHANT)
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "menu_refused"
    assert "85005" in refused.json()["error"]["message"]

    sandbox.state.faults.add(Fault(CREATE, errcode=-1))  # WeChat's system error: try again later
    down = await server.http.post(INSTALL, headers=MERCHANT)
    assert down.status_code == 503
    assert sandbox.state.menus == {}
    assert await server.runtime.db["audit_log"].count_documents({"action": "oa_menu.install"}) == 0


# --- the console ---------------------------------------------------------------------------------


async def test_the_console_installs_the_menu_from_its_settings_page(server, sandbox):
    owner = await staff_client(server, "owner")
    page = await owner.get("/admin/settings/oa_menu")
    assert page.status_code == 200
    assert 'action="/admin/settings/oa_menu/install"' in page.text and 'id="install-menu-button"' in page.text
    assert 'id="install-menu-button"' not in (await owner.get("/admin/settings/posters")).text

    installed = await owner.post("/admin/settings/oa_menu/install")
    assert (installed.status_code, installed.headers["Location"]) == (303, "/admin/settings/oa_menu?installed=1")
    [call] = sandbox.state.calls.received(CREATE)
    assert call.body == DEFAULT_SENT
    shown = await owner.get("/admin/settings/oa_menu", installed="1")
    assert "已安装到公众号" in shown.text
    [entry] = await server.runtime.db["audit_log"].find({"action": "oa_menu.install"}).to_list()
    assert entry["actor"] == {"kind": "staff", "name": "owner1", "role": "owner"}
    assert entry["after"] == DEFAULT_SENT


async def test_the_console_saves_the_menu_through_its_form(server, sandbox):
    owner = await staff_client(server, "owner")
    shown = FormReader((await owner.get("/admin/settings/oa_menu")).text).values
    assert json.loads(shown["button"]) == OaMenu().to_dict()["button"]
    saved = await owner.post("/admin/settings/oa_menu", {"button": json.dumps(SHOP_MENU["button"])})
    assert saved.status_code == 303, saved.text
    assert OaMenu.from_dict((await server.merchant_get(SETTINGS)).json()).to_dict() == SHOP_MENU
    refused = await owner.post("/admin/settings/oa_menu", {"button": json.dumps(FOUR_BUTTONS["button"])})
    assert refused.status_code == 400
    assert "must have at most 3 entries" in FormReader(refused.text).field_errors["button"]
    assert sandbox.state.calls.received(CREATE) == []


async def test_the_console_refuses_an_invalid_menu_and_other_roles_and_forged_posts(server, sandbox):
    owner = await staff_client(server, "owner")

    await store_around_the_api(server, LONG_NAME)
    sandbox.state.calls.clear()
    refused = await owner.post("/admin/settings/oa_menu/install")
    assert refused.status_code == 409
    assert "button[0].name" in refused.text
    forged = await owner.post("/admin/settings/oa_menu/install", csrf=False)
    assert forged.status_code == 403
    for role in ("operator", "finance"):
        other = await staff_client(server, role)
        assert (await other.post("/admin/settings/oa_menu/install")).status_code == 403
    assert sandbox.state.calls.received() == []


# --- the sandbox, as WeChat ----------------------------------------------------------------------


def button(name: str = "帮助", **fields: str) -> dict:
    return {"type": "click", "name": name, "key": "HELP", **fields}


@pytest.mark.parametrize("menu, errcode", [
    ({"button": []}, 40016),
    ({"button": [button()] * 4}, 40016),
    ({"button": [button(type="shake")]}, 40017),
    ({"button": [button("六个汉字的名")]}, 40018),
    ({"button": [button(key="K" * 129)]}, 40019),
    ({"button": [{"type": "view", "name": "官网", "url": "shop.example.com"}]}, 40020),
    ({"button": [{"name": "更多", "sub_button": [button()] * 6}]}, 40023),
    ({"button": [{"name": "更多", "sub_button": [button(type="shake")]}]}, 40024),
    ({"button": [{"name": "更多", "sub_button": [button("二" * 21)]}]}, 40025),
    ({"button": [{"name": "更多", "sub_button": [button(key="")]}]}, 40026),
    ({"button": [{"name": "更多", "sub_button": [{"type": "miniprogram", "name": "商城", "appid": SANDBOX_MINIAPP_APP_ID,
                                                 "pagepath": "pages/index/index"}]}]}, 40027),
    ({"button": [{"type": "miniprogram", "name": "商城", "url": "https://a.test/", "pagepath": "pages/index/index"}]},
     40166),
    ({"button": [{"type": "miniprogram", "name": "商城", "url": "https://a.test/", "appid": "wxnotlinked0000000",
                  "pagepath": "pages/index/index"}]}, 85005),
    ({"button": [{"type": "miniprogram", "name": "商城", "url": "https://a.test/", "appid": SANDBOX_MINIAPP_APP_ID,
                  "pagepath": "/pages/index/index"}]}, 40165),
])
async def test_the_sandbox_refuses_menus_as_wechat_does(oa_client, sandbox, menu, errcode):
    with pytest.raises(WeChatError) as refused:
        await oa_client.menu.create(menu)
    assert refused.value.errcode == errcode
    assert sandbox.state.menus == {}


async def test_the_sandbox_keeps_the_last_menu_it_took(oa_client, sandbox):
    with pytest.raises(WeChatError) as nothing:
        await oa_client.menu.get()
    assert nothing.value.errcode == 46003
    await oa_client.menu.create({"button": [button("二" * 5)]})  # 15 bytes
    await oa_client.menu.create({"button": [{"name": "更多", "sub_button": [button("二" * 20)]}]})  # 60 bytes
    assert await oa_client.menu.get() == {"menu": {"button": [
        {"name": "更多", "sub_button": [{**button("二" * 20), "sub_button": []}]}]}}
