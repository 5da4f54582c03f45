"""The console's settings forms: each kind shows what is stored and saves through the same record as the API,
refuses what the record refuses (400, the field named, nothing saved), previews commission rules before they
are saved exactly as a paid order pays them, and is the owners' alone."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from distribution.binding import BindingSettings
from distribution.commission_rules import CommissionRules
from distribution.grades import GradeSettings
from distribution.poster_settings import PosterSettings
from distribution.withdrawals import WithdrawalRules
from handlers.console.shop_settings import FORMS
from tests.conftest import MERCHANT_TOKEN
from tests.console_fixtures import staff_client
from tests.order_fixtures import chain, commissions_of, drain, item

MERCHANT = {"Authorization": f"Bearer {MERCHANT_TOKEN}"}
DEFAULTS = {"binding": BindingSettings(), "commission": CommissionRules(), "withdrawals": WithdrawalRules(),
            "grades": GradeSettings(), "posters": PosterSettings()}


class FormReader(HTMLParser):
    """A page's form as a browser would post it, each input's classes, and the field errors shown."""

    def __init__(self, page: str):
        super().__init__()
        self.values: dict[str, str] = {}
        self.classes: dict[str, str] = {}
        self.field_errors: dict[str, str] = {}
        self._textarea: str | None = None
        self._select: str | None = None
        self._error: str | None = None
        self.preview: dict[str, int] = {}  # beneficiary -> amount in fen, per row of the preview table
        self.feed(page)

    def handle_starttag(self, tag: str, attributes: list) -> None:
        given = {name: value or "" for name, value in attributes}
        name = given.get("name")
        if name:
            self.classes[name] = given.get("class", "")
        if tag == "input" and name and name != "_csrf":
            if given.get("type") != "checkbox" or "checked" in given:
                self.values[name] = given.get("value", "on")
        elif tag == "textarea":
            self._textarea = name
            self.values[name] = ""
        elif tag == "select":
            self._select = name
        elif tag == "option" and "selected" in given and self._select:
            self.values[self._select] = given["value"]
        if "field-error" in given.get("class", "").split():
            self._error = given["data-field"]
            self.field_errors[self._error] = ""
        if tag == "tr" and "data-beneficiary" in given:
            self.preview[given["data-beneficiary"]] = int(given["data-amount-fen"])

    def handle_endtag(self, tag: str) -> None:
        if tag == "textarea":
            self._textarea = None
        elif tag == "select":
            self._select = None
        elif tag in ("span", "p"):
            self._error = None

    def handle_data(self, data: str) -> None:
        if self._textarea:
            self.values[self._textarea] += data
        if self._error:
            self.field_errors[self._error] += data


def shown_settings(name: str, values: dict[str, str]) -> dict:
    """The settings a page's inputs show, read as the form reads them when posted."""
    return FORMS[name].validated(values).to_dict()


async def stored(server, name: str) -> dict:
    return (await server.merchant_get(f"/api/merchant/v1/settings/{name}")).json()


async def audit_entries(server, action: str) -> list[dict]:
    return await server.runtime.db["audit_log"].find({"action": action}).to_list()


# One input of each kind's page and what it shows of the defaults.
SHOWN_DEFAULT = {"binding": ("bind_expiry_days", "30"), "commission": ("level_rates_bp", "1000, 500"),
                 "withdrawals": ("daily_amount_cap_fen", "500000"), "grades": ("grades[0].name", ""),
                 "posters": ("keywords", "海报, 推广海报")}
# What each kind's form is changed to, and the settings that must then be stored.
CHANGES = {
    "binding": (
        {"upline_eligibility": "spend_threshold", "spend_threshold_fen": "9900", "bind_mode": "expiring",
         "new_member_window_seconds": "0", "bind_expiry_days": "15"},
        {"upline_eligibility": "spend_threshold", "spend_threshold_fen": 9_900, "bind_mode": "expiring",
         "new_member_window_seconds": 0, "bind_expiry_days": 15},
    ),
    "commission": (
        {"levels": "3", "level_rates_bp": "1200, 500，200",
         "sku_rules": '{"tea": {"fixed_fen_per_unit": [800, 300, 100]}}',
         "category_rules": "", "grade_rates_bp": '{"gold": [1500, 700, 300]}', "self_purchase": "on",
         "trigger": "confirmed", "freeze_days": "10", "cap_bp": "3000"},
        {"levels": 3, "acknowledge_legal_risk": False, "level_rates_bp": [1200, 500, 200],
         "sku_rules": {"tea": {"fixed_fen_per_unit": [800, 300, 100]}}, "category_rules": {},
         "grade_rates_bp": {"gold": [1500, 700, 300]}, "self_purchase": True, "trigger": "confirmed",
         "freeze_days": 10, "cap_bp": 3000},
    ),
    "withdrawals": (
        {"min_fen": "1000", "daily_count_cap": "2", "daily_amount_cap_fen": "300000", "fee_bp": "60",
         "auto_approve_under_fen": "0", "min_distinct_paying_buyers": "2", "confirm_within_hours": "12",
         "real_name_check": "on"},
        {"min_fen": 1_000, "daily_count_cap": 2, "daily_amount_cap_fen": 300_000, "fee_bp": 60,
         "auto_approve_under_fen": 0, "min_distinct_paying_buyers": 2, "confirm_within_hours": 12,
         "real_name_check": True},
    ),
    "grades": (  # a blank row between two grades is skipped
        {"grades[0].name": "silver", "grades[0].min_direct_members": "2", "grades[1].name": "",
         "grades[2].name": "gold", "grades[2].min_own_settled_sales_fen": "100000",
         "grades[2].min_team_settled_sales_fen": "500000"},
        {"grades": [
            {"name": "silver", "min_own_settled_sales_fen": 0, "min_direct_members": 2,
             "min_team_settled_sales_fen": 0},
            {"name": "gold", "min_own_settled_sales_fen": 100_000, "min_direct_members": 0,
             "min_team_settled_sales_fen": 500_000}]},
    ),
    "posters": (
        {"templates": '{"spring": {"design": "fresh", "headline": "春季大促"}}', "default_template": "spring",
         "keywords": "海报, 邀请码", "code_type": "miniapp_code", "qr_expire_days": "7",
         "miniapp_page": "pages/invite/index"},
        {"templates": {"spring": {"design": "fresh", "version": 1, "headline": "春季大促", "background_id": None}},
         "default_template": "spring", "keywords": ["海报", "邀请码"], "code_type": "miniapp_code",
         "permanent_qr": False, "qr_expire_days": 7, "miniapp_page": "pages/invite/index"},
    ),
}


async def test_the_settings_page_lists_every_kind_the_api_serves(server):
    owner = await staff_client(server, "owner")
    page = await owner.get("/admin/settings")
    assert page.status_code == 200
    for name in DEFAULTS:
        assert f'href="/admin/settings/{name}"' in page.text
    assert (await owner.get("/admin/settings/nothing")).status_code == 404


@pytest.mark.parametrize("name", sorted(CHANGES))
async def test_each_kind_shows_what_is_stored_and_saves_through_the_form(server, name):
    owner = await staff_client(server, "owner")
    shown = FormReader((await owner.get(f"/admin/settings/{name}")).text).values
    assert shown_settings(name, shown) == DEFAULTS[name].to_dict()
    input_name, text = SHOWN_DEFAULT[name]
    assert shown[input_name] == text

    posted, expected = CHANGES[name]
    saved = await owner.post(f"/admin/settings/{name}", posted)
    assert (saved.status_code, saved.headers["Location"]) == (303, f"/admin/settings/{name}?saved=1"), saved.text
    assert await stored(server, name) == expected

    again = await owner.get(f"/admin/settings/{name}", saved="1")
    assert '<p class="notice" role="status">已保存</p>' in again.text
    assert shown_settings(name, FormReader(again.text).values) == expected
    [entry] = await audit_entries(server, f"settings.{name}")
    assert entry["actor"] == {"kind": "staff", "name": "owner1", "role": "owner"}
    assert entry["target"] == {"kind": "settings", "id": name}
    assert (entry["before"], entry["after"]) == (DEFAULTS[name].to_dict(), expected)


REFUSALS = [
    ("commission", {"level_rates_bp": "1000"}, "level_rates_bp", "level_rates_bp", "must have 2 entries"),
    ("commission", {"levels": "two"}, "levels", "levels", "must be an integer"),
    ("commission", {"levels": "4"}, "levels", "levels", "acknowledge_legal_risk"),
    ("commission", {"sku_rules": '{"tea": '}, "sku_rules", "sku_rules", "JSON"),
    ("commission", {"sku_rules": "[" * 5_000 + "]" * 5_000}, "sku_rules", "sku_rules", "JSON"),
    ("commission", {"category_rules": '{"a": ' * 40 + "1" + "}" * 40}, "category_rules", "category_rules", "嵌套"),
    ("commission", {"sku_rules": '{"tea": {"rate_bp": [2500, 1000]}}'}, "sku_rules.tea.rate_bp", "sku_rules",
     "above cap_bp"),
    ("binding", {"bind_expiry_days": "0"}, "bind_expiry_days", "bind_expiry_days", "at least 1"),
    ("withdrawals", {"min_fen": "600000"}, "min_fen", "min_fen", "daily_amount_cap_fen"),
    ("grades", {"grades[0].name": "gold", "grades[3].name": "gold"}, "grades[3].name", "grades[3].name",
     "named twice"),
    ("grades", {"grades[1].min_direct_members": "-1", "grades[1].name": "gold"}, "grades[1].min_direct_members",
     "grades[1].min_direct_members", "at least 0"),
    ("posters", {"default_template": "missing"}, "default_template", "default_template", "one of the templates"),
    ("posters", {"keywords": "海报, 海报 "}, "keywords[1]", "keywords", "listed twice"),
]


@pytest.mark.parametrize("name, change, field, input_name, problem", REFUSALS,
                         ids=[f"{case[0]}:{case[2]}" for case in REFUSALS])
async def test_an_invalid_form_is_refused_naming_the_field_and_nothing_is_saved(server, name, change, field,
                                                                                input_name, problem):
    owner = await staff_client(server, "owner")
    shown = FormReader((await owner.get(f"/admin/settings/{name}")).text).values
    refused = await owner.post(f"/admin/settings/{name}", {**shown, **change})
    assert refused.status_code == 400
    page = FormReader(refused.text)
    assert problem in page.field_errors[field]
    assert "invalid" in page.classes[input_name].split()
    assert page.values[input_name] == change[input_name]  # what was typed stays for correcting
    assert await stored(server, name) == DEFAULTS[name].to_dict()
    assert await audit_entries(server, f"settings.{name}") == []


async def test_a_json_answer_names_the_field_too(server):
    owner = await staff_client(server, "owner")
    answer = await owner.http.post("/admin/settings/binding", data={"bind_expiry_days": "0", "_csrf": owner.csrf},
                                   headers={"Accept": "application/json"})
    # The form answers a page, whatever is accepted: the refusal is in it, with the field named.
    assert answer.status_code == 400
    assert "bind_expiry_days" in FormReader(answer.text).field_errors


async def test_operators_and_finance_may_not_see_or_change_settings(server):
    owner = await staff_client(server, "owner")
    for role in ("operator", "finance"):
        staff = await staff_client(server, role)
        for path in ("/admin/settings", "/admin/settings/commission"):
            assert (await staff.get(path)).status_code == 403
        assert (await staff.post("/admin/settings/binding", {"bind_expiry_days": "5"})).status_code == 403
        assert (await staff.post("/admin/settings/commission/preview", {"paid_fen": "100"})).status_code == 403
    assert await stored(server, "binding") == BindingSettings().to_dict()
    without_token = await owner.post("/admin/settings/binding", {"bind_expiry_days": "5"}, csrf=False)
    assert without_token.status_code == 403
    assert await stored(server, "binding") == BindingSettings().to_dict()


# --- the commission preview ------------------------------------------------------------------

RULES_FORM = {
    "levels": "3", "level_rates_bp": "1000, 500, 200", "sku_rules": '{"tea": {"fixed_fen_per_unit": [900, 400, 100]}}',
    "category_rules": '{"cups": {"rate_bp": [600, 300, 100]}}', "grade_rates_bp": '{"gold": [1500, 700, 300]}',
    "self_purchase": "on", "trigger": "paid", "freeze_days": "7", "cap_bp": "3000",
}
# The buyer is a promoter of grade silver (no rates of its own); above them mid (gold), then root (no grade).
CHAIN_FORM = {"buyer_is_promoter": "on", "buyer_grade": "silver", "upline_grades": "gold, -"}
ITEMS = [  # (preview fields, the order's item)
    ({"paid_fen": "5000", "qty": "3", "sku": "tea"}, item(5_000, sku="tea", qty=3)),  # 2,700 wanted, 1,500 cap
    ({"paid_fen": "10000", "qty": "1", "sku": "mug", "category": "cups"},
     item(10_000, sku="mug", category="cups")),
    ({"paid_fen": "9999", "qty": "2", "sku": "book"}, item(9_999, sku="book", qty=2)),  # grade rates at mid
]


async def test_the_preview_shows_what_a_real_order_under_those_rules_pays(server):
    runtime = server.runtime
    owner = await staff_client(server, "owner")
    previews = []
    for fields, _ in ITEMS:
        shown = await owner.post("/admin/settings/commission/preview", {**RULES_FORM, **CHAIN_FORM, **fields})
        assert shown.status_code == 200, shown.text
        previews.append(FormReader(shown.text).preview)
        assert 'id="commission-preview"' in shown.text
    assert await stored(server, "commission") == CommissionRules().to_dict()  # a preview saves nothing

    # The same rules saved through the form, and an order through the API to the same chain.
    assert (await owner.post("/admin/settings/commission", RULES_FORM)).status_code == 303
    root, mid, buyer = await chain(runtime, 2)
    await runtime.db["promoter_totals"].insert_many([{"_id": buyer["_id"], "grade": "silver"},
                                                     {"_id": mid["_id"], "grade": "gold"}])
    order = {"order_no": "PREVIEWED", "buyer": {"member_id": buyer["_id"]}, "items": [each for _, each in ITEMS]}
    assert (await server.http.post("/api/merchant/v1/orders", json=order, headers=MERCHANT)).status_code == 201
    paid = await server.http.post("/api/merchant/v1/orders/PREVIEWED/events", json={"event_id": "p", "type": "paid"},
                                  headers=MERCHANT)
    assert paid.status_code in (200, 201, 202), paid.text
    await drain(runtime)

    placeholder = {buyer["_id"]: "buyer", mid["_id"]: "upline_1", root["_id"]: "upline_2"}
    documents = await runtime.db["commissions"].find({"order_no": "PREVIEWED"}).to_list()
    paid_lines = [{} for _ in ITEMS]
    for each in documents:
        paid_lines[each["item_index"]][placeholder[each["beneficiary_id"]]] = each["amount_fen"]
    assert [{who: fen for who, fen in preview.items() if fen} for preview in previews] == paid_lines
    assert previews[0] == {"buyer": 1_500, "upline_1": 0, "upline_2": 0}  # the cap, nearest first
    assert previews[2] == {"buyer": 999, "upline_1": 699, "upline_2": 199}
    assert sum(fen for *_, fen, _ in await commissions_of(runtime, "PREVIEWED")) == sum(
        sum(preview.values()) for preview in previews)


async def test_invalid_rules_or_chain_are_refused_by_the_preview_naming_the_field(server):
    owner = await staff_client(server, "owner")
    cases = [
        ({**RULES_FORM, "level_rates_bp": "1000, 500"}, "level_rates_bp", "level_rates_bp"),
        ({**RULES_FORM, "grade_rates_bp": '{"gold": [2500, 700, 300]}'}, "grade_rates_bp.gold", "grade_rates_bp"),
        ({**RULES_FORM, "paid_fen": "-1"}, "paid_fen", "paid_fen"),
        ({**RULES_FORM, "paid_fen": ""}, "paid_fen", "paid_fen"),
        ({**RULES_FORM, "paid_fen": "100", "upline_grades": "gold, " + "x" * 40}, "upline_grades[1]",
         "upline_grades"),
    ]
    for posted, field, input_name in cases:
        refused = await owner.post("/admin/settings/commission/preview", posted)
        assert refused.status_code == 400, posted
        page = FormReader(refused.text)
        assert field in page.field_errors, (posted, page.field_errors)
        assert "invalid" in page.classes[input_name].split()
        assert page.preview == {}
    assert await stored(server, "commission") == CommissionRules().to_dict()
