"""The shop's own catalogue: products, their SKUs, and what a checkout's items cost.

A product (商品) has a title, a category, pictures, a description and one or
more SKUs; each SKU has the code orders name it by (`OrderItem.sku`, which
commission rules by sku refer to), a price in fen and its stock. A SKU may
carry its own commission rule: that rule is the `sku_rules` entry of the
commission settings, the one place commissions are computed from
(`with_sku_rules` writes it there).

A product id is five lowercase letters and digits: short enough to ride in a
mini-program code's scene beside the promoter (`distribution.scene`).

Pricing is pure: `priced_items` turns (sku, qty) pairs and the catalogue's
offers into order lines, never trusting a price from the buyer.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Self

from pydantic import ConfigDict, Field, StrictBool, model_validator

from distribution.commission_rules import CommissionRules, LevelRule, ProductKey
from distribution.records import Integer, InvalidField, Record, Text, matching

PRODUCT_ID = re.compile(r"[0-9a-z]{5}")
PRODUCT_ID_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
IMAGE_ID = re.compile(r"[0-9a-f]{24}")
MAX_TITLE = 60
MAX_DESCRIPTION = 2000
MAX_SKUS = 50
MAX_IMAGES = 9
MAX_PRICE_FEN = 100_000_000  # a million yuan a unit
MAX_STOCK = 10_000_000
MAX_QTY = 999  # units of one SKU in one checkout
MAX_CHECKOUT_ITEMS = MAX_SKUS
# The mini-program page a product's share code opens; the scene tells it which product.
PRODUCT_PAGE = "pages/product/index"

Price = Annotated[Integer, Field(ge=1, le=MAX_PRICE_FEN)]
Stock = Annotated[Integer, Field(ge=0, le=MAX_STOCK)]
Quantity = Annotated[Integer, Field(ge=1, le=MAX_QTY)]
Title = Annotated[Text, Field(max_length=MAX_TITLE)]
ImageId = Annotated[str, matching(r"^[0-9a-f]{24}$", "must be the id of an uploaded product image")]


def is_product_id(value: object) -> bool:
    return isinstance(value, str) and PRODUCT_ID.fullmatch(value) is not None


def new_product_id() -> str:
    """A random product id; the store's unique `_id` refuses the rare repeat, and a new one is drawn."""
    return "".join(secrets.choice(PRODUCT_ID_ALPHABET) for _ in range(5))


class Sku(Record):
    """One variant of a product as the buyer chooses it: its code, name, price and stock."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"sku": "tea-gift-box-250g", "title": "250 克", "price_fen": 9_900, "stock": 100,
         "commission": {"rate_bp": [1000, 500]}},
    ]})

    sku: ProductKey = Field(description="The SKU's code, unique in the catalogue: orders name the item by it, and "
                                        "commission rules by sku refer to it.")
    title: Title = Field(description="What tells this SKU from the product's others (a size, a colour).")
    price_fen: Price = Field(description="The price of one unit, in fen.")
    stock: Stock = Field(0, description="Units for sale. Taken as the stock of a SKU the product did not have yet; "
                                        "an existing SKU's stock changes only through POST "
                                        "/api/merchant/v1/products/{id}/stock.")
    commission: LevelRule | None = Field(
        None, description="This SKU's own commission per level (its entry in the commission settings' sku_rules); "
                          "null: the category's rule or the default rates apply.")


class Product(Record):
    """A product as the merchant writes it; stored under its id (`new_product_id`)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "title": "龙井茶礼盒", "category": "drinks", "image_ids": [], "on_sale": True,
        "description": "明前龙井，礼盒装。",
        "skus": [{"sku": "tea-gift-box-250g", "title": "250 克", "price_fen": 9_900, "stock": 100}],
    }]})

    title: Title = Field(description="The product's name.")
    category: ProductKey | None = Field(None, description="Its category; commission rules by category refer to it.")
    image_ids: Annotated[tuple[ImageId, ...], Field(max_length=MAX_IMAGES)] = Field(
        (), description="Uploaded pictures (POST /api/merchant/v1/product-images), the first shown first.")
    on_sale: StrictBool = Field(True, description="Whether buyers see and may buy it.")
    description: Annotated[Text, Field(max_length=MAX_DESCRIPTION)] | None = Field(
        None, description="What the product page says about it.")
    skus: Annotated[tuple[Sku, ...], Field(min_length=1, max_length=MAX_SKUS)] = Field(
        description="Its variants, each with its own code, price and stock.")

    @model_validator(mode="after")
    def _distinct_skus(self) -> Self:
        seen: set[str] = set()
        for index, sku in enumerate(self.skus):
            if sku.sku in seen:
                raise InvalidField(f"skus[{index}].sku", f"repeats {sku.sku!r}: each SKU's code is unique")
            seen.add(sku.sku)
        return self

    def sku_rules(self) -> dict[str, LevelRule | None]:
        """Each SKU's own commission rule, None where it has none."""
        return {sku.sku: sku.commission for sku in self.skus}


class StockChange(Record):
    """A change of one SKU's stock: `add` units (fewer when negative), or `set` it, never below zero."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"sku": "tea-gift-box-250g", "add": 50},
                                                              {"sku": "tea-gift-box-250g", "set": 0}]})

    sku: ProductKey = Field(description="One of the product's SKU codes.")
    add: Annotated[Integer, Field(ge=-MAX_STOCK, le=MAX_STOCK)] | None = Field(
        None, description="Units to add (negative: to take away); refused when the stock would fall below zero.")
    set: Stock | None = Field(None, description="The stock to have from now on, whatever it was.")
    if_stock: Stock | None = Field(
        None, description="With set: change it only if the stock is this now (else 409), so that a count taken "
                          "while buyers kept buying is not written over their purchases.")

    @model_validator(mode="after")
    def _one_change(self) -> Self:
        if (self.add is None) == (self.set is None):
            raise InvalidField("add", "give exactly one of add and set")
        if self.if_stock is not None and self.set is None:
            raise InvalidField("if_stock", "goes with set only")
        return self


# --- commission rules ------------------------------------------------------------------------------------


def with_sku_rules(rules: CommissionRules, before: Sequence[str],
                   after: Mapping[str, LevelRule | None]) -> CommissionRules:
    """`rules` with the product's SKU rules replaced: entries of its SKUs `before` are removed, those `after`
    that carry a rule are set. A rule the settings refuse (a level count or cap it breaks) is named as the
    SKU's `skus[i].commission` field."""
    sku_rules = {sku: rule for sku, rule in rules.sku_rules.items() if sku not in before}
    sku_rules.update({sku: rule for sku, rule in after.items() if rule is not None})
    try:
        return CommissionRules.from_dict({**rules.to_dict(), "sku_rules": {key: rule.to_dict()
                                                                           for key, rule in sku_rules.items()}})
    except InvalidField as refused:
        raise _as_sku_field(refused, list(after)) from None


def _as_sku_field(refused: InvalidField, skus: list[str]) -> InvalidField:
    for index, sku in enumerate(skus):
        prefix = f"sku_rules.{sku}"
        if refused.field == prefix or refused.field.startswith(prefix + "."):
            return InvalidField(f"skus[{index}].commission{refused.field[len(prefix):]}", refused.problem)
    return refused


# --- pricing ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Offer:
    """One SKU as the catalogue sells it now."""

    sku: str
    product_id: str
    product_title: str
    sku_title: str
    category: str | None
    unit_fen: int
    on_sale: bool

    @property
    def title(self) -> str:
        """The order line's title: the product's, then the SKU's."""
        return f"{self.product_title} {self.sku_title}"


@dataclass(frozen=True)
class PricedItem:
    """One line of a checkout, priced from the catalogue."""

    sku: str
    product_id: str
    title: str
    category: str | None
    unit_fen: int
    qty: int
    paid_fen: int  # unit_fen * qty

    def order_item(self) -> dict:
        """As `distribution.commission.OrderItem` takes it."""
        return {"sku": self.sku, "title": self.title, "qty": self.qty, "paid_fen": self.paid_fen,
                "category": self.category}


def checked_wanted(wanted: Sequence[tuple[str, int]]) -> list[tuple[str, int]]:
    """(sku, qty) pairs as a checkout asks: 1 to MAX_CHECKOUT_ITEMS of them, each SKU once, each quantity
    1 to MAX_QTY; InvalidField naming `items[i].sku` or `items[i].qty` otherwise."""
    if not 1 <= len(wanted) <= MAX_CHECKOUT_ITEMS:
        raise InvalidField("items", f"must have 1 to {MAX_CHECKOUT_ITEMS} entries")
    seen: set[str] = set()
    for index, (sku, qty) in enumerate(wanted):
        if not isinstance(sku, str) or not sku.strip() or len(sku) > 64:
            raise InvalidField(f"items[{index}].sku", "must be a SKU code of 1 to 64 characters")
        if sku in seen:
            raise InvalidField(f"items[{index}].sku", f"repeats {sku!r}: ask for each SKU once, with its quantity")
        seen.add(sku)
        if type(qty) is not int or not 1 <= qty <= MAX_QTY:
            raise InvalidField(f"items[{index}].qty", f"must be an integer from 1 to {MAX_QTY}")
    return list(wanted)


def priced_items(wanted: Sequence[tuple[str, int]], offers: Mapping[str, Offer]) -> list[PricedItem]:
    """Each wanted (sku, qty) priced at the catalogue's price; InvalidField naming `items[i].sku` for a SKU the
    catalogue does not sell (unknown, or its product off sale)."""
    priced = []
    for index, (sku, qty) in enumerate(checked_wanted(wanted)):
        offer = offers.get(sku)
        if offer is None or not offer.on_sale:
            raise InvalidField(f"items[{index}].sku", f"{sku!r} is not a product on sale")
        priced.append(PricedItem(sku=sku, product_id=offer.product_id, title=offer.title, category=offer.category,
                                 unit_fen=offer.unit_fen, qty=qty, paid_fen=offer.unit_fen * qty))
    return priced
