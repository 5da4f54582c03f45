from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from distribution.tree import CounterDeltas, move_counter_deltas, moved_ancestor_ids


def test_descendants_keep_their_path_down_to_the_moved_member():
    # root <- a <- m <- d1 <- d2, and m moves under x <- y.
    old, new = ("a", "root"), ("x", "y")
    assert moved_ancestor_ids(("m", "a", "root"), "m", old, new) == ("m", "x", "y")
    assert moved_ancestor_ids(["d1", "m", "a", "root"], "m", old, new) == ("d1", "m", "x", "y")


def test_a_first_bind_appends_the_new_chain_below_the_member():
    assert moved_ancestor_ids(("d1", "m"), "m", (), ("x",)) == ("d1", "m", "x")


@pytest.mark.parametrize(
    "stale",
    [("d1", "m", "b", "root"), ("d1", "m", "a"), ("d1", "a", "root"), ("root",), ()],
)
def test_a_descendant_not_under_the_member_and_its_old_chain_is_refused(stale):
    with pytest.raises(ValueError):
        moved_ancestor_ids(stale, "m", ("a", "root"), ("x",))


def test_counter_deltas_of_a_move_between_trees():
    deltas = move_counter_deltas(("a", "root"), ("x", "y"), team_size=2)
    assert deltas == CounterDeltas(
        team_count={"a": -3, "root": -3, "x": 3, "y": 3},
        direct_count={"a": -1, "x": 1},
    )


def test_counter_deltas_spare_ancestors_on_both_chains():
    deltas = move_counter_deltas(("a", "root"), ("b", "root"), team_size=0)
    assert deltas == CounterDeltas(team_count={"a": -1, "b": 1}, direct_count={"a": -1, "b": 1})


def test_counter_deltas_of_a_first_bind():
    assert move_counter_deltas((), ("x", "y"), team_size=4) == CounterDeltas(
        team_count={"x": 5, "y": 5}, direct_count={"x": 1}
    )


def test_counter_deltas_refuse_a_negative_team():
    with pytest.raises(ValueError):
        move_counter_deltas((), ("x",), team_size=-1)


# A forest as parent pointers: member i's upline is a lower-numbered member, or none.
forests = st.integers(2, 25).flatmap(
    lambda size: st.tuples(*[st.none() if i == 0 else st.one_of(st.none(), st.integers(0, i - 1)) for i in range(size)])
)


def ancestors_of(parents, member):
    chain = []
    while parents[member] is not None:
        member = parents[member]
        chain.append(member)
    return tuple(chain)


def counters(parents):
    team, direct = Counter(), Counter()
    for member in range(len(parents)):
        team.update(ancestors_of(parents, member))
        direct.update([parents[member]] if parents[member] is not None else [])
    return team, direct


@given(forests, st.data())
def test_moving_a_subtree_matches_recomputing_the_whole_forest(parents, data):
    member = data.draw(st.integers(0, len(parents) - 1))
    subtree = [other for other in range(len(parents)) if member in ancestors_of(parents, other)]
    outside = [other for other in range(len(parents)) if other != member and other not in subtree]
    new_upline = data.draw(st.sampled_from(outside)) if outside else None
    moved = list(parents)
    moved[member] = new_upline

    old_chain, new_chain = ancestors_of(parents, member), ancestors_of(moved, member)
    for descendant in subtree:
        rewritten = moved_ancestor_ids(ancestors_of(parents, descendant), member, old_chain, new_chain)
        assert rewritten == ancestors_of(moved, descendant)

    (team_before, direct_before), (team_after, direct_after) = counters(parents), counters(moved)
    deltas = move_counter_deltas(old_chain, new_chain, team_size=len(subtree))
    for each in range(len(parents)):
        assert team_after[each] - team_before[each] == deltas.team_count.get(each, 0)
        assert direct_after[each] - direct_before[each] == deltas.direct_count.get(each, 0)


def test_the_current_chain_follows_members_whose_team_rewrite_is_pending():
    from distribution.tree import current_chain

    # d <- c <- b <- a stored; b has since moved under x <- y, and x under z (both rewrites pending).
    assert current_chain(["c", "b", "a"], {}) == ("c", "b", "a")
    assert current_chain(["c", "b", "a"], {"b": ["x", "y"]}) == ("c", "b", "x", "y")
    assert current_chain(["c", "b", "a"], {"b": ["x", "y"], "x": ["z"]}) == ("c", "b", "x", "z")
    assert current_chain(["c", "b", "a"], {"b": ["a"]}) == ("c", "b", "a")  # rewritten already
    assert current_chain(["c", "b", "a"], {"b": []}) == ("c", "b")  # b moved to the top
