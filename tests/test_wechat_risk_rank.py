"""WeChat's user risk rank (wxa/getuserriskrank) through the client, over real HTTP to the sandbox: a rank when
WeChat gives one, None (no signal, never an exception) when it refuses, hangs or cannot be reached."""

from __future__ import annotations

import logging
import time

import httpx
import pytest

from sandbox import Fault, openid_for
from settings import SANDBOX_MINIAPP_APP_ID, SANDBOX_MINIAPP_APP_SECRET, SANDBOX_OA_APP_ID, SANDBOX_OA_APP_SECRET
from stores.embedded import free_port
from wechat import RiskScene, UserRiskRank, WeChatClient
from wechat.api.risk import MAX_RISK_RANK_TIMEOUT_SECONDS, RISK_RANK_PATH

ALICE = openid_for(SANDBOX_MINIAPP_APP_ID, "alice")
CLIENT_IP = "203.0.113.9"
# Longer than any wait below: a None that comes before it can only be the client giving up.
HANG_SECONDS = 8.0
# The client's own per-call limit, above the risk rank's, so that what stops a call is the risk rank's timeout.
CLIENT_TIMEOUT_SECONDS = 10.0


@pytest.fixture
def patient_client(make_wechat_client) -> WeChatClient:
    return make_wechat_client(SANDBOX_MINIAPP_APP_ID, SANDBOX_MINIAPP_APP_SECRET, timeout=CLIENT_TIMEOUT_SECONDS)


async def rank_of(client: WeChatClient, openid: str = ALICE, **options) -> UserRiskRank | None:
    return await client.risk.user_risk_rank(openid, RiskScene.MARKETING_FRAUD, CLIENT_IP, **options)


async def test_a_rank_set_in_the_sandbox_comes_back(sandbox, miniapp_client):
    async with httpx.AsyncClient(base_url=sandbox.base_url) as http:
        set_rank = await http.post("/_sandbox/risk-ranks", json={"openid": ALICE, "risk_rank": 3})
    assert set_rank.json() == {"ok": True}

    first, second = await rank_of(miniapp_client), await rank_of(miniapp_client)

    assert first.rank == second.rank == 3 and first.request_id != second.request_id
    (call, _) = sandbox.state.calls.received(RISK_RANK_PATH)
    assert call.body == {"appid": SANDBOX_MINIAPP_APP_ID, "openid": ALICE, "scene": 1, "client_ip": CLIENT_IP,
                         "is_test": False}


async def test_an_openid_nobody_ranked_is_rank_0_and_the_optional_fields_travel(sandbox, miniapp_client):
    answer = await miniapp_client.risk.user_risk_rank(
        "o-stranger", RiskScene.REGISTRATION, CLIENT_IP, mobile_no="13800000000", email_address="a@example.com",
        extended_info="bind", is_test=True)

    assert answer.rank == 0
    (call,) = sandbox.state.calls.received(RISK_RANK_PATH)
    assert call.body["scene"] == 0 and call.body["is_test"] is True
    assert (call.body["mobile_no"], call.body["email_address"], call.body["extended_info"]) == (
        "13800000000", "a@example.com", "bind")


@pytest.mark.parametrize("errcode", [-1, 61010, 40003])
async def test_an_errcode_is_no_signal_and_the_log_line_names_no_openid(sandbox, miniapp_client, caplog, errcode):
    sandbox.state.risk_ranks.set(ALICE, 4)
    sandbox.state.faults.add(Fault(RISK_RANK_PATH, errcode=errcode))

    with caplog.at_level(logging.INFO):
        assert await rank_of(miniapp_client) is None

    assert str(errcode) in caplog.text and ALICE not in caplog.text and "alice" not in caplog.text
    assert (await rank_of(miniapp_client)).rank == 4  # the next call is answered again


async def test_a_rank_asked_by_an_app_the_openid_is_not_of_is_no_signal(sandbox, make_wechat_client):
    official_account = make_wechat_client(SANDBOX_OA_APP_ID, SANDBOX_OA_APP_SECRET)
    sandbox.state.risk_ranks.set(ALICE, 2)

    assert await rank_of(official_account) is None
    assert sandbox.state.calls.received(RISK_RANK_PATH)  # asked, and refused (43104)


async def test_a_slow_answer_is_no_signal_once_the_timeout_passes(sandbox, patient_client):
    sandbox.state.faults.add(Fault(RISK_RANK_PATH, delay_seconds=HANG_SECONDS))

    started = time.perf_counter()
    assert await rank_of(patient_client, timeout=0.5) is None
    assert time.perf_counter() - started < HANG_SECONDS  # it did not wait for the answer


async def test_the_timeout_bounds_the_access_token_fetch_too(sandbox, patient_client):
    sandbox.state.faults.add(Fault("cgi-bin/stable_token", delay_seconds=HANG_SECONDS))

    started = time.perf_counter()
    assert await rank_of(patient_client, timeout=0.5) is None
    assert time.perf_counter() - started < HANG_SECONDS
    assert not sandbox.state.calls.received(RISK_RANK_PATH)


async def test_no_caller_waits_past_wechats_5_s_whatever_timeout_it_asks_for(sandbox, patient_client):
    # Answered after 5 s but well within the timeout asked for: only the 5 s cap turns it into no signal.
    delay = MAX_RISK_RANK_TIMEOUT_SECONDS + 2
    sandbox.state.faults.add(Fault(RISK_RANK_PATH, delay_seconds=delay))

    started = time.perf_counter()
    assert await rank_of(patient_client, timeout=60) is None
    assert time.perf_counter() - started < delay


async def test_wechat_unreachable_is_no_signal(wechat_redis, redis_prefix):
    nobody_listens = f"http://127.0.0.1:{free_port()}"
    async with WeChatClient(nobody_listens, SANDBOX_MINIAPP_APP_ID, SANDBOX_MINIAPP_APP_SECRET, wechat_redis,
                            redis_prefix, timeout=CLIENT_TIMEOUT_SECONDS) as client:
        assert await rank_of(client) is None


# --- the sandbox's contract ------------------------------------------------------------------------------


async def test_the_sandbox_refuses_what_wechat_refuses(sandbox, miniapp_client):
    token = await miniapp_client.token.get()
    body = {"appid": SANDBOX_MINIAPP_APP_ID, "openid": ALICE, "scene": 1, "client_ip": CLIENT_IP}
    async with httpx.AsyncClient(base_url=sandbox.base_url) as http:
        async def errcode(**changes) -> int:
            answer = await http.post(f"/{RISK_RANK_PATH}", params={"access_token": token}, json={**body, **changes})
            return answer.json().get("errcode", 0)

        assert await errcode() == 0
        assert await errcode(scene=2) == 40129
        assert await errcode(client_ip="") == 44002
        assert await errcode(openid="") == 40003
        assert await errcode(appid=SANDBOX_OA_APP_ID) == 43104
        assert await errcode(openid=openid_for(SANDBOX_OA_APP_ID, "alice")) == 43104
        refused = [await http.post("/_sandbox/risk-ranks", json=fields)
                   for fields in ({"openid": ALICE, "risk_rank": 5}, {"openid": ALICE, "risk_rank": True},
                                  {"risk_rank": 1})]
        assert [answer.status_code for answer in refused] == [400, 400, 400]
        sandbox.state.risk_ranks.set(ALICE, 1)
        assert (await http.delete("/_sandbox/risk-ranks")).json() == {"ok": True}
    assert (await rank_of(miniapp_client)).rank == 0
