"""The merchant sees members' deletion requests (个人信息保护法) and carries them out."""

from __future__ import annotations

from datetime import datetime, timezone

from distribution.data_rights import DeletionStatus
from handlers.merchant import MerchantHandler
from web.openapi import Reply, operation
from web.paging import Page, PageQuery, key_cursor
from web.privacy import DeletionRequest


class DeletionsQuery(PageQuery):
    status: DeletionStatus | None = None


class DeletionsHandler(MerchantHandler):
    @operation("Members' deletion requests, newest member first, in one status or all", query=DeletionsQuery,
               responses={200: Reply("A page of deletion requests", Page[DeletionRequest])})
    async def get(self) -> None:
        query = self.parse_query(DeletionsQuery)
        requests = await self.runtime.data_rights.page(query.status, query.limit, query.cursor)
        self.write_model(Page[DeletionRequest].of(requests, query.limit, DeletionRequest.model_validate, key_cursor()))


class DeletionProcessHandler(MerchantHandler):
    @operation("Carry a deletion out: the member's personal data is erased everywhere, their money records keep "
               "only their id, and their sessions end. 409 money_pending while money is pending for them; "
               "processing a done request again changes nothing",
               responses={200: Reply("The request, done", DeletionRequest)}, errors=(404, 409))
    async def post(self, member_id: str) -> None:
        done = await self.runtime.data_rights.process(member_id, datetime.now(timezone.utc))
        await self.audit("member.delete", "member", member_id, None, {"status": done["status"]})
        self.write_model(DeletionRequest.model_validate(done))
