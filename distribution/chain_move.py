"""The chain-move mode (链动2+1): agents, bosses, the pass-up, and rewards from sales.

Every promoter is an agent (代理) or a boss (老板). An agent becomes a boss
once it has invited `required_directs` members; while it is an agent, its
referrals at `pass_up_positions` are left to the nearest boss above it, who
becomes their team owner. Every other referral's team owner is its inviter.
The inviter stays the recruiter (the upline of `distribution.binding`)
either way. A member who joins with no inviter is a boss with no owner.

What each member keeps, so that a join reads a constant number of documents
whatever the depth of the tree:

- `role`: agent or boss. A role only ever goes from agent to boss.
- `referral_count`: the positions its referrals have used, 1 first. It only
  grows: a position is never given back, so none is ever used twice.
- `owner_ids`: its team owners nearest first: its team owner, that member's
  team owner, and so on (like `ancestor_ids`). A member's chain is its team
  owner's chain with the team owner in front, so the nearest boss above an
  inviter is the first boss of the inviter's `owner_ids`, whose roles the
  caller reads with one `$in`, and a passed-up member's chain is the tail of
  the inviter's chain from that boss on.

The service claims the position with one conditional update of the
inviter's `referral_count` (expecting `Join.position - 1`, and setting the
role to boss when `Join.inviter_upgrades`); a loser re-reads and asks again,
so concurrent joins get distinct positions and exactly one upgrade. Roles
read a moment ago can only miss an upgrade that raced the join, which then
counts as having come after it. A member who joined while the mode was off
has no role stored: the service reads one without an upline as a boss and
any other as an agent, both with no referrals and no owners, so turning the
mode on rewrites no one.

Re-binding (an admin re-bind, or the override and expiring bind modes) is a
join at the new inviter, decided by the same rules:

- The member takes the new inviter's next position: it counts toward that
  inviter's upgrade and may be passed up. The member keeps its role.
- The old inviter keeps its count and its role. Giving the position back
  would pass up a second member at the same position, and undoing an earned
  upgrade would move the team of every member who has joined since.
- The member's team moves with it: a member whose owner chain passes
  through it keeps its chain down to it and takes its new chain above
  (`distribution.tree.moved_ancestor_ids` on `owner_ids`, and
  `move_counter_deltas` for the bosses' `team_size`), in the same subtree
  rewrite that moves its ancestors; pending rewrites are read through
  `distribution.tree.current_chain` as for ancestors. Members it passed up
  are not in its team and stay with the bosses they were left to: a pass-up
  is settled, like a paid commission.
- Since a passed-up member's team owner need not be among its ancestors
  once its recruiter has moved, the binding rules' cycle check does not
  cover team owners: a join whose new owner chain holds the member itself
  is refused as a cycle. The service closes the race between two such
  re-binds as it does for binding. Every member thus keeps an owner chain
  ending at a member with no owner: never a cycle, never a lost member, and
  counts that only grow or move.

Rewards come from sales only, never from a sign-up (拉人头 is illegal in
China). They are commission lines (`distribution.commission`) whose level is
the `RewardKind`, so they are posted, settled and reversed on refunds
(`distribution.commission.refund_share`) like the level mode's; the direct
reward is level 1, which counts as the beneficiary's own sale.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Annotated, Self

from pydantic import ConfigDict, Field, StrictBool, model_validator

from distribution.binding import Refusal, RefusalReason
from distribution.commission import CommissionLine, OrderItem
from distribution.money import BasisPoints, share_fen
from distribution.records import Integer, InvalidField, Record

MAX_REQUIRED_DIRECTS = 10

Position = Annotated[Integer, Field(ge=1, le=MAX_REQUIRED_DIRECTS)]


class Role(StrEnum):
    AGENT = "agent"  # 代理
    BOSS = "boss"  # 老板


class RewardKind(IntEnum):
    """A reward's `level` on its commission line."""

    DIRECT = 1  # to the buyer's recruiter
    TEAM = 2  # to the nearest boss on the buyer's team-owner chain
    PEER = 3  # 平级奖: to the next boss above that one

    @property
    def key(self) -> str:
        """Its name in the API and on commission documents: direct, team or peer."""
        return self.name.lower()

    @property
    def words(self) -> str:
        return {RewardKind.DIRECT: "直推奖", RewardKind.TEAM: "团队奖", RewardKind.PEER: "平级奖"}[self]

    @classmethod
    def of_key(cls, key: str) -> RewardKind:
        return cls[key.upper()]


REWARD_FIELDS = {RewardKind.DIRECT: "direct_reward_bp", RewardKind.TEAM: "team_reward_bp",
                 RewardKind.PEER: "peer_reward_bp"}


class ChainMoveSettings(Record):
    """The merchant's chain-move rules; while enabled they replace the level rules for commission."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "enabled": True, "acknowledge_legal_risk": True, "required_directs": 2, "pass_up_positions": [2],
        "direct_reward_bp": 1000, "team_reward_bp": 500, "peer_reward_bp": 0, "cap_bp": 3000,
    }]})

    enabled: StrictBool = Field(
        False, description="Whether the chain-move mode decides teams and commissions instead of the level rules.")
    acknowledge_legal_risk: StrictBool = Field(
        False, description="The merchant accepts that rewarding bosses on their whole team's sales can be judged "
                           "pyramid selling (团队计酬) under Chinese law; required to enable the mode.")
    required_directs: Annotated[Integer, Field(ge=1, le=MAX_REQUIRED_DIRECTS)] = Field(
        2, description="How many members an agent must invite to become a boss: 2 in 链动2+1, 3 in 3+1.")
    pass_up_positions: Annotated[tuple[Position, ...], Field(max_length=MAX_REQUIRED_DIRECTS)] = Field(
        (2,), description="Which of an agent's referrals, counted from 1, are left to the nearest boss above it: "
                          "distinct, ascending, each at most required_directs. Empty: none is.")
    # The level mode's default rates, level 1 then level 2: a shop switching modes keeps the shares its
    # promoters know, and together they stay well inside the cap.
    direct_reward_bp: BasisPoints = Field(
        1000, description="The buyer's recruiter's share of each paid item, in basis points (1000 = 10%).")
    team_reward_bp: BasisPoints = Field(
        500, description="The share of the nearest boss on the buyer's team-owner chain, in basis points; the "
                         "recruiter may receive it too.")
    peer_reward_bp: BasisPoints = Field(
        0, description="The share (平级奖) of the next boss above the one receiving the team reward, in basis points.")
    cap_bp: BasisPoints = Field(
        3000, description="The most an item pays out in rewards, all together, in basis points of its paid amount.")

    @model_validator(mode="after")
    def _enabled_knowingly_with_rewards_under_the_cap(self) -> Self:
        if self.enabled and not self.acknowledge_legal_risk:
            raise InvalidField("acknowledge_legal_risk", "must be true to enable the chain-move mode")
        for index, position in enumerate(self.pass_up_positions):
            if position > self.required_directs:
                raise InvalidField(f"pass_up_positions[{index}]", f"must be at most required_directs "
                                                                  f"({self.required_directs})")
            if index and position <= self.pass_up_positions[index - 1]:
                raise InvalidField(f"pass_up_positions[{index}]", "must be distinct and in ascending order")
        rewards_bp = 0
        for kind, field in REWARD_FIELDS.items():
            rewards_bp += self.reward_bp(kind)
            if rewards_bp > self.cap_bp:
                raise InvalidField(field, f"brings the rewards to {rewards_bp} bp, above cap_bp {self.cap_bp}")
        return self

    def reward_bp(self, kind: RewardKind) -> int:
        return getattr(self, REWARD_FIELDS[kind])


def stored_role(role: str | None, upline_id: str | None) -> Role:
    """A member's role as stored; one who joined while the mode was off has none: a boss without an upline, an
    agent with one."""
    if role is not None:
        return Role(role)
    return Role.AGENT if upline_id is not None else Role.BOSS


@dataclass(frozen=True)
class ChainMember:
    """What the chain-move rules need to know of a member, as stored on it; a new member has the defaults."""

    id: str
    role: Role = Role.AGENT
    referral_count: int = 0
    owner_ids: tuple[str, ...] = ()  # nearest first: its team owner, that member's team owner, ...

    def __post_init__(self) -> None:
        # Services pass values straight from MongoDB; a tuple and an enum keep the snapshot immutable and comparable.
        object.__setattr__(self, "owner_ids", tuple(self.owner_ids))
        object.__setattr__(self, "role", Role(self.role))
        if self.referral_count < 0:
            raise ValueError(f"member {self.id} has a negative referral count")

    @property
    def team_owner_id(self) -> str | None:
        return self.owner_ids[0] if self.owner_ids else None


@dataclass(frozen=True)
class Join:
    """Write this team relation; with an inviter, on condition that its `referral_count` is `position - 1`.

    `expected_owner_ids` is the member's stored chain, which the write must
    find unchanged and from which its team's chains move (see the module's
    description).
    """

    member_id: str
    role: Role
    owner_ids: tuple[str, ...]
    expected_owner_ids: tuple[str, ...]
    inviter_id: str | None = None
    position: int | None = None  # among the inviter's referrals, 1 first
    passed_up: bool = False
    inviter_upgrades: bool = False

    @property
    def team_owner_id(self) -> str | None:
        return self.owner_ids[0] if self.owner_ids else None

    @property
    def passed_to(self) -> str | None:
        """The boss the member was left to; None when it was not passed up or no boss was above its inviter."""
        return self.team_owner_id if self.passed_up else None


JoinDecision = Join | Refusal


def decide_join(
    member: ChainMember, inviter: ChainMember | None, owner_roles: Mapping[str, Role], settings: ChainMoveSettings
) -> JoinDecision:
    """The team relation of `member` joining through `inviter`'s code, or arriving with no inviter when it is None.

    `owner_roles` holds the role of every member of `inviter.owner_ids`. The
    binding rules (`distribution.binding.decide_bind`) have already allowed
    the bind; this refuses only a cycle of team owners.
    """
    if inviter is None:
        return Join(member.id, Role.BOSS, owner_ids=(), expected_owner_ids=member.owner_ids)
    position = inviter.referral_count + 1
    is_agent = inviter.role is Role.AGENT
    passed_up = is_agent and position in settings.pass_up_positions
    if passed_up:
        boss_at = _nearest_boss(inviter.owner_ids, owner_roles)
        owner_ids = () if boss_at is None else inviter.owner_ids[boss_at:]
    else:
        owner_ids = (inviter.id, *inviter.owner_ids)
    if member.id in owner_ids:
        return Refusal(RefusalReason.CYCLE)
    return Join(
        member_id=member.id,
        role=member.role,
        owner_ids=owner_ids,
        expected_owner_ids=member.owner_ids,
        inviter_id=inviter.id,
        position=position,
        passed_up=passed_up,
        inviter_upgrades=is_agent and position >= settings.required_directs,
    )


@dataclass(frozen=True)
class RewardBeneficiaries:
    """Who earns on a buyer's items, by kind: the snapshot an order is paid under."""

    direct_id: str | None = None
    team_id: str | None = None
    peer_id: str | None = None

    def by_kind(self) -> dict[RewardKind, str | None]:
        return {RewardKind.DIRECT: self.direct_id, RewardKind.TEAM: self.team_id, RewardKind.PEER: self.peer_id}


def reward_beneficiaries(
    recruiter_id: str | None, buyer_owner_ids: Sequence[str], owner_roles: Mapping[str, Role]
) -> RewardBeneficiaries:
    """The beneficiaries of a buyer's payment: its recruiter, then the first two bosses of its owner chain.

    `owner_roles` holds the role of every member of `buyer_owner_ids`, as of
    the payment. The recruiter may also be the team boss.
    """
    owner_ids = tuple(buyer_owner_ids)
    team_at = _nearest_boss(owner_ids, owner_roles)
    if team_at is None:
        return RewardBeneficiaries(direct_id=recruiter_id)
    above_team = owner_ids[team_at + 1:]
    peer_at = _nearest_boss(above_team, owner_roles)
    return RewardBeneficiaries(
        direct_id=recruiter_id,
        team_id=owner_ids[team_at],
        peer_id=None if peer_at is None else above_team[peer_at],
    )


def compute_rewards(
    items: Sequence[OrderItem], beneficiaries: RewardBeneficiaries, settings: ChainMoveSettings
) -> list[CommissionLine]:
    """Every reward of an order: one line per item and reward kind with a beneficiary and a positive amount.

    Each amount rounds down to the fen, and the settings keep the rates
    within `cap_bp`, so an item's lines never add up to more than `cap_bp`
    of its paid amount.
    """
    lines = []
    for item_index, item in enumerate(items):
        for kind, beneficiary_id in beneficiaries.by_kind().items():
            amount_fen = share_fen(item.paid_fen, settings.reward_bp(kind))
            if beneficiary_id is not None and amount_fen > 0:
                lines.append(
                    CommissionLine(item_index, item.sku, beneficiary_id, kind.value, amount_fen, item.paid_fen))
    return lines


def _nearest_boss(owner_ids: Sequence[str], owner_roles: Mapping[str, Role]) -> int | None:
    """Where the first boss of `owner_ids` is, or None when all are agents."""
    for index, owner_id in enumerate(owner_ids):
        if owner_id not in owner_roles:
            raise ValueError(f"the role of team owner {owner_id} was not read")
        if Role(owner_roles[owner_id]) is Role.BOSS:
            return index
    return None
