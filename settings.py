"""Every setting, read once from the environment (and an optional `.env`).

A bad or missing value stops the start with a `SettingsError` that names the
variable. Demo mode is "no official account configured": the sandbox's app
ids and secrets are used, the sandbox WeChat is started beside the server and
a merchant token is generated.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping
from urllib.parse import urlparse

WECHAT_API = "https://api.weixin.qq.com"

SANDBOX_OA_APP_ID = "wxsandbox0fficial"
SANDBOX_OA_APP_SECRET = "sandbox-oa-secret"
SANDBOX_MINIAPP_APP_ID = "wxsandboxminiapp0"
SANDBOX_MINIAPP_APP_SECRET = "sandbox-miniapp-secret"
SANDBOX_WECHAT_TOKEN = "sandboxtoken"


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
    merchant_api_token: str
    merchant_token_generated: bool
    welcome_text: str
    default_reply: str
    poster_font: str | None
    wechat_timeout_seconds: float
    push_dedup_seconds: int
    new_member_template_id: str | None  # None: uplines are not told of new direct members
    max_push_bytes: int = 1024 * 1024


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
        merchant_api_token=merchant_token,
        merchant_token_generated=generated,
        welcome_text=get("WELCOME_TEXT") or "欢迎关注！发送“海报”获取你的专属推广海报。",
        default_reply=get("DEFAULT_REPLY") or "收到。发送“海报”获取你的专属推广海报。",
        poster_font=get("POSTER_FONT"),
        wechat_timeout_seconds=_positive_float(get("WECHAT_TIMEOUT_SECONDS") or "5", "WECHAT_TIMEOUT_SECONDS"),
        push_dedup_seconds=_positive_int(get("PUSH_DEDUP_SECONDS") or "300", "PUSH_DEDUP_SECONDS", minimum=60),
        new_member_template_id=get("NOTIFY_NEW_MEMBER_TEMPLATE") or ("sandbox_new_member" if demo else None),
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
