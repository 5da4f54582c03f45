"""What the sandbox was sent, so tests can check what reached "WeChat"."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RecordedCall:
    endpoint: str  # path without the leading slash, e.g. "cgi-bin/qrcode/create"
    method: str
    query: dict[str, str]
    body: Any  # the parsed JSON body; None when there was none or it did not parse
    raw_body: str | None  # the JSON text as sent: shows whether Chinese arrived unescaped
    multipart_fields: tuple[str, ...]
    at: float  # Unix time


class CallLog:
    """The most recent calls, oldest first; bounded so a long demo run cannot fill memory."""

    def __init__(self, limit: int = 10_000):
        self._calls: deque[RecordedCall] = deque(maxlen=limit)

    def record(self, call: RecordedCall) -> None:
        self._calls.append(call)

    def received(self, endpoint: str | None = None) -> list[RecordedCall]:
        """The calls of `endpoint`, or all calls."""
        return [call for call in self._calls if endpoint is None or call.endpoint == endpoint]

    def clear(self) -> None:
        self._calls.clear()
