"""Every setting, read once from the environment (and an optional `.env`).

A bad or missing value stops the start with a `SettingsError` that names the
variable. Demo mode is "no official account configured": the sandbox's app
ids and secrets are used, the sandbox WeChat is started beside the server and
a merchant token is generated.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping
from urllib.parse import urlparse

WECHAT_API = "https://api.weixin.qq.com"
WECHAT_PAY_API = "https://api.mch.weixin.qq.com"
WECHAT_OPEN = "https://open.weixin.qq.com"  # where WeChat's web authorization (网页授权) page lives

SANDBOX_OA_APP_ID = "wxsandbox0fficial"
SANDBOX_OA_APP_SECRET = "sandbox-oa-secret"
SANDBOX_MINIAPP_APP_ID = "wxsandboxminiapp0"
SANDBOX_MINIAPP_APP_SECRET = "sandbox-miniapp-secret"
SANDBOX_WECHAT_TOKEN = "sandboxtoken"
# Demo mode only, and fixed so that data sealed by one demo run opens in the next.
DEMO_SESSION_SECRET = "demo-session-secret-not-for-production"
DEMO_DATA_KEY = base64.b64encode(b"demo-data-key-not-for-production").decode()


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable."""

    def __init__(self, name: str, problem: str):
        super().__init__(f"{name}: {problem}")
        self.name = name


@dataclass(frozen=True)
class Settings:
    demo: bool
    port: int
    mongodb_uri: str | None  # None: start the embedded SecantusDB
    mongodb_db: str
    redis_url: str | None  # None: default URL, or an embedded Redis when nothing answers there
    redis_prefix: str
    var_dir: Path
    wechat_app_id: str
    wechat_app_secret: str
    wechat_token: str
    wechat_aes_key: str | None
    miniapp_app_id: str
    miniapp_app_secret: str
    wechat_api_base: str | None  # None in demo mode: the embedded sandbox's URL, known once it listens
    wechat_pay_api_base: str | None  # None in demo mode: the sandbox's too
    wechat_open_base: str | None  # web authorization of H5 pages; None in demo mode: the sandbox's too
    merchant_api_token: str
    merchant_token_generated: bool
    welcome_text: str
    default_reply: str
    poster_font: str | None
    # The mini-program's sessions: signed tokens, and the key that seals personal data at rest.
    session_secret: str
    session_days: int
    data_key: bytes  # AES-256-GCM key for session keys and phone numbers
    wechat_timeout_seconds: float
    push_dedup_seconds: int
    # Notifications: who hears of new orders, and the templates of each notification.
    merchant_admin_openids: tuple[str, ...]  # official-account openids of the merchant's admins
    notify_templates: Mapping[str, Mapping[str, "NotifyTemplate"]]  # kind -> channel -> template
    max_push_bytes: int = 1024 * 1024
    # Posters: drawing processes, and where H5 share links point and the key that signs them.
    poster_workers: int = 1
    public_base_url: str | None = None  # None: no H5 share links (outside demo mode, until set)
    share_link_secret: str | None = None  # None: no H5 share links; generated in demo mode


# --- Notifications: templates and merchant admins ---------------------------------------------
#
# NOTIFY_TEMPLATES is a JSON object, kind -> channel -> {"template_id": ..., "fields": {data key: template
# keyword}}, merged over the defaults per kind and channel; a channel set to null is turned off.
# Channels: "miniapp" (mini-program subscription message, sent only against an unused consent),
# "bizsend" (official-account subscription notification), "template" (official-account template
# message). Promoters get the first of miniapp, bizsend, template that can reach them; admins get
# "template". Outside demo mode there are no defaults: only configured templates are sent.
# MERCHANT_ADMIN_OPENIDS: comma-separated official-account openids told of every new paid order.

NOTIFY_CHANNELS = ("miniapp", "bizsend", "template")


@dataclass(frozen=True)
class NotifyTemplate:
    template_id: str
    fields: tuple[tuple[str, str], ...]  # (data key, the template's keyword), in order

    def render(self, data: Mapping[str, str]) -> dict[str, str]:
        """The template's keywords filled from `data`; with no fields configured, the data keys are the keywords."""
        if not self.fields:
            return {key: str(value) for key, value in data.items()}
        return {keyword: str(data.get(key, "")) for key, keyword in self.fields}


_COMMISSION_FIELDS = (("amount", "amount1"), ("order_no", "character_string2"), ("time", "time3"))
_ADMIN_ORDER_FIELDS = (("order_no", "keyword1"), ("amount", "keyword2"), ("items", "keyword3"), ("time", "keyword4"))
_WITHDRAWAL_FIELDS = (("amount", "amount1"), ("status", "phrase2"), ("time", "time3"), ("note", "thing4"))
_NEW_MEMBER_FIELDS = (("member", "thing1"), ("team", "number2"), ("time", "time3"))
_APPLICATION_FIELDS = (("result", "phrase1"), ("note", "thing2"), ("time", "time3"))
SANDBOX_NOTIFY_TEMPLATES: dict[str, dict[str, NotifyTemplate]] = {
    "commission_arrived": {
        "miniapp": NotifyTemplate("sandbox_mp_commission_arrived", _COMMISSION_FIELDS),
        "bizsend": NotifyTemplate("sandbox_oa_commission_arrived", _COMMISSION_FIELDS),
        "template": NotifyTemplate("sandbox_tpl_commission_arrived", _COMMISSION_FIELDS),
    },
    "commission_settled": {
        "miniapp": NotifyTemplate("sandbox_mp_commission_settled", _COMMISSION_FIELDS),
        "bizsend": NotifyTemplate("sandbox_oa_commission_settled", _COMMISSION_FIELDS),
        "template": NotifyTemplate("sandbox_tpl_commission_settled", _COMMISSION_FIELDS),
    },
    "new_order_admin": {"template": NotifyTemplate("sandbox_tpl_new_order", _ADMIN_ORDER_FIELDS)},
    **{kind: {"miniapp": NotifyTemplate(f"sandbox_mp_{kind}", _WITHDRAWAL_FIELDS),
              "template": NotifyTemplate(f"sandbox_tpl_{kind}", _WITHDRAWAL_FIELDS)}
       for kind in ("withdrawal_paid", "withdrawal_rejected", "withdrawal_returned")},
    "withdrawal_requested_admin": {"template": NotifyTemplate("sandbox_tpl_withdrawal_request", _WITHDRAWAL_FIELDS)},
    "application_decided": {"template": NotifyTemplate("sandbox_tpl_application_decided", _APPLICATION_FIELDS)},
    "new_direct_member": {"template": NotifyTemplate("sandbox_tpl_new_direct_member", _NEW_MEMBER_FIELDS)},
}


def _openids(raw: str | None, name: str) -> tuple[str, ...]:
    openids = tuple(each.strip() for each in (raw or "").split(",") if each.strip())
    for openid in openids:
        if len(openid) > 64 or not all(c.isalnum() or c in "-_" for c in openid):
            raise SettingsError(name, f"{openid!r} is not an openid (letters, digits, - and _)")
    return openids


def _notify_templates(raw: str | None, name: str, demo: bool) -> dict[str, dict[str, NotifyTemplate]]:
    templates = {kind: dict(channels) for kind, channels in SANDBOX_NOTIFY_TEMPLATES.items()} if demo else {}
    if raw is None:
        return templates
    try:
        configured = json.loads(raw)
    except ValueError as error:
        raise SettingsError(name, f"is not valid JSON: {error}") from None
    if not isinstance(configured, dict):
        raise SettingsError(name, "must be a JSON object: kind -> channel -> template")
    for kind, channels in configured.items():
        if not isinstance(channels, dict):
            raise SettingsError(name, f"{kind}: must be an object: channel -> template")
        for channel, template in channels.items():
            where = f"{kind}.{channel}"
            if channel not in NOTIFY_CHANNELS:
                raise SettingsError(name, f"{where}: channel must be one of {', '.join(NOTIFY_CHANNELS)}")
            if template is None:
                templates.get(kind, {}).pop(channel, None)
                continue
            if not isinstance(template, dict) or not isinstance(template.get("template_id"), str) \
                    or not template["template_id"].strip():
                raise SettingsError(name, f"{where}: needs a non-empty template_id")
            fields = template.get("fields", {})
            if not isinstance(fields, dict) or not all(isinstance(k, str) and isinstance(v, str) and k and v
                                                       for k, v in fields.items()):
                raise SettingsError(name, f"{where}.fields: must map data keys to template keywords (strings)")
            templates.setdefault(kind, {})[channel] = NotifyTemplate(template["template_id"].strip(),
                                                                     tuple(fields.items()))
    return templates


# --- Posters and H5 share links ---------------------------------------------------------------
#
# POSTER_WORKERS: processes that draw posters (default: one per CPU). PUBLIC_BASE_URL: the public
# http(s) address of this server, where H5 share links point (demo: http://127.0.0.1:PORT).
# SHARE_LINK_SECRET: the HMAC key that signs share links, 16+ characters (generated in demo mode, so
# links stop verifying after a restart). Without both, posters carrying H5 links are unavailable.

MAX_POSTER_WORKERS = 64


def _poster_settings(get: Callable[[str], str | None], demo: bool) -> dict[str, Any]:
    workers = _positive_int(get("POSTER_WORKERS") or str(os.cpu_count() or 1), "POSTER_WORKERS")
    if workers > MAX_POSTER_WORKERS:
        raise SettingsError("POSTER_WORKERS", f"must be at most {MAX_POSTER_WORKERS}, got {workers}")
    base_url = _url(get("PUBLIC_BASE_URL"), "PUBLIC_BASE_URL", ("http", "https"))
    if base_url is None and demo:
        base_url = f"http://127.0.0.1:{_port(get('PORT') or '8000')}"
    secret = get("SHARE_LINK_SECRET")
    if secret is None and demo:
        secret = secrets.token_urlsafe(32)
    elif secret is not None and len(secret) < 16:
        raise SettingsError("SHARE_LINK_SECRET", "must be at least 16 characters")
    return {"poster_workers": workers, "public_base_url": base_url, "share_link_secret": secret}


def load_settings(environ: Mapping[str, str] | None = None, env_file: str | Path | None = ".env") -> Settings:
    """Read and check every setting. `environ` wins over the `.env` file."""
    values: dict[str, str] = {}
    if env_file is not None and Path(env_file).is_file():
        from dotenv import dotenv_values

        values.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    values.update(os.environ if environ is None else environ)
    return _parse(values)


def _parse(env: Mapping[str, str]) -> Settings:
    def get(name: str) -> str | None:
        value = env.get(name, "").strip()
        return value or None

    demo = get("WECHAT_APP_ID") is None

    def required(name: str, demo_value: str) -> str:
        value = get(name)
        if value is not None:
            return value
        if demo:
            return demo_value
        raise SettingsError(name, "is required when WECHAT_APP_ID is set (outside demo mode)")

    merchant_token = get("MERCHANT_API_TOKEN")
    generated = False
    if merchant_token is None:
        if not demo:
            raise SettingsError("MERCHANT_API_TOKEN", "is required outside demo mode")
        merchant_token, generated = secrets.token_urlsafe(24), True
    elif len(merchant_token) < 16:
        raise SettingsError("MERCHANT_API_TOKEN", "must be at least 16 characters")

    return Settings(
        demo=demo,
        port=_port(get("PORT") or "8000"),
        mongodb_uri=_url(get("MONGODB_URI"), "MONGODB_URI", ("mongodb", "mongodb+srv")),
        mongodb_db=_name(get("MONGODB_DB") or "distribution", "MONGODB_DB"),
        redis_url=_url(get("REDIS_URL"), "REDIS_URL", ("redis", "rediss", "unix")),
        redis_prefix=get("REDIS_PREFIX") or "dist:",
        var_dir=Path(get("VAR_DIR") or "var"),
        wechat_app_id=get("WECHAT_APP_ID") or SANDBOX_OA_APP_ID,
        wechat_app_secret=required("WECHAT_APP_SECRET", SANDBOX_OA_APP_SECRET),
        wechat_token=_wechat_token(required("WECHAT_TOKEN", SANDBOX_WECHAT_TOKEN)),
        wechat_aes_key=_aes_key(get("WECHAT_AES_KEY")),
        miniapp_app_id=get("MINIAPP_APP_ID") or SANDBOX_MINIAPP_APP_ID,
        miniapp_app_secret=get("MINIAPP_APP_SECRET") or SANDBOX_MINIAPP_APP_SECRET,
        wechat_api_base=_url(get("WECHAT_API_BASE"), "WECHAT_API_BASE", ("http", "https"))
        or (None if demo else WECHAT_API),
        wechat_pay_api_base=_url(get("WECHAT_PAY_API_BASE"), "WECHAT_PAY_API_BASE", ("http", "https"))
        or (None if demo else WECHAT_PAY_API),
        wechat_open_base=_url(get("WECHAT_OPEN_BASE"), "WECHAT_OPEN_BASE", ("http", "https"))
        or (None if demo else WECHAT_OPEN),
        merchant_api_token=merchant_token,
        merchant_token_generated=generated,
        welcome_text=get("WELCOME_TEXT") or "欢迎关注！发送“海报”获取你的专属推广海报。",
        default_reply=get("DEFAULT_REPLY") or "收到。发送“海报”获取你的专属推广海报。",
        poster_font=get("POSTER_FONT"),
        session_secret=required("SESSION_SECRET", DEMO_SESSION_SECRET),
        session_days=_positive_int(get("SESSION_DAYS") or "7", "SESSION_DAYS"),
        data_key=_data_key(required("DATA_KEY", DEMO_DATA_KEY)),
        wechat_timeout_seconds=_positive_float(get("WECHAT_TIMEOUT_SECONDS") or "5", "WECHAT_TIMEOUT_SECONDS"),
        push_dedup_seconds=_positive_int(get("PUSH_DEDUP_SECONDS") or "300", "PUSH_DEDUP_SECONDS", minimum=60),
        merchant_admin_openids=_openids(get("MERCHANT_ADMIN_OPENIDS"), "MERCHANT_ADMIN_OPENIDS"),
        notify_templates=_notify_templates(get("NOTIFY_TEMPLATES"), "NOTIFY_TEMPLATES", demo),
        **_poster_settings(get, demo),
    )


def _port(raw: str) -> int:
    port = _positive_int(raw, "PORT")
    if port > 65535:
        raise SettingsError("PORT", f"{raw!r} is not a TCP port (1-65535)")
    return port


def _positive_int(raw: str, name: str, minimum: int = 1) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(name, f"{raw!r} is not a whole number") from None
    if value < minimum:
        raise SettingsError(name, f"must be at least {minimum}, got {value}")
    return value


def _positive_float(raw: str, name: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(name, f"{raw!r} is not a number") from None
    if not value > 0:
        raise SettingsError(name, f"must be positive, got {raw}")
    return value


def _url(raw: str | None, name: str, schemes: tuple[str, ...]) -> str | None:
    if raw is None:
        return None
    parsed = urlparse(raw)
    if parsed.scheme not in schemes or not (parsed.netloc or parsed.path):
        raise SettingsError(name, f"{raw!r} is not a {' or '.join(s + '://' for s in schemes)} URL")
    return raw.rstrip("/") if parsed.scheme in ("http", "https") else raw


def _name(raw: str, name: str) -> str:
    if any(c in raw for c in '/\\. "$') or len(raw) > 63:
        raise SettingsError(name, f"{raw!r} is not a valid database name")
    return raw


def _wechat_token(raw: str) -> str:
    if not (3 <= len(raw) <= 32 and raw.isalnum()):
        raise SettingsError("WECHAT_TOKEN", "must be 3-32 letters or digits, as WeChat requires")
    return raw


def _data_key(raw: str) -> bytes:
    try:
        key = base64.b64decode(raw, validate=True)
    except binascii.Error:
        key = b""
    if len(key) != 32:
        raise SettingsError("DATA_KEY", "must be 32 random bytes in base64 (e.g. `openssl rand -base64 32`)")
    return key


def _aes_key(raw: str | None) -> str | None:
    if raw is None:
        return None
    try:
        ok = len(raw) == 43 and len(base64.b64decode(raw + "=", validate=True)) == 32
    except binascii.Error:
        ok = False
    if not ok:
        raise SettingsError("WECHAT_AES_KEY", "must be the 43-character EncodingAESKey from the WeChat console")
    return raw
