"""The chain-move mode (链动2+1) wired into binding: positions, the pass-up, upgrades, team owners and their counts,
re-binds, the API — through the real service, SecantusDB and Redis."""

from __future__ import annotations

import asyncio
from collections import Counter

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.simulate import event_xml

from distribution.binding import BindMode, BindSource
from distribution.chain_move import ChainMoveSettings
from distribution.scene import promoter_scene
from services.merchant_settings import MerchantSettings
from services.relations import RelationService
from tests.test_relations import NOW, add_member, drain, member, template_sends, use_settings

CHAIN_MOVE = {"enabled": True, "acknowledge_legal_risk": True}


async def use_chain_move(runtime, **values) -> None:
    await runtime.merchant_settings.put(ChainMoveSettings.from_dict({**CHAIN_MOVE, **values}))


async def join(runtime, invitee: dict, inviter: dict, source: BindSource = BindSource.OA_SCAN) -> dict:
    """Bind `invitee` (as stored now) through `inviter`'s code; returns the invitee as stored after."""
    outcome = await runtime.relations.bind(await member(runtime, invitee["_id"]), inviter["_id"], source, NOW)
    assert outcome.bound, outcome
    return await member(runtime, invitee["_id"])


async def bound_entry(runtime, member_id: str) -> dict:
    """The member's latest bound entry in the bind log, once the worker has logged it."""
    await runtime.relations.apply_follow_ups()
    return await runtime.db.bind_log.find_one({"member_id": member_id, "result": "bound"}, sort=[("_id", -1)])


async def test_the_seeds_worked_flow_of_joins(server, sandbox):
    runtime = server.runtime
    await use_chain_move(runtime)
    boss_e = await add_member(runtime, nickname="E", role="boss", oa_openid="o_boss_e")
    agent_a = await add_member(runtime, nickname="A", oa_openid="o_agent_a")
    b, c, d = [await add_member(runtime, nickname=name) for name in "BCD"]

    a_now = await join(runtime, agent_a, boss_e)
    assert (a_now["role"], a_now["owner_ids"], a_now["team_owner_id"]) == ("agent", [boss_e["_id"]], boss_e["_id"])

    b_now = await join(runtime, b, agent_a)
    assert (b_now["team_owner_id"], b_now["owner_ids"]) == (agent_a["_id"], [agent_a["_id"], boss_e["_id"]])
    assert (await member(runtime, agent_a["_id"]))["role"] == "agent"

    c_now = await join(runtime, c, agent_a)  # the second referral: left to the nearest boss above A
    assert (c_now["team_owner_id"], c_now["owner_ids"], c_now["upline_id"]) == (
        boss_e["_id"], [boss_e["_id"]], agent_a["_id"])
    a_now = await member(runtime, agent_a["_id"])
    assert (a_now["role"], a_now["referral_count"]) == ("boss", 2)

    d_now = await join(runtime, d, agent_a)  # after the upgrade: A's own
    assert d_now["owner_ids"] == [agent_a["_id"], boss_e["_id"]]

    entries = {name: await bound_entry(runtime, m["_id"]) for name, m in (("B", b), ("C", c), ("D", d))}
    assert [(e["position"], e["passed_up"], e["passed_to"]) for e in entries.values()] == [
        (1, False, None), (2, True, boss_e["_id"]), (3, False, None)]

    (upgrade,) = await runtime.grades.history(agent_a["_id"])
    assert (upgrade["from_role"], upgrade["to_role"], upgrade["metrics"]) == ("agent", "boss", {"referral_count": 2})
    await drain(runtime)
    promotions = [sent for sent in template_sends(sandbox)
                  if sent.body["template_id"] == "sandbox_tpl_promoted_to_boss"]
    assert [sent.body["touser"] for sent in promotions] == ["o_agent_a"]

    counted = {m["_id"]: (await member(runtime, m["_id"])).get("team_size", 0) for m in (boss_e, agent_a, b, c, d)}
    assert counted == {boss_e["_id"]: 4, agent_a["_id"]: 2, b["_id"]: 0, c["_id"]: 0, d["_id"]: 0}


async def test_the_three_plus_one_variant(server):
    runtime = server.runtime
    await use_chain_move(runtime, required_directs=3, pass_up_positions=[2, 3])
    boss = await add_member(runtime, role="boss")
    agent = await join(runtime, await add_member(runtime), boss)
    owners = []
    for _ in range(4):
        owners.append((await join(runtime, await add_member(runtime), agent))["team_owner_id"])
        if len(owners) < 3:
            assert (await member(runtime, agent["_id"]))["role"] == "agent"
    assert owners == [agent["_id"], boss["_id"], boss["_id"], agent["_id"]]
    assert (await member(runtime, agent["_id"]))["role"] == "boss"
    assert len(await runtime.grades.history(agent["_id"])) == 1


async def test_fifty_concurrent_first_scans_use_each_position_once(server):
    runtime = server.runtime
    await use_chain_move(runtime)
    boss = await add_member(runtime, role="boss")
    agent = await join(runtime, await add_member(runtime), boss)
    newcomers = [await add_member(runtime) for _ in range(50)]
    # A second server's service beside this one's: each takes turns at the inviter in its own process only, so
    # the two race for positions through the database.
    relations = runtime.relations
    elsewhere = RelationService(runtime.mongo, relations.members, relations.bind_log, MerchantSettings(runtime.db),
                                relations.queue, relations.notifications)
    outcomes = await asyncio.gather(*((relations, elsewhere)[index % 2].bind(
        newcomer, agent["_id"], BindSource.OA_SCAN, NOW, created_by_this_push=True)
        for index, newcomer in enumerate(newcomers)))
    assert all(outcome.bound for outcome in outcomes), Counter(outcome.reason for outcome in outcomes)
    await runtime.relations.apply_follow_ups()
    entries = await runtime.db.bind_log.find({"upline_id": agent["_id"], "result": "bound"}).to_list()
    assert sorted(entry["position"] for entry in entries) == list(range(1, 51))
    assert [entry["position"] for entry in entries if entry["passed_up"]] == [2]
    agent_now = await member(runtime, agent["_id"])
    assert (agent_now["role"], agent_now["referral_count"], agent_now["team_size"]) == ("boss", 50, 49)
    assert len(await runtime.grades.history(agent["_id"])) == 1
    assert (await member(runtime, boss["_id"]))["team_size"] == 51


def reference_owners(inviters: list[int | None], bosses: set[int], rules: ChainMoveSettings) -> list[int | None]:
    """Team owners by the rules, member by member in joining order, walking the owners upward one at a time."""
    owners: list[int | None] = []
    roles = {i: i in bosses for i in range(len(inviters))}
    referrals: Counter[int] = Counter()
    for member_index, inviter in enumerate(inviters):
        if inviter is None:
            owners.append(None)
            continue
        referrals[inviter] += 1
        position = referrals[inviter]
        owner: int | None = inviter
        if not roles[inviter] and position in rules.pass_up_positions:
            owner = owners[inviter]
            while owner is not None and not roles[owner]:
                owner = owners[owner]
        if not roles[inviter] and position >= rules.required_directs:
            roles[inviter] = True
        owners.append(owner)
    return owners


@settings(max_examples=4, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
async def test_a_long_chain_with_bosses_anywhere_matches_the_rules(server, data):
    runtime = server.runtime
    pass_up = data.draw(st.sampled_from([[1], [2], [1, 2]]))
    rules = ChainMoveSettings.from_dict({**CHAIN_MOVE, "pass_up_positions": pass_up,
                                         "required_directs": data.draw(st.integers(max(pass_up), 3))})
    await runtime.merchant_settings.put(rules)
    size = 200
    bosses = set(data.draw(st.lists(st.integers(1, size - 1), max_size=12)))
    # Each member is invited by one of the few before it: a chain some seventy deep, whose members use positions
    # 1 to 3 and more.
    inviters: list[int | None] = [None, *(index - 1 - data.draw(st.integers(0, min(2, index - 1)))
                                          for index in range(1, size))]
    members = [await add_member(runtime, **({"role": "boss"} if index in bosses else {})) for index in range(size)]
    for index, inviter in enumerate(inviters):
        if inviter is not None:
            assert (await runtime.relations.bind(members[index], members[inviter]["_id"], BindSource.OA_SCAN,
                                                 NOW)).bound
    expected = reference_owners(inviters, bosses | {0}, rules)
    stored = await runtime.members.several([m["_id"] for m in members])
    index_of = {m["_id"]: index for index, m in enumerate(members)}
    assert [index_of.get(stored[m["_id"]].get("team_owner_id")) for m in members] == expected


async def test_rebinds_move_the_owner_team_without_cycles_or_lost_members(server):
    runtime = server.runtime
    await use_settings(runtime, bind_mode=BindMode.OVERRIDE.value)
    await use_chain_move(runtime)
    root, other = await add_member(runtime, role="boss"), await add_member(runtime, role="boss")
    boss_a = await join(runtime, await add_member(runtime, role="boss"), root)
    b = await join(runtime, await add_member(runtime), boss_a)
    c = await join(runtime, await add_member(runtime), b)
    d = await join(runtime, await add_member(runtime), b)  # passed up from b to boss_a
    assert d["owner_ids"] == [boss_a["_id"], root["_id"]]
    await runtime.relations.apply_follow_ups()

    # boss_a moves under other: its team keeps its chains down to it and takes the new one above
    moved = await join(runtime, boss_a, other, BindSource.ADMIN)
    assert moved["owner_ids"] == [other["_id"]] and moved["role"] == "boss"
    for teammate, chain in ((b, [boss_a["_id"], other["_id"]]), (c, [b["_id"], boss_a["_id"], other["_id"]]),
                            (d, [boss_a["_id"], other["_id"]])):
        assert (await member(runtime, teammate["_id"]))["owner_ids"] == chain
    assert (await member(runtime, root["_id"]))["referral_count"] == 1  # the old inviter keeps its count
    await runtime.relations.apply_follow_ups()

    # b moves under root with its own team (c); d, which b passed up, stays with boss_a
    await join(runtime, b, root, BindSource.ADMIN)
    assert (await member(runtime, c["_id"]))["owner_ids"] == [b["_id"], root["_id"]]
    assert (await member(runtime, d["_id"]))["owner_ids"] == [boss_a["_id"], other["_id"]]
    await runtime.relations.apply_follow_ups()

    # d is no longer below boss_a, but is in its team: boss_a under d would make a loop of owners
    refused = await runtime.relations.bind(await member(runtime, boss_a["_id"]), d["_id"], BindSource.ADMIN, NOW)
    assert (refused.bound, refused.reason) == (False, "cycle")

    await runtime.relations.apply_follow_ups()
    sizes = {name: (await member(runtime, m["_id"])).get("team_size", 0)
             for name, m in (("root", root), ("other", other), ("a", boss_a), ("b", b), ("d", d))}
    assert sizes == {"root": 2, "other": 2, "a": 1, "b": 1, "d": 0}
    owned = await runtime.members.owned_page(await member(runtime, boss_a["_id"]), 10, None)
    assert [m["_id"] for m in owned] == [d["_id"]]
    everyone = await runtime.members.several([m["_id"] for m in (root, other, boss_a, b, c, d)])
    assert all(m.get("team_size", 0) >= 0 and m["_id"] not in m.get("owner_ids", []) for m in everyone.values())


async def test_a_large_owner_team_is_rewritten_by_the_worker(server):
    runtime = server.runtime
    runtime.relations.inline_resync_limit = 2
    await use_settings(runtime, bind_mode=BindMode.OVERRIDE.value)
    await use_chain_move(runtime, pass_up_positions=[])
    root, other = await add_member(runtime, role="boss"), await add_member(runtime, role="boss")
    hub = await join(runtime, await add_member(runtime, role="boss"), root)
    team = [await join(runtime, await add_member(runtime), hub) for _ in range(4)]
    await runtime.relations.apply_follow_ups()
    moved = await join(runtime, hub, other, BindSource.ADMIN)
    assert moved["subtree_stale"] is True
    await drain(runtime)
    for teammate in team:
        assert (await member(runtime, teammate["_id"]))["owner_ids"] == [hub["_id"], other["_id"]]
    assert [(await member(runtime, m["_id"])).get("team_size", 0) for m in (root, other, hub)] == [0, 5, 4]


async def test_member_json_and_the_owned_team_page(server):
    runtime = server.runtime
    await use_chain_move(runtime)
    boss = await add_member(runtime, role="boss")
    agent = await join(runtime, await add_member(runtime), boss)
    first = await join(runtime, await add_member(runtime), agent)
    second = await join(runtime, await add_member(runtime), agent)  # passed up to boss
    await runtime.relations.apply_follow_ups()

    shown = (await server.merchant_get(f"/api/merchant/v1/members/{boss['_id']}/team", depth="all")).json()["items"]
    by_id = {m["id"]: m for m in shown}
    assert (by_id[agent["_id"]]["role"], by_id[agent["_id"]]["referral_count"], by_id[agent["_id"]]["team_size"]) == (
        "boss", 2, 1)
    assert (by_id[first["_id"]]["role"], by_id[first["_id"]]["team_owner_id"], by_id[first["_id"]]["team_size"]) == (
        "agent", agent["_id"], None)
    assert by_id[second["_id"]]["team_owner_id"] == boss["_id"]

    owned, cursor, path = [], None, f"/api/merchant/v1/members/{boss['_id']}/team"
    while True:
        page = (await server.merchant_get(path, relation="owned", limit="1", **({"cursor": cursor} if cursor else {})
                                          )).json()
        owned += [m["id"] for m in page["items"]]
        if not (cursor := page["next_cursor"]):
            break
    assert owned == [second["_id"], agent["_id"]]
    assert (await server.merchant_get(path, relation="sideways")).json()["error"]["field"] == "relation"
    log = (await server.merchant_get(f"/api/merchant/v1/members/{second['_id']}/binds")).json()["items"]
    assert (log[0]["position"], log[0]["passed_up"], log[0]["passed_to"]) == (2, True, boss["_id"])


async def test_a_follower_without_a_code_arrives_as_a_boss(server):
    runtime = server.runtime
    await use_chain_move(runtime)
    await server.push(event_xml("o_arrives_alone", "subscribe"))
    alone = await runtime.members.by_oa_openid("o_arrives_alone")
    assert alone["role"] == "boss"
    # one who arrives through that boss's code is an agent in its team
    await server.push(event_xml("o_arrives_invited", "subscribe", f"qrscene_{promoter_scene(alone['_id'])}"))
    invited = await runtime.members.by_oa_openid("o_arrives_invited")
    assert (invited["role"], invited["team_owner_id"]) == ("agent", alone["_id"])


async def test_mode_off_writes_nothing_of_it(server):
    runtime = server.runtime  # the chain-move mode is off by default
    await server.push(event_xml("o_arrives_when_off", "subscribe"))
    assert "role" not in await runtime.members.by_oa_openid("o_arrives_when_off")
    promoter = await add_member(runtime)
    buyers = [await add_member(runtime) for _ in range(3)]
    for buyer in buyers:
        await join(runtime, buyer, promoter)
    await runtime.relations.apply_follow_ups()
    fields = ("role", "owner_ids", "team_owner_id", "referral_count", "team_size")
    for each in (promoter, *buyers):
        stored = await member(runtime, each["_id"])
        assert not any(field in stored for field in fields), stored
    entry = await bound_entry(runtime, buyers[1]["_id"])
    assert "position" not in entry and "passed_up" not in entry
