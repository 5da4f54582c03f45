"""The merchant's staff: accounts, signing in, and the console's sessions.

- Passwords are hashed with argon2id (`argon2-cffi`), off the event loop: a hash costs tens of
  milliseconds of CPU. An unknown user name costs the same as a wrong password, so timing does not
  tell which user names exist.
- Five failed sign-ins for one user name, or from one address, lock it for 15 minutes (Redis counters
  shared by every server process); the lock is checked before the password, so a locked account is no
  password oracle.
- An owner may add a second factor (TOTP, `pyotp`); its secret is sealed at rest and each code works once.
- A session is a random token in an HttpOnly cookie; Redis holds its SHA-256 with the user, role and
  CSRF token, expiring after the idle time (renewed by each request) and never outliving the absolute
  lifetime. Signing out deletes it everywhere at once.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from redis.asyncio import Redis

from distribution import errors
from distribution.staff import LOCKOUT_SECONDS, MAX_FAILED_LOGINS, Role, check_password, check_username
from services.sealing import Sealer
from stores.staff import StaffStore, new_staff

TOTP_ISSUER = "分销后台"
DEMO_ADMIN = "admin"
# What an unknown user name's password is checked against, so that it costs what a wrong password costs: the
# hash of a random password nobody kept, at argon2-cffi's default cost, made once rather than at every start.
UNKNOWN_USER_HASH = "$argon2id$v=19$m=65536,t=3,p=4$z5f7rfprXXsVIZiDbZHg9g$uTGDRssQYDhZcEkSP2g8xIBufrftKPBheM22ug6Ggv0"


class LoginFailed(errors.Forbidden):
    code = "login_failed"


@dataclass(frozen=True)
class StaffSession:
    username: str
    role: Role
    csrf_token: str
    signed_in_at: float


class StaffService:
    def __init__(self, store: StaffStore, redis: Redis, key_prefix: str, sealer: Sealer, idle_seconds: int,
                 absolute_seconds: int):
        self.store = store
        self.redis = redis
        self.key_prefix = key_prefix
        self.sealer = sealer
        self.idle_seconds = idle_seconds
        self.absolute_seconds = absolute_seconds
        self._hasher = PasswordHasher()

    # --- accounts ------------------------------------------------------------------------------

    async def create_user(self, username: str, password: str, role: Role) -> None:
        check_username(username)
        password_hash = await asyncio.to_thread(self._hasher.hash, check_password(password))
        if not await self.store.insert(new_staff(username, password_hash, Role(role), _now())):
            raise errors.Conflict(f"a user named {username} exists", field="username")

    async def set_password(self, username: str, password: str) -> None:
        password_hash = await asyncio.to_thread(self._hasher.hash, check_password(password))
        if not await self.store.set_fields(username, {"password_hash": password_hash, "password_changed_at": _now()}):
            raise errors.NotFound(f"no user named {username}", field="username")

    async def ensure_demo_admin(self) -> str:
        """Demo mode's owner `admin`, with a new password each run, returned to be printed."""
        password = secrets.token_urlsafe(12)
        if await self.store.get(DEMO_ADMIN) is None:
            await self.create_user(DEMO_ADMIN, password, Role.OWNER)
        else:
            await self.set_password(DEMO_ADMIN, password)
        return password

    async def enable_totp(self, username: str) -> str:
        """A new second-factor secret for an owner; returns the otpauth:// URI to scan into an authenticator."""
        user = await self._user(username)
        if user["role"] != Role.OWNER:
            raise errors.Refused("only owners take a second factor", field="username")
        secret = pyotp.random_base32()
        await self.store.set_fields(username, {"totp_secret_sealed": self.sealer.seal(secret)})
        await self.store.unset_fields(username, "totp_last_step")
        return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=TOTP_ISSUER)

    async def disable_totp(self, username: str) -> None:
        await self._user(username)
        await self.store.unset_fields(username, "totp_secret_sealed", "totp_last_step")

    async def users(self) -> list[dict[str, Any]]:
        """Every user: name, role, whether a second factor is on, when created."""
        return [{"username": user["_id"], "role": user["role"], "has_totp": "totp_secret_sealed" in user,
                 "created_at": user["created_at"]} for user in await self.store.all()]

    async def _user(self, username: str) -> dict[str, Any]:
        user = await self.store.get(username)
        if user is None:
            raise errors.NotFound(f"no user named {username}", field="username")
        return user

    # --- signing in ----------------------------------------------------------------------------

    async def sign_in(self, username: str, password: str, code: str, ip: str) -> tuple[str, StaffSession]:
        """A new session's token and the session; LoginFailed, or TooMany while the user or address is locked."""
        username = username.strip().lower()
        await self._refuse_if_locked(username, ip)
        user = await self.store.get(username) if len(username) <= 64 else None
        password_ok = await asyncio.to_thread(self._verify, user["password_hash"] if user else None, password)
        if user is None or not password_ok:
            await self._count_failure(username, ip)
            raise LoginFailed("wrong user name or password")
        if user.get("totp_secret_sealed") and not await self._second_factor_ok(user, code):
            await self._count_failure(username, ip)
            raise LoginFailed("the second-factor code is missing or wrong", field="code")
        await self.redis.delete(self._failures_key("user", username))
        return await self._open_session(username, Role(user["role"]))

    def _verify(self, password_hash: str | None, password: str) -> bool:
        if len(password) > 1024:
            return False
        try:
            return self._hasher.verify(password_hash or UNKNOWN_USER_HASH, password) and password_hash is not None
        except (VerificationError, InvalidHashError):
            return False

    async def _second_factor_ok(self, user: dict[str, Any], code: str) -> bool:
        code = code.strip()
        if not (code.isdigit() and len(code) == 6):
            return False
        totp = pyotp.TOTP(self.sealer.open(user["totp_secret_sealed"]))
        now = time.time()
        for drift in (0, -1, 1):  # a phone's clock a step behind or ahead
            at = now + drift * totp.interval
            if hmac.compare_digest(totp.at(at), code):
                return await self.store.use_totp_step(user["_id"], totp.timecode(datetime.fromtimestamp(at)))
        return False

    def _failures_key(self, kind: str, who: str) -> str:
        return f"{self.key_prefix}staff:failures:{kind}:{hashlib.sha256(who.encode()).hexdigest()[:32]}"

    async def _refuse_if_locked(self, username: str, ip: str) -> None:
        keys = [self._failures_key("user", username), self._failures_key("ip", ip)]
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.get(key).ttl(key)
            answers = await pipe.execute()
        for count, ttl in zip(answers[::2], answers[1::2]):
            if count is not None and int(count) >= MAX_FAILED_LOGINS:
                minutes = max(1, -(-max(ttl, 0) // 60))
                raise errors.TooMany(f"too many failed sign-ins: locked for {minutes} more minutes",
                                     code="locked", retry_after=max(ttl, 1))

    async def _count_failure(self, username: str, ip: str) -> None:
        # Each failure restarts the 15 minutes: a lock lasts that long after the last attempt.
        async with self.redis.pipeline(transaction=True) as pipe:
            for key in (self._failures_key("user", username), self._failures_key("ip", ip)):
                pipe.incr(key).expire(key, LOCKOUT_SECONDS)
            await pipe.execute()

    # --- sessions ------------------------------------------------------------------------------

    def _session_key(self, token: str) -> str:
        return f"{self.key_prefix}staff:session:{hashlib.sha256(token.encode()).hexdigest()}"

    async def _open_session(self, username: str, role: Role) -> tuple[str, StaffSession]:
        token = secrets.token_urlsafe(32)
        session = StaffSession(username, role, secrets.token_urlsafe(32), time.time())
        await self.redis.set(self._session_key(token), json.dumps(session.__dict__), ex=self.idle_seconds)
        return token, session

    async def session(self, token: str) -> StaffSession | None:
        """The live session of `token`, its idle time renewed; None when signed out, idle too long or too old."""
        if not token or len(token) > 128:
            return None
        key = self._session_key(token)
        async with self.redis.pipeline(transaction=False) as pipe:
            raw, _ = await pipe.get(key).expire(key, self.idle_seconds).execute()
        if raw is None:
            return None
        session = StaffSession(**json.loads(raw))
        if time.time() - session.signed_in_at > self.absolute_seconds:
            await self.redis.delete(key)
            return None
        return session

    async def sign_out(self, token: str) -> None:
        await self.redis.delete(self._session_key(token))


def _now() -> datetime:
    return datetime.now(timezone.utc)
