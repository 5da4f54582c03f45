"""Signing in to the console over HTTP, as a browser would: cookies, the sign-in form's CSRF token, and the
session's CSRF token on every form posted."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import httpx

STAFF_PASSWORD = "correct horse battery staple"
HTML = {"Accept": "text/html"}
_FORM_CSRF = re.compile(r'name="_csrf" value="([^"]+)"')
_PAGE_CSRF = re.compile(r'data-csrf="([^"]*)"')


@dataclass
class ConsoleClient:
    http: httpx.AsyncClient
    csrf: str
    username: str

    async def get(self, path: str, **params: Any) -> httpx.Response:
        return await self.http.get(path, params=params, headers=HTML)

    async def post(self, path: str, data: dict[str, Any] | None = None, files: Any = None,
                   csrf: bool = True) -> httpx.Response:
        """A form posted from a page: with the session's CSRF token unless `csrf` is False."""
        fields = {**(data or {}), **({"_csrf": self.csrf} if csrf else {})}
        return await self.http.post(path, data=fields, files=files, headers=HTML)

    async def aclose(self) -> None:
        await self.http.aclose()


async def add_staff(server, username: str, role: str, password: str = STAFF_PASSWORD) -> str:
    await server.runtime.staff.create_user(username, password, role)
    return username


async def login_form(http: httpx.AsyncClient, username: str, password: str, code: str = "",
                     next_path: str | None = None) -> httpx.Response:
    page = await http.get("/admin/login", headers=HTML)
    token = _FORM_CSRF.search(page.text).group(1)
    fields = {"_csrf": token, "username": username, "password": password, "code": code}
    if next_path is not None:
        fields["next"] = next_path
    return await http.post("/admin/login", data=fields, headers=HTML)


async def sign_in(server, username: str, password: str = STAFF_PASSWORD, code: str = "") -> ConsoleClient:
    http = httpx.AsyncClient(base_url=server.base_url, timeout=30, follow_redirects=False, verify=False)  # plain http
    answer = await login_form(http, username, password, code)
    assert answer.status_code == 302, answer.text
    page = await http.get("/admin", headers=HTML)
    assert page.status_code == 200, page.text
    return ConsoleClient(http, _PAGE_CSRF.search(page.text).group(1), username)


async def staff_client(server, role: str, username: str | None = None) -> ConsoleClient:
    """A member of staff in `role`, signed in."""
    return await sign_in(server, await add_staff(server, username or f"{role}1", role))
