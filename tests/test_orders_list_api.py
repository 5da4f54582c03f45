"""GET /api/merchant/v1/orders: newest first, every filter, cursor paging, refusals, and each filter's index."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.conftest import MERCHANT_TOKEN
from tests.order_fixtures import add_member, at, chain, create_order, drain, item, send_event

ORDERS = "/api/merchant/v1/orders"


@pytest.fixture
async def shop(server):
    """Two chains and seven orders an hour apart, the newest last; the times are China's day boundaries' sides.

    root <- promoter <- buyer, and root <- other_buyer (root is the other buyer's nearest upline). Orders:
    O1 (May 1, 08:00 China, paid, buyer), O2 (May 1 23:59:59, created, buyer), O3 (May 2 00:00, paid, other),
    O4 (May 2 01:00, closed, buyer), O5 (May 3, created, nobody's), O6 (May 3, paid, other), O7 (May 4, paid,
    buyer).
    """
    runtime = server.runtime
    root, promoter, buyer = await chain(runtime, 2)
    other = await add_member(runtime, root)
    nobody = {"_id": "no-such-member"}
    may_2 = at(seconds=12 * 3600)  # 2026-05-02 00:00 in China
    plan = [("O1", buyer, at(seconds=-4 * 3600), True), ("O2", buyer, may_2 - timedelta(seconds=1), False),
            ("O3", other, may_2, True), ("O4", buyer, may_2 + timedelta(hours=1), False),
            ("O5", nobody, at(days=2), False), ("O6", other, at(days=2, seconds=60), True),
            ("O7", buyer, at(days=3), True)]
    for order_no, who, created, paid in plan:
        await create_order(runtime, order_no, who, [item(10_000)], paid_at=created if paid else None, now=created)
    await send_event(runtime, "O4", "close", "closed", may_2 + timedelta(hours=2))
    await drain(runtime)
    return {"root": root["_id"], "promoter": promoter["_id"], "buyer": buyer["_id"], "other": other["_id"]}


async def listed(server, **params) -> list[str]:
    response = await server.merchant_get(ORDERS, **params)
    assert response.status_code == 200, response.text
    return [order["order_no"] for order in response.json()["items"]]


async def test_orders_are_listed_newest_first_and_shown_as_the_order_endpoint_shows_them(server, shop):
    assert await listed(server) == ["O7", "O6", "O5", "O4", "O3", "O2", "O1"]
    first = (await server.merchant_get(ORDERS, limit="1")).json()["items"][0]
    alone = (await server.merchant_get(f"{ORDERS}/O7")).json()
    assert first == {key: value for key, value in alone.items() if key not in ("commissions", "events")}
    assert (first["status"], first["upline_chain"]) == ("paid", [shop["promoter"], shop["root"]])


async def test_each_filter_and_their_combinations(server, shop):
    assert await listed(server, status="paid") == ["O7", "O6", "O3", "O1"]
    assert await listed(server, status="closed") == ["O4"]
    assert await listed(server, promoter_id=shop["root"]) == ["O7", "O6", "O4", "O3", "O2", "O1"]
    assert await listed(server, promoter_id=shop["root"], direct="true") == ["O6", "O3"]
    assert await listed(server, promoter_id=shop["promoter"], direct="true") == ["O7", "O4", "O2", "O1"]
    assert await listed(server, promoter_id=shop["root"], status="paid") == ["O7", "O6", "O3", "O1"]
    assert await listed(server, promoter_id=shop["root"], direct="true", status="created") == []
    assert await listed(server, promoter_id=shop["buyer"]) == []
    # China days: O2 is the last second of May 1 there, O3 the first of May 2.
    assert await listed(server, **{"from": "2026-05-02"}) == ["O7", "O6", "O5", "O4", "O3"]
    assert await listed(server, to="2026-05-01") == ["O2", "O1"]
    assert await listed(server, **{"from": "2026-05-02", "to": "2026-05-03"}) == ["O6", "O5", "O4", "O3"]
    assert await listed(server, **{"from": "2026-05-02", "to": "2026-05-02", "status": "paid"}) == ["O3"]
    assert await listed(server, **{"from": "2026-05-05"}) == []
    assert await listed(server, to="2026-04-30") == []
    assert await listed(server, order_no="O4") == ["O4"]
    assert await listed(server, order_no="O4", status="paid") == []
    assert await listed(server, order_no="O4", to="2026-05-01") == []
    assert await listed(server, order_no="NOPE") == []


async def test_pages_follow_the_cursor_to_the_end_under_filters(server, shop):
    seen, cursor = [], None
    for _ in range(5):
        params = {"limit": "2", "promoter_id": shop["root"], "from": "2026-05-01", "to": "2026-05-03"}
        page = (await server.merchant_get(ORDERS, **params, **({"cursor": cursor} if cursor else {}))).json()
        seen.append([order["order_no"] for order in page["items"]])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [["O6", "O4"], ["O3", "O2"], ["O1"]]
    one = (await server.merchant_get(ORDERS, order_no="O1", limit="1")).json()
    after_it = (await server.merchant_get(ORDERS, order_no="O1", limit="1", cursor=one["next_cursor"])).json()
    assert [order["order_no"] for order in one["items"]] == ["O1"] and after_it == {"items": [], "next_cursor": None}


@pytest.mark.parametrize("params, field", [
    ({"from": "2026-05-03", "to": "2026-05-02"}, "from"),
    ({"from": "2026-13-01"}, "from"),
    ({"to": "9999-12-31"}, "to"),
    ({"from": "0001-01-01"}, "from"),
    ({"status": "shipped"}, "status"),
    ({"direct": "maybe"}, "direct"),
    ({"limit": "0"}, "limit"),
    ({"limit": "101"}, "limit"),
    ({"cursor": "not-a-cursor"}, "cursor"),
    ({"promoter_id": "x" * 65}, "promoter_id"),
    ({"order_no": "x" * 65}, "order_no"),
])
async def test_bad_filters_are_400s_naming_the_field(server, params, field):
    response = await server.merchant_get(ORDERS, **params)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["field"] == field


async def test_the_list_needs_the_merchant_token(server):
    assert (await server.http.get(ORDERS)).status_code == 401
    assert (await server.http.get(ORDERS, headers={"Authorization": f"Bearer {MERCHANT_TOKEN}x"})).status_code == 401


class RecordingCollection:
    """A collection that notes each find's filter and sort, and passes everything on."""

    def __init__(self, collection):
        self.collection = collection
        self.finds: list[tuple[dict, list]] = []

    def find(self, filter, *args, **kwargs):
        cursor = self.collection.find(filter, *args, **kwargs)
        sort = cursor.sort

        def noted(order):
            self.finds.append((filter, order))
            return sort(order)

        cursor.sort = noted
        return cursor

    def __getattr__(self, name):
        return getattr(self.collection, name)


async def test_every_read_of_every_filter_is_a_tight_index_range(server, shop):
    """Each query a list sends reads, through an index, only the entries it returns: nothing filtered after."""
    store = server.runtime.orders.store
    recording = RecordingCollection(store.orders)
    store.orders = recording
    try:
        for params in ({}, {"status": "paid"}, {"promoter_id": shop["root"]}, {"promoter_id": shop["root"],
                       "status": "paid"}, {"promoter_id": shop["promoter"], "direct": "true"},
                       {"promoter_id": shop["root"], "direct": "true", "status": "paid"},
                       {"from": "2026-05-02", "to": "2026-05-03", "status": "created"}, {"order_no": "O3"}):
            await listed(server, **params)
    finally:
        store.orders = recording.collection
    await assert_tight(server, "orders", recording.finds)


async def assert_tight(server, collection: str, finds: list[tuple[dict, list]]) -> None:
    assert finds
    for filter, order in finds:
        explained = await server.runtime.db.command(
            "explain", {"find": collection, "filter": filter, "sort": dict(order)}, verbosity="executionStats")
        stages, node = [], explained["queryPlanner"]["winningPlan"]
        while node:
            stages.append(node["stage"])
            node = node.get("inputStage")
        stats = explained["executionStats"]
        assert "IXSCAN" in stages or "IDHACK" in stages or "EXPRESS_IXSCAN" in stages, (filter, stages)
        assert stats["totalDocsExamined"] == stats["nReturned"], (filter, stats)


async def test_commissions_are_listed_by_order_promoter_and_status_a_page_at_a_time(server, shop):
    commissions = "/api/merchant/v1/commissions"
    everything = (await server.merchant_get(commissions, limit="100")).json()["items"]
    # O1, O3, O6 and O7 are paid: two levels each (O3 and O6's buyer has one upline, the root).
    assert len(everything) == 2 + 1 + 1 + 2
    assert [each["created_at"] for each in everything] == sorted((each["created_at"] for each in everything),
                                                                 reverse=True)
    seen, cursor = [], None
    while True:
        page = (await server.merchant_get(commissions, limit="2", **({"cursor": cursor} if cursor else {}))).json()
        seen += [each["id"] for each in page["items"]]
        if not (cursor := page["next_cursor"]):
            break
    assert seen == [each["id"] for each in everything]
    of_o1 = (await server.merchant_get(commissions, order_no="O1")).json()["items"]
    assert [each["id"] for each in of_o1] == ["O1:0:2", "O1:0:1"]
    assert [each["id"] for each in (await server.merchant_get(commissions, order_no="O1",
                                                              member_id=shop["root"])).json()["items"]] == ["O1:0:2"]
    promoter = (await server.merchant_get(commissions, member_id=shop["promoter"], status="frozen")).json()["items"]
    assert [each["order_no"] for each in promoter] == ["O7", "O1"]
    refused = await server.merchant_get(commissions, cursor="forged")
    assert refused.status_code == 400 and refused.json()["error"]["field"] == "cursor"

    store = server.runtime.commissions.store
    recording = RecordingCollection(store.commissions)
    store.commissions = recording
    try:
        for params in ({}, {"status": "frozen"}, {"member_id": shop["root"]}, {"member_id": shop["root"],
                                                                                "status": "frozen"}):
            assert (await server.merchant_get(commissions, **params)).status_code == 200
    finally:
        store.commissions = recording.collection
    await assert_tight(server, "commissions", recording.finds)
