"""The member search of the merchant API: by id, openid, nickname prefix and phone tail; by grade, frozen and
promoter status; paged newest first; what each member's row adds (balances, what they brought, withdrew);
combinations no index serves are refused; and the grade set by hand."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from bot.simulate import event_xml
from services.grades import GradeRefused
from tests.conftest import MERCHANT_TOKEN
from tests.order_fixtures import add_member, paid_order, item, put_grades, put_rules
from tests.test_miniapp_session import auth, login, mini_openid
from tests.test_withdrawals import credit, rules

MERCHANT = {"Authorization": f"Bearer {MERCHANT_TOKEN}"}
SEARCH = "/api/merchant/v1/members"
NOW = datetime.now(timezone.utc)


async def search(server, **params) -> dict:
    response = await server.http.get(SEARCH, params=params, headers=MERCHANT)
    assert response.status_code == 200, response.text
    return response.json()


async def found(server, **params) -> list[str]:
    return [member["id"] for member in (await search(server, **params))["items"]]


async def refusal(server, **params) -> tuple[int, dict]:
    response = await server.http.get(SEARCH, params=params, headers=MERCHANT)
    return response.status_code, response.json()["error"]


async def person(server, code: str, nickname: str | None = None, phone: str | None = None) -> dict:
    """A mini-program user who logged in (with a nickname) and gave a phone, as the mini-program does."""
    session = await login(server, code, **({"profile": {"nickname": nickname}} if nickname else {}))
    if phone:
        changed = await server.http.patch("/api/v1/me", json={"phone": phone}, headers=auth(session["token"]))
        assert changed.status_code == 200, changed.text
    return await server.runtime.members.get(session["member"]["id"])


async def test_each_key_finds_its_member(server):
    zhang = await person(server, "zhang", "张伟", "13812345678")
    await person(server, "zhao", "张小凡", "13900005678")
    tom = await person(server, "tom", "Tommy Lee", "13700001111")
    await server.push(event_xml("o_follower", "subscribe"))
    follower = await server.runtime.members.by_oa_openid("o_follower")

    assert await found(server, q=zhang["_id"]) == [zhang["_id"]]
    assert await found(server, q=mini_openid(server, "zhang")) == [zhang["_id"]]
    assert await found(server, q="o_follower") == [follower["_id"]]
    assert sorted(await found(server, q="张")) == sorted([zhang["_id"], (await member_of(server, "zhao"))["_id"]])
    assert await found(server, q="张伟") == [zhang["_id"]]
    assert await found(server, nickname="tOM") == [tom["_id"]]  # Latin letters in any case
    assert await found(server, q="Tommy L") == [tom["_id"]]
    assert await found(server, q="Lee") == []  # the start of a nickname, not any part of it
    assert sorted(await found(server, phone_tail="5678")) == sorted([zhang["_id"],
                                                                     (await member_of(server, "zhao"))["_id"]])
    assert await found(server, phone_tail="1111") == [tom["_id"]]
    assert await found(server, phone_tail="0000") == []
    assert await found(server, q="0123456789abcdef01234567") == []  # an id nobody has

    [row] = (await search(server, q=zhang["_id"]))["items"]
    assert row["phone"] == "138****5678" and row["nickname"] == "张伟"
    assert "13812345678" not in str(await search(server, phone_tail="5678"))
    stored = await server.runtime.members.get(zhang["_id"])
    assert stored["phone_tail"] == "5678" and stored["nickname_keys"] == ["张", "张伟"]


async def member_of(server, code: str) -> dict:
    return await server.runtime.members.store.by_miniapp_openid(mini_openid(server, code))


async def test_the_openid_lookup_still_answers_the_member_alone(server):
    await server.push(event_xml("o_alone", "subscribe"))
    response = await server.http.get(SEARCH, params={"openid": "o_alone"}, headers=MERCHANT)
    assert response.status_code == 200 and response.json()["oa_openid"] == "o_alone"
    assert "items" not in response.json()
    missing = await server.http.get(SEARCH, params={"openid": "nobody"}, headers=MERCHANT)
    assert missing.status_code == 404


async def test_filters_by_grade_frozen_and_promoter_status(server):
    runtime = server.runtime
    await put_grades(runtime, {"name": "silver"}, {"name": "gold"})
    plain = await add_member(runtime, frozen=False, promoter_status="none", created_at=NOW - timedelta(days=3))
    gold = await add_member(runtime, frozen=False, promoter_status="approved", created_at=NOW - timedelta(days=2))
    frozen = await add_member(runtime, frozen=False, promoter_status="appointed", created_at=NOW - timedelta(days=1))
    await runtime.grades.set_grade(gold["_id"], "gold", "top seller", "owner1")
    await runtime.relations.set_frozen(frozen["_id"], True)

    assert await found(server, grade="gold") == [gold["_id"]]
    assert await found(server, grade="silver") == []
    assert await found(server, frozen="true") == [frozen["_id"]]
    assert await found(server, frozen="false") == [gold["_id"], plain["_id"]]
    assert await found(server, promoter_status="approved") == [gold["_id"]]
    assert await found(server, promoter_status="none") == [plain["_id"]]
    assert await found(server) == [frozen["_id"], gold["_id"], plain["_id"]]
    # A member named by id is shown only when it is in the filters too.
    assert await found(server, q=gold["_id"], grade="gold") == [gold["_id"]]
    assert await found(server, q=gold["_id"], frozen="true") == []


async def test_a_phone_tail_takes_any_filters_and_other_combinations_are_refused(server):
    runtime = server.runtime
    await put_grades(runtime, {"name": "gold"})
    first = await person(server, "first", "甲", "13800001234")
    second = await person(server, "second", "乙", "13900001234")
    await runtime.grades.set_grade(second["_id"], "gold", "reason", "owner1")
    await runtime.relations.set_frozen(first["_id"], True)
    assert await found(server, phone_tail="1234", grade="gold") == [second["_id"]]
    assert await found(server, phone_tail="1234", frozen="true", promoter_status="none") == [first["_id"]]

    for params, field in (({"q": "甲", "grade": "gold"}, "grade"), ({"nickname": "甲", "frozen": "true"}, "frozen"),
                          ({"grade": "gold", "frozen": "false"}, "frozen"),
                          ({"q": "甲", "phone_tail": "1234"}, "phone_tail"), ({"q": "x", "nickname": "y"}, "nickname")):
        status, error = await refusal(server, **params)
        assert (status, error["code"], error["field"]) == (400, "unindexed_search", field), params
    for params, field in (({"phone_tail": "12a4"}, "phone_tail"), ({"phone_tail": "12345"}, "phone_tail"),
                          ({"q": "长" * 21}, "q"), ({"nickname": "长" * 21}, "nickname"),
                          ({"frozen": "maybe"}, "frozen"), ({"promoter_status": "boss"}, "promoter_status"),
                          ({"cursor": "nonsense"}, "cursor"), ({"limit": "0"}, "limit")):
        status, error = await refusal(server, **params)
        assert (status, error["field"]) == (400, field), params


async def test_pages_go_newest_first_by_joining_time_with_a_cursor(server):
    runtime = server.runtime
    # Joined a few minutes apart over the last days, and one at the same instant as another (ties by id).
    made = [await add_member(runtime, frozen=False, nickname=f"m{n}", created_at=NOW - timedelta(hours=n * 7))
            for n in range(23)]
    twin = await add_member(runtime, frozen=False, created_at=made[5]["created_at"])
    expected = sorted([*made, twin], key=lambda m: (m["created_at"], m["_id"]), reverse=True)
    seen, cursor = [], None
    while True:
        page = await search(server, limit=5, **({"cursor": cursor} if cursor else {}))
        seen += [member["id"] for member in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [member["_id"] for member in expected]
    assert len((await search(server, limit=24))["items"]) == 24
    assert (await search(server, limit=24))["next_cursor"] is not None  # a full page: there may be more
    frozen_page = await search(server, frozen="false", limit=10)
    assert [m["id"] for m in frozen_page["items"]] == [m["_id"] for m in expected[:10]]
    rest = await search(server, frozen="false", limit=20, cursor=frozen_page["next_cursor"])
    assert [m["id"] for m in rest["items"]] == [m["_id"] for m in expected[10:]] and rest["next_cursor"] is None


async def test_each_row_has_balances_what_was_brought_and_withdrawn_and_the_upline(server):
    runtime = server.runtime
    await put_rules(runtime, level_rates_bp=(1_000, 500))
    root = await add_member(runtime, nickname="老王", frozen=False)
    middle = await add_member(runtime, root, nickname="小李", frozen=False)
    buyer = await add_member(runtime, middle, frozen=False)
    await paid_order(runtime, "S-1", buyer, [item(10_000)])
    await paid_order(runtime, "S-2", buyer, [item(5_000)])

    rows = {row["id"]: row for row in (await search(server, limit=10))["items"]}
    assert (rows[middle["_id"]]["orders_brought"], rows[middle["_id"]]["sales_brought_fen"]) == (2, 15_000)
    assert (rows[root["_id"]]["orders_brought"], rows[root["_id"]]["sales_brought_fen"]) == (2, 15_000)
    assert rows[middle["_id"]]["balances"] == {"frozen_fen": 1_500, "available_fen": 0, "locked_fen": 0}
    assert rows[root["_id"]]["balances"]["frozen_fen"] == 750
    assert rows[buyer["_id"]]["orders_brought"] == 0 and rows[buyer["_id"]]["balances"]["frozen_fen"] == 0
    assert rows[middle["_id"]]["upline_id"] == root["_id"] and rows[middle["_id"]]["upline_nickname"] == "老王"

    await rules(runtime, auto_approve_under_fen=10_000)
    await credit(runtime, root["_id"], 3_000)
    withdrawal = await runtime.withdrawals.request(await runtime.members.get(root["_id"]), 2_000, "bank", None, NOW)
    await runtime.withdrawals.mark_bank_paid(withdrawal["_id"], "BANK-REF-1", NOW)
    [row] = (await search(server, q=root["_id"]))["items"]
    assert row["withdrawn_fen"] == 2_000 and row["balances"]["available_fen"] == 1_000


async def test_a_grade_is_set_by_hand_recorded_and_kept_in_step(server):
    runtime = server.runtime
    await put_grades(runtime, {"name": "silver"}, {"name": "gold"})
    member = await add_member(runtime, frozen=False)
    answer = await server.http.post(f"{SEARCH}/{member['_id']}/grade", json={"grade": "gold", "reason": "大客户"},
                                    headers=MERCHANT)
    assert answer.status_code == 200 and answer.json()["grade"] == "gold"
    assert await runtime.grades.grades_of([member["_id"]]) == {member["_id"]: "gold"}
    down = await server.http.post(f"{SEARCH}/{member['_id']}/grade", json={"grade": "silver", "reason": "降级"},
                                  headers=MERCHANT)
    assert down.status_code == 200 and down.json()["grade"] == "silver"
    history = await runtime.grades.history(member["_id"])
    assert [(h["from_grade"], h["to_grade"], h["reason"], h["by"]) for h in history] == [
        (None, "gold", "大客户", "merchant-api"), ("gold", "silver", "降级", "merchant-api")]
    [entry] = await runtime.audit.page("member", member["_id"], limit=1)
    assert (entry["action"], entry["before"], entry["after"], entry["reason"]) == (
        "member.grade", {"grade": "gold"}, {"grade": "silver"}, "降级")

    for body, status, code in (({"grade": "silver", "reason": "again"}, 409, "same_grade"),
                               ({"grade": "platinum", "reason": "x"}, 400, "invalid"),
                               ({"grade": "gold"}, 400, "invalid")):
        refused = await server.http.post(f"{SEARCH}/{member['_id']}/grade", json=body, headers=MERCHANT)
        assert (refused.status_code, refused.json()["error"]["code"]) == (status, code), body
    missing = await server.http.post(f"{SEARCH}/0123456789abcdef01234567/grade", json={"grade": None, "reason": "x"},
                                     headers=MERCHANT)
    assert missing.status_code == 404
    cleared = await server.http.post(f"{SEARCH}/{member['_id']}/grade", json={"grade": None, "reason": "清除"},
                                     headers=MERCHANT)
    assert cleared.status_code == 200 and cleared.json()["grade"] is None
    assert await found(server, grade="silver") == []


async def test_evaluation_raises_a_grade_set_lower_by_hand_again(server):
    runtime = server.runtime
    await put_grades(runtime, {"name": "silver", "min_direct_members": 1}, {"name": "gold", "min_direct_members": 1})
    upline = await add_member(runtime, frozen=False)
    await add_member(runtime, upline)
    assert await runtime.grades.evaluate([upline["_id"]], "bind") == {upline["_id"]: "gold"}
    await runtime.grades.set_grade(upline["_id"], "silver", "试用期", "owner1")
    with pytest.raises(GradeRefused):
        await runtime.grades.set_grade(upline["_id"], "silver", "again", "owner1")
    assert await runtime.grades.evaluate([upline["_id"]], "settlement") == {upline["_id"]: "gold"}
    assert [h["to_grade"] for h in await runtime.grades.history(upline["_id"])] == ["gold", "silver", "gold"]
    assert (await runtime.members.get(upline["_id"]))["grade"] == "gold"
