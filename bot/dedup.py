"""At-most-once handling of WeChat pushes, and no second use of a signed nonce.

WeChat retries a push it got no answer to (up to 3 times). The first delivery
claims the push's key in Redis and stores its reply; a retry waits for that
reply (the first may still be working) and answers it again without doing the
work twice.

In plain and compatible mode the signature covers token, timestamp and nonce,
not the body: whoever saw one signed query could send any body with it. So
each signed (timestamp, nonce) is remembered with the push it came with, as
long as its timestamp is accepted: the same nonce with the same push is that
push again (whether WeChat's retries reuse a nonce is not documented) and is
answered as a retry; with another push it is a forgery, refused before
anything runs. One script does both: it remembers the nonce and, for a push
with effects, claims the push. Admissions go to Redis together, as one call
of that script, one call at a time: those that reach this point while a call
is on its way wait for it and go together in the next. The text-reply path
costs a share of one round trip, and the busier the door, the smaller.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from enum import Enum

from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from wechatpy.messages import BaseMessage

from bot.push_codec import PUSH_WINDOW_SECONDS
from bot.router import push_kind

_PENDING = b"\x00pending"

# KEYS: per push, its nonce's key and its own key. ARGV: the nonce's lifetime, the claim's value and
# lifetime, per push whether to claim it ("1") or not ("0") as one string, then per push its id.
# Returns the pushes' verdicts as one string of digits, then the push key's value of each push claimed before.
_ADMIT = """
local verdicts, answer = {}, {''}
for i = 1, #KEYS / 2 do
  local nonce, push, id = KEYS[2 * i - 1], KEYS[2 * i], ARGV[4 + i]
  local seen = redis.call('GET', nonce)
  if seen and seen ~= id then
    verdicts[i] = '0'
  else
    if not seen then redis.call('SET', nonce, id, 'EX', ARGV[1]) end
    if string.sub(ARGV[4], i, i) == '0' then
      verdicts[i] = '1'
    elseif redis.call('SET', push, ARGV[2], 'NX', 'EX', ARGV[3]) then
      verdicts[i] = '2'
    else
      verdicts[i] = '3'
      answer[#answer + 1] = redis.call('GET', push)
    end
  end
end
answer[1] = table.concat(verdicts)
return answer
"""
# A timestamp is accepted up to the window before and after now: its nonce is remembered that long from now.
NONCE_SECONDS = 2 * PUSH_WINDOW_SECONDS


class Verdict(Enum):
    REPLAYED = 0  # the nonce came before with another push: refuse, change nothing
    ADMITTED = 1  # a push without effects: answer it
    CLAIMED = 2  # this delivery does the work
    CLAIMED_BEFORE = 3  # another delivery does or did the work


# The script's digit of each verdict: looked up, not converted, for every push of every batch.
_VERDICT_OF_DIGIT = {str(verdict.value): verdict for verdict in Verdict}


@dataclass(frozen=True)
class Admission:
    verdict: Verdict
    earlier_reply: str | None = None  # CLAIMED_BEFORE and finished: the reply it gave


@dataclass(slots=True)
class _Waiting:
    """One push's admission, waiting for its batch to come back from Redis."""

    nonce_key: str
    push_key: str
    push_id: str
    claim: bool
    answer: asyncio.Future[tuple[Verdict, bytes | None]]


# Batches on their way to Redis: held so that the loop does not lose them.
_BATCHES: set[asyncio.Task] = set()
MAX_BATCH = 256  # admissions per call, so that one call never holds Redis long


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
    ttl_seconds: int  # how long a push is remembered; never less than its nonce, which can bring it back
    wait_seconds: float = 4.0  # a retry comes 5 s after the first; answer before WeChat gives up again
    _admit: AsyncScript = field(init=False, repr=False)
    _waiting: list[_Waiting] = field(init=False, repr=False, default_factory=list)
    _sending: bool = field(init=False, repr=False, default=False)  # a batch is on its way to Redis

    def __post_init__(self) -> None:
        self._admit = self.redis.register_script(_ADMIT)
        self.ttl_seconds = max(self.ttl_seconds, NONCE_SECONDS)

    def _key(self, msg: BaseMessage) -> str:
        return self._key_of(push_id(msg))

    def _key_of(self, pushed: str) -> str:
        return f"{self.key_prefix}push:{pushed}"

    async def admit(self, nonce_id: str, msg: BaseMessage, claim: bool) -> Admission:
        """Remember the nonce with this push, refuse it if it came with another; with `claim`, claim the push."""
        loop = asyncio.get_running_loop()
        if not self._waiting and not self._sending:
            loop.call_soon(self._send_waiting)
        pushed = push_id(msg)
        waiting = _Waiting(f"{self.key_prefix}nonce:{nonce_id}", self._key_of(pushed), pushed, claim,
                           loop.create_future())
        self._waiting.append(waiting)
        verdict, earlier = await waiting.answer
        return Admission(verdict, earlier.decode() if earlier is not None and earlier != _PENDING else None)

    def _send_waiting(self) -> None:
        batch, self._waiting = self._waiting[:MAX_BATCH], self._waiting[MAX_BATCH:]
        self._sending = True
        task = asyncio.create_task(self._admit_batch(batch))
        task.add_done_callback(self._sent)
        _BATCHES.add(task)

    def _sent(self, task: asyncio.Task) -> None:
        _BATCHES.discard(task)
        self._sending = False
        if self._waiting:
            self._send_waiting()

    async def _admit_batch(self, batch: list[_Waiting]) -> None:
        keys = [key for each in batch for key in (each.nonce_key, each.push_key)]
        claims = "".join("1" if each.claim else "0" for each in batch)
        try:
            verdicts, *earlier = await self._admit(
                keys, [NONCE_SECONDS, _PENDING, self.ttl_seconds, claims, *(each.push_id for each in batch)])
        except asyncio.CancelledError:
            for each in batch:
                each.answer.cancel()
            raise
        except Exception as error:  # noqa: BLE001 - each push of the batch meets it, as if it had called alone
            for each in batch:
                if not each.answer.done():
                    each.answer.set_exception(error)
            return
        values = iter(earlier)
        for each, digit in zip(batch, verdicts.decode()):
            verdict = _VERDICT_OF_DIGIT[digit]
            earlier_value = next(values) if verdict is Verdict.CLAIMED_BEFORE else None
            if not each.answer.done():  # its request was cut off meanwhile
                each.answer.set_result((verdict, earlier_value))

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
