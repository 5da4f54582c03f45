"""The console's 协议与注销 page: the promoter agreement's versions with how many accepted each, a form to publish the
next, and the members' deletion requests with what each waits for, carried out by a button — through the same
service calls as the merchant API, each action recorded in the audit log."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from distribution.agreements import AgreementText
from distribution.errors import Conflict
from distribution.records import InvalidField
from distribution.staff import Permission
from handlers.console.base import ConsoleHandler
from web.privacy import AgreementVersion, DeletionRequest

PRIVACY_PATH = "/admin/privacy"
SHOWN = 50  # versions and requests on the page, newest first
DONE = {"published": "已发布新版本协议", "processed": "已执行注销：该会员的个人信息已删除"}
BLOCKED_WORDS = {"frozen_balance": "有冻结佣金", "available_balance": "有可提现余额", "locked_balance": "有提现中的金额",
                 "open_withdrawal": "有未完成的提现"}
STATUS_WORDS = {"waiting": "待处理", "done": "已注销"}


class PrivacyConsole(ConsoleHandler):
    permission = Permission.SETTINGS

    async def show(self, status: int = 200, errors: dict[str, str] | None = None, values: dict[str, str] | None = None,
                   error: str | None = None) -> None:
        now = datetime.now(timezone.utc)
        versions = [AgreementVersion.from_document(each) for each in await self.runtime.agreements.page(SHOWN, None)]
        deletions = [DeletionRequest.model_validate(await self.runtime.data_rights.deletion(each["member_id"], now))
                    if each["status"] == "waiting" else DeletionRequest.model_validate(each)
                    for each in await self.runtime.data_rights.page(None, SHOWN, None)]
        self.render_page("privacy.html", status=status, versions=versions, deletions=deletions,
                         errors=errors or {}, values=values or {}, error=error, blocked_words=BLOCKED_WORDS,
                         status_words=STATUS_WORDS, notice=DONE.get(self.get_query_argument("done", "")))


class PrivacyPage(PrivacyConsole):
    async def get(self) -> None:
        await self.show()


class PublishAgreementHandler(PrivacyConsole):
    async def post(self) -> None:
        posted = {name: value for name, value in self.form().items() if name in ("title", "body") and value.strip()}
        try:
            text = AgreementText.from_dict(posted)
        except InvalidField as refused:
            await self.show(400, errors={refused.field: refused.problem}, values=posted)
            return
        published = await self.runtime.agreements.publish(text, datetime.now(timezone.utc))
        await self.audit("agreement.publish", "agreement", str(published["_id"]), None, {"title": text.title})
        self.redirect(f"{PRIVACY_PATH}?done=published", status=303)


class ProcessDeletionHandler(PrivacyConsole):
    async def post(self, member_id: str) -> None:
        try:
            done: dict[str, Any] = await self.runtime.data_rights.process(member_id, datetime.now(timezone.utc))
        except Conflict as waiting:
            await self.show(409, error=waiting.message)
            return
        await self.audit("member.delete", "member", member_id, None, {"status": done["status"]})
        self.redirect(f"{PRIVACY_PATH}?done=processed", status=303)


ROUTES = [
    (PRIVACY_PATH, PrivacyPage),
    (rf"{PRIVACY_PATH}/agreements", PublishAgreementHandler),
    (rf"{PRIVACY_PATH}/deletions/(?P<member_id>[^/]+)/process", ProcessDeletionHandler),
]
