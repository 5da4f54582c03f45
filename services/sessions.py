"""Mini-program sessions: a signed, expiring token per login, revocable.

The token is Tornado's signed value of `<session id>:<member id>` (HMAC with
SESSION_SECRET, checked for age); the session id lives in Redis until it
expires or is revoked, so a revoked token stops working at once everywhere.
Each member's live session ids are also listed under the member, so that all
of them can be ended at once (a member frozen by the merchant).
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

    def _member_key(self, member_id: str) -> str:
        return f"{self.key_prefix}sessions-of:{member_id}"

    async def issue(self, member_id: str) -> str:
        session_id = secrets.token_urlsafe(16)
        lasts = self.days * 86400
        async with self.redis.pipeline(transaction=True) as pipe:
            # The list lives as long as its newest session; ids of sessions that ended are harmless in it.
            pipe.set(self._key(session_id), member_id, ex=lasts)
            pipe.sadd(self._member_key(member_id), session_id).expire(self._member_key(member_id), lasts)
            await pipe.execute()
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

    async def end_all(self, member_id: str) -> int:
        """End every session of the member at once; how many were live."""
        session_ids = await self.redis.smembers(self._member_key(member_id))
        if not session_ids:
            return 0
        keys = [self._key(session_id.decode()) for session_id in session_ids]
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(*keys).srem(self._member_key(member_id), *session_ids)
            ended, _ = await pipe.execute()
        return ended

    async def revoke(self, token: str) -> None:
        parts = self._parts(token)
        if parts is not None:
            await self.redis.delete(self._key(parts[0]))
