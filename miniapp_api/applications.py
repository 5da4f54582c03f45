"""POST /api/v1/promoter-application: ask the merchant to let me promote."""

from __future__ import annotations

from datetime import datetime, timezone

from distribution.agreements import AgreementAct
from distribution.rate_limits import Action
from miniapp_api.auth import MiniappHandler
from miniapp_api.requests import PromoterApplication
from web.models import Application
from web.openapi import Reply, operation


class PromoterApplicationHandler(MiniappHandler):
    @operation("Apply to promote (where the merchant reviews promoters)", body=PromoterApplication,
               responses={201: Reply("The application, pending review", Application)}, errors=(403, 409, 429))
    async def post(self) -> None:
        request = self.parse_body(PromoterApplication)
        await self.runtime.limits.check(Action.APPLICATION, member=self.member["_id"])
        await self.runtime.agreements.require(self.member, AgreementAct.APPLY)
        application = await self.runtime.applications.apply(self.member, request.name, request.phone,
                                                            request.reason, datetime.now(timezone.utc))
        self.write_model(Application.from_document(application), status=201)
