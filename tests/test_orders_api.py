"""The merchant API over orders, commissions, commission and grade settings, and promoter stats."""

import asyncio

import pytest

from tests.conftest import MERCHANT_TOKEN
from tests.order_fixtures import at, chain, drain, item, put_rules

AUTH = {"Authorization": f"Bearer {MERCHANT_TOKEN}"}


async def post(server, path, body):
    return await server.http.post(path, json=body, headers=AUTH)


async def put(server, path, body):
    return await server.http.put(path, json=body, headers=AUTH)


def new_order(order_no, buyer, *items, **extra):
    return {"order_no": order_no, "buyer": {"member_id": buyer["_id"]}, "items": list(items) or [item(10_000)],
            **extra}


async def test_an_order_through_the_api(server):
    runtime = server.runtime
    a, b, buyer = await chain(runtime, 2)
    created = await post(server, "/api/merchant/v1/orders", new_order("API-1", buyer))
    assert created.status_code == 201
    assert created.json()["status"] == "created" and created.json()["upline_chain"] == [b["_id"], a["_id"]]
    replay = await post(server, "/api/merchant/v1/orders", new_order("API-1", buyer))
    assert replay.status_code == 200 and replay.json()["order_no"] == "API-1"
    conflict = await post(server, "/api/merchant/v1/orders", new_order("API-1", buyer, item(1)))
    assert conflict.status_code == 409 and conflict.json()["error"]["code"] == "conflict"

    paid = await post(server, "/api/merchant/v1/orders/API-1/events",
                      {"event_id": "pay-1", "type": "paid", "at": "2026-05-01T12:00:00+08:00"})
    assert paid.status_code == 202 and paid.json()["state"] == "pending" and not paid.json()["duplicate"]
    again = await post(server, "/api/merchant/v1/orders/API-1/events",
                       {"event_id": "pay-1", "type": "paid", "at": "2026-05-01T12:00:00+08:00"})
    assert again.status_code == 200 and again.json()["duplicate"]
    other = await post(server, "/api/merchant/v1/orders/API-1/events", {"event_id": "pay-1", "type": "closed"})
    assert other.status_code == 409
    await drain(runtime)

    order = (await server.merchant_get("/api/merchant/v1/orders/API-1")).json()
    assert order["status"] == "paid" and order["paid_at"] == "2026-05-01T04:00:00+00:00"
    assert [(each["beneficiary_id"], each["level"], each["amount_fen"], each["status"])
            for each in order["commissions"]] == [(b["_id"], 1, 1_000, "frozen"), (a["_id"], 2, 500, "frozen")]
    assert [(each["event_id"], each["state"]) for each in order["events"]] == [("pay-1", "applied")]
    missing = await server.merchant_get("/api/merchant/v1/orders/NOPE")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "order_not_found"
    no_order = await post(server, "/api/merchant/v1/orders/NOPE/events", {"event_id": "x", "type": "paid"})
    assert no_order.status_code == 404


async def test_fifty_concurrent_duplicate_paid_events_through_the_api(server):
    runtime = server.runtime
    upline, buyer = await chain(runtime, 1)
    await post(server, "/api/merchant/v1/orders", new_order("DUP", buyer))
    body = {"event_id": "pay", "type": "paid"}
    answers = await asyncio.gather(*(post(server, "/api/merchant/v1/orders/DUP/events", body) for _ in range(50)))
    assert sorted(answer.status_code for answer in answers) == [200] * 49 + [202]
    await drain(runtime)
    order = (await server.merchant_get("/api/merchant/v1/orders/DUP")).json()
    assert [(each["beneficiary_id"], each["amount_fen"]) for each in order["commissions"]] == [(upline["_id"], 1_000)]


@pytest.mark.parametrize("body, field", [
    ({}, "order_no"),
    ({"order_no": "a/b", "buyer": {"member_id": "x"}, "items": [item(1)]}, "order_no"),
    ({"order_no": "ok", "buyer": {}, "items": [item(1)]}, "buyer"),
    ({"order_no": "ok", "buyer": {"email": "x"}, "items": [item(1)]}, "email"),
    ({"order_no": "ok", "buyer": {"member_id": 5}, "items": [item(1)]}, "buyer.member_id"),
    ({"order_no": "ok", "buyer": {"member_id": "x"}, "items": []}, "items"),
    ({"order_no": "ok", "buyer": {"member_id": "x"}, "items": [{"sku": "a"}]}, "items[0].title"),
    ({"order_no": "ok", "buyer": {"member_id": "x"}, "items": [{**item(1), "qty": 0}]}, "items[0].qty"),
    ({"order_no": "ok", "buyer": {"member_id": "x"}, "items": [{**item(1), "paid_fen": 1.5}]}, "items[0].paid_fen"),
    ({"order_no": "ok", "buyer": {"member_id": "x"}, "items": [{**item(1), "paid_fen": 10 ** 30}]},
     "items[0].paid_fen"),
    ({"order_no": "ok", "buyer": {"member_id": "x"}, "items": ["tea"]}, "items[0]"),
    ({"order_no": "ok", "buyer": {"member_id": "x"}, "items": [item(1)], "paid_at": "yesterday"}, "paid_at"),
    ({"order_no": "ok", "buyer": {"member_id": "x"}, "items": [item(1)], "paid_at": "2026-05-01T12:00:00"},
     "paid_at"),
    ({"order_no": "ok", "buyer": {"member_id": "x"}, "items": [item(1)], "paid_at": "0001-01-01T00:00:00+01:00"},
     "paid_at"),
    ({"order_no": "ok", "buyer": {"member_id": "x"}, "items": [item(1)], "extra": 1}, "extra"),
])
async def test_bad_orders_are_refused_by_field_and_nothing_is_written(server, body, field):
    answer = await post(server, "/api/merchant/v1/orders", body)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["field"] == field
    assert await server.runtime.db["orders"].count_documents({}) == 0


async def test_bad_events_are_refused_by_field(server):
    runtime = server.runtime
    _, buyer = await chain(runtime, 1)
    await post(server, "/api/merchant/v1/orders", new_order("E", buyer, item(1_000), item(500, sku="cup")))
    for body, field in (
        ({"type": "paid"}, "event_id"),
        ({"event_id": "_x", "type": "paid"}, "event_id"),
        ({"event_id": "e", "type": "shipped"}, "type"),
        ({"event_id": "e", "type": "paid", "items": [{"sku": "tea", "refund_fen": 1}]}, "items"),
        ({"event_id": "e", "type": "refunded", "items": [{"sku": "pen", "refund_fen": 1}]}, "items[0].sku"),
        ({"event_id": "e", "type": "refunded", "items": [{"sku": "tea", "refund_fen": 0}]}, "items[0].refund_fen"),
        ({"event_id": "e", "type": "refunded", "items": [{"sku": "cup", "refund_fen": 300},
                                                          {"sku": "cup", "refund_fen": 300}]}, "items[1].refund_fen"),
        ({"event_id": "e", "type": "refunded", "items": []}, "items"),
        ({"event_id": "e", "type": "confirmed", "at": "2026-05-01"}, "at"),
    ):
        answer = await post(server, "/api/merchant/v1/orders/E/events", body)
        assert answer.status_code == 400 and answer.json()["error"]["field"] == field, (body, answer.text)
    not_json = await server.http.post("/api/merchant/v1/orders/E/events", content=b"{", headers=AUTH)
    assert not_json.status_code == 400
    assert await runtime.db["order_events"].count_documents({}) == 0


async def test_commissions_listed_by_member_and_status_a_page_at_a_time(server):
    runtime = server.runtime
    upline, buyer = await chain(runtime, 1)
    for number in range(5):
        await post(server, "/api/merchant/v1/orders", new_order(f"L{number}", buyer, paid_at=at(number).isoformat()))
    await drain(runtime)
    await post(server, "/api/merchant/v1/orders/L0/events", {"event_id": "r", "type": "refunded"})
    await drain(runtime)

    seen, cursor = [], None
    while True:
        params = {"member_id": upline["_id"], "limit": "2", **({"cursor": cursor} if cursor else {})}
        page = (await server.merchant_get("/api/merchant/v1/commissions", **params)).json()
        seen += [each["order_no"] for each in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ["L4", "L3", "L2", "L1", "L0"]
    cancelled = (await server.merchant_get("/api/merchant/v1/commissions", status="cancelled")).json()
    assert [each["order_no"] for each in cancelled["items"]] == ["L0"] and cancelled["next_cursor"] is None
    nobody = await server.merchant_get("/api/merchant/v1/commissions", member_id=buyer["_id"])
    assert nobody.json() == {"items": [], "next_cursor": None}
    for params, field in (({"status": "lost"}, "status"), ({"limit": "0"}, "limit"), ({"cursor": "!!"}, "cursor")):
        answer = await server.merchant_get("/api/merchant/v1/commissions", **params)
        assert answer.status_code == 400 and answer.json()["error"]["field"] == field


async def test_commission_settings_through_the_api(server):
    path = "/api/merchant/v1/settings/commission"
    defaults = (await server.merchant_get(path)).json()
    assert (defaults["levels"], defaults["level_rates_bp"], defaults["cap_bp"], defaults["freeze_days"],
            defaults["trigger"]) == (2, [1000, 500], 3000, 7, "paid")
    deep = {"levels": 4, "level_rates_bp": [1000, 500, 300, 200]}
    refused = await put(server, path, deep)
    assert refused.status_code == 400 and refused.json()["error"]["field"] == "levels"
    assert (await put(server, path, {**deep, "acknowledge_legal_risk": True})).status_code == 200
    over_cap = await put(server, path, {"level_rates_bp": [2500, 1000]})
    assert over_cap.status_code == 400 and over_cap.json()["error"]["field"] == "level_rates_bp"
    assert (await server.merchant_get(path)).json()["levels"] == 4


async def test_grade_settings_through_the_api(server):
    path = "/api/merchant/v1/settings/grades"
    assert (await server.merchant_get(path)).json() == {"grades": []}
    grades = {"grades": [{"name": "silver", "min_direct_members": 3},
                         {"name": "gold", "min_own_settled_sales_fen": 100_000, "min_team_settled_sales_fen": 500_000}]}
    stored = await put(server, path, grades)
    assert stored.status_code == 200
    assert stored.json()["grades"][1] == {"name": "gold", "min_own_settled_sales_fen": 100_000,
                                          "min_direct_members": 0, "min_team_settled_sales_fen": 500_000}
    for body, field in (({"grades": [{"name": "a"}, {"name": "a"}]}, "grades[1].name"),
                        ({"grades": [{"name": "a", "min_direct_members": -1}]}, "grades[0].min_direct_members"),
                        ({"grades": [{"min_direct_members": 1}]}, "grades[0].name"),
                        ({"grades": "gold"}, "grades")):
        answer = await put(server, path, body)
        assert answer.status_code == 400 and answer.json()["error"]["field"] == field, answer.text


async def test_promoter_rankings(server):
    runtime = server.runtime
    await put_rules(runtime, levels=2)
    top, middle, buyer = await chain(runtime, 2)
    for number, paid_fen in enumerate((10_000, 20_000, 5_000)):
        await post(server, "/api/merchant/v1/orders",
                   new_order(f"S{number}", buyer, item(paid_fen), paid_at="2026-05-01T23:30:00+08:00"))
    await post(server, "/api/merchant/v1/orders",
               new_order("S-middle", middle, item(10_000), paid_at="2026-05-01T23:30:00+08:00"))
    await drain(runtime)
    ranking = (await server.merchant_get("/api/merchant/v1/stats/promoters", **{
        "from": "2026-05-01", "to": "2026-05-01", "sort": "commission"})).json()
    assert [(each["member_id"], each["orders"], each["paid_fen"], each["commission_fen"])
            for each in ranking["items"]] == [(middle["_id"], 3, 35_000, 3_500), (top["_id"], 4, 45_000, 2_750)]
    # 23:30 in China is still May 1st there; nothing on May 2nd.
    empty = (await server.merchant_get("/api/merchant/v1/stats/promoters", **{
        "from": "2026-05-02", "to": "2026-05-02"})).json()
    assert empty["items"] == []
    by_orders = (await server.merchant_get("/api/merchant/v1/stats/promoters", **{
        "from": "2026-04-01", "to": "2026-05-31", "sort": "orders", "limit": "1"})).json()
    assert [each["member_id"] for each in by_orders["items"]] == [top["_id"]]
    for params, field in (({"from": "2026-13-01"}, "from"), ({"from": "2026-05-02", "to": "2026-05-01"}, "from"),
                          ({"from": "2020-01-01", "to": "2026-01-01"}, "from"), ({"sort": "fame"}, "sort"),
                          ({"limit": "1000"}, "limit")):
        answer = await server.merchant_get("/api/merchant/v1/stats/promoters", **params)
        assert answer.status_code == 400 and answer.json()["error"]["field"] == field


async def test_order_endpoints_need_the_merchant_token(server):
    for method, path in (("GET", "/api/merchant/v1/orders/X"), ("POST", "/api/merchant/v1/orders"),
                         ("POST", "/api/merchant/v1/orders/X/events"), ("GET", "/api/merchant/v1/commissions"),
                         ("GET", "/api/merchant/v1/stats/promoters")):
        answer = await server.http.request(method, path, json={} if method == "POST" else None)
        assert answer.status_code == 401
