"""The console's applications (申请): the queue of people asking to promote, with what they gave (their phone
masked, as a person reads it) and who they are here, and the review — approve, or reject with a reason —
through the merchant API's service call, each decision recorded in the audit log."""

from __future__ import annotations

from datetime import datetime, timezone

from distribution.applications import ApplicationStatus
from distribution.staff import Permission
from handlers.applications import ApplicationsQuery
from handlers.console.listing import parsed
from handlers.console.review import EVERY_STATUS, Rejection, ReviewQueue, shown_statuses
from services.sealing import mask_phone
from web.models import Application
from web.paging import Page, key_cursor

APPLICATIONS_PATH = "/admin/applications"

STATUSES = {"pending": "待审核", "approved": "已通过", "rejected": "已驳回"}
STATUS_TAGS = {"pending": "warn", "approved": "good", "rejected": "bad"}
PROMOTER_STATUSES = {"pending": "申请中", "approved": "已通过", "rejected": "已驳回", "appointed": "商家指定"}
DONE = {"approve": "已通过申请", "reject": "已驳回申请"}
REFUSALS = {"already_decided": "这份申请已经处理过了", "application_not_found": "找不到这份申请"}

ShownStatus = shown_statuses(ApplicationStatus)


class ReviewQuery(ApplicationsQuery):
    """The queue shows applications waiting for review unless another status (or every one) is asked for."""

    status: ShownStatus = ApplicationStatus.PENDING.value


class ApplicationsConsole(ReviewQueue):
    permission = Permission.APPLICATIONS
    path = APPLICATIONS_PATH
    template = "applications.html"
    statuses = STATUSES
    decided = DONE
    refusals = REFUSALS

    async def show_queue(self, parameters: dict[str, str], status: int = 200, notice: str | None = None,
                         error: str | None = None) -> None:
        query, errors = parsed(ReviewQuery, parameters)
        page = Page[Application](items=[], next_cursor=None)
        phones: dict[str, str] = {}
        if query is not None:
            documents = await self.runtime.applications.page(None if query.status == EVERY_STATUS else query.status,
                                                             query.limit, query.cursor)
            page = Page[Application].of(documents, query.limit, Application.from_document, key_cursor())
            phones = {each["_id"]: mask_phone(self.runtime.sealer.open(each["phone_sealed"]))
                      for each in documents if each.get("phone_sealed")}
        applicants = await self.runtime.members.several(each.member_id for each in page.items)
        self.render_queue(parameters, query, errors, page.next_cursor, status, notice=notice, error=error,
                          applications=page.items, phones=phones, applicants=applicants, now=datetime.now(timezone.utc),
                          tags=STATUS_TAGS, promoter_statuses=PROMOTER_STATUSES)


class ApplicationsPage(ApplicationsConsole):
    async def get(self) -> None:
        await self.show_asked()


class ApplicationDecisionHandler(ApplicationsConsole):
    async def post(self, application_id: str, decision: str) -> None:
        await self.decide(decision, lambda form: self._decide(application_id, decision, form))

    async def _decide(self, application_id: str, decision: str, form: dict[str, str]) -> None:
        approve = decision == "approve"
        reason = None if approve else Rejection.from_dict(
            {name: form[name] for name in ("reason",) if name in form}).reason
        decided = await self.runtime.applications.decide(application_id, approve, reason, datetime.now(timezone.utc))
        # `decide` moves only a pending application: that is what it was.
        await self.audit(f"application.{decision}", "application", application_id,
                         {"status": ApplicationStatus.PENDING.value}, {"status": decided["status"]}, reason)


ROUTES = [
    (APPLICATIONS_PATH, ApplicationsPage),
    (rf"{APPLICATIONS_PATH}/(?P<application_id>[^/]+)/(?P<decision>approve|reject)", ApplicationDecisionHandler),
]
