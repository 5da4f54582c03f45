"""/wechat: the official account's URL verification and message/event pushes.

A push is answered once whatever WeChat repeats (`bot.dedup`), and a signed
nonce used with another push is refused. While Redis is unavailable the door
still answers: a push without effects gets its reply, and every push is kept
in MongoDB with its nonce (`stores.kept_pushes`), where the nonce stays
refused for other pushes. Once Redis answers again the worker replays the kept
pushes (`replay_kept_pushes`): through the same admission, so each push's work
is done once whichever of WeChat's retries or the replay gets there first, and
the reply the door could not give goes out as a customer-service message.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import tornado.web
from wechatpy.messages import BaseMessage
from wechatpy.replies import BaseReply, ImageReply, TextReply

from bot.conversation import build_router
from bot.dedup import PushDeduplicator, Verdict, push_id
from bot.push_codec import PushCodec, PushQuery, PushRejected
from bot.push_xml import reply_xml
from bot.router import MessageRouter, Push, Route, push_kind
from services.outages import REDIS_UNAVAILABLE
from services.runtime import Runtime
from stores.kept_pushes import KeptPushes
from web.base import BaseHandler
from wechat import WeChatError

log = logging.getLogger(__name__)

REPLAY_BATCH = 100


@dataclass
class PushDoor:
    """What the door needs beside the runtime: how pushes are read and answered, what they mean, what was
    answered already, and where pushes wait while Redis is unavailable."""

    codec: PushCodec
    router: MessageRouter
    dedup: PushDeduplicator
    kept: KeptPushes

    async def answer(self, runtime: Runtime, query: PushQuery, xml: str, msg: BaseMessage) -> str:
        """The reply to a verified push (before encryption); PushRejected when its nonce came with another push."""
        push = Push(msg, runtime)
        route = await self.router.resolve(push)
        try:
            return _rendered(await self._answer_once(query.nonce_id, push, route))
        except REDIS_UNAVAILABLE as error:
            log.warning("Redis unavailable (%s): the push is kept in MongoDB until it is back", type(error).__name__)
        answered = route.safe_to_repeat
        if not await self.kept.keep(query.nonce_id, push_id(msg), xml, answered, push.received_at):
            raise _replayed_nonce()
        return _rendered(await route.handler(push)) if answered else "success"

    async def _answer_once(self, nonce_id: str, push: Push, route: Route) -> BaseReply | str | None:
        admission = await self.dedup.admit(nonce_id, push.message, claim=not route.safe_to_repeat)
        if admission.verdict is Verdict.REPLAYED:
            raise _replayed_nonce()
        if admission.verdict is Verdict.ADMITTED:
            return await route.handler(push)
        if admission.verdict is Verdict.CLAIMED:
            return await self._work(push, route)
        if admission.earlier_reply is not None:
            return admission.earlier_reply
        for _ in range(2):  # claimed before and not finished: wait for it, or do the work if it gave up
            earlier = await self.dedup.earlier_reply(push.message)
            if earlier is not None:
                return earlier
            if await self.dedup.claim(push.message):
                return await self._work(push, route)
        return "success"

    async def _work(self, push: Push, route: Route) -> BaseReply | None:
        """The work of a push this delivery claimed; its reply is remembered for the retries."""
        try:
            reply = await route.handler(push)
        except BaseException:
            await self.dedup.release(push.message)
            raise
        try:
            await self.dedup.remember(push.message, _rendered(reply))
        except REDIS_UNAVAILABLE as error:  # the work is done: answer it; a retry finds the claim pending or gone
            log.warning("Redis unavailable (%s): a push's reply is not remembered for its retries",
                        type(error).__name__)
        return reply

    async def replay_kept(self, runtime: Runtime) -> int:
        """Replay the pushes kept while Redis was unavailable, oldest first; how many were done with."""
        done = 0
        for kept in await self.kept.oldest(REPLAY_BATCH):
            try:
                finished = await self._replay(runtime, kept)
            except REDIS_UNAVAILABLE:
                return done  # still down: the next round tries again
            except Exception:  # noqa: BLE001 - one push that fails stays kept and must not hold up the others
                log.exception("a kept push failed to replay: it is tried again next time")
                continue
            if finished:
                await self.kept.forget(kept["_id"])
                done += 1
        return done

    async def _replay(self, runtime: Runtime, kept: dict) -> bool:
        """Whether the kept push is done with: its work done (now or by another delivery), or refused."""
        push = Push(self.codec.parse(kept["xml"]), runtime, received_at=kept["received_at"])
        admission = await self.dedup.admit(kept["_id"], push.message, claim=not kept["answered"])
        if admission.verdict is Verdict.CLAIMED:
            await _send(runtime, push, await self._work(push, await self.router.resolve(push)))
        elif admission.verdict is Verdict.REPLAYED:
            log.warning("a kept push's nonce came with another push before the replay: the kept one is dropped")
        # Claimed before and unfinished: another delivery is at work on it, or gave up; look again next time.
        return admission.verdict is not Verdict.CLAIMED_BEFORE or admission.earlier_reply is not None


def push_door(runtime: Runtime) -> PushDoor:
    settings = runtime.settings
    return PushDoor(
        codec=PushCodec(settings.wechat_token, settings.wechat_app_id, settings.wechat_aes_key,
                        accept_plaintext=settings.wechat_accept_plaintext),
        router=build_router(),
        dedup=PushDeduplicator(runtime.redis, settings.redis_prefix, settings.push_dedup_seconds),
        kept=KeptPushes(runtime.db),
    )


async def replay_kept_pushes(runtime: Runtime) -> int:
    """The worker's periodic replay of pushes kept while Redis was unavailable."""
    return await push_door(runtime).replay_kept(runtime)


@tornado.web.stream_request_body
class WeChatPushHandler(BaseHandler):
    def initialize(self, runtime, door: PushDoor) -> None:  # type: ignore[override]
        super().initialize(runtime)
        self.door = door
        self.codec = door.codec
        # Read as sent, without Tornado's per-call clean-up: each value is signed or compared as it is.
        arguments = self.request.query_arguments
        self.query = PushQuery.from_arguments(
            lambda name: self.decode_argument(arguments[name][-1], name) if name in arguments else "")
        self.body_parts: list[bytes] = []
        self.body_size = 0
        self.too_large = False

    def prepare(self) -> None:
        limit = self.runtime.settings.max_push_bytes
        declared = self.request.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > limit:
            self._reject(PushRejected(413, f"push body over {limit} bytes"))

    def data_received(self, chunk: bytes) -> None:
        # Bodies without a Content-Length are counted as they come; the excess is never kept.
        self.body_size += len(chunk)
        if self.body_size > self.runtime.settings.max_push_bytes:
            self.too_large = True
            self.body_parts.clear()
        elif not self.too_large:
            self.body_parts.append(chunk)

    def get(self) -> None:
        try:
            self.codec.verify(self.query)
        except PushRejected as rejected:
            return self._reject(rejected)
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.finish(self.get_query_argument("echostr", ""))

    async def post(self) -> None:
        started = time.perf_counter()
        if self.too_large:
            return self._reject(PushRejected(413, f"push body over {self.runtime.settings.max_push_bytes} bytes"))
        try:
            xml = self.codec.open(self.query, b"".join(self.body_parts))
            msg = self.codec.parse(xml)
            reply = await self.door.answer(self.runtime, self.query, xml, msg)
        except PushRejected as rejected:
            return self._reject(rejected)
        self.set_header("Content-Type", "application/xml; charset=utf-8")
        self.finish(self.codec.encode(self.query, reply))
        msg_type, event_name = push_kind(msg)
        self.runtime.metrics.observe_push(event_name or msg_type, time.perf_counter() - started)

    def _reject(self, rejected: PushRejected) -> None:
        log.info("push rejected (%d): %s", rejected.status, rejected)
        self.set_status(rejected.status)
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.finish(str(rejected))


def _replayed_nonce() -> PushRejected:
    return PushRejected(403, "this nonce was used with another push")


def _rendered(reply: BaseReply | str | None) -> str:
    if isinstance(reply, str):
        return reply
    return reply_xml(reply) if reply is not None else "success"


async def _send(runtime: Runtime, push: Push, reply: BaseReply | None) -> None:
    """A replayed push's reply, which its HTTP answer could not carry, as a customer-service message."""
    try:
        if isinstance(reply, TextReply):
            await runtime.oa.message.send_text(push.openid, reply.content)
        elif isinstance(reply, ImageReply):
            await runtime.oa.message.send_image(push.openid, reply.media_id)
    except WeChatError as error:  # the work is done and stays done; only the message is lost
        log.warning("the reply to a replayed push was not sent: %s", error)
