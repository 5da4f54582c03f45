"""The console's products page over HTTP, as a browser posts it: prices typed in yuan, SKU rows, refusals shown
by the input they concern, stock and sale changes, picture uploads, permissions, CSRF and the audit log."""

from __future__ import annotations

import io
import re

from PIL import Image

from distribution.commission_rules import CommissionRules
from tests.console_fixtures import staff_client

FORM = {"title": "龙井茶礼盒", "category": "drinks", "description": "明前龙井", "on_sale": "on",
        "skus[0].sku": "tea-250", "skus[0].title": "250 克", "skus[0].price": "99", "skus[0].stock": "10",
        "skus[0].commission_kind": "", "skus[0].commission": "",
        "skus[1].sku": "", "skus[1].title": "", "skus[1].price": "", "skus[1].stock": "",
        "skus[2].sku": "tea-500", "skus[2].title": "500 克", "skus[2].price": "188.5", "skus[2].stock": "",
        "skus[2].commission_kind": "rate_bp", "skus[2].commission": "800, 400"}
_PRODUCT_LINK = re.compile(r"/admin/products/([0-9a-z]{5})\?")


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (400, 300), (30, 120, 200)).save(out, "PNG")
    return out.getvalue()


async def created(console, form: dict | None = None) -> str:
    answer = await console.post("/admin/products/new", form or FORM)
    assert answer.status_code == 303, answer.text
    return _PRODUCT_LINK.search(answer.headers["location"]).group(1)


async def test_a_product_is_created_in_yuan_with_its_skus_and_listed(server):
    console = await staff_client(server, "owner")
    assert (await console.get("/admin/products/new")).status_code == 200
    product_id = await created(console)
    product = await server.runtime.catalogue.product(product_id)
    assert [(sku["sku"], sku["price_fen"], sku["stock"], sku["commission"]) for sku in product["skus"]] == [
        ("tea-250", 9_900, 10, None), ("tea-500", 18_850, 0, {"rate_bp": [800, 400]})]
    rules = await server.runtime.merchant_settings.stored(CommissionRules)
    assert rules.to_dict()["sku_rules"] == {"tea-500": {"rate_bp": [800, 400]}}

    page = await console.get(f"/admin/products/{product_id}", done="created")
    assert page.status_code == 200 and "商品已创建" in page.text
    assert 'value="188.50"' in page.text and 'data-stock="tea-250">10<' in page.text
    listed = await console.get("/admin/products")
    assert f'data-product="{product_id}"' in listed.text and "¥99.00 – ¥188.50" in listed.text
    audited = await server.runtime.db.audit_log.find_one({"action": "product.create"})
    assert audited["actor"]["name"] == "owner1" and audited["target"]["id"] == product_id
    await console.aclose()


async def test_an_operator_runs_products_but_their_commissions_stay_the_owners(server):
    owner = await staff_client(server, "owner")
    product_id = await created(owner)
    operator = await staff_client(server, "operator")
    page = await operator.get(f"/admin/products/{product_id}")
    assert page.status_code == 200 and 'name="skus[1].commission" value="800, 400" size="10" disabled' in page.text
    edited = await operator.post(f"/admin/products/{product_id}",
                                 {**FORM, "skus[0].price": "95", "skus[0].commission_kind": "rate_bp",
                                  "skus[0].commission": "2000, 1000", "skus[2].commission_kind": ""})
    assert edited.status_code == 303
    product = await server.runtime.catalogue.product(product_id)
    assert [(sku["price_fen"], sku["commission"]) for sku in product["skus"]] == [
        (9_500, None), (18_850, {"rate_bp": [800, 400]})]
    rules = await server.runtime.merchant_settings.stored(CommissionRules)
    assert rules.to_dict()["sku_rules"] == {"tea-500": {"rate_bp": [800, 400]}}
    new = await operator.post("/admin/products/new", {**FORM, "skus[0].sku": "cup", "skus[2].sku": "pot"})
    assert new.status_code == 303
    assert (await server.runtime.merchant_settings.stored(CommissionRules)).to_dict()["sku_rules"] == {
        "tea-500": {"rate_bp": [800, 400]}}
    await owner.aclose()
    await operator.aclose()


async def test_a_refused_form_is_shown_again_with_the_input_it_concerns(server):
    console = await staff_client(server, "owner")
    for changes, input_name in (({"skus[2].price": "1.999"}, "skus[2].price"),
                                ({"skus[2].price": "0"}, "skus[2].price"),
                                ({"skus[2].sku": "tea-250"}, "skus[2].sku"),
                                ({"skus[2].commission": "800"}, "skus[2].commission"),
                                ({"skus[2].stock": "many"}, "skus[2].stock"),
                                ({"title": ""}, "title"),
                                ({"image_ids": "nope"}, "image_ids")):
        answer = await console.post("/admin/products/new", {**FORM, **changes})
        assert answer.status_code == 400, (changes, answer.text)
        assert f'data-field="{input_name}"' in answer.text, changes
        assert 'value="龙井茶礼盒"' in answer.text or changes.get("title") == ""  # what was typed stays
    assert await server.runtime.db.products.count_documents({}) == 0
    await created(console)
    taken = await console.post("/admin/products/new", {**FORM, "title": "另一个"})
    assert taken.status_code == 409 and 'data-field="skus[0].sku"' in taken.text
    await console.aclose()


async def test_stock_sale_and_pictures_change_from_the_product_page(server):
    console = await staff_client(server, "owner")
    product_id = await created(console)
    path = f"/admin/products/{product_id}"

    assert (await console.post(f"{path}/stock", {"sku": "tea-250", "change": "add", "amount": "-4"})).status_code == 303
    assert (await console.post(f"{path}/stock", {"sku": "tea-500", "change": "set", "amount": "7"})).status_code == 303
    below = await console.post(f"{path}/stock", {"sku": "tea-250", "change": "add", "amount": "-7"})
    assert below.status_code == 409 and 'data-field="amount"' in below.text
    wrong = await console.post(f"{path}/stock", {"sku": "tea-250", "change": "add", "amount": "lots"})
    assert wrong.status_code == 400 and 'data-field="amount"' in wrong.text
    product = await server.runtime.catalogue.product(product_id)
    assert [sku["stock"] for sku in product["skus"]] == [6, 7]

    assert (await console.post(f"{path}/off-sale")).status_code == 303
    assert (await server.http.get(f"/api/v1/products/{product_id}")).status_code == 404
    assert (await console.post(f"{path}/on-sale")).status_code == 303

    upload = await console.post(f"{path}/images", files={"image": ("tea.png", png(), "image/png")})
    assert upload.status_code == 303, upload.text
    product = await server.runtime.catalogue.product(product_id)
    [image_id] = product["image_ids"]
    assert [sku["stock"] for sku in product["skus"]] == [6, 7] and product["skus"][1]["commission"]
    assert (await server.http.get(f"/api/v1/product-images/{image_id}")).status_code == 200
    broken = await console.post(f"{path}/images", files={"image": ("x.png", b"no", "image/png")})
    assert broken.status_code == 400 and 'data-field="image"' in broken.text

    edited = await console.post(path, {**FORM, "skus[0].price": "88.8", "image_ids": image_id, "on_sale": ""})
    assert edited.status_code == 303
    product = await server.runtime.catalogue.product(product_id)
    assert product["skus"][0]["price_fen"] == 8_880 and product["skus"][0]["stock"] == 6
    actions = sorted([entry["action"] async for entry in server.runtime.db.audit_log.find({"target.id": product_id})])
    assert actions == ["product.create", "product.image_add", "product.off_sale", "product.on_sale", "product.stock",
                       "product.stock", "product.update"]
    await console.aclose()


async def test_finance_sees_products_but_changes_none_and_forms_need_their_token(server):
    owner = await staff_client(server, "owner")
    product_id = await created(owner)
    finance = await staff_client(server, "finance")
    assert (await finance.get("/admin/products")).status_code == 200
    page = await finance.get(f"/admin/products/{product_id}")
    assert page.status_code == 200 and "save-product" not in page.text and "新建商品" not in page.text
    assert (await finance.get("/admin/products/new")).status_code == 403
    assert (await finance.post(f"/admin/products/{product_id}/off-sale")).status_code == 403
    assert (await owner.post(f"/admin/products/{product_id}/off-sale", csrf=False)).status_code == 403
    assert (await server.runtime.catalogue.product(product_id))["on_sale"]
    menu = await owner.get("/admin")
    assert 'href="/admin/products"' in menu.text
    assert (await owner.get("/admin/products/zzzzz")).status_code == 404
    await owner.aclose()
    await finance.aclose()
