"""My data rights (个人信息保护法): GET /api/v1/me/export, and GET|POST /api/v1/me/deletion."""

from __future__ import annotations

from datetime import datetime, timezone

from miniapp_api.auth import MiniappHandler
from web.openapi import Reply, operation
from web.privacy import DataExport, DeletionRequest

DELETION = Reply("My deletion request, and the money it waits for", DeletionRequest)


class MyExportHandler(MiniappHandler):
    @operation("All my data, as JSON: profile, relations, money, orders, notifications, consents and acceptances",
               responses={200: Reply("My data", DataExport)})
    async def get(self) -> None:
        self.write_model(DataExport.model_validate(await self.runtime.data_rights.export(self.member)))


class MyDeletionHandler(MiniappHandler):
    @operation("My deletion request (404 deletion_not_requested before I make one)", responses={200: DELETION},
               errors=(404,))
    async def get(self) -> None:
        self.write_model(DeletionRequest.model_validate(
            await self.runtime.data_rights.deletion(self.member["_id"], datetime.now(timezone.utc))))

    @operation("Ask for my personal data to be deleted: carried out by the merchant once no money is pending for me "
               "(no frozen, available or locked balance, no open withdrawal); asking again is the same request",
               responses={200: DELETION})
    async def post(self) -> None:
        self.write_model(DeletionRequest.model_validate(
            await self.runtime.data_rights.request_deletion(self.member, datetime.now(timezone.utc))))
