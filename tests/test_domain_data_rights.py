"""What keeps a deletion waiting, and how a member's own records are shown in their export."""

from datetime import datetime, timezone

from distribution.data_rights import MoneyPending, exported, money_pending, own_notification


def test_nothing_pending_when_every_balance_is_zero_and_no_withdrawal_is_open():
    assert money_pending(0, 0, 0, 0) == []


def test_each_balance_and_an_open_withdrawal_keep_a_deletion_waiting():
    assert money_pending(1, 0, 0, 0) == [MoneyPending.FROZEN_BALANCE]
    assert money_pending(0, -5, 0, 0) == [MoneyPending.AVAILABLE_BALANCE]  # a debt is money pending too
    assert money_pending(0, 0, 7, 1) == [MoneyPending.LOCKED_BALANCE, MoneyPending.OPEN_WITHDRAWAL]


def test_a_new_direct_members_name_is_left_out_of_the_recipients_notification():
    notice = {"_id": "bind:1", "kind": "new_direct_member", "data": {"member": "韩梅梅", "team": "3"}}
    assert own_notification(notice)["data"] == {"team": "3"}
    arrived = {"_id": "c", "kind": "commission_arrived", "data": {"amount": "1.00", "order_no": "A1"}}
    assert own_notification(arrived) == arrived


def test_exported_values_are_json_with_ids_and_iso_times_and_no_pictures():
    at = datetime(2026, 5, 1, 8, tzinfo=timezone.utc)
    assert exported({"_id": "m1", "at": at, "jpeg": b"\xff\xd8", "items": [{"_id": "x", "when": at}], "n": 1}) == {
        "id": "m1", "at": "2026-05-01T08:00:00+00:00", "items": [{"id": "x", "when": "2026-05-01T08:00:00+00:00"}],
        "n": 1}
