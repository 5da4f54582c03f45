"""At-most-once handling of WeChat pushes, which WeChat retries up to 3 times.

The first delivery claims the push's key in Redis and stores its reply; a
retry waits for that reply (the first may still be working) and answers it
again without doing the work twice.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from redis.asyncio import Redis
from wechatpy.messages import BaseMessage

from bot.router import push_kind

_PENDING = b"\x00pending"


def push_id(msg: BaseMessage) -> str:
    """MsgId for messages; sender, time and event for events (they carry no MsgId)."""
    msg_type, event_name = push_kind(msg)
    if event_name:
        return f"e:{msg.source}:{msg.time}:{event_name}"
    return f"m:{msg.id}" if msg.id else f"m:{msg.source}:{msg.time}:{msg_type}"


@dataclass
class PushDeduplicator:
    redis: Redis
    key_prefix: str
    ttl_seconds: int
    wait_seconds: float = 4.0  # a retry comes 5 s after the first; answer before WeChat gives up again

    def _key(self, msg: BaseMessage) -> str:
        return f"{self.key_prefix}push:{push_id(msg)}"

    async def claim(self, msg: BaseMessage) -> bool:
        return bool(await self.redis.set(self._key(msg), _PENDING, nx=True, ex=self.ttl_seconds))

    async def remember(self, msg: BaseMessage, reply: str) -> None:
        await self.redis.set(self._key(msg), reply.encode(), ex=self.ttl_seconds)

    async def release(self, msg: BaseMessage) -> None:
        """The first delivery failed: let WeChat's retry do the work."""
        await self.redis.delete(self._key(msg))

    async def earlier_reply(self, msg: BaseMessage) -> str | None:
        """The reply given to the first delivery; None if it never finished in time."""
        key = self._key(msg)
        deadline = asyncio.get_running_loop().time() + self.wait_seconds
        while True:
            value = await self.redis.get(key)
            if value is not None and value != _PENDING:
                return value.decode()
            if value is None or asyncio.get_running_loop().time() >= deadline:
                return None
            await asyncio.sleep(0.05)
