"""Applying to promote, where the merchant reviews promoters before they may be uplines."""

from __future__ import annotations

from datetime import datetime

from pymongo import AsyncMongoClient
from pymongo.errors import DuplicateKeyError

from distribution.binding import BindingSettings, PromoterStatus, UplineEligibility
from services.merchant_settings import MerchantSettings
from services.notifications import NotificationService, china_time
from services.sealing import Sealer
from stores.applications import APPROVED, REJECTED, ApplicationStore
from stores.members import MemberStore


class ApplicationRefused(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


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
        try:
            application = await self.applications.add(member["_id"], name, self.sealer.seal(phone), reason, at)
        except DuplicateKeyError:
            raise ApplicationRefused("already_pending", "your application is waiting for review") from None
        await self.members.set_promoter_status(member["_id"], PromoterStatus.PENDING)
        return application

    async def decide(self, application_id: str, approve: bool, note: str | None, at: datetime) -> dict | None:
        """The decided application; None if there is no such application. ApplicationRefused if decided already."""
        application = await self.applications.get(application_id)
        if application is None:
            return None
        status = APPROVED if approve else REJECTED
        promoter_status = PromoterStatus.APPROVED if approve else PromoterStatus.REJECTED

        async def in_transaction(session) -> bool:
            if not await self.applications.decide(application_id, status, note, at, session):
                return False
            await self.members.set_promoter_status(application["member_id"], promoter_status, session)
            return True

        async with self.client.start_session() as session:
            if not await session.with_transaction(in_transaction):
                raise ApplicationRefused("already_decided", f"the application was {application['status']} already")
        await self.notifications.notify(
            "application_decided", f"application:{application_id}", application["member_id"],
            {"result": "已通过" if approve else "未通过", "note": note or "", "time": china_time(at)}, at)
        return await self.applications.get(application_id)
