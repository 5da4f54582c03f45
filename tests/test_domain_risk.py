"""The risk rules: each fires on its scenario and stays quiet on the honest twin; the merchant's action decides
what a firing means."""

from __future__ import annotations

import pytest

from distribution.records import InvalidField
from distribution.risk import (
    Action,
    BindVelocity,
    CommissionSpike,
    Identity,
    RefundRate,
    RiskSettings,
    Rule,
    SelfReferral,
    WeChatRiskRank,
    WithdrawalEvidence,
    at_most_hold,
    bind_velocity,
    commission_spike,
    refund_rate,
    self_referral,
    wechat_risk_rank,
    withdrawal_holds,
)

FLAG = SelfReferral()
ALICE = Identity("alice", unionid="u-alice", phone_hash="p-alice", device_hash="d-alice", login_ip_hash="ip-1",
                 openids=frozenset({"o-alice"}))


def buyer(**fields) -> Identity:
    return Identity(**{"member_id": "bob", "upline_id": "alice", "unionid": "u-bob", "phone_hash": "p-bob",
                       "device_hash": "d-bob", "login_ip_hash": "ip-2", **fields})


@pytest.mark.parametrize("shared, fields, payer", [
    ("unionid", {"unionid": "u-alice"}, None),
    ("phone", {"phone_hash": "p-alice"}, None),
    ("device", {"device_hash": "d-alice"}, None),
    ("payer_openid", {}, "o-alice"),
    ("login_ip", {"login_ip_hash": "ip-1"}, None),
])
def test_self_referral_fires_on_each_shared_signal(shared, fields, payer):
    signal = self_referral(FLAG, "o1", buyer(**fields), ALICE, payer)
    assert signal is not None and signal.rule is Rule.SELF_REFERRAL and signal.action is Action.FLAG
    assert signal.evidence["shared"] == [shared] and signal.member_id == "alice"
    assert signal.evidence["buyer_id"] == "bob" and signal.key == "self_referral:o1:alice"


def test_two_different_people_are_no_self_referral():
    assert self_referral(FLAG, "o1", buyer(), ALICE, "o-bob") is None


def test_the_same_address_links_only_a_buyer_bound_to_the_beneficiary_s_own_code():
    stranger = buyer(upline_id="carol", login_ip_hash="ip-1")  # the same café wifi, bound elsewhere
    assert self_referral(FLAG, "o1", stranger, ALICE, None) is None
    second_account = self_referral(FLAG, "o1", buyer(login_ip_hash="ip-1"), ALICE, None)
    assert second_account is not None and second_account.evidence["second_account"] is True


def test_self_purchase_and_allow_are_no_signal():
    assert self_referral(FLAG, "o1", ALICE, ALICE, "o-alice") is None
    assert self_referral(SelfReferral(action=Action.ALLOW), "o1", buyer(unionid="u-alice"), ALICE, None) is None


def test_bind_velocity_fires_past_the_limit_once_per_window():
    rule = BindVelocity(action=Action.REJECT, max_binds=3, window_seconds=60)
    assert bind_velocity(rule, "alice", "ip-hash", 3, 120) is None
    signal = bind_velocity(rule, "alice", "ip-hash", 4, 120)
    assert signal is not None and signal.rejects and signal.subject == "alice:ip-hash:120"


def test_refund_rate_fires_above_the_share_and_not_on_small_or_honest_figures():
    rule = RefundRate(max_refund_bp=3_000, min_paid_fen=10_000)
    assert refund_rate(rule, "alice", "2026-05-01", 100_000, 30_000) is None  # exactly the share
    assert refund_rate(rule, "alice", "2026-05-01", 9_999, 9_999) is None  # too little to say
    signal = refund_rate(rule, "alice", "2026-05-01", 100_000, 30_001)
    assert signal is not None and signal.evidence["rate_bp"] == 3_000


def test_commission_spike_against_the_promoter_s_own_baseline():
    rule = CommissionSpike(baseline_days=10, multiple=5, min_fen=10_000)
    usual = [2_000] * 10  # 200 fen a day on average... of 20,000 over ten days
    assert commission_spike(rule, "alice", "d", 10_000, usual) is None  # five times: not above
    assert commission_spike(rule, "alice", "d", 10_001, usual) is not None
    assert commission_spike(rule, "alice", "d", 9_999, []) is None  # below the floor, even from nothing
    assert commission_spike(rule, "alice", "d", 10_000, []) is not None


def test_wechat_rank_fires_from_the_merchant_s_rank_and_a_missing_rank_is_no_signal():
    rule = WeChatRiskRank(min_rank=3)
    assert wechat_risk_rank(rule, "alice", "w1", None) is None
    assert wechat_risk_rank(rule, "alice", "w1", 2) is None
    assert wechat_risk_rank(rule, "alice", "w1", 3).evidence == {"rank": 3}


def evidence(**fields) -> WithdrawalEvidence:
    return WithdrawalEvidence(**{"withdrawal_id": "w1", "member_id": "alice", "is_first": True, "paying_buyers": 2,
                                 "linked_buyers": 0, "min_distinct_paying_buyers": 1, "commission_today_fen": 0,
                                 "withdrawals_today": 0, **fields})


def test_withdrawal_holds_for_linked_buyers_and_caps_only():
    settings = RiskSettings(daily_commission_cap_fen=50_000, daily_withdrawal_cap=2)
    assert withdrawal_holds(settings, evidence()) == []
    held = withdrawal_holds(settings, evidence(paying_buyers=1, linked_buyers=1, commission_today_fen=50_001,
                                               withdrawals_today=2))
    assert [signal.rule for signal in held] == [Rule.UNLINKED_BUYERS, Rule.DAILY_COMMISSION_CAP,
                                                Rule.DAILY_WITHDRAWAL_CAP]
    assert all(signal.holds for signal in held)
    assert withdrawal_holds(settings, evidence(paying_buyers=1, linked_buyers=1, is_first=False)) == []


def test_the_unlinked_minimum_follows_the_withdrawal_rules_unless_set():
    assert withdrawal_holds(RiskSettings(), evidence(paying_buyers=0, min_distinct_paying_buyers=0)) == []
    own = RiskSettings(min_unlinked_paying_buyers=3)
    assert [signal.rule for signal in withdrawal_holds(own, evidence())] == [Rule.UNLINKED_BUYERS]


def test_a_reject_on_money_already_earned_holds_instead():
    signal = refund_rate(RefundRate(action=Action.REJECT), "alice", "d", 100_000, 90_000)
    assert at_most_hold(signal).action is Action.HOLD and at_most_hold(None) is None


def test_settings_are_bounded():
    with pytest.raises(InvalidField) as error:
        RiskSettings.from_dict({"bind_velocity": {"max_binds": 0}})
    assert error.value.field == "bind_velocity.max_binds"
    assert RiskSettings.from_dict(RiskSettings().to_dict()) == RiskSettings()
