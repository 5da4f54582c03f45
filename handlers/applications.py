"""The merchant reviews promoter applications."""

from __future__ import annotations

from datetime import datetime, timezone

from distribution.applications import ApplicationStatus
from handlers.merchant import MerchantHandler, ReviewNote
from web.models import Application
from web.openapi import Reply, operation
from web.paging import Page, PageQuery, key_cursor


class ApplicationsQuery(PageQuery):
    status: ApplicationStatus | None = None


class ApplicationsHandler(MerchantHandler):
    @operation("Promoter applications, newest first", query=ApplicationsQuery,
               responses={200: Reply("A page of applications", Page[Application])})
    async def get(self) -> None:
        query = self.parse_query(ApplicationsQuery)
        documents = await self.runtime.applications.page(query.status, query.limit, query.cursor)
        self.write_model(Page[Application].of(documents, query.limit, Application.from_document, key_cursor()))


class ApplicationDecisionHandler(MerchantHandler):
    @operation("Approve or reject a pending application; the applicant is told", body=ReviewNote,
               body_required=False, responses={200: Reply("The decided application", Application)},
               errors=(404, 409))
    async def post(self, application_id: str, decision: str) -> None:
        note = self.parse_body(ReviewNote, required=False)
        decided = await self.runtime.applications.decide(application_id, decision == "approve", note.reason,
                                                         datetime.now(timezone.utc))
        # `decide` moves only a pending application: that is what it was.
        await self.audit(f"application.{decision}", "application", application_id,
                         {"status": ApplicationStatus.PENDING.value}, {"status": decided["status"]}, note.reason)
        self.write_model(Application.from_document(decided))
