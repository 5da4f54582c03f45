"""Access tokens as WeChat issues and checks them."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class IssuedToken:
    value: str
    app_id: str
    expires_at: float


class TokenIssuer:
    """Tokens of cgi-bin/token (a new one per call) and cgi-bin/stable_token
    (the same one until it expires or a forced refresh replaces it).

    A forced refresh retires the previous stable token at once, stricter than
    WeChat's five minutes of grace, so callers holding it are caught out.
    """

    def __init__(self, lifetime_seconds: int, clock: Callable[[], float] = time.monotonic):
        self._lifetime = lifetime_seconds
        self._clock = clock
        self._valid: dict[str, IssuedToken] = {}
        self._stable: dict[str, IssuedToken] = {}

    def issue(self, app_id: str) -> tuple[str, int]:
        """A new token and its lifetime in seconds."""
        token = IssuedToken(secrets.token_urlsafe(48), app_id, self._clock() + self._lifetime)
        self._valid[token.value] = token
        return token.value, self._lifetime

    def stable(self, app_id: str, force_refresh: bool) -> tuple[str, int]:
        """The app's stable token and its remaining lifetime in seconds."""
        current = self._stable.get(app_id)
        if current is not None and not force_refresh and self.app_of(current.value) == app_id:
            return current.value, int(current.expires_at - self._clock())
        if current is not None:
            self._valid.pop(current.value, None)
        value, lifetime = self.issue(app_id)
        self._stable[app_id] = self._valid[value]
        return value, lifetime

    def app_of(self, token: str | None) -> str | None:
        """The app a valid token belongs to; None for a missing, unknown or expired token."""
        issued = self._valid.get(token) if token else None
        if issued is None or issued.expires_at <= self._clock():
            return None
        return issued.app_id

    def expire_all(self) -> None:
        self._valid.clear()
        self._stable.clear()
