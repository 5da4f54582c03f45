"""How often each kind of subject may do each limited action: the merchant's `settings/limits`.

Pure: a `Record` read and replaced through `GET|PUT /api/merchant/v1/settings/limits`. A limit is a
number of allowed actions within a sliding window of seconds, per subject: the member acting, the openid
WeChat names them by (before a member exists), or the client's address. An action may be limited per
several subjects at once; it is allowed only when it is under every one of them.

The defaults are for production: loose enough that a person never meets them (many people share one
address behind a carrier's NAT), tight enough that a script driving the endpoints is stopped within a
minute.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated

from pydantic import ConfigDict, Field

from distribution.records import Integer, Record

MAX_COUNT = 100_000
MAX_WINDOW_SECONDS = 86_400
MAX_POSTER_REDRAWS_PER_DAY = 1_000


class Action(StrEnum):
    MINIAPP_LOGIN = "miniapp_login"
    BIND = "bind"  # an official-account scan or an H5 share link carrying a promoter's code
    WITHDRAWAL_REQUEST = "withdrawal_request"
    POSTER_DRAW = "poster_draw"
    PROFILE_CHANGE = "profile_change"
    APPLICATION = "application"
    CONSOLE_LOGIN = "console_login"
    MERCHANT_AUTH_FAILURE = "merchant_auth_failure"  # a wrong token at the merchant API


class Subject(StrEnum):
    MEMBER = "member"
    OPENID = "openid"
    IP = "ip"


class Limit(Record):
    """At most `count` actions within any `window_seconds`."""

    count: Annotated[Integer, Field(ge=1, le=MAX_COUNT)] = Field(description="How many actions are allowed.")
    window_seconds: Annotated[Integer, Field(ge=1, le=MAX_WINDOW_SECONDS)] = Field(
        description="Within how many seconds (a sliding window).")


class ActionLimits(Record):
    """An action's limits per kind of subject; null: not limited per that subject."""

    per_member: Limit | None = Field(None, description="Per member acting.")
    per_openid: Limit | None = Field(None, description="Per WeChat openid (a login, before the member is known).")
    per_ip: Limit | None = Field(None, description="Per client address (see TRUSTED_PROXIES).")

    def of(self, subject: Subject) -> Limit | None:
        return {Subject.MEMBER: self.per_member, Subject.OPENID: self.per_openid, Subject.IP: self.per_ip}[subject]


def _limits(**per: tuple[int, int]) -> ActionLimits:
    return ActionLimits(**{f"per_{subject}": Limit(count=count, window_seconds=seconds)
                           for subject, (count, seconds) in per.items()})


class RateLimits(Record):
    """How often members, openids and client addresses may log in, bind, withdraw, draw posters, change their
    profile, apply, sign in to the console, and present a wrong merchant-API token. Over a limit: 429 with
    Retry-After."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "miniapp_login": {"per_member": None, "per_openid": {"count": 20, "window_seconds": 60},
                          "per_ip": {"count": 300, "window_seconds": 60}},
        "poster_redraws_per_day": 10,
    }]})

    miniapp_login: ActionLimits = Field(_limits(openid=(20, 60), ip=(300, 60)),
                                        description="Mini-program logins (POST /api/v1/session).")
    bind: ActionLimits = Field(_limits(member=(20, 60), ip=(120, 60)),
                               description="Binds by an official-account scan or an H5 share link, per member "
                                           "scanning (and per address for links; scans come from WeChat's).")
    withdrawal_request: ActionLimits = Field(_limits(member=(60, 600)), description="Withdrawal requests.")
    poster_draw: ActionLimits = Field(_limits(member=(30, 60)), description="Poster requests, drawn or stored.")
    profile_change: ActionLimits = Field(_limits(member=(20, 60)), description="Profile changes (PATCH /api/v1/me).")
    application: ActionLimits = Field(_limits(member=(10, 3600)), description="Applications to become a promoter.")
    console_login: ActionLimits = Field(_limits(ip=(60, 300)), description="Console sign-in attempts.")
    merchant_auth_failure: ActionLimits = Field(
        _limits(ip=(30, 600)), description="Merchant-API requests with a wrong Authorization, per address (only "
                                           "per_ip applies). Past the count every request from that address, "
                                           "the right token's too, is answered 429 until the window lets go.")
    poster_redraws_per_day: Annotated[Integer, Field(ge=0, le=MAX_POSTER_REDRAWS_PER_DAY)] = Field(
        10, description="How many times within any 24 hours one member's poster of one template may be drawn anew "
                        "(a new nickname, avatar or design); the stored one is served meanwhile. 0: never redrawn "
                        "within 24 hours of a drawing.")

    def of(self, action: Action) -> ActionLimits:
        return getattr(self, action.value)


@dataclass(frozen=True)
class Check:
    """One subject's limit to check: the key names the action and the subject."""

    key: str
    limit: Limit


def checks(limits: RateLimits, action: Action, subjects: Mapping[Subject, str | None]) -> list[Check]:
    """The limits `action` by these subjects must be under; a subject without a limit or a value is not
    checked."""
    per = limits.of(action)
    return [Check(f"{action.value}:{subject.value}:{value}", limit)
            for subject, value in subjects.items() if value and (limit := per.of(subject)) is not None]
