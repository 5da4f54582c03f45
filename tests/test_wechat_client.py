"""The WeChat client against the sandbox over real HTTP, with the token cached in real Redis."""

from __future__ import annotations

import asyncio
import io
import socket
import sys
import time
from pathlib import Path

import pytest
import zxingcpp
from PIL import Image

from wechat import (
    WeChatClient,
    WeChatError,
    WeChatRateLimited,
    WeChatRefused,
    WeChatTimeout,
    WeChatTokenRejected,
    WeChatUnavailable,
)
from sandbox import Fault, RunningSandbox, openid_for, unionid_for
from settings import SANDBOX_MINIAPP_APP_ID, SANDBOX_OA_APP_ID, SANDBOX_OA_APP_SECRET
from tests.wechat_fixtures import REDIS_URL

PROJECT_ROOT = Path(__file__).resolve().parents[1]
STABLE_TOKEN = "cgi-bin/stable_token"
USER_INFO = "cgi-bin/user/info"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def calls_to(sandbox: RunningSandbox, endpoint: str):
    return sandbox.state.calls.received(endpoint)


def tokens_sent(sandbox: RunningSandbox, endpoint: str) -> list[str]:
    return [call.query["access_token"] for call in calls_to(sandbox, endpoint)]


# --- the access token ------------------------------------------------------------------------


async def test_the_token_is_fetched_once_then_read_from_redis(sandbox, oa_client, wechat_redis, redis_prefix):
    await oa_client.user.info("o-alice")
    await oa_client.user.info("o-bob")

    assert len(calls_to(sandbox, STABLE_TOKEN)) == 1
    key = f"{redis_prefix}wechat:token:{SANDBOX_OA_APP_ID}"
    assert (await wechat_redis.get(key)).decode() == tokens_sent(sandbox, USER_INFO)[0]
    assert 0 < await wechat_redis.ttl(key) <= 7200 - 300


async def test_concurrent_callers_in_one_process_share_one_fetch(sandbox, oa_client):
    sandbox.state.faults.add(Fault(STABLE_TOKEN, delay_seconds=0.2))

    await asyncio.gather(*(oa_client.user.info(f"o-{n}") for n in range(10)))

    assert len(calls_to(sandbox, STABLE_TOKEN)) == 1
    assert len(set(tokens_sent(sandbox, USER_INFO))) == 1


TOKEN_RACE_WORKER = """
import asyncio, sys
import redis.asyncio as aioredis
from wechat import WeChatClient
from settings import SANDBOX_OA_APP_ID, SANDBOX_OA_APP_SECRET

async def main(base_url, redis_url, key_prefix, calls):
    redis = aioredis.from_url(redis_url)
    async with WeChatClient(base_url, SANDBOX_OA_APP_ID, SANDBOX_OA_APP_SECRET, redis, key_prefix, timeout=5) as client:
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        await asyncio.gather(*(client.user.info(f"o-{n}") for n in range(calls)))
    await redis.aclose()

asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])))
"""


async def test_two_processes_fetch_the_token_once(sandbox, redis_prefix):
    # Slow enough that both processes ask while the first fetch is under way.
    sandbox.state.faults.add(Fault(STABLE_TOKEN, delay_seconds=0.3))
    workers = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", TOKEN_RACE_WORKER, sandbox.base_url, REDIS_URL, redis_prefix, "10",
            cwd=PROJECT_ROOT, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for _ in range(2)
    ]
    for worker in workers:
        assert await asyncio.wait_for(worker.stdout.readline(), 30) == b"ready\n", await worker.stderr.read()
    for worker in workers:
        worker.stdin.write(b"go\n")
        await worker.stdin.drain()
    for worker in workers:
        _, stderr = await asyncio.wait_for(worker.communicate(), 30)
        assert worker.returncode == 0, stderr.decode()

    assert len(calls_to(sandbox, STABLE_TOKEN)) == 1
    assert len(calls_to(sandbox, USER_INFO)) == 20
    assert len(set(tokens_sent(sandbox, USER_INFO))) == 1


async def test_a_rejected_token_is_refreshed_once_and_the_call_retried_once(sandbox, oa_client):
    await oa_client.user.info("o-alice")
    sandbox.state.tokens.expire_all()

    answer = await oa_client.user.info("o-alice")

    assert answer["openid"] == "o-alice"
    assert len(calls_to(sandbox, STABLE_TOKEN)) == 2
    first, rejected, retried = tokens_sent(sandbox, USER_INFO)
    assert rejected == first and retried != first


async def test_a_token_wechat_still_hands_out_after_rejecting_it_is_force_refreshed(sandbox, oa_client):
    await oa_client.user.info("o-alice")
    sandbox.state.faults.add(Fault(USER_INFO, errcode=40001))

    await oa_client.user.info("o-alice")

    refreshes = [call.body["force_refresh"] for call in calls_to(sandbox, STABLE_TOKEN)[1:]]
    assert refreshes == [False, True]
    first, rejected, retried = tokens_sent(sandbox, USER_INFO)
    assert rejected == first and retried != first


@pytest.mark.parametrize("errcode", [40001, 40014, 42001])
async def test_a_token_rejected_again_after_the_refresh_is_raised_without_looping(sandbox, oa_client, errcode):
    await oa_client.user.info("o-alice")
    sandbox.state.faults.add(Fault(USER_INFO, errcode=errcode, times=None))

    with pytest.raises(WeChatTokenRejected) as raised:
        await oa_client.user.info("o-alice")

    assert raised.value.errcode == errcode
    assert len(calls_to(sandbox, USER_INFO)) == 3  # the first call, the rejected one, its single retry


async def test_a_refresh_keeps_the_token_another_process_already_stored(sandbox, make_wechat_client):
    first_process = make_wechat_client(SANDBOX_OA_APP_ID, SANDBOX_OA_APP_SECRET)
    second_process = make_wechat_client(SANDBOX_OA_APP_ID, SANDBOX_OA_APP_SECRET)
    stale = await first_process.token.get()
    sandbox.state.tokens.expire_all()

    fresh = await first_process.token.refresh(rejected=stale)

    assert fresh != stale
    assert await second_process.token.refresh(rejected=stale) == fresh
    assert len(calls_to(sandbox, STABLE_TOKEN)) == 2


async def test_a_wrong_secret_is_reported(make_wechat_client):
    client = make_wechat_client(SANDBOX_OA_APP_ID, "not-the-secret")

    with pytest.raises(WeChatError) as raised:
        await client.user.info("o-alice")

    assert (raised.value.errcode, raised.value.endpoint) == (40125, STABLE_TOKEN)


# --- errors, timeouts and metrics ------------------------------------------------------------


@pytest.mark.parametrize("errcode", [45009, 45011])
async def test_a_spent_quota_is_a_rate_limit_error_and_not_retried(sandbox, oa_client, errcode):
    sandbox.state.faults.add(Fault("cgi-bin/qrcode/create", errcode=errcode))

    with pytest.raises(WeChatRateLimited) as raised:
        await oa_client.qrcode.create("promoter:42")

    assert (raised.value.errcode, raised.value.endpoint) == (errcode, "cgi-bin/qrcode/create")
    assert len(calls_to(sandbox, "cgi-bin/qrcode/create")) == 1


async def test_a_refused_subscription_is_its_own_error(sandbox, oa_client):
    sandbox.state.faults.add(Fault("cgi-bin/message/subscribe/bizsend", errcode=43101))

    with pytest.raises(WeChatRefused):
        await oa_client.message.send_subscription("o-alice", "tpl-commission", {"thing1": "佣金到账"})


async def test_a_slow_wechat_raises_a_timeout_promptly(sandbox, make_wechat_client):
    observed = []
    client = make_wechat_client(
        SANDBOX_OA_APP_ID, SANDBOX_OA_APP_SECRET, timeout=0.2, on_call=lambda *call: observed.append(call)
    )
    await client.token.get()
    sandbox.state.faults.add(Fault("cgi-bin/qrcode/create", delay_seconds=3))

    started = time.monotonic()
    with pytest.raises(WeChatTimeout):
        await client.qrcode.create("promoter:42")

    assert time.monotonic() - started < 1.5
    endpoint, errcode, seconds = observed[-1]
    assert (endpoint, errcode) == ("cgi-bin/qrcode/create", None) and seconds < 1.5


async def test_an_unreachable_wechat_is_reported(wechat_redis, redis_prefix):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    client = WeChatClient(
        f"http://127.0.0.1:{closed_port}", SANDBOX_OA_APP_ID, SANDBOX_OA_APP_SECRET, wechat_redis, redis_prefix, 1.0
    )
    async with client:
        with pytest.raises(WeChatUnavailable):
            await client.user.info("o-alice")


async def test_every_exchange_is_reported_to_the_observer(sandbox, make_wechat_client):
    observed = []
    client = make_wechat_client(
        SANDBOX_OA_APP_ID, SANDBOX_OA_APP_SECRET, on_call=lambda *call: observed.append(call)
    )
    sandbox.state.faults.add(Fault("cgi-bin/qrcode/create", errcode=45009))

    with pytest.raises(WeChatRateLimited):
        await client.qrcode.create("promoter:42")
    await client.qrcode.create("promoter:42")

    assert [(endpoint, errcode) for endpoint, errcode, _ in observed] == [
        (STABLE_TOKEN, 0),
        ("cgi-bin/qrcode/create", 45009),
        ("cgi-bin/qrcode/create", 0),
    ]


# --- the endpoints ---------------------------------------------------------------------------


async def test_temporary_and_permanent_qr_codes(sandbox, oa_client):
    temporary = await oa_client.qrcode.create("promoter:42", expire_seconds=3600)
    permanent = await oa_client.qrcode.create("promoter:42", permanent=True)

    assert temporary["expire_seconds"] == 3600 and temporary["url"].startswith("http://weixin.qq.com/q/")
    assert "expire_seconds" not in permanent and permanent["ticket"] != temporary["ticket"]
    sent = [call.body for call in calls_to(sandbox, "cgi-bin/qrcode/create")]
    assert sent == [
        {"action_name": "QR_STR_SCENE", "action_info": {"scene": {"scene_str": "promoter:42"}}, "expire_seconds": 3600},
        {"action_name": "QR_LIMIT_STR_SCENE", "action_info": {"scene": {"scene_str": "promoter:42"}}},
    ]


async def test_a_qr_code_cannot_be_both_permanent_and_expiring(oa_client):
    with pytest.raises(ValueError):
        await oa_client.qrcode.create("promoter:42", expire_seconds=60, permanent=True)


async def test_uploaded_media_can_be_sent_as_an_image(sandbox, oa_client):
    poster = b"\xff\xd8\xff poster bytes"

    uploaded = await oa_client.media.upload("image", "poster.jpg", poster)
    await oa_client.message.send_image("o-alice", uploaded["media_id"])

    assert uploaded["type"] == "image"
    assert sandbox.state.media.get(uploaded["media_id"]).content == poster
    (upload,) = calls_to(sandbox, "cgi-bin/media/upload")
    assert upload.query["type"] == "image" and upload.multipart_fields == ("media",)


async def test_an_image_message_with_unknown_media_is_an_error(oa_client):
    with pytest.raises(WeChatError) as raised:
        await oa_client.message.send_image("o-alice", "no-such-media")

    assert raised.value.errcode == 40007


async def test_chinese_text_reaches_wechat_unescaped(sandbox, oa_client):
    await oa_client.message.send_text("o-alice", "你好，推客！佣金 ¥12.30 已到账")

    (sent,) = calls_to(sandbox, "cgi-bin/message/custom/send")
    assert "你好，推客！佣金 ¥12.30 已到账" in sent.raw_body
    assert "\\u" not in sent.raw_body
    assert sent.body == {"touser": "o-alice", "msgtype": "text", "text": {"content": "你好，推客！佣金 ¥12.30 已到账"}}


async def test_a_template_message_returns_its_msgid(sandbox, oa_client):
    miniprogram = {"appid": SANDBOX_MINIAPP_APP_ID, "pagepath": "pages/team/index"}

    answer = await oa_client.message.send_template(
        "o-alice", "tpl-order", {"thing1": "新订单", "amount2": "¥99.00"}, miniprogram=miniprogram
    )

    assert isinstance(answer["msgid"], int)
    (sent,) = calls_to(sandbox, "cgi-bin/message/template/send")
    assert sent.body == {
        "touser": "o-alice",
        "template_id": "tpl-order",
        "data": {"thing1": {"value": "新订单"}, "amount2": {"value": "¥99.00"}},
        "miniprogram": miniprogram,
    }


async def test_a_mini_program_subscription_message(sandbox, miniapp_client):
    await miniapp_client.miniapp.send_subscribe("o-alice", "tpl-paid", {"amount1": "¥5.00"}, page="pages/wallet/index")

    (sent,) = calls_to(sandbox, "cgi-bin/message/subscribe/send")
    assert sent.body["page"] == "pages/wallet/index" and sent.query["access_token"]


async def test_a_mini_program_code_is_a_png_of_the_scene(sandbox, miniapp_client):
    image = await miniapp_client.miniapp.get_unlimited_code("p=42&c=7", "pages/index/index")

    assert image.startswith(PNG_SIGNATURE)
    (decoded,) = zxingcpp.read_barcodes(Image.open(io.BytesIO(image)))
    assert decoded.text == "p=42&c=7"


async def test_a_mini_program_code_error_sent_as_json_with_http_200_is_raised(miniapp_client):
    with pytest.raises(WeChatError) as raised:
        await miniapp_client.miniapp.get_unlimited_code("p=42", "/pages/index/index")

    assert (raised.value.errcode, raised.value.endpoint) == (41030, "wxa/getwxacodeunlimit")


@pytest.mark.parametrize("scene", ["", "x" * 33, "推客42", "a b", "p%3D42"])
async def test_an_invalid_scene_is_refused_before_calling_wechat(sandbox, miniapp_client, scene):
    with pytest.raises(ValueError):
        await miniapp_client.miniapp.get_unlimited_code(scene, "pages/index/index")

    assert sandbox.state.calls.received() == []


async def test_a_login_code_is_exchanged_without_an_access_token(sandbox, miniapp_client):
    session = await miniapp_client.miniapp.code_to_session("alice")

    assert session["openid"] == openid_for(SANDBOX_MINIAPP_APP_ID, "alice")
    assert session["unionid"] == unionid_for("alice")
    (call,) = sandbox.state.calls.received()
    assert call.endpoint == "sns/jscode2session" and "access_token" not in call.query


async def test_an_invalid_login_code_is_an_error(miniapp_client):
    with pytest.raises(WeChatError) as raised:
        await miniapp_client.miniapp.code_to_session("invalid")

    assert raised.value.errcode == 40029


async def test_a_follower_has_the_unionid_of_the_same_user_in_the_mini_program(oa_client, miniapp_client):
    follower = await oa_client.user.info(openid_for(SANDBOX_OA_APP_ID, "alice"))
    session = await miniapp_client.miniapp.code_to_session("alice")

    assert follower["subscribe"] == 1 and "nickname" not in follower
    assert follower["unionid"] == session["unionid"]
    assert follower["openid"] != session["openid"]
