"""Signing in and out of the console."""

from __future__ import annotations

import hmac

from distribution.errors import TooMany
from distribution.rate_limits import Action
from handlers.console.base import (CSRF_FIELD, LOGIN_CSRF_COOKIE, LOGIN_PATH, SESSION_COOKIE, ConsoleHandler,
                                   domain_message, login_csrf_token)
from services.staff import LoginFailed
from web.base import ApiError, BaseHandler

HOME = "/admin"


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a console path of this site only, never another site."""
    if target and target.startswith("/admin") and not target.startswith("//") and "\\" not in target:
        return target
    return HOME


class LoginHandler(ConsoleHandler):
    async def prepare(self) -> None:
        BaseHandler.prepare(self)  # the body's size limit; nobody is signed in yet

    def get(self) -> None:
        self._form_page(None, "", safe_next(self.get_argument("next", None)))

    async def post(self) -> None:
        form = self.form()
        expected = self.get_cookie(LOGIN_CSRF_COOKIE) or ""
        if not expected or not hmac.compare_digest(form.get(CSRF_FIELD, "").encode(), expected.encode()):
            raise ApiError(403, "csrf", "the sign-in form's CSRF token is missing or wrong", field=CSRF_FIELD)
        username, target = form.get("username", ""), safe_next(form.get("next"))
        try:
            await self.runtime.limits.check(Action.CONSOLE_LOGIN, ip=self.client_ip)
            token, session = await self.runtime.staff.sign_in(username, form.get("password", ""), form.get("code", ""),
                                                              self.client_ip)
        except LoginFailed as error:
            self._form_page(domain_message(error), username, target, status=401)
            return
        except TooMany as error:
            self.set_header("Retry-After", str(error.retry_after))
            self._form_page(domain_message(error), username, target, status=429)
            return
        self.set_cookie(SESSION_COOKIE, token, path="/admin", httponly=True, samesite="Lax",
                        secure=self.request.protocol == "https")
        self.clear_cookie(LOGIN_CSRF_COOKIE, path=LOGIN_PATH)
        self.staff = session
        await self.audit("sign_in", "staff", session.username)
        self.redirect(target)

    def _form_page(self, error: str | None, username: str, target: str, status: int = 200) -> None:
        self.render_page("login.html", status=status, error=error, username=username, next=target,
                         login_csrf=login_csrf_token(self))


class LogoutHandler(ConsoleHandler):
    async def post(self) -> None:
        await self.runtime.staff.sign_out(self.get_cookie(SESSION_COOKIE, ""))
        await self.audit("sign_out", "staff", self.staff.username)
        self.clear_cookie(SESSION_COOKIE, path="/admin")
        self.redirect(LOGIN_PATH)


ROUTES = [
    (LOGIN_PATH, LoginHandler),
    (r"/admin/logout", LogoutHandler),
]
