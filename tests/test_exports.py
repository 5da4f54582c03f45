"""Exports: every kind as CSV and XLSX, with the rows the merchant API (or the database) lists for the same
filters; filters, refusals, roles, the audit log, personal data, and a long export sent in many chunks."""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import date, datetime, timedelta, timezone
from urllib.parse import urlsplit

import openpyxl
import pytest

from distribution.calendar import CHINA
from tests.conftest import MERCHANT_TOKEN
from tests.console_fixtures import staff_client
from tests.order_fixtures import (T0, add_member, at, chain, create_order, drain, item, paid_order, put_rules,
                                  send_event)
from tests.test_withdrawals import credit, rules

MERCHANT = {"Authorization": f"Bearer {MERCHANT_TOKEN}"}
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PHONE = "13812345678"
OPENID = "o-export-test-openid-0001"


async def build_shop(server) -> dict:
    """Three promoters in a chain above a buyer, paid orders (one refunded, one settled), an unpaid order and
    withdrawals; returns what the tests look for."""
    runtime = server.runtime
    await put_rules(runtime, levels=2, level_rates_bp=(1000, 500))
    root, middle, promoter = await chain(runtime, 2, nickname="推广员", promoter_status="approved")
    await runtime.db["members"].update_one({"_id": promoter["_id"]}, {"$set": {
        "nickname": "=HYPERLINK(\"http://evil\")", "phone_sealed": runtime.sealer.seal(PHONE), "oa_openid": OPENID}})
    buyer = await add_member(runtime, promoter, nickname="买家", created_at=T0 - timedelta(days=1))
    await runtime.db["members"].update_one({"_id": root["_id"]}, {"$set": {"frozen": True}})
    await paid_order(runtime, "exp-1", buyer, [item(10_000), item(2_345, sku="cup", title="杯子", qty=2)])
    await paid_order(runtime, "exp-2", buyer, [item(5_000)], when=at(1))
    await send_event(runtime, "exp-2", "exp-2-refund", "refunded", at(1, seconds=60))
    await paid_order(runtime, "exp-3", buyer, [item(8_000)], when=at(2))
    await send_event(runtime, "exp-3", "exp-3-confirmed", "confirmed", at(2, seconds=60))
    await drain(runtime)
    await runtime.commissions.settle_due(at(30))
    await create_order(runtime, "exp-unpaid", buyer, [item(1_000)])
    await rules(runtime, auto_approve_under_fen=2_000)
    await credit(runtime, middle["_id"], 50_000)
    now = datetime.now(timezone.utc)
    withdrawals = [await runtime.withdrawals.request(await runtime.members.get(middle["_id"]), fen, "bank",
                                                     runtime.sealer.seal("6222 0000 1111 2222"), now)
                   for fen in (1_000, 5_000, 1_500)]
    return {"root": root, "middle": middle, "promoter": promoter, "buyer": buyer, "withdrawals": withdrawals}


def read_csv(response) -> list[dict[str, str]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.content.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    return [dict(zip(rows[0], row)) for row in rows[1:]]


def read_xlsx(response) -> list[dict]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == XLSX_TYPE
    assert int(response.headers["content-length"]) == len(response.content)
    sheet = openpyxl.load_workbook(io.BytesIO(response.content), read_only=True).worksheets[0]
    rows = [list(row) for row in sheet.iter_rows(values_only=True)]
    return [dict(zip(rows[0], row)) for row in rows[1:]]


async def both(client, kind: str, **filters) -> tuple[list[dict], list[dict]]:
    """The export of `kind` as CSV rows (text) and as XLSX rows (typed)."""
    return (read_csv(await client.get(f"/admin/export/{kind}.csv", **filters)),
            read_xlsx(await client.get(f"/admin/export/{kind}.xlsx", **filters)))


def fen(cell) -> int:
    """A money cell back in fen: "12.34" in CSV, 12.34 in XLSX."""
    return round(float(cell) * 100)


async def api_items(server, path: str, **params) -> list[dict]:
    answer = await server.merchant_get(path, limit="100", **params)
    assert answer.status_code == 200, answer.text
    return answer.json()["items"]


async def test_commissions_equal_the_apis_in_both_formats_and_filters_apply(server):
    shop = await build_shop(server)
    client = await staff_client(server, "finance")
    for filters in ({}, {"status": "settled"}, {"member_id": shop["middle"]["_id"]}, {"order_no": "exp-1"},
                    {"member_id": shop["promoter"]["_id"], "status": "cancelled"}):
        expected = await api_items(server, "/api/merchant/v1/commissions", **filters)
        assert expected or filters.get("status") == "cancelled"
        csv_rows, xlsx_rows = await both(client, "commissions", **filters)
        for rows in (csv_rows, xlsx_rows):
            assert [row["佣金ID"] for row in rows] == [each["id"] for each in expected], filters
            assert [fen(row["净佣金（元）"]) for row in rows] == [each["net_fen"] for each in expected]
            assert [fen(row["佣金（元）"]) for row in rows] == [each["amount_fen"] for each in expected]
            assert [row["推广员ID"] for row in rows] == [each["beneficiary_id"] for each in expected]
        labels = {"frozen": "冻结中", "settled": "已结算", "cancelled": "已取消", "clawed_back": "已追回"}
        assert [row["状态"] for row in csv_rows] == [labels[each["status"]] for each in expected]
    everything, _ = await both(client, "commissions")
    assert {row["状态"] for row in everything} >= {"已结算", "已取消", "冻结中"}
    # The days are China's: the commissions were all created today, so yesterday has none.
    today = datetime.now(CHINA).date()
    assert len((await both(client, "commissions", **{"from": today.isoformat()}))[0]) == len(everything)
    yesterday = (today - timedelta(days=1)).isoformat()
    assert (await both(client, "commissions", to=yesterday)) == ([], [])


async def test_orders_equal_the_apis_list_for_the_same_filters(server):
    shop = await build_shop(server)
    client = await staff_client(server, "owner")
    promoter, root = shop["promoter"]["_id"], shop["root"]["_id"]
    for filters in ({}, {"status": "paid"}, {"promoter_id": promoter, "direct": "true"},
                    {"promoter_id": root, "direct": "true"}, {"order_no": "exp-2"}):
        expected = await api_items(server, "/api/merchant/v1/orders", **filters)
        csv_rows, xlsx_rows = await both(client, "orders", **filters)
        for rows in (csv_rows, xlsx_rows):
            assert [row["订单号"] for row in rows] == [each["order_no"] for each in expected], filters
            assert [fen(row["实付金额（元）"]) for row in rows] == [each["total_fen"] for each in expected]
            assert [fen(row["佣金合计（元）"]) for row in rows] == [each["commission_fen"] for each in expected]
            assert [row["一级推广员ID"] or None for row in rows] == [
                next(iter(each["upline_chain"]), None) for each in expected]
    assert not (await both(client, "orders", promoter_id=root, direct="true"))[0]
    csv_rows, xlsx_rows = await both(client, "orders", order_no="exp-1")
    assert csv_rows[0]["商品"] == "龙井茶（tea）×1；杯子（cup）×2"
    assert csv_rows[0]["买家昵称"] == "买家"
    assert fen(csv_rows[0]["实付金额（元）"]) == 12_345 and xlsx_rows[0]["实付金额（元）"] == 123.45
    paid_at = datetime.fromisoformat((await api_items(server, "/api/merchant/v1/orders", order_no="exp-1"))[0]
                                     ["paid_at"])
    assert csv_rows[0]["支付时间"] == paid_at.astimezone(CHINA).strftime("%Y-%m-%d %H:%M:%S") == "2026-05-01 12:00:00"
    assert xlsx_rows[0]["支付时间"] == datetime(2026, 5, 1, 12, 0)


async def test_withdrawals_equal_the_apis_and_keep_bank_details_sealed(server):
    shop = await build_shop(server)
    client = await staff_client(server, "finance")
    for filters in ({}, {"status": "pending_review"}):
        expected = await api_items(server, "/api/merchant/v1/withdrawals", **filters)
        assert expected
        csv_rows, xlsx_rows = await both(client, "withdrawals", **filters)
        for rows in (csv_rows, xlsx_rows):
            assert [row["提现单号"] for row in rows] == [each["id"] for each in expected]
            assert [fen(row["提现金额（元）"]) for row in rows] == [each["amount_fen"] for each in expected]
            assert [fen(row["到账金额（元）"]) for row in rows] == [each["net_fen"] for each in expected]
            assert {row["推广员ID"] for row in rows} == {shop["middle"]["_id"]}
    assert len((await both(client, "withdrawals", member_id=shop["root"]["_id"]))[0]) == 0
    answer = await client.get("/admin/export/withdrawals.csv")
    # The card's digits as written or run together: a bare "6222" also turns up in the hex of random ids.
    assert not any(card in answer.text for card in ("6222 0000 1111 2222", "6222000011112222"))
    assert "bank_sealed" not in answer.text


async def test_members_equal_the_database_with_phones_masked_and_no_openids(server):
    shop = await build_shop(server)
    client = await staff_client(server, "owner")
    runtime = server.runtime
    stored = await runtime.db["members"].find({}).sort([("created_at", -1), ("_id", -1)]).to_list()
    csv_rows, xlsx_rows = await both(client, "members")
    for rows in (csv_rows, xlsx_rows):
        assert [row["会员ID"] for row in rows] == [member["_id"] for member in stored]
        assert [row["直属人数"] for row in rows] == [
            str(member["direct_count"]) if rows is csv_rows else member["direct_count"] for member in stored]
    by_id = {row["会员ID"]: row for row in csv_rows}
    promoter, middle = by_id[shop["promoter"]["_id"]], by_id[shop["middle"]["_id"]]
    assert promoter["手机号（脱敏）"] == "138****5678"
    assert promoter["上级ID"] == shop["middle"]["_id"] and promoter["上级昵称"] == "推广员"
    # A nickname that looks like a formula stays text: an apostrophe in CSV, a string cell in XLSX.
    assert promoter["昵称"] == "'=HYPERLINK(\"http://evil\")"
    assert {row["会员ID"]: row["昵称"] for row in xlsx_rows}[shop["promoter"]["_id"]] == "=HYPERLINK(\"http://evil\")"
    balances = await runtime.ledger.balances(shop["middle"]["_id"])
    assert fen(middle["可提现（元）"]) == balances["available_fen"] and fen(middle["提现中（元）"]) == balances["locked_fen"]
    assert by_id[shop["root"]["_id"]]["已冻结"] == "是" and middle["已冻结"] == "否"
    # The buyer's two paid orders that still hold something (the third was refunded whole).
    buyer = by_id[shop["buyer"]["_id"]]
    paid_fen = (await runtime.orders.get("exp-1"))["total_fen"] + 8_000
    assert (buyer["购买订单数"], fen(buyer["购买金额（元）"])) == ("2", paid_fen)
    everything = (await client.get("/admin/export/members.csv")).text + \
        (await client.get("/admin/export/members.xlsx")).content.decode("latin-1")
    assert OPENID not in everything and PHONE not in everything and "phone_sealed" not in everything
    assert [row["会员ID"] for row in (await both(client, "members", frozen="true"))[0]] == [shop["root"]["_id"]]
    assert shop["root"]["_id"] not in {row["会员ID"] for row in (await both(client, "members", frozen="false"))[0]}
    await runtime.db["members"].update_one({"_id": shop["middle"]["_id"]}, {"$set": {"grade": "金牌"}})
    graded = (await both(client, "members", grade="金牌"))[1]
    assert [(row["会员ID"], row["等级"]) for row in graded] == [(shop["middle"]["_id"], "金牌")]
    approved = (await both(client, "members", promoter_status="approved"))[1]
    assert {row["会员ID"] for row in approved} == {shop[name]["_id"] for name in ("root", "middle", "promoter")}
    # Joined (created_at) per China day: the buyer a day before the others.
    joined = (T0 - timedelta(days=1)).astimezone(CHINA).date().isoformat()
    assert [row["会员ID"] for row in (await both(client, "members", **{"from": joined, "to": joined}))[0]] == [
        shop["buyer"]["_id"]]


async def test_ledger_entries_equal_the_database(server):
    shop = await build_shop(server)
    client = await staff_client(server, "finance")
    entries = server.runtime.db["ledger_entries"]
    for filters, query in (({}, {}), ({"member_id": shop["middle"]["_id"]}, {"account_id": shop["middle"]["_id"]})):
        stored = await entries.find(query).sort([("at", -1), ("_id", -1)]).to_list()
        assert stored
        for rows in await both(client, "ledger", **filters):
            assert [row["流水ID"] for row in rows] == [entry["_id"] for entry in stored]
            assert [fen(row["金额（元）"]) for row in rows] == [entry["amount_fen"] for entry in stored]
    csv_rows, _ = await both(client, "ledger", member_id=shop["middle"]["_id"])
    assert {"佣金入账（冻结）", "提现锁定"} <= {row["类型"] for row in csv_rows}
    assert any(row["金额（元）"].startswith("-") for row in csv_rows)  # money leaving a bucket


async def test_daily_stats_equal_the_ranking_for_each_day(server):
    shop = await build_shop(server)
    client = await staff_client(server, "owner")
    first_day, last_day = date(2026, 4, 30), date(2026, 5, 3)
    csv_rows, xlsx_rows = await both(client, "daily_stats", **{"from": first_day.isoformat(),
                                                               "to": last_day.isoformat()})
    assert [row["日期"] for row in csv_rows] == sorted((row["日期"] for row in csv_rows), reverse=True)
    assert {row["日期"] for row in csv_rows} == {"2026-05-01", "2026-05-02", "2026-05-03"}
    for day in ("2026-05-01", "2026-05-02", "2026-05-03"):
        ranked = {each["member_id"]: each for each in (await server.merchant_get(
            "/api/merchant/v1/stats/promoters", **{"from": day, "to": day, "limit": "100"})).json()["items"]}
        for rows in (csv_rows, xlsx_rows):
            exported = {row["推广员ID"]: row for row in rows if row["日期"] == day}
            assert set(exported) == set(ranked)
            for member_id, row in exported.items():
                assert fen(row["佣金（元）"]) == ranked[member_id]["commission_fen"]
                assert fen(row["销售额（元）"]) == ranked[member_id]["paid_fen"]
                assert fen(row["净佣金（元）"]) == ranked[member_id]["net_commission_fen"]
                assert int(row["订单数"]) == ranked[member_id]["orders"]
    assert {"扫码次数", "链接访问", "首单买家", "直推销售额（元）"} <= set(csv_rows[0])
    one = (await both(client, "daily_stats", member_id=shop["middle"]["_id"], **{"from": "2026-05-01",
                                                                                   "to": "2026-05-01"}))[0]
    assert [(row["日期"], row["推广员ID"]) for row in one] == [("2026-05-01", shop["middle"]["_id"])]


@pytest.mark.parametrize("kind, filters, field", [
    ("commissions", {"status": "bogus"}, "status"),
    ("orders", {"status": "bogus"}, "status"),
    ("withdrawals", {"status": "paid-ish"}, "status"),
    ("members", {"frozen": "maybe"}, "frozen"),
    ("members", {"promoter_status": "boss"}, "promoter_status"),
    ("ledger", {"from": "yesterday"}, "from"),
    ("ledger", {"from": "2026-05-02", "to": "2026-05-01"}, "from"),
    ("commissions", {"to": "9999-12-31"}, "to"),
    ("daily_stats", {"from": "2025-01-01", "to": "2026-05-01"}, "from"),
    ("commissions", {"member_id": "x" * 65}, "member_id"),
])
async def test_a_bad_filter_is_a_400_naming_it(server, kind, filters, field):
    client = await staff_client(server, "owner")
    for file_format in ("csv", "xlsx"):
        answer = await client.http.get(f"/admin/export/{kind}.{file_format}", params=filters)
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"]["field"] == field
    page = await client.get(f"/admin/export/{kind}.csv", **filters)
    assert page.status_code == 400 and page.text.startswith("<!doctype html>")
    assert not [entry async for entry in server.runtime.db["audit_log"].find({"target.kind": "export"})]


async def test_operators_may_not_export_and_signed_out_visitors_are_sent_to_sign_in(server):
    operator = await staff_client(server, "operator")
    for path in ("/admin/exports", "/admin/export/members.csv", "/admin/export/ledger.xlsx"):
        assert (await operator.get(path)).status_code == 403
    assert "/admin/exports" not in (await operator.get("/admin")).text
    anonymous = await server.http.get("/admin/export/members.csv")
    assert anonymous.status_code == 302 and urlsplit(anonymous.headers["location"]).path == "/admin/login"
    finance = await staff_client(server, "finance")
    assert (await finance.get("/admin/export/members.csv")).status_code == 200


async def test_the_page_offers_each_kind_in_both_formats_with_its_filters(server):
    client = await staff_client(server, "finance")
    page = await client.get("/admin/exports")
    assert page.status_code == 200
    for kind in ("members", "orders", "commissions", "ledger", "withdrawals", "daily_stats"):
        for file_format in ("csv", "xlsx"):
            assert f'data-export="{kind}.{file_format}"' in page.text
            assert f'formaction="/admin/export/{kind}.{file_format}"' in page.text
    assert 'name="promoter_status"' in page.text and 'name="order_no"' in page.text and 'type="date"' in page.text


async def test_each_export_is_audited_with_its_filters(server):
    shop = await build_shop(server)
    client = await staff_client(server, "finance")
    await client.get("/admin/export/commissions.xlsx", status="settled", member_id=shop["middle"]["_id"])
    await client.get("/admin/export/orders.csv")
    entries = await server.runtime.audit.page(target_kind="export")
    assert [(entry["action"], entry["target"]["id"]) for entry in entries] == [
        ("export.orders", "orders.csv"), ("export.commissions", "commissions.xlsx")]
    assert entries[1]["after"] == {"status": "settled", "member_id": shop["middle"]["_id"]}
    assert entries[0]["after"] == {}
    assert entries[1]["actor"]["name"] == "finance1" and entries[1]["ip"] == "127.0.0.1"


async def test_an_empty_export_is_its_header_alone(server):
    client = await staff_client(server, "owner")
    csv_answer = await client.get("/admin/export/withdrawals.csv")
    assert csv_answer.content.decode("utf-8-sig").splitlines()[0].startswith("提现单号,推广员ID")
    assert read_csv(csv_answer) == []
    assert read_xlsx(await client.get("/admin/export/withdrawals.xlsx")) == []
    disposition = csv_answer.headers["content-disposition"]
    stamp = datetime.now(CHINA).strftime("%Y%m%d")
    assert disposition.startswith(f'attachment; filename="withdrawals-{stamp}-') and disposition.endswith('.csv"')


async def chunked_body(server, client, path: str) -> tuple[list[bytes], dict[str, str]]:
    """GET `path` over a raw connection: the chunks of its chunked body, as the server flushed them, and its
    headers."""
    host, port = urlsplit(server.base_url).netloc.split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    cookies = "; ".join(f"{name}={value}" for name, value in client.http.cookies.items())
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nCookie: {cookies}\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    status = await reader.readline()
    assert b" 200 " in status, status
    headers = {}
    while (line := await reader.readline()) != b"\r\n":
        name, _, value = line.decode().partition(":")
        headers[name.strip().lower()] = value.strip()
    chunks = []
    while size := int((await reader.readline()).strip(), 16):
        chunks.append(await reader.readexactly(size))
        assert await reader.readexactly(2) == b"\r\n"
    writer.close()
    return chunks, headers


async def test_a_long_export_is_streamed_a_batch_at_a_time(server):
    member = await add_member(server.runtime, nickname="流水多")
    start = datetime(2026, 3, 1, tzinfo=timezone.utc)
    entries = [{"_id": f"bulk:{index:05d}", "account_id": member["_id"], "bucket": "available",
                "amount_fen": index, "kind": "commission_settled", "ref": f"ref-{index}",
                "at": start + timedelta(minutes=7 * index)} for index in range(5_000)]
    await server.runtime.db["ledger_entries"].insert_many(entries)
    client = await staff_client(server, "finance")
    chunks, headers = await chunked_body(server, client, "/admin/export/ledger.csv")
    assert headers["transfer-encoding"] == "chunked" and "content-length" not in headers
    # A flush per batch of 1,000 rows (the first with the header).
    assert len(chunks) >= 5
    rows = list(csv.reader(io.StringIO(b"".join(chunks).decode("utf-8-sig"))))[1:]
    assert [row[0] for row in rows] == [f"bulk:{index:05d}" for index in reversed(range(5_000))]
    assert rows[0][5] == "49.99" and rows[-1][5] == "0.00"
    xlsx = await client.get("/admin/export/ledger.xlsx", **{"from": "2026-03-02"})
    assert len(read_xlsx(xlsx)) == len([entry for entry in entries
                                        if entry["at"] >= datetime(2026, 3, 1, 16, tzinfo=timezone.utc)])


async def test_every_entry_comes_once_in_order_across_gaps_bursts_and_a_clock_ahead(server):
    now = datetime.now(timezone.utc)
    moments = ([now + timedelta(minutes=5)] + [now - timedelta(days=3, seconds=index) for index in range(10)]
               + [now - timedelta(days=400, milliseconds=index) for index in range(2_500)]  # a burst after a gap
               + [now - timedelta(days=400 + 7 * 365)] * 3)  # the same instant, years before
    await server.runtime.db["ledger_entries"].insert_many([
        {"_id": f"gap:{index:05d}", "account_id": "nobody", "bucket": "available", "amount_fen": 1,
         "kind": "commission_settled", "ref": "r", "at": moment} for index, moment in enumerate(moments)])
    stored = await server.runtime.db["ledger_entries"].find({}).sort([("at", -1), ("_id", -1)]).to_list()
    client = await staff_client(server, "finance")
    rows = read_csv(await client.get("/admin/export/ledger.csv"))
    assert [row["流水ID"] for row in rows] == [entry["_id"] for entry in stored]
    assert len(rows) == len(moments)
