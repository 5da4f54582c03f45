"""Rate limits: the sliding window in Redis, the client's address behind trusted proxies, logins, scans and
posters over their limits."""

from __future__ import annotations

import asyncio

import pytest

from bot.simulate import event_xml
from distribution.rate_limits import Action, ActionLimits, Check, Limit, RateLimits, Subject, checks
from stores.rate_limits import RateLimiter
from distribution.scene import promoter_scene
from tests.conftest import MERCHANT_TOKEN, start_server
from tests.console_fixtures import staff_client
from tests.test_relations import add_member

BURST = 1_000
LOGINS_PER_IP = 25
WAVE = 100


def limits(**per_action: ActionLimits) -> RateLimits:
    return RateLimits(**per_action)


def per_ip(count: int, seconds: int = 3600) -> ActionLimits:
    return ActionLimits(per_ip=Limit(count=count, window_seconds=seconds))


async def login(server, code: str, forwarded_for: str | None = None):
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    return await server.http.post("/api/v1/session", json={"code": code}, headers=headers)


async def session_keys(server) -> int:
    prefix = server.runtime.settings.redis_prefix
    return len([key async for key in server.runtime.redis.scan_iter(match=f"{prefix}session:*")])


@pytest.fixture
async def proxied(make_settings):
    """A server behind a trusted proxy: the tests' own address."""
    async for running in start_server(make_settings(TRUSTED_PROXIES="127.0.0.1, 10.0.0.0/8")):
        yield running


# --- the domain and the limiter ----------------------------------------------------------------------------


def test_checks_are_made_only_for_subjects_with_a_limit_and_a_value():
    settings = limits(bind=ActionLimits(per_member=Limit(count=3, window_seconds=60)))
    assert checks(settings, Action.BIND, {Subject.MEMBER: "m1", Subject.IP: "1.2.3.4", Subject.OPENID: None}) == [
        Check("bind:member:m1", Limit(count=3, window_seconds=60))]
    assert checks(settings, Action.BIND, {Subject.MEMBER: None}) == []


def test_limits_are_bounded():
    for bad in ({"count": 0, "window_seconds": 60}, {"count": 1, "window_seconds": 86_401}, {"count": True,
                                                                                              "window_seconds": 1}):
        with pytest.raises(ValueError):
            RateLimits.from_dict({"bind": {"per_member": bad}})
    assert RateLimits.from_dict(RateLimits().to_dict()) == RateLimits()


async def test_the_window_lets_the_count_through_at_once_and_says_how_long_to_wait(server):
    limiter = RateLimiter(server.runtime.redis, server.runtime.settings.redis_prefix)
    one, other = Check("t:ip:a", Limit(count=5, window_seconds=60)), Check("t:ip:b", Limit(count=5, window_seconds=60))
    waits = await asyncio.gather(*(limiter.hit([one]) for _ in range(50)))
    assert waits.count(0) == 5 and all(0 < wait <= 60 for wait in waits if wait)
    assert await limiter.hit([other]) == 0  # another subject is unaffected
    # Checked together, a hit is counted in neither when one refuses it.
    assert await limiter.hit([other, one]) > 0
    assert [await limiter.hit([other]) for _ in range(4)] == [0, 0, 0, 0]


# --- mini-program logins -------------------------------------------------------------------------------------


async def test_a_burst_of_logins_from_one_address_stops_at_the_limit_and_writes_nothing_more(proxied):
    await proxied.runtime.merchant_settings.put(limits(miniapp_login=per_ip(LOGINS_PER_IP)))
    answers = []
    for wave in range(0, BURST, WAVE):  # as many at once as the client keeps connections
        answers += await asyncio.gather(*(login(proxied, f"burst{n}", "203.0.113.7")
                                          for n in range(wave, wave + WAVE)))
    statuses = [answer.status_code for answer in answers]
    assert statuses.count(200) == LOGINS_PER_IP and statuses.count(429) == BURST - LOGINS_PER_IP
    refused = next(answer for answer in answers if answer.status_code == 429)
    assert 0 < int(refused.headers["Retry-After"]) <= 3600
    assert refused.json()["error"]["code"] == "rate_limited"
    assert await proxied.runtime.db.members.count_documents({}) == LOGINS_PER_IP
    assert await session_keys(proxied) == LOGINS_PER_IP
    # Honest traffic from other addresses is unaffected.
    others = await asyncio.gather(*(login(proxied, f"other{n}", f"198.51.100.{n}") for n in range(1, 21)))
    assert [answer.status_code for answer in others] == [200] * 20


async def test_forwarded_for_is_ignored_from_an_untrusted_peer(server):
    await server.runtime.merchant_settings.put(limits(miniapp_login=per_ip(3)))
    answers = [await login(server, f"user{n}", f"198.51.100.{n}") for n in range(4)]
    # The server listens with `xheaders`, as in production, which would take X-Real-Ip for the address.
    answers.append(await server.http.post("/api/v1/session", json={"code": "user4"},
                                          headers={"X-Real-Ip": "198.51.100.4"}))
    assert [answer.status_code for answer in answers] == [200, 200, 200, 429, 429]


async def test_forwarded_for_is_honoured_past_trusted_proxies_only(proxied):
    await proxied.runtime.merchant_settings.put(limits(miniapp_login=per_ip(1)))
    # The client's own entry, left of what the trusted proxies added, proves nothing: the first untrusted
    # address from the right is the client.
    assert (await login(proxied, "a", "1.1.1.1, 198.51.100.9, 10.1.2.3")).status_code == 200
    assert (await login(proxied, "b", "2.2.2.2, 198.51.100.9")).status_code == 429
    assert (await login(proxied, "c", "198.51.100.10")).status_code == 200


async def test_logins_of_one_person_are_limited_by_openid(server):
    await server.runtime.merchant_settings.put(limits(miniapp_login=ActionLimits(
        per_openid=Limit(count=2, window_seconds=60))))
    statuses = [(await login(server, "dora")).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    assert (await login(server, "erin")).status_code == 200


async def test_the_limits_are_merchant_settings(server):
    headers = {"Authorization": f"Bearer {MERCHANT_TOKEN}"}
    answer = await server.http.get("/api/merchant/v1/settings/limits", headers=headers)
    assert answer.status_code == 200 and answer.json()["miniapp_login"]["per_ip"]["count"] > 0
    bad = await server.http.put("/api/merchant/v1/settings/limits", headers=headers,
                                json={"bind": {"per_ip": {"count": 0, "window_seconds": 60}}})
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "bind.per_ip.count"


# --- official-account scans: always answered ---------------------------------------------------------------


async def test_an_over_limit_scan_is_answered_and_its_bind_refused_as_rate_limited(server):
    runtime = server.runtime
    await runtime.merchant_settings.put(limits(bind=ActionLimits(per_member=Limit(count=2, window_seconds=3600))))
    promoters = [await add_member(runtime) for _ in range(3)]
    await server.push(event_xml("o_scanner", "subscribe"))
    scanner = await runtime.members.by_oa_openid("o_scanner")
    replies = []
    for number, promoter in enumerate(promoters):
        replies.append(await server.push(event_xml("o_scanner", "SCAN", promoter_scene(promoter["_id"]),
                                                   at=1_700_000_000 + number)))
    assert [reply.status_code for reply in replies] == [200, 200, 200]
    refused = await runtime.db.bind_log.find_one({"member_id": scanner["_id"], "reason": "rate_limited"})
    assert refused["upline_id"] == promoters[2]["_id"] and refused["result"] == "refused"
    # A follow or scan without a promoter's code is not counted: nothing to bind.
    assert (await server.push(event_xml("o_scanner", "SCAN", at=1_700_000_100))).status_code == 200


# --- posters: one stored picture per member and template, redraws a day ------------------------------------


async def test_a_poster_is_redrawn_at_most_the_days_allowance_and_stored_once(server):
    runtime = server.runtime
    await runtime.merchant_settings.put(RateLimits(poster_redraws_per_day=2))
    member = await add_member(runtime, nickname="名0")
    pictures = [await runtime.posters.jpeg(member)]
    for number in range(1, 5):  # four new nicknames: two redraws, then the last picture again
        await runtime.members.store.update_fields(member["_id"], {"nickname": f"名{number}"})
        pictures.append(await runtime.posters.jpeg(await runtime.members.get(member["_id"])))
    assert runtime.posters.renders == 3
    assert len(set(pictures)) == 3 and pictures[3] == pictures[4] == pictures[2]
    assert await runtime.db.poster_images.count_documents({"member_id": member["_id"]}) == 1
    # Another template is a poster of its own.
    await runtime.posters.jpeg(member, "fresh")
    assert await runtime.db.poster_images.count_documents({"member_id": member["_id"]}) == 2


# --- the merchant API's wrong tokens ------------------------------------------------------------------------


async def merchant_get(server, token: str | None, forwarded_for: str = "203.0.113.50"):
    headers = {"X-Forwarded-For": forwarded_for}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return await server.http.get("/api/merchant/v1/settings/limits", headers=headers)


async def counted_failures(server, address: str) -> int:
    key = f"{server.runtime.settings.redis_prefix}rate:merchant_auth_failure:ip:{address}"
    return await server.runtime.redis.zcard(key)


async def test_wrong_merchant_tokens_from_one_address_lock_it_out_the_right_token_included(proxied):
    await proxied.runtime.merchant_settings.put(limits(merchant_auth_failure=per_ip(3)))
    guesses = [await merchant_get(proxied, f"guess-{n}") for n in range(5)]
    assert [guess.status_code for guess in guesses] == [401, 401, 401, 429, 429]
    assert guesses[0].headers["WWW-Authenticate"] == 'Bearer realm="merchant"'
    refused = guesses[3]
    assert refused.json()["error"]["code"] == "rate_limited" and 0 < int(refused.headers["Retry-After"]) <= 3600
    # A right guess now would be answered as a wrong one is: the guesser learns nothing.
    right = await merchant_get(proxied, MERCHANT_TOKEN)
    assert right.status_code == 429 and right.json()["error"]["code"] == "rate_limited"
    assert await counted_failures(proxied, "203.0.113.50") == 3  # refused attempts are not counted
    # Another address, behind the same proxy, is unaffected.
    assert (await merchant_get(proxied, MERCHANT_TOKEN, "198.51.100.77")).status_code == 200


async def test_right_tokens_and_requests_without_authorization_are_not_counted(proxied):
    await proxied.runtime.merchant_settings.put(limits(merchant_auth_failure=per_ip(2)))
    answers = await asyncio.gather(*(merchant_get(proxied, MERCHANT_TOKEN) for _ in range(10)),
                                   *(merchant_get(proxied, None) for _ in range(10)))
    assert [answer.status_code for answer in answers] == [200] * 10 + [401] * 10
    assert await counted_failures(proxied, "203.0.113.50") == 0
    assert (await merchant_get(proxied, "one-wrong-guess")).status_code == 401
    assert (await merchant_get(proxied, MERCHANT_TOKEN)).status_code == 200  # under the limit: served


async def test_the_lockout_lifts_once_the_window_lets_go_of_the_failures(server):
    await server.runtime.merchant_settings.put(limits(merchant_auth_failure=per_ip(1, seconds=1)))
    assert (await merchant_get(server, "wrong")).status_code == 401
    locked = await merchant_get(server, MERCHANT_TOKEN)
    assert locked.status_code == 429 and locked.headers["Retry-After"] == "1"
    await asyncio.sleep(1.1)  # the window, past which Redis drops the failure
    assert (await merchant_get(server, MERCHANT_TOKEN)).status_code == 200


async def test_a_locked_out_merchant_api_address_can_still_sign_in_to_the_console(server):
    # The console counts its own sign-ins and failed passwords, apart from the merchant API's failed tokens.
    await server.runtime.merchant_settings.put(limits(merchant_auth_failure=per_ip(1)))
    assert (await merchant_get(server, "wrong")).status_code == 401
    assert (await merchant_get(server, MERCHANT_TOKEN)).status_code == 429
    console = await staff_client(server, "owner")
    assert (await console.get("/admin")).status_code == 200
    await console.aclose()
