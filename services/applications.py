"""Applying to promote, where the merchant reviews promoters before they may be uplines."""

from __future__ import annotations

from datetime import datetime

from pymongo import AsyncMongoClient
from pymongo.errors import DuplicateKeyError

from distribution import errors
from distribution.applications import ApplicationStatus
from distribution.binding import BindingSettings, PromoterStatus, UplineEligibility
from distribution.calendar import china_time
from distribution.content import ContentSettings
from services.merchant_settings import MerchantSettings
from services.notifications import NotificationService, thing
from services.sealing import Sealer
from stores.applications import ApplicationStore
from stores.members import MemberStore
from stores.writes import run_transaction


# The decision's note when the merchant gave none (WeChat refuses an empty field).
DEFAULT_NOTES = {True: "欢迎成为推广员", False: "如有疑问请联系商家"}


class ApplicationRefused(errors.Refused):
    def __init__(self, code: str, message: str):
        super().__init__(message, code=code)


class ApplicationNotFound(errors.NotFound):
    code = "application_not_found"


class ApplicationService:
    def __init__(self, client: AsyncMongoClient, applications: ApplicationStore, members: MemberStore,
                 merchant_settings: MerchantSettings, sealer: Sealer, notifications: NotificationService):
        self.client = client
        self.notifications = notifications
        self.applications = applications
        self.members = members
        self.merchant_settings = merchant_settings
        self.sealer = sealer

    async def apply(self, member: dict, name: str, phone: str, reason: str, at: datetime) -> dict:
        settings = await self.merchant_settings.get(BindingSettings)
        if settings.upline_eligibility is not UplineEligibility.REVIEWED:
            raise ApplicationRefused("review_not_required", "promoting needs no application at this shop")
        if member.get("promoter_status") in (PromoterStatus.APPROVED.value, PromoterStatus.APPOINTED.value):
            raise ApplicationRefused("already_promoter", "you are a promoter already")
        # The reason is text the merchant keeps and may show; the name is a person's legal name, not checked.
        (await self.merchant_settings.get(ContentSettings)).refuse_words([("reason", reason)])
        try:
            application = await self.applications.add(member["_id"], name, self.sealer.seal(phone), reason, at)
        except DuplicateKeyError:
            raise ApplicationRefused("already_pending", "your application is waiting for review") from None
        await self.members.set_promoter_status(member["_id"], PromoterStatus.PENDING)
        return application

    async def page(self, status: ApplicationStatus | None, limit: int, before: str | None) -> list[dict]:
        """Applications newest first, in one status or all, after the id `before`."""
        return await self.applications.page(status, limit, before)

    async def decide(self, application_id: str, approve: bool, note: str | None, at: datetime) -> dict:
        """The decided application; ApplicationNotFound, or ApplicationRefused if it was decided already."""
        application = await self.applications.get(application_id)
        if application is None:
            raise ApplicationNotFound(f"no application {application_id}")
        status = ApplicationStatus.APPROVED if approve else ApplicationStatus.REJECTED
        promoter_status = PromoterStatus.APPROVED if approve else PromoterStatus.REJECTED

        async def in_transaction(session) -> bool:
            if not await self.applications.decide(application_id, status, note, at, session):
                return False
            await self.members.set_promoter_status(application["member_id"], promoter_status, session)
            return True

        if not await run_transaction(self.client, in_transaction):
            raise ApplicationRefused("already_decided", f"the application was {application['status']} already")
        await self.notifications.notify(
            "application_decided", f"application:{application_id}", application["member_id"],
            {"result": "已通过" if approve else "未通过", "note": thing(note, DEFAULT_NOTES[approve]),
             "time": china_time(at)}, at)
        return await self.applications.get(application_id)
