"""The shop window of the mini-program: products on sale and their pictures, open to anyone (a buyer arriving
from a scan sees the product before logging in); and a promoter's share of a product.

The share is the promoter's mini-program code for the product: scanned, it
opens the product page (`distribution.catalogue.PRODUCT_PAGE`) with a scene
naming the promoter and the product (`distribution.scene.product_scene`), and
a buyer who logs in with that scene is bound to the promoter as by any
promoter's code.
"""

from __future__ import annotations

from distribution.agreements import AgreementAct
from distribution.catalogue import PRODUCT_ID, PRODUCT_PAGE
from miniapp_api.auth import MiniappHandler
from web.base import BaseHandler
from web.catalogue import PRODUCT_IMAGE, ProductImageWriter, ShopProduct
from web.openapi import Reply, operation
from web.paging import Page, TimePageQuery, time_cursor

PRODUCT = rf"(?P<product_id>{PRODUCT_ID.pattern})"
# The code's picture never changes for a promoter and product.
SHARE_CACHE_CONTROL = "private, max-age=86400"


class ShopProductsHandler(BaseHandler):
    @operation("Products on sale, newest first", query=TimePageQuery,
               responses={200: Reply("A page of products", Page[ShopProduct])})
    async def get(self) -> None:
        query = self.parse_query(TimePageQuery)
        products = await self.runtime.catalogue.page(query.limit, query.cursor, on_sale_only=True)
        self.write_model(Page[ShopProduct].of(products, query.limit, ShopProduct.from_document,
                                              time_cursor("created_at")))


class ShopProductHandler(BaseHandler):
    @operation("A product on sale", responses={200: Reply("The product", ShopProduct)}, errors=(404,))
    async def get(self, product_id: str) -> None:
        self.write_model(ShopProduct.from_document(await self.runtime.catalogue.product(product_id,
                                                                                        on_sale_only=True)))


class ProductShareHandler(MiniappHandler):
    @operation("My mini-program code for a product on sale (PNG): it opens the product and binds whoever scans it "
               "to me",
               description=f"The code opens the page {PRODUCT_PAGE} with the scene p:<my id>.<product id>. Only a "
                           "member the merchant's rules let be an upline may share (403 not_a_promoter).",
               responses={200: Reply("The code", media_types=("image/png",))}, errors=(403, 404))
    async def get(self, product_id: str) -> None:
        await self.runtime.agreements.require(self.member, AgreementAct.SHARE)
        png = await self.runtime.catalogue.share_code(self.member, product_id)
        self.set_header("Content-Type", "image/png")
        self.set_header("Cache-Control", SHARE_CACHE_CONTROL)
        self.finish(png)


class ShopImageHandler(ProductImageWriter):
    @operation("A product picture", responses={200: PRODUCT_IMAGE}, errors=(404,))
    async def get(self, image_id: str) -> None:
        await self.write_image(image_id)


ROUTES = [
    (r"/api/v1/products", ShopProductsHandler),
    (rf"/api/v1/products/{PRODUCT}", ShopProductHandler),
    (rf"/api/v1/products/{PRODUCT}/share", ProductShareHandler),
    (r"/api/v1/product-images/(?P<image_id>[0-9a-f]{24})", ShopImageHandler),
]
