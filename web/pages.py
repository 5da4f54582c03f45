"""The lists both APIs serve, a page at a time: withdrawals and commissions, of one member or of all."""

from __future__ import annotations

from distribution.withdrawals import WithdrawalStatus
from services.commissions import CommissionStatus
from services.runtime import Runtime
from web.models import Commission, Withdrawal
from web.paging import Page, PageQuery, key_cursor


class WithdrawalsQuery(PageQuery):
    status: WithdrawalStatus | None = None


class CommissionsQuery(PageQuery):
    status: CommissionStatus | None = None


async def withdrawal_page(runtime: Runtime, member_id: str | None, query: WithdrawalsQuery) -> Page[Withdrawal]:
    """Newest first; `member_id` None: everyone's."""
    documents = await runtime.withdrawals.page(member_id, query.status, query.limit, query.cursor)
    return Page[Withdrawal].of(documents, query.limit, Withdrawal.from_document, key_cursor())


async def commission_page(runtime: Runtime, member_id: str | None, query: CommissionsQuery) -> Page[Commission]:
    """Newest first; `member_id` None: everyone's."""
    documents = await runtime.commissions.page(member_id, query.status, query.cursor, query.limit)
    return Page[Commission].of(documents, query.limit, Commission.from_document, key_cursor("sort_key"))
