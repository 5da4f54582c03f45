"""What each WeChat endpoint answers: the contract the sandbox speaks.

Each endpoint is a coroutine from the call it received to WeChat's JSON answer
(or a PNG, or the redirect of a page the user's browser opens); WeChat's
errors are raised as `SandboxError`.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable
from urllib.parse import urlencode, urlsplit

from tornado.httputil import HTTPFile
from tornado.web import HTTPError

from wechat.api.media import MEDIA_KINDS
from wechat.api.miniapp import is_valid_scene
from wechat.api.risk import RISK_RANK_PATH, RiskScene

from .avatars import render_avatar_png
from .errors import SandboxError
from .identities import openid_for, session_key_for, unionid_for, user_of
from .media import UploadedMedia
from .miniapp_code import render_code_png
from .state import SandboxState

OK = {"errcode": 0, "errmsg": "ok"}
INVALID_LOGIN_CODE = "invalid"
# Fixed so answers are the same on every run.
SUBSCRIBE_TIME = 1_700_000_000


@dataclass(frozen=True)
class Received:
    app_id: str | None  # the app whose access token came with the call
    query: dict[str, str]
    body: Any  # parsed JSON; None when absent or malformed
    files: dict[str, list[HTTPFile]]

    @property
    def json(self) -> dict[str, Any]:
        if not isinstance(self.body, dict):
            raise SandboxError(47001)
        return self.body


@dataclass(frozen=True)
class Png:
    content: bytes


@dataclass(frozen=True)
class Redirect:
    location: str  # where WeChat sends the browser (302)


Answer = dict[str, Any] | Png | Redirect


@dataclass(frozen=True)
class Endpoint:
    method: str
    answer: Callable[[SandboxState, Received], Awaitable[Answer]]
    needs_token: bool


ENDPOINTS: dict[str, Endpoint] = {}


def endpoint(path: str, method: str, needs_token: bool = True):
    def register(answer: Callable[[SandboxState, Received], Awaitable[Answer]]):
        ENDPOINTS[path] = Endpoint(method, answer, needs_token)
        return answer

    return register


@endpoint("cgi-bin/token", "GET", needs_token=False)
async def token(state: SandboxState, received: Received) -> Answer:
    if received.query.get("grant_type") != "client_credential":
        raise SandboxError(40002)
    app_id = state.authenticate(received.query.get("appid"), received.query.get("secret"))
    value, expires_in = state.tokens.issue(app_id)
    return {"access_token": value, "expires_in": expires_in}


@endpoint("cgi-bin/stable_token", "POST", needs_token=False)
async def stable_token(state: SandboxState, received: Received) -> Answer:
    body = received.json
    if body.get("grant_type") != "client_credential":
        raise SandboxError(40002)
    app_id = state.authenticate(body.get("appid"), body.get("secret"))
    value, expires_in = state.tokens.stable(app_id, force_refresh=body.get("force_refresh") is True)
    return {"access_token": value, "expires_in": expires_in}


# action_name -> (the scene field it carries, whether the code is permanent)
QR_ACTIONS = {
    "QR_SCENE": ("scene_id", False),
    "QR_STR_SCENE": ("scene_str", False),
    "QR_LIMIT_SCENE": ("scene_id", True),
    "QR_LIMIT_STR_SCENE": ("scene_str", True),
}
DEFAULT_QR_SECONDS = 60
MAX_QR_SECONDS = 2_592_000
MAX_PERMANENT_SCENE_ID = 100_000


@endpoint("cgi-bin/qrcode/create", "POST")
async def qrcode_create(state: SandboxState, received: Received) -> Answer:
    body = received.json
    action = QR_ACTIONS.get(body.get("action_name"))
    if action is None:
        raise SandboxError(47001)
    scene_field, permanent = action
    scene = _nested(body, "action_info", "scene", scene_field)
    if not _valid_qr_scene(scene, permanent):
        raise SandboxError(47001)
    # Deterministic, so a test can tell which scene a ticket or URL stands for.
    scene_key = f"{received.app_id}:{body['action_name']}:{scene}"
    url = f"http://weixin.qq.com/q/{hashlib.sha256(scene_key.encode()).hexdigest()[:24]}"
    answer: dict[str, Any] = {"ticket": base64.b64encode(url.encode()).decode(), "url": url}
    if not permanent:
        expire_seconds = body.get("expire_seconds", DEFAULT_QR_SECONDS)
        if not _is_int(expire_seconds) or expire_seconds < 1:
            raise SandboxError(47001)
        answer["expire_seconds"] = min(expire_seconds, MAX_QR_SECONDS)
    return answer


def _valid_qr_scene(scene: Any, permanent: bool) -> bool:
    if isinstance(scene, str):
        return 1 <= len(scene) <= 64
    return _is_int(scene) and 0 < scene and (not permanent or scene <= MAX_PERMANENT_SCENE_ID)


@endpoint("cgi-bin/media/upload", "POST")
async def media_upload(state: SandboxState, received: Received) -> Answer:
    kind = received.query.get("type")
    if kind not in MEDIA_KINDS:
        raise SandboxError(40004)
    uploads = received.files.get("media")
    if not uploads:
        raise SandboxError(41005)
    media_id = state.media.add(UploadedMedia(kind, uploads[0].filename, uploads[0].body))
    return {"type": kind, "media_id": media_id, "created_at": int(time.time())}


CUSTOM_MESSAGE_TYPES = frozenset(
    {"text", "image", "voice", "video", "music", "news", "mpnews", "mpnewsarticle", "msgmenu", "wxcard", "miniprogrampage"}
)
MEDIA_MESSAGE_TYPES = frozenset({"image", "voice", "video"})


@endpoint("cgi-bin/message/custom/send", "POST")
async def custom_send(state: SandboxState, received: Received) -> Answer:
    body = received.json
    _require_openid(body)
    msgtype = body.get("msgtype")
    if msgtype not in CUSTOM_MESSAGE_TYPES:
        raise SandboxError(40008)
    content = body.get(msgtype)
    if not isinstance(content, dict):
        raise SandboxError(47001)
    if msgtype == "text" and not content.get("content"):
        raise SandboxError(44004)
    if msgtype in MEDIA_MESSAGE_TYPES and state.media.get(str(content.get("media_id"))) is None:
        raise SandboxError(40007)
    return OK


@endpoint("cgi-bin/message/template/send", "POST")
async def template_send(state: SandboxState, received: Received) -> Answer:
    _require_templated_message(received.json)
    return {**OK, "msgid": state.next_message_id()}


@endpoint("cgi-bin/message/subscribe/bizsend", "POST")
async def subscription_send(state: SandboxState, received: Received) -> Answer:
    _require_templated_message(received.json)
    return OK


@endpoint("cgi-bin/message/subscribe/send", "POST")
async def miniapp_subscription_send(state: SandboxState, received: Received) -> Answer:
    _require_templated_message(received.json)
    return OK


MIN_CODE_WIDTH = 280
MAX_CODE_WIDTH = 1280


@endpoint("wxa/getwxacodeunlimit", "POST")
async def unlimited_code(state: SandboxState, received: Received) -> Answer:
    body = received.json
    scene = body.get("scene")
    if not isinstance(scene, str) or not is_valid_scene(scene):
        raise SandboxError(40169)
    page = body.get("page", "")
    if not isinstance(page, str) or page.startswith("/"):
        raise SandboxError(41030)
    width = body.get("width", 430)
    if not _is_int(width):
        raise SandboxError(47001)
    width = min(max(width, MIN_CODE_WIDTH), MAX_CODE_WIDTH)
    # Rendering takes milliseconds: keep it off the loop that also serves the app in demo mode.
    return Png(await asyncio.to_thread(render_code_png, scene, width))


def _code_exchanger(state: SandboxState, query: dict[str, str]) -> str:
    """The app exchanging a one-time code with its secret (jscode2session, web authorization)."""
    app_id = state.authenticate(query.get("appid"), query.get("secret"))
    if query.get("grant_type") != "authorization_code":
        raise SandboxError(40002)
    return app_id


@endpoint("sns/jscode2session", "GET", needs_token=False)
async def jscode2session(state: SandboxState, received: Received) -> Answer:
    query = received.query
    app_id = _code_exchanger(state, query)
    user = query.get("js_code")
    if not user or user == INVALID_LOGIN_CODE:
        raise SandboxError(40029)
    return {"openid": openid_for(app_id, user), "session_key": session_key_for(app_id, user), "unionid": unionid_for(user)}


WEB_AUTH_SCOPES = frozenset({"snsapi_base", "snsapi_userinfo"})
WEB_ACCESS_TOKEN_SECONDS = 7200


@endpoint("connect/oauth2/authorize", "GET", needs_token=False)
async def oauth2_authorize(state: SandboxState, received: Received) -> Answer:
    """WeChat's web authorization page, opened by the user's browser. Nobody logs in to the sandbox: the
    sandbox-only `sandbox_user` names who opened it, and the page consents at once, as snsapi_base does."""
    query = received.query
    app_id = query.get("appid")
    if app_id not in state.apps:
        raise SandboxError(40013)
    redirect_uri = query.get("redirect_uri", "")
    target = urlsplit(redirect_uri)
    if target.scheme not in ("http", "https") or not target.netloc:
        raise SandboxError(10003)
    scope = query.get("scope")
    if query.get("response_type") != "code" or scope not in WEB_AUTH_SCOPES:
        raise SandboxError(10005)
    user = query.get("sandbox_user")
    if not user:
        raise HTTPError(400, reason="sandbox_user is required: it names the simulated WeChat user opening the page")
    code = state.auth_codes.issue(app_id, user, scope)
    separator = "&" if target.query else "?"
    return Redirect(f"{redirect_uri}{separator}{urlencode({'code': code, 'state': query.get('state', '')})}")


@endpoint("mmopen/avatar", "GET", needs_token=False)
async def avatar(state: SandboxState, received: Received) -> Answer:
    """A user's avatar picture, as WeChat's avatar hosts serve them (the sandbox-only `user` names whose)."""
    user = received.query.get("user")
    if not user:
        raise HTTPError(400, reason="user is required: it names the sandbox user whose avatar this is")
    return Png(await asyncio.to_thread(render_avatar_png, user))


@endpoint("sns/oauth2/access_token", "GET", needs_token=False)
async def oauth2_access_token(state: SandboxState, received: Received) -> Answer:
    query = received.query
    app_id = _code_exchanger(state, query)
    issued = state.auth_codes.redeem(app_id, query.get("code"))
    return {
        "access_token": secrets.token_urlsafe(48),
        "expires_in": WEB_ACCESS_TOKEN_SECONDS,
        "refresh_token": secrets.token_urlsafe(48),
        "openid": openid_for(app_id, issued.user),
        "scope": issued.scope,
        "unionid": unionid_for(issued.user),
    }


@endpoint("cgi-bin/user/info", "GET")
async def user_info(state: SandboxState, received: Received) -> Answer:
    openid = received.query.get("openid")
    if not openid:
        raise SandboxError(40003)
    return {
        "subscribe": 1,
        "openid": openid,
        "language": "zh_CN",
        "subscribe_time": SUBSCRIBE_TIME,
        "unionid": unionid_for(user_of(openid)),
        "remark": "",
        "groupid": 0,
        "tagid_list": [],
        "subscribe_scene": "ADD_SCENE_QR_CODE",
        "qr_scene": 0,
        "qr_scene_str": "",
    }


@endpoint(RISK_RANK_PATH, "POST")
async def user_risk_rank(state: SandboxState, received: Received) -> Answer:
    """The rank a test set for the openid (`/_sandbox/risk-ranks`), else the lowest."""
    body = received.json
    if body.get("appid") != received.app_id:
        raise SandboxError(43104)
    openid = body.get("openid")
    if not isinstance(openid, str) or not openid:
        raise SandboxError(40003)
    user = user_of(openid)
    if user != openid and openid != openid_for(received.app_id, user):  # the user's openid in another app
        raise SandboxError(43104)
    if not _is_int(body.get("scene")) or body["scene"] not in set(RiskScene):
        raise SandboxError(40129)
    if not isinstance(body.get("client_ip"), str) or not body["client_ip"]:
        raise SandboxError(44002)
    return {"errcode": 0, "errmsg": "getuserriskrank succ", "risk_rank": state.risk_ranks.of(openid),
            "unoin_id": state.risk_ranks.next_request_id()}


# Each type of menu button WeChat knows, and the field it requires besides its name.
MENU_BUTTON_FIELDS = {
    **dict.fromkeys(("click", "scancode_push", "scancode_waitmsg", "pic_sysphoto", "pic_photo_or_album",
                     "pic_weixin", "location_select"), "key"),
    **dict.fromkeys(("view", "miniprogram"), "url"),
    **dict.fromkeys(("media_id", "view_limited"), "media_id"),
    **dict.fromkeys(("article_id", "article_view_limited"), "article_id"),
}
MAX_MENU_BUTTONS = 3
MAX_MENU_SUB_BUTTONS = 5
MAX_MENU_KEY_BYTES = 128
MAX_MENU_URL_BYTES = 1024


@dataclass(frozen=True)
class MenuLevel:
    """What WeChat says about a button of one level that it refuses, and how long its name may be."""

    name_bytes: int
    count: int
    type: int
    name: int
    key: int
    url: int


MENU_BUTTON = MenuLevel(name_bytes=16, count=40016, type=40017, name=40018, key=40019, url=40020)
MENU_SUB_BUTTON = MenuLevel(name_bytes=60, count=40023, type=40024, name=40025, key=40026, url=40027)


@endpoint("cgi-bin/menu/create", "POST")
async def menu_create(state: SandboxState, received: Received) -> Answer:
    buttons = received.json.get("button")
    if not isinstance(buttons, list) or not 1 <= len(buttons) <= MAX_MENU_BUTTONS:
        raise SandboxError(MENU_BUTTON.count)
    for button in buttons:
        sub_buttons = button.get("sub_button") if isinstance(button, dict) else None
        if not sub_buttons:
            _check_menu_button(state, button, MENU_BUTTON)
            continue
        if not isinstance(sub_buttons, list) or len(sub_buttons) > MAX_MENU_SUB_BUTTONS:
            raise SandboxError(MENU_SUB_BUTTON.count)
        _check_menu_name(button, MENU_BUTTON)
        for sub_button in sub_buttons:
            if isinstance(sub_button, dict) and sub_button.get("sub_button"):
                raise SandboxError(40022)
            _check_menu_button(state, sub_button, MENU_SUB_BUTTON)
    state.menus[received.app_id] = {"button": buttons}
    return OK


@endpoint("cgi-bin/menu/get", "GET")
async def menu_get(state: SandboxState, received: Received) -> Answer:
    menu = state.menus.get(received.app_id)
    if menu is None:
        raise SandboxError(46003)
    # WeChat answers every button with its list of sub-buttons, empty or not.
    return {"menu": {"button": [{**button, "sub_button": [{**each, "sub_button": []} for each in
                                                          button.get("sub_button", [])]}
                                for button in menu["button"]]}}


def _check_menu_name(button: Any, level: MenuLevel) -> None:
    if not isinstance(button, dict):
        raise SandboxError(47001)
    name = button.get("name")
    if not isinstance(name, str) or not name or len(name.encode()) > level.name_bytes:
        raise SandboxError(level.name)


def _check_menu_button(state: SandboxState, button: Any, level: MenuLevel) -> None:
    _check_menu_name(button, level)
    needed = MENU_BUTTON_FIELDS.get(button.get("type"))
    if needed is None:
        raise SandboxError(level.type)
    value = button.get(needed)
    if needed == "key" and not _string_within(value, MAX_MENU_KEY_BYTES):
        raise SandboxError(level.key)
    if needed == "url" and not (_string_within(value, MAX_MENU_URL_BYTES)
                                and urlsplit(value).scheme in ("http", "https")):
        raise SandboxError(level.url)
    if needed in ("media_id", "article_id") and not (isinstance(value, str) and value):
        raise SandboxError(47001)
    if button["type"] == "miniprogram":
        appid = button.get("appid")
        if not isinstance(appid, str) or not appid:
            raise SandboxError(40166)
        if appid not in state.apps:
            raise SandboxError(85005)
        pagepath = button.get("pagepath")
        if not isinstance(pagepath, str) or not pagepath or pagepath.startswith("/"):
            raise SandboxError(40165)


def _string_within(value: Any, limit: int) -> bool:
    return isinstance(value, str) and 0 < len(value.encode()) <= limit


def _require_openid(body: dict[str, Any]) -> None:
    if not isinstance(body.get("touser"), str) or not body["touser"]:
        raise SandboxError(40003)


def _require_templated_message(body: dict[str, Any]) -> None:
    _require_openid(body)
    if not isinstance(body.get("template_id"), str) or not body["template_id"]:
        raise SandboxError(40037)
    if not isinstance(body.get("data"), dict):
        raise SandboxError(47001)


def _nested(value: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
