"""The console's promoters: the search page, a promoter's page with each section, and re-bind, freeze, unfreeze
and grade by hand — each audited, each refusal shown on the page with its status, operators allowed and finance
not."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from tests.console_fixtures import staff_client
from tests.order_fixtures import add_member, item, paid_order, put_grades, put_rules
from tests.test_member_search import person
from tests.test_withdrawals import credit, rules

NOW = datetime.now(timezone.utc)
ROW = re.compile(r'<tr data-member-id="([0-9a-f]{24})"')


def rows(page) -> list[str]:
    """The member ids of the search table's rows, in order."""
    table = page.text[page.text.index('id="promoters"'):]
    return ROW.findall(table)


def section(page, name: str) -> str:
    """The HTML of one section of a promoter's page."""
    start = page.text.index(f'id="promoter-{name}"')
    return page.text[start:page.text.index("</section>", start)]


async def test_the_list_searches_by_phone_tail_nickname_and_id_and_filters(server):
    owner = await staff_client(server, "owner")
    zhang = await person(server, "zhang", "张伟", "13812345678")
    li = await person(server, "li", "李娜", "13900002222")
    await server.runtime.relations.set_frozen(li["_id"], True)

    everyone = await owner.get("/admin/promoters")
    assert everyone.status_code == 200 and rows(everyone) == [li["_id"], zhang["_id"]]
    assert "138****5678" in everyone.text and "13812345678" not in everyone.text
    assert 'name="q"' in everyone.text and 'name="phone_tail"' in everyone.text
    assert rows(await owner.get("/admin/promoters", phone_tail="5678")) == [zhang["_id"]]
    assert rows(await owner.get("/admin/promoters", q="李")) == [li["_id"]]
    assert rows(await owner.get("/admin/promoters", q=zhang["_id"])) == [zhang["_id"]]
    assert rows(await owner.get("/admin/promoters", frozen="true")) == [li["_id"]]
    assert rows(await owner.get("/admin/promoters", phone_tail="2222", frozen="false")) == []

    refused = await owner.get("/admin/promoters", q="李", frozen="true")
    assert refused.status_code == 400 and 'data-field="frozen"' in refused.text and "不能一起使用" in refused.text
    bad_tail = await owner.get("/admin/promoters", phone_tail="12")
    assert bad_tail.status_code == 400 and 'data-field="phone_tail"' in bad_tail.text and "后 4 位" in bad_tail.text


async def test_the_list_pages_newest_first_keeping_the_filters(server):
    owner = await staff_client(server, "owner")
    made = [await add_member(server.runtime, frozen=False, nickname=f"成员{n}", created_at=NOW - timedelta(hours=n))
            for n in range(25)]
    first = await owner.get("/admin/promoters", frozen="false")
    assert rows(first) == [member["_id"] for member in made[:20]]
    next_link = re.search(r'href="(/admin/promoters\?[^"]+)" rel="next"', first.text).group(1).replace("&amp;", "&")
    assert "frozen=false" in next_link
    second = await owner.http.get(next_link, headers={"Accept": "text/html"})
    assert rows(second) == [member["_id"] for member in made[20:]] and 'rel="next"' not in second.text


async def test_a_promoters_page_shows_profile_chain_team_and_money(server):
    runtime = server.runtime
    owner = await staff_client(server, "finance")
    await put_rules(runtime, level_rates_bp=(1_000, 500))
    await put_grades(runtime, {"name": "gold"})
    root = await add_member(runtime, nickname="老王", frozen=False)
    promoter = await add_member(runtime, root, nickname="小李", frozen=False, direct_count=0, team_count=12)
    buyers = [await add_member(runtime, promoter, nickname=f"买家{n}", frozen=False,
                               bound_at=NOW - timedelta(minutes=n)) for n in range(10)]
    await paid_order(runtime, "P-1", buyers[0], [item(10_000)])
    await runtime.grades.set_grade(promoter["_id"], "gold", "优秀", "owner1")
    await rules(runtime, auto_approve_under_fen=10_000)
    await credit(runtime, promoter["_id"], 3_000)
    await runtime.withdrawals.request(await runtime.members.get(promoter["_id"]), 2_000, "bank", None, NOW)

    page = await owner.get(f"/admin/promoters/{promoter['_id']}")
    assert page.status_code == 200
    assert f'data-member-id="{root["_id"]}"' in section(page, "chain") and "老王" in section(page, "chain")
    direct = section(page, "direct")
    assert "（10 人）" in direct and direct.count("data-member-id=") == 8  # a few rows, and a link to them all
    assert f'href="/admin/promoters/{promoter["_id"]}/direct"' in direct
    assert "（12 人）" in section(page, "team")
    assert "P-1" in section(page, "commissions") and "¥10.00" in section(page, "commissions")
    assert "佣金入账（冻结）" in section(page, "ledger")
    assert "¥20.00" in section(page, "withdrawals")
    assert "优秀" in section(page, "grades") and "手动：owner1" in section(page, "grades")
    assert 'id="promoter-actions"' not in page.text  # finance may look, not act

    all_direct = await owner.get(f"/admin/promoters/{promoter['_id']}/direct", limit="5")
    assert re.findall(r'<tr data-member-id="([0-9a-f]{24})"', all_direct.text) == [b["_id"] for b in buyers[:5]]
    later = re.search(r'href="([^"]+)" rel="next"', all_direct.text).group(1).replace("&amp;", "&")
    rest = await owner.http.get(later, headers={"Accept": "text/html"})
    assert re.findall(r'<tr data-member-id="([0-9a-f]{24})"', rest.text) == [b["_id"] for b in buyers[5:]]
    assert (await owner.get(f"/admin/promoters/{promoter['_id']}/ledger")).status_code == 200
    assert (await owner.get("/admin/promoters/0123456789abcdef01234567")).status_code == 404


async def test_change_the_upline_with_a_reason_audited_and_refusals_shown(server):
    runtime = server.runtime
    operator = await staff_client(server, "operator")
    old, new = await add_member(runtime, nickname="旧上级", frozen=False), await add_member(runtime, frozen=False)
    member = await add_member(runtime, old, frozen=False)
    below = await add_member(runtime, member, frozen=False)
    path = f"/admin/promoters/{member['_id']}"

    done = await operator.post(f"{path}/upline", {"upline_id": new["_id"], "reason": "客户要求转给新上级"})
    assert done.status_code == 303 and done.headers["location"] == f"{path}?done=upline"
    assert (await runtime.members.get(member["_id"]))["upline_id"] == new["_id"]
    [entry] = await runtime.audit.page("member", member["_id"], limit=1)
    assert (entry["action"], entry["actor"]["name"], entry["before"], entry["after"], entry["reason"]) == (
        "member.upline", "operator1", {"upline_id": old["_id"]}, {"upline_id": new["_id"]}, "客户要求转给新上级")
    assert "已更换上级" in (await operator.get(path, done="upline")).text

    cycle = await operator.post(f"{path}/upline", {"upline_id": below["_id"], "reason": "试试"})
    assert cycle.status_code == 409 and 'data-refused="upline"' in cycle.text and "形成循环" in cycle.text
    no_reason = await operator.post(f"{path}/upline", {"upline_id": old["_id"], "reason": " "})
    assert no_reason.status_code == 400 and 'data-field="reason"' in no_reason.text
    nobody = await operator.post(f"{path}/upline", {"upline_id": "0123456789abcdef01234567", "reason": "x"})
    assert nobody.status_code == 404 and 'data-field="upline_id"' in nobody.text and "找不到该会员" in nobody.text
    assert (await runtime.members.get(member["_id"]))["upline_id"] == new["_id"]
    assert len(await runtime.audit.page("member", member["_id"])) == 1  # refusals change nothing, record nothing


async def test_freeze_unfreeze_and_grade_by_hand(server):
    runtime = server.runtime
    owner = await staff_client(server, "owner")
    await put_grades(runtime, {"name": "silver"}, {"name": "gold"})
    upline = await add_member(runtime, frozen=False)
    member = await add_member(runtime, frozen=False)
    path = f"/admin/promoters/{member['_id']}"

    assert (await owner.post(f"{path}/freeze", {"reason": "刷单嫌疑"})).status_code == 303
    assert (await runtime.members.get(member["_id"]))["frozen"] is True
    page = await owner.get(path)
    assert 'data-frozen="true"' in page.text and f'action="{path}/unfreeze"' in page.text
    frozen_bind = await owner.post(f"{path}/upline", {"upline_id": upline["_id"], "reason": "x"})
    assert frozen_bind.status_code == 409 and "先解冻" in frozen_bind.text
    assert (await owner.post(f"{path}/unfreeze", {})).status_code == 303
    assert (await runtime.members.get(member["_id"]))["frozen"] is False

    assert (await owner.post(f"{path}/grade", {"grade": "gold", "reason": "年度大客户"})).status_code == 303
    assert (await runtime.members.get(member["_id"]))["grade"] == "gold"
    same = await owner.post(f"{path}/grade", {"grade": "gold", "reason": "again"})
    assert same.status_code == 409 and "已是这个等级" in same.text
    unknown = await owner.post(f"{path}/grade", {"grade": "platinum", "reason": "x"})
    assert unknown.status_code == 400 and 'data-field="grade"' in unknown.text
    assert (await owner.post(f"{path}/grade", {"grade": "", "reason": "取消等级"})).status_code == 303
    assert (await runtime.members.get(member["_id"]))["grade"] is None

    actions = [(entry["action"], entry["before"], entry["after"], entry.get("reason"))
               for entry in reversed(await runtime.audit.page("member", member["_id"]))]
    assert actions == [("member.freeze", {"frozen": False}, {"frozen": True}, "刷单嫌疑"),
                       ("member.unfreeze", {"frozen": True}, {"frozen": False}, None),
                       ("member.grade", {"grade": None}, {"grade": "gold"}, "年度大客户"),
                       ("member.grade", {"grade": "gold"}, {"grade": None}, "取消等级")]


async def test_finance_may_not_act_on_members_and_every_action_needs_the_csrf_token(server):
    runtime = server.runtime
    finance = await staff_client(server, "finance")
    operator = await staff_client(server, "operator")
    member = await add_member(runtime, frozen=False)
    path = f"/admin/promoters/{member['_id']}"
    assert (await finance.get(path)).status_code == 200
    for action, form in (("freeze", {}), ("unfreeze", {}), ("grade", {"grade": "", "reason": "x"}),
                         ("upline", {"upline_id": member["_id"], "reason": "x"})):
        assert (await finance.post(f"{path}/{action}", form)).status_code == 403, action
    assert (await operator.post(f"{path}/freeze", {}, csrf=False)).status_code == 403
    assert (await runtime.members.get(member["_id"]))["frozen"] is False
    assert await runtime.audit.page("member", member["_id"]) == []
    assert (await operator.post(f"{path}/freeze", {})).status_code == 303
    assert 'id="promoter-actions"' in (await operator.get(path)).text
