"""The access token of one app, cached in Redis and fetched by one process at a time.

WeChat limits how often a token may be fetched, and fetching a new one can
retire the old one, so every process of the deployment shares one token. When
it is missing, one process (holding a Redis lock) fetches it and the others
poll Redis until it appears. Within a process, concurrent callers share one
fetch, so only one coroutine per process takes part in that dance.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import TYPE_CHECKING, Any

from redis.asyncio import Redis

from .api.base import ApiGroup
from .errors import WeChatTimeout

if TYPE_CHECKING:
    from .client import WeChatClient

STABLE_TOKEN_ENDPOINT = "cgi-bin/stable_token"

# Stored tokens die this long before WeChat's expiry, so no call carries a
# token that expires on its way.
SAFETY_MARGIN_SECONDS = 300
POLL_INTERVAL_SECONDS = 0.025

# Deletes KEYS[1] only while it still holds ARGV[1]: releases only our own
# lock, and discards only the token WeChat rejected, never a newer one
# another process stored meanwhile.
_COMPARE_AND_DELETE = """
if redis.call("get", KEYS[1]) == ARGV[1] then
    return redis.call("del", KEYS[1])
end
return 0
"""


class AccessToken(ApiGroup):
    """`client.token`: the cached access token of the client's app."""

    def __init__(self, client: WeChatClient, redis: Redis, key_prefix: str, fetch_timeout: float):
        super().__init__(client)
        self._redis = redis
        self._key = f"{key_prefix}wechat:token:{client.app_id}"
        self._lock_key = f"{key_prefix}wechat:token-lock:{client.app_id}"
        # The holder makes at most two WeChat calls of `fetch_timeout` each; the
        # lock outlives them so a slow fetch is not joined by a second one, yet
        # a crashed holder's lock expires soon enough for a waiter to take
        # over before its own deadline.
        self._lock_ms = int(fetch_timeout * 3 * 1000)
        self._wait_seconds = fetch_timeout * 4
        self._compare_and_delete = redis.register_script(_COMPARE_AND_DELETE)
        self._fetches: dict[str | None, asyncio.Task[str]] = {}

    async def get(self) -> str:
        """The current token, fetched from WeChat only when none is cached."""
        return await self._current(rejected=None)

    async def refresh(self, rejected: str) -> str:
        """A token other than `rejected`, which WeChat just refused."""
        await self._compare_and_delete(keys=[self._key], args=[rejected])
        return await self._current(rejected)

    async def stable_token(self, force_refresh: bool = False) -> dict[str, Any]:
        """WeChat's answer to cgi-bin/stable_token: {access_token, expires_in}."""
        return await self._call_for_json(
            "POST",
            STABLE_TOKEN_ENDPOINT,
            json={
                "grant_type": "client_credential",
                "appid": self._client.app_id,
                "secret": self._client.app_secret,
                "force_refresh": force_refresh,
            },
            token=False,
        )

    async def _current(self, rejected: str | None) -> str:
        cached = await self._cached(rejected)
        if cached is not None:
            return cached
        fetch = self._fetches.get(rejected)
        if fetch is None:
            fetch = asyncio.create_task(self._fetch_once_across_processes(rejected))
            self._fetches[rejected] = fetch
            fetch.add_done_callback(lambda _: self._fetches.pop(rejected, None))
        # Shielded: one caller giving up must not cancel the fetch the others wait for.
        return await asyncio.shield(fetch)

    async def _cached(self, rejected: str | None) -> str | None:
        value = await self._redis.get(self._key)
        if value is None:
            return None
        token = value.decode() if isinstance(value, bytes) else value
        return None if token == rejected else token

    async def _fetch_once_across_processes(self, rejected: str | None) -> str:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._wait_seconds
        while True:
            lock_value = secrets.token_hex(16)
            if await self._redis.set(self._lock_key, lock_value, nx=True, px=self._lock_ms):
                try:
                    # The previous holder may have stored a token between our
                    # last look and taking the lock.
                    cached = await self._cached(rejected)
                    return cached if cached is not None else await self._fetch_and_store(rejected)
                finally:
                    await self._compare_and_delete(keys=[self._lock_key], args=[lock_value])
            if loop.time() >= deadline:
                raise WeChatTimeout(None, "another process is still fetching the access token", STABLE_TOKEN_ENDPOINT)
            await asyncio.sleep(POLL_INTERVAL_SECONDS)
            cached = await self._cached(rejected)
            if cached is not None:
                return cached

    async def _fetch_and_store(self, rejected: str | None) -> str:
        answer = await self.stable_token()
        if answer["access_token"] == rejected:
            # WeChat still hands out the token it refused a moment ago; only a
            # forced refresh (limited per day, hence not the default) replaces it.
            answer = await self.stable_token(force_refresh=True)
        token = answer["access_token"]
        expires_in = int(answer["expires_in"])
        ttl = max(expires_in - SAFETY_MARGIN_SECONDS, expires_in // 2, 1)
        await self._redis.set(self._key, token, ex=ttl)
        return token
