"""The catalogue: the merchant's products, the mini-program's shop window, stock for checkouts, and promoters'
shares of a product.

A SKU's commission rule is kept in one place, the `sku_rules` of the
commission settings: saving a product writes its SKUs' entries there (and
removes those it no longer has) in the transaction that writes the product,
and a product is shown with the entries found there. Orders therefore earn
commissions by the rules they always did.

Stock is taken by checkouts as reservations (`reserve`, all or nothing, once
per id), given back once (`release`), and counted back when goods are
returned (`restock`, once per id); see `stores.products`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import Any

from distribution import errors
from distribution.catalogue import (PRODUCT_PAGE, Offer, PricedItem, Product, StockChange,
                                    checked_wanted, new_product_id, priced_items, with_sku_rules)
from distribution.commission_rules import CommissionRules
from distribution.records import InvalidField
from distribution.scene import product_scene
from posters.backgrounds import BadBackground
from services.merchant_settings import MerchantSettings
from services.posters import IMAGE_SIGNATURES, PosterService, RefusedBackground
from stores.products import ProductIdTaken, ProductMissing, ProductStore, SkuTaken
from wechat import WeChatClient, WeChatUnavailable

COMMISSION_SETTINGS = "commission"  # the name CommissionRules are stored by (services.merchant_settings)
# Product pictures are shrunk to just cover this: a phone's full-width square.
PRODUCT_IMAGE_SIZE = (750, 750)
MAX_IMAGE_BYTES = 5 * 1024 * 1024
SHARE_CODE_WIDTH = 430
ID_DRAWS = 5  # new ids drawn for a product before giving up (each repeat is a 1 in 60 million chance)
MAX_REFERENCE = 128  # a reservation's or restock's id


class ProductNotFound(errors.NotFound):
    code = "product_not_found"


class SkuCodeTaken(errors.Conflict):
    code = "sku_taken"


class StockRefused(errors.Refused):
    """The stock cannot change so: it would fall below zero or pass the most, or it is not what was expected."""

    code = "stock_refused"


class CatalogueService:
    def __init__(self, store: ProductStore, merchant_settings: MerchantSettings, posters: PosterService,
                 miniapp: WeChatClient, clock: Callable[[], datetime] | None = None):
        self.store = store
        self.merchant_settings = merchant_settings
        self.posters = posters  # pictures are prepared in its process pool, checked as backgrounds are
        self.miniapp = miniapp
        self.clock = clock or (lambda: datetime.now(timezone.utc))

    # --- the merchant's products ----------------------------------------------------------

    async def create(self, fields: Product) -> dict:
        """Store a new product; the product as `product` shows it."""
        for _ in range(ID_DRAWS):
            product_id = new_product_id()
            try:
                await self._save(product_id, fields, create=True)
            except ProductIdTaken:
                continue
            return await self.product(product_id)
        raise errors.Unavailable("no free product id was found: try again")

    async def update(self, product_id: str, fields: Product) -> tuple[dict, dict]:
        """Replace a product's fields and SKUs (existing SKUs keep their stock); the product before and after."""
        before = await self.product(product_id)
        try:
            await self._save(product_id, fields, create=False)
        except ProductMissing:
            raise ProductNotFound(f"no product {product_id}") from None
        return before, await self.product(product_id)

    async def _save(self, product_id: str, fields: Product, create: bool) -> None:
        missing = await self.store.missing_images(fields.image_ids)
        if missing:
            raise InvalidField(f"image_ids[{fields.image_ids.index(missing[0])}]",
                               "is not an uploaded product image")
        written = fields.to_dict()
        product = {"_id": product_id, **{key: written[key] for key in ("title", "category", "image_ids", "on_sale",
                                                                        "description")},
                   "skus": [{key: sku[key] for key in ("sku", "title", "price_fen")} for sku in written["skus"]]}
        skus = [{"_id": sku.sku, "product_id": product_id, "product_title": fields.title, "title": sku.title,
                 "category": fields.category, "price_fen": sku.price_fen, "on_sale": fields.on_sale,
                 "stock": sku.stock} for sku in fields.skus]

        def change_rules(stored: dict | None, before: list[str]) -> dict:
            rules = CommissionRules.from_dict(stored) if stored is not None else CommissionRules()
            return with_sku_rules(rules, before, fields.sku_rules()).to_dict()

        try:
            await self.store.save(product, skus, self.clock(), create, COMMISSION_SETTINGS, change_rules)
        except SkuTaken as taken:
            index = [sku.sku for sku in fields.skus].index(taken.sku)
            raise SkuCodeTaken(f"{taken.sku!r} is already a SKU of product {taken.product_id}",
                               field=f"skus[{index}].sku") from None
        self.merchant_settings.forget(CommissionRules)

    async def product(self, product_id: str, on_sale_only: bool = False) -> dict:
        """The product with each SKU's stock and commission rule; ProductNotFound (also when `on_sale_only` and
        it is off sale)."""
        product = await self.store.product(product_id)
        if product is None or (on_sale_only and not product["on_sale"]):
            raise ProductNotFound(f"no product {product_id}" + (" on sale" if on_sale_only else ""))
        return (await self._with_rules([product]))[0]

    async def page(self, limit: int, after: tuple[datetime, str] | None, on_sale_only: bool) -> list[dict]:
        """Products newest first, as `product` shows them."""
        return await self._with_rules(await self.store.page(on_sale_only, limit, after))

    async def _with_rules(self, products: list[dict]) -> list[dict]:
        rules = (await self.merchant_settings.get(CommissionRules)).sku_rules
        return [{**product, "skus": [{**sku, "commission": rules[sku["sku"]].to_dict() if sku["sku"] in rules
                                      else None} for sku in product["skus"]]} for product in products]

    async def set_on_sale(self, product_id: str, on_sale: bool) -> tuple[dict, dict]:
        """Put a product on or off sale (products are never deleted: orders name them); before and after."""
        before = await self.product(product_id)
        if not await self.store.set_on_sale(product_id, on_sale, self.clock()):
            raise ProductNotFound(f"no product {product_id}")
        return before, await self.product(product_id)

    async def change_stock(self, product_id: str, change: StockChange) -> tuple[int, int]:
        """Add to or set one SKU's stock, never below zero; its stock before and after."""
        product = await self.product(product_id)
        if change.sku not in {sku["sku"] for sku in product["skus"]}:
            raise InvalidField("sku", f"is not a SKU of product {product_id}")
        before = await self.store.stock(change.sku)
        if change.add is not None:
            if not await self.store.add_stock(product_id, change.sku, change.add):
                raise StockRefused(f"the stock of {change.sku} would leave 0 to the most allowed", field="add")
        elif not await self.store.set_stock(product_id, change.sku, change.set, change.if_stock):
            raise StockRefused(f"the stock of {change.sku} is not {change.if_stock} any more", field="if_stock")
        return before, await self.store.stock(change.sku)

    # --- pictures -------------------------------------------------------------------------

    async def add_image(self, data: bytes) -> dict[str, Any]:
        """Check and store an uploaded picture as poster backgrounds are checked; the stored document, or
        RefusedBackground (field `body`) saying why not."""
        if len(data) > MAX_IMAGE_BYTES:
            raise RefusedBackground(f"image refused: {len(data):,} bytes is more than the {MAX_IMAGE_BYTES:,} "
                                    f"allowed")
        try:
            prepared = await self.posters.pool.prepare_background(data, PRODUCT_IMAGE_SIZE)
        except BadBackground as refused:
            raise RefusedBackground(str(refused).replace("background image", "image")) from None
        fields = {"data": prepared.data, "content_type": prepared.content_type, "width": prepared.width,
                  "height": prepared.height, "uploaded_bytes": len(data), "created_at": self.clock()}
        return {"_id": await self.store.add_image(fields), **fields}

    async def image(self, image_id: str) -> dict:
        image = await self.store.image(image_id)
        if image is None:
            raise errors.NotFound(f"no product image {image_id}")
        return image

    # --- checkouts ------------------------------------------------------------------------

    async def priced_items(self, wanted: Sequence[tuple[str, int]]) -> list[PricedItem]:
        """(sku, qty) pairs priced from the catalogue; InvalidField naming `items[i].sku` (unknown or off sale)
        or `items[i].qty` (not 1 to 999)."""
        wanted = checked_wanted(wanted)
        offers = {sku["_id"]: Offer(sku=sku["_id"], product_id=sku["product_id"], product_title=sku["product_title"],
                                    sku_title=sku["title"], category=sku["category"], unit_fen=sku["price_fen"],
                                    on_sale=sku["on_sale"])
                  for sku in await self.store.offers([sku for sku, _ in wanted])}
        return priced_items(wanted, offers)

    async def reserve(self, reservation_id: str, items: Sequence[tuple[str, int]]) -> bool:
        """Take the items' stock, all or nothing, once per `reservation_id`: True when reserved (now or by an
        earlier call with this id), False when some SKU has too little stock or is off sale."""
        return await self.store.reserve(_reference(reservation_id), checked_wanted(items), self.clock())

    async def release(self, reservation_id: str) -> bool:
        """Give a reservation's stock back: True when this call did, False when it was given back before (or was
        never taken)."""
        return await self.store.release(_reference(reservation_id), self.clock())

    async def restock(self, restock_id: str, items: Sequence[tuple[str, int]]) -> bool:
        """Count returned goods back into stock once per `restock_id`: True when this call did."""
        return await self.store.restock(_reference(restock_id), checked_wanted(items), self.clock())

    # --- promoters' shares ----------------------------------------------------------------

    async def share_code(self, member: dict, product_id: str) -> bytes:
        """The PNG of `member`'s mini-program code for a product on sale: it opens the product page and binds
        whoever scans it to them. NotAPromoter when the merchant's rules do not let them be an upline."""
        await self.product(product_id, on_sale_only=True)
        await self.posters.check_promoter(member)
        key = f"{member['_id']}|{product_id}|{PRODUCT_PAGE}"
        png = await self.store.code(key)
        if png is None:
            png = await self.miniapp.miniapp.get_unlimited_code(product_scene(member["_id"], product_id), PRODUCT_PAGE,
                                                                width=SHARE_CODE_WIDTH)
            if not png.startswith(IMAGE_SIGNATURES):
                raise WeChatUnavailable(None, "getwxacodeunlimit answered with something that is not an image",
                                        "wxa/getwxacodeunlimit")
            await self.store.save_code(key, png, self.clock())
        return png


def _reference(value: str) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_REFERENCE:
        raise InvalidField("reservation_id", f"must be 1 to {MAX_REFERENCE} characters")
    return value

