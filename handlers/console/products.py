"""The console's products page (商品): the catalogue listed, a product created or edited with its SKUs (prices
typed in yuan), put on or off sale, its stock changed and its pictures uploaded, through the service the
merchant API uses. A SKU's commission rule is its entry in the commission settings, as on the API."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from distribution.catalogue import PRODUCT_ID, Product, StockChange
from distribution.commission_rules import RuleKind
from distribution.errors import DomainError, Invalid
from distribution.money import fen_of_yuan, yuan_digits
from distribution.records import InvalidField
from distribution.staff import Permission, can
from handlers.console.base import CSRF_FIELD, ConsoleHandler
from handlers.console.listing import pager, parsed, query_parameters
from services.catalogue import MAX_IMAGE_BYTES
from web.catalogue import IMAGE_PATH, audited
from web.paging import TimePageQuery, time_cursor

PRODUCTS_PAGE = "/admin/products"
PRODUCT = rf"(?P<product_id>{PRODUCT_ID.pattern})"
SPARE_ROWS = 2  # blank SKU rows below a product's own, to add some
NEW_PRODUCT_ROWS = 3
IMAGE_FIELD = "image"
# The multipart framing around the picture (boundaries, part headers, the CSRF field) is far below this.
MULTIPART_ALLOWANCE = 64 * 1024
SKU_INPUTS = ("sku", "title", "price", "stock", "commission_kind", "commission")
_SKU_INPUT = re.compile(r"^skus\[(\d+)\]\.(\w+)$")
_SKU_FIELD = re.compile(r"^skus\[(\d+)\]\.?(\w*)")
_INTEGER = re.compile(r"^\s*-?\d+\s*$")
_LIST_SEPARATORS = re.compile(r"[,，\s]+")
RULE_WORDS = {RuleKind.RATE_BP.value: "按比例（基点）", RuleKind.FIXED_FEN_PER_UNIT.value: "每件固定（分）"}
NOTICES = {"created": "商品已创建", "saved": "商品已保存", "stock": "库存已更新", "image": "图片已上传",
           "on_sale": "商品已上架", "off_sale": "商品已下架"}


def form_values(product: Mapping[str, Any]) -> dict[str, str]:
    """A stored product as its form's inputs."""
    values = {"title": product["title"], "category": product.get("category") or "",
              "description": product.get("description") or "", "image_ids": ", ".join(product["image_ids"])}
    if product["on_sale"]:
        values["on_sale"] = "on"
    for index, sku in enumerate(product["skus"]):
        rule = sku.get("commission") or {}
        kind, per_level = next(iter(rule.items()), ("", []))
        values.update({f"skus[{index}].sku": sku["sku"], f"skus[{index}].title": sku["title"],
                       f"skus[{index}].price": yuan_digits(sku["price_fen"]),
                       f"skus[{index}].commission_kind": kind,
                       f"skus[{index}].commission": ", ".join(str(each) for each in per_level)})
    return values


def sku_rows(form: Mapping[str, str]) -> list[int]:
    """The form rows that hold a SKU, in order: the record's `skus[i]` is row `sku_rows(form)[i]`."""
    rows = sorted({int(matched.group(1)) for name in form if (matched := _SKU_INPUT.match(name))})
    return [row for row in rows if any(form.get(f"skus[{row}].{name}", "").strip() for name in SKU_INPUTS
                                       if name != "commission_kind")]


def product_fields(form: Mapping[str, str]) -> Product:
    """The form as the record the API takes; InvalidField naming the record's field (blank rows left out, SKUs
    are counted as `sku_rows` says)."""
    skus = []
    for index, row in enumerate(sku_rows(form)):
        cell = {name: form.get(f"skus[{row}].{name}", "").strip() for name in SKU_INPUTS}
        try:
            price: Any = fen_of_yuan(cell["price"])
        except ValueError as refused:
            raise InvalidField(f"skus[{index}].price_fen", str(refused)) from None
        sku: dict[str, Any] = {"sku": cell["sku"], "title": cell["title"], "price_fen": price}
        if cell["stock"]:
            sku["stock"] = _integer(cell["stock"])
        if cell["commission_kind"]:
            sku["commission"] = {cell["commission_kind"]: [_integer(each) for each in
                                                          _LIST_SEPARATORS.split(cell["commission"]) if each]}
        skus.append(sku)
    data = {"title": form.get("title", ""), "category": form.get("category", "").strip() or None,
            "description": form.get("description", "").strip() or None, "on_sale": "on_sale" in form,
            "image_ids": [each for each in _LIST_SEPARATORS.split(form.get("image_ids", "")) if each],
            "skus": skus}
    return Product.from_dict(data)


def with_commissions_of(fields: Product, product: Mapping[str, Any] | None) -> Product:
    """`fields` with each SKU's commission as stored (none for a new SKU): for staff who may not change the
    commission settings, which a SKU's commission is part of."""
    stored = {sku["sku"]: sku["commission"] for sku in product["skus"]} if product else {}
    return Product.from_dict({**fields.to_dict(), "skus": [
        {**sku.to_dict(), "commission": stored.get(sku.sku)} for sku in fields.skus]})


def _integer(text: str) -> int | str:
    """A number typed; anything else is passed on for the record to refuse by name."""
    return int(text) if _INTEGER.match(text) else text


def error_input(field: str, rows: list[int]) -> str:
    """The input a refused field is typed in: `skus[1].price_fen` -> `skus[<its form row>].price`."""
    matched = _SKU_FIELD.match(field)
    if matched is None:
        return re.sub(r"\[\d+\]$", "", field)  # image_ids[0] -> image_ids
    index, name = int(matched.group(1)), matched.group(2)
    row = rows[index] if index < len(rows) else index
    name = {"price_fen": "price", "commission": "commission"}.get(name, name or "sku")
    return f"skus[{row}].{name}"


class ProductPage(ConsoleHandler):
    permission = Permission.VIEW
    action_permission = Permission.CATALOGUE

    def render_form(self, product: dict | None, values: Mapping[str, str], status: int = 200,
                    refused: DomainError | None = None, notice: str | None = None) -> None:
        errors, invalid = {}, None
        if refused is not None:
            errors = {refused.field or "": refused.problem if isinstance(refused, InvalidField) else refused.message}
            invalid = error_input(refused.field, sku_rows(values)) if refused.field else None
        posted_rows = [int(matched.group(1)) for name in values if (matched := _SKU_INPUT.match(name))]
        own = len(product["skus"]) if product else 0
        row_count = max(own + SPARE_ROWS if product else NEW_PRODUCT_ROWS, max(posted_rows, default=-1) + 1)
        self.render_page("product.html", status=status, product=product, values=values, errors=errors,
                         error_input=invalid, row_count=row_count, notice=notice, rule_words=RULE_WORDS,
                         image_path=IMAGE_PATH, max_image_bytes=MAX_IMAGE_BYTES,
                         stock_of={sku["sku"]: sku["stock"] for sku in product["skus"]} if product else {})

    def posted(self) -> dict[str, str]:
        return {name: text for name, text in self.form().items() if name != CSRF_FIELD}

    def fields(self, posted: Mapping[str, str], product: Mapping[str, Any] | None) -> Product:
        fields = product_fields(posted)
        return fields if can(self.staff.role, Permission.SETTINGS) else with_commissions_of(fields, product)

    async def shown(self, product_id: str, notice: str | None = None, status: int = 200,
                    refused: DomainError | None = None) -> None:
        product = await self.runtime.catalogue.product(product_id)
        self.render_form(product, form_values(product), status=status, refused=refused, notice=notice)

    def done(self, product_id: str, what: str) -> None:
        # Shown by a GET, so that reloading the page does not post the form again.
        self.redirect(f"{PRODUCTS_PAGE}/{product_id}?done={what}", status=303)


class ProductsPageHandler(ConsoleHandler):
    async def get(self) -> None:
        parameters = query_parameters(self)
        query, errors = parsed(TimePageQuery, parameters)
        query = query or TimePageQuery()
        products = await self.runtime.catalogue.page(query.limit, query.cursor, on_sale_only=False)
        next_cursor = time_cursor("created_at")(products[-1]) if len(products) == query.limit else None
        self.render_page("products.html", products=products, errors=errors,
                         pager=pager(PRODUCTS_PAGE, parameters, next_cursor))


class NewProductHandler(ProductPage):
    permission = Permission.CATALOGUE

    def get(self) -> None:
        self.render_form(None, {"on_sale": "on"})

    async def post(self) -> None:
        posted = self.posted()
        try:
            product = await self.runtime.catalogue.create(self.fields(posted, None))
        except DomainError as refused:
            if refused.field is None:
                raise
            self.render_form(None, posted, status=400 if isinstance(refused, Invalid) else 409, refused=refused)
            return
        await self.audit("product.create", "product", product["_id"], after=audited(product))
        self.done(product["_id"], "created")


class ProductFormHandler(ProductPage):
    async def get(self, product_id: str) -> None:
        await self.shown(product_id, notice=NOTICES.get(self.get_query_argument("done", "")))

    async def post(self, product_id: str) -> None:
        product = await self.runtime.catalogue.product(product_id)
        posted = self.posted()
        try:
            before, after = await self.runtime.catalogue.update(product_id, self.fields(posted, product))
        except DomainError as refused:
            if refused.field is None:
                raise
            self.render_form(product, posted, status=400 if isinstance(refused, Invalid) else 409, refused=refused)
            return
        await self.audit("product.update", "product", product_id, audited(before), audited(after))
        self.done(product_id, "saved")


class SaleFormHandler(ProductPage):
    async def post(self, product_id: str, sale: str) -> None:
        before, after = await self.runtime.catalogue.set_on_sale(product_id, sale == "on-sale")
        what = sale.replace("-", "_")
        await self.audit(f"product.{what}", "product", product_id, audited(before), audited(after))
        self.done(product_id, what)


class StockFormHandler(ProductPage):
    async def post(self, product_id: str) -> None:
        form = self.form()
        amount = _integer(form.get("amount", "").strip())
        try:
            change = StockChange.from_dict({"sku": form.get("sku", ""), form.get("change", "add"): amount})
            before, after = await self.runtime.catalogue.change_stock(product_id, change)
        except DomainError as refused:
            if refused.field is None:
                raise
            # The form has one amount for either change, and names its SKU as the record does.
            field = "sku" if refused.field == "sku" else "amount"
            await self.shown(product_id, status=400 if isinstance(refused, Invalid) else 409,
                             refused=Invalid(getattr(refused, "problem", refused.message), field=field))
            return
        await self.audit("product.stock", "product", product_id, {"sku": change.sku, "stock": before},
                         {"sku": change.sku, "stock": after})
        self.done(product_id, "stock")


class ImageFormHandler(ProductPage):
    max_body_bytes = MAX_IMAGE_BYTES + MULTIPART_ALLOWANCE

    async def post(self, product_id: str) -> None:
        product = await self.runtime.catalogue.product(product_id)
        uploaded = self.form_files().get(IMAGE_FIELD)
        try:
            if not uploaded or not uploaded[0].body:
                raise Invalid("请选择一张 JPEG 或 PNG 图片", field=IMAGE_FIELD)
            image = await self.runtime.catalogue.add_image(uploaded[0].body)
            fields = Product.from_dict({**{key: product[key] for key in ("title", "category", "on_sale",
                                                                               "description")},
                                              "image_ids": [*product["image_ids"], image["_id"]],
                                              "skus": [{key: sku[key] for key in ("sku", "title", "price_fen",
                                                                                  "commission")}
                                                       for sku in product["skus"]]})
            before, after = await self.runtime.catalogue.update(product_id, fields)
        except Invalid as refused:
            field = IMAGE_FIELD if refused.field in (None, "body") else refused.field
            await self.shown(product_id, status=400, refused=Invalid(refused.message, field=field))
            return
        await self.audit("product.image_add", "product", product_id, audited(before), audited(after))
        self.done(product_id, "image")


ROUTES = [
    (PRODUCTS_PAGE, ProductsPageHandler),
    (rf"{PRODUCTS_PAGE}/new", NewProductHandler),
    (rf"{PRODUCTS_PAGE}/{PRODUCT}", ProductFormHandler),
    (rf"{PRODUCTS_PAGE}/{PRODUCT}/(?P<sale>on-sale|off-sale)", SaleFormHandler),
    (rf"{PRODUCTS_PAGE}/{PRODUCT}/stock", StockFormHandler),
    (rf"{PRODUCTS_PAGE}/{PRODUCT}/images", ImageFormHandler),
]
