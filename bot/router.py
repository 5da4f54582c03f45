"""The official account's message router: one table from push to handler.

A route matches a text keyword, a menu click key, an event name or a message
type; the most specific match wins, in that order, else the fallback. Each
feature adds a line to the table in `bot.conversation`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Awaitable, Callable, Iterable

from wechatpy.messages import BaseMessage
from wechatpy.replies import BaseReply, TextReply

if TYPE_CHECKING:
    from bot.runtime import Runtime


@dataclass(frozen=True)
class Push:
    """One push as a handler sees it: the parsed message and the services."""

    message: BaseMessage
    runtime: "Runtime"

    @property
    def openid(self) -> str:
        return self.message.source

    def text(self, content: str) -> TextReply:
        return TextReply(message=self.message, content=content)


Handler = Callable[[Push], Awaitable[BaseReply | None]]


@dataclass(frozen=True)
class Route:
    kind: str  # "keyword" | "click" | "event" | "message"
    value: str
    handler: Handler


def keyword(text: str, handler: Handler) -> Route:
    return Route("keyword", text.strip(), handler)


def menu_click(key: str, handler: Handler) -> Route:
    return Route("click", key, handler)


def event(name: str, handler: Handler) -> Route:
    return Route("event", name.lower(), handler)


def message(msg_type: str, handler: Handler) -> Route:
    return Route("message", msg_type.lower(), handler)


# wechatpy renames a follow through a parametric QR code; to WeChat it is one event.
_EVENT_ALIASES = {"subscribe_scan": "subscribe"}


def push_kind(msg: BaseMessage) -> tuple[str, str]:
    """(message type, event name) in lower case: WeChat sends either case."""
    msg_type = (msg.type or "").lower()
    if msg_type != "event":
        return msg_type, ""
    event_name = (getattr(msg, "event", "") or "").lower()
    return msg_type, _EVENT_ALIASES.get(event_name, event_name)


class MessageRouter:
    def __init__(self, routes: Iterable[Route], fallback: Handler):
        self._table: dict[tuple[str, str], Handler] = {}
        for route in routes:
            key = (route.kind, route.value)
            if key in self._table:
                raise ValueError(f"two routes for {route.kind} {route.value!r}")
            self._table[key] = route.handler
        self._fallback = fallback

    def resolve(self, msg: BaseMessage) -> Handler:
        msg_type, event_name = push_kind(msg)
        candidates: list[tuple[str, str]] = []
        if msg_type == "text":
            candidates.append(("keyword", (msg.content or "").strip()))
        if event_name == "click":
            candidates.append(("click", msg.key or ""))
        if event_name:
            candidates.append(("event", event_name))
        candidates.append(("message", msg_type))
        for candidate in candidates:
            if candidate in self._table:
                return self._table[candidate]
        return self._fallback

    async def dispatch(self, push: Push) -> BaseReply | None:
        return await self.resolve(push.message)(push)
