"""GET /api/v1/agreement and POST /api/v1/agreement/accept: the promoter agreement in force, and my acceptance."""

from __future__ import annotations

from datetime import datetime, timezone

from distribution.agreements import Acceptance
from miniapp_api.auth import MiniappHandler
from services.agreements import accepted_version
from web.openapi import Reply, operation
from web.privacy import AgreementAcceptance, CurrentAgreement


class AgreementHandler(MiniappHandler):
    @operation("The promoter agreement in force, and whether I accepted it (404 no_agreement while none is "
               "published)", responses={200: Reply("The agreement", CurrentAgreement)}, errors=(404,))
    async def get(self) -> None:
        current = await self.runtime.agreements.current()
        self.write_model(CurrentAgreement.from_document(
            {**current, "accepted": accepted_version(self.member) == current["_id"]}))


class AcceptAgreementHandler(MiniappHandler):
    @operation("Accept the agreement in force: needed to become a promoter, and again for each new version before "
               "the next withdrawal. Any other version is 409 agreement_not_current; accepting twice is one "
               "acceptance", body=Acceptance, responses={200: Reply("My acceptance", AgreementAcceptance)},
               errors=(404, 409))
    async def post(self) -> None:
        acceptance = self.parse_body(Acceptance)
        accepted = await self.runtime.agreements.accept(self.member, acceptance.version, datetime.now(timezone.utc))
        self.write_model(AgreementAcceptance.model_validate(accepted))
