from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from distribution.binding import Refusal, RefusalReason
from distribution.chain_move import (
    ChainMember,
    ChainMoveSettings,
    Join,
    RewardBeneficiaries,
    RewardKind,
    Role,
    compute_rewards,
    decide_join,
    reward_beneficiaries,
)
from distribution.commission import OrderItem, refund_share
from distribution.records import InvalidField
from distribution.tree import move_counter_deltas, moved_ancestor_ids

DIRECT, TEAM, PEER = RewardKind.DIRECT, RewardKind.TEAM, RewardKind.PEER


class Shop:
    """Members as a service would keep them, each join applied as the module's description says."""

    def __init__(self, rules: ChainMoveSettings):
        self.rules = rules
        self.members: dict[str, ChainMember] = {}
        self.recruiters: dict[str, str | None] = {}
        self.team_sizes: Counter[str] = Counter()

    def roles(self, member_ids):
        return {member_id: self.members[member_id].role for member_id in member_ids}

    def join(self, member_id, inviter_id=None, role=Role.AGENT):
        member = self.members.get(member_id) or ChainMember(member_id, role)
        inviter = self.members[inviter_id] if inviter_id is not None else None
        decision = decide_join(member, inviter, self.roles(inviter.owner_ids if inviter else ()), self.rules)
        if isinstance(decision, Refusal):
            return decision
        if member_id in self.members:
            for other in self.members.values():
                if member_id in other.owner_ids:
                    moved = moved_ancestor_ids(other.owner_ids, member_id, decision.expected_owner_ids,
                                               decision.owner_ids)
                    self.members[other.id] = ChainMember(other.id, other.role, other.referral_count, moved)
        deltas = move_counter_deltas(decision.expected_owner_ids, decision.owner_ids, self.team_sizes[member_id])
        self.team_sizes.update(deltas.team_count)
        self.members[member_id] = ChainMember(member_id, decision.role, member.referral_count, decision.owner_ids)
        self.recruiters[member_id] = inviter_id
        if inviter is not None:
            assert inviter.referral_count == decision.position - 1  # the claim's condition
            upgraded = Role.BOSS if decision.inviter_upgrades else inviter.role
            # The inviter may be in the member's team, whose chains have just moved.
            owner_ids = self.members[inviter_id].owner_ids
            self.members[inviter_id] = ChainMember(inviter_id, upgraded, decision.position, owner_ids)
        return decision

    def pay(self, buyer_id, *paid_fen):
        buyer = self.members[buyer_id]
        beneficiaries = reward_beneficiaries(self.recruiters[buyer_id], buyer.owner_ids, self.roles(buyer.owner_ids))
        items = [OrderItem(sku=f"sku-{index}", title="龙井茶", qty=1, paid_fen=fen) for index, fen in enumerate(paid_fen)]
        lines = compute_rewards(items, beneficiaries, self.rules)
        return [(line.beneficiary_id, line.level, line.amount_fen) for line in lines]


def joined(decision):
    assert isinstance(decision, Join), decision
    return decision


def test_the_seeds_worked_flow_pays_to_the_fen():
    shop = Shop(ChainMoveSettings(enabled=True, acknowledge_legal_risk=True, peer_reward_bp=200))
    assert joined(shop.join("E")) == Join("E", Role.BOSS, owner_ids=(), expected_owner_ids=())
    a = joined(shop.join("A", "E"))
    assert (a.role, a.position, a.team_owner_id, a.passed_up, a.inviter_upgrades) == (Role.AGENT, 1, "E", False, False)

    b = joined(shop.join("B", "A"))
    assert (b.position, b.owner_ids, b.passed_up, b.passed_to, b.inviter_upgrades) == (1, ("A", "E"), False, None,
                                                                                       False)
    # A is still an agent: B's team reward goes past A to the nearest boss, E.
    assert shop.pay("B", 9_999) == [("A", DIRECT, 999), ("E", TEAM, 499)]

    c = joined(shop.join("C", "A"))
    assert (c.position, c.owner_ids, c.passed_up, c.passed_to, c.inviter_upgrades) == (2, ("E",), True, "E", True)
    assert shop.members["A"].role is Role.BOSS
    d = joined(shop.join("D", "A"))
    assert (d.position, d.owner_ids, d.passed_up, d.inviter_upgrades) == (3, ("A", "E"), False, False)

    # A recruited all three; B and D are in A's team, C was left to E.
    assert shop.pay("B", 9_999) == [("A", DIRECT, 999), ("A", TEAM, 499), ("E", PEER, 199)]
    assert shop.pay("C", 9_999) == [("A", DIRECT, 999), ("E", TEAM, 499)]
    assert shop.pay("D", 10_000, 1) == [("A", DIRECT, 1_000), ("A", TEAM, 500), ("E", PEER, 200)]
    assert shop.pay("A", 10_000) == [("E", DIRECT, 1_000), ("E", TEAM, 500)]
    assert shop.pay("E", 10_000) == []
    assert shop.team_sizes == {"E": 4, "A": 2}


def test_the_three_plus_one_variant_passes_up_the_second_and_third():
    shop = Shop(ChainMoveSettings(required_directs=3, pass_up_positions=(2, 3)))
    shop.join("E")
    shop.join("A", "E")
    decisions = [joined(shop.join(member_id, "A")) for member_id in ("B", "C", "F", "G")]
    assert [(each.position, each.team_owner_id, each.passed_up, each.inviter_upgrades) for each in decisions] == [
        (1, "A", False, False),
        (2, "E", True, False),
        (3, "E", True, True),
        (4, "A", False, False),
    ]
    assert shop.pay("C", 10_000) == shop.pay("F", 10_000) == [("A", DIRECT, 1_000), ("E", TEAM, 500)]
    assert shop.pay("G", 10_000) == [("A", DIRECT, 1_000), ("A", TEAM, 500)]


def test_one_agents_referrals_take_every_position_once_and_upgrade_it_once():
    shop = Shop(ChainMoveSettings())
    shop.join("E")
    shop.join("A", "E")
    decisions = [joined(shop.join(f"m{index}", "A")) for index in range(50)]
    assert [each.position for each in decisions] == list(range(1, 51))
    assert [each.position for each in decisions if each.passed_up] == [2]
    assert [each.position for each in decisions if each.inviter_upgrades] == [2]
    assert shop.members["A"].referral_count == 50


def test_a_pass_up_skips_agents_to_the_nearest_boss():
    shop = Shop(ChainMoveSettings())
    shop.join("E")
    shop.join("A", "E")
    shop.join("A2", "A")
    shop.join("x", "A2")
    assert joined(shop.join("y", "A2")).owner_ids == ("E",)


def test_with_no_boss_above_a_passed_up_member_has_no_team_owner():
    shop = Shop(ChainMoveSettings())
    shop.members["X"] = ChainMember("X")  # joined while the mode was off
    shop.recruiters["X"] = None
    shop.join("y", "X")
    z = joined(shop.join("z", "X"))
    assert (z.passed_up, z.owner_ids, z.passed_to) == (True, (), None)
    assert shop.pay("z", 10_000) == [("X", DIRECT, 1_000)]


def test_a_boss_invites_into_its_own_team_and_never_upgrades_again():
    decision = joined(decide_join(ChainMember("n"), ChainMember("B", Role.BOSS, 1, ("E",)), {"E": Role.BOSS},
                                  ChainMoveSettings()))
    assert (decision.position, decision.owner_ids, decision.passed_up, decision.inviter_upgrades) == (
        2, ("B", "E"), False, False)


def test_an_agent_past_the_count_upgrades_at_its_next_referral():
    # required_directs was 3 when A reached 2 referrals; the merchant lowered it to 2.
    decision = joined(decide_join(ChainMember("n"), ChainMember("A", referral_count=2), {}, ChainMoveSettings()))
    assert (decision.position, decision.passed_up, decision.inviter_upgrades) == (3, False, True)


def test_a_rebind_keeps_the_role_and_takes_the_members_team_along():
    shop = Shop(ChainMoveSettings())
    for member_id, inviter_id in (("E", None), ("F", None), ("A", "E"), ("B", "A"), ("C", "A"), ("D", "B")):
        shop.join(member_id, inviter_id)
    assert shop.members["A"].role is Role.BOSS
    moved = joined(shop.join("A", "F"))
    assert (moved.role, moved.position, moved.owner_ids, moved.expected_owner_ids) == (Role.BOSS, 1, ("F",), ("E",))
    assert shop.members["B"].owner_ids == ("A", "F")
    assert shop.members["D"].owner_ids == ("B", "A", "F")
    assert shop.members["C"].owner_ids == ("E",)  # passed up: it stays with the boss it was left to
    assert shop.members["E"].referral_count == 1  # positions are never given back
    assert shop.team_sizes == {"E": 1, "F": 3, "A": 2, "B": 1}


def test_a_rebind_that_would_close_a_cycle_of_team_owners_is_refused():
    shop = Shop(ChainMoveSettings())
    for member_id, inviter_id in (("E", None), ("F", None), ("A", "E"), ("B", "A"), ("C", "A")):
        shop.join(member_id, inviter_id)
    shop.join("A", "F")
    # C, passed up to E, is no longer below E in the recruit tree, but E owns it.
    assert shop.join("E", "C") == Refusal(RefusalReason.CYCLE)
    assert shop.members["C"].referral_count == 0
    assert decide_join(ChainMember("A"), ChainMember("A"), {}, ChainMoveSettings()) == Refusal(RefusalReason.CYCLE)


def test_every_owner_role_must_have_been_read():
    with pytest.raises(ValueError):
        decide_join(ChainMember("n"), ChainMember("A", referral_count=1, owner_ids=("E",)), {}, ChainMoveSettings())
    with pytest.raises(ValueError):
        ChainMember("A", referral_count=-1)


def test_rewards_floor_to_the_fen_and_skip_missing_beneficiaries_and_zero_amounts():
    rules = ChainMoveSettings(direct_reward_bp=1_234, team_reward_bp=0, peer_reward_bp=99)
    items = [OrderItem(sku="tea", title="龙井茶", qty=3, paid_fen=999), OrderItem(sku="cup", title="杯", qty=1, paid_fen=0)]
    lines = compute_rewards(items, RewardBeneficiaries(direct_id="A", team_id="B", peer_id="C"), rules)
    assert [(line.item_index, line.sku, line.beneficiary_id, line.level, line.amount_fen, line.item_paid_fen)
            for line in lines] == [(0, "tea", "A", 1, 123, 999), (0, "tea", "C", 3, 9, 999)]
    assert compute_rewards(items, RewardBeneficiaries(), rules) == []


def test_reward_beneficiaries_are_the_recruiter_and_the_first_two_bosses_of_the_owner_chain():
    roles = {"a": Role.AGENT, "b": Role.BOSS, "c": Role.AGENT, "d": Role.BOSS, "e": Role.BOSS}
    assert reward_beneficiaries("r", ["a", "b", "c", "d", "e"], roles) == RewardBeneficiaries("r", "b", "d")
    assert reward_beneficiaries("r", ["a", "b", "c"], roles) == RewardBeneficiaries("r", "b", None)
    assert reward_beneficiaries(None, ["a", "c"], roles) == RewardBeneficiaries()


def test_a_refund_reverses_each_reward_pro_rata_to_the_last_fen():
    lines = compute_rewards([OrderItem(sku="tea", title="龙井茶", qty=1, paid_fen=9_999)],
                            RewardBeneficiaries("A", "A", "E"), ChainMoveSettings(peer_reward_bp=200))
    for line in lines:
        first = refund_share(line.amount_fen, line.item_paid_fen, 0, 3_333)
        rest = refund_share(line.amount_fen, line.item_paid_fen, 3_333, 6_666)
        assert first == line.amount_fen // 3 and first + rest == line.amount_fen


@given(
    paid_fen=st.integers(0, 10**11),
    rates=st.lists(st.integers(0, 10_000), min_size=3, max_size=3),
    cap_bp=st.integers(0, 10_000),
)
def test_an_items_rewards_never_exceed_the_cap(paid_fen, rates, cap_bp):
    direct, team, peer = rates
    try:
        rules = ChainMoveSettings(direct_reward_bp=direct, team_reward_bp=team, peer_reward_bp=peer, cap_bp=cap_bp)
    except InvalidField as error:
        assert sum(rates) > cap_bp and error.field in {"direct_reward_bp", "team_reward_bp", "peer_reward_bp"}
        return
    lines = compute_rewards([OrderItem(sku="tea", title="龙井茶", qty=1, paid_fen=paid_fen)],
                            RewardBeneficiaries("A", "A", "B"), rules)
    assert sum(line.amount_fen for line in lines) <= paid_fen * cap_bp // 10_000


def test_settings_defaults_round_trip():
    rules = ChainMoveSettings()
    assert rules.to_dict() == {
        "enabled": False, "acknowledge_legal_risk": False, "required_directs": 2, "pass_up_positions": [2],
        "direct_reward_bp": 1_000, "team_reward_bp": 500, "peer_reward_bp": 0, "cap_bp": 3_000,
    }
    assert ChainMoveSettings.from_dict(rules.to_dict()) == rules
    assert ChainMoveSettings(enabled=True, acknowledge_legal_risk=True).enabled


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"enabled": True}, "acknowledge_legal_risk"),
        ({"enabled": True, "acknowledge_legal_risk": 1}, "acknowledge_legal_risk"),
        ({"direct_reward_bp": 2_000, "team_reward_bp": 1_001}, "team_reward_bp"),
        ({"peer_reward_bp": 1_501}, "peer_reward_bp"),
        ({"cap_bp": 1_000}, "team_reward_bp"),
        ({"direct_reward_bp": 10_001}, "direct_reward_bp"),
        ({"pass_up_positions": [3]}, "pass_up_positions[0]"),
        ({"pass_up_positions": [0]}, "pass_up_positions[0]"),
        ({"required_directs": 3, "pass_up_positions": [3, 2]}, "pass_up_positions[1]"),
        ({"required_directs": 3, "pass_up_positions": [2, 2]}, "pass_up_positions[1]"),
        ({"required_directs": 0}, "required_directs"),
        ({"required_directs": 11}, "required_directs"),
        ({"required_directs": 1}, "pass_up_positions[0]"),
        ({"required_directs": 2.0}, "required_directs"),
        ({"team_size": 3}, "team_size"),
    ],
)
def test_settings_refuse_naming_the_field(data, field):
    with pytest.raises(InvalidField) as refused:
        ChainMoveSettings.from_dict(data)
    assert refused.value.field == field


def test_settings_allow_no_pass_up_at_all():
    assert ChainMoveSettings(required_directs=1, pass_up_positions=()).pass_up_positions == ()


class Reference:
    """The rules walked naively: team owners as parent pointers, the nearest boss found by climbing them."""

    def __init__(self, rules: ChainMoveSettings):
        self.rules = rules
        self.owner: dict[str, str | None] = {}
        self.role: dict[str, Role] = {}
        self.count: Counter[str] = Counter()

    def join(self, member_id, inviter_id, role):
        self.role.setdefault(member_id, role)
        if inviter_id is None:
            self.role[member_id], self.owner[member_id] = Role.BOSS, None
            return True
        position = self.count[inviter_id] + 1
        owner = inviter_id
        if self.role[inviter_id] is Role.AGENT and position in self.rules.pass_up_positions:
            owner = self.owner[inviter_id]
            while owner is not None and self.role[owner] is not Role.BOSS:
                owner = self.owner[owner]
        climbing = owner
        while climbing is not None:
            if climbing == member_id:
                return False
            climbing = self.owner[climbing]
        self.owner[member_id] = owner
        self.count[inviter_id] = position
        if self.role[inviter_id] is Role.AGENT and position >= self.rules.required_directs:
            self.role[inviter_id] = Role.BOSS
        return True

    def chain(self, member_id):
        chain = []
        while (member_id := self.owner[member_id]) is not None:
            assert len(chain) < len(self.owner), "a cycle of team owners"
            chain.append(member_id)
        return tuple(chain)

    def team_sizes(self):
        return Counter(owner for member_id in self.owner for owner in self.chain(member_id))


chain_rules = st.integers(1, 4).flatmap(lambda required: st.builds(
    lambda positions: ChainMoveSettings(required_directs=required, pass_up_positions=tuple(sorted(positions))),
    st.sets(st.integers(1, required)),
))
# Each arrival: how far back its inviter joined (None: no inviter; near ones make deep chains), and whether it
# was a boss already (it joined with no inviter, then scanned a code before inviting anyone).
arrivals = st.tuples(
    st.one_of(st.none(), st.integers(1, 3), st.integers(1, 200)),
    st.integers(0, 9).map(lambda draw: Role.BOSS if draw == 0 else Role.AGENT),
)


def compare(shop, reference):
    for member_id, member in shop.members.items():
        assert member.owner_ids == reference.chain(member_id)
        assert member.role is reference.role[member_id]
        assert member.referral_count == reference.count[member_id]
    assert min(shop.team_sizes.values(), default=0) >= 0
    assert +shop.team_sizes == reference.team_sizes()


@settings(deadline=None)
@given(chain_rules, st.integers(1, 200).flatmap(lambda size: st.lists(arrivals, min_size=size, max_size=size)))
def test_every_team_owner_matches_a_naive_walk_of_the_rules(rules, joins):
    shop, reference = Shop(rules), Reference(rules)
    for index, (back, role) in enumerate(joins):
        inviter_id = None if back is None or index == 0 else f"m{max(0, index - back)}"
        decision = joined(shop.join(f"m{index}", inviter_id, role))
        assert reference.join(f"m{index}", inviter_id, role)
        assert decision.team_owner_id == reference.owner[f"m{index}"]
    compare(shop, reference)


@settings(deadline=None)
@given(
    chain_rules,
    st.integers(2, 40).flatmap(lambda size: st.lists(arrivals, min_size=size, max_size=size)),
    st.lists(st.tuples(st.integers(0, 39), st.integers(0, 39)), min_size=1, max_size=30),
)
def test_rebinds_keep_team_owners_acyclic_and_counts_exact(rules, joins, rebinds):
    shop, reference = Shop(rules), Reference(rules)
    for index, (back, role) in enumerate(joins):
        inviter_id = None if back is None or index == 0 else f"m{max(0, index - back)}"
        shop.join(f"m{index}", inviter_id, role)
        reference.join(f"m{index}", inviter_id, role)
    for member, inviter in rebinds:
        member_id, inviter_id = f"m{member % len(joins)}", f"m{inviter % len(joins)}"
        if member_id == inviter_id:
            continue  # the binding rules refuse it first
        decision = shop.join(member_id, inviter_id)
        assert isinstance(decision, Join) == reference.join(member_id, inviter_id, Role.AGENT)
    compare(shop, reference)


def test_roles_read_from_documents_are_plain_strings():
    inviter = ChainMember("A", "agent", 1, ["E"])
    assert inviter.role is Role.AGENT and inviter.owner_ids == ("E",)
    assert joined(decide_join(ChainMember("n"), inviter, {"E": "boss"}, ChainMoveSettings())).owner_ids == ("E",)
    with pytest.raises(ValueError):
        reward_beneficiaries("A", ["E"], {"E": "owner"})
