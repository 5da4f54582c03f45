"""Binding buyers to promoters: rules, modes, retries, races, depth, subtree moves."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest
from wechatpy import parse_message

from bot.simulate import event_xml
from bot.worker import job_handlers
from distribution.binding import BindingSettings, BindSource, UplineEligibility
from distribution.scene import promoter_scene
from stores.members import new_member_fields

NOW = datetime(2026, 11, 1, tzinfo=timezone.utc)


async def add_member(runtime, **fields) -> dict:
    member = {**new_member_fields(fields.pop("created_at", NOW)), **fields}
    await runtime.db.members.insert_one(member)
    return member


async def add_chain(runtime, depth: int) -> list[dict]:
    """root <- m1 <- ... <- m{depth}, bound through the service; returns them root first."""
    chain = [await add_member(runtime, nickname="root")]
    for level in range(depth):
        member = await add_member(runtime, nickname=f"m{level + 1}")
        outcome = await runtime.relations.bind(member, chain[-1]["_id"], BindSource.OA_SCAN, NOW)
        assert outcome.bound, outcome
        chain.append(member)
    await runtime.relations.apply_follow_ups()
    return chain


async def member(runtime, member_id: str) -> dict:
    return await runtime.members.get(member_id)


async def use_settings(runtime, **values) -> None:
    await runtime.merchant_settings.put(BindingSettings.from_dict(values))


async def drain(runtime) -> int:
    """What the worker does: follow up binds (counters, notices), then run the queued jobs."""
    await runtime.relations.apply_follow_ups()
    return await runtime.queue.drain("test", job_handlers(runtime))


def template_sends(sandbox) -> list:
    return sandbox.state.calls.received(endpoint="cgi-bin/message/template/send")


async def test_follow_through_a_promoters_code_binds_and_names_the_promoter(server, sandbox):
    runtime = server.runtime
    promoter = await add_member(runtime, nickname="小王", oa_openid="o_promoter")
    response = await server.push(event_xml("o_buyer", "subscribe", f"qrscene_{promoter_scene(promoter['_id'])}"))
    assert "小王" in parse_message(response.text).content

    buyer = await runtime.members.by_oa_openid("o_buyer")
    assert buyer["upline_id"] == promoter["_id"] and buyer["ancestor_ids"] == [promoter["_id"]]
    assert buyer["bind_source"] == "oa_scan" and buyer["bound_at"] is not None
    promoter = await member(runtime, promoter["_id"])
    assert (promoter["direct_count"], promoter["team_count"]) == (1, 1)

    await drain(runtime)
    (sent,) = template_sends(sandbox)
    assert sent.body["touser"] == "o_promoter" and sent.body["template_id"] == "sandbox_tpl_new_direct_member"


async def test_wechats_three_deliveries_bind_once_count_once_notify_once(server, sandbox):
    runtime = server.runtime
    promoter = await add_member(runtime, oa_openid="o_p3")
    query, body = server.signer.sign(event_xml("o_b3", "subscribe", f"qrscene_{promoter_scene(promoter['_id'])}", at=1700000001))
    replies = await asyncio.gather(*(server.http.post("/wechat", params=query, content=body) for _ in range(3)))
    assert len({r.text for r in replies}) == 1
    await drain(runtime)
    await drain(runtime)
    promoter = await member(runtime, promoter["_id"])
    assert (promoter["direct_count"], promoter["team_count"]) == (1, 1)
    assert await runtime.db.bind_log.count_documents({"result": "bound"}) == 1
    assert len(template_sends(sandbox)) == 1


async def test_a_notification_job_run_twice_sends_once(server, sandbox):
    runtime = server.runtime
    promoter = await add_member(runtime, oa_openid="o_twice")
    buyer = await add_member(runtime)
    await runtime.relations.bind(buyer, promoter["_id"], BindSource.SHARE_LINK, NOW)
    await runtime.relations.apply_follow_ups()
    (entry,) = await runtime.db.bind_log.find({"result": "bound"}).to_list()
    await runtime.notifications.enqueue([f"bind:{entry['_id']}"])  # a duplicate job
    await drain(runtime)
    assert len(template_sends(sandbox)) == 1
    assert (await runtime.db.notifications.find_one({"_id": f"bind:{entry['_id']}"}))["status"] == "sent"


async def test_scan_by_a_follower_binds_once_then_first_bind_wins(server):
    runtime = server.runtime
    first, second = await add_member(runtime, nickname="甲"), await add_member(runtime, nickname="乙")
    await server.push(event_xml("o_follower", "subscribe", at=1700000000))
    reply = await server.push(event_xml("o_follower", "SCAN", promoter_scene(first["_id"]), at=1700000001))
    assert "甲" in parse_message(reply.text).content
    reply = await server.push(event_xml("o_follower", "SCAN", promoter_scene(second["_id"]), at=1700000002))
    assert reply.text == "success"
    follower = await runtime.members.by_oa_openid("o_follower")
    assert follower["upline_id"] == first["_id"]
    refusal = await runtime.db.bind_log.find_one({"member_id": follower["_id"], "result": "refused"})
    assert refusal["reason"] == "already_bound" and refusal["upline_id"] == second["_id"]


@pytest.mark.parametrize("event_key", ["", "last_trade_no_4200001", "qrscene_", "qrscene_p:nothex", "qrscene_x:1"])
async def test_follows_without_a_promoter_scene_bind_nothing(server, event_key):
    await server.push(event_xml("o_plain", "subscribe", event_key or None))
    follower = await server.runtime.members.by_oa_openid("o_plain")
    assert follower["upline_id"] is None


async def test_a_hundred_concurrent_scans_of_five_codes_bind_exactly_one_upline(server):
    runtime = server.runtime
    promoters = [await add_member(runtime, nickname=f"p{i}") for i in range(5)]
    pushes = [event_xml("o_racer", "subscribe" if i == 0 else "SCAN",
                        ("qrscene_" if i == 0 else "") + promoter_scene(promoters[i % 5]["_id"]), at=1700000000 + i)
              for i in range(100)]
    responses = await asyncio.gather(*(server.push(xml) for xml in pushes))
    assert {r.status_code for r in responses} == {200}
    racer = await runtime.members.by_oa_openid("o_racer")
    assert racer["upline_id"] in {p["_id"] for p in promoters}
    counted = [await member(runtime, p["_id"]) for p in promoters]
    assert sum(p["direct_count"] for p in counted) == 1 and sum(p["team_count"] for p in counted) == 1
    assert await runtime.db.members.count_documents({"oa_openid": "o_racer"}) == 1
    await runtime.relations.apply_follow_ups()
    assert await runtime.db.bind_log.count_documents({"result": "bound"}) == 1


async def test_members_binding_under_each_other_at_once_never_make_a_cycle(server):
    runtime = server.runtime
    for _ in range(10):
        a, b = await add_member(runtime), await add_member(runtime)
        outcomes = await asyncio.gather(runtime.relations.bind(a, b["_id"], BindSource.OA_SCAN, NOW),
                                        runtime.relations.bind(b, a["_id"], BindSource.OA_SCAN, NOW))
        assert sorted(o.bound for o in outcomes) == [False, True]
        assert {o.reason for o in outcomes if not o.bound} == {"cycle"}
        a, b = await member(runtime, a["_id"]), await member(runtime, b["_id"])
        assert not (a["upline_id"] == b["_id"] and b["upline_id"] == a["_id"])


@pytest.mark.parametrize(
    "setup, reason",
    [
        ("self", "self"),
        ("cycle", "cycle"),
        ("unknown", "unknown_upline"),
        ("frozen_upline", "frozen_upline"),
        ("frozen_member", "frozen_member"),
        ("ineligible", "ineligible_upline"),
        ("not_new", "not_new_member"),
    ],
)
async def test_each_refusal_is_logged_with_its_reason(server, setup, reason):
    runtime = server.runtime
    chain = await add_chain(runtime, 2)  # root <- m1 <- m2
    buyer = await add_member(runtime, frozen=setup == "frozen_member", created_at=NOW - timedelta(days=1))
    upline_id = {"self": buyer["_id"], "cycle": chain[2]["_id"], "unknown": "0" * 24}.get(setup, chain[0]["_id"])
    member_id = chain[0]["_id"] if setup == "cycle" else buyer["_id"]
    if setup == "frozen_upline":
        await runtime.relations.set_frozen(chain[0]["_id"], True)
    if setup == "ineligible":
        await use_settings(runtime, upline_eligibility="reviewed")
    if setup == "not_new":
        await use_settings(runtime, bind_mode="new_members_only")
    outcome = await runtime.relations.bind(await member(runtime, member_id), upline_id, BindSource.MINIAPP_SCENE, NOW)
    assert (outcome.bound, outcome.reason) == (False, reason)
    entry = await runtime.db.bind_log.find_one({"member_id": member_id, "result": "refused"})
    assert entry["reason"] == reason and entry["source"] == "miniapp_scene"
    assert (await member(runtime, chain[0]["_id"]))["team_count"] == 2  # nothing moved


async def test_eligibility_rules(server):
    runtime = server.runtime
    approved = await add_member(runtime, promoter_status="approved")
    appointed = await add_member(runtime, promoter_status="appointed")
    big_spender = await add_member(runtime)
    await runtime.db["buyer_totals"].insert_one({"_id": big_spender["_id"], "order_count": 1, "order_fen": 50_000})
    nobody = await add_member(runtime)
    cases = {
        UplineEligibility.REVIEWED: {approved["_id"], appointed["_id"]},
        UplineEligibility.SPEND_THRESHOLD: {big_spender["_id"], appointed["_id"]},
        UplineEligibility.APPOINTED: {appointed["_id"]},
    }
    for eligibility, allowed in cases.items():
        await use_settings(runtime, upline_eligibility=eligibility.value, spend_threshold_fen=10_000)
        for candidate in (approved, appointed, big_spender, nobody):
            buyer = await add_member(runtime)
            outcome = await runtime.relations.bind(buyer, candidate["_id"], BindSource.OA_SCAN, NOW)
            assert outcome.bound == (candidate["_id"] in allowed), (eligibility, candidate)


async def test_new_members_only_binds_a_member_created_by_the_scan(server):
    runtime = server.runtime
    await use_settings(runtime, bind_mode="new_members_only")
    promoter = await add_member(runtime)
    await server.push(event_xml("o_old", "subscribe", at=1700000000))
    await server.push(event_xml("o_old", "SCAN", promoter_scene(promoter["_id"]), at=1700000001))
    await server.push(event_xml("o_new", "subscribe", f"qrscene_{promoter_scene(promoter['_id'])}", at=1700000002))
    assert (await runtime.members.by_oa_openid("o_old"))["upline_id"] is None
    assert (await runtime.members.by_oa_openid("o_new"))["upline_id"] == promoter["_id"]


async def test_override_mode_moves_the_member_and_its_counters(server):
    runtime = server.runtime
    await use_settings(runtime, bind_mode="override")
    old, new = await add_chain(runtime, 1), await add_chain(runtime, 1)  # two chains of two
    buyer = await add_member(runtime)
    assert (await runtime.relations.bind(buyer, old[1]["_id"], BindSource.OA_SCAN, NOW)).bound
    assert (await runtime.relations.bind(buyer, new[1]["_id"], BindSource.OA_SCAN, NOW)).bound
    assert await runtime.relations.apply_follow_ups() == 2  # both binds had counters above their upline
    buyer = await member(runtime, buyer["_id"])
    assert buyer["ancestor_ids"] == [new[1]["_id"], new[0]["_id"]]
    counts = {m["_id"]: (m["direct_count"], m["team_count"]) for m in [await member(runtime, x["_id"]) for x in old + new]}
    assert counts == {old[0]["_id"]: (1, 1), old[1]["_id"]: (0, 0), new[0]["_id"]: (1, 2), new[1]["_id"]: (1, 1)}
    entry = await runtime.db.bind_log.find_one({"member_id": buyer["_id"], "upline_id": new[1]["_id"]})
    assert entry["previous_upline_id"] == old[1]["_id"]


async def test_expiring_mode_allows_a_change_only_after_expiry(server):
    runtime = server.runtime
    await use_settings(runtime, bind_mode="expiring", bind_expiry_days=30)
    first, second = await add_member(runtime), await add_member(runtime)
    buyer = await add_member(runtime)
    await runtime.relations.bind(buyer, first["_id"], BindSource.OA_SCAN, NOW)
    early = await runtime.relations.bind(buyer, second["_id"], BindSource.OA_SCAN, NOW + timedelta(days=29))
    late = await runtime.relations.bind(buyer, second["_id"], BindSource.OA_SCAN, NOW + timedelta(days=31))
    assert not early.bound and late.bound
    assert (await member(runtime, buyer["_id"]))["upline_id"] == second["_id"]


async def test_a_chain_fifty_deep(server):
    runtime = server.runtime
    chain = await add_chain(runtime, 50)
    leaf = await member(runtime, chain[-1]["_id"])
    assert leaf["ancestor_ids"] == [m["_id"] for m in reversed(chain[:-1])]
    root = await member(runtime, chain[0]["_id"])
    assert (root["direct_count"], root["team_count"]) == (1, 50)
    middle = await member(runtime, chain[25]["_id"])
    assert middle["team_count"] == 25
    cycle = await runtime.relations.bind(chain[0], chain[-1]["_id"], BindSource.ADMIN, NOW)
    assert cycle.reason == "cycle"


async def test_rebinding_moves_the_whole_subtree(server):
    runtime = server.runtime
    old_chain = await add_chain(runtime, 3)  # r <- a <- b <- c: move a (with b, c) under x
    r, a, b, c = (m["_id"] for m in old_chain)
    x_chain = await add_chain(runtime, 1)  # s <- x
    s, x = (m["_id"] for m in x_chain)
    sibling = await add_member(runtime)
    await runtime.relations.bind(sibling, b, BindSource.OA_SCAN, NOW)  # b has two direct members now
    await runtime.relations.apply_follow_ups()

    outcome = await runtime.relations.bind(await member(runtime, a), x, BindSource.ADMIN, NOW + timedelta(hours=1),
                                           note="moved by support")
    assert outcome.bound
    await runtime.relations.apply_follow_ups()
    assert (await member(runtime, a))["ancestor_ids"] == [x, s]
    assert (await member(runtime, b))["ancestor_ids"] == [a, x, s]
    assert (await member(runtime, c))["ancestor_ids"] == [b, a, x, s]
    assert (await member(runtime, sibling["_id"]))["ancestor_ids"] == [b, a, x, s]
    counts = {m: ((d := await member(runtime, m))["direct_count"], d["team_count"]) for m in (r, a, b, x, s)}
    assert counts == {r: (0, 0), a: (1, 3), b: (2, 2), x: (1, 4), s: (1, 5)}
    assert not (await member(runtime, a)).get("subtree_stale")
    assert (await runtime.db.bind_log.find_one({"member_id": a, "source": "admin"}))["note"] == "moved by support"


async def test_a_large_subtree_is_rewritten_by_the_worker_in_batches(server):
    runtime = server.runtime
    runtime.relations.inline_resync_limit, runtime.relations.resync_batch = 2, 2
    old_chain = await add_chain(runtime, 5)
    new_root = await add_member(runtime)
    top = old_chain[1]["_id"]
    assert (await runtime.relations.bind(await member(runtime, top), new_root["_id"], BindSource.ADMIN, NOW)).bound
    assert (await member(runtime, top)).get("subtree_stale") is True  # left to the worker
    await drain(runtime)
    leaf = await member(runtime, old_chain[-1]["_id"])
    assert leaf["ancestor_ids"] == [m["_id"] for m in reversed(old_chain[1:-1])] + [new_root["_id"]]
    assert not (await member(runtime, top)).get("subtree_stale")


async def test_a_lost_job_is_requeued_by_the_sweep(server, sandbox):
    runtime = server.runtime
    promoter, buyer = await add_member(runtime, oa_openid="o_lost"), await add_member(runtime)
    await runtime.relations.bind(buyer, promoter["_id"], BindSource.OA_SCAN, NOW)
    assert await runtime.relations.apply_follow_ups() == 1  # the notice is recorded and queued
    await runtime.redis.delete(runtime.queue.stream)  # the queued job vanished (a crash after commit)
    assert await runtime.notifications.requeue_due(datetime.now(timezone.utc) + timedelta(minutes=10)) == 1
    await drain(runtime)
    assert len(template_sends(sandbox)) == 1


async def test_counters_above_the_upline_and_notices_follow_once_however_often_the_task_runs(server):
    runtime = server.runtime
    chain = await add_chain(runtime, 3)  # root <- m1 <- m2 <- m3
    buyers = [await add_member(runtime) for _ in range(5)]
    await asyncio.gather(*(runtime.relations.bind(b, chain[-1]["_id"], BindSource.OA_SCAN, NOW) for b in buyers))
    leaf = await member(runtime, chain[-1]["_id"])
    assert (leaf["direct_count"], leaf["team_count"]) == (5, 5)  # the upline's own counters: in the bind itself
    assert (await member(runtime, chain[0]["_id"]))["team_count"] == 3  # above it: not yet
    applied = await asyncio.gather(*(runtime.relations.apply_follow_ups() for _ in range(3)))
    assert sum(applied) == 5
    assert [(await member(runtime, m["_id"]))["team_count"] for m in chain] == [8, 7, 6, 5]
    notices = await runtime.db.notifications.find({"kind": "new_direct_member", "member_id": chain[-1]["_id"]}).to_list()
    assert len(notices) == 5 and {n["data"]["team"] for n in notices} <= {"1", "2", "3", "4", "5"}
    assert await runtime.relations.apply_follow_ups() == 0


def has_cycle(uplines: dict[str, str | None]) -> bool:
    for start in uplines:
        seen, at = set(), start
        while at is not None:
            if at in seen:
                return True
            seen.add(at)
            at = uplines.get(at)
    return False


async def test_two_teams_binding_under_each_others_members_at_once_never_make_a_cycle(server):
    """A (with a) binds under b while B (with b) binds under a: the writes touch four different
    members, so only serialising moves of whole teams keeps the tree a tree."""
    runtime = server.runtime
    for _ in range(8):
        a_top, b_top = await add_member(runtime), await add_member(runtime)
        a_child, b_child = await add_member(runtime), await add_member(runtime)
        for child, top in ((a_child, a_top), (b_child, b_top)):
            assert (await runtime.relations.bind(child, top["_id"], BindSource.OA_SCAN, NOW)).bound
        outcomes = await asyncio.gather(
            runtime.relations.bind(a_top, b_child["_id"], BindSource.OA_SCAN, NOW),
            runtime.relations.bind(b_top, a_child["_id"], BindSource.OA_SCAN, NOW))
        four = [a_top, b_top, a_child, b_child]
        uplines = {m["_id"]: (await member(runtime, m["_id"]))["upline_id"] for m in four}
        assert not has_cycle(uplines), outcomes
        assert sorted(o.bound for o in outcomes) == [False, True]
        assert [o.reason for o in outcomes if not o.bound] == ["cycle"]


async def test_the_cycle_check_sees_a_chain_whose_rewrite_is_still_pending(server):
    """x (with a team down to leaf) moves under y; before the worker rewrites the team's ancestors,
    y binding under leaf would close a loop that leaf's stored chain does not show yet."""
    runtime = server.runtime
    runtime.relations.inline_resync_limit = 0  # every team's rewrite is left to the worker
    x, middle, leaf = await add_chain(runtime, 2)
    y = await add_member(runtime)
    assert (await runtime.relations.bind(x, y["_id"], BindSource.ADMIN, NOW)).bound
    assert (await member(runtime, leaf["_id"]))["ancestor_ids"] == [middle["_id"], x["_id"]]  # not rewritten yet

    outcome = await runtime.relations.bind(y, leaf["_id"], BindSource.ADMIN, NOW)
    assert (outcome.bound, outcome.reason) == (False, "cycle")


async def test_a_bind_on_stale_reads_is_decided_again_on_fresh_ones(server):
    """The first attempt trusts the caller's member and this process's recent copy of the upline;
    the write's guards catch what changed since, and a refusal is only given on fresh data."""
    runtime = server.runtime
    await use_settings(runtime, upline_eligibility="reviewed")
    promoter = await add_member(runtime, promoter_status="approved")
    first = await add_member(runtime)
    assert (await runtime.relations.bind(first, promoter["_id"], BindSource.OA_SCAN, NOW)).bound
    assert runtime.relations.recent_uplines.get(promoter["_id"]) is not None  # now read from memory

    await runtime.relations.set_frozen(promoter["_id"], True)  # the copy in memory does not know
    frozen = await runtime.relations.bind(await add_member(runtime), promoter["_id"], BindSource.OA_SCAN, NOW)
    assert (frozen.bound, frozen.reason) == (False, "frozen_upline")
    await runtime.relations.set_frozen(promoter["_id"], False)
    await runtime.db.members.update_one({"_id": promoter["_id"]}, {"$set": {"promoter_status": "rejected"}})
    runtime.relations.recent_uplines.put({**promoter, "promoter_status": "approved"})  # stale: still approved
    ineligible = await runtime.relations.bind(await add_member(runtime), promoter["_id"], BindSource.OA_SCAN, NOW)
    assert (ineligible.bound, ineligible.reason) == (False, "ineligible_upline")

    await runtime.db.members.update_one({"_id": promoter["_id"]}, {"$set": {"promoter_status": "approved"}})
    runtime.relations.recent_uplines.put({**promoter, "frozen": True})  # stale the other way: a refusal is re-read
    assert (await runtime.relations.bind(await add_member(runtime), promoter["_id"], BindSource.OA_SCAN, NOW)).bound
    assert (await runtime.relations.bind(first, promoter["_id"], BindSource.OA_SCAN, NOW)).reason == "same_upline"
    other = await add_member(runtime, promoter_status="approved")
    stale_first = {**first, "upline_id": None}  # the caller's copy predates first's bind
    assert (await runtime.relations.bind(stale_first, other["_id"], BindSource.OA_SCAN, NOW)).reason == "already_bound"
    assert (await member(runtime, first["_id"]))["upline_id"] == promoter["_id"]


async def test_the_bind_log_shows_a_bind_before_and_after_the_worker_logs_it_once(server):
    runtime = server.runtime
    await use_settings(runtime, bind_mode="override")
    first, second, buyer = [await add_member(runtime) for _ in range(3)]
    assert (await runtime.relations.bind(buyer, first["_id"], BindSource.OA_SCAN, NOW)).bound
    assert (await runtime.relations.bind(buyer, second["_id"], BindSource.OA_SCAN, NOW + timedelta(seconds=1))).bound

    async def shown() -> list[tuple[str, str]]:
        page = await runtime.relations.log_page(await member(runtime, buyer["_id"]), 10, None)
        return [(entry["upline_id"], entry["result"]) for entry in page]

    expected = [(second["_id"], "bound"), (first["_id"], "bound")]
    assert await shown() == expected  # both still on the member, awaiting the worker
    assert await runtime.db.bind_log.count_documents({"member_id": buyer["_id"]}) == 0
    assert await runtime.relations.apply_follow_ups() == 2
    assert await shown() == expected  # now from the bind log, once each
    assert await runtime.db.bind_log.count_documents({"member_id": buyer["_id"]}) == 2
    assert await runtime.relations.apply_follow_ups() == 0
