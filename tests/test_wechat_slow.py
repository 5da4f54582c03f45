"""WeChat answering slowly or not at all: no request waits past its limit.

The sandbox holds its answer to the faulted endpoint longer than our client waits (its `delay_seconds`);
the API answers 503 with Retry-After once WECHAT_TIMEOUT_SECONDS have passed, and the /wechat door
answers within WeChat's 5 seconds, leaving the poster to a job.
"""

from __future__ import annotations

import time
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from typing import AsyncIterator

import pytest

from bot.simulate import text_xml
from bot.worker import job_handlers
from sandbox import Fault
from stores.members import new_member_fields
from tests.conftest import RunningServer, start_server
from web.base import RETRY_AFTER_SECONDS

WECHAT_TIMEOUT_SECONDS = 1.0
HANG_SECONDS = 4.0  # the sandbox's answer comes this late: long past our limit
# What a request may take beyond its limit on a loaded machine: the limit holds, whatever the load.
MARGIN_SECONDS = 2.0
DOOR_LIMIT_SECONDS = 5.0  # WeChat gives up on a push it has no answer to by then, and sends it again
ACCESS_TOKEN = "cgi-bin/stable_token"  # every call with a token starts here while none is cached


@asynccontextmanager
async def serving(make_settings,
                  wechat_timeout_seconds: float = WECHAT_TIMEOUT_SECONDS) -> AsyncIterator[RunningServer]:
    async for running in start_server(make_settings(WECHAT_TIMEOUT_SECONDS=str(wechat_timeout_seconds))):
        yield running


async def timed(call) -> tuple[float, object]:
    started = time.perf_counter()
    result = await call
    return time.perf_counter() - started, result


def assert_wechat_unavailable(response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"] == str(RETRY_AFTER_SECONDS)
    assert response.json()["error"]["code"] == "wechat_unavailable"


async def test_a_login_whose_code_exchange_hangs_answers_503_within_the_wechat_timeout(make_settings, sandbox):
    async with serving(make_settings) as server:
        sandbox.state.faults.add(Fault("sns/jscode2session", delay_seconds=HANG_SECONDS))

        seconds, response = await timed(server.http.post("/api/v1/session", json={"code": "patient"}))

        assert_wechat_unavailable(response)
        assert seconds < WECHAT_TIMEOUT_SECONDS + MARGIN_SECONDS
        assert await server.runtime.db.members.count_documents({}) == 0  # nothing half done
        again = await server.http.post("/api/v1/session", json={"code": "patient"})
        assert again.status_code == 200, again.text


@pytest.mark.parametrize("endpoint", [ACCESS_TOKEN, "cgi-bin/qrcode/create"])
async def test_a_poster_from_the_api_answers_503_within_the_wechat_timeout_when_wechat_hangs(
        make_settings, sandbox, endpoint):
    async with serving(make_settings) as server:
        login = (await server.http.post("/api/v1/session", json={"code": "painter"})).json()
        headers = {"Authorization": f"Bearer {login['token']}"}
        sandbox.state.faults.add(Fault(endpoint, delay_seconds=HANG_SECONDS))

        seconds, response = await timed(server.http.get("/api/v1/poster", headers=headers))

        assert_wechat_unavailable(response)
        assert seconds < WECHAT_TIMEOUT_SECONDS + MARGIN_SECONDS
        again = await server.http.get("/api/v1/poster", headers=headers)
        assert again.status_code == 200 and again.headers["Content-Type"] == "image/jpeg"


async def test_the_door_answers_a_poster_request_within_5_s_when_wechat_does_not_answer_at_all(make_settings,
                                                                                              sandbox):
    # WeChat's calls may take as long as WeChat gives the door: the door's own deadline must answer in time.
    async with serving(make_settings, wechat_timeout_seconds=DOOR_LIMIT_SECONDS) as server:
        runtime = server.runtime
        await runtime.db.members.insert_one({**new_member_fields(datetime.now(timezone.utc)), "oa_openid": "o_waiting"})
        for endpoint in (ACCESS_TOKEN, "cgi-bin/qrcode/create", "cgi-bin/media/upload"):
            sandbox.state.faults.add(Fault(endpoint, delay_seconds=DOOR_LIMIT_SECONDS + 2, times=None))

        seconds, response = await timed(server.push(text_xml("o_waiting", "海报")))

        assert response.status_code == 200 and response.text == "success"
        assert seconds < DOOR_LIMIT_SECONDS
        # Once WeChat answers again, the job sends the poster the chat could not wait for.
        sandbox.state.faults.clear()
        runtime.queue.base_backoff_seconds = 0  # a retry is due at once, so that drain() runs it
        await runtime.queue.drain("test", job_handlers(runtime))
        (sent,) = sandbox.state.calls.received(endpoint="cgi-bin/message/custom/send")
        assert sent.body["touser"] == "o_waiting" and sent.body["msgtype"] == "image"
