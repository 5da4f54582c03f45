"""/wechat refuses what a forger can make of one signed query: a stale timestamp, its nonce with another body,
and plaintext when the account is in safe mode; WeChat's own repetitions are still answered alike."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timezone

import pytest
from wechatpy import parse_message

from bot.dedup import Admission, Verdict
from bot.push_codec import PUSH_WINDOW_SECONDS
from bot.simulate import PushSigner, event_xml, text_xml
from distribution.scene import promoter_scene
from stores.members import new_member_fields
from tests.conftest import start_server
from tests.test_wechat_push import AES_KEY


async def add_promoter(runtime, nickname: str = "小王") -> dict:
    member = {**new_member_fields(datetime.now(timezone.utc)), "nickname": nickname, "oa_openid": f"o_{nickname}"}
    await runtime.db.members.insert_one(member)
    return member


def forged_follow(promoter: dict, openid: str = "o_made_up") -> str:
    return event_xml(openid, "subscribe", f"qrscene_{promoter_scene(promoter['_id'])}")


async def door_state(server) -> dict:
    """What a push can change: members, binds, kept pushes and the door's keys in Redis."""
    runtime = server.runtime
    prefix = runtime.settings.redis_prefix
    return {
        "members": sorted(m.get("oa_openid") or "" for m in await runtime.db.members.find().to_list()),
        "bound": await runtime.db.members.count_documents({"upline_id": {"$ne": None}}),
        "bind_log": await runtime.db.bind_log.count_documents({}),
        "kept": await runtime.db.pending_pushes.count_documents({}),
        "claims": sorted([k async for k in runtime.redis.scan_iter(match=f"{prefix}push:*")]),
        "nonces": sorted([k async for k in runtime.redis.scan_iter(match=f"{prefix}nonce:*")]),
    }


async def post(server, query: dict, body: bytes):
    return await server.http.post("/wechat", params=query, content=body)


SENT_AT = {
    "the epoch's first second": lambda: 1,
    "just too long ago": lambda: int(time.time()) - PUSH_WINDOW_SECONDS - 5,
    "just too far ahead": lambda: int(time.time()) + PUSH_WINDOW_SECONDS + 5,
}


@pytest.mark.parametrize("sent_at", sorted(SENT_AT))
async def test_a_correctly_signed_push_with_a_timestamp_out_of_the_window_is_refused(server, sent_at):
    promoter = await add_promoter(server.runtime)
    before = await door_state(server)
    query, body = server.signer.sign(forged_follow(promoter), timestamp=str(SENT_AT[sent_at]()))
    response = await post(server, query, body)
    assert response.status_code == 403 and "timestamp" in response.text
    assert await door_state(server) == before


async def test_a_timestamp_inside_the_window_either_way_is_accepted(server):
    for offset in (-PUSH_WINDOW_SECONDS + 5, PUSH_WINDOW_SECONDS - 5):
        query, body = server.signer.sign(text_xml("o_clock", "hi"), timestamp=str(int(time.time() + offset)))
        response = await post(server, query, body)
        assert parse_message(response.text).content == server.runtime.settings.default_reply


async def test_url_verification_with_a_stale_timestamp_is_refused(server):
    query, _ = server.signer.sign("", timestamp="1")
    response = await server.http.get("/wechat", params={**query, "echostr": "echo"})
    assert response.status_code == 403 and "echo" not in response.text


async def test_a_seen_nonce_with_another_body_is_refused_and_changes_nothing(server):
    """The attacker's probe: the signed query of a harmless text, reused to bind a made-up member to a promoter."""
    promoter = await add_promoter(server.runtime)
    query, body = server.signer.sign(text_xml("o_real", "你好"))
    assert (await post(server, query, body)).status_code == 200
    before = await door_state(server)

    _, forged_body = server.signer.sign(forged_follow(promoter))
    response = await post(server, query, forged_body)
    assert response.status_code == 403 and "nonce" in response.text
    assert await door_state(server) == before
    assert await server.runtime.members.by_oa_openid("o_made_up") is None

    # Nor the other way round: a follow's nonce does not carry a text, nor another follow.
    query, body = server.signer.sign(event_xml("o_follower", "subscribe"))
    assert (await post(server, query, body)).status_code == 200
    before = await door_state(server)
    for other in (text_xml("o_other", "hi"), forged_follow(promoter, "o_made_up_2")):
        response = await post(server, query, other.encode())
        assert response.status_code == 403
    assert await door_state(server) == before


async def test_a_retry_with_the_same_nonce_and_body_is_answered_alike_and_works_once(server, sandbox):
    promoter = await add_promoter(server.runtime)
    query, body = server.signer.sign(forged_follow(promoter, "o_new_follower"))
    first = await post(server, query, body)
    assert "小王" in parse_message(first.text).content
    retries = await asyncio.gather(*(post(server, query, body) for _ in range(3)))
    assert {r.status_code for r in retries} == {200} and {r.text for r in retries} == {first.text}
    await server.runtime.relations.apply_follow_ups()
    promoter = await server.runtime.members.get(promoter["_id"])
    assert (promoter["direct_count"], await server.runtime.db.bind_log.count_documents({"result": "bound"})) == (1, 1)

    text_query, text_body = server.signer.sign(text_xml("o_new_follower", "hello", msg_id=77))
    replies = {(await post(server, text_query, text_body)).text for _ in range(3)}
    assert len(replies) == 1 and parse_message(replies.pop()).content == server.runtime.settings.default_reply


async def test_a_push_is_remembered_as_long_as_its_nonce_can_bring_it_back(make_settings):
    """A replay of the very same signed push is answered from memory, never done again, however short the
    configured memory of retries."""
    async for server in start_server(make_settings(PUSH_DEDUP_SECONDS="60")):
        query, body = server.signer.sign(event_xml("o_short_memory", "subscribe"))
        assert (await post(server, query, body)).status_code == 200
        prefix = server.runtime.settings.redis_prefix
        (claim,) = [k async for k in server.runtime.redis.scan_iter(match=f"{prefix}push:*")]
        (nonce,) = [k async for k in server.runtime.redis.scan_iter(match=f"{prefix}nonce:*")]
        assert await server.runtime.redis.ttl(claim) >= await server.runtime.redis.ttl(nonce) > 60


async def test_a_retry_of_the_same_push_with_a_fresh_nonce_is_answered_alike(server):
    xml = event_xml("o_fresh_nonce", "subscribe", at=int(time.time()))
    replies = [await server.push(xml) for _ in range(3)]  # each signed anew: another nonce each time
    assert len({r.text for r in replies}) == 1 and replies[0].status_code == 200
    assert await server.runtime.db.members.count_documents({"oa_openid": "o_fresh_nonce"}) == 1


async def test_concurrent_pushes_are_each_admitted_on_their_own(server):
    """Pushes that reach Redis together are decided one by one: new texts answered, retries of a follow given
    its reply, forgeries with its nonce refused."""
    promoter = await add_promoter(server.runtime)
    query, body = server.signer.sign(forged_follow(promoter, "o_together"))
    first = await post(server, query, body)
    texts = [server.signer.sign(text_xml(f"o_text_{n}", "hi")) for n in range(10)]
    forgeries = [forged_follow(promoter, f"o_forged_{n}").encode() for n in range(2)]
    answers = await asyncio.gather(*(post(server, q, b) for q, b in texts),
                                   *(post(server, query, body) for _ in range(3)),
                                   *(post(server, query, forged) for forged in forgeries))
    default = server.runtime.settings.default_reply
    assert [parse_message(a.text).content for a in answers[:10]] == [default] * 10
    assert [a.text for a in answers[10:13]] == [first.text] * 3
    assert [a.status_code for a in answers[13:]] == [403, 403]
    assert await server.runtime.db.members.count_documents({"oa_openid": {"$regex": "^o_forged"}}) == 0


async def test_one_batch_of_admissions_answers_each_in_its_order(server):
    dedup = server.door.dedup
    a, b, c, d, e = (parse_message(text_xml("o_batch", "hi", msg_id=n)) for n in range(1, 6))
    for done in (a, c):
        assert await dedup.claim(done)
        await dedup.remember(done, f"reply {done.id}")
    await dedup.claim(e)  # at work elsewhere: no reply yet
    admissions = await asyncio.gather(  # one turn of the loop: one call of the script
        dedup.admit("t:1", a, claim=True), dedup.admit("t:2", b, claim=True), dedup.admit("t:3", c, claim=True),
        dedup.admit("t:4", d, claim=False), dedup.admit("t:2", d, claim=False), dedup.admit("t:5", e, claim=True),
        dedup.admit("t:1", a, claim=True))
    assert admissions == [
        Admission(Verdict.CLAIMED_BEFORE, "reply 1"), Admission(Verdict.CLAIMED),
        Admission(Verdict.CLAIMED_BEFORE, "reply 3"), Admission(Verdict.ADMITTED), Admission(Verdict.REPLAYED),
        Admission(Verdict.CLAIMED_BEFORE), Admission(Verdict.CLAIMED_BEFORE, "reply 1"),
    ]


async def test_nonces_are_shared_by_every_process(make_settings):
    settings = make_settings()
    async for first in start_server(settings):
        async for second in start_server(settings):
            promoter = await add_promoter(first.runtime)
            query, body = first.signer.sign(text_xml("o_real", "你好"))
            assert (await post(first, query, body)).status_code == 200
            _, forged = first.signer.sign(forged_follow(promoter))
            assert (await post(second, query, forged)).status_code == 403
            assert await second.runtime.members.by_oa_openid("o_made_up") is None


async def test_plaintext_is_refused_when_the_aes_key_is_set(make_settings):
    async for server in start_server(make_settings(WECHAT_AES_KEY=AES_KEY)):
        promoter = await add_promoter(server.runtime)
        before = await door_state(server)
        plain = PushSigner(server.signer.token, server.signer.app_id)
        for xml in (forged_follow(promoter), text_xml("o_plain", "hi")):
            query, body = plain.sign(xml)
            for claimed_type in ({}, {"encrypt_type": "raw"}):
                response = await post(server, {**query, **claimed_type}, body)
                assert response.status_code == 403 and "encrypt_type=aes" in response.text
        assert await door_state(server) == before

        query, body = server.signer.sign(forged_follow(promoter, "o_encrypted"))
        response = await post(server, query, body)
        assert "小王" in parse_message(server.signer.open_reply(query, response.text)).content


async def test_plaintext_is_accepted_beside_the_aes_key_only_with_the_compatibility_switch(make_settings):
    async for server in start_server(make_settings(WECHAT_AES_KEY=AES_KEY, WECHAT_ACCEPT_PLAINTEXT="1")):
        plain = PushSigner(server.signer.token, server.signer.app_id)
        query, body = plain.sign(event_xml("o_migrating", "subscribe"))
        response = await post(server, query, body)
        assert parse_message(response.text).content == server.runtime.settings.welcome_text
        # Its nonce is remembered as in plain mode: the query carries no other body.
        _, other = plain.sign(event_xml("o_made_up", "subscribe"))
        assert (await post(server, query, other)).status_code == 403
        assert await server.runtime.members.by_oa_openid("o_made_up") is None
