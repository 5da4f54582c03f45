"""The console's accounts and doors: signing in and out, lockouts, CSRF, sessions and their expiry, cookies,
roles, the second factor, the `admin` command; the audit log page, and the merchant API's actions in it."""

from __future__ import annotations

import asyncio
import hashlib
import html
import json
import os
import re
import sys
import time
from pathlib import Path

import httpx
import pyotp
import pytest

from bot.app import make_app
from distribution.errors import Conflict, Invalid, NotFound, Refused, TooMany
from distribution.staff import LOCKOUT_SECONDS, MAX_FAILED_LOGINS, Role, can
from handlers.console.audit import changes
from handlers.console.base import LOGIN_CSRF_COOKIE, NAVIGATION, SESSION_COOKIE, china_time
from handlers.console.routes import PAGE_ROUTES
from services.audit import Actor
from services.staff import LoginFailed, StaffService
from stores.embedded import free_port
from tests.conftest import MERCHANT_TOKEN, REDIS_URL, production_environ
from tests.console_fixtures import HTML, STAFF_PASSWORD, add_staff, login_form, staff_client
from tests.order_fixtures import add_member
from tests.test_withdrawals import promoter, rules, withdraw

ROOT = Path(__file__).resolve().parent.parent
MERCHANT = {"Authorization": f"Bearer {MERCHANT_TOKEN}"}
JSON = {"Accept": "application/json"}
_LOGIN_ERROR = re.compile(r'id="login-error">([^<]*)<')
_FORM_CSRF = re.compile(r'name="_csrf" value="([^"]+)"')
_ROWS = re.compile(r'<tr data-action="([^"]+)">(.*?)</tr>', re.S)
_NEXT_PAGE = re.compile(r'<a href="([^"]+)" rel="next">下一页</a>')


def client(server) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=server.base_url, timeout=30, follow_redirects=False)


def login_error(page: httpx.Response) -> str:
    return _LOGIN_ERROR.search(page.text).group(1)


def set_cookie(answer: httpx.Response, name: str) -> str:
    """The Set-Cookie line of `name`, attributes and all."""
    return next(line for line in answer.headers.get_list("set-cookie") if line.startswith(f"{name}="))


def session_key(server, token: str) -> str:
    # Redis holds the token's SHA-256, never the token: a copy of Redis signs nobody in.
    return f"{server.runtime.settings.redis_prefix}staff:session:{hashlib.sha256(token.encode()).hexdigest()}"


async def audit_entries(server, **query) -> list[dict]:
    return await server.runtime.db["audit_log"].find(query, {"_id": 0}).sort("at", 1).to_list()


# --- signing in ------------------------------------------------------------------------------------


async def test_signing_in_lands_on_the_next_page_and_is_audited(server):
    await add_staff(server, "boss", "owner")
    async with client(server) as http:
        page = await http.get("/admin/audit", headers=HTML)
        assert page.status_code == 302 and page.headers["Location"] == "/admin/login?next=%2Fadmin%2Faudit"
        form = await http.get(page.headers["Location"], headers=HTML)
        assert 'name="next" value="/admin/audit"' in form.text

        signed_in = await login_form(http, "boss", STAFF_PASSWORD, next_path="/admin/audit")
        assert signed_in.status_code == 302 and signed_in.headers["Location"] == "/admin/audit"
        landed = await http.get("/admin/audit", headers=HTML)
        assert landed.status_code == 200 and "<h1>审计日志</h1>" in landed.text

        # The user name is taken as typed by people: spaces around it and capitals do not matter.
        assert (await login_form(http, "  BOSS ", STAFF_PASSWORD)).headers["Location"] == "/admin"
    entries = await audit_entries(server, action="sign_in")
    assert [(e["actor"], e["ip"], e["target"]) for e in entries] == \
        [({"kind": "staff", "name": "boss", "role": "owner"}, "127.0.0.1", {"kind": "staff", "id": "boss"})] * 2


@pytest.mark.parametrize("target", ["//evil.example/admin", "https://evil.example/admin", "/\\evil.example",
                                    "/admin\\..\\x", "javascript:alert(1)", "evil.example", ""])
async def test_next_never_leaves_the_console(server, target):
    await add_staff(server, "boss", "owner")
    async with client(server) as http:
        form = await http.get("/admin/login", params={"next": target}, headers=HTML)
        assert 'name="next" value="/admin"' in form.text
        signed_in = await login_form(http, "boss", STAFF_PASSWORD, next_path=target)
    assert signed_in.status_code == 302 and signed_in.headers["Location"] == "/admin"


async def test_a_wrong_password_and_an_unknown_user_get_the_same_401(server):
    await add_staff(server, "boss", "owner")
    async with client(server) as http:
        wrong = await login_form(http, "boss", "not the password at all")
        unknown = await login_form(http, "nobody", STAFF_PASSWORD)
        assert http.cookies.get(SESSION_COOKIE) is None
    assert wrong.status_code == unknown.status_code == 401
    assert login_error(wrong) == login_error(unknown) == "用户名或密码错误"
    assert 'value="boss"' in wrong.text  # the form keeps the name typed, never the password
    assert "not the password" not in wrong.text


async def test_five_failures_lock_the_user_even_against_the_right_password(server):
    await add_staff(server, "boss", "owner")
    async with client(server) as http:
        for _ in range(MAX_FAILED_LOGINS):
            assert (await login_form(http, "boss", "wrong password 123")).status_code == 401
        locked = await login_form(http, "boss", STAFF_PASSWORD)
    assert locked.status_code == 429 and login_error(locked) == "登录失败次数过多，已锁定 15 分钟"
    assert LOCKOUT_SECONDS - 60 < int(locked.headers["Retry-After"]) <= LOCKOUT_SECONDS
    assert await audit_entries(server, action="sign_in") == []


async def test_the_user_lock_holds_from_every_address_and_the_address_lock_for_every_user(server):
    staff = server.runtime.staff
    for name in ("boss", "clerk"):
        await add_staff(server, name, "owner")
    for n in range(MAX_FAILED_LOGINS):  # one user, from five addresses
        with pytest.raises(LoginFailed):
            await staff.sign_in("boss", "wrong password 123", "", f"10.0.0.{n}")
    with pytest.raises(TooMany) as locked:
        await staff.sign_in("boss", STAFF_PASSWORD, "", "10.0.0.99")
    assert locked.value.code == "locked"
    await staff.sign_in("clerk", STAFF_PASSWORD, "", "10.0.0.99")  # another user from there is not locked

    for n in range(MAX_FAILED_LOGINS):  # one address, five user names (known or not)
        with pytest.raises(LoginFailed):
            await staff.sign_in(f"guess{n}", "wrong password 123", "", "10.9.9.9")
    with pytest.raises(TooMany):
        await staff.sign_in("clerk", STAFF_PASSWORD, "", "10.9.9.9")
    await staff.sign_in("clerk", STAFF_PASSWORD, "", "10.9.9.10")


async def test_an_unknown_user_name_is_counted_and_locked_like_a_real_one(server):
    staff = server.runtime.staff
    for n in range(MAX_FAILED_LOGINS):
        with pytest.raises(LoginFailed):
            await staff.sign_in("ghost", "wrong password 123", "", f"10.0.1.{n}")
    with pytest.raises(TooMany):
        await staff.sign_in("ghost", "wrong password 123", "", "10.0.1.99")


async def test_signing_in_resets_the_users_failures(server):
    staff = server.runtime.staff
    await add_staff(server, "boss", "owner")
    for round_ in range(2):
        for n in range(MAX_FAILED_LOGINS - 1):
            with pytest.raises(LoginFailed):
                await staff.sign_in("boss", "wrong password 123", "", f"10.{round_}.0.{n}")
        await staff.sign_in("boss", STAFF_PASSWORD, "", "10.8.8.8")  # 4, then 8 failures in all: never locked


# --- CSRF ------------------------------------------------------------------------------------------


async def test_the_sign_in_form_needs_its_own_csrf_token_and_cookie(server):
    await add_staff(server, "boss", "owner")
    fields = {"username": "boss", "password": STAFF_PASSWORD}
    async with client(server) as http, client(server) as other:
        no_cookie = await http.post("/admin/login", data={**fields, "_csrf": "anything"}, headers=HTML)
        assert no_cookie.status_code == 403 and 'data-code="csrf"' in no_cookie.text

        await http.get("/admin/login", headers=HTML)
        assert (await http.post("/admin/login", data=fields, headers=HTML)).status_code == 403
        assert (await http.post("/admin/login", data={**fields, "_csrf": "wrong"}, headers=HTML)).status_code == 403

        # A token from someone else's form (a page on another site that fetched one) does not fit this cookie.
        foreign = _FORM_CSRF.search((await other.get("/admin/login", headers=HTML)).text).group(1)
        assert (await http.post("/admin/login", data={**fields, "_csrf": foreign}, headers=HTML)).status_code == 403
        assert http.cookies.get(SESSION_COOKIE) is None


async def test_a_post_without_the_sessions_csrf_token_is_refused(server):
    owner = await staff_client(server, "owner")
    other = await staff_client(server, "owner", "second")
    try:
        missing = await owner.post("/admin/logout", csrf=False)
        assert missing.status_code == 403 and 'data-code="csrf"' in missing.text
        assert (await owner.post("/admin/logout", {"_csrf": "forged"}, csrf=False)).status_code == 403
        assert (await owner.post("/admin/logout", {"_csrf": other.csrf}, csrf=False)).status_code == 403
        as_json = await owner.http.post("/admin/logout", headers=JSON)
        assert as_json.status_code == 403 and as_json.json()["error"] == {
            "code": "csrf", "message": "the request's CSRF token is missing or wrong", "field": "_csrf"}
        assert (await owner.get("/admin")).status_code == 200  # still signed in: nothing happened

        by_script = await owner.http.post("/admin/logout", headers={"X-CSRF-Token": owner.csrf})
        assert by_script.status_code == 302 and by_script.headers["Location"] == "/admin/login"
    finally:
        await owner.aclose()
        await other.aclose()
    async with client(server) as stranger:
        assert (await stranger.post("/admin/logout", headers=HTML)).status_code == 401


# --- sessions --------------------------------------------------------------------------------------


async def test_signing_out_ends_the_session_everywhere(server):
    owner = await staff_client(server, "owner")
    token = owner.http.cookies.get(SESSION_COOKIE)
    try:
        signed_out = await owner.post("/admin/logout")
        assert signed_out.status_code == 302 and signed_out.headers["Location"] == "/admin/login"
        assert 'admin_session=""' in set_cookie(signed_out, SESSION_COOKIE)
    finally:
        await owner.aclose()
    async with client(server) as http:  # the old cookie, kept by someone
        http.cookies.set(SESSION_COOKIE, token)
        page = await http.get("/admin", headers=HTML)
        assert page.status_code == 302 and page.headers["Location"] == "/admin/login?next=%2Fadmin"
    assert not await server.runtime.redis.exists(session_key(server, token))
    assert [e["action"] for e in await audit_entries(server, **{"actor.name": "owner1"})] == ["sign_in", "sign_out"]


async def test_each_request_renews_the_idle_time_and_a_session_idle_too_long_is_gone(server):
    redis, idle = server.runtime.redis, server.runtime.settings.admin_idle_minutes * 60
    owner = await staff_client(server, "owner")
    try:
        key = session_key(server, owner.http.cookies.get(SESSION_COOKIE))
        assert idle - 5 < await redis.ttl(key) <= idle
        await redis.expire(key, 5)
        assert (await owner.get("/admin")).status_code == 200
        assert idle - 5 < await redis.ttl(key) <= idle

        await redis.pexpire(key, 1)  # as if idle for the whole idle time
        await asyncio.sleep(0.05)
        page = await owner.get("/admin")
        assert page.status_code == 302 and page.headers["Location"].startswith("/admin/login")
    finally:
        await owner.aclose()


async def test_a_session_ends_after_its_idle_time_in_real_time(server):
    live = server.runtime.staff
    short = StaffService(live.store, live.redis, live.key_prefix, live.sealer, idle_seconds=1, absolute_seconds=60)
    await add_staff(server, "boss", "owner")
    token, _ = await short.sign_in("boss", STAFF_PASSWORD, "", "10.0.0.1")
    assert (await short.session(token)).username == "boss"
    await asyncio.sleep(1.5)
    assert await short.session(token) is None


async def test_a_session_in_use_ends_at_its_absolute_lifetime(server):
    redis, lifetime = server.runtime.redis, server.runtime.settings.admin_session_hours * 3600
    owner = await staff_client(server, "owner")
    try:
        key = session_key(server, owner.http.cookies.get(SESSION_COOKIE))
        stored = json.loads(await redis.get(key))
        await redis.set(key, json.dumps({**stored, "signed_in_at": time.time() - lifetime + 60}), keepttl=True)
        assert (await owner.get("/admin")).status_code == 200  # a minute left
        await redis.set(key, json.dumps({**stored, "signed_in_at": time.time() - lifetime - 1}), keepttl=True)
        page = await owner.get("/admin")
        assert page.status_code == 302 and page.headers["Location"].startswith("/admin/login")
        assert not await redis.exists(key)
    finally:
        await owner.aclose()


async def test_cookies_are_http_only_same_site_on_the_console_path_and_secure_behind_tls(server):
    await add_staff(server, "boss", "owner")
    async with client(server) as http:
        form = await http.get("/admin/login", headers=HTML)
        signed_in = await login_form(http, "boss", STAFF_PASSWORD)
    for line in (set_cookie(form, LOGIN_CSRF_COOKIE), set_cookie(signed_in, SESSION_COOKIE)):
        assert "HttpOnly" in line and "SameSite=Lax" in line and "Secure" not in line
    assert "Path=/admin;" in set_cookie(signed_in, SESSION_COOKIE) + ";"
    assert "Path=/admin/login" in set_cookie(form, LOGIN_CSRF_COOKIE)
    assert "expires" not in set_cookie(signed_in, SESSION_COOKIE).lower()  # gone when the browser closes

    # `serve` trusts the proxy's X-Forwarded-Proto (xheaders=True): behind TLS the cookies are Secure.
    port = free_port()
    behind_proxy = make_app(server.runtime, server.door).listen(port, address="127.0.0.1", xheaders=True)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            tls = {**HTML, "X-Forwarded-Proto": "https"}
            form = await http.get("/admin/login", headers=tls)
            token = _FORM_CSRF.search(form.text).group(1)
            # A Secure cookie is not sent back over plain http: send it as the browser behind TLS would.
            signed_in = await http.post("/admin/login", headers={**tls, "Cookie": f"{LOGIN_CSRF_COOKIE}={token}"},
                                        data={"_csrf": token, "username": "boss", "password": STAFF_PASSWORD})
            assert signed_in.status_code == 302
            for line in (set_cookie(form, LOGIN_CSRF_COOKIE), set_cookie(signed_in, SESSION_COOKIE)):
                assert "Secure" in line and "HttpOnly" in line and "SameSite=Lax" in line
            plain = await http.get("/admin/login", headers=HTML)
            assert "Secure" not in set_cookie(plain, LOGIN_CSRF_COOKIE)
    finally:
        behind_proxy.stop()
        await behind_proxy.close_all_connections()


async def test_every_console_answer_carries_the_security_headers(server):
    operator = await staff_client(server, "operator")
    try:
        answers = [await server.http.get("/admin/login", headers=HTML), await operator.get("/admin"),
                   await operator.get("/admin/audit")]
    finally:
        await operator.aclose()
    assert [answer.status_code for answer in answers] == [200, 200, 403]
    for answer in answers:
        policy = answer.headers["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy and "unsafe-eval" not in policy
        assert answer.headers["X-Frame-Options"] == "DENY"
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
        assert answer.headers["Cache-Control"] == "no-store"


# --- roles -----------------------------------------------------------------------------------------


async def test_staff_see_and_open_only_what_their_role_allows(server):
    built = [path for path, _, needed in NAVIGATION if not can(Role.OPERATOR, needed)
             and any(re.fullmatch(pattern, path) for pattern, _ in PAGE_ROUTES)]
    assert "/admin/audit" in built
    operator, finance, owner = [await staff_client(server, role) for role in ("operator", "finance", "owner")]
    try:
        for path in built:
            refused = await operator.get(path)
            assert refused.status_code == 403, path
            assert "你的角色无权进行此操作" in refused.text and 'data-code="forbidden_role"' in refused.text
        as_json = await operator.http.get("/admin/audit", headers=JSON)
        assert as_json.status_code == 403 and as_json.json()["error"]["code"] == "forbidden_role"
        assert (await finance.get("/admin/audit")).status_code == 403
        assert (await owner.get("/admin/audit")).status_code == 200

        for who, role in ((operator, Role.OPERATOR), (finance, Role.FINANCE), (owner, Role.OWNER)):
            home = (await who.get("/admin")).text
            shown = {path for path, _, _ in NAVIGATION if f'<a href="{path}"' in home}
            assert shown == {path for path, _, needed in NAVIGATION if can(role, needed)}, role
    finally:
        for each in (operator, finance, owner):
            await each.aclose()


# --- second factor ---------------------------------------------------------------------------------


async def test_an_owners_second_factor_is_needed_and_each_code_works_once(server):
    staff = server.runtime.staff
    await add_staff(server, "boss", "owner")
    uri = await staff.enable_totp("boss")
    assert uri.startswith("otpauth://totp/") and "boss" in uri
    totp = pyotp.parse_uri(uri)
    stored = await server.runtime.db["staff"].find_one({"_id": "boss"})
    assert totp.secret not in json.dumps(stored, default=str)  # sealed at rest

    async with client(server) as http:
        assert (await login_form(http, "boss", STAFF_PASSWORD)).status_code == 401
        wrong = str((int(totp.now()) + 1) % 1_000_000).zfill(6)
        assert (await login_form(http, "boss", STAFF_PASSWORD, code=wrong)).status_code == 401
        assert (await login_form(http, "boss", "wrong password 123", code=totp.now())).status_code == 401
        code = totp.now()
        signed_in = await login_form(http, "boss", STAFF_PASSWORD, code=code)
        assert signed_in.status_code == 302
        replayed = await login_form(http, "boss", STAFF_PASSWORD, code=code)
        assert replayed.status_code == 401

    await staff.disable_totp("boss")
    await staff.sign_in("boss", STAFF_PASSWORD, "", "10.0.0.1")


async def test_only_owners_take_a_second_factor(server):
    staff = server.runtime.staff
    for name, role in (("clerk", "finance"), ("ops", "operator")):
        await add_staff(server, name, role)
        with pytest.raises(Refused):
            await staff.enable_totp(name)
    with pytest.raises(NotFound):
        await staff.enable_totp("nobody")
    assert not any(user["has_totp"] for user in await staff.users())


# --- accounts --------------------------------------------------------------------------------------


async def test_passwords_are_stored_as_argon2id_hashes_only(server):
    await add_staff(server, "boss", "owner")
    stored = await server.runtime.db["staff"].find_one({"_id": "boss"})
    assert stored["password_hash"].startswith("$argon2id$") and stored["role"] == "owner"
    assert STAFF_PASSWORD not in json.dumps(stored, default=str)
    listed = await server.runtime.staff.users()
    assert [(user["username"], user["role"], user["has_totp"]) for user in listed] == [("boss", "owner", False)]
    assert "password_hash" not in listed[0]


async def test_create_user_refuses_weak_passwords_bad_names_and_duplicates(server):
    staff = server.runtime.staff
    for username, password, field in (("boss", "short", "password"), ("boss", "aaaaaaaaaaaaaaaa", "password"),
                                      ("Boss", STAFF_PASSWORD, "username"), ("b", STAFF_PASSWORD, "username"),
                                      ("boss\n", STAFF_PASSWORD, "username")):
        with pytest.raises(Invalid) as refused:
            await staff.create_user(username, password, Role.OWNER)
        assert refused.value.field == field
    await staff.create_user("boss", STAFF_PASSWORD, Role.OWNER)
    with pytest.raises(Conflict) as taken:
        await staff.create_user("boss", "another long password", Role.OPERATOR)
    assert taken.value.field == "username"
    await staff.sign_in("boss", STAFF_PASSWORD, "", "10.0.0.1")  # the first account is as it was
    with pytest.raises(NotFound):
        await staff.set_password("nobody", "another long password")
    with pytest.raises(ValueError):
        await staff.create_user("root", STAFF_PASSWORD, "superuser")


async def test_the_admin_command_creates_lists_and_changes_passwords(server):
    settings = server.runtime.settings
    environ = {**os.environ, "MONGODB_URI": settings.mongodb_uri, "MONGODB_DB": settings.mongodb_db,
               "REDIS_URL": REDIS_URL, "REDIS_PREFIX": settings.redis_prefix, "VAR_DIR": str(settings.var_dir),
               **production_environ(settings.wechat_api_base)}

    async def admin(*args: str, password: str = "") -> tuple[int, str, str]:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "admin", *args, cwd=ROOT, env={**environ, "ADMIN_PASSWORD": password},
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(process.communicate(), 60)
        return process.returncode, out.decode(), err.decode()

    first, second = "first long password", "second long password"
    code, out, err = await admin("create-user", "boss", "--role", "owner", password=first)
    assert code == 0 and out.strip() == "created boss (owner)", err
    code, _, err = await admin("create-user", "weak", "--role", "owner", password="short")
    assert code == 1 and "refused: a password has at least 12 characters" in err
    code, _, err = await admin("create-user", "boss", "--role", "finance", password=second)
    assert code == 1 and "refused:" in err
    code, out, _ = await admin("list")
    assert code == 0 and out.splitlines() == ["boss\towner\t"]

    await server.runtime.staff.sign_in("boss", first, "", "10.0.0.1")
    code, out, err = await admin("set-password", "boss", password=second)
    assert code == 0 and out.strip() == "password of boss changed", err
    with pytest.raises(LoginFailed):
        await server.runtime.staff.sign_in("boss", first, "", "10.0.0.2")
    await server.runtime.staff.sign_in("boss", second, "", "10.0.0.3")

    code, out, err = await admin("totp", "boss")
    assert code == 0 and out.splitlines()[-1].startswith("otpauth://totp/"), err
    code, out, _ = await admin("list")
    assert out.splitlines() == ["boss\towner\ttotp"]
    assert first not in out + err and second not in out + err


# --- the audit log page ----------------------------------------------------------------------------


def rows(page: httpx.Response) -> list[tuple[str, str]]:
    """(action, the row's text with tags and spacing squeezed out) of each entry shown."""
    return [(action, re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", cells))).strip())
            for action, cells in _ROWS.findall(page.text)]


async def test_owners_read_the_log_newest_first_with_who_where_what_and_what_changed(server):
    audit = server.runtime.audit
    operator = Actor("staff", "ops", "10.1.2.3", "operator")
    await audit.record(operator, "member.upline", "member", "m1", {"upline_id": "up-a", "nickname": "小王"},
                       {"upline_id": "up-b", "nickname": "小王"}, "客户来电要求<script>alert(1)</script>")
    await audit.record(Actor("api", "merchant-api", "10.4.5.6"), "settings.commission", "settings", "commission",
                       {"levels": 2, "level_rates_bp": [1000, 500], "sku_rules": {}},
                       {"levels": 3, "level_rates_bp": [1000, 500, 200], "sku_rules": {}})
    await audit.record(operator, "export.orders", "export", "orders", after={"rows": 12})
    owner = await staff_client(server, "owner")
    try:
        page = await owner.get("/admin/audit")
    finally:
        await owner.aclose()
    assert page.status_code == 200
    shown = rows(page)
    assert [action for action, _ in shown] == ["sign_in", "export.orders", "settings.commission", "member.upline"]
    assert shown[0][1].endswith("owner1 店主 127.0.0.1 登录 员工 owner1")
    assert shown[1][1].endswith("ops 运营 10.1.2.3 导出 · 订单 导出 orders rows： — → 12")
    assert shown[2][1].endswith("商户 API merchant-api 10.4.5.6 修改设置 · 佣金规则 设置 commission "
                                "levels： 2 → 3 level_rates_bp： [1000,500] → [1000,500,200]")
    assert shown[3][1].endswith("ops 运营 10.1.2.3 修改上级 推广员 m1 客户来电要求<script>alert(1)</script> "
                                "上级： up-a → up-b")
    assert "<script>alert(1)" not in page.text and "&lt;script&gt;" in page.text
    newest = (await audit.page(limit=1))[0]
    assert shown[0][1].startswith(china_time(newest["at"]))
    # Nothing on the page changes anything: its one form that posts is the sign-out in the header.
    assert re.findall(r'<form[^>]*method="post"[^>]*>', page.text) == ['<form class="who" method="post" '
                                                                      'action="/admin/logout">']


def test_the_changes_shown_are_the_fields_that_differ_named_by_their_path():
    assert changes(None, None) == changes({}, {}) == changes({"status": "paid"}, {"status": "paid"}) == []
    assert changes({"frozen": False}, {"frozen": True}) == [("冻结", "否", "是")]
    assert changes(None, {"rows": 3}) == changes({}, {"rows": 3}) == [("rows", "—", "3")]
    assert changes({"status": "approved", "note": "x"}, {"status": "paid"}) == [("状态", "approved", "paid"),
                                                                                ("note", "x", "—")]
    assert changes({"sku_rules": {}, "levels": 2}, {"sku_rules": {"tea": {"rate_bp": [100]}}, "levels": 2}) == [
        ("sku_rules", "{}", "—"), ("sku_rules.tea.rate_bp", "—", "[100]")]
    assert changes("old", "new") == [("值", "old", "new")]
    long = changes({"note": "a" * 200}, {})[0][1]
    assert len(long) == 80 and long.endswith("…")


async def test_the_log_filters_by_target_and_actor_and_pages_back_in_time(server):
    audit = server.runtime.audit
    for n in range(55):
        await audit.record(Actor("staff", "ops", "10.0.0.1", "operator"), "member.freeze", "member",
                           f"m{n % 2}", {"frozen": False}, {"frozen": True}, f"reason {n}")
    await audit.record(Actor("staff", "cashier", "10.0.0.2", "finance"), "withdrawal.approve", "withdrawal", "w1",
                       {"status": "pending_review"}, {"status": "approved"})
    owner = await staff_client(server, "owner")
    try:
        members = await owner.get("/admin/audit", kind="member")
        first = rows(members)
        assert len(first) == 50 and all(action == "member.freeze" for action, _ in first)
        assert "reason 54" in first[0][1] and "reason 5 " in first[-1][1] + " "
        next_page = html.unescape(_NEXT_PAGE.search(members.text).group(1))
        assert next_page.startswith("/admin/audit?kind=member&cursor=")
        older = await owner.http.get(next_page, headers=HTML)
        assert [text.split("reason ")[1].split()[0] for _, text in rows(older)] == ["4", "3", "2", "1", "0"]
        assert _NEXT_PAGE.search(older.text) is None and 'href="/admin/audit?kind=member">最新</a>' in older.text

        one = rows(await owner.get("/admin/audit", kind="member", target="m1"))
        assert len(one) == 27 and all("推广员 m1" in text for _, text in one)
        by_cashier = rows(await owner.get("/admin/audit", actor="cashier"))
        assert [action for action, _ in by_cashier] == ["withdrawal.approve"]
        assert "状态： pending_review → approved" in by_cashier[0][1]
        assert rows(await owner.get("/admin/audit", actor="cashier", kind="member")) == []
        assert "没有记录" in (await owner.get("/admin/audit", actor="nobody")).text

        for params, field in (({"target": "m1"}, "target"), ({"cursor": "not-an-id"}, "cursor"),
                              ({"actor": "x" * 65}, "actor")):
            refused = await owner.get("/admin/audit", **params)
            assert refused.status_code == 400 and f'data-field="{field}"' in refused.text, params
            assert rows(refused) == [] and "没有记录" in refused.text
    finally:
        await owner.aclose()


async def test_secrets_never_enter_the_log(server):
    await server.runtime.audit.record(Actor("api", "merchant-api", "10.0.0.1"), "withdrawal.bank_account",
                                      "withdrawal", "w1", {"status": "approved", "bank_sealed": "v1.xyz",
                                                           "payee": {"real_name_sealed": "v1.abc"}},
                                      {"password_hash": "$argon2id$..."})
    (entry,) = await audit_entries(server)
    assert entry["before"] == {"status": "approved", "payee": {}} and entry["after"] == {}


# --- the merchant API's actions in the log ---------------------------------------------------------


async def test_the_merchant_apis_actions_are_audited_with_the_api_as_actor(server):
    runtime = server.runtime
    old_upline, new_upline = await add_member(runtime), await add_member(runtime)
    member = await add_member(runtime, old_upline)
    api = {"kind": "api", "name": "merchant-api"}

    frozen = await server.http.post(f"/api/merchant/v1/members/{member['_id']}/freeze", headers=MERCHANT)
    assert frozen.status_code == 200
    (entry,) = await audit_entries(server)
    assert entry["actor"] == api and entry["ip"] == "127.0.0.1" and entry["action"] == "member.freeze"
    assert (entry["target"], entry["before"], entry["after"]) == (
        {"kind": "member", "id": member["_id"]}, {"frozen": False}, {"frozen": True})
    await server.http.post(f"/api/merchant/v1/members/{member['_id']}/unfreeze", headers=MERCHANT)

    moved = await server.http.post(f"/api/merchant/v1/members/{member['_id']}/upline", headers=MERCHANT,
                                   json={"upline_id": new_upline["_id"], "reason": "客户要求"})
    assert moved.status_code == 200
    stored = await server.http.put("/api/merchant/v1/settings/binding", headers=MERCHANT,
                                   json={"bind_mode": "expiring", "bind_expiry_days": 14})
    assert stored.status_code == 200

    await rules(runtime, auto_approve_under_fen=1_000)
    _, headers = await promoter(server, "wendy", 10_000)
    pending = (await withdraw(server, headers, 5_000)).json()
    rejected = await server.http.post(f"/api/merchant/v1/withdrawals/{pending['id']}/reject", headers=MERCHANT,
                                      json={"reason": "信息不符"})
    assert rejected.status_code == 200

    # Refused and failed requests change nothing and record nothing.
    assert (await server.http.post("/api/merchant/v1/members/nobody/freeze", headers=MERCHANT)).status_code == 404
    again = await server.http.post(f"/api/merchant/v1/withdrawals/{pending['id']}/approve", headers=MERCHANT)
    assert again.status_code == 409
    invalid = await server.http.put("/api/merchant/v1/settings/binding", headers=MERCHANT, json={"bind_mode": "x"})
    assert invalid.status_code == 400

    entries = await audit_entries(server)
    assert all(each["actor"] == api for each in entries)
    assert [(each["action"], each["target"]["id"], each.get("reason")) for each in entries] == [
        ("member.freeze", member["_id"], None),
        ("member.unfreeze", member["_id"], None),
        ("member.upline", member["_id"], "客户要求"),
        ("settings.binding", "binding", None),
        ("withdrawal.reject", pending["id"], "信息不符"),
    ]
    assert (entries[2]["before"], entries[2]["after"]) == ({"upline_id": old_upline["_id"]},
                                                           {"upline_id": new_upline["_id"]})
    assert (entries[3]["before"]["bind_mode"], entries[3]["after"]["bind_mode"]) == ("first_bind", "expiring")
    assert (entries[4]["before"], entries[4]["after"]) == ({"status": "pending_review"}, {"status": "rejected"})

    owner = await staff_client(server, "owner")
    try:
        page = rows(await owner.get("/admin/audit", kind="member", target=member["_id"]))
    finally:
        await owner.aclose()
    assert [text.split(" 127.0.0.1 ")[1].split(" 推广员 ")[0] for _, text in page] == ["修改上级", "解冻推广员",
                                                                                     "冻结推广员"]
    assert all(" 商户 API merchant-api 127.0.0.1 " in text for _, text in page)
