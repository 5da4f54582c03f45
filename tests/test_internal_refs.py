"""Our own references never collide with a merchant's ids: each starts with "_", which no event id can."""

from __future__ import annotations

import pytest

from distribution.commission_rules import Trigger
from distribution.orders import EVENT_ID, IMPLIED_PAID_EVENT, REFUNDED_BEFORE_POSTING, NewEvent
from distribution.records import InvalidField
from tests.conftest import MERCHANT_TOKEN
from tests.order_fixtures import (
    assert_ledger_clean,
    at,
    balances,
    chain,
    commissions_of,
    drain,
    iso,
    item,
    paid_order,
    put_rules,
    send_event,
)

INTERNAL_REFERENCES = (IMPLIED_PAID_EVENT, REFUNDED_BEFORE_POSTING)


@pytest.mark.parametrize("reference", INTERNAL_REFERENCES)
def test_no_event_id_can_be_one_of_our_references(reference):
    assert not EVENT_ID.match(reference)
    with pytest.raises(InvalidField) as refused:
        NewEvent.from_dict({"event_id": reference, "type": "refunded"})
    assert refused.value.field == "event_id"


async def test_a_refund_whose_id_was_our_reference_is_applied_and_the_ledger_verifies(server):
    runtime = server.runtime
    await put_rules(runtime, trigger=Trigger.CONFIRMED)
    upline, buyer = await chain(runtime, 1)
    await paid_order(runtime, "collide", buyer, [item(10_000)])
    # Refunded before confirmation: posting the commission cancels that share under our own reference.
    await send_event(runtime, "collide", "r", "refunded", at(1), items=[{"sku": "tea", "refund_fen": 4_000}])
    await drain(runtime)
    await send_event(runtime, "collide", "c", "confirmed", at(2))
    await drain(runtime)
    assert await commissions_of(runtime, "collide") == [(upline["_id"], 1, 600, "frozen")]

    # The shop's own refund, named as our reference once was.
    response = await server.http.post(
        "/api/merchant/v1/orders/collide/events", headers={"Authorization": f"Bearer {MERCHANT_TOKEN}"},
        json={"event_id": "refunded-before-posting", "type": "refunded", "at": iso(at(3)),
              "items": [{"sku": "tea", "refund_fen": 1_000}]})
    assert response.status_code == 202
    await drain(runtime)

    events = {event["event_id"]: event for event in (await runtime.orders.get("collide"))["events"]}
    assert events["refunded-before-posting"]["state"] == "applied"
    assert events["refunded-before-posting"]["outcome"] == "refunded 1000 fen; 100 commission fen reversed"
    assert await commissions_of(runtime, "collide") == [(upline["_id"], 1, 500, "frozen")]
    assert await balances(runtime, upline) == (500, 0, 0)
    cancellations = await runtime.db["ledger_entries"].find(
        {"account_id": upline["_id"], "kind": "commission_cancelled"}).to_list()
    assert sorted(entry["amount_fen"] for entry in cancellations) == [-400, -100]
    await assert_ledger_clean(runtime)
