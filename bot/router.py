"""The official account's message router: one table from push to handler.

A route matches a text keyword (fixed, or from a lookup such as the
merchant's settings), a menu click key, an event name or a message type; the
most specific match wins, in that order, else the fallback. Each feature adds
a line to the table in `bot.conversation`.

A route declared `safe_to_repeat` changes nothing and always says the same
for the same push (its replies carry the push's own time), so WeChat's
retries of it need no de-duplication: the door just answers them again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Awaitable, Callable, Hashable, Iterable

from wechatpy.messages import BaseMessage
from wechatpy.replies import BaseReply, TextReply

if TYPE_CHECKING:
    from services.runtime import Runtime


@dataclass(frozen=True)
class Push:
    """One push as a handler sees it: the parsed message, the services, and when it reached the door (a push kept
    while Redis was down is replayed as of then)."""

    message: BaseMessage
    runtime: "Runtime"
    received_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))

    @property
    def openid(self) -> str:
        return self.message.source

    def text(self, content: str) -> TextReply:
        # The push's time, not the clock's: a repeated push gets the very same bytes.
        message = self.message
        return TextReply(source=message.target, target=message.source, time=message.time, content=content)


Handler = Callable[[Push], Awaitable[BaseReply | None]]
# What a text means by keywords known only at run time: one answer for many routes (True for a plain yes).
KeywordLookup = Callable[["Runtime", str], Awaitable[Hashable | None]]


@dataclass(frozen=True)
class Route:
    kind: str  # "keyword" | "keywords" | "click" | "event" | "message" | "fallback"
    value: str | KeywordLookup
    handler: Handler
    safe_to_repeat: bool = False
    meaning: Hashable = True  # a "keywords" route answers the texts its lookup gives this meaning


def keyword(text: str, handler: Handler) -> Route:
    return Route("keyword", text.strip(), handler)


def keywords(lookup: KeywordLookup, handler: Handler, safe_to_repeat: bool = False, meaning: Hashable = True) -> Route:
    """Keywords known only at run time (e.g. the merchant's settings): the texts `lookup` gives `meaning`. Fixed
    keywords are tried first, then each lookup once, in the table's order: routes that share a lookup share its
    answer."""
    return Route("keywords", lookup, handler, safe_to_repeat, meaning)


def menu_click(key: str, handler: Handler, safe_to_repeat: bool = False) -> Route:
    return Route("click", key, handler, safe_to_repeat)


def event(name: str, handler: Handler) -> Route:
    return Route("event", name.lower(), handler)


def message(msg_type: str, handler: Handler) -> Route:
    return Route("message", msg_type.lower(), handler)


def fallback(handler: Handler, safe_to_repeat: bool = False) -> Route:
    return Route("fallback", "", handler, safe_to_repeat)


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
    def __init__(self, routes: Iterable[Route], otherwise: Route):
        self._table: dict[tuple[str, str], Route] = {}
        self._lookups: dict[KeywordLookup, dict[Hashable, Route]] = {}
        for route in routes:
            if route.kind == "keywords":
                table, key = self._lookups.setdefault(route.value, {}), route.meaning
            else:
                table, key = self._table, (route.kind, route.value)
            if key in table:
                raise ValueError(f"two routes for {route.kind} {key!r}")
            table[key] = route
        self._otherwise = otherwise

    async def resolve(self, push: Push) -> Route:
        msg = push.message
        msg_type, event_name = push_kind(msg)
        text = (msg.content or "").strip() if msg_type == "text" else None
        if text is not None:
            if ("keyword", text) in self._table:
                return self._table[("keyword", text)]
            for lookup, meanings in self._lookups.items():
                meaning = await lookup(push.runtime, text)
                if meaning is not None and meaning in meanings:
                    return meanings[meaning]
        candidates: list[tuple[str, str]] = []
        if event_name == "click":
            candidates.append(("click", msg.key or ""))
        if event_name:
            candidates.append(("event", event_name))
        candidates.append(("message", msg_type))
        for candidate in candidates:
            if candidate in self._table:
                return self._table[candidate]
        return self._otherwise
