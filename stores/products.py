"""The catalogue in MongoDB: the only module that knows its shape on disk.

- `products`: `{_id: product id, title, category, image_ids, on_sale, description, skus: [{sku, title,
  price_fen}], created_at, updated_at}`: what the merchant wrote, SKUs in their order.
- `skus`: one document per SKU, `{_id: sku code, product_id, product_title, title, category, price_fen,
  stock, on_sale}`. Its `_id` makes a code unique across the catalogue, finds a SKU in one indexed read,
  and lets one conditional `update_one` take stock (`stock >= qty` and on sale) without reading it first.
  The stock lives here only; `price_fen`, titles and `on_sale` are copies of the product's, written in the
  same transaction as the product.
- `stock_reservations`: `{_id: reservation id, items: [{sku, qty}], state: reserved | released,
  reserved_at, released_at}`, inserted in the transaction that takes the stock, so a reservation is
  taken once and given back once.
- `stock_restocks`: `{_id: restock id, items, at}`: goods returned, counted back once per id.
- `product_images`: the merchant's pictures, prepared like poster backgrounds (`{_id, data, content_type,
  width, height, uploaded_bytes, created_at}`).
- `product_codes`: a promoter's mini-program code for a product, `{_id: "<member>|<product>|<page>", png,
  created_at}`: asked of WeChat once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from bson import ObjectId
from pymongo import AsyncMongoClient, UpdateOne
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from distribution.catalogue import MAX_STOCK
from stores.paging import newest_first
from stores.settings import SettingsStore
from stores.writes import Conflict, WriteSet, commit, run_transaction

PRODUCTS = "products"
SKUS = "skus"
RESERVATIONS = "stock_reservations"
RESTOCKS = "stock_restocks"
RESERVED, RELEASED = "reserved", "released"
# What a SKU document copies from its product.
SKU_COPIES = ("product_id", "product_title", "title", "category", "price_fen", "on_sale")


class ProductIdTaken(Exception):
    """Another product has the id drawn for a new one: draw again."""


class ProductMissing(Exception):
    """No product has this id."""


class SkuTaken(Exception):
    """A SKU code belongs to another product."""

    def __init__(self, sku: str, product_id: str):
        super().__init__(f"{sku} belongs to product {product_id}")
        self.sku, self.product_id = sku, product_id


class ProductStore:
    def __init__(self, client: AsyncMongoClient, db: AsyncDatabase):
        self.client = client
        self.db = db
        self.products = db[PRODUCTS]
        self.skus = db[SKUS]
        self.reservations = db[RESERVATIONS]
        self.images = db["product_images"]
        self.codes = db["product_codes"]
        self.settings = SettingsStore(db)

    # --- products ----------------------------------------------------------------------------

    async def save(self, product: dict, skus: list[dict], at: datetime, create: bool, settings_name: str,
                   change_settings: Callable[[dict | None, list[str]], dict]) -> None:
        """Write `product` (`_id` and the merchant's fields) and its SKU documents in one transaction, with the
        settings `settings_name` changed by `change_settings(stored value, the SKU codes the product had)`.

        A new SKU starts with the `stock` its document carries; an existing one keeps its own. SKUs the
        product no longer has are removed. ProductIdTaken (create), ProductMissing (update), SkuTaken, or
        whatever `change_settings` raises, having changed nothing.
        """
        product_id = product["_id"]
        codes = [sku["_id"] for sku in skus]

        async def step(session: AsyncClientSession) -> None:
            if create:
                try:
                    await self.products.insert_one({**product, "created_at": at, "updated_at": at}, session=session)
                except DuplicateKeyError:
                    raise ProductIdTaken(product_id) from None
                before: list[str] = []
            else:
                stored = await self.products.find_one({"_id": product_id}, {"skus.sku": 1}, session=session)
                if stored is None:
                    raise ProductMissing(product_id)
                before = [sku["sku"] for sku in stored["skus"]]
                fields = {key: value for key, value in product.items() if key != "_id"}
                await self.products.update_one({"_id": product_id}, {"$set": {**fields, "updated_at": at}},
                                               session=session)
            taken = await self.skus.find({"_id": {"$in": codes}, "product_id": {"$ne": product_id}},
                                         {"product_id": 1}, session=session).to_list()
            if taken:
                raise SkuTaken(taken[0]["_id"], taken[0]["product_id"])
            gone = [code for code in before if code not in codes]
            if gone:
                await self.skus.delete_many({"_id": {"$in": gone}, "product_id": product_id}, session=session)
            await self.skus.bulk_write([
                UpdateOne({"_id": sku["_id"]}, {"$set": {key: sku[key] for key in SKU_COPIES},
                                                "$setOnInsert": {"stock": sku["stock"]}}, upsert=True)
                for sku in skus], ordered=False, session=session)
            value = change_settings(await self.settings.value(settings_name, session), before)
            await self.settings.put(settings_name, value, at, session)

        await run_transaction(self.client, step)

    async def set_on_sale(self, product_id: str, on_sale: bool, at: datetime) -> bool:
        """Put a product on or off sale, with its SKUs; False when there is no such product."""

        async def step(session: AsyncClientSession) -> bool:
            changed = await self.products.update_one({"_id": product_id},
                                                     {"$set": {"on_sale": on_sale, "updated_at": at}}, session=session)
            if changed.matched_count == 0:
                return False
            await self.skus.update_many({"product_id": product_id}, {"$set": {"on_sale": on_sale}}, session=session)
            return True

        return await run_transaction(self.client, step)

    async def product(self, product_id: str) -> dict | None:
        """The product with each SKU's stock (`skus[i].stock`), or None."""
        product = await self.products.find_one({"_id": product_id})
        if product is None:
            return None
        return (await self._with_stock([product]))[0]

    async def page(self, on_sale_only: bool, limit: int, after: tuple[datetime, str] | None) -> list[dict]:
        """Products newest first, after the cursor `(created_at, _id)`, each SKU with its stock."""
        query = {"on_sale": True} if on_sale_only else {}
        return await self._with_stock(await newest_first(self.products, query, "created_at", limit, after))

    async def _with_stock(self, products: list[dict]) -> list[dict]:
        stocks = {sku["_id"]: sku["stock"] for sku in await self.skus.find(
            {"product_id": {"$in": [product["_id"] for product in products]}}, {"stock": 1}).to_list()}
        return [{**product, "skus": [{**sku, "stock": stocks.get(sku["sku"], 0)} for sku in product["skus"]]}
                for product in products]

    async def offers(self, codes: Sequence[str]) -> list[dict]:
        """The SKU documents of these codes (those that exist)."""
        return await self.skus.find({"_id": {"$in": list(codes)}}).to_list()

    async def add_stock(self, product_id: str, sku: str, add: int) -> bool:
        """`add` units more (fewer when negative) unless the stock would leave 0..MAX_STOCK; whether it did."""
        bound = {"$gte": -add} if add < 0 else {"$lte": MAX_STOCK - add}
        changed = await self.skus.update_one({"_id": sku, "product_id": product_id, "stock": bound},
                                             {"$inc": {"stock": add}})
        return changed.matched_count == 1

    async def set_stock(self, product_id: str, sku: str, stock: int, if_stock: int | None) -> bool:
        """The stock set to `stock` (only if it is `if_stock` now, when given); whether it was."""
        guard = {} if if_stock is None else {"stock": if_stock}
        changed = await self.skus.update_one({"_id": sku, "product_id": product_id, **guard},
                                             {"$set": {"stock": stock}})
        return changed.matched_count == 1

    async def stock(self, sku: str) -> int | None:
        found = await self.skus.find_one({"_id": sku}, {"stock": 1})
        return None if found is None else found["stock"]

    # --- stock for checkouts ----------------------------------------------------------------

    async def reserve(self, reservation_id: str, items: Sequence[tuple[str, int]], at: datetime) -> bool:
        """Take each SKU's quantity, all or none, and record the reservation in the same transaction. True when
        reserved (now, or by an earlier call with this id); False when some SKU has too little stock or is off
        sale, and nothing was taken."""
        writes = WriteSet()
        for sku, qty in items:
            writes.guard(SKUS, {"_id": sku, "stock": {"$gte": qty}, "on_sale": True}, {"$inc": {"stock": -qty}})
        writes.insert(RESERVATIONS, [{"_id": reservation_id, "items": _items(items), "state": RESERVED,
                                      "reserved_at": at}])
        try:
            await commit(self.client, self.db, writes)
        except Conflict:
            return await self.reservations.count_documents({"_id": reservation_id}, limit=1) == 1
        return True

    async def release(self, reservation_id: str, at: datetime) -> bool:
        """Give a reservation's stock back; True when this call did, False when it was given back before or
        there is no such reservation."""
        reservation = await self.reservations.find_one({"_id": reservation_id, "state": RESERVED})
        if reservation is None:
            return False
        writes = WriteSet()
        writes.guard(RESERVATIONS, {"_id": reservation_id, "state": RESERVED},
                     {"$set": {"state": RELEASED, "released_at": at}})
        _give_back(writes, [(item["sku"], item["qty"]) for item in reservation["items"]])
        try:
            await commit(self.client, self.db, writes)
        except Conflict:
            return False  # released meanwhile by another call
        return True

    async def restock(self, restock_id: str, items: Sequence[tuple[str, int]], at: datetime) -> bool:
        """Count returned goods back into stock; True when this call did, False when this id did before."""
        writes = WriteSet()
        writes.insert(RESTOCKS, [{"_id": restock_id, "items": _items(items), "at": at}])
        _give_back(writes, items)
        try:
            await commit(self.client, self.db, writes)
        except Conflict:
            return False
        return True

    async def reservation(self, reservation_id: str) -> dict | None:
        return await self.reservations.find_one({"_id": reservation_id})

    # --- pictures and codes -----------------------------------------------------------------

    async def add_image(self, fields: dict[str, Any]) -> str:
        image_id = str(ObjectId())
        await self.images.insert_one({"_id": image_id, **fields})
        return image_id

    async def image(self, image_id: str) -> dict | None:
        return await self.images.find_one({"_id": image_id})

    async def missing_images(self, image_ids: Sequence[str]) -> list[str]:
        found = {image["_id"] for image in await self.images.find({"_id": {"$in": list(image_ids)}},
                                                                  {"_id": 1}).to_list()}
        return [image_id for image_id in image_ids if image_id not in found]

    async def code(self, key: str) -> bytes | None:
        found = await self.codes.find_one({"_id": key})
        return None if found is None else bytes(found["png"])

    async def save_code(self, key: str, png: bytes, at: datetime) -> None:
        await self.codes.replace_one({"_id": key}, {"png": png, "created_at": at}, upsert=True)


def _items(items: Sequence[tuple[str, int]]) -> list[dict]:
    return [{"sku": sku, "qty": qty} for sku, qty in items]


def _give_back(writes: WriteSet, items: Sequence[tuple[str, int]]) -> None:
    # A SKU removed from the catalogue since has no stock to give back to. Stock the merchant raised to the
    # most while these units were out stays at the most: what is given back never takes it past MAX_STOCK.
    for sku, qty in items:
        writes.update(SKUS, UpdateOne({"_id": sku}, [{"$set": {"stock": {"$min": [MAX_STOCK,
                                                                                   {"$add": ["$stock", qty]}]}}}]))
