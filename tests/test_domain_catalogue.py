"""The catalogue's pure rules: products and SKUs as the merchant writes them, pricing a checkout, SKU commission
rules written into the commission settings, and the scene of a product share."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from distribution.catalogue import (MAX_PRICE_FEN, MAX_QTY, Offer, PricedItem, Product, Sku, StockChange,
                                    is_product_id, new_product_id, priced_items, with_sku_rules)
from distribution.commission import OrderItem
from distribution.commission_rules import CommissionRules, LevelRule, RuleKind
from distribution.records import InvalidField
from distribution.scene import PromoterScene, is_valid_miniapp_scene, parse_scene, product_scene, promoter_scene

MEMBER_ID = "65f1c2a9e4b0a1b2c3d4e5f6"


def sku(code: str = "tea-250", **fields) -> dict:
    return {"sku": code, "title": "250 克", "price_fen": 9_900, **fields}


def product(**fields) -> dict:
    return {"title": "龙井茶礼盒", "skus": [sku()], **fields}


def offer(code: str = "tea-250", unit_fen: int = 9_900, on_sale: bool = True) -> Offer:
    return Offer(sku=code, product_id="ab12c", product_title="龙井茶礼盒", sku_title="250 克", category="drinks",
                 unit_fen=unit_fen, on_sale=on_sale)


def refused_field(build, data) -> str:
    with pytest.raises(InvalidField) as refused:
        build(data)
    return refused.value.field


def test_a_product_takes_its_defaults_and_keeps_its_skus_in_order():
    written = Product.from_dict(product(skus=[sku("a"), sku("b", stock=5, commission={"rate_bp": [800, 400]})]))
    assert written.on_sale and written.image_ids == () and written.category is None
    assert [each.sku for each in written.skus] == ["a", "b"] and written.skus[0].stock == 0
    assert written.sku_rules() == {"a": None, "b": LevelRule(RuleKind.RATE_BP, (800, 400))}
    assert Product.from_dict(written.to_dict()) == written


@pytest.mark.parametrize("fields, field", [
    ({"title": "茶" * 61}, "title"),
    ({"title": " "}, "title"),
    ({"skus": []}, "skus"),
    ({"skus": [sku(price_fen=0)]}, "skus[0].price_fen"),
    ({"skus": [sku(price_fen=MAX_PRICE_FEN + 1)]}, "skus[0].price_fen"),
    ({"skus": [sku(price_fen=99.5)]}, "skus[0].price_fen"),
    ({"skus": [sku(stock=-1)]}, "skus[0].stock"),
    ({"skus": [sku(stock=10_000_001)]}, "skus[0].stock"),
    ({"skus": [sku("a"), sku("a")]}, "skus[1].sku"),
    ({"skus": [sku("x" * 65)]}, "skus[0].sku"),
    ({"skus": [sku(commission={"rate_bp": [800], "fixed_fen_per_unit": [1]})]}, "skus[0].commission"),
    ({"image_ids": ["nope"]}, "image_ids[0]"),
    ({"on_sale": 1}, "on_sale"),
    ({"price_fen": 1}, "price_fen"),
])
def test_a_malformed_product_is_refused_naming_the_field(fields, field):
    assert refused_field(Product.from_dict, product(**fields)) == field


def test_pricing_takes_the_catalogues_price_times_the_quantity():
    items = priced_items([("tea-250", 3), ("cup", 1)], {"tea-250": offer(), "cup": offer("cup", 1_500)})
    assert items == [
        PricedItem(sku="tea-250", product_id="ab12c", title="龙井茶礼盒 250 克", category="drinks", unit_fen=9_900,
                   qty=3, paid_fen=29_700),
        PricedItem(sku="cup", product_id="ab12c", title="龙井茶礼盒 250 克", category="drinks", unit_fen=1_500, qty=1,
                   paid_fen=1_500),
    ]
    assert OrderItem.from_dict(items[0].order_item()).paid_fen == 29_700  # what an order's item takes


@given(st.integers(1, MAX_PRICE_FEN), st.integers(1, MAX_QTY))
def test_every_line_total_is_exact_and_fits_an_order_item(unit_fen, qty):
    [item] = priced_items([("tea-250", qty)], {"tea-250": offer(unit_fen=unit_fen)})
    assert item.paid_fen == unit_fen * qty
    assert OrderItem.from_dict(item.order_item()).paid_fen == unit_fen * qty


@pytest.mark.parametrize("wanted, field", [
    ([("nope", 1)], "items[0].sku"),
    ([("tea-250", 1), ("off", 1)], "items[1].sku"),
    ([("tea-250", 0)], "items[0].qty"),
    ([("tea-250", MAX_QTY + 1)], "items[0].qty"),
    ([("tea-250", True)], "items[0].qty"),
    ([("tea-250", 1.0)], "items[0].qty"),
    ([("tea-250", 1), ("tea-250", 2)], "items[1].sku"),
    ([], "items"),
])
def test_pricing_refuses_what_the_catalogue_does_not_sell_naming_the_item(wanted, field):
    offers = {"tea-250": offer(), "off": offer("off", on_sale=False)}
    assert refused_field(lambda each: priced_items(each, offers), wanted) == field


def test_sku_rules_of_a_product_replace_its_old_ones_and_keep_everyone_elses():
    rules = CommissionRules.from_dict({"sku_rules": {"other": {"rate_bp": [100, 50]}, "old": {"rate_bp": [10, 5]},
                                                     "kept": {"rate_bp": [20, 10]}}})
    changed = with_sku_rules(rules, ["old", "kept"], {"kept": None, "new": LevelRule(RuleKind.FIXED_FEN_PER_UNIT,
                                                                                       (300, 100))})
    assert changed.sku_rules == {"other": LevelRule(RuleKind.RATE_BP, (100, 50)),
                                 "new": LevelRule(RuleKind.FIXED_FEN_PER_UNIT, (300, 100))}
    assert changed.level_rates_bp == rules.level_rates_bp


def test_a_sku_rule_the_settings_refuse_is_named_as_the_skus_commission():
    rules = CommissionRules()  # two levels, cap 3000 bp
    for rule, field in ((LevelRule(RuleKind.RATE_BP, (800,)), "skus[1].commission.rate_bp"),
                        (LevelRule(RuleKind.RATE_BP, (3000, 100)), "skus[1].commission.rate_bp")):
        with pytest.raises(InvalidField) as refused:
            with_sku_rules(rules, [], {"a": None, "b": rule})
        assert refused.value.field == field


@pytest.mark.parametrize("change, field", [({"sku": "a"}, "add"), ({"sku": "a", "add": 1, "set": 2}, "add"),
                                           ({"sku": "a", "add": 1, "if_stock": 2}, "if_stock"),
                                           ({"sku": "a", "set": -1}, "set"), ({"sku": "a", "add": 10_000_001}, "add")])
def test_a_stock_change_is_one_add_or_one_set(change, field):
    assert refused_field(StockChange.from_dict, change) == field
    assert StockChange.from_dict({"sku": "a", "add": -3}).add == -3


def test_a_product_share_scene_names_the_promoter_and_the_product_in_32_characters():
    product_id = new_product_id()
    assert is_product_id(product_id)
    scene = product_scene(MEMBER_ID, product_id)
    assert len(scene) == 32 and is_valid_miniapp_scene(scene)
    assert parse_scene(scene) == PromoterScene(MEMBER_ID, product_id=product_id)
    assert parse_scene(scene.replace(":", "%3A")) == PromoterScene(MEMBER_ID, product_id=product_id)
    # the scenes from before products still read as they did
    assert parse_scene(promoter_scene(MEMBER_ID)) == PromoterScene(MEMBER_ID)
    assert parse_scene(promoter_scene(MEMBER_ID, "fresh")) == PromoterScene(MEMBER_ID, "fresh")


@pytest.mark.parametrize("scene", [f"p:{MEMBER_ID}.", f"p:{MEMBER_ID}.ABCDE", f"p:{MEMBER_ID}.abcd",
                                   f"p:{MEMBER_ID}.abcdef", f"p:{MEMBER_ID}:fresh.ab12c", f"p:{MEMBER_ID[:-1]}.ab12c"])
def test_a_malformed_product_scene_names_nobody(scene):
    assert parse_scene(scene) is None


@pytest.mark.parametrize("member_id, product_id", [(MEMBER_ID, "AB12C"), (MEMBER_ID, "ab12"), ("x" * 24, "ab12c")])
def test_a_product_scene_is_made_only_of_well_formed_ids(member_id, product_id):
    with pytest.raises(ValueError):
        product_scene(member_id, product_id)


@pytest.mark.parametrize("kind", [Product, Sku, StockChange], ids=lambda kind: kind.__name__)
def test_the_records_examples_are_valid_every_field_is_described_and_every_integer_bounded(kind):
    schema = kind.model_json_schema()
    for example in schema["examples"]:
        assert kind.from_dict(example).to_dict() == kind.from_dict(kind.from_dict(example).to_dict()).to_dict()
    assert all(each.get("description") for each in schema["properties"].values())
    for name, each in schema["properties"].items():
        for branch in [each, *each.get("anyOf", [])]:
            if branch.get("type") == "integer":
                assert "minimum" in branch and branch["maximum"] <= 10**15, name
