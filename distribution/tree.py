"""Moving a member's subtree when it is re-bound.

Every member stores its ancestors nearest first, and every member stores
`team_count` (all descendants) and `direct_count` (direct members), so that
chain and team queries are single indexed reads. A re-bind therefore rewrites
the ancestors of the member's whole subtree and shifts counters along both
the old and the new chain.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


def moved_ancestor_ids(
    descendant_ancestor_ids: Sequence[str],
    member_id: str,
    old_member_ancestor_ids: Sequence[str],
    new_member_ancestor_ids: Sequence[str],
) -> tuple[str, ...]:
    """A descendant's ancestors after `member_id` moves: its path down to the member, then the member's new ancestors.

    ValueError when the descendant's stored ancestors do not end with the
    member and its old ancestors: the snapshot is stale and must be re-read.
    """
    descendant = tuple(descendant_ancestor_ids)
    old_tail = (member_id, *old_member_ancestor_ids)
    if descendant[-len(old_tail) :] != old_tail:
        raise ValueError(f"ancestors {descendant} do not pass through {member_id} and its old ancestors")
    path_to_member = descendant[: len(descendant) - len(old_member_ancestor_ids)]
    return (*path_to_member, *new_member_ancestor_ids)


def current_chain(chain: Sequence[str], moved: Mapping[str, Sequence[str]]) -> tuple[str, ...]:
    """`chain` (nearest first) as it will be once every pending subtree rewrite is done.

    `moved` holds the stored ancestors of members whose subtree still awaits
    its rewrite (a large team moved, the worker not done yet): from the nearest
    such member on the chain, its own current chain replaces the stored tail.
    """
    for position, member_id in enumerate(chain):
        if member_id in moved:
            return (*chain[:position + 1], *current_chain(moved[member_id], moved))
    return tuple(chain)


@dataclass(frozen=True)
class CounterDeltas:
    """Increments to apply per member id; members whose counters do not change are absent."""

    team_count: dict[str, int]
    direct_count: dict[str, int]


def move_counter_deltas(
    old_ancestor_ids: Sequence[str],
    new_ancestor_ids: Sequence[str],
    team_size: int,
) -> CounterDeltas:
    """Counter changes when a member with `team_size` descendants moves from one chain to another.

    The member and its team leave every old ancestor's team and join every new
    one's; an ancestor on both chains (a move inside its own team) is untouched.
    A first bind is a move from the empty chain.
    """
    if team_size < 0:
        raise ValueError("team_size must not be negative")
    moved = 1 + team_size
    team_count = Counter({ancestor: moved for ancestor in new_ancestor_ids})
    team_count.subtract({ancestor: moved for ancestor in old_ancestor_ids})
    direct_count: Counter[str] = Counter(new_ancestor_ids[:1])
    direct_count.subtract(old_ancestor_ids[:1])
    return CounterDeltas(team_count=_nonzero(team_count), direct_count=_nonzero(direct_count))


def _nonzero(deltas: Counter[str]) -> dict[str, int]:
    return {member_id: delta for member_id, delta in deltas.items() if delta}
