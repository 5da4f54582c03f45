"""The catalogue as the APIs show it: the merchant's products, the mini-program's shop window, the pictures;
declared once for the merchant API, the mini-program API and the console, which share only web plumbing."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field

from web.base import PICTURE_TYPES, BaseHandler
from web.models import Answer, Fen, Time
from web.openapi import Reply

# A picture never changes under its id: a new picture is a new image.
IMAGE_CACHE_CONTROL = "public, max-age=86400"
IMAGE_PATH = "/api/v1/product-images/{}"
PRODUCT_IMAGE = Reply("The picture, as prepared", media_types=PICTURE_TYPES)


class MerchantSku(Answer):
    sku: str
    title: str
    price_fen: Fen
    stock: int = Field(description="units for sale now")
    commission: dict[str, list[int]] | None = Field(
        description="the SKU's entry in the commission settings' sku_rules: {rate_bp: [...]} or "
                    "{fixed_fen_per_unit: [...]}, level 1 first; null when it has none")


class MerchantProduct(Answer):
    """A product as the merchant sees it: on sale or not, with its stock and commission rules."""

    id: str
    title: str
    category: str | None
    image_ids: list[str]
    on_sale: bool
    description: str | None
    skus: list[MerchantSku]
    created_at: Time
    updated_at: Time

    @classmethod
    def from_document(cls, product: dict) -> Self:
        return cls.model_validate({**product, "id": product["_id"]})


class ShopSku(Answer):
    sku: str = Field(description="what POST /api/v1/orders names the item by")
    title: str
    price_fen: Fen
    stock: int = Field(description="units left; 0: sold out")


class ShopProduct(Answer):
    """A product on sale as the mini-program shows it."""

    id: str
    title: str
    category: str | None
    image_urls: list[str] = Field(description="its pictures, the first shown first: paths on this server")
    description: str | None
    skus: list[ShopSku]

    @classmethod
    def from_document(cls, product: dict) -> Self:
        return cls.model_validate({**product, "id": product["_id"],
                                   "image_urls": [IMAGE_PATH.format(image_id) for image_id in product["image_ids"]]})


class ProductImage(Answer):
    id: str = Field(description="what a product's image_ids name it by")
    url: str = Field(description="where the mini-program loads it from")
    content_type: Literal["image/jpeg", "image/png"]
    width: int
    height: int
    bytes: int = Field(description="its size as stored, once shrunk to cover 750x750")
    uploaded_bytes: int
    created_at: Time

    @classmethod
    def from_document(cls, image: dict) -> Self:
        return cls.model_validate({**image, "id": image["_id"], "url": IMAGE_PATH.format(image["_id"]),
                                   "bytes": len(image["data"])})


class StockLevel(Answer):
    sku: str
    stock: int = Field(description="units for sale now")


class ProductImageWriter(BaseHandler):
    """Mixed into the handlers that answer a product picture."""

    async def write_image(self, image_id: str) -> None:
        image = await self.runtime.catalogue.image(image_id)
        self.set_header("Content-Type", image["content_type"])
        self.set_header("Cache-Control", IMAGE_CACHE_CONTROL)
        self.finish(bytes(image["data"]))


def audited(product: dict) -> dict:
    """A product as the audit log keeps it: what the merchant wrote, without the times or the stock, which
    changes by itself with every sale."""
    return {**{key: product[key] for key in ("title", "category", "image_ids", "on_sale", "description")},
            "skus": [{key: sku[key] for key in ("sku", "title", "price_fen", "commission")} for sku in product["skus"]]}
