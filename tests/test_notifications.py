"""Notifications from the worker: consents, channels, refusals, retries, once per event and member."""

import asyncio
import json
import re
from datetime import datetime, timedelta, timezone

import pytest

from distribution.ledger import commission_frozen, commission_settled
from distribution.withdrawals import WithdrawalRules
from sandbox import Fault
from sandbox.pay import CREATE_BILL_ENDPOINT
from stores.job_queue import RetryLater
from stores.writes import WriteSet, commit
from settings import SANDBOX_NOTIFY_TEMPLATES
from tests.conftest import notify_templates_json, start_server
from tests.order_fixtures import backlog_drained, backlog_queued, chain, drain, item, paid_order

MINIAPP_SEND = "cgi-bin/message/subscribe/send"
BIZSEND = "cgi-bin/message/subscribe/bizsend"
TEMPLATE_SEND = "cgi-bin/message/template/send"
ARRIVED_MINIAPP_TEMPLATE = "sandbox_mp_commission_arrived"


def sent(sandbox, endpoint):
    return [(call.body["touser"], call.body["template_id"], call.body["data"])
            for call in sandbox.state.calls.received(endpoint)]


async def promoter_and_buyer(runtime, **promoter_fields):
    upline, buyer = await chain(runtime, 1)
    await runtime.db["members"].update_one({"_id": upline["_id"]}, {"$set": promoter_fields})
    return upline, buyer


async def test_a_consent_buys_one_mini_program_message_then_the_official_account_takes_over(server, sandbox):
    runtime = server.runtime
    upline, buyer = await promoter_and_buyer(runtime, miniapp_openid="mp_up", oa_openid="oa_up")
    await runtime.notifications.add_consents(upline["_id"], [ARRIVED_MINIAPP_TEMPLATE])
    await paid_order(runtime, "n1", buyer, [item(12_345)])
    await paid_order(runtime, "n2", buyer, [item(10_000)])
    assert sent(sandbox, MINIAPP_SEND) == [
        ("mp_up", ARRIVED_MINIAPP_TEMPLATE,
         {"amount1": {"value": "12.34元"}, "character_string2": {"value": "n1"}, "time3": {"value": "2026-05-01 12:00"}})]
    assert [(openid, template) for openid, template, _ in sent(sandbox, BIZSEND)] == [
        ("oa_up", "sandbox_oa_commission_arrived")]
    assert await runtime.notifications.unused_consents(upline["_id"], ARRIVED_MINIAPP_TEMPLATE) == 0
    statuses = {each["_id"]: (each["status"], each["channel"]) async for each in runtime.db["notifications"].find()}
    assert statuses == {f"commission_arrived:n1:{upline['_id']}": ("sent", "miniapp"),
                        f"commission_arrived:n2:{upline['_id']}": ("sent", "bizsend")}


async def test_a_refusal_spends_the_consent_and_is_not_retried(server, sandbox):
    runtime = server.runtime
    upline, buyer = await promoter_and_buyer(runtime, miniapp_openid="mp_up", oa_openid="oa_up")
    await runtime.notifications.add_consents(upline["_id"], [ARRIVED_MINIAPP_TEMPLATE] * 2)
    sandbox.state.faults.add(Fault(MINIAPP_SEND, errcode=43101))
    await paid_order(runtime, "refused", buyer, [item(10_000)])
    await drain(runtime)
    assert len(sandbox.state.calls.received(MINIAPP_SEND)) == 1 and sent(sandbox, BIZSEND) == []
    record = await runtime.db["notifications"].find_one()
    assert record["status"] == "refused" and "43101" in record["error"]
    assert await runtime.notifications.unused_consents(upline["_id"], ARRIVED_MINIAPP_TEMPLATE) == 1
    assert (await runtime.queue.stats())["retrying"] == 0


async def test_a_notification_is_sent_once_however_often_its_job_runs(server, sandbox):
    runtime = server.runtime
    upline, _ = await promoter_and_buyer(runtime, oa_openid="oa_up")
    data = {"amount": "1.00元", "order_no": "X", "time": "now"}
    assert await runtime.notifications.notify("commission_arrived", "k1", upline["_id"], data)
    assert not await runtime.notifications.notify("commission_arrived", "k1", upline["_id"], data)
    for _ in range(3):
        assert await runtime.notifications.send("k1") == "sent"
    await drain(runtime)
    assert len(sent(sandbox, BIZSEND)) == 1


async def test_rate_limits_retry_later_and_failures_retry_then_give_up(server, sandbox):
    runtime = server.runtime
    upline, _ = await promoter_and_buyer(runtime, oa_openid="oa_up")
    data = {"amount": "1.00元", "order_no": "X", "time": "now"}
    await runtime.notifications.notify("commission_arrived", "limited", upline["_id"], data)
    sandbox.state.faults.add(Fault(BIZSEND, errcode=45009))
    with pytest.raises(RetryLater):
        await runtime.notifications.send("limited")
    record = await runtime.db["notifications"].find_one({"_id": "limited"})
    assert (record["status"], record["attempts"]) == ("pending", 0)  # a rate limit is no attempt that counts
    assert not await runtime.redis.exists(lock_of(runtime, "limited"))  # free for the retry
    assert await runtime.notifications.send("limited") == "sent"

    await runtime.notifications.notify("commission_arrived", "broken", upline["_id"], data)
    sandbox.state.faults.add(Fault(BIZSEND, errcode=40037, times=None))
    for _ in range(7):
        with pytest.raises(Exception):
            await runtime.notifications.send("broken")
    assert await runtime.notifications.send("broken") == "failed"
    assert (await runtime.db["notifications"].find_one({"_id": "broken"}))["attempts"] == 8
    sandbox.state.faults.clear()


def lock_of(runtime, notification_id):
    return f"{runtime.settings.redis_prefix}notification:{notification_id}"


async def test_senders_side_by_side_send_each_notification_once(server, sandbox):
    runtime = server.runtime
    upline, _ = await promoter_and_buyer(runtime, oa_openid="oa_up")
    data = {"amount": "1.00元", "order_no": "X", "time": "now"}
    keys = [f"side{n}" for n in range(10)]
    for key in keys:
        await runtime.notifications.notify("commission_arrived", key, upline["_id"], data)
    sandbox.state.faults.add(Fault(BIZSEND, delay_seconds=0.2, times=None))  # both are sending at once
    first, second = await asyncio.gather(runtime.notifications.send_many(keys[:7]),
                                         runtime.notifications.send_many(keys[3:]))
    sandbox.state.faults.clear()
    assert len(sent(sandbox, BIZSEND)) == 10  # none twice
    assert {**first, **second} == dict.fromkeys(keys, "sent")
    assert not any([await runtime.redis.exists(lock_of(runtime, key)) for key in keys])  # all given back


async def test_a_notification_locked_by_another_sender_waits_for_it(server, sandbox):
    runtime = server.runtime
    upline, _ = await promoter_and_buyer(runtime, oa_openid="oa_up")
    await runtime.notifications.notify("commission_arrived", "held", upline["_id"], {"amount": "1.00元"})
    await runtime.redis.set(lock_of(runtime, "held"), "another sender", px=300)
    assert await runtime.notifications.send_many(["held"]) == {}  # left to its holder
    assert sent(sandbox, BIZSEND) == []
    await asyncio.sleep(0.4)  # the holder died: its lock frees itself
    assert await runtime.notifications.send_many(["held"]) == {"held": "sent"}
    assert await runtime.redis.get(lock_of(runtime, "held")) is None


async def test_no_channel_means_skipped(server, sandbox):
    runtime = server.runtime
    _, buyer = await chain(runtime, 1)  # the upline has no openid at all
    await paid_order(runtime, "quiet", buyer, [item(10_000)])
    record = await runtime.db["notifications"].find_one()
    assert record["status"] == "skipped" and sandbox.state.calls.received(BIZSEND) == []


async def test_a_lost_job_is_queued_again_by_the_sweep(server, sandbox):
    runtime = server.runtime
    upline, _ = await promoter_and_buyer(runtime, oa_openid="oa_up")
    # Recorded, but the process died before queueing the job.
    record = runtime.notifications.member_record("commission_arrived", "lost", upline["_id"], {"amount": "1.00元"},
                                                 datetime.now(timezone.utc))
    await runtime.db["notifications"].insert_one(record)
    assert await runtime.notifications.requeue_due() == 0
    later = datetime.now(timezone.utc) + timedelta(minutes=6)
    assert await runtime.notifications.requeue_due(later) == 1
    assert await runtime.notifications.requeue_due(later) == 0  # postponed: not queued twice in a row
    await drain(runtime)
    assert (await runtime.db["notifications"].find_one({"_id": "lost"}))["status"] == "sent"


async def test_the_sweep_leaves_notifications_queued_behind_a_backlog_alone(server, sandbox):
    runtime = server.runtime
    started = datetime.now(timezone.utc)
    await backlog_queued(runtime, 400)  # a record made since may be queued behind its oldest job
    upline, _ = await promoter_and_buyer(runtime, oa_openid="oa_up")
    record = runtime.notifications.member_record("commission_arrived", "behind", upline["_id"],
                                                 {"amount": "1.00元"}, started)
    await runtime.db["notifications"].insert_one(record)
    later = started + timedelta(minutes=6)  # past the record's sweep delay (5 minutes)
    assert await runtime.notifications.requeue_due(later) == 0
    await backlog_drained(runtime)
    assert await runtime.notifications.requeue_due(later) == 1


async def test_template_messages_to_admins_and_when_bizsend_is_off(make_settings, sandbox):
    templates = json.loads(notify_templates_json(SANDBOX_NOTIFY_TEMPLATES))
    templates["commission_arrived"]["bizsend"] = None  # the sandbox's templates, one channel turned off
    settings = make_settings(MERCHANT_ADMIN_OPENIDS="o_admin1,o_admin2", NOTIFY_TEMPLATES=json.dumps(templates))
    async for server in start_server(settings):
        runtime = server.runtime
        upline, buyer = await promoter_and_buyer(runtime, oa_openid="oa_up")
        await paid_order(runtime, "T-1", buyer, [item(10_000, title="西湖龙井")])
        calls = sent(sandbox, TEMPLATE_SEND)
        assert sorted((openid, template) for openid, template, _ in calls) == [
            ("o_admin1", "sandbox_tpl_new_order"), ("o_admin2", "sandbox_tpl_new_order"),
            ("oa_up", "sandbox_tpl_commission_arrived")]
        admin_data = next(data for openid, _, data in calls if openid == "o_admin1")
        assert admin_data["keyword1"]["value"] == "T-1" and admin_data["keyword3"]["value"] == "西湖龙井"
        assert sent(sandbox, BIZSEND) == []


async def test_an_admin_notice_turned_off_is_not_recorded(make_settings, sandbox):
    templates = json.loads(notify_templates_json(SANDBOX_NOTIFY_TEMPLATES))
    templates["new_order_admin"]["template"] = None  # the merchant turned the per-order notice to admins off
    settings = make_settings(MERCHANT_ADMIN_OPENIDS="o_admin1,o_admin2", NOTIFY_TEMPLATES=json.dumps(templates))
    async for server in start_server(settings):
        runtime = server.runtime
        upline, buyer = await promoter_and_buyer(runtime, oa_openid="oa_up")
        await paid_order(runtime, "T-2", buyer, [item(10_000)])
        assert await runtime.db["notifications"].count_documents({"audience": "admin"}) == 0
        assert [openid for openid, _, _ in sent(sandbox, TEMPLATE_SEND) if openid.startswith("o_admin")] == []
        assert await runtime.db["notifications"].count_documents({"member_id": upline["_id"]}) == 1  # the rest as ever


def test_notification_settings_are_checked(make_settings):
    from settings import SettingsError

    for value in ("[1]", "{bad json", json.dumps({"x": {"fax": {"template_id": "t"}}}),
                  json.dumps({"x": {"template": {"template_id": ""}}}),
                  json.dumps({"x": {"template": {"template_id": "t", "fields": {"a": 1}}}})):
        with pytest.raises(SettingsError) as error:
            make_settings(NOTIFY_TEMPLATES=value)
        assert error.value.name == "NOTIFY_TEMPLATES"
    with pytest.raises(SettingsError) as error:
        make_settings(MERCHANT_ADMIN_OPENIDS="ok,not an openid")
    assert error.value.name == "MERCHANT_ADMIN_OPENIDS"


async def test_withdrawal_notices_are_in_chinese_with_every_field_filled(make_settings, sandbox):
    async for server in start_server(make_settings(MERCHANT_ADMIN_OPENIDS="o_admin")):
        runtime, now = server.runtime, datetime.now(timezone.utc)
        await runtime.merchant_settings.put(WithdrawalRules.from_dict(
            {"min_distinct_paying_buyers": 0, "auto_approve_under_fen": 2_000}))
        [promoter] = await chain(runtime, 0, oa_openid="oa_p", miniapp_openid="mp_p")
        earned = commission_frozen(promoter["_id"], "c", 50_000) + commission_settled(promoter["_id"], "c", 50_000)
        writes = WriteSet()
        writes.ledger(earned, now)
        await commit(runtime.mongo, runtime.db, writes)

        sandbox.state.pay.deliver_to = server.base_url  # WeChat Pay's callbacks
        paid = await runtime.withdrawals.request(promoter, 1_000, "wechat_balance", None, now)  # approved, then paid
        await drain(runtime)
        await sandbox.state.pay.confirm(paid["_id"])  # the promoter accepts the transfer in WeChat
        refused = await runtime.withdrawals.request(promoter, 5_000, "wechat_balance", None, now)  # for review
        await runtime.withdrawals.review(refused["_id"], False, None, now)
        sandbox.state.faults.add(Fault(CREATE_BILL_ENDPOINT, errcode=403))
        await runtime.withdrawals.request(promoter, 1_500, "wechat_balance", None, now)  # approved, then returned
        await drain(runtime)

        notices = sent(sandbox, TEMPLATE_SEND)
        assert sorted(template for _, template, _ in notices) == sorted([
            "sandbox_tpl_withdrawal_request", "sandbox_tpl_withdrawal_paid", "sandbox_tpl_withdrawal_request",
            "sandbox_tpl_withdrawal_rejected", "sandbox_tpl_withdrawal_request", "sandbox_tpl_withdrawal_returned"])
        for openid, template, data in notices:
            for keyword, field in data.items():
                assert field["value"].strip(), (template, keyword)
                assert not re.search("[A-Za-z]", field["value"]), (template, keyword, field["value"])
        statuses = {template: data["phrase2"]["value"] for _, template, data in notices if "request" not in template}
        assert statuses == {"sandbox_tpl_withdrawal_paid": "已到账", "sandbox_tpl_withdrawal_rejected": "未通过",
                            "sandbox_tpl_withdrawal_returned": "已退回"}


async def test_a_notification_with_an_empty_field_is_never_recorded(server):
    runtime = server.runtime
    [member] = await chain(runtime, 0)
    with pytest.raises(ValueError, match="note"):
        await runtime.notifications.notify("withdrawal_paid", "empty", member["_id"],
                                           {"amount": "1.00元", "status": "已到账", "note": " "})
    assert await runtime.db["notifications"].count_documents({}) == 0
