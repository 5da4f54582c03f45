"""The console's orders and commissions pages: lists with filters and paging, an order's page with its chain
snapshot, events and commissions, refusals of bad filters, and who may see them."""

from __future__ import annotations

import html
import re

from tests.console_fixtures import staff_client
from tests.order_fixtures import at, chain, create_order, drain, item, paid_order, send_event

_ORDER_ROWS = re.compile(r'<tr data-order-no="([^"]+)">(.*?)</tr>', re.S)
_COMMISSION_ROWS = re.compile(r'<tr data-commission-id="([^"]+)">(.*?)</tr>', re.S)
_NEXT_PAGE = re.compile(r'<a href="([^"]+)" rel="next">下一页</a>')


def rows(pattern: re.Pattern, page) -> dict[str, str]:
    assert page.status_code == 200, page.text
    return {key: re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", body))) for key, body in
            pattern.findall(page.text)}


async def named_chain(server):
    """李四 <- 王五 <- 张三 (the buyer): the buyer's nearest upline is 王五."""
    runtime = server.runtime
    root, promoter, buyer = await chain(runtime, 2)
    for member, name in ((root, "李四"), (promoter, "王五"), (buyer, "张三")):
        await runtime.db["members"].update_one({"_id": member["_id"]}, {"$set": {"nickname": name}})
    return root, promoter, buyer


async def test_the_orders_list_shows_each_order_with_its_buyer_and_promoter_and_filters(server):
    root, promoter, buyer = await named_chain(server)
    await create_order(server.runtime, "SO-PAID", buyer, [item(19_800, title="龙井茶礼盒")], paid_at=at(), now=at())
    await create_order(server.runtime, "SO-OPEN", buyer, [item(5_000)], now=at(seconds=60))
    await drain(server.runtime)
    console = await staff_client(server, "operator")

    listed = rows(_ORDER_ROWS, await console.get("/admin/orders"))
    assert list(listed) == ["SO-OPEN", "SO-PAID"]
    assert "张三" in listed["SO-PAID"] and "王五" in listed["SO-PAID"] and "李四" not in listed["SO-PAID"]
    assert "¥198.00" in listed["SO-PAID"] and "已支付" in listed["SO-PAID"] and "2026-05-01 12:00" in listed["SO-PAID"]
    assert "待支付" in listed["SO-OPEN"]

    assert list(rows(_ORDER_ROWS, await console.get("/admin/orders", status="paid"))) == ["SO-PAID"]
    assert list(rows(_ORDER_ROWS, await console.get("/admin/orders", promoter_id=root["_id"], direct="true"))) == []
    assert list(rows(_ORDER_ROWS, await console.get("/admin/orders", promoter_id=root["_id"]))) == ["SO-OPEN",
                                                                                                    "SO-PAID"]
    assert list(rows(_ORDER_ROWS, await console.get("/admin/orders", order_no="SO-PAID"))) == ["SO-PAID"]
    assert list(rows(_ORDER_ROWS, await console.get("/admin/orders", **{"from": "2026-05-02"}))) == []
    page = await console.get("/admin/orders", status="paid", order_no="SO-PAID")
    assert 'value="SO-PAID"' in page.text and '<option value="paid" selected>' in page.text  # the form keeps them
    await console.aclose()


async def test_the_orders_list_pages_with_its_filters(server):
    _, _, buyer = await named_chain(server)
    for number in range(23):
        await create_order(server.runtime, f"SO-{number:02d}", buyer, [item(1_000)], now=at(seconds=number))
    console = await staff_client(server, "finance")
    first = await console.get("/admin/orders", status="created")
    assert list(rows(_ORDER_ROWS, first)) == [f"SO-{number:02d}" for number in range(22, 2, -1)]
    following = html.unescape(_NEXT_PAGE.search(first.text).group(1))
    assert following.startswith("/admin/orders?status=created&cursor=")
    second = await console.http.get(following, headers={"Accept": "text/html"})
    assert list(rows(_ORDER_ROWS, second)) == ["SO-02", "SO-01", "SO-00"]
    assert not _NEXT_PAGE.search(second.text) and 'href="/admin/orders?status=created">最新</a>' in second.text
    await console.aclose()


async def test_a_bad_filter_is_refused_with_the_field_named(server):
    console = await staff_client(server, "owner")
    for params, field in (({"from": "2026-05-03", "to": "2026-05-01"}, "from"), ({"status": "shipped"}, "status"),
                          ({"cursor": "forged"}, "cursor")):
        page = await console.get("/admin/orders", **params)
        assert page.status_code == 400
        assert f'class="field-error" data-field="{field}"' in page.text
        assert re.search(rf'name="{field}"[^>]*class="invalid"|<select name="{field}" class="invalid"', page.text) \
            or field == "cursor"
    page = await console.get("/admin/commissions", status="paid")
    assert page.status_code == 400 and 'data-field="status"' in page.text
    await console.aclose()


async def test_an_orders_page_shows_its_chain_snapshot_events_and_commissions(server):
    runtime = server.runtime
    root, promoter, buyer = await named_chain(server)
    await create_order(runtime, "SO-9", buyer, [item(10_000, sku="tea"), item(5_000, sku="cup", title="茶杯")])
    await send_event(runtime, "SO-9", "pay-1", "paid", at())
    await send_event(runtime, "SO-9", "refund-1", "refunded", at(days=1), items=[{"sku": "cup", "refund_fen": 5_000}])
    await drain(runtime)
    # The buyer moves under the root afterwards: the order keeps the chain it was made with.
    await runtime.db["members"].update_one({"_id": buyer["_id"]}, {"$set": {"upline_id": root["_id"],
                                                                             "ancestor_ids": [root["_id"]]}})
    console = await staff_client(server, "operator")
    page = await console.get("/admin/orders/SO-9")
    assert page.status_code == 200
    chain_part = page.text[page.text.index('id="order-chain"'):page.text.index('id="order-items"')]
    assert re.findall(r'<li data-member-id="([^"]+)">', chain_part) == [promoter["_id"], root["_id"]]
    assert f'href="/admin/promoters/{promoter["_id"]}">王五</a>' in chain_part
    commissions = rows(_COMMISSION_ROWS, page)
    assert set(commissions) == {"SO-9:0:1", "SO-9:0:2", "SO-9:1:1", "SO-9:1:2"}
    assert "王五" in commissions["SO-9:0:1"] and "冻结中" in commissions["SO-9:0:1"] and "¥10.00" in commissions[
        "SO-9:0:1"]
    assert "已取消" in commissions["SO-9:1:1"]
    assert re.findall(r'<tr data-event-id="([^"]+)">', page.text) == ["pay-1", "refund-1"]
    assert "refunded 5000 fen" in page.text and "¥50.00" in page.text  # the refund's outcome and amount

    missing = await console.get("/admin/orders/NOPE")
    assert missing.status_code == 404 and 'data-code="order_not_found"' in missing.text
    await console.aclose()


async def test_the_commissions_list_filters_by_status_promoter_and_order(server):
    runtime = server.runtime
    root, promoter, buyer = await named_chain(server)
    await paid_order(runtime, "SO-A", buyer, [item(10_000)])
    await paid_order(runtime, "SO-B", buyer, [item(20_000)], when=at(seconds=60))
    await send_event(runtime, "SO-B", "close", "closed", at(seconds=120))
    await drain(runtime)
    console = await staff_client(server, "finance")
    listed = rows(_COMMISSION_ROWS, await console.get("/admin/commissions"))
    assert list(listed) == ["SO-B:0:2", "SO-B:0:1", "SO-A:0:2", "SO-A:0:1"]
    assert "王五" in listed["SO-A:0:1"] and "李四" in listed["SO-A:0:2"] and "已取消" in listed["SO-B:0:1"]
    assert list(rows(_COMMISSION_ROWS, await console.get("/admin/commissions", order_no="SO-A"))) == [
        "SO-A:0:2", "SO-A:0:1"]
    assert list(rows(_COMMISSION_ROWS, await console.get("/admin/commissions", member_id=promoter["_id"]))) == [
        "SO-B:0:1", "SO-A:0:1"]
    assert list(rows(_COMMISSION_ROWS, await console.get("/admin/commissions", status="frozen"))) == [
        "SO-A:0:2", "SO-A:0:1"]
    assert list(rows(_COMMISSION_ROWS, await console.get("/admin/commissions", order_no="SO-B",
                                                         member_id=root["_id"], status="cancelled"))) == ["SO-B:0:2"]
    await console.aclose()


async def test_the_pages_ask_a_stranger_to_sign_in(server):
    for path in ("/admin/orders", "/admin/orders/SO-1", "/admin/commissions"):
        answer = await server.http.get(path, headers={"Accept": "text/html"}, follow_redirects=False)
        assert answer.status_code == 302 and answer.headers["Location"].startswith("/admin/login?next=")
