"""The merchant publishes the promoter agreement (电子协议) and sees each version's acceptances."""

from __future__ import annotations

from datetime import datetime, timezone

from pydantic import Field

from distribution.agreements import MAX_VERSION, AgreementText
from handlers.merchant import MerchantHandler
from web.openapi import Reply, operation
from web.paging import Limit, Page, Query
from web.privacy import Agreement, AgreementVersion


class VersionsQuery(Query):
    limit: Limit = 20
    cursor: int | None = Field(None, ge=1, le=MAX_VERSION, description="next_cursor of the previous page")


class AgreementsHandler(MerchantHandler):
    @operation("The agreement's versions, newest first, each with how many members accepted it", query=VersionsQuery,
               responses={200: Reply("A page of versions", Page[AgreementVersion])})
    async def get(self) -> None:
        query = self.parse_query(VersionsQuery)
        versions = await self.runtime.agreements.page(query.limit, query.cursor)
        self.write_model(Page[AgreementVersion].of(versions, query.limit, AgreementVersion.from_document,
                                                   lambda version: str(version["_id"])))

    @operation("Publish a new version of the promoter agreement: it is in force at once, members accept it before "
               "they apply or withdraw next", body=AgreementText,
               responses={201: Reply("The version published", Agreement)}, errors=(409,))
    async def post(self) -> None:
        text = self.parse_body(AgreementText)
        published = await self.runtime.agreements.publish(text, datetime.now(timezone.utc))
        await self.audit("agreement.publish", "agreement", str(published["_id"]), None, {"title": text.title})
        self.write_model(Agreement.from_document(published), status=201)
