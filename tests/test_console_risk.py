"""The console's risk review queue: open flags with their evidence, cleared or voided with a reason (audited,
through the same service as the API), and flags shown beside the promoter and the withdrawal they concern."""

from __future__ import annotations

import re

from tests.console_fixtures import staff_client
from tests.order_fixtures import assert_ledger_clean, at, balances
from tests.test_risk import buy, flags, pair, proxied, put_risk, withdraw  # noqa: F401 (fixtures)

_FLAG_CARDS = re.compile(r'<article class="card risk-flag" data-flag-id="([^"]+)" data-status="([^"]+)"')


async def test_staff_void_a_held_commission_and_see_the_flags_beside_the_promoter_and_withdrawal(proxied):
    server, runtime = proxied, proxied.runtime
    await put_risk(server, self_referral={"action": "hold"})
    alice, second = await pair(server, second_account=True)
    await buy(server, "console-1", second)
    [flag] = await flags(server)
    console = await staff_client(server, "finance")

    queue = await console.get("/admin/risk")
    assert _FLAG_CARDS.findall(queue.text) == [(flag["id"], "open")]
    assert 'data-evidence="shared">device、login_ip<' in queue.text
    refused = await console.post(f"/admin/risk/{flag['id']}/void", {"back_status": "open"})
    assert refused.status_code == 400 and "请填写原因" in refused.text
    done = await console.post(f"/admin/risk/{flag['id']}/void", {"back_status": "open", "reason": "her own account"})
    assert done.status_code == 303
    assert (await console.get("/admin/risk", status="voided")).text.count('data-status="voided"') == 1
    assert await balances(runtime, alice["_id"]) == (0, 0, 0)
    await assert_ledger_clean(runtime)
    entry = (await runtime.audit.page(target_kind="risk_flag", target_id=flag["id"]))[0]
    assert (entry["action"], entry["reason"], entry["actor"]["name"]) == ("risk_flag.void", "her own account",
                                                                          "finance1")

    page = await console.get(f"/admin/promoters/{alice['_id']}")
    assert f'data-flag-id="{flag["id"]}" data-rule="self_referral"' in page.text
    await console.aclose()


async def test_a_held_withdrawal_shows_its_flag_and_cannot_be_approved_until_cleared(proxied):
    server, runtime = proxied, proxied.runtime
    alice, second = await pair(server, second_account=True)
    await buy(server, "console-2", second)
    await runtime.commissions.settle_due(at(30))
    withdrawal = (await withdraw(server, alice, 1_000)).json()
    console = await staff_client(server, "finance")
    queue = await console.get("/admin/withdrawals")
    assert 'data-flag="unlinked_buyers"' in queue.text
    refused = await console.post(f"/admin/withdrawals/{withdrawal['id']}/approve", {"back_status": "pending_review"})
    assert refused.status_code == 409 and "风控记录暂扣了这笔提现" in refused.text
    [hold] = await flags(server, rule="unlinked_buyers")
    cleared = await console.post(f"/admin/risk/{hold['id']}/clear", {"back_status": "open", "reason": "checked"})
    assert cleared.status_code == 303
    approved = await console.post(f"/admin/withdrawals/{withdrawal['id']}/approve", {"back_status": "pending_review"})
    assert approved.status_code == 303
    assert (await runtime.withdrawals.get(withdrawal["id"]))["status"] == "approved"
    await console.aclose()
