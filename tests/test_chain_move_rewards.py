"""The chain-move mode's rewards on paid orders: who earns what, to the fen, and what a payment fixes for good.

Members join through the binding service with the mode on, as they would by
scanning codes; the peer reward's long chain, with a boss who joined while
the mode was off, is written directly with the fields the joins keep.
"""

import asyncio
import re
from datetime import timedelta

from distribution.binding import BindSource
from distribution.chain_move import ChainMoveSettings, Role
from distribution.chat import commission_answer
from distribution.commission_rules import Trigger
from stores.members import new_member_fields
from tests.conftest import MERCHANT_TOKEN
from tests.console_fixtures import staff_client
from tests.order_fixtures import (
    T0,
    add_member,
    assert_ledger_clean,
    at,
    balances,
    commissions_of,
    create_order,
    drain,
    item,
    paid_order,
    put_rules,
    send_event,
)

MERCHANT = {"Authorization": f"Bearer {MERCHANT_TOKEN}"}
SETTINGS_PATH = "/api/merchant/v1/settings/chain_move"
DIRECT, TEAM, PEER = 1, 2, 3


async def put_chain_move(runtime, **fields) -> ChainMoveSettings:
    value = ChainMoveSettings(**{"enabled": True, "acknowledge_legal_risk": True, **fields})
    await runtime.merchant_settings.put(value)
    return value


async def member(runtime, recruiter=None, role=Role.AGENT, owners=(), **fields) -> dict:
    """A member written as a join in the chain-move mode stores it: `owners` nearest first."""
    return await add_member(runtime, recruiter, role=role, owner_ids=[owner["_id"] for owner in owners],
                            referral_count=0, **fields)


async def newcomer(runtime, **fields) -> dict:
    document = {**new_member_fields(T0 - timedelta(days=30)), **fields}
    await runtime.db["members"].insert_one(document)
    return document


async def joined(runtime, inviter: dict, **fields) -> dict:
    """A newcomer bound through `inviter`'s code, as stored after the join."""
    invitee = await newcomer(runtime, **fields)
    outcome = await runtime.relations.bind(invitee, inviter["_id"], BindSource.OA_SCAN, T0 - timedelta(days=20))
    assert outcome.bound, outcome
    return await runtime.members.get(invitee["_id"])


async def second_referral(runtime, agent: dict) -> dict:
    """The agent's second referral: left to the boss above it, and the agent becomes a boss."""
    referral = await joined(runtime, agent)
    assert (await runtime.members.get(agent["_id"]))["role"] == Role.BOSS
    return referral


async def rewards_of(runtime, order_no: str) -> list[tuple[str, int, int, str]]:
    """(beneficiary, level, net fen, status) of the order's commissions, after checking each is marked a reward."""
    documents = await runtime.db["commissions"].find({"order_no": order_no}).to_list()
    kinds = {DIRECT: "direct", TEAM: "team", PEER: "peer"}
    assert all(each["mode"] == "chain_move" and each["reward"] == kinds[each["level"]] for each in documents)
    return await commissions_of(runtime, order_no)


async def pay(runtime, order_no: str, buyer: dict, *paid_fen: int) -> None:
    await paid_order(runtime, order_no, buyer, [item(fen, sku=f"sku-{index}") for index, fen in enumerate(paid_fen)])


async def seed_flow(runtime) -> dict[str, dict]:
    """Boss E; agent A invited by E; A invites B (position 1, team owner A). The mode must be on."""
    e = await newcomer(runtime, role=Role.BOSS)
    a = await joined(runtime, e)
    b = await joined(runtime, a)
    assert (a["role"], a["owner_ids"], b["owner_ids"]) == (Role.AGENT, [e["_id"]], [a["_id"], e["_id"]])
    return {"E": e, "A": a, "B": b}


async def test_the_settings_refuse_enabling_without_the_acknowledgement_and_rewards_above_the_cap(server):
    defaults = await server.merchant_get(SETTINGS_PATH)
    assert defaults.status_code == 200 and defaults.json() == {
        "enabled": False, "acknowledge_legal_risk": False, "required_directs": 2, "pass_up_positions": [2],
        "direct_reward_bp": 1000, "team_reward_bp": 500, "peer_reward_bp": 0, "cap_bp": 3000}

    refused = await server.http.put(SETTINGS_PATH, json={"enabled": True}, headers=MERCHANT)
    assert refused.status_code == 400
    assert refused.json()["error"]["field"] == "acknowledge_legal_risk" and refused.json()["error"]["message"]
    above_cap = await server.http.put(SETTINGS_PATH, headers=MERCHANT, json={
        "enabled": True, "acknowledge_legal_risk": True, "direct_reward_bp": 2000, "team_reward_bp": 800,
        "peer_reward_bp": 300})
    assert above_cap.status_code == 400 and above_cap.json()["error"]["field"] == "peer_reward_bp"
    assert (await server.merchant_get(SETTINGS_PATH)).json() == defaults.json()  # nothing was stored

    enabled = {**defaults.json(), "enabled": True, "acknowledge_legal_risk": True, "peer_reward_bp": 200}
    stored = await server.http.put(SETTINGS_PATH, json=enabled, headers=MERCHANT)
    assert stored.status_code == 200 and stored.json() == enabled
    assert (await server.merchant_get(SETTINGS_PATH)).json() == enabled


async def test_the_seeds_worked_flow_pays_every_reward_to_the_fen(server):
    runtime = server.runtime
    await put_chain_move(runtime, peer_reward_bp=200)
    members = await seed_flow(runtime)
    e, a, b = members["E"], members["A"], members["B"]

    # A is still an agent: the team reward of B's order goes past A to the nearest boss, E.
    await pay(runtime, "B-1", b, 9_999)
    assert await rewards_of(runtime, "B-1") == [(a["_id"], DIRECT, 999, "frozen"), (e["_id"], TEAM, 499, "frozen")]

    # C, A's second referral, is left to E; A becomes a boss; D, its third, stays in A's team.
    c = await second_referral(runtime, a)
    d = await joined(runtime, a)
    assert (c["owner_ids"], d["owner_ids"]) == ([e["_id"]], [a["_id"], e["_id"]])
    await pay(runtime, "B-2", b, 9_999)
    await pay(runtime, "C-1", c, 9_999)
    await pay(runtime, "D-1", d, 10_000, 1)
    await pay(runtime, "A-1", a, 10_000)
    assert await rewards_of(runtime, "B-2") == [
        (a["_id"], DIRECT, 999, "frozen"), (a["_id"], TEAM, 499, "frozen"), (e["_id"], PEER, 199, "frozen")]
    assert await rewards_of(runtime, "C-1") == [(a["_id"], DIRECT, 999, "frozen"), (e["_id"], TEAM, 499, "frozen")]
    # The one-fen item earns nothing at any rate: no line for it.
    assert await rewards_of(runtime, "D-1") == [
        (a["_id"], DIRECT, 1_000, "frozen"), (a["_id"], TEAM, 500, "frozen"), (e["_id"], PEER, 200, "frozen")]
    assert await rewards_of(runtime, "A-1") == [(e["_id"], DIRECT, 1_000, "frozen"), (e["_id"], TEAM, 500, "frozen")]

    a_fen = 999 + (999 + 499) + 999 + (1_000 + 500)
    e_fen = 499 + 199 + 499 + 200 + (1_000 + 500)
    assert await balances(runtime, a) == (a_fen, 0, 0)
    assert await balances(runtime, e) == (e_fen, 0, 0)
    order = await runtime.orders.get("B-2")
    assert order["commission_mode"] == "chain_move" and order["commission_fen"] == 999 + 499 + 199
    assert order["reward_beneficiaries"] == {"direct_id": a["_id"], "team_id": a["_id"], "peer_id": e["_id"]}
    # The notification names the kinds of reward, never a "level 2" that would read as a second-level upline.
    told = await runtime.db["notifications"].find_one({"_id": f"commission_arrived:B-2:{a['_id']}"})
    assert told["data"]["reward"] == "直推奖、团队奖" and "level" not in told["data"]

    # The commission JSON says which rules and which reward.
    answer = await server.merchant_get("/api/merchant/v1/orders/B-2")
    assert [(each["level"], each["mode"], each["reward"]) for each in answer.json()["commissions"]] == [
        (1, "chain_move", "direct"), (2, "chain_move", "team"), (3, "chain_move", "peer")]
    assert answer.json()["reward_beneficiaries"] == order["reward_beneficiaries"]
    # The promoter's own answer in the official account names the rewards, not levels.
    answer_text = commission_answer(await runtime.chat.commission_summary(a["_id"], at(1)))
    assert "｜团队奖｜" in answer_text and "｜直推奖｜" in answer_text and "二级" not in answer_text
    # So does the console's order page, in words.
    console = await staff_client(server, "operator")
    page = (await console.get("/admin/orders/B-2")).text
    rewards_part = page[page.index('id="order-rewards"'):page.index('id="order-items"')]
    assert re.findall(r'<dt>(\w+)</dt><dd><a href="/admin/promoters/(\w+)"', rewards_part) == [
        ("直推奖", a["_id"]), ("团队奖", a["_id"]), ("平级奖", e["_id"])]
    rows = re.findall(r'<tr data-commission-id="B-2:0:(\d)">\s*<td>.*?</td>\s*<td>(\w+)</td>', page, re.S)
    assert rows == [("1", "直推奖"), ("2", "团队奖"), ("3", "平级奖")]
    await console.aclose()
    await assert_ledger_clean(runtime)


async def test_an_order_pays_the_beneficiaries_of_its_payment_not_of_its_creation(server):
    runtime = server.runtime
    await put_chain_move(runtime)
    members = await seed_flow(runtime)
    a, b = members["A"], members["B"]
    await create_order(runtime, "early", b, [item(10_000)])
    await second_referral(runtime, a)  # between the order and its payment
    await send_event(runtime, "early", "pay", "paid", at())
    await drain(runtime)
    assert await rewards_of(runtime, "early") == [(a["_id"], DIRECT, 1_000, "frozen"), (a["_id"], TEAM, 500, "frozen")]


async def test_the_peer_reward_goes_to_the_next_boss_above_the_team_boss_past_agents(server):
    runtime = server.runtime
    await put_chain_move(runtime, direct_reward_bp=1000, team_reward_bp=600, peer_reward_bp=300)
    # The owner chain from the top: a boss who joined while the mode was off (no role stored, no recruiter: a
    # boss), an agent, a boss, an agent, a boss; then the buyer's recruiter, an agent in the mode-off way.
    top = await add_member(runtime)
    agent_1 = await member(runtime, top, owners=(top,))
    boss_2 = await member(runtime, agent_1, role=Role.BOSS, owners=(agent_1, top))
    agent_3 = await member(runtime, boss_2, owners=(boss_2, agent_1, top))
    boss_4 = await member(runtime, agent_3, role=Role.BOSS, owners=(agent_3, boss_2, agent_1, top))
    recruiter = await member(runtime, boss_4, owners=(boss_4, agent_3, boss_2, agent_1, top))
    buyer = await member(runtime, recruiter, owners=(recruiter, boss_4, agent_3, boss_2, agent_1, top))
    await pay(runtime, "peer", buyer, 10_000)
    assert await rewards_of(runtime, "peer") == [
        (recruiter["_id"], DIRECT, 1_000, "frozen"), (boss_4["_id"], TEAM, 600, "frozen"),
        (boss_2["_id"], PEER, 300, "frozen")]

    # Above boss_2 only the legacy boss is left: it is the peer of boss_2's team.
    agent_buyer = await member(runtime, agent_1, owners=(boss_2, agent_1, top))
    await pay(runtime, "peer-top", agent_buyer, 10_000)
    assert await rewards_of(runtime, "peer-top") == [
        (agent_1["_id"], DIRECT, 1_000, "frozen"), (boss_2["_id"], TEAM, 600, "frozen"),
        (top["_id"], PEER, 300, "frozen")]

    # A buyer who joined while the mode was off has a recruiter and no owners: the direct reward alone.
    old_buyer = await add_member(runtime, recruiter)
    await pay(runtime, "old", old_buyer, 10_000)
    assert await rewards_of(runtime, "old") == [(recruiter["_id"], DIRECT, 1_000, "frozen")]
    await assert_ledger_clean(runtime)


async def test_the_rewards_of_an_item_stay_within_the_cap(server):
    runtime = server.runtime
    await put_chain_move(runtime, direct_reward_bp=2000, team_reward_bp=700, peer_reward_bp=300, cap_bp=3000)
    members = await seed_flow(runtime)
    e, a, b = members["E"], members["A"], members["B"]
    await second_referral(runtime, a)
    await pay(runtime, "capped", b, 9_999, 7)
    # 30% of 9,999 is 2,999.7; each reward rounds down, so together they stay under it.
    assert await rewards_of(runtime, "capped") == [
        (a["_id"], DIRECT, 1_999, "frozen"), (a["_id"], TEAM, 699, "frozen"), (e["_id"], PEER, 299, "frozen"),
        (a["_id"], DIRECT, 1, "frozen")]
    for item_index, paid_fen in enumerate((9_999, 7)):
        lines = await runtime.db["commissions"].find({"order_no": "capped", "item_index": item_index}).to_list()
        assert sum(each["amount_fen"] for each in lines) <= paid_fen * 3000 // 10_000


async def test_switching_the_mode_never_changes_what_a_paid_order_pays_or_reverses(server):
    runtime = server.runtime
    await put_rules(runtime, levels=2, level_rates_bp=(800, 300))
    await put_chain_move(runtime)
    members = await seed_flow(runtime)
    e, a, b = members["E"], members["A"], members["B"]
    await put_chain_move(runtime, enabled=False, acknowledge_legal_risk=False)
    await pay(runtime, "level", b, 10_000)  # the mode is off: the level rules
    await put_chain_move(runtime)
    await second_referral(runtime, a)
    await pay(runtime, "chain", b, 10_000)
    await put_chain_move(runtime, enabled=False, acknowledge_legal_risk=False)
    await pay(runtime, "level-again", b, 10_000)

    level_lines = [(a["_id"], 1, 800, "frozen"), (e["_id"], 2, 300, "frozen")]
    assert await commissions_of(runtime, "level") == await commissions_of(runtime, "level-again") == level_lines
    assert await rewards_of(runtime, "chain") == [(a["_id"], DIRECT, 1_000, "frozen"), (a["_id"], TEAM, 500, "frozen")]
    assert {each["mode"] for each in await runtime.db["commissions"].find({"order_no": "level"}).to_list()} == {"level"}

    # Refunds of each use the lines it was paid with, whichever mode is on now.
    for order_no in ("level", "chain"):
        await send_event(runtime, order_no, "r", "refunded", at(1), items=[{"sku": "sku-0", "refund_fen": 2_500}])
    await drain(runtime)
    assert await commissions_of(runtime, "level") == [(a["_id"], 1, 600, "frozen"), (e["_id"], 2, 225, "frozen")]
    assert await rewards_of(runtime, "chain") == [(a["_id"], DIRECT, 750, "frozen"), (a["_id"], TEAM, 375, "frozen")]
    assert (await runtime.orders.get("level"))["commission_mode"] == "level"
    await assert_ledger_clean(runtime)


async def test_rewards_waiting_for_the_confirmation_follow_the_mode_of_the_payment(server):
    runtime = server.runtime
    await put_rules(runtime, trigger=Trigger.CONFIRMED)
    await put_chain_move(runtime)
    members = await seed_flow(runtime)
    e, a, b = members["E"], members["A"], members["B"]
    await pay(runtime, "waits", b, 10_000)
    assert await commissions_of(runtime, "waits") == []
    await second_referral(runtime, a)  # after the payment: E keeps the team reward
    await put_chain_move(runtime, enabled=False, acknowledge_legal_risk=False)
    await send_event(runtime, "waits", "c", "confirmed", at(1))
    await drain(runtime)
    assert await rewards_of(runtime, "waits") == [(a["_id"], DIRECT, 1_000, "frozen"), (e["_id"], TEAM, 500, "frozen")]


async def test_refunds_of_one_item_and_then_of_all_reverse_every_reward_pro_rata(server):
    runtime = server.runtime
    await put_chain_move(runtime, peer_reward_bp=200)
    members = await seed_flow(runtime)
    e, a = members["E"], members["A"]
    await second_referral(runtime, a)
    d = await joined(runtime, a)
    await pay(runtime, "D", d, 10_000, 3_333)
    assert await rewards_of(runtime, "D") == [
        (a["_id"], DIRECT, 1_000, "frozen"), (a["_id"], TEAM, 500, "frozen"), (e["_id"], PEER, 200, "frozen"),
        (a["_id"], DIRECT, 333, "frozen"), (a["_id"], TEAM, 166, "frozen"), (e["_id"], PEER, 66, "frozen")]

    # A third of the first item before settlement: cancelled out of frozen, each reward by its own share.
    await send_event(runtime, "D", "r1", "refunded", at(1), items=[{"sku": "sku-0", "refund_fen": 3_333}])
    await drain(runtime)
    assert await rewards_of(runtime, "D") == [
        (a["_id"], DIRECT, 1_000 - 333, "frozen"), (a["_id"], TEAM, 500 - 166, "frozen"),
        (e["_id"], PEER, 200 - 66, "frozen"),
        (a["_id"], DIRECT, 333, "frozen"), (a["_id"], TEAM, 166, "frozen"), (e["_id"], PEER, 66, "frozen")]

    await send_event(runtime, "D", "c", "confirmed", at(1))
    await drain(runtime)
    await runtime.commissions.settle_due(at(9))
    assert await balances(runtime, a) == (0, 667 + 334 + 333 + 166, 0)
    assert await balances(runtime, e) == (0, 134 + 66, 0)

    # The rest of everything after settlement: clawed back out of available, to the last fen.
    await send_event(runtime, "D", "r2", "refunded", at(10))
    await drain(runtime)
    assert await rewards_of(runtime, "D") == [
        (a["_id"], DIRECT, 0, "clawed_back"), (a["_id"], TEAM, 0, "clawed_back"), (e["_id"], PEER, 0, "clawed_back"),
        (a["_id"], DIRECT, 0, "clawed_back"), (a["_id"], TEAM, 0, "clawed_back"), (e["_id"], PEER, 0, "clawed_back")]
    assert await balances(runtime, a) == await balances(runtime, e) == (0, 0, 0)
    assert (await runtime.orders.get("D"))["status"] == "refunded"
    await assert_ledger_clean(runtime)


async def test_replayed_and_out_of_order_events_pay_each_reward_once(server):
    runtime = server.runtime
    await put_chain_move(runtime, peer_reward_bp=200)
    members = await seed_flow(runtime)
    e, a, b = members["E"], members["A"], members["B"]
    await second_referral(runtime, a)
    events = [("pay", "paid", at(), None), ("confirm", "confirmed", at(1), None),
              ("r1", "refunded", at(2), [{"sku": "sku-0", "refund_fen": 3_333}]),
              ("r2", "refunded", at(3), [{"sku": "sku-0", "refund_fen": 3_333}])]
    for order_no, arrival in (("forward", events), ("backward", events[::-1])):
        await create_order(runtime, order_no, b, [item(10_000, sku="sku-0")])
        for event_id, kind, when, items in arrival:
            await send_event(runtime, order_no, event_id, kind, when, items)
        await drain(runtime)
    # Every event again, and fifty workers applying the order at once: nothing changes.
    for event_id, kind, when, items in events:
        await send_event(runtime, "forward", event_id, kind, when, items)
    await asyncio.gather(*(runtime.orders.apply_pending("forward") for _ in range(50)))
    await drain(runtime)
    # floor(amount × 6,666 / 10,000) of each reward cancelled.
    assert await rewards_of(runtime, "forward") == await rewards_of(runtime, "backward") == [
        (a["_id"], DIRECT, 1_000 - 666, "frozen"), (a["_id"], TEAM, 500 - 333, "frozen"),
        (e["_id"], PEER, 200 - 133, "frozen")]
    assert await runtime.db["notifications"].count_documents({"kind": "commission_arrived"}) == 4
    await assert_ledger_clean(runtime)


async def test_the_consoles_settings_page_for_the_mode_speaks_of_its_rewards_and_asks_for_the_acknowledgement(
        server):
    owner = await staff_client(server, "owner")
    page = await owner.get("/admin/settings/chain_move")
    assert page.status_code == 200
    assert all(words in page.text for words in ("链动2+1", "直推奖（基点）", "团队奖（基点）", "平级奖（基点）",
                                                "按整个团队的销售给老板计酬"))
    refused = await owner.post("/admin/settings/chain_move", {"enabled": "on", "required_directs": "2",
                                                              "pass_up_positions": "2"})
    assert refused.status_code == 400 and 'data-field="acknowledge_legal_risk"' in refused.text
    assert not (await server.merchant_get(SETTINGS_PATH)).json()["enabled"]
    await owner.aclose()
