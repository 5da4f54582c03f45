"""Checking the merchant's rate limits (`settings/limits`) before an action writes anything."""

from __future__ import annotations

from distribution.errors import TooMany
from distribution.rate_limits import Action, Check, Limit, RateLimits, Subject, checks
from services.merchant_settings import MerchantSettings
from stores.rate_limits import RateLimiter

POSTER_REDRAW = "poster_redraw"
DAY_SECONDS = 86_400


class RateLimited(TooMany):
    def __init__(self, action: Action, retry_after: int):
        super().__init__(f"too many {action.value.replace('_', ' ')} attempts: try again in {retry_after} s",
                         code="rate_limited", retry_after=retry_after)


class RateLimitService:
    """Each check is one Redis round trip (none when no limit applies); the settings are cached per process."""

    def __init__(self, merchant_settings: MerchantSettings, limiter: RateLimiter):
        self.merchant_settings = merchant_settings
        self.limiter = limiter

    async def hit(self, action: Action, *, member: str | None = None, openid: str | None = None,
                   ip: str | None = None) -> int:
        """Count one `action` by these subjects if every limit allows it: 0; else the seconds to wait."""
        return await self.limiter.hit(await self._checks(action, member, openid, ip))

    async def refuse_if_over(self, action: Action, *, member: str | None = None, openid: str | None = None,
                             ip: str | None = None) -> None:
        """Raise RateLimited while one more `action` by these subjects would be refused; counts nothing."""
        retry_after = await self.limiter.peek(await self._checks(action, member, openid, ip))
        if retry_after:
            raise RateLimited(action, retry_after)

    async def _checks(self, action: Action, member: str | None, openid: str | None, ip: str | None) -> list[Check]:
        limits = await self.merchant_settings.get(RateLimits)
        return checks(limits, action, {Subject.MEMBER: member, Subject.OPENID: openid, Subject.IP: ip})

    async def check(self, action: Action, *, member: str | None = None, openid: str | None = None,
                    ip: str | None = None) -> None:
        """Count one `action`, or raise RateLimited (a 429 with Retry-After) having counted nothing."""
        retry_after = await self.hit(action, member=member, openid=openid, ip=ip)
        if retry_after:
            raise RateLimited(action, retry_after)

    async def may_redraw_poster(self, member_id: str) -> bool:
        """Count one redraw of the member's poster if fewer than the day's allowance were made in the last
        24 hours."""
        allowed = (await self.merchant_settings.get(RateLimits)).poster_redraws_per_day
        if allowed == 0:
            return False
        check = Check(f"{POSTER_REDRAW}:{Subject.MEMBER.value}:{member_id}",
                      Limit(count=allowed, window_seconds=DAY_SECONDS))
        return await self.limiter.hit([check]) == 0
