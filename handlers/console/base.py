"""What every console page shares: the staff session, permissions, CSRF, forms, pages and the audit log."""

from __future__ import annotations

import hmac
import secrets
from datetime import datetime
from pathlib import Path
from typing import Any, Awaitable, Callable
from urllib.parse import quote

import tornado.httputil
import tornado.web

from distribution.calendar import CHINA
from distribution.chat import level_words
from distribution.errors import DomainError, Forbidden
from distribution.money import yuan_digits
from distribution.staff import Permission, can
from services.audit import Actor
from services.staff import StaffSession
from web.base import ApiError, BaseHandler, error_detail, error_status

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"
SESSION_COOKIE = "admin_session"
LOGIN_CSRF_COOKIE = "admin_login_csrf"
CSRF_FIELD = "_csrf"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LOGIN_PATH = "/admin/login"

# The navigation, in order: (path, label, permission needed to see it).
NAVIGATION: list[tuple[str, str, Permission]] = [
    ("/admin", "概况", Permission.VIEW),
    ("/admin/promoters", "推广员", Permission.VIEW),
    ("/admin/products", "商品", Permission.VIEW),
    ("/admin/orders", "订单", Permission.VIEW),
    ("/admin/commissions", "佣金", Permission.VIEW),
    ("/admin/withdrawals", "提现", Permission.MONEY),
    ("/admin/statements", "结算单", Permission.MONEY),
    ("/admin/risk", "风控", Permission.MONEY),
    ("/admin/finance", "对账", Permission.LEDGER),
    ("/admin/tax", "税务", Permission.LEDGER),
    ("/admin/applications", "申请", Permission.APPLICATIONS),
    ("/admin/posters", "海报", Permission.POSTERS),
    ("/admin/settings", "设置", Permission.SETTINGS),
    ("/admin/privacy", "协议与注销", Permission.SETTINGS),
    ("/admin/exports", "导出", Permission.EXPORTS),
    ("/admin/audit", "审计日志", Permission.AUDIT),
]

# Security headers of every console answer: no framing, no inline or foreign scripts.
_HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
                               "script-src 'self'; object-src 'none'; frame-ancestors 'none'; form-action 'self'",
}

# What the console says, in Chinese, for the error codes staff meet most.
_MESSAGES = {
    "unauthorized": "请先登录",
    "forbidden_role": "你的角色无权进行此操作",
    "csrf": "页面已过期，请刷新后重试",
    "login_failed": "用户名或密码错误",
    "locked": "登录失败次数过多，已锁定 15 分钟",
    "not_found": "找不到该页面或记录",
    "unavailable": "服务暂时不可用，请稍后重试",
}


def yuan(fen: int | None) -> str:
    """Fen as yuan for people: 123456 -> "¥1,234.56"."""
    digits = yuan_digits(int(fen or 0), grouped=True)
    return f"-¥{digits[1:]}" if digits.startswith("-") else f"¥{digits}"


def china_time(at: datetime | None) -> str:
    return at.astimezone(CHINA).strftime("%Y-%m-%d %H:%M") if at else ""


class ConsoleHandler(BaseHandler):
    """A console page or action. `permission` is what its GET needs; `action_permission` what its POST and
    other state-changing methods need (the same when None). Signed-out visitors of a page are sent to the
    sign-in page; signed-out requests that change something get 401."""

    permission: Permission = Permission.VIEW
    action_permission: Permission | None = None
    staff: StaffSession | None = None

    def get_template_path(self) -> str:
        return str(TEMPLATES)

    def set_default_headers(self) -> None:
        for name, value in _HEADERS.items():
            self.set_header(name, value)

    async def prepare(self) -> None:
        super().prepare()
        token = self.get_cookie(SESSION_COOKIE)
        self.staff = await self.runtime.staff.session(token) if token else None
        safe = self.request.method in SAFE_METHODS
        if self.staff is None:
            if safe:
                self.redirect(f"{LOGIN_PATH}?next={quote(self.request.uri or '/admin', safe='')}")
                return
            raise ApiError(401, "unauthorized", "sign in to the console first")
        needed = self.permission if safe else (self.action_permission or self.permission)
        if not can(self.staff.role, needed):
            raise Forbidden(f"the {self.staff.role} role may not do this ({needed})", code="forbidden_role")
        if not safe:
            self._check_csrf_before_method()

    def _check_csrf_before_method(self) -> None:
        """The token arrives in a header (scripts) or in the form, which is read only after `prepare`: the
        check runs once the body is in, before the handler's own method."""
        name = self.request.method.lower()
        method: Callable[..., Awaitable[Any]] = getattr(self, name)

        async def checked(*args: Any, **kwargs: Any) -> Any:
            given = self.request.headers.get(CSRF_HEADER) or self.form().get(CSRF_FIELD, "")
            if not hmac.compare_digest(given.encode(), self.staff.csrf_token.encode()):
                raise ApiError(403, "csrf", "the request's CSRF token is missing or wrong", field=CSRF_FIELD)
            return await method(*args, **kwargs)

        setattr(self, name, checked)

    # --- requests ------------------------------------------------------------------------------

    def form(self) -> dict[str, str]:
        """The urlencoded or multipart form's fields, each its last value."""
        fields, _ = self._parsed_form()
        return fields

    def form_files(self) -> dict[str, list[tornado.httputil.HTTPFile]]:
        _, files = self._parsed_form()
        return files

    def _parsed_form(self) -> tuple[dict[str, str], dict[str, list[tornado.httputil.HTTPFile]]]:
        if not hasattr(self, "_form"):
            arguments: dict[str, list[bytes]] = {}
            files: dict[str, list[tornado.httputil.HTTPFile]] = {}
            tornado.httputil.parse_body_arguments(self.request.headers.get("Content-Type", ""), self.received_body,
                                                  arguments, files, self.request.headers)
            fields = {name: values[-1].decode("utf-8", "replace") for name, values in arguments.items()}
            self._form = (fields, files)
        return self._form

    @property
    def actor(self) -> Actor:
        return Actor(kind="staff", name=self.staff.username, ip=self.client_ip, role=self.staff.role)

    # --- answers -------------------------------------------------------------------------------

    def render_page(self, template: str, status: int = 200, **namespace: Any) -> None:
        self.set_status(status)
        self.render(template, **namespace)

    def get_template_namespace(self) -> dict[str, Any]:
        namespace = super().get_template_namespace()
        staff = self.staff
        namespace.update(
            staff=staff,
            csrf_field=CSRF_FIELD,
            csrf_token=staff.csrf_token if staff else "",
            navigation=[(path, label) for path, label, needed in NAVIGATION if staff and can(staff.role, needed)],
            can=lambda permission: bool(staff and can(staff.role, Permission(permission))),
            yuan=yuan,
            china_time=china_time,
            level_words=level_words,
            errors={},
            values={},
            notice=None,
        )
        return namespace

    def wants_html(self) -> bool:
        return "text/html" in self.request.headers.get("Accept", "")

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        if not self.wants_html():
            super().write_error(status_code, **kwargs)
            return
        error = kwargs.get("exc_info", (None, None, None))[1]
        code, message = "error", self._reason
        if isinstance(error, ApiError):
            code, message = error.code, error.message
        elif error is not None and (mapped := error_status(error)) is not None:
            self.set_status(mapped)
            detail = error_detail(error)
            code, message = detail.code, detail.message
        elif status_code >= 500:
            code, message = "internal_error", "内部错误，请稍后重试"
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.render("error.html", status=self.get_status(), code=code, message=_MESSAGES.get(code, message))


def login_csrf_token(handler: tornado.web.RequestHandler) -> str:
    """The sign-in form's CSRF token: a random value in a cookie and in the form, which must match."""
    token = handler.get_cookie(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(24)
    handler.set_cookie(LOGIN_CSRF_COOKIE, token, path=LOGIN_PATH, httponly=True, samesite="Lax",
                       secure=handler.request.protocol == "https")
    return token


def domain_message(error: DomainError) -> str:
    return _MESSAGES.get(error.code, error.message)
