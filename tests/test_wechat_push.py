"""/wechat: URL verification, every push type, safe mode, bad input, retries."""

from __future__ import annotations

import asyncio
import dataclasses
import time

import pytest
from wechatpy import parse_message
from wechatpy.utils import WeChatSigner

from bot.router import MessageRouter, event, fallback
from bot.simulate import PushSigner, event_xml, text_xml
from tests.conftest import start_server
from tests.push_samples import EVENTS, MESSAGES, UNKNOWN_MESSAGE, fill

AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"


def reply_text(body: str) -> str:
    return parse_message(body).content


async def test_url_verification_echoes_only_a_signed_echostr(server):
    good = server.signer.verification_query("echo-1234")
    response = await server.http.get("/wechat", params=good)
    assert (response.status_code, response.text) == (200, "echo-1234")

    forged = {**good, "signature": "0" * 40}
    response = await server.http.get("/wechat", params=forged)
    assert response.status_code == 403 and "echo-1234" not in response.text
    assert (await server.http.get("/wechat", params={"echostr": "x"})).status_code == 403


@pytest.mark.parametrize("name", sorted(MESSAGES))
async def test_every_message_type_is_answered(server, name):
    response = await server.push(fill(MESSAGES[name], "o_msg", int(time.time())))
    assert response.status_code == 200
    if name == "text":
        assert reply_text(response.text) == server.runtime.settings.default_reply
    else:
        assert response.text == "success"


@pytest.mark.parametrize("name", sorted(EVENTS))
async def test_every_event_type_is_answered(server, name):
    response = await server.push(fill(EVENTS[name], f"o_{name}", int(time.time())))
    assert response.status_code == 200
    if name.startswith("subscribe") and "msg" not in name:
        assert reply_text(response.text) == server.runtime.settings.welcome_text
    else:
        assert response.text == "success"


async def test_unknown_message_type_gets_success(server):
    response = await server.push(fill(UNKNOWN_MESSAGE, "o_x", int(time.time())))
    assert (response.status_code, response.text) == (200, "success")


async def test_subscribe_unsubscribe_resubscribe_keeps_one_member(server):
    at = int(time.time())
    await server.push(event_xml("o_cycle", "subscribe", at=at))
    first = await server.runtime.members.by_oa_openid("o_cycle")
    assert first["subscribed"] is True and first["ancestor_ids"] == [] and first["team_count"] == 0

    await server.push(event_xml("o_cycle", "unsubscribe", at=at + 1))
    gone = await server.runtime.members.by_oa_openid("o_cycle")
    assert gone["_id"] == first["_id"] and gone["subscribed"] is False

    await server.push(event_xml("o_cycle", "subscribe", at=at + 2))
    back = await server.runtime.members.by_oa_openid("o_cycle")
    assert back["_id"] == first["_id"] and back["subscribed"] is True
    assert await server.runtime.db.members.count_documents({}) == 1


async def test_safe_mode_round_trip(make_settings):
    async for server in start_server(make_settings(WECHAT_AES_KEY=AES_KEY, WECHAT_ACCEPT_PLAINTEXT="1")):
        query, body = server.signer.sign(event_xml("o_safe", "subscribe"))
        assert b"o_safe" not in body  # the openid travels encrypted
        response = await server.http.post("/wechat", params=query, content=body)
        assert response.status_code == 200
        assert "<Encrypt>" in response.text
        assert reply_text(server.signer.open_reply(query, response.text)) == server.runtime.settings.welcome_text
        assert await server.runtime.members.by_oa_openid("o_safe") is not None

        # Compatible mode, switched on for a migration: plaintext pushes still work while the key is configured.
        plain = PushSigner(server.signer.token, server.signer.app_id)
        query, body = plain.sign(text_xml("o_safe", "hi"))
        response = await server.http.post("/wechat", params=query, content=body)
        assert reply_text(response.text) == server.runtime.settings.default_reply


async def test_tencents_published_safe_mode_vector(make_settings):
    """WXBizMsgCrypt's sample: token spamtest, its AES key and app id, its msg_signature."""
    encrypted = (
        "hyzAe4OzmOMbd6TvGdIOO6uBmdJoD0Fk53REIHvxYtJlE2B655HuD0m8KUePWB3+LrPXo87wzQ1QLvbeUgmBM4x6F8PGHQHFVAFmOD2LdJF9"
        "FrXpbUAh0B5GIItb52sn896wVsMSHGuPE328HnRGBcrS7C41IzDWyWNlZkyyXwon8T332jisa+h6tEDYsVticbSnyU8dKOIbgU6ux5VTjg3y"
        "t+WGzjlpKn6NPhRjpA912xMezR4kw6KWwMrCVKSVCZciVGCgavjIQ6X8tCOp3yZbGpy0VxpAe+77TszTfRd5RJSVO/HTnifJpXgCSUdUue1v"
        "6h0EIBYYI1BD1DlD+C0CR8e6OewpusjZ4uBl9FyJvnhvQl+q5rv1ixrcpCumEPo5MJSgM9ehVsNPfUM669WuMyVWQLCzpu9GhglF2PE="
    )
    # The sample's token is shorter than a deployment may configure: it is put in after the settings are checked.
    settings = dataclasses.replace(make_settings(WECHAT_APP_ID="wx2c2769f8efd9abc2", WECHAT_AES_KEY=AES_KEY),
                                   wechat_token="spamtest")
    async for server in start_server(settings):
        timestamp, nonce = "1409735669", "1320562132"
        server.door.codec.clock = lambda: int(timestamp) + 1  # the sample was signed in 2014
        signer = WeChatSigner()
        signer.add_data("spamtest", timestamp, nonce)
        query = {"timestamp": timestamp, "nonce": nonce, "signature": signer.signature, "encrypt_type": "aes",
                 "msg_signature": "5d197aaffba7e9b25a30732f161a50dee96bd5fa"}
        body = f"<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName><Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>"
        response = await server.http.post("/wechat", params=query, content=body)
        assert response.status_code == 200
        reply = parse_message(server.signer.open_reply(query, response.text))
        assert reply.target == "oyORnuP8q7ou2gfYjqLzSIWZf0rs"  # the sample's sender gets the reply
        assert reply.content == server.runtime.settings.default_reply

        tampered = {**query, "msg_signature": "5d197aaffba7e9b25a30732f161a50dee96bd5fb"}
        assert (await server.http.post("/wechat", params=tampered, content=body)).status_code == 403


async def _nothing_written(server) -> bool:
    members = await server.runtime.db.members.count_documents({})
    kept = await server.runtime.db.pending_pushes.count_documents({})
    prefix = server.runtime.settings.redis_prefix
    door_keys = [k for pattern in ("push:*", "nonce:*")
                 async for k in server.runtime.redis.scan_iter(match=f"{prefix}{pattern}")]
    return members == 0 and kept == 0 and door_keys == []


async def test_wrong_signature_changes_nothing(server):
    query, body = server.signer.sign(event_xml("o_forged", "subscribe"))
    for forged in ({**query, "signature": "f" * 40}, {**query, "timestamp": "1"}, {"nonce": "n"}):
        response = await server.http.post("/wechat", params=forged, content=body)
        assert response.status_code == 403
    assert await _nothing_written(server)


async def test_safe_mode_push_with_forged_msg_signature_changes_nothing(make_settings):
    async for server in start_server(make_settings(WECHAT_AES_KEY=AES_KEY)):
        query, body = server.signer.sign(event_xml("o_forged", "subscribe"))
        response = await server.http.post("/wechat", params={**query, "msg_signature": "0" * 40}, content=body)
        assert response.status_code == 403
        assert await _nothing_written(server)


BOMB = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
    '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]><xml><ToUserName>a</ToUserName><FromUserName>&lol3;'
    "</FromUserName><CreateTime>1</CreateTime><MsgType>text</MsgType><Content>x</Content><MsgId>1</MsgId></xml>"
)
EXTERNAL_ENTITY = '<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><xml><Content>&e;</Content></xml>'


@pytest.mark.parametrize(
    "body",
    [
        "",
        "   ",
        "<xml><ToUserName>unclosed",
        "not xml at all",
        BOMB,
        EXTERNAL_ENTITY,
        "<xml><!-- comment --><MsgType>text</MsgType></xml>",
        "<xml><ToUserName>a</ToUserName></xml>",  # no MsgType
        "<xml>just text</xml>",
        "<other><MsgType>text</MsgType></other>",
        "<xml><ToUserName>a</ToUserName><FromUserName>b</FromUserName><CreateTime>soon</CreateTime>"
        "<MsgType>text</MsgType><Content>x</Content><MsgId>1</MsgId></xml>",
        "<xml><ToUserName>a</ToUserName><FromUserName>b</FromUserName><CreateTime>1</CreateTime>"
        "<MsgType>text</MsgType><Content>x</Content><MsgId>many</MsgId></xml>",
    ],
)
async def test_bad_xml_is_a_400_and_writes_nothing(server, body):
    query, _ = server.signer.sign("<xml/>")
    response = await server.http.post("/wechat", params=query, content=body.encode())
    assert response.status_code == 400, response.text
    assert response.text  # a short message says why
    assert await _nothing_written(server)


async def test_encrypted_push_without_a_configured_key_is_a_400(server):
    query, body = PushSigner(server.signer.token, server.signer.app_id, AES_KEY).sign(text_xml("o", "x"))
    response = await server.http.post("/wechat", params=query, content=body)
    assert response.status_code == 400 and "WECHAT_AES_KEY" in response.text


async def test_oversized_body_is_refused_with_413(server):
    query, _ = server.signer.sign("<xml/>")
    huge = b"<xml>" + b"x" * (1024 * 1024 + 1) + b"</xml>"
    response = await server.http.post("/wechat", params=query, content=huge)
    assert response.status_code == 413

    async def chunked():  # no Content-Length: counted as it arrives
        for _ in range(17):
            yield b"y" * 65536

    response = await server.http.post("/wechat", params=query, content=chunked())
    assert response.status_code == 413
    assert await _nothing_written(server)


async def test_three_deliveries_of_one_push_do_the_work_once_and_reply_alike(server):
    calls = []

    async def slow_welcome(push):
        calls.append(push.openid)
        await asyncio.sleep(0.3)  # the retries arrive while the first is still working
        return push.text(f"welcome #{len(calls)}")

    server.door.router = MessageRouter([event("subscribe", slow_welcome)], otherwise=fallback(slow_welcome))
    query, body = server.signer.sign(event_xml("o_retry", "subscribe", at=1700000000))
    concurrent = await asyncio.gather(*(server.http.post("/wechat", params=query, content=body) for _ in range(3)))
    late = await server.http.post("/wechat", params=query, content=body)  # after the first finished
    bodies = {r.text for r in (*concurrent, late)}
    assert calls == ["o_retry"]
    assert len(bodies) == 1 and reply_text(bodies.pop()) == "welcome #1"


async def test_retried_text_message_is_deduplicated_by_msgid(server):
    calls = []

    async def counting(push):
        calls.append(push.message.id)
        return push.text("hi")

    server.door.router = MessageRouter([], otherwise=fallback(counting))
    xml = text_xml("o_text", "hello", msg_id=42)
    for _ in range(3):
        assert reply_text((await server.push(xml)).text) == "hi"
    await server.push(text_xml("o_text", "hello", msg_id=43))
    assert calls == [42, 43]


async def test_a_failed_first_delivery_lets_the_retry_do_the_work(server):
    attempts = []

    async def flaky(push):
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("store went away")
        return push.text("done")

    server.door.router = MessageRouter([], otherwise=fallback(flaky))
    xml = text_xml("o_flaky", "hello", msg_id=7)
    assert (await server.push(xml)).status_code == 500
    assert reply_text((await server.push(xml)).text) == "done"
    assert len(attempts) == 2


async def test_a_reply_safe_to_repeat_is_answered_again_identically_without_a_claim(server):
    xml = text_xml("o_plain_text", "随便说点什么", msg_id=99, at=1700000000)
    replies = {(await server.push(xml)).text for _ in range(3)}
    assert len(replies) == 1 and reply_text(replies.pop()) == server.runtime.settings.default_reply
    assert [k async for k in server.runtime.redis.scan_iter(match=f"{server.runtime.settings.redis_prefix}push:*")] == []
