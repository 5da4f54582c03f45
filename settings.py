"""Every setting, read once from the environment (and an optional `.env`).

A bad, weak or missing value stops the start with a `SettingsError` that names
the variable. Demo mode runs only when asked (`DEMO=1`) and only on local
stores: the sandbox's app ids and secrets are used, the sandbox WeChat is
started beside the server and a merchant token is generated. Outside it every
WeChat identity and secret is configured, strong enough, and nothing falls
back to a sandbox value.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import os
import secrets
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Any, Callable, Mapping
from urllib.parse import urlparse

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey

WECHAT_API = "https://api.weixin.qq.com"
WECHAT_PAY_API = "https://api.mch.weixin.qq.com"
WECHAT_OPEN = "https://open.weixin.qq.com"  # where WeChat's web authorization (网页授权) page lives
WECHAT_AVATAR_HOSTS = ("thirdwx.qlogo.cn", "wx.qlogo.cn", "mmbiz.qpic.cn")  # where WeChat serves avatars

# Public, and as long as real ones, so that tests can configure production mode with them.
SANDBOX_OA_APP_ID = "wxsandbox0fficial"
SANDBOX_OA_APP_SECRET = "sandbox-oa-secret-not-for-production"
SANDBOX_MINIAPP_APP_ID = "wxsandboxminiapp0"
SANDBOX_MINIAPP_APP_SECRET = "sandbox-miniapp-secret-not-for-production"
SANDBOX_WECHAT_TOKEN = "sandboxtokennotforproduction"
# Demo mode only, and fixed so that data sealed by one demo run opens in the next.
DEMO_SESSION_SECRET = "demo-session-secret-not-for-production"
DEMO_DATA_KEY = base64.b64encode(b"demo-data-key-not-for-production").decode()

# Minimum strength of a secret: this many characters, and at least a quarter as many different ones.
MIN_SECRET_CHARACTERS = 32  # the secrets this deployment makes up: merchant token, session and share-link keys
WECHAT_APP_SECRET_CHARACTERS = 32  # an AppSecret from WeChat's console is 32 hex digits
MIN_WECHAT_TOKEN_CHARACTERS = 16  # WeChat allows 3-32 letters or digits; a short one is guessed from a signature


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
    wechat_accept_plaintext: bool  # with an AES key: still accept plaintext pushes (a migration's compatible mode)
    miniapp_app_id: str
    miniapp_app_secret: str
    wechat_api_base: str | None  # None in demo mode: the embedded sandbox's URL, known once it listens
    wechat_pay_api_base: str | None  # None in demo mode: the sandbox's too
    wechat_pay: WeChatPaySettings | None  # None: the sandbox's merchant in demo mode; else no WeChat-balance payouts
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
    # How long one MongoDB or Redis call waits to connect, find its server or get an answer (a transaction,
    # its retries included): past it the request answers 503 instead of hanging on a store that is down.
    store_timeout_seconds: float
    push_dedup_seconds: int
    # Notifications: who hears of new orders, and the templates of each notification.
    merchant_admin_openids: tuple[str, ...]  # official-account openids of the merchant's admins
    notify_templates: Mapping[str, Mapping[str, "NotifyTemplate"]]  # kind -> channel -> template
    max_push_bytes: int = 1024 * 1024
    # The console's staff sessions: signed out after this long without a request, and this long after signing in.
    admin_idle_minutes: int = 30
    admin_session_hours: int = 12
    # /healthz fails when no worker has written its heartbeat for this long (a working one does every 5 s).
    worker_stale_seconds: int = 60
    # Posters: drawing processes, and where H5 share links point and the key that signs them.
    poster_workers: int = 1
    public_base_url: str | None = None  # None: no H5 share links (outside demo mode, until set)
    share_link_secret: str | None = None  # None: no H5 share links; generated in demo mode
    avatar_hosts: tuple[str, ...] = WECHAT_AVATAR_HOSTS  # where avatars are fetched from: `host` or `host:port`
    # Peers whose X-Forwarded-For names the client (a load balancer in front); from others it is ignored.
    trusted_proxies: tuple[IPv4Network | IPv6Network, ...] = ()


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
_PROMOTION_FIELDS = (("role", "phrase1"), ("referrals", "number2"), ("time", "time3"))
_TAX_FIELDS = (("year", "character_string1"), ("amount", "amount2"), ("note", "thing3"))
_FRAUD_FIELDS = (("rule", "thing1"), ("member", "character_string2"), ("action", "phrase3"), ("time", "time4"))
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
    "promoted_to_boss": {"template": NotifyTemplate("sandbox_tpl_promoted_to_boss", _PROMOTION_FIELDS)},
    "tax_declare_reminder": {"template": NotifyTemplate("sandbox_tpl_tax_declare_reminder", _TAX_FIELDS)},
    "fraud_flag": {"template": NotifyTemplate("sandbox_tpl_fraud_flag", _FRAUD_FIELDS)},
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
# SHARE_LINK_SECRET: the HMAC key that signs share links, 32+ characters (generated in demo mode, so
# links stop verifying after a restart). Without both, posters carrying H5 links are unavailable.
# AVATAR_HOSTS: comma-separated hosts (`host`, or `host:port` for a port other than the scheme's) that
# members' avatar pictures are fetched from; by default those WeChat serves avatars from.

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
    elif secret is not None:
        _strong(secret, "SHARE_LINK_SECRET", MIN_SECRET_CHARACTERS)
    return {"poster_workers": workers, "public_base_url": base_url, "share_link_secret": secret,
            "avatar_hosts": _host_list(get("AVATAR_HOSTS"), "AVATAR_HOSTS") or WECHAT_AVATAR_HOSTS}


def _host_list(raw: str | None, name: str) -> tuple[str, ...]:
    hosts = tuple(each.strip().lower() for each in (raw or "").split(",") if each.strip())
    for host in hosts:
        parts = urlparse(f"//{host}")
        try:
            port_ok = parts.port is None or parts.port > 0
        except ValueError:
            port_ok = False
        if not (parts.hostname and port_ok) or parts.username or parts.password or parts.path or parts.query \
                or parts.fragment:
            raise SettingsError(name, f"{host!r} is not a host or host:port")
    return hosts


# TRUSTED_PROXIES: comma-separated addresses or networks (`10.0.0.5`, `10.0.0.0/8`, `::1`) of the proxies in
# front of the server. A request from one of them is counted against the rate limits of the client its
# X-Forwarded-For names; from any other peer that header is ignored (anybody can send it).


def _networks(raw: str | None, name: str) -> tuple[IPv4Network | IPv6Network, ...]:
    networks = []
    for each in (raw or "").split(","):
        if each.strip():
            try:
                networks.append(ip_network(each.strip(), strict=False))
            except ValueError:
                raise SettingsError(name, f"{each.strip()!r} is not an IP address or network") from None
    return tuple(networks)


# --- WeChat Pay: the merchant's keys, and the transfer scene of payouts ------------------------------
#
# WECHAT_PAY_MCH_ID, WECHAT_PAY_APIV3_KEY, WECHAT_PAY_PRIVATE_KEY_FILE (apiclient_key.pem) and
# WECHAT_PAY_CERT_SERIAL (that API certificate's serial) come together; with WECHAT_PAY_PUBLIC_KEY_FILE and
# WECHAT_PAY_PUBLIC_KEY_ID (PUB_KEY_ID_...) answers are verified with WeChat Pay's public key, without them with
# the platform certificates WeChat Pay serves. WECHAT_PAY_TRANSFER_SCENE_ID (default 1005, 佣金报酬) and
# WECHAT_PAY_TRANSFER_REPORT (JSON: info_type -> content; scene 1005 wants exactly 岗位类型 and 报酬说明).
# None of them: no WeChat-balance withdrawals outside demo mode, where the sandbox's merchant is used.

WECHAT_PAY_KEYS = ("WECHAT_PAY_MCH_ID", "WECHAT_PAY_APIV3_KEY", "WECHAT_PAY_PRIVATE_KEY_FILE", "WECHAT_PAY_CERT_SERIAL")
WECHAT_PAY_PUBLIC_KEY = ("WECHAT_PAY_PUBLIC_KEY_FILE", "WECHAT_PAY_PUBLIC_KEY_ID")
COMMISSION_SCENE = "1005"
COMMISSION_SCENE_REPORT = (("岗位类型", "推广员"), ("报酬说明", "推广佣金"))


@dataclass(frozen=True)
class WeChatPaySettings:
    mch_id: str
    apiv3_key: str
    private_key_pem: bytes
    cert_serial: str
    public_key_pem: bytes | None  # None (with its id): platform certificate mode
    public_key_id: str | None
    transfer_scene_id: str = COMMISSION_SCENE
    transfer_report: tuple[tuple[str, str], ...] = COMMISSION_SCENE_REPORT


def _wechat_pay(get: Callable[[str], str | None], demo: bool) -> WeChatPaySettings | None:
    given = [name for name in (*WECHAT_PAY_KEYS, *WECHAT_PAY_PUBLIC_KEY) if get(name) is not None]
    if not given:
        return None
    if demo:
        raise SettingsError(given[0], "is the sandbox's in demo mode (DEMO=1): unset it, or unset DEMO")
    for name in (*WECHAT_PAY_KEYS, *(WECHAT_PAY_PUBLIC_KEY if set(given) & set(WECHAT_PAY_PUBLIC_KEY) else ())):
        if get(name) is None:
            raise SettingsError(name, f"is required with {given[0]}")
    mch_id, apiv3_key, serial = get("WECHAT_PAY_MCH_ID") or "", get("WECHAT_PAY_APIV3_KEY") or "", \
        (get("WECHAT_PAY_CERT_SERIAL") or "").upper()
    if not mch_id.isdigit() or len(mch_id) > 32:
        raise SettingsError("WECHAT_PAY_MCH_ID", "is the merchant id (商户号): digits")
    if len(apiv3_key.encode()) != 32 or not apiv3_key.isascii():
        raise SettingsError("WECHAT_PAY_APIV3_KEY", "is the 32-character APIv3 key set in the merchant platform")
    if not (8 <= len(serial) <= 64 and all(c in "0123456789ABCDEF" for c in serial)):
        raise SettingsError("WECHAT_PAY_CERT_SERIAL", "is the API certificate's serial number (hex)")
    private_pem = _key_file(get, "WECHAT_PAY_PRIVATE_KEY_FILE", private=True)
    public_pem = _key_file(get, "WECHAT_PAY_PUBLIC_KEY_FILE", private=False) if get("WECHAT_PAY_PUBLIC_KEY_FILE") \
        else None
    public_key_id = get("WECHAT_PAY_PUBLIC_KEY_ID")
    if public_key_id is not None and not public_key_id.startswith("PUB_KEY_ID_"):
        raise SettingsError("WECHAT_PAY_PUBLIC_KEY_ID", "is WeChat Pay's public key id: PUB_KEY_ID_...")
    if get("PUBLIC_BASE_URL") is None:
        raise SettingsError("PUBLIC_BASE_URL", f"is required with {given[0]}: WeChat Pay's callbacks come to it")
    scene = get("WECHAT_PAY_TRANSFER_SCENE_ID") or COMMISSION_SCENE
    if not scene.isdigit():
        raise SettingsError("WECHAT_PAY_TRANSFER_SCENE_ID", "is a transfer scene id (转账场景ID): digits")
    return WeChatPaySettings(mch_id, apiv3_key, private_pem, serial, public_pem, public_key_id, scene,
                             _transfer_report(get("WECHAT_PAY_TRANSFER_REPORT"), scene))


def _key_file(get: Callable[[str], str | None], name: str, private: bool) -> bytes:
    """The PEM in the file `name` points at, once it reads as the key it should be."""
    try:
        pem = Path(get(name) or "").read_bytes()
    except OSError as error:
        raise SettingsError(name, f"cannot be read: {error.strerror}") from None
    try:
        if private:
            ok = isinstance(serialization.load_pem_private_key(pem, password=None), RSAPrivateKey)
        elif b"CERTIFICATE" in pem:
            ok = isinstance(x509.load_pem_x509_certificate(pem).public_key(), RSAPublicKey)
        else:
            ok = isinstance(serialization.load_pem_public_key(pem), RSAPublicKey)
    except (ValueError, TypeError):
        ok = False
    if not ok:
        raise SettingsError(name, "is not an unencrypted PEM RSA private key" if private else
                            "is not a PEM RSA public key (pub_key.pem)")
    return pem


def _transfer_report(raw: str | None, scene: str) -> tuple[tuple[str, str], ...]:
    name = "WECHAT_PAY_TRANSFER_REPORT"
    if raw is None:
        if scene != COMMISSION_SCENE:
            raise SettingsError(name, f"is required for transfer scene {scene}")
        return COMMISSION_SCENE_REPORT
    try:
        report = json.loads(raw)
    except ValueError as error:
        raise SettingsError(name, f"is not valid JSON: {error}") from None
    if not isinstance(report, dict) or not report or not all(
            isinstance(k, str) and isinstance(v, str) and k and v for k, v in report.items()):
        raise SettingsError(name, "must be a JSON object: info_type -> content (strings)")
    if scene == COMMISSION_SCENE and set(report) != {kind for kind, _ in COMMISSION_SCENE_REPORT}:
        raise SettingsError(name, "scene 1005 wants exactly 岗位类型 and 报酬说明")
    return tuple(report.items())


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

    demo = _flag(get("DEMO"), "DEMO")
    if demo:
        _refuse_external_stores(get)

    def wechat_identity(name: str, sandbox_value: str) -> str:
        value = get(name)
        if demo:
            if value is not None:
                raise SettingsError(name, "is the sandbox's in demo mode (DEMO=1): unset it, or unset DEMO")
            return sandbox_value
        if value is None:
            raise SettingsError(name, "is required outside demo mode (DEMO=1 runs the demo on the sandbox WeChat)")
        return value

    def secret(name: str, demo_value: str) -> str:
        value = get(name)
        if value is None:
            if demo:
                return demo_value
            raise SettingsError(name, "is required outside demo mode")
        if not demo and value == demo_value:
            raise SettingsError(name, "is the demo's published value: generate one of your own")
        return value

    wechat_app_id = wechat_identity("WECHAT_APP_ID", SANDBOX_OA_APP_ID)
    merchant_token = get("MERCHANT_API_TOKEN")
    generated = False
    if merchant_token is None:
        if not demo:
            raise SettingsError("MERCHANT_API_TOKEN", "is required outside demo mode")
        merchant_token, generated = secrets.token_urlsafe(24), True  # 32 characters
    else:
        _strong(merchant_token, "MERCHANT_API_TOKEN", MIN_SECRET_CHARACTERS)

    return Settings(
        demo=demo,
        port=_port(get("PORT") or "8000"),
        mongodb_uri=_url(get("MONGODB_URI"), "MONGODB_URI", ("mongodb", "mongodb+srv")),
        mongodb_db=_name(get("MONGODB_DB") or "distribution", "MONGODB_DB"),
        redis_url=_url(get("REDIS_URL"), "REDIS_URL", ("redis", "rediss", "unix")),
        redis_prefix=get("REDIS_PREFIX") or "dist:",
        var_dir=Path(get("VAR_DIR") or "var"),
        wechat_app_id=wechat_app_id,
        wechat_app_secret=_strong(wechat_identity("WECHAT_APP_SECRET", SANDBOX_OA_APP_SECRET), "WECHAT_APP_SECRET",
                                  WECHAT_APP_SECRET_CHARACTERS),
        wechat_token=_wechat_token(wechat_identity("WECHAT_TOKEN", SANDBOX_WECHAT_TOKEN)),
        wechat_aes_key=_aes_key(get("WECHAT_AES_KEY")),
        wechat_accept_plaintext=_flag(get("WECHAT_ACCEPT_PLAINTEXT"), "WECHAT_ACCEPT_PLAINTEXT"),
        miniapp_app_id=wechat_identity("MINIAPP_APP_ID", SANDBOX_MINIAPP_APP_ID),
        miniapp_app_secret=_strong(wechat_identity("MINIAPP_APP_SECRET", SANDBOX_MINIAPP_APP_SECRET),
                                   "MINIAPP_APP_SECRET", WECHAT_APP_SECRET_CHARACTERS),
        wechat_api_base=_url(get("WECHAT_API_BASE"), "WECHAT_API_BASE", ("http", "https"))
        or (None if demo else WECHAT_API),
        wechat_pay_api_base=_url(get("WECHAT_PAY_API_BASE"), "WECHAT_PAY_API_BASE", ("http", "https"))
        or (None if demo else WECHAT_PAY_API),
        wechat_pay=_wechat_pay(get, demo),
        wechat_open_base=_url(get("WECHAT_OPEN_BASE"), "WECHAT_OPEN_BASE", ("http", "https"))
        or (None if demo else WECHAT_OPEN),
        merchant_api_token=merchant_token,
        merchant_token_generated=generated,
        welcome_text=get("WELCOME_TEXT") or "欢迎关注！发送“海报”获取你的专属推广海报。",
        default_reply=get("DEFAULT_REPLY") or "收到。发送“海报”获取你的专属推广海报。",
        poster_font=get("POSTER_FONT"),
        session_secret=_strong(secret("SESSION_SECRET", DEMO_SESSION_SECRET), "SESSION_SECRET", MIN_SECRET_CHARACTERS),
        session_days=_positive_int(get("SESSION_DAYS") or "7", "SESSION_DAYS"),
        data_key=_data_key(secret("DATA_KEY", DEMO_DATA_KEY)),
        wechat_timeout_seconds=_positive_float(get("WECHAT_TIMEOUT_SECONDS") or "5", "WECHAT_TIMEOUT_SECONDS"),
        store_timeout_seconds=_store_timeout(get("STORE_TIMEOUT_SECONDS") or "5"),
        push_dedup_seconds=_positive_int(get("PUSH_DEDUP_SECONDS") or "300", "PUSH_DEDUP_SECONDS", minimum=60),
        admin_idle_minutes=_positive_int(get("ADMIN_IDLE_MINUTES") or "30", "ADMIN_IDLE_MINUTES"),
        admin_session_hours=_positive_int(get("ADMIN_SESSION_HOURS") or "12", "ADMIN_SESSION_HOURS"),
        worker_stale_seconds=_positive_int(get("WORKER_STALE_SECONDS") or "60", "WORKER_STALE_SECONDS", minimum=15),
        merchant_admin_openids=_openids(get("MERCHANT_ADMIN_OPENIDS"), "MERCHANT_ADMIN_OPENIDS"),
        notify_templates=_notify_templates(get("NOTIFY_TEMPLATES"), "NOTIFY_TEMPLATES", demo),
        trusted_proxies=_networks(get("TRUSTED_PROXIES"), "TRUSTED_PROXIES"),
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


# The worker's read of the job queue blocks Redis for up to a second: a shorter answer limit would cut it off.
MIN_STORE_TIMEOUT_SECONDS = 2.0


def _store_timeout(raw: str) -> float:
    seconds = _positive_float(raw, "STORE_TIMEOUT_SECONDS")
    if seconds < MIN_STORE_TIMEOUT_SECONDS:
        raise SettingsError("STORE_TIMEOUT_SECONDS", f"must be at least {MIN_STORE_TIMEOUT_SECONDS:g}, got {raw}")
    return seconds


def _url(raw: str | None, name: str, schemes: tuple[str, ...]) -> str | None:
    if raw is None:
        return None
    parsed = urlparse(raw)
    if parsed.scheme not in schemes or not (parsed.netloc or parsed.path):
        # Not quoted: a malformed URL may still carry a password.
        raise SettingsError(name, f"is not a {' or '.join(s + '://' for s in schemes)} URL")
    return raw.rstrip("/") if parsed.scheme in ("http", "https") else raw


def _name(raw: str, name: str) -> str:
    if any(c in raw for c in '/\\. "$') or len(raw) > 63:
        raise SettingsError(name, f"{raw!r} is not a valid database name")
    return raw


def _wechat_token(raw: str) -> str:
    if not (len(raw) <= 32 and raw.isascii() and raw.isalnum()):
        raise SettingsError("WECHAT_TOKEN", "must be letters or digits, at most 32, as WeChat requires")
    return _strong(raw, "WECHAT_TOKEN", MIN_WECHAT_TOKEN_CHARACTERS)


def _data_key(raw: str) -> bytes:
    try:
        key = base64.b64decode(raw, validate=True)
    except binascii.Error:
        key = b""
    if len(key) != 32 or len(set(key)) < len(key) // 4:
        raise SettingsError("DATA_KEY", "must be 32 random bytes in base64 (e.g. `openssl rand -base64 32`)")
    return key


def _strong(raw: str, name: str, minimum: int) -> str:
    """`raw`, if it is at least `minimum` characters long and not a few characters repeated; the message never
    quotes the value, which is a secret."""
    if len(raw) < minimum:
        raise SettingsError(name, f"must be at least {minimum} characters")
    if len(set(raw)) < minimum // 4:
        raise SettingsError(name, f"must have at least {minimum // 4} different characters: use a random value")
    return raw


def _refuse_external_stores(get: Callable[[str], str | None]) -> None:
    """The demo's data is not real: it runs on its embedded stores or on servers of this machine, never on a
    deployment's. Local means every host the URL names is loopback (`localhost`, 127.0.0.0/8, `::1`) or a
    unix socket."""
    for name, schemes in (("MONGODB_URI", ("mongodb", "mongodb+srv")), ("REDIS_URL", ("redis", "rediss", "unix"))):
        url = _url(get(name), name, schemes)
        if url is None:
            continue
        parsed = urlparse(url)
        if parsed.scheme == "mongodb+srv":
            raise SettingsError(name, "DEMO=1 runs on local stores only, and a mongodb+srv:// seed list is not")
        if parsed.scheme == "unix":
            continue
        for host in _hosts(parsed.netloc):
            if not _loopback(host):
                raise SettingsError(name, f"DEMO=1 runs on local stores only, and {host} is not loopback "
                                          "(localhost, 127.0.0.0/8, ::1); unset DEMO to use it")


def _hosts(netloc: str) -> list[str]:
    """The hosts of a URL's authority, without user, password or port; a MongoDB URI may list several."""
    hosts = []
    for address in netloc.rpartition("@")[2].split(","):
        if address.startswith("["):
            hosts.append(address[1:].partition("]")[0])
        else:
            hosts.append(address.partition(":")[0])
    return hosts


def _loopback(host: str) -> bool:
    """No host is the driver's default, localhost; a percent-encoded path is a unix socket."""
    if host.lower() in ("", "localhost") or host.lower().startswith("%2f"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _flag(raw: str | None, name: str) -> bool:
    if raw is None or raw.lower() in ("0", "false", "no"):
        return False
    if raw.lower() in ("1", "true", "yes"):
        return True
    raise SettingsError(name, f"{raw!r} is not 1 or 0")


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
