import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from distribution.commission import (
    CommissionLine,
    OrderItem,
    beneficiary_chain,
    compute_commissions,
    refund_share,
)
from distribution.commission_rules import CommissionRules, LevelRule, RuleKind, Trigger
from distribution.records import InvalidField

DEFAULT_RULES = CommissionRules()


def item(paid_fen, sku="tea", qty=1, category=None):
    return OrderItem(sku=sku, title="Longjing tea", qty=qty, paid_fen=paid_fen, category=category)


def amounts(lines):
    return [(line.beneficiary_id, line.level, line.amount_fen) for line in lines]


def test_seed_worked_example():
    # seeds/002: B sells 100 yuan and A, level 1, earns 10%: 10 yuan;
    # C, B's downline, sells 50 yuan and A, level 2, earns 5%: 2.5 yuan.
    b_order = compute_commissions([item(10_000)], ["A"], DEFAULT_RULES, {})
    c_order = compute_commissions([item(5_000)], ["B", "A"], DEFAULT_RULES, {})
    assert b_order == [CommissionLine(0, "tea", "A", 1, 1_000, 10_000)]
    assert amounts(c_order) == [("B", 1, 500), ("A", 2, 250)]


def test_amounts_round_down_to_the_fen():
    assert amounts(compute_commissions([item(999)], ["A", "B"], DEFAULT_RULES, {})) == [("A", 1, 99), ("B", 2, 49)]


def test_one_line_per_item_and_beneficiary():
    lines = compute_commissions([item(10_000, sku="tea"), item(2_000, sku="cup")], ["A", "B"], DEFAULT_RULES, {})
    assert [(line.item_index, line.sku, line.level, line.amount_fen) for line in lines] == [
        (0, "tea", 1, 1_000),
        (0, "tea", 2, 500),
        (1, "cup", 1, 200),
        (1, "cup", 2, 100),
    ]


def test_a_chain_longer_than_the_levels_is_cut():
    assert amounts(compute_commissions([item(10_000)], ["A", "B", "C"], DEFAULT_RULES, {})) == [
        ("A", 1, 1_000),
        ("B", 2, 500),
    ]


def test_no_chain_no_commission():
    assert compute_commissions([item(10_000)], [], DEFAULT_RULES, {}) == []


def test_zero_amounts_make_no_lines():
    rules = CommissionRules(level_rates_bp=(1000, 0))
    assert amounts(compute_commissions([item(10_000), item(0)], ["A", "B"], rules, {})) == [("A", 1, 1_000)]


def test_fixed_amount_per_unit_times_quantity():
    rules = CommissionRules(sku_rules={"tea": {"fixed_fen_per_unit": [300, 100]}})
    lines = compute_commissions([item(30_000, qty=3)], ["A", "B"], rules, {})
    assert amounts(lines) == [("A", 1, 900), ("B", 2, 300)]


def test_fixed_amounts_are_capped_nearest_level_first():
    rules = CommissionRules(sku_rules={"tea": {"fixed_fen_per_unit": [1_000, 1_000]}})
    # 30% of 5,000 leaves room for 1,500 fen: level 1 takes 1,000, level 2 the remaining 500.
    assert amounts(compute_commissions([item(5_000)], ["A", "B"], rules, {})) == [("A", 1, 1_000), ("B", 2, 500)]
    # 30% of 3,001 is 900.3, rounded down: level 1 gets 900 and level 2 nothing.
    assert amounts(compute_commissions([item(3_001)], ["A", "B"], rules, {})) == [("A", 1, 900)]


def test_sku_rule_beats_category_rule_beats_grade_beats_default():
    rules = CommissionRules(
        sku_rules={"tea": {"rate_bp": [2_000, 0]}},
        category_rules={"drinks": {"rate_bp": [1_500, 0]}},
        grade_rates_bp={"gold": (1_200, 800)},
    )
    gold = {"A": "gold", "B": "gold"}
    assert amounts(compute_commissions([item(10_000, "tea", category="drinks")], ["A"], rules, gold)) == [
        ("A", 1, 2_000)
    ]
    assert amounts(compute_commissions([item(10_000, "coffee", category="drinks")], ["A"], rules, gold)) == [
        ("A", 1, 1_500)
    ]
    assert amounts(compute_commissions([item(10_000, "cup")], ["A", "B"], rules, gold)) == [
        ("A", 1, 1_200),
        ("B", 2, 800),
    ]
    assert amounts(compute_commissions([item(10_000, "cup")], ["A", "B"], rules, {})) == [
        ("A", 1, 1_000),
        ("B", 2, 500),
    ]


def test_grade_rates_apply_per_beneficiary():
    rules = CommissionRules(grade_rates_bp={"gold": (2_000, 1_000), "silver": (1_500, 700)})
    grades = {"A": "silver", "B": "gold", "C": "unknown grade"}
    assert amounts(compute_commissions([item(10_000)], ["A", "B"], rules, grades)) == [("A", 1, 1_500), ("B", 2, 1_000)]
    assert amounts(compute_commissions([item(10_000)], ["C", "A"], rules, grades)) == [("C", 1, 1_000), ("A", 2, 700)]


@given(
    paid_fen=st.integers(0, 10**9),
    qty=st.integers(1, 1_000),
    fixed=st.lists(st.integers(0, 10**7), min_size=3, max_size=3),
    chain=st.lists(st.sampled_from("ABCDE"), min_size=0, max_size=5, unique=True),
)
def test_an_items_lines_never_exceed_the_cap(paid_fen, qty, fixed, chain):
    rules = CommissionRules(
        levels=3, level_rates_bp=(1_500, 1_000, 500), sku_rules={"tea": {"fixed_fen_per_unit": fixed}}
    )
    for sku in ("tea", "cup"):
        lines = compute_commissions([item(paid_fen, sku, qty)], chain, rules, {})
        assert sum(line.amount_fen for line in lines) <= paid_fen * 3_000 // 10_000
        assert all(line.amount_fen > 0 for line in lines)
        assert all(line.beneficiary_id == chain[line.level - 1] for line in lines)


def test_beneficiary_chain_without_self_purchase_starts_at_the_upline():
    assert beneficiary_chain("buyer", ("A", "B", "C"), True, DEFAULT_RULES) == ("A", "B")


def test_beneficiary_chain_with_self_purchase_starts_at_a_promoter_buyer():
    rules = CommissionRules(self_purchase=True)
    assert beneficiary_chain("buyer", ["A", "B", "C"], True, rules) == ("buyer", "A")
    assert beneficiary_chain("buyer", ["A", "B", "C"], False, rules) == ("A", "B")
    assert beneficiary_chain("buyer", [], True, rules) == ("buyer",)


def test_commission_rules_defaults():
    rules = CommissionRules()
    assert (rules.levels, rules.level_rates_bp, rules.cap_bp, rules.freeze_days) == (2, (1_000, 500), 3_000, 7)
    assert (rules.self_purchase, rules.trigger) == (False, Trigger.PAID)
    assert CommissionRules.from_dict({}) == rules


def test_commission_rules_round_trip_through_plain_dicts():
    data = {
        "levels": 4,
        "acknowledge_legal_risk": True,
        "level_rates_bp": [1_000, 500, 300, 200],
        "sku_rules": {"tea": {"fixed_fen_per_unit": [500, 100, 0, 0]}},
        "category_rules": {"drinks": {"rate_bp": [800, 400, 200, 100]}},
        "grade_rates_bp": {"gold": [1_200, 600, 300, 200]},
        "self_purchase": True,
        "trigger": "confirmed",
        "freeze_days": 15,
        "cap_bp": 2_500,
    }
    rules = CommissionRules.from_dict(data)
    assert rules.sku_rules["tea"] == LevelRule(RuleKind.FIXED_FEN_PER_UNIT, (500, 100, 0, 0))
    assert rules.grade_rates_bp["gold"] == (1_200, 600, 300, 200)
    assert rules.to_dict() == data
    assert CommissionRules.from_dict(rules.to_dict()) == rules


def test_rules_built_in_code_are_checked_like_rules_read_from_json():
    with pytest.raises(InvalidField) as error:
        CommissionRules(sku_rules={"tea": LevelRule(RuleKind.RATE_BP, (20_000, 0))})
    assert error.value.field == "sku_rules.tea.rate_bp[0]"


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"levels": 0}, "levels"),
        ({"levels": 11, "acknowledge_legal_risk": True}, "levels"),
        ({"levels": 4, "level_rates_bp": [100, 100, 100, 100]}, "levels"),
        ({"levels": "2"}, "levels"),
        ({"acknowledge_legal_risk": "yes"}, "acknowledge_legal_risk"),
        ({"level_rates_bp": [1_000]}, "level_rates_bp"),
        ({"level_rates_bp": [2_500, 600]}, "level_rates_bp"),
        ({"level_rates_bp": "1000,500"}, "level_rates_bp"),
        ({"level_rates_bp": [1_000, -1]}, "level_rates_bp[1]"),
        ({"level_rates_bp": [1_000, 0.5]}, "level_rates_bp[1]"),
        ({"sku_rules": []}, "sku_rules"),
        ({"sku_rules": {"": {"rate_bp": [1, 1]}}}, "sku_rules"),
        ({"sku_rules": {"tea": {}}}, "sku_rules.tea"),
        ({"sku_rules": {"tea": {"rate_bp": [1, 1], "fixed_fen_per_unit": [1, 1]}}}, "sku_rules.tea"),
        ({"sku_rules": {"tea": {"percent": [1, 1]}}}, "sku_rules.tea"),
        ({"sku_rules": {"tea": {"rate_bp": [1]}}}, "sku_rules.tea.rate_bp"),
        ({"sku_rules": {"tea": {"rate_bp": [3_000, 1]}}}, "sku_rules.tea.rate_bp"),
        ({"sku_rules": {"tea": {"fixed_fen_per_unit": [1, 2, 3]}}}, "sku_rules.tea.fixed_fen_per_unit"),
        ({"sku_rules": {"tea": {"fixed_fen_per_unit": [-1, 2]}}}, "sku_rules.tea.fixed_fen_per_unit[0]"),
        ({"category_rules": {"drinks": {"rate_bp": [2_000, 2_000]}}}, "category_rules.drinks.rate_bp"),
        ({"grade_rates_bp": {"gold": [1_000]}}, "grade_rates_bp.gold"),
        ({"grade_rates_bp": {"gold": [3_001, 0]}}, "grade_rates_bp.gold"),
        # Each grade fits the cap alone, but a gold level 1 and a silver level 2 would not.
        ({"grade_rates_bp": {"gold": [2_500, 0], "silver": [0, 1_000]}}, "grade_rates_bp"),
        ({"self_purchase": 1}, "self_purchase"),
        ({"trigger": "shipped"}, "trigger"),
        ({"freeze_days": -1}, "freeze_days"),
        ({"cap_bp": 10_001}, "cap_bp"),
        ({"cap_bp": 1_000}, "level_rates_bp"),
        ({"levels_count": 2}, "levels_count"),
    ],
)
def test_commission_rules_errors_name_the_field(data, field):
    with pytest.raises(InvalidField) as error:
        CommissionRules.from_dict(data)
    assert error.value.field == field


def test_more_than_three_levels_need_the_legal_risk_acknowledged():
    three = CommissionRules(levels=3, level_rates_bp=(1_000, 500, 200))
    assert three.levels == 3
    ten = CommissionRules(levels=10, level_rates_bp=(100,) * 10, acknowledge_legal_risk=True)
    assert ten.levels == 10


def test_order_items_from_the_merchant_api():
    data = {"sku": "tea", "title": "Longjing tea", "qty": 2, "paid_fen": 19_800, "category": "drinks"}
    assert OrderItem.from_dict(data).to_dict() == data
    assert OrderItem.from_dict({"sku": "tea", "title": "Tea", "qty": 1, "paid_fen": 0}).category is None


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"title": "Tea", "qty": 1, "paid_fen": 100}, "sku"),
        ({"sku": "", "title": "Tea", "qty": 1, "paid_fen": 100}, "sku"),
        ({"sku": "tea", "title": "Tea", "qty": 0, "paid_fen": 100}, "qty"),
        ({"sku": "tea", "title": "Tea", "qty": 1, "paid_fen": 99.5}, "paid_fen"),
        ({"sku": "tea", "title": "Tea", "qty": 1, "paid_fen": -1}, "paid_fen"),
        ({"sku": "tea", "title": "Tea", "qty": 1, "paid_fen": 1, "category": 3}, "category"),
    ],
)
def test_order_item_errors_name_the_field(data, field):
    with pytest.raises(InvalidField) as error:
        OrderItem.from_dict(data)
    assert error.value.field == field


def test_refund_share_is_pro_rata_and_rounds_down():
    assert refund_share(1_000, 10_000, 0, 10_000) == 1_000
    assert refund_share(1_000, 10_000, 0, 5_000) == 500
    assert refund_share(333, 1_000, 0, 500) == 166
    assert refund_share(333, 1_000, 500, 500) == 167
    assert refund_share(0, 0, 0, 0) == 0


@pytest.mark.parametrize(("before", "now"), [(-1, 1), (0, -1), (9_000, 1_001), (0, 10_001)])
def test_refund_share_refuses_refunds_that_do_not_fit_the_item(before, now):
    with pytest.raises(ValueError):
        refund_share(1_000, 10_000, before, now)


@st.composite
def partial_refunds(draw):
    """An item, one of its commission lines, and its paid amount split into successive refunds."""
    paid_fen = draw(st.integers(1, 10**8))
    amount_fen = draw(st.integers(0, paid_fen))
    cuts = sorted(draw(st.lists(st.integers(0, paid_fen), max_size=12)))
    bounds = [0, *cuts, paid_fen]
    return paid_fen, amount_fen, [after - before for before, after in itertools.pairwise(bounds)]


@given(partial_refunds())
def test_partial_refunds_cancel_exactly_the_whole_commission(case):
    paid_fen, amount_fen, refunds = case
    refunded_before = cancelled = 0
    for refunded_now in refunds:
        share = refund_share(amount_fen, paid_fen, refunded_before, refunded_now)
        assert share >= 0
        refunded_before += refunded_now
        cancelled += share
        # Whatever the path so far, the cancelled total is the refunded share rounded down.
        assert cancelled == amount_fen * refunded_before // paid_fen
    assert cancelled == amount_fen
