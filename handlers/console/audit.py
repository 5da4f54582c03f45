"""The audit log (审计日志): who did what to what, from where, and what changed; owners read it, nobody edits it."""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import StringConstraints, ValidationInfo, field_validator

from distribution.records import matching
from distribution.staff import Permission
from handlers.console.base import ConsoleHandler
from handlers.console.listing import filters_of, list_link, pager, parsed, query_parameters
from web.paging import Query

AUDIT_PATH = "/admin/audit"
PAGE_SIZE = 50
# A value longer than this is cut in the table: the entry itself keeps all of it.
SHOWN_CHARACTERS = 80

ACTIONS = {
    "sign_in": "登录",
    "sign_out": "退出",
    "withdrawal.approve": "通过提现",
    "withdrawal.reject": "驳回提现",
    "withdrawal.retry": "重试提现",
    "withdrawal.bank_account": "查看银行账户",
    "withdrawal.mark_paid": "标记已打款",
    "withdrawal.mark_failed": "标记打款失败",
    "application.approve": "通过申请",
    "application.reject": "驳回申请",
    "member.upline": "修改上级",
    "member.freeze": "冻结推广员",
    "member.unfreeze": "解冻推广员",
    "member.grade": "修改等级",
    "member.tax_profile": "修改税务身份",
    "poster.background_add": "上传海报背景",
    "poster.background_delete": "删除海报背景",
}
# Actions named `<family>.<kind>`: the family's label and each kind's.
ACTION_FAMILIES = {
    "settings": ("修改设置", {"binding": "绑定规则", "commission": "佣金规则", "withdrawals": "提现规则",
                              "grades": "等级规则", "posters": "海报设置"}),
    "export": ("导出", {"members": "推广员", "orders": "订单", "commissions": "佣金", "ledger": "账本",
                        "withdrawals": "提现", "daily_stats": "每日统计", "reconciliation": "对账",
                        "income_statement": "年度收入"}),
}
TARGET_KINDS = {
    "member": "推广员",
    "withdrawal": "提现",
    "application": "申请",
    "settings": "设置",
    "poster_background": "海报背景",
    "export": "导出",
    "staff": "员工",
}
ROLES = {"owner": "店主", "finance": "财务", "operator": "运营"}
FIELDS = {"status": "状态", "upline_id": "上级", "frozen": "冻结", "grade": "等级", "reference": "转账流水号"}
ABSENT = "—"

ShortText = Annotated[str, StringConstraints(max_length=64)]
# The id of the last entry of the page before: entries' ids sort by time.
EntryId = Annotated[str, matching(r"^[0-9a-f]{24}$", "must be a cursor this page gave out")]


class AuditQuery(Query):
    kind: ShortText | None = None
    target: ShortText | None = None
    actor: ShortText | None = None
    cursor: EntryId | None = None

    @field_validator("target")
    @classmethod
    def _within_its_kind(cls, target: str | None, info: ValidationInfo) -> str | None:
        # Entries are indexed by target kind, then id: one target is looked up within its kind.
        if target and not info.data.get("kind"):
            raise ValueError("choose the target's kind too")
        return target


def action_label(action: str) -> str:
    if action in ACTIONS:
        return ACTIONS[action]
    family, _, kind = action.partition(".")
    if family in ACTION_FAMILIES:
        label, kinds = ACTION_FAMILIES[family]
        return f"{label} · {kinds.get(kind, kind)}"
    return action


def changes(before: Any, after: Any) -> list[tuple[str, str, str]]:
    """What an action changed, one row per field whose value differs: (field, before, after) as text; fields
    of nested objects are named by their dotted path."""
    old, new = _flattened(before), _flattened(after)
    names = [*old, *(name for name in new if name not in old)]
    return [(FIELDS.get(name, name), _shown(old.get(name, ABSENT)), _shown(new.get(name, ABSENT)))
            for name in names if old.get(name, ABSENT) != new.get(name, ABSENT)]


def _flattened(value: Any, path: str = "") -> dict[str, Any]:
    if isinstance(value, dict) and (value or not path):
        flat: dict[str, Any] = {}
        for key, item in value.items():
            flat.update(_flattened(item, f"{path}.{key}" if path else str(key)))
        return flat
    if value is None and not path:
        return {}
    return {path or "值": value}  # a nested empty object stays a value; a bare value is the whole state


def _shown(value: Any) -> str:
    if value is ABSENT:
        return ABSENT
    if isinstance(value, bool):
        text = "是" if value else "否"
    elif isinstance(value, str):
        text = value
    else:
        text = json.dumps(value, ensure_ascii=False, default=str, separators=(",", ":"))
    return text if len(text) <= SHOWN_CHARACTERS else text[:SHOWN_CHARACTERS - 1] + "…"


class AuditLogHandler(ConsoleHandler):
    permission = Permission.AUDIT

    async def get(self) -> None:
        parameters = query_parameters(self)
        query, errors = parsed(AuditQuery, parameters)
        entries = [] if query is None else \
            await self.runtime.audit.page(query.kind, query.target, query.actor, query.cursor, PAGE_SIZE)
        next_cursor = entries[-1]["_id"] if len(entries) == PAGE_SIZE else None
        self.render_page("audit.html", status=400 if errors else 200, errors=errors, values=filters_of(parameters),
                         entries=entries, pager=pager(AUDIT_PATH, parameters, next_cursor),
                         link=lambda **each: list_link(AUDIT_PATH, each), action_label=action_label,
                         changes=changes, target_kinds=TARGET_KINDS, roles=ROLES)


ROUTES = [(AUDIT_PATH, AuditLogHandler)]
