"""The dashboard (概况): the merchant API's overview and the console's page, one service call for both."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest

from bot.simulate import event_xml
from distribution.binding import BindingSettings, UplineEligibility
from distribution.calendar import CHINA
from distribution.ledger import Bucket
from distribution.scene import promoter_scene
from handlers.console.dashboard import QUICK_RANGES
from handlers.stats import DEFAULT_DAYS
from services.stats import RANKED_RANGES
from tests.console_fixtures import staff_client
from tests.order_fixtures import add_member, create_order, drain, item, put_rules, send_event
from tests.test_stats import earn
from tests.test_withdrawals import rules

OVERVIEW = "/api/merchant/v1/stats/overview"
_METRIC = re.compile(r'data-metric="([^"]+)" data-value="(-?\d+)"')


def page_metrics(html: str) -> dict[str, int]:
    return {name: int(value) for name, value in _METRIC.findall(html)}


def api_metrics(overview: dict) -> dict[str, int]:
    """The overview's numbers named as the page names them: `funnel.scans` for the funnel's."""
    scalars = {name: value for name, value in overview.items() if isinstance(value, int)}
    return {**scalars, **{f"funnel.{name}": value for name, value in overview["funnel"].items()}}


async def shop_with_a_week_of_business(server) -> dict[str, dict]:
    """A promoter (under an upline) whose code a buyer followed, two paid orders (one settled), a paid bank
    withdrawal, one awaiting review, and an application awaiting review."""
    runtime = server.runtime
    await put_rules(runtime, freeze_days=0)
    await rules(runtime, auto_approve_under_fen=1_000)
    upline = await add_member(runtime, nickname="老张")
    promoter = await add_member(runtime, upline, nickname="小王", oa_openid="o_wang")
    await server.push(event_xml("o_buyer", "subscribe", f"qrscene_{promoter_scene(promoter['_id'], 'fresh')}"))
    buyer = await runtime.members.by_oa_openid("o_buyer")
    now = datetime.now(timezone.utc)
    await create_order(runtime, "w1", buyer, [item(20_000)], paid_at=now - timedelta(seconds=10))
    await create_order(runtime, "w2", buyer, [item(10_000)], paid_at=now - timedelta(seconds=10))
    await send_event(runtime, "w1", "w1-received", "confirmed", now - timedelta(seconds=5))
    await drain(runtime)
    await runtime.commissions.settle_due(datetime.now(timezone.utc))  # w1's: 2,000 to 小王, 1,000 to 老张
    await runtime.relations.apply_follow_ups()
    await runtime.stats.count_binds(datetime.now(timezone.utc) + timedelta(minutes=2))

    paid = await runtime.withdrawals.request(await runtime.members.get(promoter["_id"]), 800, "bank", None, now)
    await runtime.withdrawals.mark_bank_paid(paid["_id"], "BANK-REF-1", now)
    await runtime.withdrawals.request(await runtime.members.get(upline["_id"]), 900, "bank", None, now)
    waiting = await runtime.withdrawals.request(await runtime.members.get(promoter["_id"]), 1_100, "bank", None, now)
    assert waiting["status"] == "pending_review"
    await runtime.merchant_settings.put(BindingSettings(upline_eligibility=UplineEligibility.REVIEWED))
    await runtime.applications.apply(buyer, "张三", "13800001234", "想推广", now)
    assert await runtime.stats.count_totals() > 0  # the worker's, every second
    return {"upline": upline, "promoter": promoter, "buyer": buyer}


async def test_the_overview_answers_the_shops_numbers_from_its_daily_totals(server):
    runtime = server.runtime
    people = await shop_with_a_week_of_business(server)

    response = await server.merchant_get(OVERVIEW)

    assert response.status_code == 200, response.text
    overview = response.json()
    today = datetime.now(CHINA).date()
    assert (overview["from"], overview["to"]) == ((today - timedelta(days=6)).isoformat(), today.isoformat())
    assert {name: overview[name] for name in (
        "sales_fen", "commission_fen", "frozen_fen", "withdrawable_fen", "paid_out_fen", "new_promoters", "binds",
        "pending_applications", "pending_withdrawals")} == {
        "sales_fen": 30_000, "commission_fen": 4_500,
        "frozen_fen": 1_500,  # w2's, not settled
        "withdrawable_fen": 3_000 - 800 - 1_100 - 900,  # w1's settled, less what withdrawals took
        "paid_out_fen": 800, "new_promoters": 1, "binds": 1, "pending_applications": 1, "pending_withdrawals": 1}
    assert overview["funnel"] == {"scans": 1, "visits": 0, "binds": 1, "buyers": 1, "sales_fen": 30_000}
    # The shop's balances are the sum of every account's.
    for bucket, field in ((Bucket.FROZEN, "frozen_fen"), (Bucket.AVAILABLE, "withdrawable_fen")):
        held = [await runtime.ledger.balances(person["_id"]) for person in people.values()]
        assert sum(each[f"{bucket.value}_fen"] for each in held) == overview[field]

    assert [day["day"] for day in overview["trend"]] == [(today - timedelta(days=6 - n)).isoformat() for n in range(7)]
    assert overview["trend"][-1] == {"day": today.isoformat(), "sales_fen": 30_000, "commission_fen": 4_500,
                                     "binds": 1, "new_promoters": 1}
    promoter, upline = people["promoter"]["_id"], people["upline"]["_id"]
    assert [(each["member_id"], each["nickname"], each["net_commission_fen"]) for each in overview["top_promoters"]] \
        == [(promoter, "小王", 3_000), (upline, "老张", 1_500)]
    assert overview["promoter_funnels"] == [{"member_id": promoter, "nickname": "小王", "scans": 1, "visits": 0,
                                             "binds": 1, "buyers": 1, "sales_fen": 30_000}]
    assert overview["template_funnels"] == [{"template": "fresh", "scans": 1, "visits": 0, "binds": 1, "buyers": 1,
                                             "sales_fen": 30_000}]

    # A range before any of it: no flows, and the balances as they were then.
    earlier = (await server.merchant_get(OVERVIEW, **{"from": "2020-01-01", "to": "2020-01-31"})).json()
    assert (earlier["sales_fen"], earlier["frozen_fen"], earlier["withdrawable_fen"], earlier["top_promoters"]) == \
        (0, 0, 0, [])
    assert len(earlier["trend"]) == 31 and earlier["pending_withdrawals"] == 1  # what waits now, whatever the range
    # A range after it: no flows, and the balances it left.
    later = (await server.merchant_get(OVERVIEW, **{"from": (today + timedelta(days=1)).isoformat(),
                                                    "to": (today + timedelta(days=2)).isoformat()})).json()
    assert (later["sales_fen"], later["commission_fen"], later["paid_out_fen"], later["binds"]) == (0, 0, 0, 0)
    assert (later["frozen_fen"], later["withdrawable_fen"]) == (overview["frozen_fen"], overview["withdrawable_fen"])


async def test_the_dashboard_shows_exactly_the_apis_numbers(server):
    await shop_with_a_week_of_business(server)
    owner = await staff_client(server, "owner")
    today = datetime.now(CHINA).date()
    longest = {"from": (today - timedelta(days=365)).isoformat(), "to": today.isoformat()}
    for params in ({}, {"days": "1"}, {"days": "30"}, longest):
        api = (await server.merchant_get(OVERVIEW, **params)).json()
        page = await owner.get("/admin", **params)
        assert page.status_code == 200, page.text
        shown = page_metrics(page.text)
        assert shown == api_metrics(api), params
        assert len(shown) == 9 + 5
        assert f'data-from="{api["from"]}" data-to="{api["to"]}"' in page.text
        for each in api["top_promoters"]:
            assert f'<a href="/admin/promoters/{each["member_id"]}">{each["nickname"]}</a>' in page.text
        assert 'data-chart="trend-chart"' in page.text and 'data-chart="funnel-chart"' in page.text
        assert 'data-template="fresh"' in page.text
    await owner.aclose()


async def test_the_dashboard_and_the_api_show_the_rankings_the_worker_kept_and_when(server):
    runtime = server.runtime
    people = await shop_with_a_week_of_business(server)
    ranked_at = datetime.now(timezone.utc).replace(microsecond=0)
    await runtime.stats.save_rankings(ranked_at)
    await earn(runtime, people["upline"], datetime.now(CHINA).date(), 5_000)  # after: not in what was kept
    owner = await staff_client(server, "owner")
    for params in ({}, {"days": "1"}, {"days": "30"}):
        api = (await server.merchant_get(OVERVIEW, **params)).json()
        assert [each["net_commission_fen"] for each in api["top_promoters"]] == [3_000, 1_500], params
        assert api["rankings_computed_at"] == ranked_at.isoformat()
        page = await owner.get("/admin", **params)
        assert f'id="rankings-computed-at" data-at="{ranked_at.isoformat()}">排行更新于 ' \
               f'{ranked_at.astimezone(CHINA):%Y-%m-%d %H:%M}</p>' in page.text
        top_table = page.text.split('id="top-promoters"')[1].split("</table>")[0]
        shown = re.findall(r'<tr data-member-id="([^"]+)">', top_table)
        assert shown == [each["member_id"] for each in api["top_promoters"]]
    # A chosen range is ranked as the page is asked for.
    today = datetime.now(CHINA).date()
    chosen = {"from": (today - timedelta(days=1)).isoformat(), "to": today.isoformat()}
    api = (await server.merchant_get(OVERVIEW, **chosen)).json()
    assert [each["net_commission_fen"] for each in api["top_promoters"]] == [6_500, 3_000]
    assert datetime.fromisoformat(api["rankings_computed_at"]) > ranked_at
    await owner.aclose()


def test_the_worker_ranks_every_quick_range_of_the_dashboard_and_the_apis_default():
    assert {*QUICK_RANGES, DEFAULT_DAYS} <= set(RANKED_RANGES)


@pytest.mark.parametrize("role", ["finance", "operator"])
async def test_every_role_sees_the_dashboard(server, role):
    staff = await staff_client(server, role)
    page = await staff.get("/admin", days="30")
    assert page.status_code == 200 and 'data-metric="sales_fen" data-value="0"' in page.text
    await staff.aclose()


@pytest.mark.parametrize(("params", "field", "code", "said"), [
    ({"from": "2026-05-10", "to": "2026-05-01"}, "from", "range_upside_down", "开始日期不能晚于结束日期"),
    ({"from": "2025-01-01", "to": "2026-01-02"}, "from", "range_too_long", "日期范围最多 366 天"),  # 367 days
    ({"days": "0"}, "days", "days_out_of_range", "天数须在 1 到 366 之间"),
    ({"days": "367"}, "days", "days_out_of_range", "天数须在 1 到 366 之间"),
    ({"days": "7", "from": "2026-05-01"}, "days", "days_or_dates", "不要同时给出"),
    ({"from": "2026-02-30"}, "from", "invalid", "请输入有效的开始日期"),
    ({"days": "a week"}, "days", "invalid", "天数须为整数"),
])
async def test_a_range_that_is_no_range_is_refused_naming_the_field(server, params, field, code, said):
    response = await server.merchant_get(OVERVIEW, **params)
    assert response.status_code == 400, response.text
    assert (response.json()["error"]["field"], response.json()["error"]["code"]) == (field, code)

    owner = await staff_client(server, "owner")
    page = await owner.get("/admin", **params)
    assert page.status_code == 400
    assert f'class="field-error" data-field="{field}" role="alert">' in page.text and said in page.text
    assert "data-metric" not in page.text
    await owner.aclose()


async def test_a_range_of_366_days_is_allowed(server):
    response = await server.merchant_get(OVERVIEW, **{"from": "2025-01-01", "to": "2026-01-01"})
    assert response.status_code == 200 and len(response.json()["trend"]) == 366


async def test_the_ranking_names_each_promoter_and_ranks_by_sales_too(server):
    people = await shop_with_a_week_of_business(server)
    ranked = (await server.merchant_get("/api/merchant/v1/stats/promoters", sort="sales")).json()["items"]
    assert [(each["member_id"], each["nickname"], each["sales_fen"], each["buyers"], each["scans"])
            for each in ranked][:1] == [(people["promoter"]["_id"], "小王", 30_000, 1, 1)]
    refused = await server.merchant_get("/api/merchant/v1/stats/promoters",
                                        **{"from": "2026-05-02", "to": "2026-05-01"})
    assert refused.status_code == 400 and refused.json()["error"]["field"] == "from"
