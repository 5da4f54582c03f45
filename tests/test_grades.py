"""Promoter grades: the upgrade decision (pure), and upgrades after settlements and binds."""

from datetime import datetime, timedelta, timezone

import pytest

from distribution.binding import BindSource
from distribution.grades import Grade, GradeSettings, PromoterMetrics, upgrade
from distribution.records import InvalidField
from tests.order_fixtures import add_member, put_grades

GRADES = GradeSettings(grades=(
    Grade(name="silver", min_direct_members=2),
    Grade(name="gold", min_own_settled_sales_fen=100_000, min_direct_members=5),
    Grade(name="diamond", min_team_settled_sales_fen=1_000_000, min_direct_members=10),
))


def metrics(own=0, direct=0, team=0):
    return PromoterMetrics(own_settled_sales_fen=own, direct_members=direct, team_settled_sales_fen=team)


def test_the_highest_grade_whose_every_condition_holds():
    assert upgrade(None, metrics(direct=1), GRADES) is None
    assert upgrade(None, metrics(direct=2), GRADES) == "silver"
    assert upgrade(None, metrics(own=100_000, direct=4), GRADES) == "silver"  # gold needs 5 directs too
    assert upgrade(None, metrics(own=100_000, direct=5), GRADES) == "gold"
    assert upgrade(None, metrics(own=0, direct=10, team=1_000_000), GRADES) == "diamond"  # grades may be skipped


def test_grades_only_go_up():
    assert upgrade("gold", metrics(direct=2), GRADES) is None
    assert upgrade("gold", metrics(own=100_000, direct=5), GRADES) is None
    assert upgrade("silver", metrics(own=100_000, direct=5), GRADES) == "gold"
    assert upgrade("removed-grade", metrics(direct=2), GRADES) == "silver"


def test_grade_settings_are_checked():
    with pytest.raises(InvalidField) as error:
        GradeSettings.from_dict({"grades": [{"name": "a"}, {"name": "a"}]})
    assert error.value.field == "grades[1].name"
    with pytest.raises(InvalidField) as error:
        GradeSettings.from_dict({"grades": [{"name": "x" * 33}]})
    assert error.value.field == "grades[0].name"
    with pytest.raises(InvalidField) as error:
        GradeSettings.from_dict({"grades": [{"name": "a", "min_team_settled_sales_fen": "lots"}]})
    assert error.value.field == "grades[0].min_team_settled_sales_fen"
    with pytest.raises(InvalidField) as error:  # past what MongoDB stores as an integer
        GradeSettings.from_dict({"grades": [{"name": "a", "min_own_settled_sales_fen": 2**63}]})
    assert error.value.field == "grades[0].min_own_settled_sales_fen"
    assert GradeSettings.from_dict(GRADES.to_dict()) == GRADES


async def test_binds_count_as_new_direct_members_and_can_upgrade_the_upline(server):
    runtime = server.runtime
    await put_grades(runtime, {"name": "silver", "min_direct_members": 2})
    upline = await add_member(runtime)
    bound_at = datetime.now(timezone.utc)
    for _ in range(2):
        newcomer = await add_member(runtime)
        outcome = await runtime.relations.bind(newcomer, upline["_id"], BindSource.OA_SCAN, bound_at)
        assert outcome.bound
    await runtime.relations.apply_follow_ups()  # the worker logs the binds
    # The count stays a minute behind the bind log: a bind's id is made before its transaction commits.
    assert await runtime.stats.count_binds(bound_at) == 0
    later = bound_at + timedelta(minutes=2)
    assert await runtime.stats.count_binds(later) == 2
    assert await runtime.stats.count_binds(later) == 0  # each bind counted once
    day = (bound_at + timedelta(hours=8)).date().isoformat()
    assert (await runtime.stats.day(upline["_id"], day))["new_direct_members"] == 2
    assert await runtime.grades.grades_of([upline["_id"]]) == {upline["_id"]: "silver"}
    [change] = await runtime.grades.history(upline["_id"])
    assert (change["from_grade"], change["to_grade"], change["reason"]) == (None, "silver", "bind")


async def test_an_upgrade_is_recorded_once_when_evaluated_twice(server):
    runtime = server.runtime
    await put_grades(runtime, {"name": "silver", "min_direct_members": 1})
    upline = await add_member(runtime)
    await add_member(runtime, upline)
    first = await runtime.grades.evaluate([upline["_id"], upline["_id"]], "test")
    again = await runtime.grades.evaluate([upline["_id"]], "test")
    assert first == {upline["_id"]: "silver"} and again == {}
    assert len(await runtime.grades.history(upline["_id"])) == 1
