from datetime import datetime, timedelta

import pytest

from distribution.binding import (
    Bind,
    BindingSettings,
    BindMode,
    BindSource,
    MemberSnapshot,
    PromoterStatus,
    Refusal,
    RefusalReason,
    UplineEligibility,
    decide_bind,
    may_be_upline,
)
from distribution.records import InvalidField

NOW = datetime(2024, 5, 1, 12, 0, 0)
LONG_AGO = NOW - timedelta(days=365)


def snapshot(member_id, ancestors=(), bound_days_ago=None, created_at=LONG_AGO, **fields):
    bound_at = NOW - timedelta(days=bound_days_ago) if bound_days_ago is not None else None
    return MemberSnapshot(member_id, created_at, tuple(ancestors), bound_at, **fields)


def decide(member, upline, source=BindSource.OA_SCAN, created_by_this_push=False, **settings):
    return decide_bind(member, upline, BindingSettings(**settings), NOW, source, created_by_this_push)


def refused(reason):
    return Refusal(reason)


def test_an_unbound_member_is_bound_under_the_uplines_chain():
    upline = snapshot("alice", ancestors=("root",), bound_days_ago=3)
    decision = decide(snapshot("bob"), upline, source=BindSource.MINIAPP_SCENE)
    assert decision == Bind(
        member_id="bob",
        upline_id="alice",
        ancestor_ids=("alice", "root"),
        bound_at=NOW,
        source=BindSource.MINIAPP_SCENE,
        expected_ancestor_ids=(),
        expected_bound_at=None,
    )
    assert decision.expected_upline_id is None
    assert not decision.is_rebind


def test_unknown_upline_is_refused():
    assert decide(snapshot("bob"), None) == refused(RefusalReason.UNKNOWN_UPLINE)


def test_binding_to_oneself_is_refused():
    bob = snapshot("bob")
    assert decide(bob, bob) == refused(RefusalReason.SELF)


@pytest.mark.parametrize("depth", [1, 2, 5, 40])
def test_binding_under_ones_own_descendant_is_a_cycle_at_any_depth(depth):
    chain_down_to_bob = (*(f"d{level}" for level in range(depth - 1)), "bob", "root")
    descendant = snapshot("deep", ancestors=chain_down_to_bob, bound_days_ago=1)
    assert decide(snapshot("bob", ("root",), bound_days_ago=9), descendant, bind_mode=BindMode.OVERRIDE) == refused(
        RefusalReason.CYCLE
    )


def test_a_frozen_member_is_not_bound():
    assert decide(snapshot("bob", frozen=True), snapshot("alice")) == refused(RefusalReason.FROZEN_MEMBER)


def test_a_frozen_upline_is_refused():
    assert decide(snapshot("bob"), snapshot("alice", frozen=True)) == refused(RefusalReason.FROZEN_UPLINE)


@pytest.mark.parametrize(
    ("eligibility", "status", "spent_fen", "eligible"),
    [
        (UplineEligibility.EVERYONE, PromoterStatus.NONE, 0, True),
        (UplineEligibility.REVIEWED, PromoterStatus.APPROVED, 0, True),
        (UplineEligibility.REVIEWED, PromoterStatus.PENDING, 0, False),
        (UplineEligibility.REVIEWED, PromoterStatus.REJECTED, 0, False),
        (UplineEligibility.REVIEWED, PromoterStatus.NONE, 10**9, False),
        (UplineEligibility.SPEND_THRESHOLD, PromoterStatus.NONE, 9_999, False),
        (UplineEligibility.SPEND_THRESHOLD, PromoterStatus.NONE, 10_000, True),
        (UplineEligibility.SPEND_THRESHOLD, PromoterStatus.APPROVED, 0, False),
        (UplineEligibility.APPOINTED, PromoterStatus.APPROVED, 10**9, False),
        (UplineEligibility.APPOINTED, PromoterStatus.APPOINTED, 0, True),
        (UplineEligibility.REVIEWED, PromoterStatus.APPOINTED, 0, True),
        (UplineEligibility.SPEND_THRESHOLD, PromoterStatus.APPOINTED, 0, True),
    ],
)
def test_upline_eligibility(eligibility, status, spent_fen, eligible):
    settings = BindingSettings(upline_eligibility=eligibility, spend_threshold_fen=10_000)
    alice = snapshot("alice", promoter_status=status, spent_fen=spent_fen)
    assert may_be_upline(alice, settings) is eligible
    decision = decide_bind(snapshot("bob"), alice, settings, NOW, BindSource.SHARE_LINK, False)
    assert isinstance(decision, Bind) if eligible else decision == refused(RefusalReason.INELIGIBLE_UPLINE)


@pytest.mark.parametrize(
    ("eligibility", "status"),
    [
        (UplineEligibility.EVERYONE, PromoterStatus.NONE),
        (UplineEligibility.REVIEWED, PromoterStatus.APPROVED),
        (UplineEligibility.SPEND_THRESHOLD, PromoterStatus.NONE),
        (UplineEligibility.SPEND_THRESHOLD, PromoterStatus.APPOINTED),
    ],
)
def test_a_bind_names_the_uplines_status_for_the_write_to_check(eligibility, status):
    settings = BindingSettings(upline_eligibility=eligibility, spend_threshold_fen=10_000)
    alice = snapshot("alice", promoter_status=status, spent_fen=50_000)
    decision = decide_bind(snapshot("bob"), alice, settings, NOW, BindSource.OA_SCAN, False)
    assert decision.upline_status == status


@pytest.mark.parametrize("mode", list(BindMode))
def test_the_same_upline_again_is_a_no_op_in_every_mode(mode):
    bound = snapshot("bob", ("alice",), bound_days_ago=400)
    assert decide(bound, snapshot("alice"), bind_mode=mode) == refused(RefusalReason.SAME_UPLINE)


def test_first_bind_wins():
    bound = snapshot("bob", ("alice",), bound_days_ago=400)
    assert decide(bound, snapshot("carol"), bind_mode=BindMode.FIRST_BIND) == refused(RefusalReason.ALREADY_BOUND)


def test_new_members_only_binds_a_member_created_by_this_very_push():
    just_arrived = snapshot("bob", created_at=NOW)
    decision = decide(just_arrived, snapshot("alice"), created_by_this_push=True, bind_mode=BindMode.NEW_MEMBERS_ONLY)
    assert isinstance(decision, Bind)


def test_new_members_only_refuses_an_older_member():
    decision = decide(snapshot("bob"), snapshot("alice"), bind_mode=BindMode.NEW_MEMBERS_ONLY)
    assert decision == refused(RefusalReason.NOT_NEW_MEMBER)


@pytest.mark.parametrize(("age_seconds", "bound"), [(0, True), (299, True), (300, True), (301, False)])
def test_new_members_only_counts_members_created_within_the_window(age_seconds, bound):
    member = snapshot("bob", created_at=NOW - timedelta(seconds=age_seconds))
    decision = decide(member, snapshot("alice"), bind_mode=BindMode.NEW_MEMBERS_ONLY, new_member_window_seconds=300)
    assert isinstance(decision, Bind) if bound else decision == refused(RefusalReason.NOT_NEW_MEMBER)


def test_new_members_only_never_rebinds():
    bound = snapshot("bob", ("alice",), bound_days_ago=0, created_at=NOW)
    decision = decide(bound, snapshot("carol"), created_by_this_push=True, bind_mode=BindMode.NEW_MEMBERS_ONLY)
    assert decision == refused(RefusalReason.ALREADY_BOUND)


def test_override_rebinds_on_condition_that_the_old_relation_is_still_there():
    bound_at = NOW - timedelta(minutes=1)
    member = MemberSnapshot("bob", LONG_AGO, ("alice", "root"), bound_at)
    decision = decide(member, snapshot("carol", ("dave",), bound_days_ago=1), bind_mode=BindMode.OVERRIDE)
    assert decision == Bind(
        member_id="bob",
        upline_id="carol",
        ancestor_ids=("carol", "dave"),
        bound_at=NOW,
        source=BindSource.OA_SCAN,
        expected_ancestor_ids=("alice", "root"),
        expected_bound_at=bound_at,
    )
    assert decision.expected_upline_id == "alice"
    assert decision.is_rebind


@pytest.mark.parametrize(("bound_days_ago", "rebound"), [(0, False), (29, False), (30, True), (31, True)])
def test_expiring_binding_may_change_once_expired(bound_days_ago, rebound):
    member = snapshot("bob", ("alice",), bound_days_ago=bound_days_ago)
    decision = decide(member, snapshot("carol"), bind_mode=BindMode.EXPIRING, bind_expiry_days=30)
    if rebound:
        assert isinstance(decision, Bind)
        assert decision.expected_bound_at == member.bound_at
    else:
        assert decision == refused(RefusalReason.ALREADY_BOUND)


def test_expiring_mode_binds_an_unbound_member():
    assert isinstance(decide(snapshot("bob"), snapshot("alice"), bind_mode=BindMode.EXPIRING), Bind)


def test_admin_rebinds_regardless_of_the_mode():
    member = snapshot("bob", ("alice",), bound_days_ago=1)
    decision = decide(member, snapshot("carol"), source=BindSource.ADMIN, bind_mode=BindMode.FIRST_BIND)
    assert isinstance(decision, Bind)
    assert decision.source is BindSource.ADMIN
    assert decision.expected_ancestor_ids == ("alice",)


def test_admin_binds_a_member_who_is_not_new():
    decision = decide(snapshot("bob"), snapshot("alice"), source=BindSource.ADMIN, bind_mode=BindMode.NEW_MEMBERS_ONLY)
    assert isinstance(decision, Bind)


@pytest.mark.parametrize(
    ("member", "upline", "settings", "reason"),
    [
        (snapshot("bob"), None, {}, RefusalReason.UNKNOWN_UPLINE),
        (snapshot("bob"), snapshot("bob"), {}, RefusalReason.SELF),
        (snapshot("bob"), snapshot("kid", ("bob",), bound_days_ago=1), {}, RefusalReason.CYCLE),
        (snapshot("bob", frozen=True), snapshot("alice"), {}, RefusalReason.FROZEN_MEMBER),
        (snapshot("bob"), snapshot("alice", frozen=True), {}, RefusalReason.FROZEN_UPLINE),
        (
            snapshot("bob"),
            snapshot("alice"),
            {"upline_eligibility": UplineEligibility.APPOINTED},
            RefusalReason.INELIGIBLE_UPLINE,
        ),
        (snapshot("bob", ("alice",), bound_days_ago=1), snapshot("alice"), {}, RefusalReason.SAME_UPLINE),
    ],
)
def test_admin_binds_obey_every_other_rule(member, upline, settings, reason):
    assert decide(member, upline, source=BindSource.ADMIN, **settings) == refused(reason)


def test_an_attempt_breaking_several_rules_gets_the_first_reason():
    bob = snapshot("bob", frozen=True)
    assert decide(bob, bob) == refused(RefusalReason.SELF)
    assert decide(bob, snapshot("alice", frozen=True)) == refused(RefusalReason.FROZEN_MEMBER)


def test_member_snapshot_reads_ancestors_from_a_list_and_derives_the_upline():
    member = MemberSnapshot("bob", LONG_AGO, ["alice", "root"], NOW)
    assert member.ancestor_ids == ("alice", "root")
    assert member.upline_id == "alice"
    assert snapshot("root").upline_id is None


def test_member_snapshot_refuses_an_upline_without_bound_at():
    with pytest.raises(ValueError, match="bound_at"):
        MemberSnapshot("bob", LONG_AGO, ("alice",))


def test_binding_settings_defaults():
    settings = BindingSettings()
    assert settings.upline_eligibility is UplineEligibility.EVERYONE
    assert settings.bind_mode is BindMode.FIRST_BIND
    assert BindingSettings.from_dict({}) == settings


def test_binding_settings_round_trip_through_plain_dicts():
    data = {
        "upline_eligibility": "spend_threshold",
        "spend_threshold_fen": 9_900,
        "bind_mode": "expiring",
        "new_member_window_seconds": 60,
        "bind_expiry_days": 7,
    }
    settings = BindingSettings.from_dict(data)
    assert settings.upline_eligibility is UplineEligibility.SPEND_THRESHOLD
    assert settings.bind_mode is BindMode.EXPIRING
    assert settings.to_dict() == data
    assert type(settings.to_dict()["bind_mode"]) is str


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"upline_eligibility": "friends"}, "upline_eligibility"),
        ({"bind_mode": "FIRST_BIND"}, "bind_mode"),
        ({"bind_mode": None}, "bind_mode"),
        ({"spend_threshold_fen": -1}, "spend_threshold_fen"),
        ({"spend_threshold_fen": 1.5}, "spend_threshold_fen"),
        ({"spend_threshold_fen": "100"}, "spend_threshold_fen"),
        ({"new_member_window_seconds": True}, "new_member_window_seconds"),
        ({"bind_expiry_days": 0}, "bind_expiry_days"),
        ({"bind_expiry_dayz": 3}, "bind_expiry_dayz"),
        ([], "BindingSettings"),
    ],
)
def test_binding_settings_errors_name_the_field(data, field):
    with pytest.raises(InvalidField) as error:
        BindingSettings.from_dict(data)
    assert error.value.field == field
    assert str(error.value).startswith(f"{field}: ")
