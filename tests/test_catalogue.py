"""The catalogue through its service and over HTTP: the merchant's products, stock for checkouts (all or nothing,
once per id, never below zero), SKU commission rules kept in the commission settings, the mini-program's shop
window, and a promoter's share of a product that binds whoever logs in with it."""

from __future__ import annotations

import asyncio
import io

import pytest
import zxingcpp
from PIL import Image

from distribution.catalogue import MAX_STOCK, PRODUCT_PAGE, PricedItem
from distribution.commission_rules import CommissionRules
from distribution.records import InvalidField
from distribution.scene import product_scene
from tests.conftest import MERCHANT_TOKEN
from tests.order_fixtures import T0, chain, commissions_of, paid_order
from tests.test_miniapp_session import auth, login

MERCHANT = {"Authorization": f"Bearer {MERCHANT_TOKEN}"}
PRODUCTS = "/api/merchant/v1/products"
IMAGES = "/api/merchant/v1/product-images"


def tea(*skus: dict, **fields) -> dict:
    return {"title": "龙井茶礼盒", "category": "drinks", "description": "明前龙井",
            "skus": list(skus) or [sku("tea-250", 9_900, 10)], **fields}


def sku(code: str, price_fen: int, stock: int = 0, **fields) -> dict:
    return {"sku": code, "title": code.split("-")[-1], "price_fen": price_fen, "stock": stock, **fields}


def png(size: tuple[int, int] = (320, 240)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(out, "PNG")
    return out.getvalue()


async def create(server, body: dict) -> dict:
    response = await server.http.post(PRODUCTS, json=body, headers=MERCHANT)
    assert response.status_code == 201, response.text
    return response.json()


async def stock_of(server, code: str) -> int:
    return (await server.runtime.db.skus.find_one({"_id": code}))["stock"]


async def stored_rules(server) -> CommissionRules:
    return await server.runtime.merchant_settings.stored(CommissionRules)


# --- the merchant's products ----------------------------------------------------------------------


async def test_a_product_is_created_read_listed_and_replaced_keeping_the_stock_of_kept_skus(server):
    created = await create(server, tea(sku("tea-250", 9_900, 10), sku("tea-500", 18_800, 4)))
    product_id = created["id"]
    assert created["on_sale"] and [each["stock"] for each in created["skus"]] == [10, 4]
    assert created["skus"][0] == {"sku": "tea-250", "title": "250", "price_fen": 9_900, "stock": 10,
                                  "commission": None}
    read = await server.merchant_get(f"{PRODUCTS}/{product_id}")
    assert read.status_code == 200 and read.json() == created
    second = await create(server, tea(sku("cup", 1_500, 1), title="茶杯"))
    listed = (await server.merchant_get(PRODUCTS, limit="1")).json()
    assert [each["id"] for each in listed["items"]] == [second["id"]]
    rest = (await server.merchant_get(PRODUCTS, cursor=listed["next_cursor"])).json()
    assert [each["id"] for each in rest["items"]] == [product_id] and rest["next_cursor"] is None

    await server.runtime.catalogue.reserve("sold-1", [("tea-250", 3)])
    replaced = await server.http.put(f"{PRODUCTS}/{product_id}", headers=MERCHANT,
                                     json=tea(sku("tea-250", 8_800, 99), sku("tea-1000", 30_000, 2), title="新茶"))
    assert replaced.status_code == 200, replaced.text
    assert [(each["sku"], each["price_fen"], each["stock"]) for each in replaced.json()["skus"]] == [
        ("tea-250", 8_800, 7), ("tea-1000", 30_000, 2)]  # the kept SKU keeps its stock, less what was sold
    assert await server.runtime.db.skus.count_documents({"_id": "tea-500"}) == 0
    offer = await server.runtime.db.skus.find_one({"_id": "tea-250"})
    assert (offer["product_title"], offer["price_fen"]) == ("新茶", 8_800)
    actions = [entry["action"] async for entry in server.runtime.db.audit_log.find({"target.id": product_id})]
    assert sorted(actions) == ["product.create", "product.update"]


async def test_a_product_off_sale_is_neither_shown_nor_sold_and_comes_back(server):
    product_id = (await create(server, tea()))["id"]
    off = await server.http.post(f"{PRODUCTS}/{product_id}/off-sale", headers=MERCHANT)
    assert off.status_code == 200 and off.json()["on_sale"] is False
    assert (await server.http.get(f"/api/v1/products/{product_id}")).status_code == 404
    assert (await server.http.get("/api/v1/products")).json()["items"] == []
    assert not await server.runtime.catalogue.reserve("r-off", [("tea-250", 1)])
    with pytest.raises(InvalidField) as refused:
        await server.runtime.catalogue.priced_items([("tea-250", 1)])
    assert refused.value.field == "items[0].sku"
    on = await server.http.post(f"{PRODUCTS}/{product_id}/on-sale", headers=MERCHANT)
    assert on.status_code == 200 and on.json()["on_sale"] is True
    assert await server.runtime.catalogue.reserve("r-on", [("tea-250", 1)])


@pytest.mark.parametrize("body, status, field", [
    (tea(title="x" * 61), 400, "title"),
    (tea(sku("a", 0)), 400, "skus[0].price_fen"),
    (tea(sku("a", 100, -1)), 400, "skus[0].stock"),
    (tea(sku("a", 100), sku("a", 200)), 400, "skus[1].sku"),
    (tea(sku("a", 100, commission={"rate_bp": [800]})), 400, "skus[0].commission.rate_bp"),  # two levels
    (tea(sku("a", 100, commission={"rate_bp": [2900, 200]})), 400, "skus[0].commission.rate_bp"),  # over the cap
    (tea(image_ids=["0" * 24]), 400, "image_ids[0]"),
    (tea(sku("taken", 100)), 409, "skus[0].sku"),
    ({"title": "x"}, 400, "skus"),
    ([], 400, "Product"),
])
async def test_a_malformed_product_is_a_4xx_naming_the_field_and_writes_nothing(server, body, status, field):
    await create(server, tea(sku("taken", 100, 5), title="已有"))
    rules_before = await stored_rules(server)
    response = await server.http.post(PRODUCTS, json=body, headers=MERCHANT)
    assert response.status_code == status and response.json()["error"]["field"] == field, response.text
    assert await server.runtime.db.products.count_documents({}) == 1
    assert await server.runtime.db.skus.count_documents({}) == 1 and await stock_of(server, "taken") == 5
    assert await stored_rules(server) == rules_before


async def test_unknown_products_and_unsigned_requests_are_refused(server):
    assert (await server.merchant_get(f"{PRODUCTS}/zzzzz")).status_code == 404
    assert (await server.http.put(f"{PRODUCTS}/zzzzz", json=tea(), headers=MERCHANT)).status_code == 404
    assert (await server.http.get(PRODUCTS)).status_code == 401
    assert (await server.http.post(f"{PRODUCTS}/zzzzz/stock", json={"sku": "a", "add": 1},
                                   headers=MERCHANT)).status_code == 404


async def test_stock_is_added_taken_and_set_conditionally_never_below_zero(server):
    product_id = (await create(server, tea(sku("tea-250", 9_900, 10))))["id"]
    path = f"{PRODUCTS}/{product_id}/stock"

    async def change(body: dict):
        return await server.http.post(path, json=body, headers=MERCHANT)

    assert (await change({"sku": "tea-250", "add": 5})).json() == {"sku": "tea-250", "stock": 15}
    assert (await change({"sku": "tea-250", "add": -15})).json()["stock"] == 0
    below = await change({"sku": "tea-250", "add": -1})
    assert below.status_code == 409 and below.json()["error"] == {
        "code": "stock_refused", "message": below.json()["error"]["message"], "field": "add"}
    assert (await change({"sku": "tea-250", "set": 7})).json()["stock"] == 7
    stale = await change({"sku": "tea-250", "set": 3, "if_stock": 6})
    assert stale.status_code == 409 and stale.json()["error"]["field"] == "if_stock"
    assert (await change({"sku": "tea-250", "set": 3, "if_stock": 7})).json()["stock"] == 3
    other = await change({"sku": "not-mine", "add": 1})
    assert other.status_code == 400 and other.json()["error"]["field"] == "sku"
    assert (await change({"sku": "tea-250"})).json()["error"]["field"] == "add"
    assert await stock_of(server, "tea-250") == 3
    entries = await server.runtime.db.audit_log.count_documents({"action": "product.stock"})
    assert entries == 4  # the changes made, not the refusals


# --- stock for checkouts ----------------------------------------------------------------------------


async def test_100_buyers_of_the_last_10_units_reserve_exactly_10_and_stock_ends_at_zero(contended_server):
    server = contended_server
    await create(server, tea(sku("last", 9_900, 10)))
    catalogue = server.runtime.catalogue
    results = await asyncio.gather(*(catalogue.reserve(f"order-{n}", [("last", 1)]) for n in range(100)))
    assert results.count(True) == 10
    assert await stock_of(server, "last") == 0
    assert await server.runtime.db.stock_reservations.count_documents({}) == 10


async def test_reserve_release_and_restock_are_all_or_nothing_and_once_per_id(server):
    await create(server, tea(sku("a", 100, 5), sku("b", 200, 1)))
    catalogue = server.runtime.catalogue
    assert not await catalogue.reserve("short", [("a", 2), ("b", 2)])  # b has 1: nothing is taken
    assert (await stock_of(server, "a"), await stock_of(server, "b")) == (5, 1)
    assert await catalogue.reserve("order-1", [("a", 2), ("b", 1)])
    assert await catalogue.reserve("order-1", [("a", 2), ("b", 1)])  # a retried checkout: reserved once
    assert (await stock_of(server, "a"), await stock_of(server, "b")) == (3, 0)
    assert not await catalogue.release("never-reserved")
    assert await catalogue.release("order-1")
    assert not await catalogue.release("order-1")
    assert (await stock_of(server, "a"), await stock_of(server, "b")) == (5, 1)
    released = await asyncio.gather(*(catalogue.release("order-1") for _ in range(5)))
    assert released == [False] * 5 and await stock_of(server, "a") == 5

    assert await catalogue.reserve("order-2", [("a", 5)])
    twice = await asyncio.gather(catalogue.release("order-2"), catalogue.release("order-2"))
    assert sorted(twice) == [False, True] and await stock_of(server, "a") == 5
    assert await catalogue.restock("refund-1", [("a", 2)])
    assert not await catalogue.restock("refund-1", [("a", 2)])
    assert await stock_of(server, "a") == 7
    with pytest.raises(InvalidField) as refused:
        await catalogue.reserve("bad", [("a", 0)])
    assert refused.value.field == "items[0].qty"


async def test_stock_given_back_never_passes_the_most_a_sku_may_hold(server):
    product_id = (await create(server, tea(sku("a", 100, MAX_STOCK))))["id"]
    catalogue = server.runtime.catalogue
    assert await catalogue.reserve("order-1", [("a", 5)])
    assert await catalogue.reserve("order-2", [("a", 5)])
    raised = await server.http.post(f"{PRODUCTS}/{product_id}/stock", json={"sku": "a", "add": 10}, headers=MERCHANT)
    assert raised.json()["stock"] == MAX_STOCK  # the merchant filled it up while ten units were out
    assert await catalogue.release("order-1") and await catalogue.restock("refund-2", [("a", 5)])
    assert await stock_of(server, "a") == MAX_STOCK
    assert (await server.http.get(f"{PRODUCTS}/{product_id}", headers=MERCHANT)).status_code == 200


async def test_checkout_items_are_priced_from_the_catalogue(server):
    product_id = (await create(server, tea(sku("tea-250", 9_900, 10), sku("tea-500", 18_800))))["id"]
    priced = await server.runtime.catalogue.priced_items([("tea-500", 2), ("tea-250", 1)])
    assert priced == [
        PricedItem(sku="tea-500", product_id=product_id, title="龙井茶礼盒 500", category="drinks", unit_fen=18_800,
                   qty=2, paid_fen=37_600),
        PricedItem(sku="tea-250", product_id=product_id, title="龙井茶礼盒 250", category="drinks", unit_fen=9_900,
                   qty=1, paid_fen=9_900),
    ]
    for wanted, field in (([("nope", 1)], "items[0].sku"), ([("tea-250", 1000)], "items[0].qty")):
        with pytest.raises(InvalidField) as refused:
            await server.runtime.catalogue.priced_items(wanted)
        assert refused.value.field == field


# --- SKU commission rules -----------------------------------------------------------------------------


async def test_a_skus_commission_rule_is_the_commission_settings_entry_and_orders_earn_by_it(server):
    runtime = server.runtime
    root, upline, buyer = await chain(runtime, 2)
    other_rules = {"other": {"rate_bp": [100, 50]}}
    settings_path = "/api/merchant/v1/settings/commission"
    assert (await server.http.put(settings_path, json={"sku_rules": other_rules}, headers=MERCHANT)).status_code == 200

    created = await create(server, tea(sku("gift", 10_000, 5, commission={"fixed_fen_per_unit": [700, 200]}),
                                       sku("plain", 10_000, 5)))
    assert created["skus"][0]["commission"] == {"fixed_fen_per_unit": [700, 200]}
    shown = (await server.merchant_get(settings_path)).json()["sku_rules"]
    assert shown == {**other_rules, "gift": {"fixed_fen_per_unit": [700, 200]}}

    priced = await runtime.catalogue.priced_items([("gift", 2), ("plain", 1)])
    await paid_order(runtime, "SO-1", buyer, [each.order_item() for each in priced], T0)
    assert sorted((level, fen) for _, level, fen, _ in await commissions_of(runtime, "SO-1")) == [
        (1, 1_000), (1, 1_400), (2, 400), (2, 500)]  # gift: 700 and 200 a unit; plain: the default 10% and 5%

    # the rule set in the settings shows on the product, and removing it from the product removes it there
    await server.http.put(settings_path, json={"sku_rules": {**shown, "plain": {"rate_bp": [300, 100]}}},
                          headers=MERCHANT)
    product = (await server.merchant_get(f"{PRODUCTS}/{created['id']}")).json()
    assert product["skus"][1]["commission"] == {"rate_bp": [300, 100]}
    await server.http.put(f"{PRODUCTS}/{created['id']}", json=tea(sku("gift", 10_000), sku("plain", 10_000)),
                          headers=MERCHANT)
    assert (await stored_rules(server)).to_dict()["sku_rules"] == other_rules


# --- pictures -------------------------------------------------------------------------------------------


async def test_a_picture_is_uploaded_checked_and_served_to_anyone(server):
    uploaded = await server.http.post(IMAGES, content=png((1500, 1000)),
                                      headers={**MERCHANT, "Content-Type": "image/png"})
    assert uploaded.status_code == 201, uploaded.text
    image = uploaded.json()
    assert (image["width"], image["height"]) == (1125, 750)  # shrunk to just cover 750x750
    served = await server.http.get(image["url"])
    assert served.status_code == 200 and served.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(served.content)).size == (1125, 750)
    created = await create(server, tea(image_ids=[image["id"]]))
    shop = (await server.http.get(f"/api/v1/products/{created['id']}")).json()
    assert shop["image_urls"] == [image["url"]]

    broken = await server.http.post(IMAGES, content=b"not a picture", headers={**MERCHANT, "Content-Type": "image/png"})
    assert broken.status_code == 400 and broken.json()["error"]["field"] == "body"
    tiny = await server.http.post(IMAGES, content=png((50, 50)), headers={**MERCHANT, "Content-Type": "image/png"})
    assert tiny.status_code == 400
    wrong = await server.http.post(IMAGES, content=png(), headers={**MERCHANT, "Content-Type": "text/plain"})
    assert wrong.status_code == 415
    assert (await server.http.get(f"/api/v1/product-images/{'0' * 24}")).status_code == 404
    assert await server.runtime.db.product_images.count_documents({}) == 1


# --- the mini-program -------------------------------------------------------------------------------------


async def test_the_shop_window_lists_products_on_sale_without_their_commissions(server):
    on = await create(server, tea(sku("a", 100, 3)))
    await create(server, tea(sku("b", 100, 3), on_sale=False, title="下架"))
    page = await server.http.get("/api/v1/products")
    assert page.status_code == 200
    assert page.json() == {"items": [{"id": on["id"], "title": "龙井茶礼盒", "category": "drinks", "image_urls": [],
                                      "description": "明前龙井",
                                      "skus": [{"sku": "a", "title": "a", "price_fen": 100, "stock": 3}]}],
                           "next_cursor": None}
    assert (await server.http.get(f"/api/v1/products/{on['id']}")).json() == page.json()["items"][0]
    assert (await server.http.get("/api/v1/products/zzzzz")).status_code == 404
    assert (await server.http.get("/api/v1/products", params={"limit": "0"})).status_code == 400


async def test_a_promoters_share_code_opens_the_product_and_binds_the_buyer_who_logs_in_with_it(server, sandbox):
    runtime = server.runtime
    product_id = (await create(server, tea()))["id"]
    promoter_login = await login(server, "wang", profile={"nickname": "小王"})
    token = promoter_login["token"]
    share = await server.http.get(f"/api/v1/products/{product_id}/share", headers=auth(token))
    assert share.status_code == 200 and share.headers["content-type"] == "image/png"
    scene = product_scene(promoter_login["member"]["id"], product_id)
    read = [code.text for code in zxingcpp.read_barcodes(Image.open(io.BytesIO(share.content)))]
    assert read == [scene]  # the sandbox's code reads as its scene
    asked = sandbox.state.calls.received(endpoint="wxa/getwxacodeunlimit")
    assert [(call.body["scene"], call.body["page"]) for call in asked] == [(scene, PRODUCT_PAGE)]
    again = await server.http.get(f"/api/v1/products/{product_id}/share", headers=auth(token))
    assert again.content == share.content and len(sandbox.state.calls.received(endpoint="wxa/getwxacodeunlimit")) == 1

    buyer = await login(server, "new-buyer", scene=scene)
    assert buyer["member"]["upline"] == {"nickname": "小王"}
    assert (await runtime.members.get(buyer["member"]["id"]))["upline_id"] == promoter_login["member"]["id"]


async def test_only_a_member_who_may_be_an_upline_shares_and_only_products_on_sale(server):
    runtime = server.runtime
    product_id = (await create(server, tea()))["id"]
    member = await login(server, "frozen")
    await runtime.db.members.update_one({"_id": member["member"]["id"]}, {"$set": {"frozen": True}})
    refused = await server.http.get(f"/api/v1/products/{product_id}/share", headers=auth(member["token"]))
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "not_a_promoter"
    other = await login(server, "other")
    assert (await server.http.get("/api/v1/products/zzzzz/share", headers=auth(other["token"]))).status_code == 404
    assert (await server.http.get(f"/api/v1/products/{product_id}/share")).status_code == 401

