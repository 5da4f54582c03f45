"""The commission preview: who earns what on one item under candidate rules, computed by the calculation paid
orders use, and served to the merchant API without storing anything."""

from __future__ import annotations

import pytest

from bot.app import API_ROUTES
from distribution.commission_rules import CommissionRules, RuleKind
from distribution.preview import CommissionPreviewRequest, PreviewOrder, preview_commissions
from distribution.records import InvalidField
from tests.conftest import MERCHANT_TOKEN
from web.openapi import build_document

MERCHANT = {"Authorization": f"Bearer {MERCHANT_TOKEN}"}
PREVIEW = "/api/merchant/v1/settings/commission/preview"


def amounts(rules: CommissionRules, **order) -> list[tuple[str, int]]:
    return [(line.beneficiary, line.amount_fen) for line in preview_commissions(rules, PreviewOrder(**order)).lines]


def test_the_default_rules_pay_the_two_nearest_uplines():
    preview = preview_commissions(CommissionRules(), PreviewOrder(paid_fen=999, upline_grades=(None, None, None)))
    assert [(line.level, line.beneficiary, line.rule_kind, line.rule_value, line.amount_fen)
            for line in preview.lines] == [(1, "upline_1", RuleKind.RATE_BP, 1000, 99),
                                           (2, "upline_2", RuleKind.RATE_BP, 500, 49)]  # rounded down
    assert (preview.paid_fen, preview.cap_fen, preview.total_fen) == (999, 299, 148)


def test_self_purchase_pays_a_promoter_buyer_level_one_and_nobody_else_unless_they_promote():
    rules = CommissionRules(self_purchase=True)
    assert amounts(rules, paid_fen=10_000, buyer_is_promoter=True) == [("buyer", 1_000), ("upline_1", 500)]
    assert amounts(rules, paid_fen=10_000) == [("upline_1", 1_000), ("upline_2", 500)]
    assert amounts(CommissionRules(), paid_fen=10_000, buyer_is_promoter=True) == [("upline_1", 1_000),
                                                                                  ("upline_2", 500)]


def test_a_short_chain_pays_only_the_uplines_there_are():
    rules = CommissionRules(levels=3, level_rates_bp=(1000, 500, 200))
    assert amounts(rules, paid_fen=10_000, upline_grades=(None,)) == [("upline_1", 1_000)]
    assert amounts(rules, paid_fen=10_000, upline_grades=()) == []


def test_rules_apply_sku_first_then_category_then_grade_then_the_defaults():
    rules = CommissionRules.from_dict({
        "sku_rules": {"tea": {"fixed_fen_per_unit": [300, 100]}}, "category_rules": {"drinks": {"rate_bp": [800, 400]}},
        "grade_rates_bp": {"gold": [2000, 1000]},
    })
    chain = {"paid_fen": 10_000, "upline_grades": ("gold", None)}
    assert amounts(rules, sku="tea", category="drinks", qty=3, **chain) == [("upline_1", 900), ("upline_2", 300)]
    assert amounts(rules, sku="coffee", category="drinks", **chain) == [("upline_1", 800), ("upline_2", 400)]
    assert amounts(rules, sku="cup", **chain) == [("upline_1", 2_000), ("upline_2", 500)]


def test_the_cap_serves_the_nearest_first_and_every_level_is_listed_even_at_nothing():
    rules = CommissionRules.from_dict({"sku_rules": {"tea": {"fixed_fen_per_unit": [1_000, 1_000]}}})
    preview = preview_commissions(rules, PreviewOrder(paid_fen=5_000, sku="tea", qty=2))
    assert [(line.wanted_fen, line.amount_fen, line.capped) for line in preview.lines] == [(2_000, 1_500, True),
                                                                                          (2_000, 0, True)]
    assert preview.total_fen == preview.cap_fen == 1_500


def test_a_preview_order_is_validated_like_any_record():
    with pytest.raises(InvalidField) as refused:
        PreviewOrder.from_dict({"paid_fen": 100, "upline_grades": [None] * 11})
    assert refused.value.field == "upline_grades"
    with pytest.raises(InvalidField) as refused:
        CommissionPreviewRequest.from_dict({"paid_fen": 100, "rules": {"level_rates_bp": [1000]}})
    assert refused.value.field == "rules.level_rates_bp"


# --- the merchant API ------------------------------------------------------------------------


async def test_the_api_previews_candidate_rules_and_stores_nothing(server):
    body = {"rules": {"levels": 3, "level_rates_bp": [1000, 500, 200], "grade_rates_bp": {"gold": [1500, 700, 300]},
                      "self_purchase": True},
            "paid_fen": 10_000, "buyer_is_promoter": True, "buyer_grade": "gold", "upline_grades": [None, "gold"]}
    answer = await server.http.post(PREVIEW, json=body, headers=MERCHANT)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "paid_fen": 10_000, "cap_fen": 3_000, "total_fen": 1_500 + 500 + 300,
        "levels": [
            {"level": 1, "beneficiary": "buyer", "grade": "gold", "rate_bp": 1500, "fixed_fen_per_unit": None,
             "wanted_fen": 1_500, "amount_fen": 1_500},
            {"level": 2, "beneficiary": "upline_1", "grade": None, "rate_bp": 500, "fixed_fen_per_unit": None,
             "wanted_fen": 500, "amount_fen": 500},
            {"level": 3, "beneficiary": "upline_2", "grade": "gold", "rate_bp": 300, "fixed_fen_per_unit": None,
             "wanted_fen": 300, "amount_fen": 300},
        ],
    }
    assert (await server.merchant_get("/api/merchant/v1/settings/commission")).json() == CommissionRules().to_dict()


@pytest.mark.parametrize("body, field", [
    ({"rules": {"level_rates_bp": [1000]}, "paid_fen": 100}, "rules.level_rates_bp"),
    ({"rules": {"levels": 4, "level_rates_bp": [1, 1, 1, 1]}, "paid_fen": 100}, "rules.levels"),
    ({"rules": {"sku_rules": {"tea": {"rate_bp": [3000, 1000]}}}, "paid_fen": 100}, "rules.sku_rules.tea.rate_bp"),
    ({"rules": {}}, "paid_fen"),
    ({"paid_fen": 100}, "rules"),
    ({"rules": {}, "paid_fen": 100, "qty": 0}, "qty"),
    ({"rules": {}, "paid_fen": 100, "upline_grades": ["gold", ""]}, "upline_grades[1]"),
    ({"rules": {}, "paid_fen": 100, "chain": []}, "chain"),
])
async def test_invalid_candidate_rules_or_orders_are_refused_naming_the_field(server, body, field):
    answer = await server.http.post(PREVIEW, json=body, headers=MERCHANT)
    assert (answer.status_code, answer.json()["error"]["field"]) == (400, field)


async def test_the_preview_needs_the_merchant_token(server):
    answer = await server.http.post(PREVIEW, json={"rules": {}, "paid_fen": 100})
    assert answer.status_code == 401


def test_the_openapi_document_describes_the_preview():
    document = build_document(API_ROUTES)
    operation = document["paths"][PREVIEW]["post"]
    assert set(operation["responses"]) >= {"200", "400", "401"}
    assert operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/CommissionPreviewRequest")
    answer = document["components"]["schemas"]["CommissionPreview"]
    assert {"paid_fen", "cap_fen", "total_fen", "levels"} <= set(answer["properties"])
