"""/wechat: the official account's URL verification and message/event pushes."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import tornado.web

from bot.dedup import PushDeduplicator
from bot.push_codec import PushCodec, PushQuery, PushRejected
from bot.router import MessageRouter, Push, push_kind
from web.base import BaseHandler

log = logging.getLogger(__name__)


@dataclass
class PushDoor:
    """What the door needs beside the runtime: how pushes are read and answered, what they mean, and
    what was answered already."""

    codec: PushCodec
    router: MessageRouter
    dedup: PushDeduplicator


@tornado.web.stream_request_body
class WeChatPushHandler(BaseHandler):
    def initialize(self, runtime, door: PushDoor) -> None:  # type: ignore[override]
        super().initialize(runtime)
        self.door = door
        self.codec = door.codec
        self.query = PushQuery.from_arguments({k: self.get_query_argument(k) for k in self.request.query_arguments})
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
            msg = self.codec.decode(self.query, b"".join(self.body_parts))
        except PushRejected as rejected:
            return self._reject(rejected)
        reply = await self._answer_once(msg)
        self.set_header("Content-Type", "application/xml; charset=utf-8")
        self.finish(self.codec.encode(self.query, reply))
        msg_type, event_name = push_kind(msg)
        self.runtime.metrics.push_seconds.labels(event_name or msg_type).observe(time.perf_counter() - started)

    async def _answer_once(self, msg) -> str:
        push = Push(msg, self.runtime)
        route = await self.door.router.resolve(push)
        if route.safe_to_repeat:
            return _rendered(await route.handler(push))
        dedup = self.door.dedup
        for _ in range(2):
            if await dedup.claim(msg):
                try:
                    rendered = _rendered(await route.handler(push))
                except BaseException:
                    await dedup.release(msg)
                    raise
                await dedup.remember(msg, rendered)
                return rendered
            earlier = await dedup.earlier_reply(msg)
            if earlier is not None:
                return earlier
        return "success"

    def _reject(self, rejected: PushRejected) -> None:
        log.info("push rejected (%d): %s", rejected.status, rejected)
        self.set_status(rejected.status)
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.finish(str(rejected))


def _rendered(reply) -> str:
    return reply.render() if reply is not None else "success"
