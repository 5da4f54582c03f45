"""The kinds of failure a caller must tell apart, whatever raised them.

Services and the domain raise these (or subclasses that add a fixed `code`);
the web layer maps each kind to one HTTP status in one table, so a new error
needs no new `except` clause at the door. `code` is the machine-readable word
a client switches on; the message is for people.
"""

from __future__ import annotations


class DomainError(Exception):
    code = "error"

    def __init__(self, message: str, *, code: str | None = None, field: str | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.field = field


class Invalid(DomainError):
    """The request is malformed or out of range; `field` names the culprit when there is one."""

    code = "invalid"


class NotFound(DomainError):
    code = "not_found"


class Conflict(DomainError):
    """The request contradicts what is stored (the same key with other content, a state that moved on)."""

    code = "conflict"


class Refused(DomainError):
    """A business rule says no (balance too low, already applied, not allowed to promote)."""

    code = "refused"


class Forbidden(DomainError):
    code = "forbidden"


class Unavailable(DomainError):
    """Something this request depends on (WeChat, a configuration) cannot serve it now."""

    code = "unavailable"


class TooMany(DomainError):
    """Asked too often: a lockout or a rate limit; `retry_after` seconds until it lifts."""

    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int, code: str | None = None, field: str | None = None):
        super().__init__(message, code=code, field=field)
        self.retry_after = retry_after
