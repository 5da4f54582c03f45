"""The catalogue over HTTP for the merchant: products with their SKUs, stock and pictures.

Products are never deleted (orders name their SKUs): one is taken off sale,
with `on_sale: false` in a PUT or `POST .../off-sale`, and buyers no longer
see or buy it. A SKU's `commission` is its entry in the commission settings'
`sku_rules`: writing the product writes that entry.
"""

from __future__ import annotations

from distribution.catalogue import PRODUCT_ID, Product, StockChange
from handlers.merchant import MerchantHandler
from services.catalogue import MAX_IMAGE_BYTES
from web.catalogue import MerchantProduct, ProductImage, StockLevel, audited
from web.base import PICTURE_TYPES
from web.openapi import Reply, operation
from web.paging import Page, TimePageQuery, time_cursor

PRODUCTS_PATH = "/api/merchant/v1/products"
PRODUCT = rf"(?P<product_id>{PRODUCT_ID.pattern})"
PRODUCT_ERRORS = (404,)
# 400: a field is wrong; 409: a SKU code belongs to another product.
SAVE_ERRORS = (409,)


class ProductsHandler(MerchantHandler):
    @operation("Every product, on sale or not, newest first", query=TimePageQuery,
               responses={200: Reply("A page of products", Page[MerchantProduct])})
    async def get(self) -> None:
        query = self.parse_query(TimePageQuery)
        products = await self.runtime.catalogue.page(query.limit, query.cursor, on_sale_only=False)
        self.write_model(Page[MerchantProduct].of(products, query.limit, MerchantProduct.from_document,
                                                  time_cursor("created_at")))

    @operation("Add a product with its SKUs", body=Product,
               description="SKU codes are unique across the catalogue. A SKU's commission is written to the "
                           "commission settings' sku_rules and checked as they are (one entry per level, under "
                           "cap_bp).",
               responses={201: Reply("The product as stored", MerchantProduct)}, errors=SAVE_ERRORS)
    async def post(self) -> None:
        product = await self.runtime.catalogue.create(self.parse_body(Product))
        await self.audit("product.create", "product", product["_id"], after=audited(product))
        self.set_header("Location", f"{PRODUCTS_PATH}/{product['_id']}")
        self.write_model(MerchantProduct.from_document(product), status=201)


class ProductHandler(MerchantHandler):
    @operation("One product", responses={200: Reply("The product", MerchantProduct)}, errors=PRODUCT_ERRORS)
    async def get(self, product_id: str) -> None:
        self.write_model(MerchantProduct.from_document(await self.runtime.catalogue.product(product_id)))

    @operation("Replace a product's fields and SKUs", body=Product,
               description="SKUs left out are removed; SKUs kept keep their stock (a SKU's stock is taken only "
                           "for a SKU the product did not have), and their sku_rules entries are replaced by "
                           "their commission (removed when null).",
               responses={200: Reply("The product as stored", MerchantProduct)}, errors=(*PRODUCT_ERRORS, *SAVE_ERRORS))
    async def put(self, product_id: str) -> None:
        fields = self.parse_body(Product)
        before, after = await self.runtime.catalogue.update(product_id, fields)
        await self.audit("product.update", "product", product_id, audited(before), audited(after))
        self.write_model(MerchantProduct.from_document(after))


class SaleHandler(MerchantHandler):
    @operation("Put a product on sale, or take it off sale (buyers no longer see or buy it)",
               responses={200: Reply("The product as stored", MerchantProduct)}, errors=PRODUCT_ERRORS)
    async def post(self, product_id: str, sale: str) -> None:
        before, after = await self.runtime.catalogue.set_on_sale(product_id, sale == "on-sale")
        await self.audit(f"product.{sale.replace('-', '_')}", "product", product_id, audited(before), audited(after))
        self.write_model(MerchantProduct.from_document(after))


class StockHandler(MerchantHandler):
    @operation("Add to one SKU's stock (or take from it), or set it", body=StockChange,
               description="Conditional: stock never falls below zero (409 stock_refused), and `set` with "
                           "`if_stock` changes it only if it is still what was counted.",
               responses={200: Reply("The SKU's stock now", StockLevel)}, errors=(*PRODUCT_ERRORS, 409))
    async def post(self, product_id: str) -> None:
        change = self.parse_body(StockChange)
        before, after = await self.runtime.catalogue.change_stock(product_id, change)
        await self.audit("product.stock", "product", product_id, {"sku": change.sku, "stock": before},
                         {"sku": change.sku, "stock": after})
        self.write_model(StockLevel(sku=change.sku, stock=after))


class ProductImagesHandler(MerchantHandler):
    max_body_bytes = MAX_IMAGE_BYTES

    @operation("Upload a product picture: the picture itself as the body (not multipart)",
               description=f"A JPEG or PNG of at most {MAX_IMAGE_BYTES:,} bytes, 200-8000 px a side and at most 40 "
                           "megapixels, checked as poster backgrounds are. It is turned upright and shrunk to just "
                           "cover 750x750. Name it in a product's image_ids.",
               body_media_types=PICTURE_TYPES, responses={201: Reply("The stored picture", ProductImage)},
               errors=(400, 413, 415))
    async def post(self) -> None:
        data = self.picture_body()
        image = ProductImage.from_document(await self.runtime.catalogue.add_image(data))
        await self.audit("product.image_add", "product_image", image.id,
                         after=image.model_dump(include={"content_type", "width", "height", "uploaded_bytes"}))
        self.set_header("Location", image.url)
        self.write_model(image, status=201)


ROUTES = [
    (PRODUCTS_PATH, ProductsHandler),
    (rf"{PRODUCTS_PATH}/{PRODUCT}", ProductHandler),
    (rf"{PRODUCTS_PATH}/{PRODUCT}/(?P<sale>on-sale|off-sale)", SaleHandler),
    (rf"{PRODUCTS_PATH}/{PRODUCT}/stock", StockHandler),
    ("/api/merchant/v1/product-images", ProductImagesHandler),
]
