"""Sliding-window rate limits in Redis: one Lua script, so one round trip per check, however many subjects.

Each (action, subject) key is a sorted set of the times of the hits it allowed within its window. The
script drops the hits older than the window and allows the new one only when every key checked with it is
under its count; then it records the hit in all of them. A refused hit is not recorded: a client that
keeps hammering gets in again as soon as its oldest allowed hit leaves the window, and is told when that
is. A sliding log rather than a fixed window, so that no burst of twice the count fits across a window's
edge; a key holds at most its count of entries. The time is Redis's own, so that servers whose clocks
differ share one window, and checking and recording are one atomic step, so concurrent hits from many
processes can never let more through than the count.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Sequence

from redis.asyncio import Redis

from distribution.rate_limits import Check

# Redis's own time in milliseconds as `now`, for a script's first lines: servers whose clocks differ share it.
REDIS_NOW_MS = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000 + math.floor(tonumber(now_parts[2]) / 1000)
"""

# KEYS: one sorted set per subject. ARGV[1]: a unique id for this hit, or '' to only look; then count and
# window (ms) per key. Returns 0 when allowed (and recorded, unless only looking), else the milliseconds until
# the hit would be allowed.
_SLIDING_WINDOW = REDIS_NOW_MS + """
local wait = 0
for i, key in ipairs(KEYS) do
  local count = tonumber(ARGV[2 * i])
  local window = tonumber(ARGV[2 * i + 1])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  local held = redis.call('ZCARD', key)
  if held >= count then
    local freeing = redis.call('ZRANGE', key, held - count, held - count, 'WITHSCORES')
    wait = math.max(wait, tonumber(freeing[2]) + window - now, 1)
  end
end
if wait > 0 or ARGV[1] == '' then
  return wait
end
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, now, ARGV[1])
  redis.call('PEXPIRE', key, tonumber(ARGV[2 * i + 1]))
end
return 0
"""


class RateLimiter:
    def __init__(self, redis: Redis, key_prefix: str):
        self.key_prefix = f"{key_prefix}rate:"
        self._script = redis.register_script(_SLIDING_WINDOW)

    async def hit(self, checks: Sequence[Check]) -> int:
        """Count one hit against every check, if all allow it: 0. Else nothing is counted, and the whole
        seconds until they would allow it."""
        return await self._run(checks, secrets.token_hex(8))

    async def peek(self, checks: Sequence[Check]) -> int:
        """The whole seconds until every check would allow a hit (0: now), counting nothing."""
        return await self._run(checks, "")

    async def _run(self, checks: Sequence[Check], hit_id: str) -> int:
        if not checks:
            return 0
        arguments: list[str | int] = [hit_id]
        for check in checks:
            arguments += [check.limit.count, check.limit.window_seconds * 1000]
        wait_ms = int(await self._script(keys=[self.key_prefix + check.key for check in checks], args=arguments))
        return math.ceil(wait_ms / 1000)
