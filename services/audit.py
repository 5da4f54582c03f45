"""The audit log: who did what to what, from where, with the state before and after.

Every action a member of staff (or the merchant API's token) takes that changes the shop — a setting,
a re-bind, a freeze, a decision on an application or a withdrawal, a payment marked, an export — is
recorded here once it has happened. Entries are only ever appended (`stores.audit_log`); owners read them
in the console.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any

from stores.audit_log import AuditLogStore


def _withheld_field(name: str) -> bool:
    """Secrets and personal data sealed at rest stay where they are: never copied into an entry."""
    return name.endswith("_sealed") or name == "password_hash"


@dataclass(frozen=True)
class Actor:
    kind: str  # "staff": a console user; "api": the merchant API's token
    name: str
    ip: str
    role: str | None = None


class AuditLog:
    def __init__(self, store: AuditLogStore):
        self.store = store

    async def record(self, actor: Actor, action: str, target_kind: str, target_id: str,
                     before: Any = None, after: Any = None, reason: str | None = None) -> str:
        entry = {
            "at": datetime.now(timezone.utc),
            "actor": {key: value for key, value in asdict(actor).items() if key != "ip" and value is not None},
            "ip": actor.ip,
            "action": action,
            "target": {"kind": target_kind, "id": target_id},
            "before": _withheld(before),
            "after": _withheld(after),
        }
        if reason:
            entry["reason"] = reason
        return await self.store.append(entry)

    async def page(self, target_kind: str | None = None, target_id: str | None = None, actor: str | None = None,
                   before_id: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        return await self.store.page(target_kind, target_id, actor, before_id, limit)


def _withheld(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _withheld(item) for key, item in value.items() if not _withheld_field(key)}
    if isinstance(value, (list, tuple)):
        return [_withheld(item) for item in value]
    return value
