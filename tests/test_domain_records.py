"""Records: one pydantic declaration gives the checks, the `InvalidField` an API answers with, and the schema."""

from typing import Annotated

import pytest
from pydantic import BaseModel, Field, ValidationError

from distribution.binding import BindingSettings
from distribution.commission import OrderItem
from distribution.commission_rules import CommissionRules
from distribution.grades import GradeSettings
from distribution.poster_settings import PosterSettings
from distribution.records import Integer, InvalidField, Text, invalid_field
from distribution.withdrawals import WithdrawalRules
from miniapp_api.requests import (
    LoginRequest,
    ProfileChange,
    PromoterApplication,
    SubscriptionConsents,
    WithdrawalRequest,
)
from services.merchant_settings import SETTINGS_KINDS as MERCHANT_SETTINGS_KINDS

SETTINGS_KINDS = list(MERCHANT_SETTINGS_KINDS.values())  # every kind the merchant API serves
EVERY_KIND = [*SETTINGS_KINDS, OrderItem, LoginRequest, ProfileChange, PromoterApplication, WithdrawalRequest,
              SubscriptionConsents]
HUGE = 10**20  # past MongoDB's 64-bit integers, and past any date

ORDER_ITEM = {"sku": "tea", "title": "Longjing tea", "qty": 1, "paid_fen": 100}
ONE_GRADE = {"name": "gold"}
ONE_TEMPLATE = {"templates": {"a": {}}, "default_template": "a"}


def refused(kind, data) -> InvalidField:
    with pytest.raises(InvalidField) as error:
        kind.from_dict(data)
    return error.value


@pytest.mark.parametrize(
    ("kind", "data", "field"),
    [
        (BindingSettings, {"spend_threshold_fen": HUGE}, "spend_threshold_fen"),
        (BindingSettings, {"new_member_window_seconds": HUGE}, "new_member_window_seconds"),
        (BindingSettings, {"bind_expiry_days": 99_999_999_999}, "bind_expiry_days"),
        (CommissionRules, {"levels": HUGE}, "levels"),
        (CommissionRules, {"level_rates_bp": [HUGE, 0]}, "level_rates_bp[0]"),
        (CommissionRules, {"sku_rules": {"tea": {"fixed_fen_per_unit": [HUGE, 0]}}},
         "sku_rules.tea.fixed_fen_per_unit[0]"),
        (CommissionRules, {"category_rules": {"drinks": {"rate_bp": [0, HUGE]}}}, "category_rules.drinks.rate_bp[1]"),
        (CommissionRules, {"grade_rates_bp": {"gold": [HUGE, 0]}}, "grade_rates_bp.gold[0]"),
        (CommissionRules, {"freeze_days": 99_999_999_999_999_999_999}, "freeze_days"),
        (CommissionRules, {"cap_bp": HUGE}, "cap_bp"),
        (WithdrawalRules, {"min_fen": HUGE}, "min_fen"),
        (WithdrawalRules, {"daily_count_cap": HUGE}, "daily_count_cap"),
        (WithdrawalRules, {"daily_amount_cap_fen": HUGE}, "daily_amount_cap_fen"),
        (WithdrawalRules, {"fee_bp": HUGE}, "fee_bp"),
        (WithdrawalRules, {"auto_approve_under_fen": HUGE}, "auto_approve_under_fen"),
        (WithdrawalRules, {"min_distinct_paying_buyers": HUGE}, "min_distinct_paying_buyers"),
        (GradeSettings, {"grades": [{**ONE_GRADE, "min_own_settled_sales_fen": HUGE}]},
         "grades[0].min_own_settled_sales_fen"),
        (GradeSettings, {"grades": [{**ONE_GRADE, "min_direct_members": HUGE}]}, "grades[0].min_direct_members"),
        (GradeSettings, {"grades": [{**ONE_GRADE, "min_team_settled_sales_fen": HUGE}]},
         "grades[0].min_team_settled_sales_fen"),
        (PosterSettings, {"qr_expire_days": HUGE}, "qr_expire_days"),
        (PosterSettings, {**ONE_TEMPLATE, "templates": {"a": {"version": HUGE}}}, "templates.a.version"),
        (OrderItem, {**ORDER_ITEM, "qty": HUGE}, "qty"),
        (OrderItem, {**ORDER_ITEM, "paid_fen": HUGE}, "paid_fen"),
        (WithdrawalRequest, {"amount_fen": HUGE, "method": "wechat_balance"}, "amount_fen"),
    ],
)
def test_huge_integers_are_refused_naming_the_field(kind, data, field):
    invalid = refused(kind, data)
    assert invalid.field == field
    assert invalid.problem.startswith("must be at most ")


def _integer_properties(schema: dict):
    """Every integer in a JSON schema, nested ones included, with where it is."""
    for where, node in _nodes(schema, "#"):
        if node.get("type") == "integer":
            yield where, node


def _nodes(node, where):
    if isinstance(node, dict):
        yield where, node
        for key, value in node.items():
            yield from _nodes(value, f"{where}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _nodes(value, f"{where}/{index}")


@pytest.mark.parametrize("kind", EVERY_KIND, ids=lambda kind: kind.__name__)
def test_every_integer_is_bounded_far_inside_64_bits(kind):
    for where, node in _integer_properties(kind.model_json_schema()):
        assert "minimum" in node and node.get("maximum", 2**63) <= 10**15, where


@pytest.mark.parametrize("not_an_integer", [True, False, 5.0, "5", None, [5]])
@pytest.mark.parametrize(
    ("kind", "shape", "field"),
    [
        (BindingSettings, lambda value: {"bind_expiry_days": value}, "bind_expiry_days"),
        (CommissionRules, lambda value: {"freeze_days": value}, "freeze_days"),
        (CommissionRules, lambda value: {"level_rates_bp": [value, 500]}, "level_rates_bp[0]"),
        (WithdrawalRules, lambda value: {"fee_bp": value}, "fee_bp"),
        (GradeSettings, lambda value: {"grades": [{**ONE_GRADE, "min_direct_members": value}]},
         "grades[0].min_direct_members"),
        (OrderItem, lambda value: {**ORDER_ITEM, "qty": value}, "qty"),
    ],
)
def test_only_integers_are_integers(kind, shape, field, not_an_integer):
    assert refused(kind, shape(not_an_integer)).field == field


@pytest.mark.parametrize("not_a_boolean", [0, 1, "true", None])
def test_only_booleans_are_booleans(not_a_boolean):
    invalid = refused(CommissionRules, {"self_purchase": not_a_boolean})
    assert (invalid.field, invalid.problem) == ("self_purchase", "must be true or false")


@pytest.mark.parametrize(
    ("kind", "data", "field", "problem"),
    [
        (OrderItem, {"title": "Tea", "qty": 1, "paid_fen": 1}, "sku", "is required"),
        (OrderItem, {**ORDER_ITEM, "colour": "red"}, "colour", "is not a known field"),
        (OrderItem, {**ORDER_ITEM, "sku": "   "}, "sku", "must not be blank"),
        (OrderItem, {**ORDER_ITEM, "sku": "x" * 65}, "sku", "must be at most 64 characters"),
        (OrderItem, {**ORDER_ITEM, "qty": 0}, "qty", "must be at least 1"),
        (OrderItem, {**ORDER_ITEM, "title": 3}, "title", "must be a string"),
        (PosterSettings, {"qr_expire_days": 31}, "qr_expire_days", "must be at most 30"),
        (PosterSettings, {"code_type": "sms"}, "code_type", "must be one of 'oa_qr', 'miniapp_code' or 'h5_link'"),
        (PosterSettings, {**ONE_TEMPLATE, "templates": {"a": {"design": "gold"}}}, "templates.a.design",
         "must be one of 'classic' or 'fresh'"),
        (PosterSettings, {**ONE_TEMPLATE, "templates": {"a": 5}}, "templates.a", "must be an object"),
        (PosterSettings, {"keywords": "海报"}, "keywords", "must be a list"),
        (GradeSettings, {"grades": [ONE_GRADE] * 21}, "grades", "must have at most 20 entries"),
        (ProfileChange, {"phone": "call me"}, "phone", "must be a phone number: 6 to 15 digits, optionally after a +"),
        (ProfileChange, {"avatar_url": "javascript:x"}, "avatar_url", "must be an http(s) URL"),
        (LoginRequest, {"code": "a", "profile": {"avatar_url": "ftp://x"}}, "profile.avatar_url",
         "must be an http(s) URL"),
        (WithdrawalRequest, {"amount_fen": 100, "method": "bank"}, "bank",
         "is required for bank withdrawals, and only for them"),
        (SubscriptionConsents, {"template_ids": ["a"], "accepted": ["b"]}, "accepted",
         "may only name templates that were asked for"),
        (CommissionRules, {"sku_rules": {"tea": {"percent": [1, 1]}}}, "sku_rules.tea",
         "must be an object with exactly one of rate_bp, fixed_fen_per_unit"),
        (CommissionRules, [], "CommissionRules", "must be an object"),
    ],
)
def test_each_problem_is_named_in_plain_words(kind, data, field, problem):
    invalid = refused(kind, data)
    assert (invalid.field, invalid.problem) == (field, problem)
    assert str(invalid) == f"{field}: {problem}"


def test_records_built_in_code_are_checked_like_records_read_from_json():
    with pytest.raises(InvalidField) as error:
        BindingSettings(bind_expiry_days=99_999_999_999)
    assert error.value.field == "bind_expiry_days"
    with pytest.raises(InvalidField) as error:
        GradeSettings(grades=[ONE_GRADE, ONE_GRADE])
    assert error.value.field == "grades[1].name"


def test_records_are_immutable_values():
    settings = BindingSettings(bind_expiry_days=7)
    with pytest.raises(ValidationError):
        settings.bind_expiry_days = 8  # type: ignore[misc]
    assert settings == BindingSettings.from_dict({"bind_expiry_days": 7}) != BindingSettings()
    assert CommissionRules.from_dict({"level_rates_bp": [900, 400]}).level_rates_bp == (900, 400)


class Query(BaseModel):
    """Not a record: a web layer's own model."""

    limit: Annotated[Integer, Field(ge=1, le=100)] = 20
    tags: list[Annotated[Text, Field(max_length=8)]] = []


@pytest.mark.parametrize(
    ("data", "field", "problem"),
    [
        ({"limit": 0}, "limit", "must be at least 1"),
        ({"limit": "2"}, "limit", "must be an integer"),
        ({"tags": ["ok", "much too long"]}, "tags[1]", "must be at most 8 characters"),
        ("limit=5", "Query", "must be an object"),
    ],
)
def test_any_pydantic_error_becomes_the_same_invalid_field(data, field, problem):
    with pytest.raises(ValidationError) as error:
        Query.model_validate(data)
    invalid = invalid_field(error.value)
    assert (invalid.field, invalid.problem) == (field, problem)


def _objects(schema: dict):
    for where, node in _nodes(schema, "#"):
        if isinstance(node.get("properties"), dict):
            yield where, node


@pytest.mark.parametrize("kind", EVERY_KIND, ids=lambda kind: kind.__name__)
def test_the_schema_describes_every_field_and_admits_no_unknown_one(kind):
    schema = kind.model_json_schema(mode="validation")
    assert schema.get("description")
    objects = list(_objects(schema))
    assert objects
    for where, node in objects:
        assert node.get("additionalProperties") is False, where
        for name, property_schema in node["properties"].items():
            assert property_schema.get("description"), f"{where}/properties/{name}"
    assert all(node.get("additionalProperties") is not True for _, node in _nodes(schema, "#"))
    assert kind.model_json_schema(mode="serialization")


@pytest.mark.parametrize("kind", EVERY_KIND, ids=lambda kind: kind.__name__)
def test_examples_are_valid_and_round_trip(kind):
    examples = kind.model_json_schema()["examples"]
    assert examples
    for example in examples:
        value = kind.from_dict(example)
        assert value.to_dict().items() >= example.items()  # what an example leaves out is null
        assert kind.from_dict(value.to_dict()) == value


@pytest.mark.parametrize("kind", SETTINGS_KINDS, ids=lambda kind: kind.__name__)
def test_defaults_round_trip_as_plain_json(kind):
    defaults = kind()
    assert kind.from_dict(defaults.to_dict()) == defaults == kind.from_dict({})
    assert _plain_json(defaults.to_dict())


def _plain_json(value) -> bool:
    if isinstance(value, dict):
        return all(isinstance(key, str) and _plain_json(each) for key, each in value.items())
    if isinstance(value, list):
        return all(_plain_json(each) for each in value)
    return value is None or type(value) in (str, int, bool)
