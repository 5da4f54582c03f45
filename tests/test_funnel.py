"""The funnel, counted as it happens: scans and share-link visits -> binds -> first paid orders -> sales, per
promoter, per poster template and shop-wide, each counted once however WeChat, the shop or the worker repeat."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlsplit

import httpx
from bson import ObjectId

from bot.simulate import event_xml
from distribution.calendar import CHINA
from distribution.scene import promoter_scene
from distribution.share_links import share_link
from distribution.stats import DayRange
from services.stats import Ranked
from stores.bind_log import BIND_LOG
from tests.order_fixtures import create_order, drain, item, send_event
from tests.test_miniapp_session import login
from tests.test_relations import add_member
from tests.test_share_link_bind import local

CLASSIC, FRESH = "classic", "fresh"  # the poster templates a shop offers until it says otherwise


def around_today() -> DayRange:
    """Today in China and a day either side: counts land on the day they happen, whatever the clock says."""
    today = datetime.now(CHINA).date()
    return DayRange(today - timedelta(days=1), today + timedelta(days=1))


async def shop(runtime):
    return await runtime.dashboard.overview(around_today())


async def templates(runtime) -> dict[str, tuple[int, int, int, int, int]]:
    """Each template's (scans, visits, binds, buyers, sales)."""
    return {each.template_id: (each.funnel.scans, each.funnel.visits, each.funnel.binds, each.funnel.buyers,
                               each.funnel.sales_fen) for each in (await shop(runtime)).template_funnels}


async def promoter_row(runtime, member_id: str) -> Ranked:
    days = around_today()
    (row,) = [each for each in (await runtime.stats.ranking(days.first, days.last, "sales", 100)).rows
              if each.member_id == member_id]
    return row


async def follow(server, openid: str, scene: str, at: int) -> None:
    response = await server.push(event_xml(openid, "subscribe", f"qrscene_{scene}", at=at))
    assert response.status_code == 200, response.text


async def count_binds(runtime) -> int:
    """What the worker does with binds: log them, then count them (a minute behind the clock)."""
    await runtime.relations.apply_follow_ups()
    return await runtime.stats.count_binds(datetime.now(timezone.utc) + timedelta(minutes=2))


async def test_every_scan_of_a_promoters_code_counts_once_for_them_their_template_and_the_shop(server):
    runtime = server.runtime
    promoter = await add_member(runtime, nickname="小王", oa_openid="o_promoter")
    first_follow = event_xml("o_fan", "subscribe", f"qrscene_{promoter_scene(promoter['_id'], CLASSIC)}",
                             at=1_700_000_001)
    assert (await server.push(first_follow)).status_code == 200
    assert (await server.push(first_follow)).status_code == 200  # WeChat's retry: answered again, counted once
    await server.push(event_xml("o_fan", "SCAN", promoter_scene(promoter["_id"], FRESH), at=1_700_000_002))
    await server.push(event_xml("o_fan", "SCAN", promoter_scene(promoter["_id"]), at=1_700_000_003))  # an old code
    await server.push(event_xml("o_guest", "SCAN", promoter_scene(promoter["_id"], "nope"), at=1_700_000_004))
    await server.push(event_xml("o_guest", "SCAN", promoter_scene(str(ObjectId()), CLASSIC), at=1_700_000_005))
    await login(server, "mini_fan", scene=promoter_scene(promoter["_id"], FRESH))  # a mini-program code opened
    assert await runtime.stats.count_totals() == 5  # the worker's, every second
    assert await runtime.stats.count_totals() == 0  # each once

    assert (await shop(runtime)).funnel.scans == 5  # not the code of nobody
    assert {name: counts[0] for name, counts in (await templates(runtime)).items()} == {CLASSIC: 1, FRESH: 2}
    assert (await promoter_row(runtime, promoter["_id"])).scans == 5


async def test_binds_and_new_promoters_are_counted_once_from_the_bind_log(server):
    runtime = server.runtime
    wang = await add_member(runtime, nickname="小王")
    li = await add_member(runtime, nickname="小李")
    await follow(server, "o_a", promoter_scene(wang["_id"], CLASSIC), 1_700_000_001)
    await follow(server, "o_b", promoter_scene(wang["_id"]), 1_700_000_002)
    await follow(server, "o_c", promoter_scene(li["_id"], FRESH), 1_700_000_003)
    await follow(server, "o_a", promoter_scene(li["_id"], FRESH), 1_700_000_004)  # bound already: a scan only

    assert await count_binds(runtime) == 3
    assert await count_binds(runtime) == 0  # each bind once
    seen = await shop(runtime)
    assert (seen.binds, seen.new_promoters, seen.funnel.binds) == (3, 2, 3)
    assert {name: counts[2] for name, counts in (await templates(runtime)).items()} == {CLASSIC: 1, FRESH: 1}
    assert (await promoter_row(runtime, wang["_id"])).new_direct_members == 2
    assert (await runtime.members.get((await runtime.members.by_oa_openid("o_c"))["_id"]))["bind_template"] == FRESH

    await follow(server, "o_d", promoter_scene(wang["_id"], CLASSIC), 1_700_000_005)
    assert await count_binds(runtime) == 1
    seen = await shop(runtime)
    assert (seen.binds, seen.new_promoters) == (4, 2)  # 小王 was a promoter already
    assert sum(day.binds for day in seen.trend) == 4 and sum(day.new_promoters for day in seen.trend) == 2


async def test_a_bound_buyers_paid_orders_are_sales_and_their_first_one_counts_the_buyer_once(server):
    runtime = server.runtime
    promoter = await add_member(runtime, nickname="小王")
    await follow(server, "o_buyer", promoter_scene(promoter["_id"], CLASSIC), 1_700_000_001)
    buyer = await runtime.members.by_oa_openid("o_buyer")
    stranger = await add_member(runtime)  # bound to nobody: sales, but no promoter's
    paid_at = datetime.now(timezone.utc) - timedelta(seconds=5)

    await create_order(runtime, "f1", buyer, [item(10_000)], paid_at=paid_at)
    await create_order(runtime, "f2", buyer, [item(2_000), item(3_000, sku="cup")], paid_at=paid_at)
    await create_order(runtime, "f3", stranger, [item(7_000)], paid_at=paid_at)
    # Two workers on the buyer's first two orders at once: one of them counts the buyer.
    await asyncio.gather(runtime.orders.apply_pending("f1"), runtime.orders.apply_pending("f2"))
    await drain(runtime)
    await send_event(runtime, "f1", "f1-paid-again", "paid", paid_at)  # a second payment: ignored
    await send_event(runtime, "f1", "f1-paid-again", "paid", paid_at)  # and its replay
    await drain(runtime)
    await runtime.orders.apply_pending("f2")  # a job done twice

    seen = await shop(runtime)
    assert (seen.funnel.buyers, seen.funnel.sales_fen, seen.sales_fen) == (1, 15_000, 15_000)
    assert (await templates(runtime))[CLASSIC][3:] == (1, 15_000)
    row = await promoter_row(runtime, promoter["_id"])
    assert (row.buyers, row.sales_fen) == (1, 15_000)

    # Later orders of the same buyer are sales, never a second buyer.
    await create_order(runtime, "f4", buyer, [item(1_000)], paid_at=paid_at)
    await drain(runtime)
    seen = await shop(runtime)
    assert (seen.funnel.buyers, seen.funnel.sales_fen) == (1, 16_000)
    assert sum(day.sales_fen for day in seen.trend) == 16_000


async def test_share_link_visits_count_per_template_which_the_bind_carries_on(server):
    runtime = server.runtime
    promoter = await add_member(runtime, nickname="小王")
    settings = runtime.settings
    link = local(server, share_link(settings.public_base_url, promoter["_id"], settings.share_link_secret, FRESH))
    await server.http.get(link)  # a visitor who did not go on
    opened = await server.http.get(link)
    assert opened.status_code == 302

    authorize_url = opened.headers["location"].partition("#")[0]
    redirect = parse_qs(urlsplit(authorize_url).query)["redirect_uri"][0]
    assert redirect.endswith(f"/s/{promoter['_id']}/bind?t={FRESH}")
    async with httpx.AsyncClient(timeout=5) as browser:
        consented = await browser.get(f"{authorize_url}&sandbox_user=visitor")
    bound = await server.http.get(local(server, consented.headers["location"]))
    assert bound.status_code == 200 and "绑定成功" in bound.text
    forged = local(server, share_link(settings.public_base_url, promoter["_id"], "not-the-secret", FRESH))
    assert (await server.http.get(forged)).status_code == 403  # no visit of a link nobody made

    assert await count_binds(runtime) == 1
    await runtime.stats.count_totals()
    entry = await runtime.db[BIND_LOG].find_one({"upline_id": promoter["_id"], "result": "bound"})
    assert (entry["source"], entry["template"]) == ("share_link", FRESH)
    assert (await templates(runtime))[FRESH][:3] == (0, 2, 1)
    assert ((await shop(runtime)).funnel.visits, (await promoter_row(runtime, promoter["_id"])).visits) == (2, 2)


async def test_a_posters_code_names_its_template_where_the_code_has_room(server, sandbox):
    runtime = server.runtime
    member = await add_member(runtime)
    await runtime.posters.jpeg(member, FRESH)
    await runtime.posters.jpeg(member, CLASSIC)
    asked = [call.body["action_info"]["scene"]["scene_str"]
             for call in sandbox.state.calls.received(endpoint="cgi-bin/qrcode/create")]
    assert asked == [promoter_scene(member["_id"], FRESH), promoter_scene(member["_id"], CLASSIC)]
