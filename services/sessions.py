"""Mini-program sessions: a signed, expiring token per login, revocable.

The token is Tornado's signed value of `<session id>:<member id>` (HMAC with
SESSION_SECRET, checked for age); the session id lives in Redis until it
expires or is revoked, so a revoked token stops working at once everywhere.
"""

from __future__ import annotations

import secrets

from redis.asyncio import Redis
from tornado.web import create_signed_value, decode_signed_value

_NAME = "miniapp_session"


class SessionService:
    def __init__(self, redis: Redis, key_prefix: str, secret: str, days: int):
        self.redis = redis
        self.key_prefix = key_prefix
        self.secret = secret
        self.days = days

    def _key(self, session_id: str) -> str:
        return f"{self.key_prefix}session:{session_id}"

    async def issue(self, member_id: str) -> str:
        session_id = secrets.token_urlsafe(16)
        await self.redis.set(self._key(session_id), member_id, ex=self.days * 86400)
        return create_signed_value(self.secret, _NAME, f"{session_id}:{member_id}").decode()

    def _parts(self, token: str) -> tuple[str, str] | None:
        value = decode_signed_value(self.secret, _NAME, token, max_age_days=self.days)
        if value is None:
            return None
        session_id, _, member_id = value.decode().partition(":")
        return (session_id, member_id) if session_id and member_id else None

    async def member_of(self, token: str) -> str | None:
        """The member a live token belongs to; None for a forged, expired or revoked one."""
        parts = self._parts(token)
        if parts is None:
            return None
        session_id, member_id = parts
        stored = await self.redis.get(self._key(session_id))
        return member_id if stored is not None and stored.decode() == member_id else None

    async def revoke(self, token: str) -> None:
        parts = self._parts(token)
        if parts is not None:
            await self.redis.delete(self._key(parts[0]))
